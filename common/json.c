/* json.c - json-c objects owned by an arena. */
#include "json.h"

#include "error.h"

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
