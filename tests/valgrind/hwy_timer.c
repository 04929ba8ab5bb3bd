/*
 * Preloaded into tomato-shield when it runs under Valgrind (tests/proc/v00001_valgrind.py), and
 * only then.
 *
 * The shield links libavcodec, which links libjxl and so libhwy (Highway). libhwy measures its
 * timer's resolution in a static initializer, with RDTSCP when CPUID says the CPU has it. Under
 * Valgrind 3.19 CPUID is Valgrind's own (which lists RDTSCP) while its instruction decoder
 * follows the host's CPUID: on a host whose CPUID hides RDTSCP (some virtual machines) memcheck
 * stops the shield with SIGILL before main(). This definition takes the place of libhwy's (the
 * initializer calls it through the PLT); Tomato never uses libhwy's timers, and neither does the
 * H.264/AAC path of libavcodec.
 */
#include <stdint.h>

uint64_t _ZN3hwy8platform15TimerResolutionEv(void);

/* hwy::platform::TimerResolution(): ticks of the smallest measurable interval. */
uint64_t _ZN3hwy8platform15TimerResolutionEv(void)
{
    return 1;
}
