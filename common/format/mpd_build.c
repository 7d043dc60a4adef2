/* mpd_build.c - a static on-demand DASH MPD from a provider's representations.
 *
 * Two passes: everything in the spec is checked first (so a refusal never
 * leaves half a document behind and the build pass can fail only on memory
 * or the cap), then the document is written in one pass by a small streaming
 * writer that escapes every value.  Not libxml2: writing needs none of it,
 * and linking it here put libxml2, ICU and libstdc++ into every executable
 * (the provider registry reaches this file from all of them).
 */
#include "format/mpd_build.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/limits.h"
#include "core/str.h"

#define MPD_NS      "urn:mpeg:dash:schema:mpd:2011"
#define MPD_PROFILE "urn:mpeg:dash:profile:isoff-on-demand:2011"

/* ---- checks ---------------------------------------------------------------- */

static int refuse(const char **why, const char *msg)
{
    *why = msg;
    return MR_EINVAL;
}

static bool present(const char *s)
{
    return s && *s;
}

/* Text that XML 1.0 can carry as it is: well-formed UTF-8 (no overlong
 * forms, no surrogates, nothing past U+10FFFF) of characters XML allows (no
 * C0 controls, no U+FFFE/U+FFFF), DEL refused too.  The writer escapes
 * markup but writes such bytes through, and the result would not parse. */
static bool text_ok(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strnlen(s, max + 1), i = 0, k, len;
    uint32_t cp;

    if (n > max)
        return false;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (mr_is_ctl(c))
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
            return false;
        i += len;
    }
    return true;
}

static bool no_space(const char *s)
{
    for (; *s; s++)
        if (*s == ' ' || *s == '\t')
            return false;
    return true;
}

/* NULL when the URL is acceptable, else why not. */
static const char *url_check(const char *u, bool allow_relative)
{
    const char *p;

    if (!present(u))
        return "empty URL";
    if (!text_ok(u, MR_URL_MAX) || !no_space(u))
        return "URL too long or with control bytes, spaces or bad UTF-8";
    if (!strncasecmp(u, "http://", 7) || !strncasecmp(u, "https://", 8)) {
        p = strchr(u, ':') + 3;
        if (!*p || *p == '/' || *p == '?' || *p == '#')
            return "URL without a host";
        return NULL;
    }
    if (!allow_relative)
        return "URL is not absolute http(s)";
    /* A relative reference has no scheme: no ':' before the first '/', '?'
     * or '#' (RFC 3986 4.2).  "file:", "javascript:" and friends stay out. */
    p = u + strcspn(u, ":/?#");
    if (*p == ':')
        return "URL with a scheme other than http(s)";
    return NULL;
}

/* Up to `maxdig` decimal digits at *p; advances it.  False on none or more. */
static bool digits(const char **p, int maxdig, unsigned long long *v)
{
    int n = 0;

    *v = 0;
    while (**p >= '0' && **p <= '9') {
        if (++n > maxdig)
            return false;
        *v = *v * 10 + (unsigned long long)(**p - '0');
        (*p)++;
    }
    return n > 0;
}

/* "A-B", decimal, A <= B (a byte range of the file, both ends inclusive). */
static bool range_ok(const char *s)
{
    unsigned long long a, b;

    if (!present(s))
        return false;
    if (!digits(&s, 18, &a) || *s++ != '-' || !digits(&s, 18, &b) || *s)
        return false;
    return a <= b;
}

static unsigned long long gcd(unsigned long long a, unsigned long long b)
{
    while (b) {
        unsigned long long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* FrameRateType ("N" or "N/D", N and D > 0) into dst; a decimal "29.970"
 * becomes the reduced fraction "2997/100".  False when malformed. */
static bool frame_rate(const char *s, char *dst, size_t n)
{
    const char *p = s;
    unsigned long long num, den = 1, frac;
    int k;

    if (!digits(&p, 9, &num) || (num == 0 && *p != '.'))
        return false;
    if (*p == '/') {
        p++;
        if (!digits(&p, 9, &den) || den == 0 || *p)
            return false;
        snprintf(dst, n, "%s", s);      /* kept as given */
        return true;
    }
    if (*p == '.') {
        const char *f = ++p;
        if (!digits(&p, 6, &frac) || *p)
            return false;
        for (k = (int)(p - f); k > 0; k--) {
            num *= 10;
            den *= 10;
        }
        num += frac;
        if (num == 0)
            return false;
        frac = gcd(num, den);
        num /= frac;
        den /= frac;
    } else if (*p) {
        return false;
    }
    if (den == 1)
        snprintf(dst, n, "%llu", num);
    else
        snprintf(dst, n, "%llu/%llu", num, den);
    return true;
}

/* RatioType "W:H". */
static bool sar_ok(const char *s)
{
    unsigned long long w, h;

    return digits(&s, 9, &w) && *s++ == ':' && digits(&s, 9, &h) && !*s;
}

/* A BCP 47 tag's alphabet: letters, digits, '-'; starts with a letter. */
static bool lang_ok(const char *s)
{
    size_t i, n = strlen(s);

    if (n > 35 || !((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z'))
        return false;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (!((c | 0x20) >= 'a' && (c | 0x20) <= 'z') && !(c >= '0' && c <= '9') && c != '-')
            return false;
    }
    return true;
}

/* The Representation@id of reps[i]: its own, or "v3" / "a1" made into buf. */
static const char *rep_id(const struct mr_mpd_rep *r, bool video, size_t i, char *buf,
                          size_t n)
{
    if (present(r->id))
        return r->id;
    snprintf(buf, n, "%c%zu", video ? 'v' : 'a', i + 1);
    return buf;
}

static int check_rep(const struct mr_mpd_rep *r, bool video, bool allow_relative,
                     const char **why)
{
    char fr[64];
    size_t i;

    if (!present(r->base_url))
        return refuse(why, "representation without base_url");
    if ((*why = url_check(r->base_url, allow_relative)))
        return MR_EINVAL;
    if (r->nbackup > MR_MPD_BUILD_MAX_BACKUP)
        return refuse(why, "too many backup URLs");
    if (r->nbackup && !r->backup_urls)
        return refuse(why, "backup_urls is NULL with nbackup > 0");
    for (i = 0; i < r->nbackup; i++) {
        if ((*why = url_check(r->backup_urls[i], allow_relative)))
            return MR_EINVAL;
    }
    if (!present(r->mime_type))
        return refuse(why, "representation without mime_type");
    if (!text_ok(r->mime_type, MR_MPD_BUILD_MAX_FIELD) || !no_space(r->mime_type) ||
        strncmp(r->mime_type, video ? "video/" : "audio/", 6) != 0 || !r->mime_type[6])
        return refuse(why, video ? "video mime_type is not video/..."
                                 : "audio mime_type is not audio/...");
    if (present(r->id) && (!text_ok(r->id, MR_MPD_BUILD_MAX_FIELD) || !no_space(r->id)))
        return refuse(why, "id too long or with spaces, control bytes or bad UTF-8");
    if (present(r->codecs) && !text_ok(r->codecs, MR_MPD_BUILD_MAX_FIELD))
        return refuse(why, "codecs too long or with control bytes or bad UTF-8");
    if (r->bandwidth <= 0)
        return refuse(why, "bandwidth must be positive");
    if (r->width < 0 || r->height < 0)
        return refuse(why, "negative width or height");
    if (r->audio_sampling_rate < 0)
        return refuse(why, "negative audio_sampling_rate");
    if (present(r->frame_rate) && (strlen(r->frame_rate) > 32 ||
                                   !frame_rate(r->frame_rate, fr, sizeof fr)))
        return refuse(why, "frame_rate is not N, N/D or a decimal");
    if (present(r->sar) && !sar_ok(r->sar))
        return refuse(why, "sar is not W:H");
    if (!range_ok(r->init_range))
        return refuse(why, "init_range is not A-B with A <= B");
    if (!range_ok(r->index_range))
        return refuse(why, "index_range is not A-B with A <= B");
    if (present(r->lang) && !lang_ok(r->lang))
        return refuse(why, "lang is not a language tag");
    return MR_OK;
}

static bool seconds_ok(double v)
{
    return isfinite(v) && v >= 0 && v <= MR_MPD_BUILD_MAX_SECONDS;
}

static int check_spec(const struct mr_mpd_spec *s, const char **why)
{
    char b1[32], b2[32];
    size_t i, j, n;
    int rc;

    if (!seconds_ok(s->duration_s) || s->duration_s <= 0)
        return refuse(why, "duration_s must be > 0 and finite");
    if (!seconds_ok(s->min_buffer_s))
        return refuse(why, "min_buffer_s must be >= 0 and finite");
    if (s->nvideo + s->naudio == 0)
        return refuse(why, "no representations");
    if (s->nvideo > MR_MPD_BUILD_MAX_REPS)
        return refuse(why, "too many video representations");
    if (s->naudio > MR_MPD_BUILD_MAX_REPS)
        return refuse(why, "too many audio representations");
    if ((s->nvideo && !s->video) || (s->naudio && !s->audio))
        return refuse(why, "representation list is NULL with a nonzero count");
    for (i = 0; i < s->nvideo; i++)
        if ((rc = check_rep(&s->video[i], true, s->allow_relative, why)))
            return rc;
    for (i = 0; i < s->naudio; i++)
        if ((rc = check_rep(&s->audio[i], false, s->allow_relative, why)))
            return rc;
    /* Ids are unique in the Period, across video and audio. */
    n = s->nvideo + s->naudio;
    for (i = 1; i < n; i++) {
        bool vi = i < s->nvideo;
        const char *a = rep_id(vi ? &s->video[i] : &s->audio[i - s->nvideo], vi,
                               vi ? i : i - s->nvideo, b1, sizeof b1);
        for (j = 0; j < i; j++) {
            bool vj = j < s->nvideo;
            const char *b = rep_id(vj ? &s->video[j] : &s->audio[j - s->nvideo], vj,
                                   vj ? j : j - s->nvideo, b2, sizeof b2);
            if (!strcmp(a, b))
                return refuse(why, "repeated representation id");
        }
    }
    return MR_OK;
}

/* ---- the writer -------------------------------------------------------------- */

/* A streaming XML writer into an mr_buf: elements are opened and closed in
 * order, attributes go on the element last opened, and every value is
 * escaped on the way out.  It carries the first failure, so the build reads
 * as a list of what it makes.  The checks above have already refused what
 * XML 1.0 cannot carry; escaping the four markup characters is all that is
 * left (no "'": values are always in double quotes). */
#define XW_MAX_DEPTH 8

struct xw {
    struct mr_buf *b;
    int rc;
    int depth;
    bool pending;                      /* the last start tag is not yet closed */
    const char *names[XW_MAX_DEPTH];
};

static void put(struct xw *w, const char *p, size_t n)
{
    if (!w->rc && n)
        w->rc = mr_buf_append(w->b, p, n);
}

static void put_str(struct xw *w, const char *s)
{
    put(w, s, strlen(s));
}

static void escaped(struct xw *w, const char *s)
{
    const char *run = s;

    for (; *s; s++) {
        const char *e;
        switch (*s) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        default: continue;
        }
        put(w, run, (size_t)(s - run));
        put_str(w, e);
        run = s + 1;
    }
    put(w, run, (size_t)(s - run));
}

static void indent(struct xw *w)
{
    static const char sp[] = "\n                ";   /* 2 * XW_MAX_DEPTH */

    put(w, sp, 1 + 2 * (size_t)w->depth);
}

/* Ends a pending start tag, as the element turns out to have content. */
static void close_start(struct xw *w)
{
    if (w->pending)
        put(w, ">", 1);
    w->pending = false;
}

static void start(struct xw *w, const char *name)
{
    if (w->rc)
        return;
    if (w->depth >= XW_MAX_DEPTH) {     /* not reached: the MPD is 6 deep */
        w->rc = MR_EINTERNAL;
        return;
    }
    close_start(w);
    if (w->depth)
        indent(w);
    put(w, "<", 1);
    put_str(w, name);
    w->names[w->depth++] = name;
    w->pending = true;
}

static void attr(struct xw *w, const char *name, const char *value)
{
    if (w->rc || !w->pending)
        return;
    put(w, " ", 1);
    put_str(w, name);
    put(w, "=\"", 2);
    escaped(w, value);
    put(w, "\"", 1);
}

static void attr_long(struct xw *w, const char *name, long v)
{
    char b[32];

    snprintf(b, sizeof b, "%ld", v);
    attr(w, name, b);
}

static void end(struct xw *w)
{
    const char *name;

    if (w->rc || !w->depth)
        return;
    name = w->names[--w->depth];
    if (w->pending) {
        put(w, "/>", 2);
        w->pending = false;
    } else {
        indent(w);
        put(w, "</", 2);
        put_str(w, name);
        put(w, ">", 1);
    }
}

/* <name>text</name> on one line. */
static void text_el(struct xw *w, const char *name, const char *text)
{
    start(w, name);
    close_start(w);
    escaped(w, text);
    if (w->rc)
        return;
    w->depth--;
    put(w, "</", 2);
    put_str(w, name);
    put(w, ">", 1);
}

/* ---- the MPD ------------------------------------------------------------------ */

static void add_rep(struct xw *w, const struct mr_mpd_rep *r, bool video, size_t i,
                    bool set_mime)
{
    char idb[32], fr[64];
    size_t k;

    start(w, "Representation");
    attr(w, "id", rep_id(r, video, i, idb, sizeof idb));
    if (!set_mime)
        attr(w, "mimeType", r->mime_type);
    if (present(r->codecs))
        attr(w, "codecs", r->codecs);
    attr_long(w, "bandwidth", r->bandwidth);
    if (r->width > 0)
        attr_long(w, "width", r->width);
    if (r->height > 0)
        attr_long(w, "height", r->height);
    if (present(r->frame_rate) && frame_rate(r->frame_rate, fr, sizeof fr))
        attr(w, "frameRate", fr);
    if (present(r->sar))
        attr(w, "sar", r->sar);
    if (r->audio_sampling_rate > 0)
        attr_long(w, "audioSamplingRate", r->audio_sampling_rate);
    text_el(w, "BaseURL", r->base_url);
    for (k = 0; k < r->nbackup; k++)
        text_el(w, "BaseURL", r->backup_urls[k]);
    start(w, "SegmentBase");
    attr(w, "indexRange", r->index_range);
    start(w, "Initialization");
    attr(w, "range", r->init_range);
    end(w);
    end(w);
    end(w);
}

/* One AdaptationSet of reps[idx[0..n)]. */
static void add_set(struct xw *w, unsigned set_id, bool video, const struct mr_mpd_rep *reps,
                    const size_t *idx, size_t n)
{
    const char *lang = reps[idx[0]].lang;
    bool same_mime = true;
    long maxw = 0, maxh = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct mr_mpd_rep *r = &reps[idx[i]];
        same_mime = same_mime && !strcmp(r->mime_type, reps[idx[0]].mime_type);
        maxw = r->width > maxw ? r->width : maxw;
        maxh = r->height > maxh ? r->height : maxh;
    }
    start(w, "AdaptationSet");
    attr_long(w, "id", (long)set_id);
    attr(w, "contentType", video ? "video" : "audio");
    if (!video && present(lang))
        attr(w, "lang", lang);
    if (same_mime)
        attr(w, "mimeType", reps[idx[0]].mime_type);
    attr(w, "segmentAlignment", "true");
    attr(w, "subsegmentAlignment", "true");
    attr(w, "subsegmentStartsWithSAP", "1");
    attr(w, "startWithSAP", "1");
    if (video && maxw > 0)
        attr_long(w, "maxWidth", maxw);
    if (video && maxh > 0)
        attr_long(w, "maxHeight", maxh);
    for (i = 0; i < n; i++)
        add_rep(w, &reps[idx[i]], video, idx[i], same_mime);
    end(w);
}

static bool same_lang(const char *a, const char *b)
{
    if (!present(a) || !present(b))
        return present(a) == present(b);
    return !strcasecmp(a, b);
}

static int build(const struct mr_mpd_spec *s, const char *dur, const char *minbuf,
                 struct mr_buf *out)
{
    struct xw w = { out, MR_OK, 0, false, { NULL } };
    size_t idx[MR_MPD_BUILD_MAX_REPS];
    bool done[MR_MPD_BUILD_MAX_REPS] = { false };
    unsigned set_id = 0;
    size_t i, j, n;

    put_str(&w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    start(&w, "MPD");
    attr(&w, "xmlns", MPD_NS);          /* the default namespace of every element */
    attr(&w, "profiles", MPD_PROFILE);
    attr(&w, "type", "static");
    attr(&w, "mediaPresentationDuration", dur);
    attr(&w, "minBufferTime", minbuf);
    start(&w, "Period");
    attr(&w, "id", "0");
    attr(&w, "start", "PT0S");

    if (s->nvideo) {
        for (i = 0; i < s->nvideo; i++)
            idx[i] = i;
        add_set(&w, set_id++, true, s->video, idx, s->nvideo);
    }
    /* One set per language, in the order the languages first appear. */
    for (i = 0; i < s->naudio; i++) {
        if (done[i])
            continue;
        for (n = 0, j = i; j < s->naudio; j++) {
            if (!done[j] && same_lang(s->audio[i].lang, s->audio[j].lang)) {
                done[j] = true;
                idx[n++] = j;
            }
        }
        add_set(&w, set_id++, false, s->audio, idx, n);
    }
    end(&w);                            /* Period */
    end(&w);                            /* MPD */
    put_str(&w, "\n");
    return w.rc;
}

/* ---- public ---------------------------------------------------------------- */

int mr_mpd_build_duration(double seconds, char *dst, size_t n)
{
    char b[64];
    long long ms, h, m, sec, frac;
    int len;

    if (!seconds_ok(seconds))
        return MR_EINVAL;
    ms = (long long)(seconds * 1000.0 + 0.5);   /* >= 0; no libm in the link */
    h = ms / 3600000;
    m = ms / 60000 % 60;
    sec = ms / 1000 % 60;
    frac = ms % 1000;
    len = snprintf(b, sizeof b, "PT");
    if (h)
        len += snprintf(b + len, sizeof b - (size_t)len, "%lldH", h);
    if (m)
        len += snprintf(b + len, sizeof b - (size_t)len, "%lldM", m);
    if (sec || frac || (!h && !m)) {
        len += snprintf(b + len, sizeof b - (size_t)len, "%lld", sec);
        if (frac) {
            len += snprintf(b + len, sizeof b - (size_t)len, ".%03lld", frac);
            while (b[len - 1] == '0')
                len--;
        }
        b[len++] = 'S';
    }
    b[len] = '\0';
    if ((size_t)len + 1 > n)
        return MR_ETOOBIG;
    memcpy(dst, b, (size_t)len + 1);
    return MR_OK;
}

int mr_mpd_build(const struct mr_mpd_spec *s, struct mr_buf *out, const char **why)
{
    const char *dummy;
    char dur[32], minbuf[32];
    size_t len0;
    int rc;

    if (!why)
        why = &dummy;
    *why = NULL;
    if (!s || !out)
        return refuse(why, "no spec or no output buffer");
    if ((rc = check_spec(s, why)))
        return rc;
    if (mr_mpd_build_duration(s->duration_s, dur, sizeof dur) ||
        mr_mpd_build_duration(s->min_buffer_s > 0 ? s->min_buffer_s : MR_MPD_BUILD_MIN_BUFFER,
                              minbuf, sizeof minbuf))
        return refuse(why, "bad duration");    /* not reached: checked above */
    len0 = out->len;
    rc = build(s, dur, minbuf, out);
    if (!rc)
        return MR_OK;
    /* Leave `out` as it was: cut what this call appended. */
    out->len = len0;
    if (out->p)
        out->p[len0] = '\0';
    *why = rc == MR_ETOOBIG ? "MPD too big" : rc == MR_ENOMEM ? "out of memory" : "internal error";
    return rc;
}
