/* json.c - json-c objects owned by an arena. */
#include "core/json.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "core/error.h"

static void put(void *obj)
{
    json_object_put(obj);
}

int mr_json_own(struct mr_arena *a, struct json_object *obj)
{
    if (!obj)
        return MR_ENOMEM;
    return mr_arena_cleanup(a, put, obj);
}

struct json_object *mr_json_parse_value(const char *text, size_t len, int depth, bool strict)
{
    struct json_tokener *tok;
    struct json_object *o;
    bool ok;

    if (len > INT_MAX || !(tok = json_tokener_new_ex(depth)))
        return NULL;
    if (strict)
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text ? text : "", (int)len);
    ok = o && json_tokener_get_error(tok) == json_tokener_success;
    /* One value and nothing after it but white space. */
    for (size_t i = ok ? json_tokener_get_parse_end(tok) : len; i < len; i++)
        if (!strchr(" \t\r\n", text[i]) || !text[i])
            ok = false;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

int mr_json_parse_object(struct mr_arena *a, const char *text, size_t len, int depth,
                         struct json_object **out)
{
    struct json_object *o = mr_json_parse_value(text, len, depth, true);

    *out = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return MR_EINVAL;
    }
    if (mr_json_own(a, o))
        return MR_ENOMEM;
    *out = o;
    return MR_OK;
}
