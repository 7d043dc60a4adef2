/* range.h - the HTTP Range header (RFC 9110 14.2): the one plain byte range
 * the segment cache serves itself, and the values the relay forwards.
 *
 * Pure functions on the header's value, so the unit tests and a fuzz target
 * call them directly. */
#ifndef MR_RANGE_H
#define MR_RANGE_H

#include <stdbool.h>

/* The part of an object to send: bytes [from, to]. */
struct mr_range {
    long long from, to;
    bool partial;            /* a 206 of [from, to]; false: the whole object */
};

/* The range `value` (a Range header's value, or NULL when there is none)
 * asks of an object of `len` bytes (-1: not known yet).  MR_OK with
 * out->partial false and out = [0, len - 1] ([0, -1] when len is unknown)
 * for the whole object: no value, not "bytes=", several ranges, anything
 * malformed (RFC 9110: an invalid Range is ignored), and what cannot be
 * told without the length (an open end or a suffix on an unknown length),
 * and a suffix of an empty object (there is no [from, to] to send).
 * MR_OK with out->partial true: 0 <= from <= to, to < len when the length
 * is known, to < LLONG_MAX when it is not.  MR_ERANGE when the range cannot
 * be satisfied (it starts at or past the end, or is the suffix "-0"): 416. */
int mr_range_parse(const char *value, long long len, struct mr_range *out);

/* Whether a Range value is worth forwarding upstream as it is: "bytes="
 * and a short list of numbers, '-', ',' and spaces. */
bool mr_range_forwardable(const char *value);

#endif
