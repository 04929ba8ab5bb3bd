/* metrics.c: not written yet. */
typedef int tmt_placeholder_metrics;
