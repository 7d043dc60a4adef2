/* channel.c - the "channel" provider: a media item that is an IPTV channel of the conf.
 *
 * Source: {"channel": id}.  The id is looked up at resolve time among the
 * channels mr_conf_channel_find sees (conf `channels`, then the imported
 * `channels_m3u` list): the item plays the channel's url with its headers,
 * as /live/{id}.m3u8 does, and never expires.  validate() sees only the
 * source object, so an id that names no channel is refused when the item is
 * played (404, the id named), not when it is registered.
 *
 * The item shares the channel's relay caches (.channel_of): its manifest is
 * rewritten in the channel's scope, so /api/media/{id}/index.m3u8 and
 * /live/{channel}.m3u8 are one live playlist cache and one segment cache.
 */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/config.h"
#include "core/error.h"

/* providers.channel (app/provider.h): its section of mediarelay.json. */
struct channel_conf {
    char *mode;
};

static const struct mr_conf_field channel_fields[] = {
    MR_PROVIDER_MODE(struct channel_conf, "proxy"),
    MR_CONF_END
};

extern const struct mr_provider mr_provider_channel;

static const struct channel_conf *settings(const struct mr_conf *c)
{
    return mr_conf_settings(c, &mr_provider_channel.conf);
}

static bool channel_is_direct(const struct mr_conf *c)
{
    return !strcmp(settings(c)->mode, "direct");
}

/* source.channel, or NULL. */
static const char *source_channel(struct json_object *source)
{
    struct json_object *v;

    if (!json_object_object_get_ex(source, "channel", &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static int bad(char *field, size_t fieldlen, const char *f, char *msg, size_t msglen,
               const char *m)
{
    snprintf(field, fieldlen, "%s", f);
    snprintf(msg, msglen, "%s", m);
    return MR_EINVAL;
}

static int channel_validate(struct json_object *source, char *field, size_t fieldlen,
                            char *msg, size_t msglen)
{
    const char *id = source_channel(source);

    if (!id)
        return bad(field, fieldlen, "channel", msg, msglen,
                   "a string is required (an id in channels or channels_m3u)");
    if (!mr_conf_id_ok(id))
        return bad(field, fieldlen, "channel", msg, msglen,
                   "not a valid channel id (A-Z a-z 0-9 . _ -)");
    json_object_object_foreach(source, key, v) {
        (void)v;
        if (strcmp(key, "channel"))
            return bad(field, fieldlen, key, msg, msglen, "unknown key");
    }
    return MR_OK;
}

static int channel_resolve(struct mr_ctx *ctx, const struct mr_media *media,
                           struct mr_source *out)
{
    const char *id = source_channel(media->source);
    const struct mr_conf_channel *ch;
    const char *type;

    memset(out, 0, sizeof(*out));
    if (!id)
        return MR_EINVAL;
    ch = mr_conf_channel_find(ctx->conf, mr_str_c(id));
    if (!ch)
        return mr_fail(ctx, media->id, MR_ENOTFOUND, "source.channel: no channel \"%s\"", id);
    type = mr_video_type_from_url(ch->url);
    out->url = ch->url;
    out->headers = ch->headers;         /* the conf's: outlives the request */
    out->video_type = type ? type : "hls";
    out->title = media->title ? media->title : ch->name;
    out->thumbnail = ch->logo;
    return MR_OK;
}

static const char *channel_of(const struct mr_media *media)
{
    return source_channel(media->source);
}

const struct mr_provider mr_provider_channel = {
    .name = "channel",
    .conf = { "channel", channel_fields, sizeof(struct channel_conf) },
    .direct = channel_is_direct,
    .validate = channel_validate,
    .can_handle = NULL,
    .resolve = channel_resolve,
    .remote = false,
    .channel_of = channel_of,
};
