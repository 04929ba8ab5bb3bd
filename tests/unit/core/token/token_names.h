/*
 * token_names.h: verdict names as tests/unit/core/token/vectors.json spells them ("EXPIRED" for
 * TMT_TOKEN_EXPIRED), shared by test_token.c and token_tool.c.
 */
#ifndef TMT_TEST_TOKEN_NAMES_H
#define TMT_TEST_TOKEN_NAMES_H

#include <string.h>

#include "tmt/token.h"

static const struct {
    enum tmt_token_verdict v;
    const char *name;
} token_verdict_names[] = {
    {TMT_TOKEN_OK, "OK"},
    {TMT_TOKEN_MALFORMED, "MALFORMED"},
    {TMT_TOKEN_BAD_ALG, "BAD_ALG"},
    {TMT_TOKEN_UNKNOWN_KID, "UNKNOWN_KID"},
    {TMT_TOKEN_BAD_SIGNATURE, "BAD_SIGNATURE"},
    {TMT_TOKEN_EXPIRED, "EXPIRED"},
    {TMT_TOKEN_NOT_YET_VALID, "NOT_YET_VALID"},
    {TMT_TOKEN_BAD_VERSION, "BAD_VERSION"},
    {TMT_TOKEN_BAD_URI_CONTAINER, "BAD_URI_CONTAINER"},
    {TMT_TOKEN_PATH_OUTSIDE, "PATH_OUTSIDE"},
};

static inline const char *token_verdict_name(enum tmt_token_verdict v)
{
    for (size_t i = 0; i < sizeof(token_verdict_names) / sizeof(token_verdict_names[0]); i++) {
        if (token_verdict_names[i].v == v)
            return token_verdict_names[i].name;
    }
    return "?";
}

/* The verdict named name; -1 if there is none. */
static inline int token_verdict_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(token_verdict_names) / sizeof(token_verdict_names[0]); i++) {
        if (strcmp(token_verdict_names[i].name, name) == 0)
            return (int)token_verdict_names[i].v;
    }
    return -1;
}

#endif
