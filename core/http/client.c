/* client.c: not written yet. */
typedef int tmt_placeholder_client;
