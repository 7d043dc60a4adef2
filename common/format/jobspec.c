/* jobspec.c - the pure half of media jobs: operations, ffprobe, ffmpeg
 * command lines, yt-dlp and ffmpeg progress, analyze, names.
 *
 * Everything read here is hostile (a client's body, or what yt-dlp and
 * ffprobe print about a hostile page or file), so every value is checked
 * against a closed list or a range before it reaches an argv, and every
 * string kept is valid UTF-8 of a bounded length.  Numbers written into an
 * argv are formatted from integers ("%lld.%03lld"), so no locale can turn a
 * decimal point into a comma.
 */
#include "format/jobspec.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "core/json.h"

#define OPERATIONS "trim, resize, quality, fps, format, audio_only, thumbnail"
#define TIME_HELP "a time: seconds (a number) or \"HH:MM:SS.mmm\", at most 7 days"
#define MAX_FIELD_KEY 64        /* bytes of an unknown key echoed in `field` */
#define MAX_SUB_LIST  MR_JOBS_MAX_FORMATS   /* languages kept by analyze */
#define MAX_PROBE_DURATION 1e9  /* seconds; more is taken as unknown */

static const char REPLACEMENT[] = "\xEF\xBF\xBD";   /* U+FFFD */

/* ---- small helpers ---------------------------------------------------------- */

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    if (!buf || !len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* The length of the valid UTF-8 sequence at s[0..n) (1 to 4), or 0 when
 * s[0] does not start one (overlong forms, surrogates and code points past
 * U+10FFFF are not valid). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len;

    if (!n)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        c = s[0] & 0x1Fu;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        c = s[0] & 0x0Fu;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static bool utf8_valid(const char *s, size_t n)
{
    uint32_t cp;

    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_seq((const unsigned char *)s + i, n - i, &cp)))
            return false;
    return true;
}

/* s[0..n) as valid UTF-8 without NUL into out (at most cap bytes, cut on a
 * character boundary, then a NUL): a bad byte or a NUL becomes U+FFFD.
 * Returns the length written. */
static size_t utf8_clean(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    uint32_t cp;

    for (size_t i = 0, k; i < n; i += k) {
        const char *src = s + i;
        size_t len;
        k = utf8_seq((const unsigned char *)s + i, n - i, &cp);
        if (!k || cp == 0) {
            k = 1;
            src = REPLACEMENT;
        }
        len = src == REPLACEMENT ? sizeof(REPLACEMENT) - 1 : k;
        if (o + len > cap)
            break;
        memcpy(out + o, src, len);
        o += len;
    }
    out[o] = '\0';
    return o;
}

/* A key from a client, fit to be echoed in `field`: printable ASCII but
 * quotes and backslashes, the rest as '?'. */
static void echo_key(const char *key, char *out, size_t cap)
{
    size_t i;

    for (i = 0; key[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)key[i];
        out[i] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[i] = '\0';
}

/* A decimal number as yt-dlp and ffprobe print them ("12", "104340.0",
 * "1.5e+06"): digits, an optional fraction and exponent, nothing else.
 * strtod is only given what passed that check, so no "inf", "nan", hex or
 * spaces get through. */
static bool decimal(const char *s, size_t n, double *out)
{
    char tmp[64];
    char *end;
    size_t i = 0, digits = 0;
    double v;

    if (!n || n >= sizeof(tmp))
        return false;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t e = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, e++;
        if (!e)
            return false;
    }
    if (i != n)
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    v = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* A whole decimal integer, optionally negative, of at most 18 digits. */
static bool integer(const char *s, size_t n, long long *out)
{
    long long v = 0;
    bool neg = false;
    size_t i = 0;

    if (n && s[0] == '-')
        neg = true, i++;
    if (i == n || n - i > 18)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* ---- times ------------------------------------------------------------------ */

/* min to max digits at *p (advanced past them), and no digit after them. */
static bool digits(const char **p, const char *end, size_t min, size_t max, long long *v)
{
    size_t k = 0;

    *v = 0;
    while (*p < end && **p >= '0' && **p <= '9' && k < max) {
        *v = *v * 10 + (**p - '0');
        (*p)++, k++;
    }
    return k >= min && !(*p < end && **p >= '0' && **p <= '9');
}

static int time_string(const char *s, size_t n, double *out)
{
    const char *p = s, *end = s + n;
    long long part[3], ms = 0, total;
    size_t np = 0;

    for (;;) {
        /* The first unit may have any number of digits (up to 9); one
         * after a colon has exactly two and is below 60. */
        if (!digits(&p, end, np ? 2 : 1, np ? 2 : 9, &part[np]))
            return -1;
        if (np && part[np] >= 60)
            return -1;
        np++;
        if (p < end && *p == ':' && np < 3) {
            p++;
            continue;
        }
        break;
    }
    if (p < end && *p == '.') {
        const char *f = ++p;
        long long frac;
        if (!digits(&p, end, 1, 3, &frac))
            return -1;
        for (size_t k = (size_t)(p - f); k < 3; k++)
            frac *= 10;
        ms = frac;
    }
    if (p != end)
        return -1;
    total = 0;
    for (size_t i = 0; i < np; i++)
        total = total * 60 + part[i];
    if (total > (long long)MR_JOBS_MAX_SECONDS || (total == (long long)MR_JOBS_MAX_SECONDS && ms))
        return -1;
    *out = (double)(total * 1000 + ms) / 1000.0;
    return 0;
}

int mr_jobs_time(struct json_object *v, double *out)
{
    double d;

    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t i = json_object_get_int64(v);
        if (i < 0 || i > (int64_t)MR_JOBS_MAX_SECONDS)
            return -1;
        *out = (double)i;
        return 0;
    }
    case json_type_double:
        d = json_object_get_double(v);
        if (!isfinite(d) || d < 0 || d > MR_JOBS_MAX_SECONDS)
            return -1;
        *out = d == 0 ? 0 : d;      /* no -0 */
        return 0;
    case json_type_string:
        return time_string(json_object_get_string(v), (size_t)json_object_get_string_len(v), out);
    default:
        return -1;
    }
}

/* ---- operations ------------------------------------------------------------- */

static const char *const format_names[] = {
    [MR_FMT_DEFAULT] = NULL,
    [MR_FMT_MP4] = "mp4", [MR_FMT_WEBM] = "webm", [MR_FMT_MKV] = "mkv",
    [MR_FMT_MP3] = "mp3", [MR_FMT_M4A] = "m4a", [MR_FMT_HLS] = "hls",
};

struct err {
    char *field, *msg;
    size_t fieldlen, msglen;
};

static int fail(struct err *e, const char *field, const char *msg)
{
    say(e->field, e->fieldlen, "%s", field);
    say(e->msg, e->msglen, "%s", msg);
    return -1;
}

static int fail_key(struct err *e, const char *path, const char *key, const char *msg)
{
    char k[MAX_FIELD_KEY + 1];

    echo_key(key, k, sizeof(k));
    say(e->field, e->fieldlen, "%s.%s", path, k);
    say(e->msg, e->msglen, "%s", msg);
    return -1;
}

static bool is_null(struct json_object *v)
{
    return json_object_get_type(v) == json_type_null;
}

static int parse_trim(struct json_object *t, struct mr_jobs_ops *o, struct err *e)
{
    struct json_object *dur = NULL, *end = NULL;
    double v;

    if (!json_object_is_type(t, json_type_object))
        return fail(e, "operations.trim", "an object {start, duration or end, exact}");
    o->start = 0;
    o->duration = -1;
    o->exact = true;
    json_object_object_foreach(t, key, val) {
        if (!strcmp(key, "start")) {
            if (!is_null(val) && mr_jobs_time(val, &o->start))
                return fail(e, "operations.trim.start", TIME_HELP);
        } else if (!strcmp(key, "duration")) {
            dur = is_null(val) ? NULL : val;
        } else if (!strcmp(key, "end")) {
            end = is_null(val) ? NULL : val;
        } else if (!strcmp(key, "exact")) {
            if (json_object_is_type(val, json_type_boolean))
                o->exact = json_object_get_boolean(val);
            else if (!is_null(val))
                return fail(e, "operations.trim.exact", "true (cut within a frame, re-encoding) "
                            "or false (copy, cut on a keyframe)");
        } else {
            return fail_key(e, "operations.trim", key,
                            "unknown; trim takes start, duration or end, and exact");
        }
    }
    if (dur && end)
        return fail(e, "operations.trim.end", "give trim.duration or trim.end, not both");
    if (dur) {
        if (mr_jobs_time(dur, &v) || v <= 0)
            return fail(e, "operations.trim.duration", "a duration above 0: seconds (a number) "
                        "or \"HH:MM:SS.mmm\", at most 7 days");
        o->duration = v;
    } else if (end) {
        if (mr_jobs_time(end, &v) || v <= o->start)
            return fail(e, "operations.trim.end", "a time after trim.start: seconds (a number) "
                        "or \"HH:MM:SS.mmm\", at most 7 days");
        o->duration = v - o->start;
    } else if (o->start <= 0) {
        return fail(e, "operations.trim", "nothing to trim: give a start after 0, a duration "
                    "or an end");
    }
    o->trim = true;
    return 0;
}

static int parse_dim(struct json_object *v, long max, long *out)
{
    int64_t i;

    if (is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_object_is_type(v, json_type_int))
        return -1;
    i = json_object_get_int64(v);
    if (i != 0 && (i < MR_JOBS_MIN_DIM || i > max))
        return -1;
    *out = (long)(i & ~(int64_t)1);
    return 0;
}

static int parse_resize(struct json_object *r, struct mr_jobs_ops *o, struct err *e)
{
    if (!json_object_is_type(r, json_type_object))
        return fail(e, "operations.resize", "an object {width, height}");
    json_object_object_foreach(r, key, val) {
        if (!strcmp(key, "width")) {
            if (parse_dim(val, MR_JOBS_MAX_WIDTH, &o->width))
                return fail(e, "operations.resize.width", "an integer from 16 to 7680, or 0 to "
                            "follow the height");
        } else if (!strcmp(key, "height")) {
            if (parse_dim(val, MR_JOBS_MAX_HEIGHT, &o->height))
                return fail(e, "operations.resize.height", "an integer from 16 to 4320, or 0 to "
                            "follow the width");
        } else {
            return fail_key(e, "operations.resize", key, "unknown; resize takes width and height");
        }
    }
    if (!o->width && !o->height)
        return fail(e, "operations.resize", "give a width, a height or both");
    return 0;
}

static int parse_thumbnail(struct json_object *t, struct mr_jobs_ops *o, struct err *e)
{
    static const char help[] = "true, a time into the result, or {\"at\": time}";

    o->thumbnail_at = -1;
    switch (json_object_get_type(t)) {
    case json_type_boolean:
        o->thumbnail = json_object_get_boolean(t);
        return 0;
    case json_type_int:
    case json_type_double:
    case json_type_string:
        if (mr_jobs_time(t, &o->thumbnail_at))
            return fail(e, "operations.thumbnail", help);
        o->thumbnail = true;
        return 0;
    case json_type_object: {
        json_object_object_foreach(t, key, val) {
            if (strcmp(key, "at"))
                return fail_key(e, "operations.thumbnail", key, "unknown; thumbnail takes at");
            if (!is_null(val) && mr_jobs_time(val, &o->thumbnail_at))
                return fail(e, "operations.thumbnail.at", TIME_HELP);
        }
        o->thumbnail = true;
        return 0;
    }
    default:
        return fail(e, "operations.thumbnail", help);
    }
}

int mr_jobs_ops_parse(struct json_object *ops, struct mr_jobs_ops *out,
                      char *field, size_t fieldlen, char *msg, size_t msglen)
{
    struct err e = { field, msg, fieldlen, msglen };
    struct mr_jobs_ops o = { .duration = -1, .exact = true, .crf = -1, .thumbnail_at = -1 };
    const char *video_op = NULL;

    say(field, fieldlen, "%s", "");
    say(msg, msglen, "%s", "");
    if (!json_object_is_type(ops, json_type_object))
        return fail(&e, "operations", "an object of operations: " OPERATIONS);
    json_object_object_foreach(ops, key, val) {
        if (!strcmp(key, "trim")) {
            if (!is_null(val) && parse_trim(val, &o, &e))
                return -1;
        } else if (!strcmp(key, "resize")) {
            if (!is_null(val) && parse_resize(val, &o, &e))
                return -1;
        } else if (!strcmp(key, "quality")) {
            if (is_null(val))
                continue;
            if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0 ||
                json_object_get_int64(val) > 51)
                return fail(&e, "operations.quality", "an integer CRF from 0 (best) to 51 "
                            "(smallest)");
            o.crf = (int)json_object_get_int64(val);
        } else if (!strcmp(key, "fps")) {
            double f;
            if (is_null(val))
                continue;
            if ((!json_object_is_type(val, json_type_int) &&
                 !json_object_is_type(val, json_type_double)) ||
                !isfinite(f = json_object_get_double(val)) || f <= 0 || f > MR_JOBS_MAX_FPS)
                return fail(&e, "operations.fps", "a number of frames per second above 0, "
                            "at most 240");
            o.fps = f;
        } else if (!strcmp(key, "format")) {
            const char *s;
            size_t i;
            if (is_null(val))
                continue;
            s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : "";
            for (i = MR_FMT_MP4; i <= MR_FMT_HLS; i++)
                if (!strcmp(s, format_names[i]) &&
                    strlen(s) == (size_t)json_object_get_string_len(val))
                    break;
            if (i > MR_FMT_HLS)
                return fail(&e, "operations.format", "one of mp4, webm, mkv, mp3, m4a, hls");
            o.format = (enum mr_jobs_format)i;
        } else if (!strcmp(key, "audio_only")) {
            if (json_object_is_type(val, json_type_boolean))
                o.audio_only = json_object_get_boolean(val);
            else if (!is_null(val))
                return fail(&e, "operations.audio_only", "true or false");
        } else if (!strcmp(key, "thumbnail")) {
            if (!is_null(val) && parse_thumbnail(val, &o, &e))
                return -1;
        } else {
            return fail_key(&e, "operations", key, "unknown operation; the operations are "
                            OPERATIONS);
        }
    }
    if (o.format == MR_FMT_MP3 || o.format == MR_FMT_M4A)
        o.audio_only = true;
    if (o.width || o.height)
        video_op = "operations.resize";
    else if (o.fps > 0)
        video_op = "operations.fps";
    else if (o.crf >= 0)
        video_op = "operations.quality";
    if (o.audio_only && video_op)
        return fail(&e, video_op, "resize, fps and quality work on video; audio_only (and the "
                    "mp3 and m4a formats) drop it");
    if (!o.trim && !o.width && !o.height && o.crf < 0 && o.fps <= 0 &&
        o.format == MR_FMT_DEFAULT && !o.audio_only && !o.thumbnail)
        return fail(&e, "operations", "nothing to do: give at least one of " OPERATIONS);
    if (!o.thumbnail)
        o.thumbnail_at = -1;
    *out = o;
    return 0;
}

/* Adds key: v (NULL for a JSON null) to o; on failure v is put.  False
 * only when json-c is out of memory. */
static bool put(struct json_object *o, const char *key, struct json_object *v)
{
    if (json_object_object_add(o, key, v)) {
        json_object_put(v);
        return false;
    }
    return true;
}

/* put(), where a NULL v is json-c out of memory. */
static bool put_new(struct json_object *o, const char *key, struct json_object *v)
{
    return v && put(o, key, v);
}

struct json_object *mr_jobs_ops_to_json(const struct mr_jobs_ops *ops)
{
    struct json_object *o = json_object_new_object(), *t;
    bool ok = o != NULL;

    if (ok && ops->trim) {
        ok = put_new(o, "trim", t = json_object_new_object()) &&
             put_new(t, "start", json_object_new_double(ops->start)) &&
             (ops->duration < 0 || put_new(t, "duration", json_object_new_double(ops->duration))) &&
             put_new(t, "exact", json_object_new_boolean(ops->exact));
    } else {
        ok = ok && put(o, "trim", NULL);
    }
    if (ok && (ops->width || ops->height))
        ok = put_new(o, "resize", t = json_object_new_object()) &&
             put_new(t, "width", json_object_new_int64(ops->width)) &&
             put_new(t, "height", json_object_new_int64(ops->height));
    else
        ok = ok && put(o, "resize", NULL);
    ok = ok && (ops->crf >= 0 ? put_new(o, "quality", json_object_new_int(ops->crf))
                              : put(o, "quality", NULL));
    ok = ok && (ops->fps > 0 ? put_new(o, "fps", json_object_new_double(ops->fps))
                             : put(o, "fps", NULL));
    ok = ok && ((unsigned)ops->format <= MR_FMT_HLS && format_names[ops->format]
                    ? put_new(o, "format", json_object_new_string(format_names[ops->format]))
                    : put(o, "format", NULL));
    ok = ok && put_new(o, "audio_only", json_object_new_boolean(ops->audio_only));
    if (ok && ops->thumbnail && ops->thumbnail_at >= 0)
        ok = put_new(o, "thumbnail", t = json_object_new_object()) &&
             put_new(t, "at", json_object_new_double(ops->thumbnail_at));
    else
        ok = ok && put_new(o, "thumbnail", json_object_new_boolean(ops->thumbnail));
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* ---- ffprobe ---------------------------------------------------------------- */

/* A number ffprobe prints as a string ("5.000000") or, in other versions,
 * as a number; -1 when it is neither (or "N/A"). */
static double probe_number(struct json_object *v)
{
    double d;

    switch (json_object_get_type(v)) {
    case json_type_int:
    case json_type_double:
        d = json_object_get_double(v);
        return isfinite(d) && d >= 0 ? d : -1;
    case json_type_string:
        if (decimal(json_object_get_string(v), (size_t)json_object_get_string_len(v), &d))
            return d;
        return -1;
    default:
        return -1;
    }
}

/* "30000/1001" -> 29.97; 0 for "0/0" or anything else. */
static double rational(struct json_object *v)
{
    const char *s, *slash;
    long long num, den;
    size_t n;

    if (!json_object_is_type(v, json_type_string))
        return 0;
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (!(slash = memchr(s, '/', n)) || !integer(s, (size_t)(slash - s), &num) ||
        !integer(slash + 1, n - (size_t)(slash - s) - 1, &den) || num <= 0 || den <= 0)
        return 0;
    return (double)num / (double)den;
}

/* codec_name into out (char[32]): lowercase letters, digits and '_' only,
 * "" otherwise (an unknown codec is never copied). */
static void codec_name(struct json_object *st, char *out, size_t cap)
{
    struct json_object *v;
    const char *s;
    size_t n;

    out[0] = '\0';
    if (!json_object_object_get_ex(st, "codec_name", &v) || !json_object_is_type(v, json_type_string))
        return;
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (!n || n >= cap)
        return;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return;
    memcpy(out, s, n);
    out[n] = '\0';
}

static bool disposition(struct json_object *st, const char *flag)
{
    struct json_object *d, *v;

    return json_object_object_get_ex(st, "disposition", &d) &&
           json_object_object_get_ex(d, flag, &v) &&
           json_object_is_type(v, json_type_int) && json_object_get_int64(v) != 0;
}

static long dimension(struct json_object *st, const char *key)
{
    struct json_object *v;
    int64_t i;

    if (!json_object_object_get_ex(st, key, &v) || !json_object_is_type(v, json_type_int))
        return 0;
    i = json_object_get_int64(v);
    return i > 0 && i <= 65535 ? (long)i : 0;
}

int mr_jobs_probe_parse(const char *json, size_t len, struct mr_jobs_probe *out,
                        char *msg, size_t msglen)
{
    struct json_object *root = mr_json_parse_value(json, len, MR_JOBS_JSON_DEPTH, false), *streams, *fmt, *v;
    struct mr_jobs_probe p;
    double stream_duration = -1;

    memset(&p, 0, sizeof(p));
    say(msg, msglen, "%s", "");
    if (!json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "streams", &streams) ||
        !json_object_is_type(streams, json_type_array)) {
        json_object_put(root);
        say(msg, msglen, "not ffprobe's JSON (an object with a streams array)");
        return -1;
    }
    for (size_t i = 0, n = json_object_array_length(streams); i < n; i++) {
        struct json_object *st = json_object_array_get_idx(streams, i), *type;
        const char *t;
        double d;
        if (!json_object_is_type(st, json_type_object) ||
            !json_object_object_get_ex(st, "codec_type", &type) ||
            !json_object_is_type(type, json_type_string))
            continue;
        t = json_object_get_string(type);
        if (!strcmp(t, "video") && !p.has_video && !disposition(st, "attached_pic") &&
            !disposition(st, "timed_thumbnails")) {
            p.has_video = true;
            codec_name(st, p.vcodec, sizeof(p.vcodec));
            p.width = dimension(st, "width");
            p.height = dimension(st, "height");
            p.fps = json_object_object_get_ex(st, "avg_frame_rate", &v) ? rational(v) : 0;
            if (p.fps <= 0 && json_object_object_get_ex(st, "r_frame_rate", &v))
                p.fps = rational(v);
            if (!(p.fps > 0 && p.fps <= 1000))
                p.fps = 0;
        } else if (!strcmp(t, "audio") && !p.has_audio) {
            p.has_audio = true;
            codec_name(st, p.acodec, sizeof(p.acodec));
        } else {
            continue;
        }
        if (json_object_object_get_ex(st, "duration", &v) && (d = probe_number(v)) > stream_duration)
            stream_duration = d;
    }
    if (json_object_object_get_ex(root, "format", &fmt) && json_object_is_type(fmt, json_type_object) &&
        json_object_object_get_ex(fmt, "duration", &v))
        p.duration = probe_number(v);
    if (p.duration <= 0)
        p.duration = stream_duration;
    if (!(p.duration > 0 && p.duration <= MAX_PROBE_DURATION))
        p.duration = 0;
    json_object_put(root);
    if (!p.has_video && !p.has_audio) {
        say(msg, msglen, "the file has neither video nor audio");
        return -1;
    }
    *out = p;
    return 0;
}

/* ---- the ffmpeg command lines ----------------------------------------------- */

/* Codecs each container takes as they are (docs/jobs.md); NULL: any. */
static const char *const fit_video[] = {
    [MR_FMT_MP4] = " h264 hevc av1 mpeg4 vp9 ",
    [MR_FMT_WEBM] = " vp8 vp9 av1 ",
    [MR_FMT_MKV] = NULL,
    [MR_FMT_MP3] = " ",
    [MR_FMT_M4A] = " ",
    [MR_FMT_HLS] = " h264 hevc ",
};
static const char *const fit_audio[] = {
    [MR_FMT_MP4] = " aac mp3 ac3 eac3 opus alac flac ",
    [MR_FMT_WEBM] = " opus vorbis ",
    [MR_FMT_MKV] = NULL,
    [MR_FMT_MP3] = " mp3 ",
    [MR_FMT_M4A] = " aac alac ",
    [MR_FMT_HLS] = " aac mp3 ac3 ",
};
static const char *const extension[] = {
    [MR_FMT_MP4] = "mp4", [MR_FMT_WEBM] = "webm", [MR_FMT_MKV] = "mkv",
    [MR_FMT_MP3] = "mp3", [MR_FMT_M4A] = "m4a", [MR_FMT_HLS] = "m3u8",
};

static bool fits(const char *const *table, enum mr_jobs_format f, const char *codec)
{
    const char *list = table[f], *p;
    size_t n = strlen(codec);

    if (!n || strchr(codec, ' '))
        return false;
    if (!list)
        return true;
    for (p = list; (p = strstr(p, codec)); p++)
        if (p[-1] == ' ' && p[n] == ' ')
            return true;
    return false;
}

struct cmd {
    struct mr_arena *a;
    struct mr_jobs_argv *v;
    bool bad;
};

static void arg(struct cmd *c, const char *s)
{
    if (!s || c->v->n >= MR_JOBS_MAX_ARGS) {
        c->bad = true;
        return;
    }
    c->v->v[c->v->n++] = s;
    c->v->v[c->v->n] = NULL;
}

static void args(struct cmd *c, const char *const *list)
{
    for (; *list; list++)
        arg(c, *list);
}

/* Seconds with three decimals, from an integer of milliseconds. */
static const char *seconds(struct mr_arena *a, double s)
{
    long long ms = llround(s * 1000.0);
    return mr_arena_printf(a, "%lld.%03lld", ms / 1000, ms % 1000);
}

/* The command line's head, up to and including the input. */
static void head(struct cmd *c, const char *ffmpeg, double ss, const char *input)
{
    static const char *const common[] = {
        "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-nostats",
        "-progress", "pipe:1", "-protocol_whitelist", "file", NULL
    };

    arg(c, ffmpeg);
    args(c, common);
    if (ss > 0) {
        arg(c, "-ss");
        arg(c, seconds(c->a, ss));
    }
    arg(c, "-i");
    arg(c, input);
}

/* "scale=W:H" (an omitted side as -2, which keeps the aspect ratio on an
 * even size) and "fps=F" as one -vf chain; NULL when there is none. */
static const char *filters(struct mr_arena *a, const struct mr_jobs_ops *ops, bool with_fps)
{
    char chain[96];
    size_t n = 0;

    chain[0] = '\0';
    if (ops->width || ops->height)
        n += (size_t)snprintf(chain, sizeof(chain), "scale=%ld:%ld", ops->width ? ops->width : -2,
                              ops->height ? ops->height : -2);
    if (with_fps && ops->fps > 0) {
        long long mfps = llround(ops->fps * 1000.0);
        snprintf(chain + n, sizeof(chain) - n, "%sfps=%lld.%03lld", n ? "," : "", mfps / 1000,
                 mfps % 1000);
    }
    return chain[0] ? mr_arena_strdup(a, chain) : NULL;
}

static bool name_ok(const char *base)
{
    return base && base[0] && base[0] != '.' && base[0] != '-' && !strchr(base, '/') &&
           strlen(base) <= MR_JOBS_MAX_NAME;
}

int mr_jobs_plan(struct mr_arena *a, const struct mr_jobs_ops *ops,
                 const struct mr_jobs_probe *in, const char *ffmpeg, const char *input,
                 const char *dir, const char *base, long long max_bytes,
                 struct mr_jobs_plan *out, char *msg, size_t msglen)
{
    enum mr_jobs_format fmt = ops->format;
    bool audio_only, video_ops, thumb_only, want_video, want_audio;
    double start = ops->trim ? ops->start : 0, remain = -1, expect = -1;
    struct cmd c = { a, NULL, false };
    const char *vf, *fs;

    memset(out, 0, sizeof(*out));
    say(msg, msglen, "%s", "");
    if (!ffmpeg || !input || !dir || !name_ok(base) || max_bytes <= 0 || (unsigned)fmt > MR_FMT_HLS) {
        say(msg, msglen, "bad arguments to the plan");
        return -1;
    }
    if (fmt == MR_FMT_DEFAULT)
        fmt = ops->audio_only ? MR_FMT_M4A : MR_FMT_MP4;
    audio_only = ops->audio_only || fmt == MR_FMT_MP3 || fmt == MR_FMT_M4A;
    video_ops = ops->width || ops->height || ops->fps > 0 || ops->crf >= 0;
    thumb_only = ops->thumbnail && !ops->trim && !video_ops && !audio_only &&
                 ops->format == MR_FMT_DEFAULT;

    if (ops->trim && in->duration > 0 && start >= in->duration) {
        say(msg, msglen, "the trim starts at %.3f s, past the end of the input (%.3f s)", start,
            in->duration);
        return -1;
    }
    if (audio_only && !in->has_audio) {
        say(msg, msglen, "audio is asked from an input without audio");
        return -1;
    }
    if (video_ops && !in->has_video) {
        say(msg, msglen, "resize, fps or quality is asked of an input without video");
        return -1;
    }
    if (ops->thumbnail && !in->has_video) {
        say(msg, msglen, "a thumbnail is asked of an input without video");
        return -1;
    }
    if (!thumb_only && !in->has_video && !in->has_audio) {
        say(msg, msglen, "the input has neither video nor audio");
        return -1;
    }

    if (in->duration > 0)
        remain = in->duration - start;
    if (ops->trim && ops->duration >= 0)
        expect = remain >= 0 && remain < ops->duration ? remain : ops->duration;
    else
        expect = remain;
    out->expect_s = expect > 0 ? expect : 0;
    fs = mr_arena_printf(a, "%lld", max_bytes);

    if (!thumb_only) {
        static const char *const enc_x264[] = { "-c:v", "libx264", "-preset", "veryfast", NULL };
        static const char *const enc_vp9[] = { "-c:v", "libvpx-vp9", NULL };
        static const char *const vp9_tail[] = { "-b:v", "0", "-deadline", "realtime",
                                                "-cpu-used", "8", "-row-mt", "1", NULL };
        bool reencode_all = ops->trim && ops->exact;

        want_video = !audio_only && in->has_video;
        want_audio = in->has_audio;
        out->copy_video = want_video && !video_ops && !reencode_all &&
                          fits(fit_video, fmt, in->vcodec);
        out->copy_audio = want_audio && !reencode_all && fits(fit_audio, fmt, in->acodec);

        c.v = &out->main;
        head(&c, ffmpeg, start, input);
        if (want_video) {
            arg(&c, "-map");
            arg(&c, "0:V:0?");
        }
        if (want_audio) {
            arg(&c, "-map");
            arg(&c, "0:a:0?");
        }
        if (ops->trim && ops->duration >= 0) {
            arg(&c, "-t");
            arg(&c, seconds(a, ops->duration));
        }
        if (want_video && out->copy_video) {
            arg(&c, "-c:v");
            arg(&c, "copy");
        } else if (want_video) {
            if ((vf = filters(a, ops, true))) {
                arg(&c, "-vf");
                arg(&c, vf);
            }
            args(&c, fmt == MR_FMT_WEBM ? enc_vp9 : enc_x264);
            arg(&c, "-crf");
            arg(&c, mr_arena_printf(a, "%d", ops->crf >= 0 ? ops->crf
                                             : fmt == MR_FMT_WEBM ? 32 : 23));
            if (fmt == MR_FMT_WEBM)
                args(&c, vp9_tail);
            arg(&c, "-pix_fmt");
            arg(&c, "yuv420p");
            if (fmt == MR_FMT_HLS) {
                /* x264 puts a keyframe every 250 frames: segments would be
                 * 10 s at 25 fps, not hls_time's 6. */
                arg(&c, "-force_key_frames");
                arg(&c, "expr:gte(t,n_forced*6)");
            }
        }
        if (want_audio) {
            arg(&c, "-c:a");
            if (out->copy_audio) {
                arg(&c, "copy");
            } else if (fmt == MR_FMT_WEBM) {
                arg(&c, "libopus");
            } else if (fmt == MR_FMT_MP3) {
                arg(&c, "libmp3lame");
                arg(&c, "-q:a");
                arg(&c, "2");
            } else {
                arg(&c, "aac");
            }
        }
        arg(&c, "-sn");
        arg(&c, "-dn");
        if (fmt == MR_FMT_MP4 || fmt == MR_FMT_M4A) {
            arg(&c, "-movflags");
            arg(&c, "+faststart");
        }
        /* -fs stops a file output at the cap; the hls muxer writes its
         * segments past it (ffmpeg 5.1), so the worker watches the folder. */
        arg(&c, "-fs");
        arg(&c, fs);
        if (fmt == MR_FMT_HLS) {
            static const char *const hls[] = { "-f", "hls", "-hls_time", "6",
                                               "-hls_playlist_type", "vod",
                                               "-hls_segment_filename", NULL };
            args(&c, hls);
            arg(&c, mr_arena_printf(a, "%s/seg_%%05d.ts", dir));
            out->output = "index.m3u8";
        } else {
            out->output = mr_arena_printf(a, "%s.%s", base, extension[fmt]);
        }
        arg(&c, out->output ? mr_arena_printf(a, "%s/%s", dir, out->output) : NULL);
    }

    if (ops->thumbnail) {
        double at = ops->thumbnail_at >= 0 ? ops->thumbnail_at : out->expect_s / 10;
        if (expect > 0 && at >= expect) {
            say(msg, msglen, "the thumbnail at %.3f s is past the end of the result (%.3f s)",
                at, expect);
            memset(out, 0, sizeof(*out));
            return -1;
        }
        c.v = &out->thumb;
        head(&c, ffmpeg, start + at, input);
        arg(&c, "-map");
        arg(&c, "0:V:0");
        arg(&c, "-frames:v");
        arg(&c, "1");
        if ((vf = filters(a, ops, false))) {
            arg(&c, "-vf");
            arg(&c, vf);
        }
        arg(&c, "-q:v");
        arg(&c, "2");
        arg(&c, "-update");
        arg(&c, "1");
        arg(&c, "-fs");
        arg(&c, fs);
        out->thumb_output = mr_arena_printf(a, "%s.jpg", base);
        arg(&c, out->thumb_output ? mr_arena_printf(a, "%s/%s", dir, out->thumb_output) : NULL);
        if (thumb_only)
            out->output = out->thumb_output;
    }
    if (c.bad || !fs) {
        memset(out, 0, sizeof(*out));
        say(msg, msglen, "out of memory, or too many arguments");
        return -1;
    }
    return 0;
}

/* ---- progress --------------------------------------------------------------- */

static bool starts(const char *s, size_t n, const char *prefix, size_t *skip)
{
    size_t k = strlen(prefix);

    if (n < k || memcmp(s, prefix, k))
        return false;
    *skip = k;
    return true;
}

/* A field of the progress template: -1 for NA. */
static bool na_number(const char *s, size_t n, double *out)
{
    if (n == 2 && !memcmp(s, "NA", 2)) {
        *out = -1;
        return true;
    }
    return decimal(s, n, out);
}

static long long to_ll(double d)
{
    return d >= 0 && d < 9.2e18 ? (long long)d : -1;
}

static enum mr_jobs_line progress_line(const char *s, size_t n, struct mr_jobs_ytdlp_event *ev)
{
    const char *tok[8];
    size_t len[8], nt = 0, i = 0;
    double v[8];

    while (nt < 8) {
        const char *sp = memchr(s + i, ' ', n - i);
        size_t end = sp ? (size_t)(sp - s) : n;
        tok[nt] = s + i;
        len[nt++] = end - i;
        if (end == i)
            return MR_LINE_OTHER;
        if (!sp)
            break;
        i = end + 1;
    }
    if (nt != 8 || tok[7] + len[7] != s + n || len[0] > 32)
        return MR_LINE_OTHER;
    for (i = 0; i < len[0]; i++)
        if (!((tok[0][i] >= 'a' && tok[0][i] <= 'z') || tok[0][i] == '_'))
            return MR_LINE_OTHER;
    for (i = 1; i < 8; i++)
        if (!na_number(tok[i], len[i], &v[i]))
            return MR_LINE_OTHER;
    ev->finished = len[0] == 8 && !memcmp(tok[0], "finished", 8);
    ev->bytes = to_ll(v[1]);
    ev->total = v[2] >= 0 ? to_ll(v[2]) : to_ll(v[3]);
    ev->speed = v[4];
    ev->eta_s = to_ll(v[5]);
    ev->frag_index = to_ll(v[6]);
    ev->frag_count = to_ll(v[7]);
    return MR_LINE_PROGRESS;
}

/* A JSON string (as %(...)j prints it) into ev->text. */
static enum mr_jobs_line string_line(const char *s, size_t n, enum mr_jobs_line kind,
                                     struct mr_jobs_ytdlp_event *ev)
{
    struct json_object *o = mr_json_parse_value(s, n, 1, false);
    enum mr_jobs_line r = MR_LINE_OTHER;
    const char *str;
    size_t len;

    if (!json_object_is_type(o, json_type_string))
        goto done;
    str = json_object_get_string(o);
    len = (size_t)json_object_get_string_len(o);
    if (kind == MR_LINE_TITLE) {
        utf8_clean(str, len, ev->text, MR_JOBS_MAX_STRING);
    } else {
        /* A path: whole, valid, no control byte; "NA" when there is none. */
        if (!len || len > MR_JOBS_MAX_STRING || (len == 2 && !memcmp(str, "NA", 2)) ||
            !utf8_valid(str, len))
            goto done;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)str[i] < 0x20 || str[i] == 0x7f)
                goto done;
        memcpy(ev->text, str, len);
        ev->text[len] = '\0';
    }
    r = kind;
done:
    json_object_put(o);
    return r;
}

static enum mr_jobs_line formats_line(const char *s, size_t n, struct mr_jobs_ytdlp_event *ev)
{
    struct json_object *o;
    size_t k;

    if ((n == 2 && !memcmp(s, "NA", 2)) || (n == 4 && !memcmp(s, "\"NA\"", 4))) {
        ev->nformats = 1;
        return MR_LINE_FORMATS;
    }
    o = mr_json_parse_value(s, n, 2, false);
    if (!json_object_is_type(o, json_type_array) || !(k = json_object_array_length(o)) ||
        k > MR_JOBS_MAX_FORMATS) {
        json_object_put(o);
        return MR_LINE_OTHER;
    }
    for (size_t i = 0; i < k; i++)
        if (!json_object_is_type(json_object_array_get_idx(o, i), json_type_string)) {
            json_object_put(o);
            return MR_LINE_OTHER;
        }
    json_object_put(o);
    ev->nformats = (int)k;
    return MR_LINE_FORMATS;
}

static void event_reset(struct mr_jobs_ytdlp_event *ev)
{
    ev->kind = MR_LINE_OTHER;
    ev->finished = false;
    ev->bytes = ev->total = ev->eta_s = ev->frag_index = ev->frag_count = -1;
    ev->speed = -1;
    ev->text[0] = '\0';
    ev->nformats = 0;
}

enum mr_jobs_line mr_jobs_ytdlp_line(const char *line, size_t n, struct mr_jobs_ytdlp_event *ev)
{
    size_t k;

    event_reset(ev);
    if (!line || n > MR_JOBS_MAX_LINE)
        return MR_LINE_OTHER;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (starts(line, n, "[mr-progress] ", &k))
        ev->kind = progress_line(line + k, n - k, ev);
    else if (starts(line, n, "[mr-title] ", &k))
        ev->kind = string_line(line + k, n - k, MR_LINE_TITLE, ev);
    else if (starts(line, n, "[mr-formats] ", &k))
        ev->kind = formats_line(line + k, n - k, ev);
    else if (starts(line, n, "[mr-file] ", &k))
        ev->kind = string_line(line + k, n - k, MR_LINE_FILE, ev);
    if (ev->kind == MR_LINE_OTHER)
        event_reset(ev);    /* nothing half-read is left behind */
    return ev->kind;
}

/* The values live in *p from one block to the next (a key a block leaves
 * out keeps the last one), so the caller starts with {-1, -1, 0, false}. */
int mr_jobs_ffmpeg_line(const char *line, size_t n, struct mr_jobs_ffmpeg_progress *p)
{
    const char *eq, *v;
    size_t kl, vl;
    long long i;
    double d;

    if (!line || n > MR_JOBS_MAX_LINE)
        return 0;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (!(eq = memchr(line, '=', n)))
        return 0;
    kl = (size_t)(eq - line);
    v = eq + 1;
    vl = n - kl - 1;
    while (vl && *v == ' ')
        v++, vl--;
#define KEY(s) (kl == sizeof(s) - 1 && !memcmp(line, s, kl))
    if (KEY("out_time_us") || KEY("out_time_ms")) {
        /* Both are microseconds (out_time_ms always was); a value that
         * does not read leaves what an earlier key gave. */
        if (integer(v, vl, &i))
            p->out_us = i < 0 ? 0 : i;
        else if (KEY("out_time_us"))
            p->out_us = -1;
    } else if (KEY("total_size")) {
        p->size = integer(v, vl, &i) && i >= 0 ? i : -1;
    } else if (KEY("speed")) {
        p->speed = vl > 1 && v[vl - 1] == 'x' && decimal(v, vl - 1, &d) ? d : 0;
    } else if (KEY("progress")) {
        if (vl == 3 && !memcmp(v, "end", 3)) {
            p->end = true;
            return 1;
        }
        if (vl == 8 && !memcmp(v, "continue", 8)) {
            p->end = false;
            return 1;
        }
    }
#undef KEY
    return 0;
}

/* ---- analyze ---------------------------------------------------------------- */

static struct json_object *get(struct json_object *o, const char *key)
{
    struct json_object *v;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* A string kept from yt-dlp: valid UTF-8, at most MR_JOBS_MAX_STRING bytes
 * (cut on a character), no NUL; NULL when it is not a string. */
static struct json_object *map_string(struct json_object *v)
{
    char buf[MR_JOBS_MAX_STRING + 1];
    size_t n;

    if (!json_object_is_type(v, json_type_string))
        return NULL;
    n = utf8_clean(json_object_get_string(v), (size_t)json_object_get_string_len(v), buf,
                   MR_JOBS_MAX_STRING);
    return json_object_new_string_len(buf, (int)n);
}

static struct json_object *map_url(struct json_object *v)
{
    const char *s;
    size_t n, k;

    if (!json_object_is_type(v, json_type_string))
        return NULL;
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (n > MR_JOBS_MAX_STRING || !utf8_valid(s, n))
        return NULL;
    if (n > 7 && !strncasecmp(s, "http://", 7))
        k = 7;
    else if (n > 8 && !strncasecmp(s, "https://", 8))
        k = 8;
    else
        return NULL;
    if (s[k] == '/')
        return NULL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return NULL;
    return json_object_new_string_len(s, (int)n);
}

/* A number >= 0; NULL otherwise (NaN and infinities included). */
static struct json_object *map_number(struct json_object *v)
{
    double d;

    if (json_object_is_type(v, json_type_int)) {
        int64_t i = json_object_get_int64(v);
        return i >= 0 ? json_object_new_int64(i) : NULL;
    }
    if (!json_object_is_type(v, json_type_double))
        return NULL;
    d = json_object_get_double(v);
    return isfinite(d) && d >= 0 ? json_object_new_double(d) : NULL;
}

/* An integer >= 0 (an integral double taken as one); NULL otherwise. */
static struct json_object *map_int(struct json_object *v)
{
    struct json_object *n = map_number(v);
    double d;

    if (!n || json_object_is_type(n, json_type_int))
        return n;
    d = json_object_get_double(n);
    json_object_put(n);
    return d < 9e15 && d == floor(d) ? json_object_new_int64((int64_t)d) : NULL;
}

static struct json_object *map_format(struct json_object *f)
{
    static const struct {
        const char *key;
        struct json_object *(*map)(struct json_object *);
    } fields[] = {
        { "format_id", map_string }, { "format_note", map_string }, { "width", map_int },
        { "height", map_int }, { "fps", map_number }, { "ext", map_string },
        { "filesize", map_int }, { "vcodec", map_string }, { "acodec", map_string },
        { "tbr", map_number },
    };
    struct json_object *o = json_object_new_object();

    for (size_t i = 0; o && i < sizeof(fields) / sizeof(fields[0]); i++) {
        struct json_object *v = fields[i].map(get(f, fields[i].key));
        if (!v && !strcmp(fields[i].key, "filesize"))
            v = map_int(get(f, "filesize_approx"));
        if (!put(o, fields[i].key, v)) {
            json_object_put(o);
            o = NULL;
        }
    }
    return o;
}

int mr_jobs_analyze_map(const char *json, size_t len, struct json_object **out,
                        char *msg, size_t msglen)
{
    struct json_object *root, *o = NULL, *formats, *subs, *v;
    struct json_object *type;
    bool ok;

    *out = NULL;
    say(msg, msglen, "%s", "");
    root = mr_json_parse_value(json, len, MR_JOBS_JSON_DEPTH, false);
    if (!json_object_is_type(root, json_type_object)) {
        say(msg, msglen, "yt-dlp did not print one JSON object");
        goto fail;
    }
    type = get(root, "_type");
    if (json_object_object_get_ex(root, "entries", NULL) || (json_object_is_type(type, json_type_string) &&
                                 (!strcmp(json_object_get_string(type), "playlist") ||
                                  !strcmp(json_object_get_string(type), "multi_video")))) {
        say(msg, msglen, "the page is a playlist (or several videos), not one video");
        goto fail;
    }
    if ((type && (!json_object_is_type(type, json_type_string) ||
                  strcmp(json_object_get_string(type), "video"))) ||
        (!json_object_is_type(get(root, "formats"), json_type_array) &&
         !json_object_is_type(get(root, "id"), json_type_string) &&
         !json_object_is_type(get(root, "url"), json_type_string))) {
        say(msg, msglen, "not yt-dlp's JSON for a video (no formats, id or url)");
        goto fail;
    }

    o = json_object_new_object();
    ok = o && put(o, "title", map_string(get(root, "title"))) &&
         put(o, "duration", map_number(get(root, "duration"))) &&
         put(o, "thumbnail", map_url(get(root, "thumbnail"))) &&
         put(o, "uploader", map_string(get(root, "uploader"))) &&
         put(o, "webpage_url", map_url(get(root, "webpage_url")));

    /* The last ones: yt-dlp lists formats from worst to best. */
    ok = ok && put_new(o, "formats", formats = json_object_new_array());
    v = get(root, "formats");
    if (ok && json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        for (size_t i = n > MR_JOBS_MAX_FORMATS ? n - MR_JOBS_MAX_FORMATS : 0; ok && i < n; i++) {
            struct json_object *f = json_object_array_get_idx(v, i), *m;
            if (!json_object_is_type(f, json_type_object))
                continue;
            m = map_format(f);
            ok = m && json_object_array_add(formats, m) == 0;
            if (!ok)
                json_object_put(m);
        }
    }

    ok = ok && put_new(o, "subtitles", subs = json_object_new_array());
    v = get(root, "subtitles");
    if (ok && json_object_is_type(v, json_type_object)) {
        size_t kept = 0;
        json_object_object_foreach(v, lang, unused) {
            struct json_object *s;
            (void)unused;
            if (kept >= MAX_SUB_LIST || !mr_jobs_lang_ok(lang))
                continue;
            s = json_object_new_string(lang);
            ok = ok && s && json_object_array_add(subs, s) == 0;
            if (!ok) {
                json_object_put(s);
                break;
            }
            kept++;
        }
    }
    if (!ok) {
        say(msg, msglen, "out of memory");
        goto fail;
    }
    json_object_put(root);
    *out = o;
    return 0;
fail:
    json_object_put(o);
    json_object_put(root);
    return -1;
}

/* ---- download requests and names ------------------------------------------- */

bool mr_jobs_format_id_ok(const char *s)
{
    size_t n;

    if (!s || !(n = strlen(s)) || n > MR_JOBS_MAX_FORMAT_ID || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("_.,:+/*?!=<>()[]-", c)))
            return false;
    }
    return true;
}

bool mr_jobs_lang_ok(const char *s)
{
    size_t n;

    if (!s || !(n = strlen(s)) || n > MR_JOBS_MAX_LANG)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Code points a file name must not hold: C0 and C1 controls, DEL, and the
 * bidirectional overrides that make "gpj.exe" read as "exe.jpg". */
static bool name_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f;
}

size_t mr_jobs_safe_name(const char *title, size_t n, char *out, size_t outlen)
{
    size_t cap, o = 0;
    uint32_t cp;

    if (!out || !outlen)
        return 0;
    cap = outlen - 1 < MR_JOBS_MAX_NAME ? outlen - 1 : MR_JOBS_MAX_NAME;
    for (size_t i = 0, k; title && i < n; i += k) {
        bool bad;
        k = utf8_seq((const unsigned char *)title + i, n - i, &cp);
        bad = !k || name_control(cp) || (cp < 0x80 && strchr("/\\:*?\"<>|", (int)cp));
        if (!k)
            k = 1;
        else if (!bad && !o && (cp == '.' || cp == '-' || cp == ' '))
            continue;
        if (o + (bad ? 1 : k) > cap)
            break;
        if (bad)
            out[o++] = '_';
        else
            memcpy(out + o, title + i, k), o += k;
    }
    while (o && (out[o - 1] == '.' || out[o - 1] == ' '))
        o--;
    if (!o) {
        o = cap < 5 ? cap : 5;
        memcpy(out, "media", o);
    }
    out[o] = '\0';
    return o;
}

int mr_jobs_content_disposition(const char *name, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char head[] = "attachment; filename=\"";
    static const char mid[] = "\"; filename*=UTF-8''";
    size_t n, need, o;

    if (!out || !outlen)
        return -1;
    out[0] = '\0';
    if (!name)
        return -1;
    n = strlen(name);
    need = sizeof(head) - 1 + n + sizeof(mid) - 1 + 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        need += (c < 0x80 && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                              (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c)))
                    ? 1 : 3;
    }
    if (need > outlen)
        return -1;
    memcpy(out, head, sizeof(head) - 1);
    o = sizeof(head) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '_';
    }
    memcpy(out + o, mid, sizeof(mid) - 1);
    o += sizeof(mid) - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x80 && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c))) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return 0;
}
