/* str.c - helpers for length-carrying strings. */
#include "core/str.h"

#include <openssl/sha.h>

#include <stdint.h>
#include <strings.h>

bool mr_str_eq(struct mr_str a, struct mr_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool mr_str_eq_c(struct mr_str a, const char *b)
{
    return mr_str_eq(a, mr_str_c(b));
}

bool mr_str_caseeq_c(struct mr_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || strncasecmp(a.p, b, n) == 0);
}

bool mr_str_starts_c(struct mr_str a, const char *prefix)
{
    size_t n = strlen(prefix);
    return a.len >= n && memcmp(a.p, prefix, n) == 0;
}

struct mr_str mr_str_trim(struct mr_str s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

struct mr_str mr_str_cut(struct mr_str s, char sep, struct mr_str *head)
{
    const char *at = s.len ? memchr(s.p, sep, s.len) : NULL;
    if (!at) {
        *head = s;
        return MR_STR_NULL;
    }
    *head = (struct mr_str){ s.p, (size_t)(at - s.p) };
    return (struct mr_str){ at + 1, s.len - (size_t)(at - s.p) - 1 };
}

bool mr_str_to_long(struct mr_str s, long min, long max, long *out)
{
    unsigned long long mag = 0, limit = (unsigned long long)__LONG_MAX__;
    size_t i = 0;
    bool neg = false;
    long v;

    if (s.len && s.p[0] == '-') {
        neg = true;
        limit += 1;   /* -LONG_MIN is one more than LONG_MAX */
        i = 1;
    }
    if (i == s.len || s.len - i > 19)
        return false;
    for (; i < s.len; i++) {
        unsigned d = (unsigned)(s.p[i] - '0');
        if (d > 9 || mag > (limit - d) / 10)
            return false;
        mag = mag * 10 + d;
    }
    if (neg)
        v = mag == limit ? (-__LONG_MAX__ - 1) : -(long)mag;
    else
        v = (long)mag;
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long mr_str_unescape(struct mr_str s, char *dst, size_t dstlen, bool plus_space)
{
    size_t o = 0;

    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= s.len)
                return -1;
            hi = hexval(s.p[i + 1]);
            lo = hexval(s.p[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= dstlen)
            return -1;
        dst[o++] = c;
    }
    if (o >= dstlen)
        return -1;
    dst[o] = '\0';
    return (long)o;
}

void mr_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

void mr_hash_hex(const char *s, char out[33])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)s, strlen(s), md);
    mr_hex(md, 16, out);
}

bool mr_http_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

size_t mr_http_token_span(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && mr_http_tchar((unsigned char)s[i]))
        i++;
    return i;
}

bool mr_http_token(const char *s, size_t len)
{
    return len && mr_http_token_span(s, len) == len;
}

/* Byte tests eight bytes at a time (SWAR): a high bit set in a byte of
 * the result when a byte of x is below n (n <= 0x80), or equal to c.  The
 * bits themselves may be wrong above a byte that matches, but the result
 * is not 0 exactly when some byte matches.  Playlists go through this
 * once per line. */
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static inline uint64_t bytes_below(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t bytes_equal(uint64_t x, unsigned char c)
{
    return bytes_below(x ^ (ONES * c), 1);
}

static inline uint64_t word_ctl(uint64_t x)
{
    return bytes_below(x, 0x20) | bytes_equal(x, 0x7f);
}

/* A tail shorter than a word is read as the last eight bytes (some read
 * twice, which an existence test does not mind). */
bool mr_str_has_ctl(const char *s, size_t n)
{
    uint64_t acc = 0, x;
    size_t i;

    if (n < 8) {
        for (i = 0; i < n; i++)
            if (mr_is_ctl((unsigned char)s[i]))
                return true;
        return false;
    }
    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&x, s + i, 8);
        acc |= word_ctl(x);
    }
    if (i < n) {
        memcpy(&x, s + n - 8, 8);
        acc |= word_ctl(x);
    }
    return acc != 0;
}

bool mr_str_has_ctl_but_tab(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != '\t' && mr_is_ctl((unsigned char)s[i]))
            return true;
    return false;
}
