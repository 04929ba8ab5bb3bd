/* h1_chunked.c: not written yet. */
typedef int tmt_placeholder_h1_chunked;
