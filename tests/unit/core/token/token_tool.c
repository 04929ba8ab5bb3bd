/*
 * token_tool.c: tmt-token-tool, a command-line face of token.h for check_vectors.py, which
 * checks our signer and verifier against python3-jwt. Built for the tests only.
 *
 *   tmt-token-tool sign KID:KEYHEX NAME=VALUE...
 *       NAME is iss, sub, iat, exp, nbf, prefix, dev or lease. Prints the token and a newline;
 *       exit status 1 and the error on stderr when tmt_token_sign fails.
 *   tmt-token-tool verify KID:KEYHEX[,KID:KEYHEX...] NOW SKEW TOKEN [PATH]
 *       Prints verdict=NAME (vectors.json's names); for OK also kid=, iat=, exp=, nbf= lines and
 *       iss, sub, dev, lease and prefix in hexadecimal (iss_hex=...), since they may hold any
 *       UTF-8. With PATH, an OK token whose prefix does not cover PATH gives
 *       verdict=PATH_OUTSIDE.
 *
 *   tmt-token-tool batch
 *       Reads commands from stdin, one per line, as the arguments above separated by tabs
 *       ("verify\tKID:KEYHEX\t..."), and answers each with its output then a line "end"; a
 *       failing command prints its message and "error=STATUS" on stdout before "end". A
 *       checker then starts one process, not one per command.
 *
 * Exit status 2 for a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmt/err.h"
#include "tmt/token.h"
#include "token_names.h"

#define MAX_KEYS 8
#define MAX_ARGS 16

/* Where error messages go: stderr, or stdout in batch mode. */
static FILE *err_out;

static int usage(void)
{
    fprintf(err_out, "usage: tmt-token-tool sign KID:KEYHEX NAME=VALUE...\n"
                     "       tmt-token-tool verify KID:KEYHEX[,KID:KEYHEX...] NOW SKEW TOKEN "
                     "[PATH]\n");
    return 2;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    *v = (int64_t)x;
    return 0;
}

/* "KID:HEX" into k; -1 if it does not parse or does not fit. */
static int parse_key(const char *s, size_t len, struct tmt_token_key *k)
{
    memset(k, 0, sizeof(*k));
    const char *colon = memchr(s, ':', len);
    if (colon == NULL || (size_t)(colon - s) > TMT_TOKEN_KID_MAX)
        return -1;
    memcpy(k->kid, s, (size_t)(colon - s));
    const char *hex = colon + 1;
    size_t hl = len - (size_t)(hex - s);
    if (hl % 2 != 0 || hl / 2 > TMT_TOKEN_SECRET_MAX)
        return -1;
    for (size_t i = 0; i < hl / 2; i++) {
        int a = tmt_hex_value((unsigned char)hex[2 * i]);
        int b = tmt_hex_value((unsigned char)hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return -1;
        k->secret[i] = (unsigned char)(a * 16 + b);
    }
    k->secret_len = hl / 2;
    return 0;
}

static int set_str(char *dst, size_t size, const char *v)
{
    if (strlen(v) >= size)
        return -1;
    strcpy(dst, v);
    return 0;
}

static int cmd_sign(int argc, char **argv)
{
    struct tmt_token_key k;
    if (argc < 3 || parse_key(argv[2], strlen(argv[2]), &k) != 0)
        return usage();
    struct tmt_token_claims c;
    memset(&c, 0, sizeof(c));
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return usage();
        *eq = '\0';
        const char *n = argv[i], *v = eq + 1;
        int rc;
        if (strcmp(n, "iss") == 0)
            rc = set_str(c.iss, sizeof(c.iss), v);
        else if (strcmp(n, "sub") == 0)
            rc = set_str(c.sub, sizeof(c.sub), v);
        else if (strcmp(n, "dev") == 0)
            rc = set_str(c.dev, sizeof(c.dev), v);
        else if (strcmp(n, "lease") == 0)
            rc = set_str(c.lease, sizeof(c.lease), v);
        else if (strcmp(n, "prefix") == 0)
            rc = set_str(c.prefix, sizeof(c.prefix), v);
        else if (strcmp(n, "iat") == 0)
            rc = parse_i64(v, &c.iat);
        else if (strcmp(n, "exp") == 0)
            rc = parse_i64(v, &c.exp);
        else if (strcmp(n, "nbf") == 0)
            rc = parse_i64(v, &c.nbf);
        else
            rc = -1;
        if (rc != 0) {
            fprintf(err_out, "tmt-token-tool: bad claim '%s'\n", n);
            return 2;
        }
    }
    char tok[TMT_TOKEN_MAX + 1];
    long n = tmt_token_sign(&k, &c, tok, sizeof(tok));
    if (n < 0) {
        fprintf(err_out, "tmt-token-tool: %s\n", tmt_strerror((int)n));
        return 1;
    }
    printf("%s\n", tok);
    return 0;
}

static void print_hex(const char *name, const char *s)
{
    printf("%s_hex=", name);
    for (; *s != '\0'; s++)
        printf("%02x", (unsigned char)*s);
    printf("\n");
}

static int cmd_verify(int argc, char **argv)
{
    if (argc < 6 || argc > 7)
        return usage();
    struct tmt_token_key keys[MAX_KEYS];
    size_t nk = 0;
    const char *s = argv[2];
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        if (nk == MAX_KEYS || parse_key(s, len, &keys[nk]) != 0)
            return usage();
        nk++;
        s += len;
        if (*s == ',')
            s++;
    }
    int64_t now, skew;
    if (parse_i64(argv[3], &now) != 0 || parse_i64(argv[4], &skew) != 0)
        return usage();
    struct tmt_token_claims c;
    struct tmt_slice tok = {argv[5], strlen(argv[5])};
    enum tmt_token_verdict v = tmt_token_verify(keys, nk, tok, now, skew, &c);
    if (v == TMT_TOKEN_OK && argc == 7 &&
        !tmt_token_path_ok(&c, (struct tmt_slice){argv[6], strlen(argv[6])}))
        v = TMT_TOKEN_PATH_OUTSIDE;
    printf("verdict=%s\n", token_verdict_name(v));
    if (v == TMT_TOKEN_OK) {
        printf("kid=%s\niat=%" PRId64 "\nexp=%" PRId64 "\nnbf=%" PRId64 "\n", c.kid, c.iat, c.exp,
               c.nbf);
        print_hex("iss", c.iss);
        print_hex("sub", c.sub);
        print_hex("dev", c.dev);
        print_hex("lease", c.lease);
        print_hex("prefix", c.prefix);
    }
    return 0;
}

static int run(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "sign") == 0)
        return cmd_sign(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "verify") == 0)
        return cmd_verify(argc, argv);
    return usage();
}

static int batch(void)
{
    static char line[4 * TMT_TOKEN_MAX];
    err_out = stdout;
    while (fgets(line, sizeof(line), stdin) != NULL) {
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        char *argv[MAX_ARGS + 1] = {"tmt-token-tool"};
        int argc = 1;
        for (char *p = line; p != NULL && argc < MAX_ARGS;) {
            argv[argc++] = p;
            p = strchr(p, '\t');
            if (p != NULL)
                *p++ = '\0';
        }
        argv[argc] = NULL;
        int rc = run(argc, argv);
        if (rc != 0)
            printf("error=%d\n", rc);
        printf("end\n");
        fflush(stdout);
    }
    return 0;
}

int main(int argc, char **argv)
{
    err_out = stderr;
    if (argc == 2 && strcmp(argv[1], "batch") == 0)
        return batch();
    return run(argc, argv);
}
