/*
 * log.c: the process logger (see log.h).
 *
 * Global state, on purpose: the sink fd and the level are set before worker threads start and
 * read atomically afterwards; the dropped-line counter is atomic because any thread may bump it.
 * Each line is built in a stack buffer and written with one write(2), so lines from different
 * threads never interleave. A sink that would block drops the line (and counts it) rather than
 * stalling an event loop.
 */
#include "tmt/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tmt/err.h"

static atomic_int log_level = TMT_LOG_INFO;
static atomic_int log_fd = 2;
static atomic_ulong log_dropped;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

enum tmt_log_level tmt_log_level(void)
{
    return (enum tmt_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

void tmt_log_set_level(enum tmt_log_level level)
{
    TMT_ASSERT(level >= TMT_LOG_ERROR && level <= TMT_LOG_DEBUG);
    atomic_store(&log_level, (int)level);
}

int tmt_log_level_parse(const char *s, enum tmt_log_level *out)
{
    for (size_t i = 0; i < TMT_ARRAY_LEN(level_names); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum tmt_log_level)i;
            return TMT_OK;
        }
    }
    return TMT_EINVAL;
}

const char *tmt_log_level_name(enum tmt_log_level level)
{
    if ((unsigned)level < TMT_ARRAY_LEN(level_names))
        return level_names[level];
    return "?";
}

int tmt_log_set_fd(int fd)
{
    return atomic_exchange(&log_fd, fd);
}

unsigned long tmt_log_dropped(void)
{
    return atomic_load(&log_dropped);
}

/* Appends s to buf[*len..cap), escaping quotes, backslashes and control bytes. */
static void append_quoted(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = *len;
    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    *len = n;
}

void tmt_log_vwrite(enum tmt_log_level level, const char *mod, const char *msg, const char *fields,
                    va_list ap)
{
    char line[TMT_LOG_LINE_MAX];
    size_t cap = sizeof(line) - 1; /* room for the newline */
    size_t n = 0;

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n += strftime(line, cap, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, cap - n, ".%03ldZ level=%s mod=%s msg=\"", ts.tv_nsec / 1000000,
                          tmt_log_level_name(level), mod);
    if (n > cap)
        n = cap;
    append_quoted(line, cap, &n, msg);
    if (n < cap)
        line[n++] = '"';
    if (fields != NULL && fields[0] != '\0' && n + 1 < cap) {
        line[n++] = ' ';
        int k = vsnprintf(line + n, cap - n, fields, ap);
        if (k > 0)
            n += (size_t)k;
        else
            n--; /* the fields came out empty: no trailing space */
        if (n >= cap) {
            n = cap;
            memcpy(line + n - 3, "...", 3);
        }
    }
    line[n++] = '\n';

    int fd = atomic_load_explicit(&log_fd, memory_order_relaxed);
    ssize_t w;
    do {
        w = write(fd, line, n);
    } while (w < 0 && errno == EINTR);
    if (w != (ssize_t)n)
        atomic_fetch_add(&log_dropped, 1);
}

void tmt_log_write(enum tmt_log_level level, const char *mod, const char *msg, const char *fields,
                   ...)
{
    va_list ap;
    va_start(ap, fields);
    tmt_log_vwrite(level, mod, msg, fields, ap);
    va_end(ap);
}
