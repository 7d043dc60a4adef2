/* registry.c - the list of providers: adding a source is one line here. */
#include "provider.h"

#include <string.h>
#include <strings.h>

extern const struct mr_provider mr_provider_direct;

const struct mr_provider *const mr_providers[] = {
    &mr_provider_direct,
    NULL
};

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
