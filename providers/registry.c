/* registry.c - the list of providers: adding a source is one line here.
 *
 * A provider is one file, providers/NAME.c, defining `const struct
 * mr_provider mr_provider_NAME` (app/provider.h): its functions, its
 * configuration section and its default mode.  PROVIDERS lists them, in the
 * order can_handle is asked; it makes mr_providers and the configuration's
 * sections (core/config.h, mr_conf_sections). */
#include "app/provider.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "app/media.h"
#include "app/server.h"
#include "core/error.h"
#include "core/log.h"
#include "core/str.h"

#define PROVIDERS(X) \
    X(direct) \
    X(channel) \
    X(alist) \
    X(bilibili) \
    X(ytdlp) \
    X(job)

#define DECLARE(name) extern const struct mr_provider mr_provider_##name;
#define PROVIDER(name) &mr_provider_##name,
#define SECTION(name) &mr_provider_##name.conf,

PROVIDERS(DECLARE)

const struct mr_provider *const mr_providers[] = {
    PROVIDERS(PROVIDER)
    NULL
};

const struct mr_conf_section *const mr_conf_sections[] = {
    PROVIDERS(SECTION)
    NULL
};

const char *const mr_provider_modes[] = { "proxy", "direct", NULL };

int mr_fail(struct mr_ctx *ctx, const char *media_id, int rc, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
    va_end(ap);
    /* Cut short: not in the middle of a UTF-8 sequence. */
    if (n >= (int)sizeof(ctx->why)) {
        size_t end = strlen(ctx->why), lead = end;
        while (lead && ((unsigned char)ctx->why[lead - 1] & 0xC0) == 0x80)
            lead--;
        if (lead && ((unsigned char)ctx->why[lead - 1] & 0x80)) {
            unsigned char c = (unsigned char)ctx->why[lead - 1];
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (end - (lead - 1) < need)
                ctx->why[lead - 1] = '\0';
        }
    }
    /* The message may quote an upstream: no control bytes reach a log line
     * or an answer. */
    for (unsigned char *p = (unsigned char *)ctx->why; *p; p++)
        if (mr_is_ctl(*p))
            *p = '?';
    mr_warn("media %s: %s", media_id ? media_id : "-", ctx->why);
    return rc;
}

int mr_answer_unresolved(struct mr_ctx *ctx, const struct mr_media *m, int rc)
{
    if (ctx->why[0])
        return mr_resp_error(&ctx->resp, rc, "media item \"%s\" cannot be resolved: %s",
                             m->id, ctx->why);
    return mr_resp_error(&ctx->resp, rc, "media item \"%s\" cannot be resolved", m->id);
}

int mr_answer_no_source(struct mr_ctx *ctx, const struct mr_media *m, const char *t)
{
    return mr_resp_error(&ctx->resp, MR_ENOTFOUND, "media item \"%s\" has no source named "
                         "\"%.64s\"", m->id, t ? t : "");
}

const struct mr_provider *mr_provider_find(const char *name)
{
    for (const struct mr_provider *const *p = mr_providers; *p; p++)
        if (!strcmp((*p)->name, name))
            return *p;
    return NULL;
}

const char *mr_video_type_from_url(const char *url)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        { "m3u8", "hls" }, { "m3u", "hls" }, { "mpd", "mpd" }, { "mp4", "mp4" },
        { "m4v", "mp4" }, { "mov", "mp4" }, { "flv", "flv" }, { "webm", "webm" },
        { "mkv", "mkv" }, { "ts", "ts" },
    };
    const char *end, *dot, *slash;
    size_t n;

    /* The path ends at the query or the fragment. */
    end = url + strcspn(url, "?#");
    slash = url;
    for (const char *p = url; p < end; p++)
        if (*p == '/')
            slash = p;
    dot = NULL;
    for (const char *p = slash; p < end; p++)
        if (*p == '.')
            dot = p;
    if (!dot)
        return NULL;
    n = (size_t)(end - dot - 1);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i].ext) == n && !strncasecmp(dot + 1, types[i].ext, n))
            return types[i].type;
    return NULL;
}
