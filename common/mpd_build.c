/* mpd_build.c - a static on-demand DASH MPD from a provider's representations.
 *
 * Two passes: everything in the spec is checked first (so a refusal never
 * leaves half an XML tree behind and the build pass can fail only on memory),
 * then the tree is made with libxml2's tree API and serialized once.  Values
 * go through xmlNewProp / xmlNewTextChild, which escape on output; nothing is
 * pasted into markup by hand.
 */
#include "mpd_build.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <libxml/tree.h>

#include "error.h"
#include "limits.h"

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
 * C0 controls, no U+FFFE/U+FFFF), DEL refused too.  libxml2 escapes markup
 * but writes such bytes through, and the result would not parse. */
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
            if (c < 0x20 || c == 0x7f)
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

/* ---- the tree ---------------------------------------------------------------- */

/* Carries the first failure, so the build reads as a list of what it makes. */
struct tree {
    int rc;
};

static xmlNodePtr el(struct tree *t, xmlNodePtr parent, const char *name)
{
    xmlNodePtr n;

    if (t->rc || !parent)
        return NULL;
    /* No namespace given: the child inherits the MPD's default one. */
    n = xmlNewChild(parent, NULL, BAD_CAST name, NULL);
    if (!n)
        t->rc = MR_ENOMEM;
    return n;
}

static void attr(struct tree *t, xmlNodePtr n, const char *name, const char *value)
{
    if (t->rc || !n)
        return;
    if (!xmlNewProp(n, BAD_CAST name, BAD_CAST value))
        t->rc = MR_ENOMEM;
}

static void attr_long(struct tree *t, xmlNodePtr n, const char *name, long v)
{
    char b[32];

    snprintf(b, sizeof b, "%ld", v);
    attr(t, n, name, b);
}

static void base_url(struct tree *t, xmlNodePtr rep, const char *url)
{
    if (t->rc || !rep)
        return;
    /* xmlNewTextChild escapes; xmlNewChild would take '&' as markup. */
    if (!xmlNewTextChild(rep, NULL, BAD_CAST "BaseURL", BAD_CAST url))
        t->rc = MR_ENOMEM;
}

static void add_rep(struct tree *t, xmlNodePtr set, const struct mr_mpd_rep *r, bool video,
                    size_t i, bool set_mime)
{
    char idb[32], fr[64];
    xmlNodePtr rep, sb;
    size_t k;

    rep = el(t, set, "Representation");
    attr(t, rep, "id", rep_id(r, video, i, idb, sizeof idb));
    if (!set_mime)
        attr(t, rep, "mimeType", r->mime_type);
    if (present(r->codecs))
        attr(t, rep, "codecs", r->codecs);
    attr_long(t, rep, "bandwidth", r->bandwidth);
    if (r->width > 0)
        attr_long(t, rep, "width", r->width);
    if (r->height > 0)
        attr_long(t, rep, "height", r->height);
    if (present(r->frame_rate) && frame_rate(r->frame_rate, fr, sizeof fr))
        attr(t, rep, "frameRate", fr);
    if (present(r->sar))
        attr(t, rep, "sar", r->sar);
    if (r->audio_sampling_rate > 0)
        attr_long(t, rep, "audioSamplingRate", r->audio_sampling_rate);
    base_url(t, rep, r->base_url);
    for (k = 0; k < r->nbackup; k++)
        base_url(t, rep, r->backup_urls[k]);
    sb = el(t, rep, "SegmentBase");
    attr(t, sb, "indexRange", r->index_range);
    attr(t, el(t, sb, "Initialization"), "range", r->init_range);
}

/* One AdaptationSet of reps[idx[0..n)]. */
static void add_set(struct tree *t, xmlNodePtr period, unsigned set_id, bool video,
                    const struct mr_mpd_rep *reps, const size_t *idx, size_t n)
{
    const char *lang = reps[idx[0]].lang;
    bool same_mime = true;
    long maxw = 0, maxh = 0;
    xmlNodePtr set;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct mr_mpd_rep *r = &reps[idx[i]];
        same_mime = same_mime && !strcmp(r->mime_type, reps[idx[0]].mime_type);
        maxw = r->width > maxw ? r->width : maxw;
        maxh = r->height > maxh ? r->height : maxh;
    }
    set = el(t, period, "AdaptationSet");
    attr_long(t, set, "id", (long)set_id);
    attr(t, set, "contentType", video ? "video" : "audio");
    if (!video && present(lang))
        attr(t, set, "lang", lang);
    if (same_mime)
        attr(t, set, "mimeType", reps[idx[0]].mime_type);
    attr(t, set, "segmentAlignment", "true");
    attr(t, set, "subsegmentAlignment", "true");
    attr(t, set, "subsegmentStartsWithSAP", "1");
    attr(t, set, "startWithSAP", "1");
    if (video && maxw > 0)
        attr_long(t, set, "maxWidth", maxw);
    if (video && maxh > 0)
        attr_long(t, set, "maxHeight", maxh);
    for (i = 0; i < n; i++)
        add_rep(t, set, &reps[idx[i]], video, idx[i], same_mime);
}

static bool same_lang(const char *a, const char *b)
{
    if (!present(a) || !present(b))
        return present(a) == present(b);
    return !strcasecmp(a, b);
}

static int build(const struct mr_mpd_spec *s, const char *dur, const char *minbuf,
                 xmlDocPtr *docp)
{
    struct tree t = { MR_OK };
    size_t idx[MR_MPD_BUILD_MAX_REPS];
    bool done[MR_MPD_BUILD_MAX_REPS] = { false };
    unsigned set_id = 0;
    xmlNodePtr root, period;
    xmlNsPtr ns;
    xmlDocPtr doc;
    size_t i, j, n;

    *docp = doc = xmlNewDoc(BAD_CAST "1.0");
    if (!doc)
        return MR_ENOMEM;
    root = xmlNewDocNode(doc, NULL, BAD_CAST "MPD", NULL);
    if (!root)
        return MR_ENOMEM;
    xmlDocSetRootElement(doc, root);
    ns = xmlNewNs(root, BAD_CAST MPD_NS, NULL);
    if (!ns)
        return MR_ENOMEM;
    xmlSetNs(root, ns);
    attr(&t, root, "profiles", MPD_PROFILE);
    attr(&t, root, "type", "static");
    attr(&t, root, "mediaPresentationDuration", dur);
    attr(&t, root, "minBufferTime", minbuf);
    period = el(&t, root, "Period");
    attr(&t, period, "id", "0");
    attr(&t, period, "start", "PT0S");

    if (s->nvideo) {
        for (i = 0; i < s->nvideo; i++)
            idx[i] = i;
        add_set(&t, period, set_id++, true, s->video, idx, s->nvideo);
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
        add_set(&t, period, set_id++, false, s->audio, idx, n);
    }
    return t.rc;
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
    xmlChar *mem = NULL;
    xmlDocPtr doc = NULL;
    int rc, size = 0;

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
    rc = build(s, dur, minbuf, &doc);
    if (rc)
        goto fail;
    xmlDocDumpFormatMemoryEnc(doc, &mem, &size, "UTF-8", 1);
    if (!mem || size <= 0) {
        rc = MR_ENOMEM;
        goto fail;
    }
    rc = mr_buf_append(out, mem, (size_t)size);
    if (rc == MR_ETOOBIG)
        *why = "MPD too big";
fail:
    if (rc == MR_ENOMEM)
        *why = "out of memory";
    xmlFree(mem);
    xmlFreeDoc(doc);
    return rc;
}
