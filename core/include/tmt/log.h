/*
 * log.h: one line per event, `key=value` fields.
 *
 *   ts=2026-11-22T19:49:03.120Z level=info mod=config msg="reloaded" file=node.conf
 *
 * The level is checked before any formatting (the macro does it), so a debug line costs one load
 * and a compare when debug is off. Lines are formatted into a stack buffer and written with one
 * write(2) so concurrent writers never interleave within a line; a line that does not fit is cut
 * and ends in "...". Per-request records go to the access log, not here.
 *
 * The sink and the level are process-global (set before threads start; the level is read
 * atomically). Default: stderr, level info.
 */
#ifndef TMT_LOG_H
#define TMT_LOG_H

#include <stdarg.h>

#include "tmt/base.h"

enum tmt_log_level {
    TMT_LOG_ERROR = 0,
    TMT_LOG_WARN = 1,
    TMT_LOG_INFO = 2,
    TMT_LOG_DEBUG = 3,
};

#define TMT_LOG_LINE_MAX 2048

/* The current level; lines above it are skipped. */
enum tmt_log_level tmt_log_level(void);
void tmt_log_set_level(enum tmt_log_level level);

/* Parses "error", "warn", "info" or "debug". Returns 0 or TMT_EINVAL. */
int tmt_log_level_parse(const char *s, enum tmt_log_level *out) TMT_MUST_CHECK;
const char *tmt_log_level_name(enum tmt_log_level level);

/*
 * Sends log lines to fd (not closed by the logger). Returns the previous fd. Lines are written
 * with a single write(2); a short or failed write drops the line and counts it.
 */
int tmt_log_set_fd(int fd);

/* Lines dropped because the sink failed or would block. */
unsigned long tmt_log_dropped(void);

/*
 * Writes one line: `msg` is quoted, then `fields` (already `k=v k2=v2`, may be NULL or empty) is
 * appended after formatting with the arguments. Use the tmt_log macro rather than this.
 */
void tmt_log_write(enum tmt_log_level level, const char *mod, const char *msg, const char *fields,
                   ...) TMT_PRINTF(4, 5);
void tmt_log_vwrite(enum tmt_log_level level, const char *mod, const char *msg, const char *fields,
                    va_list ap) TMT_PRINTF(4, 0);

/* tmt_log(TMT_LOG_INFO, "config", "reloaded", "file=%s", path); */
#define tmt_log(level, mod, msg, ...)                                                              \
    do {                                                                                           \
        if ((level) <= tmt_log_level())                                                            \
            tmt_log_write((level), (mod), (msg), __VA_ARGS__);                                     \
    } while (0)

#endif
