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

int mr_json_parse_object(struct mr_arena *a, const char *text, size_t len, int depth,
                         struct json_object **out)
{
    struct json_tokener *tok;
    struct json_object *o;
    bool ok;

    *out = NULL;
    if (len > INT_MAX)
        return MR_EINVAL;
    if (!(tok = json_tokener_new_ex(depth)))
        return MR_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text ? text : "", (int)len);
    ok = o && json_tokener_get_error(tok) == json_tokener_success &&
         json_object_is_type(o, json_type_object);
    /* One object and nothing after it but white space. */
    for (size_t i = ok ? json_tokener_get_parse_end(tok) : len; i < len; i++)
        if (!strchr(" \t\r\n", text[i]) || !text[i])
            ok = false;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return MR_EINVAL;
    }
    if (mr_json_own(a, o))
        return MR_ENOMEM;
    *out = o;
    return MR_OK;
}
