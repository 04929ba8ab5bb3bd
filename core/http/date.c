/* date.c: not written yet. */
typedef int tmt_placeholder_date;
