/* h1_parse.c: not written yet. */
typedef int tmt_placeholder_h1_parse;
