/*
 * conf_int.h: what the files of the config module share and nobody else sees.
 */
#ifndef TMT_CONF_INT_H
#define TMT_CONF_INT_H

#include "tmt/config.h"

/* Validators for string-typed values; 0 or a TMT_E* code with a reason in why. */
int tmt_conf_check_addr(const char *s, char *why, size_t why_len);
int tmt_conf_check_url(const char *s, char *why, size_t why_len);

/* Iteration over every key of a schema, in table order, with its part's base offset. */
size_t tmt_conf_n_keys(const struct tmt_conf_schema *schema);
const struct tmt_conf_key *tmt_conf_key_at(const struct tmt_conf_schema *schema, size_t idx,
                                           size_t *base);

/* Address of a key's value inside a settings struct. */
static inline void *tmt_conf_field(const void *settings, size_t base, const struct tmt_conf_key *k)
{
    /* The settings struct is the caller's; const is dropped only for the loader's writes. */
    return (char *)(uintptr_t)settings + base + k->offset;
}

/*
 * Formats a key's value the way a config file writes it, into buf. Returns buf; a value that does
 * not fit is cut (only LIST and long strings can be that long).
 */
const char *tmt_conf_format_value(const struct tmt_conf_key *k, const void *field, char *buf,
                                  size_t len);

/* Parses text into the field of k, freeing what it held. 0, or TMT_E* with a reason in why. */
int tmt_conf_set_value(const struct tmt_conf_key *k, void *field, const char *value, char *why,
                       size_t why_len);

/* Frees what the field of k holds and zeroes it. */
void tmt_conf_clear_value(const struct tmt_conf_key *k, void *field);

/* Whether two fields of k hold the same value. */
bool tmt_conf_value_equal(const struct tmt_conf_key *k, const void *a, const void *b);

#endif
