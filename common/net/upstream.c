/* upstream.c - libcurl transfers: fetch-to-buffer and stream-to-sink.
 *
 * A stream's body can leave libcurl midway: once libcurl has read the head
 * of a plain HTTP/1 answer and handed over every body byte it read, the rest
 * of the body is the connection's own bytes, so the sink may take them from
 * the socket itself (struct mr_sink's move, which splices them to the
 * client).  The progress callback, which libcurl calls after each round of
 * reads, is where that happens: it keeps a duplicate of the connection's
 * socket and stops the transfer; libcurl closes its own descriptor and
 * forgets the connection, and hand_over() moves the rest under the same
 * limits (low speed, the request's timeout, the sink's check).  The socket
 * is found among the ones this file opened for libcurl by its addresses,
 * as libcurl reports no socket while a transfer runs.
 */
#include "net/upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/header.h"
#include "core/log.h"
#include "net/netguard.h"
#include "net/url.h"

/* The share handle: DNS cache and TLS sessions.  Connections are not
 * shared: libcurl 7.88 documents connection sharing between concurrent
 * threads as unsafe, and each thread's easy handle keeps its own. */
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
    (void)h;
    (void)access;
    (void)arg;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h;
    (void)arg;
    pthread_mutex_unlock(&share_locks[data]);
}

/* Whether this libcurl may hand bodies over.  What take_rest relies on
 * (each read passed on whole, in pieces of at most CURL_MAX_WRITE_SIZE,
 * nothing read ahead of what was passed on) holds for libcurl 7 and was
 * checked with 7.88; libcurl 8 rebuilt its receive path (client writers, and
 * for a while a buffer in front of the socket), so there the bodies stay
 * with libcurl until that is checked too. */
static bool can_splice;

int mr_upstream_global_init(void)
{
    const curl_version_info_data *v;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return MR_EINTERNAL;
    v = curl_version_info(CURLVERSION_NOW);
    can_splice = v && v->version_num >= 0x073e00 && v->version_num < 0x080000;
    if (!can_splice)
        mr_info("libcurl %s: relayed bodies are not spliced (checked with libcurl 7 only)",
                v ? v->version : "?");
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    share = curl_share_init();
    if (!share)
        return MR_EINTERNAL;
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return MR_OK;
}

void mr_upstream_global_cleanup(void)
{
    if (share) {
        curl_share_cleanup(share);
        share = NULL;
    }
    curl_global_cleanup();
}

/* Sockets one handle's connections can hold at once: its connection cache
 * (libcurl's default of 5) and a transfer's own. */
#define SOCKS_MAX 16

struct mr_upstream {
    CURL *h;
    const struct mr_conf *conf;
    char errbuf[CURL_ERROR_SIZE];
    char msg[CURL_ERROR_SIZE + 64];
    const char *blocked;            /* why the guard refused, this transfer */
    int socks[SOCKS_MAX];           /* opened by open_socket, not yet closed; -1 */

    /* Per transfer. */
    const char *url;
    struct mr_arena *arena;
    struct mr_upstream_head *head;
    const struct mr_sink *sink;
    struct mr_buf *body;
    size_t max_bytes;
    bool head_done;
    bool is_head;
    bool coded;                     /* the response has a Transfer-Encoding */
    int sink_rc;
    long long body_bytes;           /* through on_data */
    int rest_fd;                    /* the connection's socket, duplicated, once
                                       the body's rest is handed over; -1 */
    long long rest_len;             /* its bytes; -1: until the upstream closes */
    bool rest_refused;              /* can_hand_over said no after the head: it
                                       will not change its mind */
    bool rest_broken;               /* libcurl passed on bytes after the hand-over */
    bool follow;                    /* redirects are followed */
    const struct mr_strlist *redirect_hosts;
    long hop_status;                /* of the response whose head is coming in */
    const char *hop_url;            /* the URL last requested (prereq) */
    const char *refused;            /* why a redirect was not followed */
};

struct mr_upstream *mr_upstream_new(const struct mr_conf *conf)
{
    struct mr_upstream *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->h = curl_easy_init();
    if (!u->h) {
        free(u);
        return NULL;
    }
    u->conf = conf;
    u->rest_fd = -1;
    for (int i = 0; i < SOCKS_MAX; i++)
        u->socks[i] = -1;
    return u;
}

void mr_upstream_free(struct mr_upstream *u)
{
    if (!u)
        return;
    curl_easy_cleanup(u->h);
    free(u);
}

const char *mr_upstream_error(const struct mr_upstream *u)
{
    return u->msg;
}

const char *mr_upstream_header(const struct mr_upstream_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (!strcasecmp(h->headers[i].name, name))
            return h->headers[i].value;
    return NULL;
}

/* The guard's verdict on one address: NULL when it may be reached. */
static const char *guard(const struct mr_conf *conf, const struct sockaddr *sa, socklen_t len)
{
    const struct mr_strlist *ok = &conf->upstream.allow_networks;
    const char *why;

    if (conf->upstream.allow_private_networks || !(why = mr_netguard_check(sa, len)))
        return NULL;
    for (size_t i = 0; i < ok->n; i++)
        if (mr_netguard_match(sa, len, ok->v[i]))
            return NULL;
    return why;
}

/* ---- what may be sent, where a redirect may go ----------------------------- */

const char *mr_upstream_redirect_refused(struct mr_arena *a, const char *from,
                                         const char *location, const struct mr_strlist *hosts)
{
    struct mr_url_parts to;
    const char *why = NULL;
    char *url = NULL;
    CURLU *h = curl_url();

    if (!h)
        return "out of memory";
    /* The flags libcurl's own redirect follows with (lib/transfer.c,
     * Curl_follow), and any scheme, to say which one is refused. */
    if (curl_url_set(h, CURLUPART_URL, from, CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE) ||
        curl_url_set(h, CURLUPART_URL, location,
                     CURLU_NON_SUPPORT_SCHEME | CURLU_URLENCODE | CURLU_ALLOW_SPACE) ||
        curl_url_get(h, CURLUPART_URL, &url, 0) || !url)
        why = "the upstream redirected to something that is not a URL";
    else if (!mr_url_is_http(url))
        why = "the upstream redirected to a scheme other than http and https";
    else if (!strncasecmp(from, "https:", 6) && strncasecmp(url, "https:", 6))
        why = "the upstream redirected from https to http";
    else if (mr_url_parts(a, url, &to))
        why = "the upstream redirected to something that is not a URL";
    else if (hosts && !mr_url_host_listed(hosts, &to) &&
             !(why = mr_arena_printf(a, "the upstream redirected to %s%s%s:%ld, a host not "
                                     "on the allow-list", strchr(to.host, ':') ? "[" : "",
                                     to.host, strchr(to.host, ':') ? "]" : "", to.port)))
        why = "the upstream redirected to a host not on the allow-list";
    curl_free(url);
    curl_url_cleanup(h);
    return why;
}

/* Vets the redirect a 3xx head announces, before libcurl follows it: false
 * (and u->refused) stops the transfer. */
static bool hop_ok(struct mr_upstream *u, const char *location)
{
    char *from = NULL;

    if (curl_easy_getinfo(u->h, CURLINFO_EFFECTIVE_URL, &from) || !from) {
        u->refused = "cannot tell where a redirect comes from";
        return false;
    }
    u->refused = mr_upstream_redirect_refused(u->arena, from, location, u->redirect_hosts);
    return !u->refused;
}

/* ---- callbacks ------------------------------------------------------------ */

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct mr_upstream *u = arg;
    const char *why;
    int fd;

    (void)purpose;
    if ((why = guard(u->conf, &addr->addr, addr->addrlen))) {
        u->blocked = why;
        return CURL_SOCKET_BAD;
    }
    fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    for (int i = 0; fd >= 0 && i < SOCKS_MAX; i++)
        if (u->socks[i] < 0) {
            u->socks[i] = fd;
            break;
        }
    return fd;
}

/* Before each request is sent, the first and every redirect: the URL
 * libcurl asks for, vetted against the one before (mr_upstream_redirect_refused). */
static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct mr_upstream *u = arg;
    char *url = NULL;

    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    if (curl_easy_getinfo(u->h, CURLINFO_EFFECTIVE_URL, &url) || !url) {
        u->refused = "cannot tell which URL is asked for";
        return CURL_PREREQFUNC_ABORT;
    }
    if (u->hop_url && strcmp(u->hop_url, url) &&
        (u->refused = mr_upstream_redirect_refused(u->arena, u->hop_url, url,
                                                   u->redirect_hosts)))
        return CURL_PREREQFUNC_ABORT;
    if (!(u->hop_url = mr_arena_strdup(u->arena, url)))
        return CURL_PREREQFUNC_ABORT;
    return CURL_PREREQFUNC_OK;
}

static int close_socket(void *arg, curl_socket_t fd)
{
    struct mr_upstream *u = arg;

    for (int i = 0; i < SOCKS_MAX; i++)
        if (u->socks[i] == fd)
            u->socks[i] = -1;
    return close(fd);
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct mr_upstream *u = arg;
    struct mr_upstream_head *h = u->head;
    size_t len = size * n, end = len;
    const char *colon;

    if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
        /* A new response (after a redirect or a 100): forget the last. */
        const char *sp = memchr(p, ' ', len);
        h->nheaders = 0;
        u->coded = false;
        u->hop_status = 0;
        for (size_t i = sp ? (size_t)(sp - p) + 1 : len; i < len && p[i] >= '0' && p[i] <= '9'
             && u->hop_status < 1000; i++)
            u->hop_status = u->hop_status * 10 + (p[i] - '0');
        return len;
    }
    while (end && (p[end - 1] == '\r' || p[end - 1] == '\n'))
        end--;
    if (!end)
        return len;
    colon = memchr(p, ':', end);
    /* A redirect libcurl is about to follow (every 3xx with a Location but
     * a 304) is vetted here, before it connects anywhere; the prereq
     * callback checks the URL libcurl then asks for as well. */
    if (u->follow && colon && colon - p == 8 && !strncasecmp(p, "Location", 8) &&
        u->hop_status >= 300 && u->hop_status < 400 && u->hop_status != 304) {
        struct mr_str v = mr_str_trim((struct mr_str){ colon + 1, end - 9 });
        char *loc = mr_arena_strndup(u->arena, v.p, v.len);
        if (!loc || !hop_ok(u, loc))
            return 0;   /* CURLE_WRITE_ERROR */
    }
    /* Noted even past the header cap: a coded body is never handed over. */
    if (colon && colon - p == 17 && !strncasecmp(p, "Transfer-Encoding", 17))
        u->coded = true;
    if (!colon || colon == p || h->nheaders == MR_UPSTREAM_HEADERS_MAX)
        return len;   /* folded, malformed or too many: dropped */
    {
        struct mr_str v = mr_str_trim((struct mr_str){ colon + 1, end - (size_t)(colon - p) - 1 });
        char *name = mr_arena_strndup(u->arena, p, (size_t)(colon - p));
        char *value = mr_arena_strndup(u->arena, v.p, v.len);
        if (!name || !value)
            return 0;
        h->headers[h->nheaders].name = name;
        h->headers[h->nheaders].value = value;
        h->nheaders++;
    }
    return len;
}

static void fill_head(struct mr_upstream *u)
{
    char *url = NULL;
    curl_off_t cl = -1;
    long status = 0;

    curl_easy_getinfo(u->h, CURLINFO_RESPONSE_CODE, &status);
    u->head->status = status;
    if (curl_easy_getinfo(u->h, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url)
        u->head->final_url = mr_arena_strdup(u->arena, url);
    if (curl_easy_getinfo(u->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK)
        u->head->content_length = cl;
}

static int deliver_head(struct mr_upstream *u)
{
    if (u->head_done)
        return 0;
    u->head_done = true;
    fill_head(u);
    if (u->sink && u->sink->head)
        return u->sink->head(u->sink->arg, u->head);
    return 0;
}

/* ---- handing the rest of a body over ------------------------------------- */

/* Whether the bytes still to come on the connection are the body's own and
 * worth a connection that will not be kept; *len: how many (-1: until the
 * upstream closes). */
static bool can_hand_over(struct mr_upstream *u, long long *len)
{
    const struct mr_upstream_head *h = u->head;
    long min = u->conf->upstream.splice_min_bytes, version = 0;
    char *scheme = NULL;

    if (!can_splice || !u->sink || !u->sink->move || !min || !u->head_done || u->is_head ||
        h->status < 200 || h->status > 299 || h->status == 204)
        return false;
    /* Chunked or otherwise coded: the socket's bytes are not the body's. */
    if (u->coded)
        return false;
    /* TLS: they are records only libcurl can read. */
    if (curl_easy_getinfo(u->h, CURLINFO_SCHEME, &scheme) != CURLE_OK || !scheme ||
        strcasecmp(scheme, "http"))
        return false;
    if (curl_easy_getinfo(u->h, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
        (version != CURL_HTTP_VERSION_1_0 && version != CURL_HTTP_VERSION_1_1))
        return false;
    if (h->content_length < 0) {
        *len = -1;
        return true;
    }
    *len = h->content_length - u->body_bytes;
    return *len >= min;
}

static bool same_address(const struct sockaddr_storage *ss, const char *ip, long port)
{
    char text[INET6_ADDRSTRLEN];
    const void *addr;
    unsigned short p;

    if (ss->ss_family == AF_INET) {
        addr = &((const struct sockaddr_in *)ss)->sin_addr;
        p = ntohs(((const struct sockaddr_in *)ss)->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        addr = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        p = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    } else {
        return false;
    }
    return p == port && inet_ntop(ss->ss_family, addr, text, sizeof(text)) &&
           !strcmp(text, ip);
}

/* The socket of the transfer's connection: the one of ours with its local
 * and peer addresses, or -1. */
static int current_socket(struct mr_upstream *u)
{
    char *local = NULL, *peer = NULL;
    long local_port = 0, peer_port = 0;

    if (curl_easy_getinfo(u->h, CURLINFO_LOCAL_IP, &local) != CURLE_OK || !local ||
        curl_easy_getinfo(u->h, CURLINFO_LOCAL_PORT, &local_port) != CURLE_OK ||
        curl_easy_getinfo(u->h, CURLINFO_PRIMARY_IP, &peer) != CURLE_OK || !peer ||
        curl_easy_getinfo(u->h, CURLINFO_PRIMARY_PORT, &peer_port) != CURLE_OK)
        return -1;
    for (int i = 0; i < SOCKS_MAX; i++) {
        struct sockaddr_storage a, b;
        socklen_t al = sizeof(a), bl = sizeof(b);
        if (u->socks[i] < 0 ||
            getsockname(u->socks[i], (struct sockaddr *)&a, &al) ||
            getpeername(u->socks[i], (struct sockaddr *)&b, &bl))
            continue;
        if (same_address(&a, local, local_port) && same_address(&b, peer, peer_port))
            return u->socks[i];
    }
    return -1;
}

/* How often a stalled hand-over asks the sink's check(). */
#define CHECK_MS 200

/* The sink stopped the hand-over (rc from move() or check()). */
static int stopped(struct mr_upstream *u, int rc)
{
    u->sink_rc = rc;
    snprintf(u->msg, sizeof(u->msg), "transfer stopped");
    return rc;
}

/* Moves the rest of the body through the sink's move() until it is all
 * there (or, without a length, until the upstream closes), applying what
 * libcurl would have: the low-speed limit, the request's timeout, check(). */
static int hand_over(struct mr_upstream *u, long long deadline)
{
    const struct mr_conf *c = u->conf;
    long long left = u->rest_len, window = mr_clock_mono_ms(), window_bytes = 0;
    long long slow_ms = c->upstream.low_speed_bytes ? c->upstream.low_speed_time_s * 1000 : 0;
    bool readable = false;
    int fd = u->rest_fd, rc;

    while (left) {
        size_t want = left < 0 || left > (1LL << 30) ? (size_t)1 << 30 : (size_t)left;
        size_t moved = 0;
        long long now;

        errno = 0;
        rc = u->sink->move(u->sink->arg, fd, want, &moved);
        if (rc == MR_EUPSTREAM) {
            snprintf(u->msg, sizeof(u->msg), "reading the upstream: %s", strerror(errno));
            return rc;
        }
        if (rc)
            return stopped(u, rc);
        now = mr_clock_mono_ms();
        if (moved) {
            u->body_bytes += (long long)moved;
            window_bytes += (long long)moved;
            if (left > 0)
                left -= (long long)moved;
            readable = false;
        } else if (readable) {
            /* Readable, and nothing came: the upstream closed, or failed, or
             * the bytes were not there after all (then wait again). */
            char peek;
            ssize_t k = recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);
            readable = false;
            if (k < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(u->msg, sizeof(u->msg), "reading the upstream: %s", strerror(errno));
                return MR_EUPSTREAM;
            }
            if (k == 0 && left < 0)
                break;
            if (k == 0) {
                snprintf(u->msg, sizeof(u->msg), "the upstream closed the connection "
                         "with %lld bytes of the body to go", left);
                return MR_EUPSTREAM;
            }
        } else {
            struct pollfd p = { .fd = fd, .events = POLLIN };
            long long wait = CHECK_MS;
            if (slow_ms && window + slow_ms - now < wait)
                wait = window + slow_ms - now;
            if (deadline && deadline - now < wait)
                wait = deadline - now;
            if (wait < 0)
                wait = 0;
            if (poll(&p, 1, (int)wait) > 0)
                readable = true;
            else if (u->sink->check && (rc = u->sink->check(u->sink->arg)))
                return stopped(u, rc);
            now = mr_clock_mono_ms();
        }
        if (deadline && now >= deadline) {
            snprintf(u->msg, sizeof(u->msg), "timed out: the transfer took longer than "
                     "its limit");
            return MR_ETIMEOUT;
        }
        if (slow_ms && now - window >= slow_ms) {
            if (window_bytes < c->upstream.low_speed_bytes * c->upstream.low_speed_time_s) {
                snprintf(u->msg, sizeof(u->msg), "timed out: less than %ld bytes/s for "
                         "%ld s", c->upstream.low_speed_bytes, c->upstream.low_speed_time_s);
                return MR_ETIMEOUT;
            }
            window = now;
            window_bytes = 0;
        }
    }
    u->msg[0] = '\0';
    return MR_OK;
}

/* Takes the rest of the body from libcurl when it can be handed over:
 * keeps a duplicate of the connection's socket, for the caller to stop the
 * transfer (libcurl then closes its own descriptor) and hand_over() to go
 * on.  Only where libcurl holds no body bytes it has not passed on. */
static bool take_rest(struct mr_upstream *u)
{
    long long len;
    int fd;

    if (u->rest_fd >= 0 || u->rest_refused)
        return false;
    if (!can_hand_over(u, &len)) {
        u->rest_refused = u->head_done;   /* what is left only shrinks */
        return false;
    }
    if ((fd = current_socket(u)) < 0 || (u->rest_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        u->rest_refused = true;
        return false;
    }
    u->rest_len = len;
    if (len < 0)
        mr_debug("upstream %s: the rest of the body goes by splice", u->url);
    else
        mr_debug("upstream %s: the rest of the body (%lld bytes) goes by splice", u->url, len);
    return true;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    struct mr_upstream *u = arg;
    size_t len = size * n;
    int rc;

    if (u->rest_fd >= 0) {
        /* Bytes libcurl held when it let go: the hand-over was wrong, and
         * the body is broken rather than relayed with a hole. */
        u->rest_broken = true;
        return 0;
    }
    if ((rc = deliver_head(u))) {
        u->sink_rc = rc;
        return 0;   /* a short count makes curl stop with CURLE_WRITE_ERROR */
    }
    u->body_bytes += (long long)len;
    if (u->body) {
        if (u->body->len + len > u->max_bytes) {
            u->sink_rc = MR_ETOOBIG;
            return 0;
        }
        if ((rc = mr_buf_append(u->body, p, len))) {
            u->sink_rc = rc;
            return 0;
        }
        return len;
    }
    if (u->sink && u->sink->data && (rc = u->sink->data(u->sink->arg, p, len))) {
        u->sink_rc = rc;
        return 0;
    }
    /* libcurl cuts each read into CURL_MAX_WRITE_SIZE pieces: a shorter one
     * is the last of its read, and libcurl holds nothing after it.  (It
     * reads on while the socket has bytes before its progress callback:
     * waiting for that would leave it megabytes of a fast upstream.) */
    if (len < CURL_MAX_WRITE_SIZE && take_rest(u))
        return 0;   /* CURLE_WRITE_ERROR; hand_over() goes on */
    return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
    struct mr_upstream *u = arg;
    int rc;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    if (u->sink && u->sink->check && (rc = u->sink->check(u->sink->arg))) {
        u->sink_rc = rc;
        return 1;   /* CURLE_ABORTED_BY_CALLBACK */
    }
    /* After a round of reads libcurl has passed on all it read. */
    return take_rest(u) ? 1 : 0;
}

/* ---- transfers ------------------------------------------------------------ */

static int map_error(struct mr_upstream *u, CURLcode cc)
{
    const char *detail = u->errbuf[0] ? u->errbuf : curl_easy_strerror(cc);

    if (cc != CURLE_OK && u->refused) {
        snprintf(u->msg, sizeof(u->msg), "%s", u->refused);
        return MR_EBLOCKED;
    }
    switch (cc) {
    case CURLE_OK:
        u->msg[0] = '\0';
        return MR_OK;
    case CURLE_WRITE_ERROR:
    case CURLE_ABORTED_BY_CALLBACK:
        if (u->sink_rc) {
            snprintf(u->msg, sizeof(u->msg), "%s", u->sink_rc == MR_ETOOBIG
                     ? "upstream body larger than the limit" : "transfer stopped");
            return u->sink_rc;
        }
        break;
    case CURLE_COULDNT_CONNECT:
        if (u->blocked) {
            snprintf(u->msg, sizeof(u->msg), "upstream address refused: %s", u->blocked);
            return MR_EBLOCKED;
        }
        snprintf(u->msg, sizeof(u->msg), "connection refused: %s", detail);
        return MR_EREFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(u->msg, sizeof(u->msg), "timed out: %s", detail);
        return MR_ETIMEOUT;
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(u->msg, sizeof(u->msg), "only http and https upstreams are allowed");
        return MR_EBLOCKED;
    case CURLE_FILESIZE_EXCEEDED:
        snprintf(u->msg, sizeof(u->msg), "upstream body larger than the limit");
        return MR_ETOOBIG;
    default:
        break;
    }
    if (u->blocked) {
        snprintf(u->msg, sizeof(u->msg), "upstream address refused: %s", u->blocked);
        return MR_EBLOCKED;
    }
    snprintf(u->msg, sizeof(u->msg), "%s", detail);
    return MR_EUPSTREAM;
}

static void free_slist(void *l)
{
    curl_slist_free_all(l);
}

static int transfer(struct mr_upstream *u, struct mr_arena *a,
                    const struct mr_upstream_req *req, struct mr_upstream_head *head,
                    const struct mr_sink *sink, struct mr_buf *body)
{
    const struct mr_conf *c = u->conf;
    struct curl_slist *hl = NULL;
    CURL *h = u->h;
    bool is_head = req->method && !strcmp(req->method, "HEAD");
    bool has_ua = false;
    long timeout = req->timeout_ms;
    long long started;
    CURLcode cc;
    int rc;

    memset(head, 0, sizeof(*head));
    head->content_length = -1;
    u->url = req->url;
    u->arena = a;
    u->head = head;
    u->sink = sink;
    u->body = body;
    u->max_bytes = req->max_bytes ? req->max_bytes : (size_t)c->upstream.max_fetch_bytes;
    u->head_done = false;
    u->is_head = is_head;
    u->coded = false;
    u->sink_rc = 0;
    u->body_bytes = 0;
    u->rest_fd = -1;
    u->rest_len = 0;
    u->rest_refused = false;
    u->rest_broken = false;
    u->blocked = NULL;
    u->follow = !req->no_redirects;
    u->redirect_hosts = req->redirect_hosts;
    u->hop_status = 0;
    u->hop_url = NULL;
    u->refused = NULL;
    u->errbuf[0] = '\0';
    u->msg[0] = '\0';

    if (!req->url || !mr_url_is_http(req->url)) {
        snprintf(u->msg, sizeof(u->msg), "only http and https upstreams are allowed");
        return MR_EBLOCKED;
    }

    for (size_t i = 0; i < req->nheaders; i++) {
        const char *why = mr_header_refused(req->headers[i].name, req->headers[i].value,
                                            false);
        char *line;
        struct curl_slist *n;
        if (why) {
            /* The name is logged only when it is one (no line breaks). */
            mr_debug("upstream %s: request header %s not sent: %s", req->url,
                     why == mr_header_bad_name ? "(invalid name)" : req->headers[i].name, why);
            continue;
        }
        if (!strcasecmp(req->headers[i].name, "User-Agent"))
            has_ua = true;
        line = mr_arena_printf(a, "%s: %s", req->headers[i].name, req->headers[i].value);
        if (!line || !(n = curl_slist_append(hl, line))) {
            curl_slist_free_all(hl);
            return MR_ENOMEM;
        }
        hl = n;
    }
    if (hl && (rc = mr_arena_cleanup(a, free_slist, hl)))
        return rc;

    /* curl_easy_reset keeps the connection cache, DNS and TLS caches. */
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, req->url);
    curl_easy_setopt(h, CURLOPT_SHARE, share);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, u->errbuf);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_PROXY, "");            /* never an env proxy */
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, u);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, u);
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, u);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, req->no_redirects ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, c->upstream.max_redirects);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->upstream.connect_timeout_ms);
    if (c->upstream.low_speed_bytes && c->upstream.low_speed_time_s) {
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, c->upstream.low_speed_bytes);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->upstream.low_speed_time_s);
    }
    if (!timeout && body)
        timeout = c->upstream.fetch_timeout_ms;
    if (timeout)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(h, CURLOPT_BUFFERSIZE, c->upstream.buffer_bytes);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, u);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, u);
    if (sink && (sink->check || sink->move)) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, u);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (!has_ua)
        curl_easy_setopt(h, CURLOPT_USERAGENT, c->upstream.user_agent);
    if (hl)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (body && req->decode)
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (body && !req->decode)
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)u->max_bytes);
    if (is_head) {
        /* NOBODY, not a custom method: else curl waits for a body. */
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (req->method && strcmp(req->method, "POST"))
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    } else if (req->method && strcmp(req->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
    }

    started = mr_clock_mono_ms();
    cc = curl_easy_perform(h);
    if (u->rest_fd >= 0 && u->rest_broken) {
        snprintf(u->msg, sizeof(u->msg), "libcurl passed on body bytes after it let the "
                 "connection go");
        mr_warn("upstream %s: %s", req->url, u->msg);
        rc = MR_EUPSTREAM;
        close(u->rest_fd);
        u->rest_fd = -1;
    } else if (u->rest_fd >= 0) {
        rc = (cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_WRITE_ERROR) && !u->sink_rc
             ? hand_over(u, timeout ? started + timeout : 0) : map_error(u, cc);
        close(u->rest_fd);
        u->rest_fd = -1;
    } else {
        rc = map_error(u, cc);
    }
    if (!rc)
        rc = deliver_head(u);
    else if (!u->head_done)
        fill_head(u);
    /* Nothing of this transfer may outlive it in the reused handle. */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    u->url = NULL;
    u->arena = NULL;
    u->sink = NULL;
    u->body = NULL;
    u->redirect_hosts = NULL;
    u->hop_url = NULL;
    u->refused = NULL;
    if (rc && rc != MR_ECLIENT)
        mr_debug("upstream %s: %s", req->url, u->msg);
    return rc;
}

int mr_upstream_fetch(struct mr_upstream *u, struct mr_arena *a,
                      const struct mr_upstream_req *req,
                      struct mr_upstream_head *head, struct mr_buf *body)
{
    return transfer(u, a, req, head, NULL, body);
}

int mr_upstream_stream(struct mr_upstream *u, struct mr_arena *a,
                       const struct mr_upstream_req *req,
                       struct mr_upstream_head *head, const struct mr_sink *sink)
{
    return transfer(u, a, req, head, sink, NULL);
}

int mr_upstream_vet(const struct mr_conf *conf, struct mr_arena *a, const char *url,
                    const char **why)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
    struct mr_url_parts p;
    char port[16];
    int rc;

    *why = NULL;
    if ((rc = mr_url_parts(a, url, &p)))
        return rc;
    snprintf(port, sizeof(port), "%ld", p.port);
    if (getaddrinfo(p.host, port, &hints, &res) || !res)
        return MR_EUPSTREAM;
    for (struct addrinfo *ai = res; ai && !*why; ai = ai->ai_next)
        *why = guard(conf, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(res);
    return *why ? MR_EBLOCKED : MR_OK;
}

int mr_upstream_pin(const struct mr_conf *conf, struct mr_arena *a, const char *url,
                    char **ip_url, char **host, char **sni, const char **why)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
    struct mr_url_parts p;
    char ip[INET6_ADDRSTRLEN], port[16], *hostpart;
    long defport;
    CURLU *h;
    int rc;

    *why = NULL;
    if ((rc = mr_url_parts(a, url, &p)))
        return rc;
    defport = !strcasecmp(p.scheme, "https") ? 443 : 80;
    snprintf(port, sizeof(port), "%ld", p.port);
    if (getaddrinfo(p.host, port, &hints, &res) || !res)
        return MR_EUPSTREAM;
    for (ai = res; ai; ai = ai->ai_next)
        if (!(*why = guard(conf, ai->ai_addr, ai->ai_addrlen)))
            break;
    if (!ai) {
        freeaddrinfo(res);
        return MR_EBLOCKED;
    }
    if (ai->ai_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, ip, sizeof(ip));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, ip, sizeof(ip));
    hostpart = ai->ai_family == AF_INET6 ? mr_arena_printf(a, "[%s]", ip) : mr_arena_strdup(a, ip);
    freeaddrinfo(res);
    if (!hostpart)
        return MR_ENOMEM;

    /* The same URL with the address for the host: path and query as they
     * were written. */
    h = curl_url();
    if (!h)
        return MR_ENOMEM;
    rc = MR_EINVAL;
    if (curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE)
            == CURLUE_OK &&
        curl_url_set(h, CURLUPART_HOST, hostpart, 0) == CURLUE_OK) {
        char *s = NULL;
        if (curl_url_get(h, CURLUPART_URL, &s, 0) == CURLUE_OK && s) {
            *ip_url = mr_arena_strdup(a, s);
            rc = *ip_url ? MR_OK : MR_ENOMEM;
        }
        curl_free(s);
    }
    curl_url_cleanup(h);
    if (rc)
        return rc;
    *sni = strchr(p.host, ':') ? mr_arena_printf(a, "[%s]", p.host) : p.host;
    *host = p.port == defport ? *sni : mr_arena_printf(a, "%s:%ld", *sni, p.port);
    return *host ? MR_OK : MR_ENOMEM;
}
