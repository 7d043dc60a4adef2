/* media.h - the media registry's read path.
 *
 * A media item comes from the configuration ("media": read-only) or from
 * Redis (`media:{id}`, written by POST /api/media).  The configuration wins
 * when both have an id.
 */
#ifndef MR_MEDIA_H
#define MR_MEDIA_H

#include <stdbool.h>

#include "core/arena.h"
#include "core/str.h"

struct json_object;
struct mr_conf;
struct mr_store;

struct mr_media {
    const char *id;
    const char *provider;
    const char *title;                  /* NULL when none */
    const char *room;                   /* NULL when open to everyone */
    struct json_object *source;         /* provider-specific, read-only */
    bool from_conf;
};

/* Looks an id up.  MR_ENOTFOUND for an unknown or malformed id; a Redis
 * entry that does not parse or fails its provider's check is logged and
 * gives MR_EINTERNAL.  Everything in *out lives in the arena (or in the
 * configuration). */
int mr_media_get(const struct mr_conf *conf, struct mr_store *store, struct mr_arena *a,
                 struct mr_str id, struct mr_media *out);

/* Parses a media item's JSON ({"provider","source","title"?,"room"?}) as
 * stored in Redis; validates it with its provider.  On MR_EINVAL `why`
 * says what is wrong, naming the field. */
int mr_media_parse(struct mr_arena *a, const char *id, struct mr_str json,
                   struct mr_media *out, char *why, size_t whylen);

/* A new random item id: 12 characters of a-z 0-9 (62 bits). */
#define MR_MEDIA_NEW_ID_LEN 12
int mr_media_new_id(char out[MR_MEDIA_NEW_ID_LEN + 1]);

/* Stores an item's JSON (checked by the caller with mr_media_parse) under
 * media:{id}, for ttl_ms (0: for good).  A registration must outlive the
 * process: MR_EUNAVAILABLE while Redis is down (no in-process fallback). */
int mr_media_store(struct mr_store *store, const char *id, struct json_object *item,
                   long ttl_ms);

/* The configuration's check (core/config.h): each media item names a
 * provider, and that provider accepts its source object. */
struct mr_conf;
struct mr_conf_loader;
void mr_media_conf_check(struct mr_conf *c, struct mr_conf_loader *l);

#endif
