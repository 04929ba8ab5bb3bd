/*
 * Fuzz target: arbitrary bytes as a config file. The loader must never crash, read out of bounds
 * or leak; and whatever loads must dump to text that loads back to the same dump.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_test_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct conf_test *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    tmt_conf_dump(&conf_test_schema, c, f, false);
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TMT_CONF_MAX_TEXT)
        return 0;
    struct tmt_conf_src src = {TMT_CONF_SRC_TEXT, "fuzz.conf", (const char *)data, size, NULL, 0};
    struct conf_test a;
    struct tmt_conf_diag diag = {0};
    tmt_conf_init(&conf_test_schema, &a);
    if (tmt_conf_load(&conf_test_schema, &a, &src, 1, &diag) == 0) {
        char *text = dump(&a);
        struct tmt_conf_src again = {TMT_CONF_SRC_TEXT, "dump", text, strlen(text), NULL, 0};
        struct conf_test b;
        struct tmt_conf_diag diag2 = {0};
        tmt_conf_init(&conf_test_schema, &b);
        if (tmt_conf_load(&conf_test_schema, &b, &again, 1, &diag2) != 0) {
            fprintf(stderr, "dump did not load back: %s\n%s", diag2.lines[0], text);
            abort();
        }
        char *text2 = dump(&b);
        if (strcmp(text, text2) != 0) {
            fprintf(stderr, "dump changed on reload:\n%s\n---\n%s", text, text2);
            abort();
        }
        free(text2);
        free(text);
        tmt_conf_fini(&conf_test_schema, &b);
        tmt_conf_diag_fini(&diag2);
    }
    tmt_conf_fini(&conf_test_schema, &a);
    tmt_conf_diag_fini(&diag);
    return 0;
}
