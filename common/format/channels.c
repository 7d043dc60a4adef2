/* channels.c - M3U channel lists in and out. */
#include "format/channels.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/error.h"
#include "core/header.h"
#include "core/limits.h"
#include "core/str.h"
#include "net/upstream.h"

#define MAX_HEADERS 8

/* --- ids: a small open-addressing set over the arena -------------------- */

struct idset {
    const char **slot;
    size_t size;                    /* a power of two, > 2 × the entries */
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool idset_has(const struct idset *set, const char *id)
{
    for (size_t i = hash(id) & (set->size - 1); set->slot[i]; i = (i + 1) & (set->size - 1))
        if (!strcmp(set->slot[i], id))
            return true;
    return false;
}

static void idset_add(struct idset *set, const char *id)
{
    size_t i = hash(id) & (set->size - 1);
    while (set->slot[i])
        i = (i + 1) & (set->size - 1);
    set->slot[i] = id;
}

/* --- one line's parts ----------------------------------------------------- */

/* The value of key="value" (or key=value) in an #EXTINF attribute list,
 * or NULL. */
static char *attr(struct mr_arena *a, const char *p, const char *end, const char *key)
{
    size_t kl = strlen(key);

    while (p < end) {
        const char *v;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(end - p) > kl && !strncasecmp(p, key, kl) && p[kl] == '=') {
            v = p + kl + 1;
            if (v < end && *v == '"') {
                const char *q = memchr(v + 1, '"', (size_t)(end - v - 1));
                if (!q)
                    return NULL;
                return mr_arena_strndup(a, v + 1, (size_t)(q - v - 1));
            }
            for (p = v; p < end && *p != ' ' && *p != '\t'; p++)
                ;
            return mr_arena_strndup(a, v, (size_t)(p - v));
        }
        /* Skip this attribute (a quoted value may hold spaces). */
        while (p < end && *p != ' ' && *p != '\t') {
            if (*p == '"') {
                const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
                p = q ? q + 1 : end;
            } else {
                p++;
            }
        }
    }
    return NULL;
}

struct pending {
    char *name, *group, *logo, *tvg_id;
    struct mr_header headers[MAX_HEADERS];
    size_t nheaders;
};

/* Sets (or replaces) a header; the spelling players use for the ones that
 * matter.  What the upstream filter refuses (a Host, a Content-Length, a
 * Transfer-Encoding, a line break...) is left out: a list is someone
 * else's file, and one bad option does not cost the channel. */
static void add_header(struct pending *pd, const char *name, const char *value)
{
    static const char *const canon[] = { "Referer", "User-Agent", "Origin", "Cookie", NULL };

    if (!name || !value || strlen(value) > 4096 || mr_header_refused(name, value, true))
        return;
    if (!strcasecmp(name, "referrer"))
        name = "Referer";
    for (const char *const *c = canon; *c; c++)
        if (!strcasecmp(name, *c))
            name = *c;
    for (size_t i = 0; i < pd->nheaders; i++)
        if (!strcasecmp(pd->headers[i].name, name)) {
            pd->headers[i].value = value;
            return;
        }
    if (pd->nheaders < MAX_HEADERS)
        pd->headers[pd->nheaders++] = (struct mr_header){ name, value };
}

static char *unescape(struct mr_arena *a, const char *p, size_t n)
{
    int len = 0;
    char *raw, *v;

    if (n > 8192)
        return NULL;
    if (!n)     /* curl takes a length of 0 as "up to the NUL" */
        return mr_arena_strdup(a, "");
    raw = curl_easy_unescape(NULL, p, (int)n, &len);
    if (!raw)
        return NULL;
    v = memchr(raw, '\0', (size_t)len) ? NULL : mr_arena_strndup(a, raw, (size_t)len);
    curl_free(raw);
    return v;
}

/* "url|Name=Value&Name=Value": Kodi's way of giving headers. */
static void kodi_headers(struct mr_arena *a, struct pending *pd, const char *p, const char *end)
{
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *eq;
        const char *stop = amp ? amp : end;
        eq = memchr(p, '=', (size_t)(stop - p));
        if (eq && eq > p)
            add_header(pd, mr_arena_strndup(a, p, (size_t)(eq - p)),
                       unescape(a, eq + 1, (size_t)(stop - eq - 1)));
        p = amp ? amp + 1 : end;
    }
}

static bool url_ok(const char *u)
{
    if (strncasecmp(u, "http://", 7) && strncasecmp(u, "https://", 8))
        return false;
    size_t n = strlen(u);
    return n <= MR_URL_MAX && !mr_str_has_ctl(u, n) && !strchr(u, ' ');
}

/* An id from a display name: lowercase alphanumerics, '-' between. */
static char *slug(struct mr_arena *a, const char *name)
{
    char buf[MR_MEDIA_ID_MAX + 1];
    size_t n = 0;

    for (; name && *name && n < MR_MEDIA_ID_MAX; name++) {
        unsigned char ch = (unsigned char)*name;
        if (isalnum(ch) && ch < 0x80)
            buf[n++] = (char)tolower(ch);
        else if (n && buf[n - 1] != '-')
            buf[n++] = '-';
    }
    while (n && buf[n - 1] == '-')
        n--;
    return n ? mr_arena_strndup(a, buf, n) : NULL;
}

static char *unique_id(struct mr_arena *a, struct idset *set, const char *want, size_t index)
{
    char *id = want && mr_conf_id_ok(want) ? mr_arena_strdup(a, want) : NULL;

    if (!id)
        id = mr_arena_printf(a, "ch%zu", index + 1);
    if (!id)
        return NULL;
    if (idset_has(set, id)) {
        size_t base = strlen(id) > MR_MEDIA_ID_MAX - 8 ? MR_MEDIA_ID_MAX - 8 : strlen(id);
        char *alt = NULL;
        for (unsigned k = 2; ; k++) {
            alt = mr_arena_printf(a, "%.*s-%u", (int)base, id, k);
            if (!alt || !idset_has(set, alt))
                break;
        }
        id = alt;
    }
    if (id)
        idset_add(set, id);
    return id;
}

int mr_channels_parse_m3u(struct mr_arena *a, const char *text, size_t len,
                          const struct mr_conf_channel *taken, size_t n_taken,
                          struct mr_conf_channel **out, size_t *n, size_t *skipped)
{
    const char *p = text, *end = text + len;
    struct mr_conf_channel *v;
    struct pending pd;
    struct idset set;
    size_t count = 0, lines = 0;
    bool first = true;

    *out = NULL;
    *n = *skipped = 0;
    if (len > MR_M3U_MAX_BYTES)
        return MR_ETOOBIG;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        p += 3;
    /* At most one channel per two lines: size the arrays once. */
    for (const char *q = p; q < end; q++)
        lines += *q == '\n';
    lines = lines / 2 + 1;
    if (lines > MR_M3U_MAX_CHANNELS)
        lines = MR_M3U_MAX_CHANNELS;
    v = mr_arena_calloc(a, lines, sizeof(*v));
    set.size = 64;
    while (set.size < 2 * (lines + n_taken) + 1)
        set.size <<= 1;
    set.slot = mr_arena_calloc(a, set.size, sizeof(*set.slot));
    if (!v || !set.slot)
        return MR_ENOMEM;
    for (size_t i = 0; i < n_taken; i++)
        idset_add(&set, taken[i].id);
    memset(&pd, 0, sizeof(pd));

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end, *next = nl ? nl + 1 : end;
        while (le > p && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
            le--;
        while (p < le && (*p == ' ' || *p == '\t'))
            p++;
        if ((size_t)(le - p) > MR_M3U8_MAX_LINE)
            return MR_ETOOBIG;
        if (first) {
            if (le - p < 7 || memcmp(p, "#EXTM3U", 7))
                return MR_EINVAL;
            first = false;
        } else if (le == p) {
            /* blank */
        } else if (le - p >= 8 && !memcmp(p, "#EXTINF:", 8)) {
            /* The title follows the first comma outside quotes. */
            const char *q = p + 8, *comma = NULL;
            bool quoted = false;
            for (; q < le && !comma; q++) {
                if (*q == '"')
                    quoted = !quoted;
                else if (*q == ',' && !quoted)
                    comma = q;
            }
            memset(&pd, 0, sizeof(pd));
            const char *attrs_end = comma ? comma : le;
            pd.tvg_id = attr(a, p + 8, attrs_end, "tvg-id");
            pd.logo = attr(a, p + 8, attrs_end, "tvg-logo");
            pd.group = attr(a, p + 8, attrs_end, "group-title");
            pd.name = comma && comma + 1 < le
                      ? mr_arena_strndup(a, comma + 1, (size_t)(le - comma - 1)) : NULL;
            if (!pd.name)
                pd.name = attr(a, p + 8, attrs_end, "tvg-name");
        } else if (le - p >= 8 && !memcmp(p, "#EXTGRP:", 8)) {
            if (!pd.group)
                pd.group = mr_arena_strndup(a, p + 8, (size_t)(le - p - 8));
        } else if (le - p >= 11 && !memcmp(p, "#EXTVLCOPT:", 11)) {
            const char *o = p + 11;
            size_t on = (size_t)(le - o);
            if (on > 15 && !strncasecmp(o, "http-referrer=", 14))
                add_header(&pd, "Referer", mr_arena_strndup(a, o + 14, on - 14));
            else if (on > 16 && !strncasecmp(o, "http-user-agent=", 16))
                add_header(&pd, "User-Agent", mr_arena_strndup(a, o + 16, on - 16));
            else if (on > 12 && !strncasecmp(o, "http-origin=", 12))
                add_header(&pd, "Origin", mr_arena_strndup(a, o + 12, on - 12));
        } else if (*p == '#') {
            /* another tag or a comment */
        } else {
            const char *bar = memchr(p, '|', (size_t)(le - p));
            char *url = mr_arena_strndup(a, p, (size_t)((bar ? bar : le) - p));
            struct mr_conf_channel *ch;
            if (!url)
                return MR_ENOMEM;
            if (bar)
                kodi_headers(a, &pd, bar + 1, le);
            if (!url_ok(url) || count >= lines) {
                if (count >= lines)
                    return MR_ETOOBIG;
                (*skipped)++;
                memset(&pd, 0, sizeof(pd));
                p = next;
                continue;
            }
            ch = &v[count];
            ch->url = url;
            ch->name = pd.name;
            ch->group = pd.group;
            ch->logo = pd.logo;
            ch->id = unique_id(a, &set, pd.tvg_id && mr_conf_id_ok(pd.tvg_id) ? pd.tvg_id
                                        : slug(a, pd.name), count);
            if (!ch->id)
                return MR_ENOMEM;
            if (pd.nheaders) {
                ch->headers.v = mr_arena_calloc(a, pd.nheaders, sizeof(struct mr_header));
                if (!ch->headers.v)
                    return MR_ENOMEM;
                memcpy(ch->headers.v, pd.headers, pd.nheaders * sizeof(struct mr_header));
                ch->headers.n = pd.nheaders;
            }
            count++;
            memset(&pd, 0, sizeof(pd));
        }
        p = next;
    }
    if (first)
        return MR_EINVAL;
    *out = v;
    *n = count;
    return MR_OK;
}

/* An attribute value or title as written out: no quotes, no line breaks,
 * no control bytes. */
static int put_clean(struct mr_buf *out, const char *s, bool in_quotes)
{
    for (; *s; s++) {
        char c = *s;
        if (mr_is_ctl((unsigned char)c) || (in_quotes && c == '"'))
            c = in_quotes && *s == '"' ? '\'' : ' ';
        if (mr_buf_append(out, &c, 1))
            return MR_ETOOBIG;
    }
    return MR_OK;
}

int mr_channels_write_m3u(const struct mr_conf *c, const char *base, struct mr_buf *out)
{
    if (mr_buf_append_str(out, MR_STR("#EXTM3U\n")))
        return MR_ETOOBIG;
    for (size_t i = 0; i < c->channels.n; i++) {
        const struct mr_conf_channel *ch = (const struct mr_conf_channel *)c->channels.items + i;
        if (mr_buf_printf(out, "#EXTINF:-1 tvg-id=\"%s\"", ch->id))
            return MR_ETOOBIG;
        if (ch->name && (mr_buf_append_str(out, MR_STR(" tvg-name=\"")) ||
                         put_clean(out, ch->name, true) || mr_buf_append(out, "\"", 1)))
            return MR_ETOOBIG;
        if (ch->logo && (mr_buf_append_str(out, MR_STR(" tvg-logo=\"")) ||
                         put_clean(out, ch->logo, true) || mr_buf_append(out, "\"", 1)))
            return MR_ETOOBIG;
        if (ch->group && (mr_buf_append_str(out, MR_STR(" group-title=\"")) ||
                          put_clean(out, ch->group, true) || mr_buf_append(out, "\"", 1)))
            return MR_ETOOBIG;
        if (mr_buf_append(out, ",", 1) || put_clean(out, ch->name ? ch->name : ch->id, false) ||
            mr_buf_printf(out, "\n%s/live/%s.m3u8\n", base, ch->id))
            return MR_ETOOBIG;
    }
    return MR_OK;
}

/* ---- the configuration's channels_m3u ------------------------------------ */

/* channels_m3u: the list's channels join the configuration's (which win
 * an id they share).  A relative path is taken from the configuration
 * file's directory. */
void mr_channels_conf_import(struct mr_conf *c, struct mr_conf_loader *l)
{
    const char *path = c->channels_m3u;
    struct mr_conf_channel *got, *all;
    struct mr_buf data;
    char chunk[16384];
    size_t n, skipped;
    ssize_t k;
    int fd, rc = MR_OK;

    if (!path[0])
        return;
    path = mr_conf_file_path(c, path);
    if (!path || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        mr_conf_report(l, "channels_m3u", "cannot open %s: %s", path ? path : c->channels_m3u,
               strerror(errno));
        return;
    }
    mr_buf_init(&data, MR_M3U_MAX_BYTES);
    while ((k = read(fd, chunk, sizeof(chunk))) > 0 && !rc)
        rc = mr_buf_append(&data, chunk, (size_t)k);
    if (k < 0)
        rc = MR_EINTERNAL;
    close(fd);
    if (!rc)
        rc = mr_channels_parse_m3u(&c->arena, data.p ? data.p : "", data.len,
                                   c->channels.items, c->channels.n, &got, &n, &skipped);
    mr_buf_cleanup(&data);
    if (rc == MR_EINVAL) {
        mr_conf_report(l, "channels_m3u", "%s is not an M3U list (it must start with #EXTM3U)", path);
        return;
    }
    if (rc == MR_ETOOBIG) {
        mr_conf_report(l, "channels_m3u", "%s is too large (at most %u bytes, %u channels, "
               "%u-byte lines)", path, MR_M3U_MAX_BYTES, MR_M3U_MAX_CHANNELS, MR_M3U8_MAX_LINE);
        return;
    }
    if (rc) {
        mr_conf_report(l, "channels_m3u", "cannot read %s", path);
        return;
    }
    all = mr_arena_calloc(&c->arena, c->channels.n + n + 1, sizeof(*all));
    if (!all) {
        mr_conf_report(l, "channels_m3u", "out of memory");
        return;
    }
    if (c->channels.n)
        memcpy(all, c->channels.items, c->channels.n * sizeof(*all));
    memcpy(all + c->channels.n, got, n * sizeof(*all));
    c->channels.items = all;
    c->channels.n += n;
    c->channels_imported = n;
    c->channels_skipped = skipped;
}
