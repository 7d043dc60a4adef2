/* media.c - media items from the configuration and from Redis. */
#include "app/media.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#include "app/provider.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/limits.h"
#include "core/log.h"
#include "net/store.h"

static const char *opt_string(struct json_object *o, const char *key, bool *bad)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || json_object_get_type(v) == json_type_null)
        return NULL;
    if (json_object_get_type(v) != json_type_string) {
        *bad = true;
        return NULL;
    }
    return json_object_get_string(v);
}

int mr_media_parse(struct mr_arena *a, const char *id, struct mr_str json,
                   struct mr_media *out, char *why, size_t whylen)
{
    struct json_tokener *tok;
    struct json_object *root, *src;
    const struct mr_provider *p;
    bool bad = false;
    int rc;

    memset(out, 0, sizeof(*out));
    if (json.len > MR_MEDIA_JSON_MAX) {
        snprintf(why, whylen, "larger than %u bytes", MR_MEDIA_JSON_MAX);
        return MR_EINVAL;
    }
    tok = json_tokener_new_ex(MR_CONF_MAX_DEPTH);
    if (!tok)
        return MR_ENOMEM;
    root = json_tokener_parse_ex(tok, json.p, (int)json.len);
    if (!root || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != json.len) {
        snprintf(why, whylen, "not valid JSON");
        json_object_put(root);
        json_tokener_free(tok);
        return MR_EINVAL;
    }
    json_tokener_free(tok);
    if ((rc = mr_json_own(a, root)))
        return rc;
    if (json_object_get_type(root) != json_type_object) {
        snprintf(why, whylen, "not a JSON object");
        return MR_EINVAL;
    }
    out->id = mr_arena_strdup(a, id);
    out->provider = opt_string(root, "provider", &bad);
    out->title = opt_string(root, "title", &bad);
    out->room = opt_string(root, "room", &bad);
    if (bad) {
        snprintf(why, whylen, "provider, title and room must be strings");
        return MR_EINVAL;
    }
    if (!out->provider || !(p = mr_provider_find(out->provider))) {
        snprintf(why, whylen, "provider: unknown \"%s\"", out->provider ? out->provider : "");
        return MR_EINVAL;
    }
    if (!json_object_object_get_ex(root, "source", &src) ||
        json_object_get_type(src) != json_type_object) {
        snprintf(why, whylen, "source: an object is required");
        return MR_EINVAL;
    }
    if (p->validate) {
        char field[64] = "", msg[256] = "";
        if (p->validate(src, field, sizeof(field), msg, sizeof(msg))) {
            snprintf(why, whylen, "source%s%s: %s", field[0] ? "." : "", field, msg);
            return MR_EINVAL;
        }
    }
    out->source = src;
    return MR_OK;
}

int mr_media_get(const struct mr_conf *conf, struct mr_store *store, struct mr_arena *a,
                 struct mr_str id, struct mr_media *out)
{
    const struct mr_conf_media *cm;
    char key[MR_MEDIA_ID_MAX + 16], idz[MR_MEDIA_ID_MAX + 1], why[256];
    struct mr_str json;
    int rc;

    if (!id.len || id.len > MR_MEDIA_ID_MAX || memchr(id.p, '\0', id.len))
        return MR_ENOTFOUND;
    memcpy(idz, id.p, id.len);
    idz[id.len] = '\0';
    if (!mr_conf_id_ok(idz))
        return MR_ENOTFOUND;

    cm = mr_conf_media_find(conf, id);
    if (cm) {
        *out = (struct mr_media){
            .id = cm->id, .provider = cm->provider, .title = cm->title,
            .room = cm->room, .source = cm->source, .from_conf = true,
        };
        return MR_OK;
    }
    snprintf(key, sizeof(key), "media:%s", idz);
    rc = mr_store_get(store, a, key, &json);
    if (rc)
        return rc == MR_ENOTFOUND ? MR_ENOTFOUND : rc;
    rc = mr_media_parse(a, idz, json, out, why, sizeof(why));
    if (rc == MR_EINVAL) {
        mr_error("media %s in the store is unusable: %s", idz, why);
        return MR_EINTERNAL;
    }
    return rc;
}

void mr_media_conf_check(struct mr_conf *c, struct mr_conf_loader *l)
{
    for (size_t i = 0; i < c->media.n; i++) {
        const struct mr_conf_media *m = (struct mr_conf_media *)c->media.items + i;
        const struct mr_provider *p;
        char path[128];
        if (!m->provider)
            continue;
        p = mr_provider_find(m->provider);
        if (!p) {
            snprintf(path, sizeof(path), "media.%s.provider", m->id);
            mr_conf_report(l, path, "unknown provider \"%s\"", m->provider);
        } else if (p->validate && m->source) {
            char msg[256] = "";
            char field[64] = "";
            if (p->validate(m->source, field, sizeof(field), msg, sizeof(msg))) {
                snprintf(path, sizeof(path), "media.%s.source%s%s", m->id,
                         field[0] ? "." : "", field);
                mr_conf_report(l, path, "%s", msg);
            }
        }
    }
}

int mr_media_new_id(char out[MR_MEDIA_NEW_ID_LEN + 1])
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[MR_MEDIA_NEW_ID_LEN];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return MR_EINTERNAL;
    for (int i = 0; i < MR_MEDIA_NEW_ID_LEN; i++)
        out[i] = abc[r[i] % 36];
    out[MR_MEDIA_NEW_ID_LEN] = '\0';
    return MR_OK;
}

int mr_media_store(struct mr_store *store, const char *id, struct json_object *item,
                   long ttl_ms)
{
    char key[MR_MEDIA_ID_MAX + 16];
    const char *text = json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN);

    snprintf(key, sizeof(key), "media:%s", id);
    if (!text)
        return MR_ENOMEM;
    if (!mr_store_redis_up(store) && mr_store_ping(store))
        return MR_EUNAVAILABLE;
    return mr_store_set(store, key, text, strlen(text), ttl_ms);
}
