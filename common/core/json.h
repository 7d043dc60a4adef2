/* json.h - json-c objects owned by an arena. */
#ifndef MR_JSON_H
#define MR_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "core/arena.h"

/* Hands obj to the arena (json_object_put at the next reset).  MR_OK, or
 * MR_ENOMEM (obj is put at once) -- also when obj is NULL, so a failed
 * json_object_new_* can be passed straight in. */
int mr_json_own(struct mr_arena *a, struct json_object *obj);

/* Parses text[0..len) (a body from the network or a client) as one JSON
 * object nested at most `depth` deep (strict JSON, nothing after it but
 * white space), owned by the arena.  MR_OK, MR_EINVAL when it is not that
 * (cut short, not an object, deeper, trailing bytes), or MR_ENOMEM. */
int mr_json_parse_object(struct mr_arena *a, const char *text, size_t len, int depth,
                         struct json_object **out);

/* Parses text[0..len) as one JSON value of any type nested at most
 * `depth` deep, with nothing after it but white space (strict: RFC 8259
 * only; else json-c's leniency, e.g. the NaN Python writes).  A new
 * object the caller puts, or NULL (malformed, or out of memory). */
struct json_object *mr_json_parse_value(const char *text, size_t len, int depth, bool strict);

#endif
