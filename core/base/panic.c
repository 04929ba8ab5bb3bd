/*
 * panic.c: what a failed assertion does. It logs the condition and where it failed, lets the
 * thread's dump hook describe the request or connection it was working on, and aborts so that a
 * core file keeps the rest.
 *
 * The hook pointer is thread-local: each worker thread says what it is busy with.
 */
#include "tmt/base.h"

#include <stdlib.h>

#include "tmt/log.h"

static _Thread_local tmt_panic_dump_fn *panic_dump_fn;
static _Thread_local void *panic_dump_arg;

void tmt_panic_set_dump(tmt_panic_dump_fn *fn, void *arg)
{
    panic_dump_fn = fn;
    panic_dump_arg = arg;
}

void tmt_panic(const char *cond, const char *func, const char *file, int line)
{
    static _Thread_local int panicking;

    if (!panicking) {
        panicking = 1;
        tmt_log_write(TMT_LOG_ERROR, "panic", "assertion failed", "cond=\"%s\" func=%s at=%s:%d",
                      cond, func, file, line);
        if (panic_dump_fn != NULL)
            panic_dump_fn(panic_dump_arg);
    }
    abort();
}
