/* clock.h - the clocks, read in one place.
 *
 * The monotonic clock measures intervals (timeouts, polls, rate windows,
 * the in-process cache's TTLs); the wall clock dates what outlives the
 * process or is compared with other machines (link expiries, cached
 * resolutions, log stamps).  Tests move both forward with
 * mr_clock_set_offset instead of sleeping.
 */
#ifndef MR_CLOCK_H
#define MR_CLOCK_H

#include <time.h>

/* CLOCK_MONOTONIC, in micro- and milliseconds. */
long long mr_clock_mono_us(void);
long long mr_clock_mono_ms(void);

/* CLOCK_REALTIME: milliseconds, and whole seconds (the second begun, as
 * time() gives). */
long long mr_clock_wall_ms(void);
time_t mr_clock_wall_s(void);

/* For tests: both clocks read `ms` later than they are (0: the real time
 * again).  Any thread may set it while others read it. */
void mr_clock_set_offset(long long ms);

#endif
