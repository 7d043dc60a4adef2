/* clock.c - the clocks, with the tests' offset. */
#include "core/clock.h"

#include <stdatomic.h>

static _Atomic long long offset_ms;

static long long read_us(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 +
           atomic_load_explicit(&offset_ms, memory_order_relaxed) * 1000;
}

long long mr_clock_mono_us(void)
{
    return read_us(CLOCK_MONOTONIC);
}

long long mr_clock_mono_ms(void)
{
    return read_us(CLOCK_MONOTONIC) / 1000;
}

long long mr_clock_wall_ms(void)
{
    return read_us(CLOCK_REALTIME) / 1000;
}

time_t mr_clock_wall_s(void)
{
    return (time_t)(read_us(CLOCK_REALTIME) / 1000000);
}

void mr_clock_set_offset(long long ms)
{
    atomic_store_explicit(&offset_ms, ms, memory_order_relaxed);
}
