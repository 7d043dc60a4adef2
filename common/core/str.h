/* str.h - strings with lengths, for everything parsed out of input. */
#ifndef MR_STR_H
#define MR_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct mr_str {
    const char *p;
    size_t len;
};

/* One HTTP header, as configured or as received. */
struct mr_header {
    const char *name;
    const char *value;
};

struct mr_headers {
    struct mr_header *v;
    size_t n;
};

struct mr_strlist {
    char **v;
    size_t n;
};

#define MR_STR(lit) ((struct mr_str){ (lit), sizeof(lit) - 1 })
#define MR_STR_NULL ((struct mr_str){ NULL, 0 })

static inline struct mr_str mr_str_c(const char *s)
{
    return (struct mr_str){ s, s ? strlen(s) : 0 };
}

bool mr_str_eq(struct mr_str a, struct mr_str b);
bool mr_str_eq_c(struct mr_str a, const char *b);
bool mr_str_caseeq_c(struct mr_str a, const char *b);
bool mr_str_starts_c(struct mr_str a, const char *prefix);
/* Strips spaces and tabs at both ends. */
struct mr_str mr_str_trim(struct mr_str s);
/* Splits at the first `sep`: *head gets what is before it, the return value
 * what is after it (MR_STR_NULL with p == NULL when sep is absent; then
 * *head is the whole string). */
struct mr_str mr_str_cut(struct mr_str s, char sep, struct mr_str *head);
/* Parses a whole decimal number in [min, max]; false on anything else. */
bool mr_str_to_long(struct mr_str s, long min, long max, long *out);
/* p[0..n) as 2n lowercase hex digits and a NUL, into out. */
void mr_hex(const unsigned char *p, size_t n, char *out);
/* The first 16 bytes of SHA-256(s) in hex (cache keys): out[33]. */
void mr_hash_hex(const char *s, char out[33]);
/* Percent-decodes into dst (capacity dstlen, at least s.len + 1 is enough);
 * '+' becomes a space when plus_space. Returns the decoded length, or -1 on a
 * malformed escape or when the result would contain a NUL byte. */
long mr_str_unescape(struct mr_str s, char *dst, size_t dstlen, bool plus_space);

/* Control bytes (RFC 5234 CTL): below 0x20, and 0x7f.  NUL is one. */
static inline bool mr_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}
/* Visible ASCII (RFC 5234 VCHAR): 0x21 to 0x7e. */
static inline bool mr_is_vchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f;
}
/* Whether s[0..len) holds a control byte (a NUL inside counts): URLs,
 * names and values that go into a header line, a log line or a key. */
bool mr_str_has_ctl(const char *s, size_t len);
/* The same but a horizontal tab is allowed (an HTTP field value,
 * RFC 9110 5.5). */
bool mr_str_has_ctl_but_tab(const char *s, size_t len);

/* HTTP tokens (RFC 9110 5.6.2): method names, header field names, media
 * types and their parameter names.  A tchar is an ASCII letter or digit
 * or one of !#$%&'*+-.^_`|~ (so never a control byte, space, separator,
 * NUL or a byte above 0x7e). */
bool mr_http_tchar(unsigned char c);
/* How many bytes of s[0..len) from the start are tchars. */
size_t mr_http_token_span(const char *s, size_t len);
/* Whether s[0..len) is a token: at least one byte, every one a tchar. */
bool mr_http_token(const char *s, size_t len);

#endif
