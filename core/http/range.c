/* range.c: not written yet. */
typedef int tmt_placeholder_range;
