/* direct.c - the "direct" provider: a URL, optional headers, no expiry. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/error.h"
#include "core/header.h"
#include "net/upstream.h"

/* providers.direct (app/provider.h): its section of mediarelay.json. */
struct direct_conf {
    char *mode;
};

static const struct mr_conf_field direct_fields[] = {
    MR_PROVIDER_MODE(struct direct_conf, "proxy"),
    MR_CONF_END
};

extern const struct mr_provider mr_provider_direct;

static const struct direct_conf *settings(const struct mr_conf *c)
{
    return mr_conf_settings(c, &mr_provider_direct.conf);
}

static bool direct_is_direct(const struct mr_conf *c)
{
    return !strcmp(settings(c)->mode, "direct");
}

static bool http_url(const char *s)
{
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8);
}

static int direct_validate(struct json_object *source, char *field, size_t fieldlen,
                           char *msg, size_t msglen)
{
    struct json_object *url, *headers;

    if (!json_object_object_get_ex(source, "url", &url) ||
        json_object_get_type(url) != json_type_string) {
        snprintf(field, fieldlen, "url");
        snprintf(msg, msglen, "a string is required");
        return MR_EINVAL;
    }
    if (!http_url(json_object_get_string(url)) ||
        strpbrk(json_object_get_string(url), "\r\n\t ")) {
        snprintf(field, fieldlen, "url");
        snprintf(msg, msglen, "must be an http(s) URL");
        return MR_EINVAL;
    }
    if (json_object_object_get_ex(source, "headers", &headers)) {
        if (json_object_get_type(headers) != json_type_object) {
            snprintf(field, fieldlen, "headers");
            snprintf(msg, msglen, "expected an object of \"Header-Name\": \"value\"");
            return MR_EINVAL;
        }
        json_object_object_foreach(headers, name, v) {
            /* Malformed is an error; a header the upstream filter declines
             * (Host, Connection, Range...) is left out when the item
             * resolves: an item stored with one keeps working. */
            const char *why = json_object_get_type(v) != json_type_string
                ? "expected a string"
                : mr_header_malformed(name, json_object_get_string(v));
            if (!why && (size_t)json_object_get_string_len(v) != strlen(json_object_get_string(v)))
                why = "a control byte in the value";
            if (why) {
                snprintf(field, fieldlen, "headers.%s", name);
                snprintf(msg, msglen, "%s", why);
                return MR_EINVAL;
            }
        }
    }
    json_object_object_foreach(source, key, v) {
        (void)v;
        if (strcmp(key, "url") && strcmp(key, "headers")) {
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "unknown key");
            return MR_EINVAL;
        }
    }
    return MR_OK;
}

static bool direct_can_handle(const char *url)
{
    return http_url(url) && mr_video_type_from_url(url) != NULL;
}

static int direct_resolve(struct mr_ctx *ctx, const struct mr_media *media,
                          struct mr_source *out)
{
    struct json_object *url, *headers;

    memset(out, 0, sizeof(*out));
    if (!json_object_object_get_ex(media->source, "url", &url))
        return MR_EINVAL;
    out->url = json_object_get_string(url);
    out->video_type = mr_video_type_from_url(out->url);
    out->title = media->title;
    if (json_object_object_get_ex(media->source, "headers", &headers) &&
        json_object_get_type(headers) == json_type_object) {
        size_t n = (size_t)json_object_object_length(headers);
        out->headers.v = mr_arena_calloc(ctx->arena, n ? n : 1, sizeof(struct mr_header));
        if (!out->headers.v)
            return MR_ENOMEM;
        json_object_object_foreach(headers, name, v) {
            /* What the upstream filter declines is left out here already,
             * so the policy (and the direct-mode decision) holds only what
             * is sent. */
            if (!json_object_is_type(v, json_type_string) ||
                mr_header_refused(name, json_object_get_string(v), true))
                continue;
            out->headers.v[out->headers.n].name = name;
            out->headers.v[out->headers.n].value = json_object_get_string(v);
            out->headers.n++;
        }
    }
    return MR_OK;
}

const struct mr_provider mr_provider_direct = {
    .name = "direct",
    .conf = { "direct", direct_fields, sizeof(struct direct_conf) },
    .direct = direct_is_direct,
    .validate = direct_validate,
    .can_handle = direct_can_handle,
    .resolve = direct_resolve,
};
