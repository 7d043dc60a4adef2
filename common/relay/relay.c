/* relay.c - the stream pump between an upstream and the client. */
#include "relay/relay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "app/server.h"
#include "app/stats.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/header.h"
#include "core/log.h"
#include "core/str.h"
#include "http/range.h"
#include "net/upstream.h"

/* What comes back from the upstream; everything else (hop-by-hop headers,
 * cookies, the upstream's own CORS) stays behind.  Content-Type comes back
 * through the allow-list (mr_resp_relayed). */
static const char *const pass_back[] = {
    "Content-Length", "Content-Range", "Accept-Ranges", "ETag",
    "Last-Modified", "Cache-Control", "Expires", "Content-Disposition",
    "Content-Encoding", NULL
};

/* What the client may ask the upstream for itself. */
static const char *const pass_on[] = {
    "range", "if-range", "if-none-match", "if-modified-since", NULL
};

static bool value_ok(const char *v)
{
    size_t n = strlen(v);
    return n <= 512 && !mr_str_has_ctl(v, n);
}

struct pump {
    struct mr_ctx *ctx;
    const struct mr_relay *r;
    bool playlist;                  /* the answer is an HLS playlist */
    long status;                    /* of the upstream */
    bool retry;                     /* a 403 that deserves a second try */
    bool may_retry;
    unsigned long long bytes_up;
    size_t gathered;                /* bytes waiting in the gather buffer */
    long long checked_ms;           /* last hang-up check (monotonic) */
};

static bool is_playlist_type(const char *ct)
{
    static const char *const types[] = {
        "application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl",
        "audio/x-mpegurl", NULL
    };
    if (!ct)
        return false;
    for (const char *const *t = types; *t; t++)
        if (!strncasecmp(ct, *t, strlen(*t)))
            return true;
    return false;
}

static int pump_head(void *arg, const struct mr_upstream_head *h)
{
    struct pump *p = arg;
    struct mr_response *resp = &p->ctx->resp;
    int rc;

    p->status = h->status;
    p->ctx->upstream_status = h->status;
    if (h->status == 403 && p->may_retry) {
        p->retry = true;
        return MR_EFORBIDDEN;
    }
    if (h->status >= 400 && h->status != 416)
        return MR_EUPSTREAM;
    if (h->status >= 300 && h->status < 400 && h->status != 304)
        return MR_EUPSTREAM;       /* a redirect curl did not follow */

    if (p->r->playlists_back && h->status / 100 == 2 &&
        is_playlist_type(mr_upstream_header(h, "Content-Type"))) {
        p->playlist = true;
        return MR_EBUSY;
    }
    mr_resp_status(resp, (int)h->status);
    if ((rc = mr_resp_relayed(resp, mr_upstream_header(h, "Content-Type"))))
        return rc;
    for (const char *const *name = pass_back; *name; name++) {
        const char *v = mr_upstream_header(h, *name);
        if (v && (rc = mr_resp_set_header(resp, *name, v)) && rc != MR_EINVAL)
            return rc;
    }
    if (p->r->members_only && (rc = mr_relay_members_only(resp)))
        return rc;
    /* Bytes as they come, even behind a buffering web server. */
    if ((rc = mr_resp_set_header(resp, "X-Accel-Buffering", "no")))
        return rc;
    /* The client sees the head now, not when a buffer fills. */
    if (mr_resp_send_headers(resp) || mr_resp_flush(resp))
        return MR_ECLIENT;
    return MR_OK;
}

/* libcurl hands the body over in pieces of at most 16 KiB (it cuts every
 * read into CURL_MAX_WRITE_SIZE slices).  Written one by one, that is a
 * FastCGI record and a system call per 16 KiB; gathered into a buffer and
 * written 128 KiB at a time it is an eighth of both.  Bytes never wait
 * long: a short piece (the end of what one read brought), the progress
 * callback (after each round of reads, and about once a second when idle)
 * and the end of the transfer all push out what is gathered. */
#define GATHER_SIZE (128 * 1024)
#define CURL_PIECE 16384

/* The thread's gather buffer lives as long as the thread (one per request
 * would be an mmap and a munmap each: 128 KiB is malloc's threshold); the
 * key's destructor frees it when the thread ends. */
static _Thread_local char *gather;
static pthread_key_t gather_key;
static pthread_once_t gather_once = PTHREAD_ONCE_INIT;

static void gather_key_make(void)
{
    if (pthread_key_create(&gather_key, free))
        mr_error("relay: no thread-specific key for the gather buffer");
}

static char *gather_buf(void)
{
    if (gather)
        return gather;
    pthread_once(&gather_once, gather_key_make);
    gather = malloc(GATHER_SIZE);
    if (gather && pthread_setspecific(gather_key, gather)) {
        free(gather);           /* no key: it could not be freed at the end */
        gather = NULL;
    }
    return gather;
}

static int push(struct pump *p)
{
    struct mr_response *resp = &p->ctx->resp;
    int rc;

    if (!p->gathered)
        return MR_OK;
    rc = mr_resp_write(resp, gather, p->gathered);
    p->gathered = 0;
    /* Small pushes went through libfcgi's buffer: flush them on. */
    if (rc || mr_resp_flush(resp))
        return MR_ECLIENT;
    return MR_OK;
}

static int pump_data(void *arg, const void *data, size_t n)
{
    struct pump *p = arg;

    p->bytes_up += n;
    if (!gather_buf())
        return MR_ENOMEM;
    if (p->gathered + n > GATHER_SIZE) {
        int rc = push(p);
        if (rc)
            return rc;
    }
    if (n >= GATHER_SIZE) {
        /* Larger than the buffer: straight through. */
        if (mr_resp_write(&p->ctx->resp, data, n) || mr_resp_flush(&p->ctx->resp))
            return MR_ECLIENT;
        return MR_OK;
    }
    memcpy(gather + p->gathered, data, n);
    p->gathered += n;
    if (n < CURL_PIECE || p->gathered + CURL_PIECE > GATHER_SIZE)
        return push(p);
    return MR_OK;
}

/* The rest of a plain-HTTP body, spliced from the upstream's socket to the
 * client (upstream.h, fcgi_io.c): what was gathered goes first. */
static int pump_move(void *arg, int fd, size_t n, size_t *moved)
{
    struct pump *p = arg;
    int rc = push(p);

    *moved = 0;
    if (rc)
        return rc;
    rc = mr_resp_move(&p->ctx->resp, fd, n, moved);
    p->bytes_up += *moved;
    return rc;
}

/* Whether the client left is asked of the socket at most every 200 ms:
 * curl calls this after every round of reads. */
#define HANGUP_CHECK_MS 200

static int pump_check(void *arg)
{
    struct pump *p = arg;
    long long ms = mr_clock_mono_ms();

    if (ms - p->checked_ms >= HANGUP_CHECK_MS) {
        p->checked_ms = ms;
        if (mr_resp_client_gone(&p->ctx->resp))
            return MR_ECLIENT;
    }
    return push(p);
}

int mr_relay_headers(struct mr_ctx *ctx, const struct mr_relay *r, bool with_referer,
                     bool client_conditionals, struct mr_header **out, size_t *n,
                     bool *had_referer)
{
    size_t max = r->policy.n + 4, k = 0;
    struct mr_header *v = mr_arena_calloc(ctx->arena, max, sizeof(*v));

    if (!v)
        return MR_ENOMEM;
    *had_referer = false;
    for (size_t i = 0; i < r->policy.n; i++) {
        const struct mr_header *h = &r->policy.v[i];
        bool ref = !strcasecmp(h->name, "Referer") || !strcasecmp(h->name, "Origin");
        if (mr_header_refused(h->name, h->value, true))
            continue;
        if (ref) {
            *had_referer = true;
            if (!with_referer)
                continue;
        }
        v[k++] = *h;
    }
    for (const char *const *name = pass_on; client_conditionals && *name; name++) {
        const char *val = mr_request_header(&ctx->req, *name);
        if (!val || !value_ok(val))
            continue;
        if (!strcmp(*name, "range") && !mr_range_forwardable(val))
            continue;   /* RFC 9110: an invalid Range is ignored */
        v[k].name = *name;
        v[k].value = val;
        k++;
    }
    *out = v;
    *n = k;
    return MR_OK;
}

/* nginx offload: the bytes move inside nginx (contrib/nginx's internal
 * location /_mediarelay_offload); this process only decides where from.
 * The upstream's host is resolved and vetted here and nginx is handed the
 * address, so it cannot be pointed anywhere the guard refuses (no DNS
 * rebinding between the check and the connect). */
static int offload(struct mr_ctx *ctx, const struct mr_relay *r)
{
    static const char *const policy_names[] = { "Referer", "Origin", "User-Agent", "Cookie" };
    struct mr_response *resp = &ctx->resp;
    struct mr_stats_req st = { r->stats_kind, r->stats_id, 0, 0, false };
    char *ip_url, *host, *sni;
    const char *why, *v;
    int rc;

    rc = mr_upstream_pin(ctx->conf, ctx->arena, r->url, &ip_url, &host, &sni, &why);
    if (rc == MR_EBLOCKED)
        return mr_resp_error(resp, rc, "upstream address refused: %s", why ? why : "none allowed");
    if (rc == MR_EUPSTREAM)
        return mr_resp_error(resp, rc, "cannot resolve the upstream's host");
    if (rc)
        return mr_resp_error(resp, rc, "the upstream URL is not usable");
    if ((rc = mr_resp_set_header(resp, "X-Accel-Redirect", "/_mediarelay_offload")) ||
        (rc = mr_resp_set_header(resp, "X-Accel-Buffering", "no")) ||
        (rc = mr_resp_set_header(resp, "X-Mediarelay-Upstream", ip_url)) ||
        (rc = mr_resp_set_header(resp, "X-Mediarelay-Host", host)) ||
        (rc = mr_resp_set_header(resp, "X-Mediarelay-Sni", sni)))
        return rc;
    for (size_t i = 0; i < sizeof(policy_names) / sizeof(policy_names[0]); i++) {
        const char *val = NULL;
        char name[64];
        for (size_t k = 0; k < r->policy.n; k++)
            if (!strcasecmp(r->policy.v[k].name, policy_names[i]) &&
                !mr_header_refused(r->policy.v[k].name, r->policy.v[k].value, true))
                val = r->policy.v[k].value;
        if (!val && !strcmp(policy_names[i], "User-Agent"))
            val = ctx->conf->upstream.user_agent;
        snprintf(name, sizeof(name), "X-Mediarelay-%s", policy_names[i]);
        if (val && (rc = mr_resp_set_header(resp, name, val)))
            return rc;
    }
    /* The answer nginx gives is its own: hand it this request's CORS. */
    if ((v = mr_resp_get_header(resp, "Access-Control-Allow-Origin")) &&
        (rc = mr_resp_set_header(resp, "X-Mediarelay-Cors-Origin", v)))
        return rc;
    if ((v = mr_resp_get_header(resp, "Access-Control-Allow-Credentials")) &&
        (rc = mr_resp_set_header(resp, "X-Mediarelay-Cors-Credentials", v)))
        return rc;
    if (st.kind && st.id)
        mr_stats_record(ctx->store, &st);   /* bytes are nginx's to count */
    mr_resp_send_headers(resp);
    return MR_OK;
}

int mr_relay_members_only(struct mr_response *resp)
{
    int rc;

    if ((rc = mr_resp_set_header(resp, "Cache-Control", "private")) ||
        (rc = mr_resp_set_header(resp, "X-Accel-Expires", "0")))
        return rc;
    return MR_OK;
}

bool mr_relay_link_expired(long status)
{
    return status == 401 || status == 403 || status == 404 || status == 410;
}

int mr_relay_answer_status(struct mr_ctx *ctx, long status)
{
    if (status >= 400)      /* the upstream's own error status, passed on honestly */
        return mr_resp_error_status(&ctx->resp, (int)status, "upstream_status",
                                    mr_arena_printf(ctx->arena, "the upstream answered %ld %s",
                                                    status, mr_http_reason((int)status)));
    return mr_resp_error(&ctx->resp, MR_EUPSTREAM, "the upstream answered %ld with no "
                         "usable redirect", status);
}

int mr_relay_run(struct mr_ctx *ctx, const struct mr_relay *r, enum mr_outcome *out)
{
    struct mr_upstream_head head;
    struct mr_upstream_req req;
    struct pump p = { .ctx = ctx, .r = r };
    struct mr_sink sink = { .head = pump_head, .data = pump_data, .check = pump_check,
                            .arg = &p,
                            .move = mr_resp_can_move(&ctx->resp) ? pump_move : NULL };
    struct mr_stats_req st = { r->stats_kind, r->stats_id, 0, 0, false };
    bool had_referer;
    int rc;

    *out = MR_ANSWERED;
    /* Offload unless nginx came back because the upstream redirected: that
     * request is relayed here, where redirects are followed and vetted.  A
     * provider's link that may have expired is not offloaded either: nginx
     * would pass its 403 on, where the relay finds the link again. */
    if (!strcmp(ctx->conf->stream.offload, "nginx") && !r->expiry_back &&
        !mr_request_param(&ctx->req, "MEDIARELAY_OFFLOAD_FALLBACK"))
        return offload(ctx, r);

    memset(&req, 0, sizeof(req));
    req.url = r->url;
    req.method = ctx->resp.head_only ? "HEAD" : "GET";
    req.redirect_hosts = r->redirect_hosts;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct mr_header *hv;
        size_t hn;
        if ((rc = mr_relay_headers(ctx, r, attempt == 0, true, &hv, &hn, &had_referer)))
            return rc;
        req.headers = hv;
        req.nheaders = hn;
        p.may_retry = attempt == 0 && had_referer;
        p.retry = false;
        rc = mr_upstream_stream(ctx->up, ctx->arena, &req, &head, &sink);
        /* What the transfer left gathered goes out, whole or broken off. */
        if (ctx->resp.headers_sent && !ctx->resp.failed && push(&p) == MR_ECLIENT && !rc)
            rc = MR_ECLIENT;
        if (!(rc == MR_EFORBIDDEN && p.retry))
            break;
        mr_debug("upstream %s: 403, retrying without Referer/Origin", r->url);
    }

    st.bytes_up = p.bytes_up;
    if (rc == MR_EBUSY && p.playlist) {
        *out = MR_PLAYLIST;     /* nothing answered: the caller rewrites it */
        return MR_OK;
    }
    if (r->expiry_back && rc == MR_EUPSTREAM && !ctx->resp.headers_sent &&
        mr_relay_link_expired(p.status)) {
        *out = MR_LINK_DEAD;    /* nothing answered: the caller resolves again */
        return MR_OK;
    }
    if (rc == MR_ECLIENT) {
        /* The client left: nothing more to say, and no answer to give. */
        ctx->resp.failed = true;
        rc = MR_OK;
    } else if (rc && ctx->resp.headers_sent) {
        /* The body broke off: the client must not see a clean end. */
        mr_warn("upstream %s broke off after %llu bytes: %s", r->url, p.bytes_up,
                mr_upstream_error(ctx->up));
        ctx->resp.abort = true;
        st.upstream_error = true;
        rc = MR_OK;
    } else if (rc == MR_EUPSTREAM && p.status >= 300) {
        st.upstream_error = true;
        rc = mr_relay_answer_status(ctx, p.status);
    } else if (rc) {
        st.upstream_error = true;
        rc = mr_resp_error(&ctx->resp, rc, "%s", mr_upstream_error(ctx->up));
    }
    st.bytes_out = ctx->resp.bytes_out;
    if (st.kind && st.id)
        mr_stats_record(ctx->store, &st);
    return rc;
}
