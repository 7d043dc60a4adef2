/* url.h - URL resolution and normalization with libcurl's URL API.
 *
 * Upstream URLs are kept as the bytes the upstream gave: percent-encoding
 * and query strings are never decoded and re-encoded (a re-encoded query
 * breaks signed CDN links).  The one change: a raw space, which no valid URL
 * has, becomes %20.  What curl's parser does not do as RFC 3986
 * section 5 says (empty and fragment-only references, non-http schemes) is
 * handled here, before it is asked.
 */
#ifndef MR_URL_H
#define MR_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/str.h"

/* Resolves `ref` against the absolute `base` (RFC 3986 section 5.2):
 * relative, "./", "../" (also above the root), root-relative,
 * protocol-relative and absolute references.  The result's fragment is kept
 * (callers that do not want it use mr_url_strip_fragment).  Arena-allocated.
 * MR_EINVAL when base is not an absolute URL or the result does not parse. */
int mr_url_resolve(struct mr_arena *a, const char *base, const char *ref, char **out);

/* A base URL prepared once for resolving many references against it (the
 * URIs of one playlist).  It points into `base`, which must outlive it. */
struct mr_url_base {
    const char *url;
    size_t dir;      /* bytes of url a plain name goes after; 0: no fast path */
    bool slash;      /* and a '/' between them (a base without a path) */
};
void mr_url_base_init(struct mr_url_base *b, const char *base);

/* Whether ref is a plain relative name ("seg-1.ts?t=x": no scheme, no dot
 * segments, nothing curl would re-encode) that mr_url_resolve would resolve
 * against the base without parsing: to the base's first `dir` bytes, a '/'
 * when `slash`, then ref as it is.  When false, ask mr_url_resolve. */
bool mr_url_is_name(const struct mr_url_base *b, struct mr_str ref);

/* Normalizes an absolute http(s) URL: lowercase scheme and host, dot
 * segments removed, empty path as "/"; percent-encoding kept as written. */
int mr_url_normalize(struct mr_arena *a, const char *url, char **out);

/* True when the URL's scheme is http or https (case-insensitive). */
bool mr_url_is_http(const char *url);
/* The length of a scheme at the start of s ("https:" gives 5), 0 if none. */
size_t mr_url_scheme_len(const char *s);

/* The parts of an absolute http(s) URL, arena-allocated.  port is the
 * explicit port or the scheme's default. */
struct mr_url_parts {
    char *scheme;
    char *host;      /* lowercase; IPv6 without brackets */
    long port;
    char *path;      /* with the query, as written */
};
int mr_url_parts(struct mr_arena *a, const char *url, struct mr_url_parts *out);

/* Whether the URL's host and port are on `list`, entries in the form of
 * stream.allow_hosts: "host", "host:port", "[v6]", "[v6]:port"; the host
 * compared case-insensitively and whole (no suffix match); an entry without
 * a port allows the scheme's default port only.  False for an empty list. */
bool mr_url_host_listed(const struct mr_strlist *list, const struct mr_url_parts *u);

/* True when s holds a control byte (below 0x20, or 0x7f), which no URL has. */
bool mr_url_has_ctl(struct mr_str s);

/* Cuts a "#fragment" off (in place). */
void mr_url_strip_fragment(char *url);

#endif
