/* upstream.h - HTTP requests to upstreams with libcurl.
 *
 * One struct mr_upstream per thread wraps one curl easy handle, so
 * connections to an upstream are kept and reused by that thread; all
 * handles share a DNS cache and TLS sessions through one share handle.
 * Two ways to ask: fetch-to-buffer with a size cap (API answers, manifests)
 * and stream-to-sink (bytes go on as they arrive; a sink that fails stops
 * the transfer at once).
 *
 * Every connection passes the SSRF guard (netguard.h) on the address
 * actually connected, on every redirect hop, unless the configuration
 * allows private networks; only http and https are spoken; proxies from the
 * environment are ignored.  Every redirect hop is vetted before it is
 * followed (mr_upstream_redirect_refused): never from https to http, and
 * only to the hosts a request names when it names some.  Every request
 * header passes one filter (mr_header_refused): nothing that
 * frames the message or the connection is ever sent from a list.
 */
#ifndef MR_UPSTREAM_H
#define MR_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/limits.h"
#include "core/str.h"

struct mr_conf;
struct mr_upstream;

/* Once per process, before threads start; MR_OK or MR_EINTERNAL. */
int mr_upstream_global_init(void);
void mr_upstream_global_cleanup(void);

/* NULL when out of memory. */
struct mr_upstream *mr_upstream_new(const struct mr_conf *conf);
void mr_upstream_free(struct mr_upstream *u);

struct mr_upstream_req {
    const char *method;             /* NULL: GET.  HEAD asks for no body. */
    const char *url;
    const struct mr_header *headers;
    size_t nheaders;
    const void *body;               /* for POST */
    size_t body_len;
    size_t max_bytes;               /* fetch: body cap; 0 = upstream.max_fetch_bytes */
    long timeout_ms;                /* whole transfer; 0 = fetch_timeout_ms for
                                       fetch, none for stream */
    bool no_redirects;              /* answer 3xx as it is */
    const struct mr_strlist *redirect_hosts;
                                    /* not NULL: a redirect may lead only to a
                                       host on this list (mr_url_host_listed);
                                       any other is MR_EBLOCKED */
    bool decode;                    /* ask for and undo gzip/br (fetch only) */
};

struct mr_upstream_head {
    long status;
    struct mr_header headers[MR_UPSTREAM_HEADERS_MAX];
    size_t nheaders;                /* of the final response, names as sent */
    const char *final_url;          /* after redirects */
    long long content_length;       /* -1 when unknown */
};

/* A header of the response by name (case-insensitive), or NULL. */
const char *mr_upstream_header(const struct mr_upstream_head *h, const char *name);

struct mr_sink {
    /* Called once before the first body byte (or at the end when there is
     * none); non-zero stops the transfer and is returned. */
    int (*head)(void *arg, const struct mr_upstream_head *h);
    /* Body bytes; non-zero stops the transfer and is returned. */
    int (*data)(void *arg, const void *p, size_t n);
    /* Optional: asked about once a second while the transfer runs, also
     * when no bytes move (a client that left while the upstream stalls);
     * non-zero stops the transfer and is returned. */
    int (*check)(void *arg);
    void *arg;
    /* Optional: takes the rest of the body straight from the connection's
     * socket (struct mr_out's move: MR_OK with *moved, 0 when nothing
     * waits or fd is at its end; MR_EUPSTREAM, MR_ECLIENT).  Offered, once
     * data() has had everything libcurl read, when the body is plain
     * HTTP/1 with no transfer coding, its status 2xx, and either at least
     * upstream.splice_min_bytes of its Content-Length are left or it has
     * none (it ends when the upstream closes).  The upstream's timeouts and
     * check() still apply; the connection is not kept afterwards. */
    int (*move)(void *arg, int fd, size_t n, size_t *moved);
};

/* The whole body into resp_body (capped; MR_ETOOBIG past the cap); the
 * response head into *head (strings in the arena).  Any HTTP status is
 * MR_OK: the caller judges it.  Errors: MR_EBLOCKED (guard or scheme),
 * MR_EREFUSED, MR_ETIMEOUT, MR_EUPSTREAM. */
int mr_upstream_fetch(struct mr_upstream *u, struct mr_arena *a,
                      const struct mr_upstream_req *req,
                      struct mr_upstream_head *head, struct mr_buf *body);

/* Streams the response through the sink.  *head is filled as for fetch. */
int mr_upstream_stream(struct mr_upstream *u, struct mr_arena *a,
                       const struct mr_upstream_req *req,
                       struct mr_upstream_head *head, const struct mr_sink *sink);

/* For handing a transfer to someone else (nginx offload): resolves the
 * URL's host now, picks the first address the SSRF guard allows, and gives
 * the URL with that address in place of the host (*ip_url), the Host header
 * value (*host, with a non-default port) and the TLS server name (*sni).
 * MR_EBLOCKED when no address is allowed (*why says why), MR_EUPSTREAM when
 * the name does not resolve, MR_EINVAL for a URL that is not http(s). */
int mr_upstream_pin(const struct mr_conf *conf, struct mr_arena *a, const char *url,
                    char **ip_url, char **host, char **sni, const char **why);

/* For a URL something else will fetch (yt-dlp): whether every address its
 * host resolves to now passes the SSRF guard.  MR_OK; MR_EBLOCKED (*why
 * says why) when any does not; MR_EUPSTREAM when the name does not
 * resolve; MR_EINVAL for a URL that is not http(s).  The other program
 * resolves again, and follows its own redirects: this closes the direct
 * way in, not every way (docs/security.md). */
int mr_upstream_vet(const struct mr_conf *conf, struct mr_arena *a, const char *url,
                    const char **why);
/* Whether a redirect from `from` (the absolute URL that answered) to
 * `location` (its Location, resolved against `from` as libcurl does) may be
 * followed: NULL when it may, else why not, for the error message (static
 * or in the arena).  Refused: a Location that is not a URL, a scheme other
 * than http and https, https to http, and, when `hosts` is not NULL, a host
 * not on it. */
const char *mr_upstream_redirect_refused(struct mr_arena *a, const char *from,
                                         const char *location, const struct mr_strlist *hosts);

/* What went wrong last, for logs and error messages ("" when nothing). */
const char *mr_upstream_error(const struct mr_upstream *u);

#endif
