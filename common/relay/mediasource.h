/* mediasource.h - the MediaSource answer (docs/resolve.md) and the media
 * registry's write path, for mediarelay-resolve.
 *
 * A MediaSource says where a player gets an item: in "direct" mode the
 * upstream URL itself (only when the upstream needs no header a browser
 * cannot send), in "proxy" mode a relay URL of the executable that fits the
 * type (index.m3u8, manifest.mpd, /api/proxy/media/{id}).  The mode is the
 * runtime setting `proxy.enable_<provider>` (hash `settings`: "1"/"true"
 * proxy, "0"/"false" direct), else the provider's conf mode.  video_type is
 * the provider's, else the URL's extension, else what the upstream's
 * Content-Type or first bytes say.
 */
#ifndef MR_MEDIASOURCE_H
#define MR_MEDIASOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/str.h"

struct json_object;
struct mr_ctx;
struct mr_media;
struct mr_source;

/* The MediaSource of a resolved item, as a new JSON object (owned by the
 * request's arena).  MR_ENOMEM, or an error of the base URL. */
int mr_mediasource_json(struct mr_ctx *ctx, const struct mr_media *m,
                        const struct mr_source *src, struct json_object **out);

/* The media type of bytes an upstream gave: from its Content-Type, else
 * from the first bytes ("hls", "mpd", "mp4", "flv", "webm", "ts"), or NULL. */
const char *mr_sniff_type(const char *content_type, const void *head, size_t n);

/* Answers 302 to url: an item whose files the relay serves itself
 * (provider own_files, the media jobs' results) asked for by one of its
 * relay paths.  Returns what the answer returned. */
int mr_answer_moved(struct mr_ctx *ctx, const char *url);

/* Picks a named alternative (more_sources[].name) or subtitle ("sub:LANG")
 * for ?t=name; NULL name: the main source.  MR_ENOTFOUND when there is no
 * such name.  *url and *type point into src. */
int mr_source_pick(const struct mr_source *src, const char *name, const char **url,
                   const char **type);

#endif
