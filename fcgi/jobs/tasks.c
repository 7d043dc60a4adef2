/* tasks.c - queueing tasks and reporting them: POST /api/download,
 * POST /api/process, GET /api/tasks[/{id}[/events]], DELETE /api/tasks/{id}.
 *
 * What is queued is what was checked: the jobs executable validates every
 * field with the same parsers the worker uses (format/jobspec.h), and
 * stores only the known fields, canonical, so a task in the queue is one
 * the worker can run.  A process task's input is a file an earlier task
 * of the same user returned, named by that task: never a path the client
 * made up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "app/auth.h"
#include "app/jobs.h"
#include "app/media.h"
#include "app/provider.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "fcgi/jobs/handlers.h"
#include "format/jobspec.h"
#include "net/store.h"
#include "net/upstream.h"
#include "providers/ytdlp.h"
#include "relay/resolver.h"

#define BODY_MAX 65536
#define LIST_MAX 1000          /* tasks looked at by one listing */
#define PAGE_MAX 200
#define EVENTS_MAX_S (24 * 3600)
#define KEEPALIVE_MS 15000

/* ---- shared ----------------------------------------------------------------------- */

int jobs_need_redis(struct mr_ctx *ctx)
{
    if (mr_store_redis(ctx->store))
        return MR_OK;
    return JOBS_REFUSE(ctx, MR_EUNAVAILABLE, "media jobs need Redis, which does "
                         "not answer");
}

int jobs_caller(struct mr_ctx *ctx, struct caller *who)
{
    int rc = mr_auth_user(ctx, &who->user, &who->admin);

    switch (rc) {
    case MR_OK:
        return MR_OK;
    case MR_EUNAUTHORIZED:
        return JOBS_REFUSE(ctx, rc, "media jobs need the admin token or a "
                             "session");
    case MR_EUNAVAILABLE:
        return JOBS_REFUSE(ctx, rc, "sessions cannot be checked while Redis is "
                             "down");
    case MR_EFORBIDDEN:
        return JOBS_REFUSE(ctx, rc, "this session's user may not run media jobs");
    default:
        return JOBS_REFUSE(ctx, rc, NULL);
    }
}

int jobs_task(struct mr_ctx *ctx, const struct caller *who, struct mr_task *t)
{
    struct mr_str id = mr_route_capture(&ctx->match, "id");
    const char *owner;
    char *ids;
    int rc;

    if (!id.p || !mr_task_id_ok(id.p, id.len))
        return JOBS_REFUSE(ctx, MR_ENOTFOUND, "no such task");
    if (!(ids = mr_arena_strndup(ctx->arena, id.p, id.len)))
        return MR_ENOMEM;
    rc = mr_task_read(ctx->store, ctx->arena, ids, t);
    if (rc == MR_ENOTFOUND)
        return JOBS_REFUSE(ctx, rc, "no such task");
    if (rc)
        return JOBS_REFUSE(ctx, MR_EUNAVAILABLE, "the task cannot be read");
    owner = mr_task_get(t, "user");
    if (!who->admin && (!owner || strcmp(owner, who->user)))
        return JOBS_REFUSE(ctx, MR_ENOTFOUND, "no such task");
    return MR_OK;
}

int jobs_body(struct mr_ctx *ctx, size_t cap, struct json_object **root)
{
    struct mr_str body;
    int rc = mr_request_body(&ctx->req, ctx->arena, cap, &body);

    if (rc == MR_ETOOBIG)
        return JOBS_REFUSE(ctx, rc, "the body is at most %zu bytes", cap);
    if (rc)
        return JOBS_REFUSE(ctx, MR_EINVAL, "cannot read the request body");
    rc = mr_json_parse_object(ctx->arena, body.p, body.len, 16, root);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc)
        return JOBS_REFUSE(ctx, MR_EINVAL, "the body must be a JSON object");
    return MR_OK;
}

/* Answers 202 with the new task. */
static int queued(struct mr_ctx *ctx, const char *id, const char *type)
{
    struct json_object *o = json_object_new_object();

    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    json_object_object_add(o, "task_id", json_object_new_string(id));
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "status", json_object_new_string("pending"));
    mr_resp_headerf(&ctx->resp, "Location", "/api/tasks/%s", id);
    return mr_resp_json(&ctx->resp, 202, o);
}

static int create(struct mr_ctx *ctx, const struct caller *who, const char *type,
                  struct json_object *req)
{
    char id[MR_TASK_ID_LEN + 1];
    const char *json = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    int rc = mr_task_create(ctx->store, ctx->conf, type, who->user, json, id);

    if (rc == MR_ELIMIT) {
        mr_resp_header(&ctx->resp, "Retry-After", "60");
        return mr_resp_error(&ctx->resp, rc, "you have %ld tasks that have not ended "
                             "(jobs.max_queued_per_user): wait for one, or cancel one",
                             ctx->conf->jobs.max_queued_per_user);
    }
    if (rc)
        return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the task cannot be queued");
    mr_info("task %s (%s) queued by %s", id, type, who->user);
    return queued(ctx, id, type);
}

/* ---- POST /api/download ----------------------------------------------------------- */

/* An http(s) URL the relay may fetch from: the syntax, then the SSRF
 * guard on every address its host has.  Answered when not. */
static int check_url(struct mr_ctx *ctx, struct json_object *v, const char *field,
                     const char **url)
{
    const char *s = json_object_get_string(v), *why = NULL;
    int rc;

    if (!json_object_is_type(v, json_type_string) || !mr_ytdlp_url_ok(s))
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: an http or https URL of at most "
                             "%d bytes, without spaces", field, MR_YTDLP_MAX_URL);
    rc = mr_upstream_vet(ctx->conf, ctx->arena, s, &why);
    if (rc == MR_EBLOCKED)
        return JOBS_REFUSE(ctx, rc, "%s: its host's address is not one the relay "
                             "may reach (%s)", field, why ? why : "refused");
    if (rc == MR_EUPSTREAM)
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: its host cannot be resolved", field);
    if (rc)
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: not a URL the relay can use", field);
    *url = s;
    return MR_OK;
}

int jobs_download(struct mr_ctx *ctx)
{
    struct json_object *root, *req, *v;
    struct caller who;
    const char *url = NULL;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_body(ctx, BODY_MAX, &root)))
        return rc;
    req = json_object_new_object();
    if (mr_json_own(ctx->arena, req))
        return MR_ENOMEM;
    json_object_object_foreach(root, k, val) {
        if (strcmp(k, "url") && strcmp(k, "format_id") && strcmp(k, "include_subtitles") &&
            strcmp(k, "subtitle_langs"))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "%.64s: unknown field (url, "
                                 "format_id, include_subtitles, subtitle_langs)", k);
        (void)val;
    }
    if (!json_object_object_get_ex(root, "url", &v))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "url: missing");
    if ((rc = check_url(ctx, v, "url", &url)))
        return rc;
    json_object_object_add(req, "url", json_object_new_string(url));
    if (json_object_object_get_ex(root, "format_id", &v) && !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_string) ||
            !mr_jobs_format_id_ok(json_object_get_string(v)))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "format_id: a yt-dlp format of 1-%d "
                                 "characters (letters, digits and _.,:+/*?!=<>()[]-), as "
                                 "POST /api/analyze lists them", MR_JOBS_MAX_FORMAT_ID);
        json_object_object_add(req, "format_id", json_object_get(v));
    }
    if (json_object_object_get_ex(root, "include_subtitles", &v) &&
        !json_object_is_type(v, json_type_null)) {
        if (!json_object_is_type(v, json_type_boolean))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "include_subtitles: true or false");
        json_object_object_add(req, "include_subtitles", json_object_get(v));
    }
    if (json_object_object_get_ex(root, "subtitle_langs", &v) &&
        !json_object_is_type(v, json_type_null)) {
        size_t n = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 0;
        if (!json_object_is_type(v, json_type_array) || n > MR_JOBS_MAX_SUB_LANGS)
            return mr_resp_error(&ctx->resp, MR_EINVAL, "subtitle_langs: a list of at most "
                                 "%d languages", MR_JOBS_MAX_SUB_LANGS);
        for (size_t i = 0; i < n; i++) {
            struct json_object *l = json_object_array_get_idx(v, i);
            if (!json_object_is_type(l, json_type_string) ||
                !mr_jobs_lang_ok(json_object_get_string(l)) ||
                json_object_get_string(l)[0] == '-')
                return mr_resp_error(&ctx->resp, MR_EINVAL, "subtitle_langs[%zu]: a language "
                                     "code (1-%d letters, digits, _ or -) or \"all\"", i,
                                     MR_JOBS_MAX_LANG);
        }
        json_object_object_add(req, "subtitle_langs", json_object_get(v));
    }
    return create(ctx, &who, "download", req);
}

/* ---- POST /api/process ------------------------------------------------------------- */

/* The input: "<task>/<name>" that an earlier completed task of the caller
 * returned.  task_out and name_out point into the arena.  Answered when
 * not. */
static int pick_input(struct mr_ctx *ctx, const struct caller *who, const char *field,
                      const char *task_id, const char *file, const char **task_out,
                      const char **name_out, bool any_owner)
{
    struct mr_task t;
    const char *owner, *st, *found = NULL, *names[MR_TASK_MAX_FILES];
    size_t n;
    int rc;

    if (!mr_task_id_ok(task_id, strlen(task_id)))
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: not a task id", field);
    rc = mr_task_read(ctx->store, ctx->arena, task_id, &t);
    owner = rc ? NULL : mr_task_get(&t, "user");
    if (rc == MR_ENOTFOUND ||
        (!rc && !who->admin && !any_owner && (!owner || strcmp(owner, who->user))))
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: no such task of yours", field);
    if (rc)
        return JOBS_REFUSE(ctx, MR_EUNAVAILABLE, "the input task cannot be read");
    if (!(st = mr_task_get(&t, "status")) || strcmp(st, "completed"))
        return JOBS_REFUSE_STATUS(ctx, 409, "conflict", "the input task has not "
                                    "completed");
    n = mr_task_files(&t, ctx->arena, names, MR_TASK_MAX_FILES);
    for (size_t i = 0; i < n && !found; i++) {
        /* file is "<task>/<name>", as the task returned it */
        size_t tl = strlen(task_id);
        if (!file || (!strncmp(file, task_id, tl) && file[tl] == '/' &&
                      !strcmp(file + tl + 1, names[i])))
            found = names[i];
    }
    if (!found)
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: not a file that task returned", field);
    *task_out = task_id;
    *name_out = found;
    return MR_OK;
}

/* A registered media item as the input, when the caller may play it (its
 * room admits them).  A media job's result (provider own_files) is that
 * task's file; any other item is resolved now, and its upstream (URL and
 * the headers it wants, which pass the same checks as a download's URL)
 * is fetched by the worker before it processes: in->url, in->headers. */
struct media_in {
    const char *item;
    const char *url;
    const char *title;
    struct json_object *headers;
};

static int media_input(struct mr_ctx *ctx, const struct caller *who, struct json_object *idv,
                       const char **task, const char **name, struct media_in *in)
{
    const struct mr_provider *p;
    struct mr_media m;
    struct mr_source src;
    struct json_object *v;
    const char *why = NULL;
    int rc;

    if (!json_object_is_type(idv, json_type_string) ||
        mr_media_get(ctx->conf, ctx->store, ctx->arena, mr_str_c(json_object_get_string(idv)),
                     &m))
        return JOBS_REFUSE(ctx, MR_EINVAL, "input.media: no such media item");
    if (!who->admin && (rc = mr_auth_room(ctx, &m)))
        return JOBS_REFUSE(ctx, rc == MR_EUNAVAILABLE ? rc : MR_EFORBIDDEN,
                           "input.media: you may not play this media item");
    in->item = m.id;
    p = mr_provider_find(m.provider);
    if (p && p->own_files) {
        const char *file = NULL;
        if (json_object_object_get_ex(m.source, "file", &v))
            file = mr_arena_printf(ctx->arena, "%s/%s", json_object_get_string(
                json_object_object_get(m.source, "task")), json_object_get_string(v));
        json_object_object_get_ex(m.source, "task", &v);
        return pick_input(ctx, who, "input.media", json_object_get_string(v), file, task,
                          name, true);
    }
    if ((rc = mr_resolve(ctx, &m, &src)))
        return JOBS_REFUSE(ctx, rc, "input.media: it cannot be resolved%s%s",
                           ctx->why[0] ? ": " : "", ctx->why);
    if (src.inline_mpd)
        return JOBS_REFUSE(ctx, MR_EINVAL, "input.media: its source is a DASH manifest the "
                           "relay builds, which cannot be an input: download the page instead");
    if (!mr_ytdlp_url_ok(src.url))
        return JOBS_REFUSE(ctx, MR_EINVAL, "input.media: its source is not an http(s) URL");
    rc = mr_upstream_vet(ctx->conf, ctx->arena, src.url, &why);
    if (rc == MR_EBLOCKED)
        return JOBS_REFUSE(ctx, rc, "input.media: its source's address is not one the relay "
                           "may reach (%s)", why ? why : "refused");
    if (rc)
        return JOBS_REFUSE(ctx, MR_EUPSTREAM, "input.media: its source's host cannot be "
                           "resolved");
    in->url = src.url;
    in->title = src.title ? src.title : m.title;
    in->headers = json_object_new_object();
    if (mr_json_own(ctx->arena, in->headers))
        return MR_ENOMEM;
    for (size_t i = 0; i < src.headers.n; i++)
        json_object_object_add(in->headers, src.headers.v[i].name,
                               json_object_new_string(src.headers.v[i].value));
    return MR_OK;
}

int jobs_process(struct mr_ctx *ctx)
{
    struct json_object *root, *req, *v, *ops_json = NULL, *canon;
    struct mr_jobs_ops ops;
    struct caller who;
    struct media_in media = { 0 };
    const char *task = NULL, *name = NULL;
    char field[128], msg[300];
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_body(ctx, BODY_MAX, &root)))
        return rc;
    json_object_object_foreach(root, k, val) {
        if (strcmp(k, "input_file") && strcmp(k, "input") && strcmp(k, "operations"))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "%.64s: unknown field (input_file, "
                                 "input, operations)", k);
        (void)val;
    }
    if (json_object_object_get_ex(root, "input_file", &v)) {
        const char *s = json_object_get_string(v);
        char id[MR_TASK_ID_LEN + 1];
        if (json_object_object_get_ex(root, "input", NULL))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "input_file: give input_file or "
                                 "input, not both");
        if (!json_object_is_type(v, json_type_string) || strlen(s) <= MR_TASK_ID_LEN ||
            s[MR_TASK_ID_LEN] != '/')
            return mr_resp_error(&ctx->resp, MR_EINVAL, "input_file: a file a task of yours "
                                 "returned (\"<task id>/<name>\", as in its "
                                 "downloaded_files or output_file)");
        snprintf(id, sizeof(id), "%.*s", MR_TASK_ID_LEN, s);
        if ((rc = pick_input(ctx, &who, "input_file", mr_arena_strdup(ctx->arena, id), s,
                             &task, &name, false)))
            return rc;
    } else if (json_object_object_get_ex(root, "input", &v)) {
        struct json_object *t;
        if (!json_object_is_type(v, json_type_object))
            return mr_resp_error(&ctx->resp, MR_EINVAL, "input: {\"task\": \"<task id>\"}");
        if (json_object_object_get_ex(v, "media", &t) && json_object_object_length(v) == 1) {
            if ((rc = media_input(ctx, &who, t, &task, &name, &media)))
                return rc;
        } else if (!json_object_object_get_ex(v, "task", &t) ||
                   !json_object_is_type(t, json_type_string) ||
                   json_object_object_length(v) != 1) {
            return mr_resp_error(&ctx->resp, MR_EINVAL, "input: {\"task\": \"<task id>\"} or "
                                 "{\"media\": \"<media id>\"}");
        } else if ((rc = pick_input(ctx, &who, "input.task", json_object_get_string(t), NULL,
                                    &task, &name, false))) {
            return rc;
        }
    } else {
        return mr_resp_error(&ctx->resp, MR_EINVAL, "input_file: missing (or input)");
    }
    if (!json_object_object_get_ex(root, "operations", &ops_json))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "operations: missing");
    if (mr_jobs_ops_parse(ops_json, &ops, field, sizeof(field), msg, sizeof(msg)))
        return mr_resp_error(&ctx->resp, MR_EINVAL, "%s: %s", field, msg);
    if (!(canon = mr_jobs_ops_to_json(&ops)))
        return MR_ENOMEM;
    req = json_object_new_object();
    if (mr_json_own(ctx->arena, req)) {
        json_object_put(canon);
        return MR_ENOMEM;
    }
    if (media.item) {
        json_object_object_add(req, "input_media", json_object_new_string(media.item));
        if (media.url) {
            json_object_object_add(req, "input_url", json_object_new_string(media.url));
            json_object_object_add(req, "input_headers", json_object_get(media.headers));
            if (media.title)
                json_object_object_add(req, "input_title", json_object_new_string(media.title));
        }
    }
    if (task) {
        json_object_object_add(req, "input_task", json_object_new_string(task));
        json_object_object_add(req, "input_name", json_object_new_string(name));
        json_object_object_add(req, "input_file", json_object_new_string(
                                   mr_arena_printf(ctx->arena, "%s/%s", task, name)));
    }
    json_object_object_add(req, "operations", canon);
    return create(ctx, &who, "process", req);
}

/* ---- GET /api/tasks/{id}, DELETE ------------------------------------------------------ */

static int answer_task(struct mr_ctx *ctx, int status, const struct mr_task *t)
{
    struct json_object *o = mr_task_json(t);

    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    mr_resp_header(&ctx->resp, "Cache-Control", "no-store");
    return mr_resp_json(&ctx->resp, status, o);
}

int jobs_task_get(struct mr_ctx *ctx)
{
    struct caller who;
    struct mr_task t;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_task(ctx, &who, &t)))
        return rc;
    return answer_task(ctx, 200, &t);
}

int jobs_task_delete(struct mr_ctx *ctx)
{
    struct caller who;
    struct mr_task t;
    const char *id, *st;
    int rc, done = 0;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_task(ctx, &who, &t)))
        return rc;
    id = mr_task_get(&t, "id");
    st = mr_task_get(&t, "status");
    if (!mr_task_ended(st)) {
        /* Running or waiting: canceled.  A worker running it sees that
         * within a second, stops its programs and removes its files. */
        rc = mr_task_cancel(ctx->store, ctx->conf, id, &done);
        if (rc == MR_ENOTFOUND)
            return mr_resp_error(&ctx->resp, rc, "no such task");
        if (rc)
            return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the task cannot be canceled");
        if (done) {
            if (!strcmp(st, "pending"))
                mr_jobs_remove_dir(ctx->conf, id);
            mr_info("task %s canceled by %s", id, who.user);
            if (mr_task_read(ctx->store, ctx->arena, id, &t))
                return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the task cannot be read");
            return answer_task(ctx, 200, &t);
        }
    }
    /* Ended: the record and its files go. */
    mr_jobs_remove_dir(ctx->conf, id);
    if (mr_task_delete(ctx->store, id, mr_task_get(&t, "user")))
        return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the task cannot be deleted");
    {
        struct json_object *o = json_object_new_object();
        if (mr_json_own(ctx->arena, o))
            return MR_ENOMEM;
        json_object_object_add(o, "task_id", json_object_new_string(id));
        json_object_object_add(o, "deleted", json_object_new_boolean(1));
        return mr_resp_json(&ctx->resp, 200, o);
    }
}

/* ---- GET /api/tasks ------------------------------------------------------------------- */

static int query_long(struct mr_ctx *ctx, const char *name, long def, long min, long max,
                      long *out)
{
    char *v = NULL, *end;
    long n;

    if (mr_request_query(&ctx->req, ctx->arena, name, &v) == MR_EINVAL)
        return JOBS_REFUSE(ctx, MR_EINVAL, "malformed query string");
    if (!v) {
        *out = def;
        return MR_OK;
    }
    n = strtol(v, &end, 10);
    if (!*v || *end || n < min || n > max)
        return JOBS_REFUSE(ctx, MR_EINVAL, "%s: a number from %ld to %ld", name, min,
                             max);
    *out = n;
    return MR_OK;
}

int jobs_task_list(struct mr_ctx *ctx)
{
    static const char *const statuses[] = { "pending", "downloading", "processing",
                                            "completed", "failed", "canceled", NULL };
    struct json_object *o, *list;
    struct caller who;
    struct mr_task *tasks;
    char **ids, *status = NULL;
    size_t n, total = 0;
    long limit, offset;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = query_long(ctx, "limit", 50, 1, PAGE_MAX, &limit)) ||
        (rc = query_long(ctx, "offset", 0, 0, LIST_MAX, &offset)))
        return rc;
    if (mr_request_query(&ctx->req, ctx->arena, "status", &status) == MR_EINVAL)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "malformed query string");
    if (status) {
        bool known = false;
        for (size_t i = 0; statuses[i]; i++)
            known = known || !strcmp(status, statuses[i]);
        if (!known)
            return mr_resp_error(&ctx->resp, MR_EINVAL, "status: one of pending, "
                                 "downloading, processing, completed, failed, canceled");
    }
    if ((rc = mr_task_ids(ctx->store, ctx->arena, who.admin ? NULL : who.user, LIST_MAX,
                          &ids, &n)))
        return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the tasks cannot be read");
    if (!(tasks = mr_arena_calloc(ctx->arena, n + 1, sizeof(*tasks))))
        return MR_ENOMEM;
    if (n && (rc = mr_task_read_many(ctx->store, ctx->arena, who.admin ? NULL : who.user, ids,
                                     n, tasks)))
        return mr_resp_error(&ctx->resp, MR_EUNAVAILABLE, "the tasks cannot be read");
    o = json_object_new_object();
    if (mr_json_own(ctx->arena, o))
        return MR_ENOMEM;
    list = json_object_new_array();
    json_object_object_add(o, "tasks", list);
    for (size_t i = 0; i < n; i++) {
        const char *st = mr_task_get(&tasks[i], "status");
        if (!tasks[i].n || (status && (!st || strcmp(st, status))))
            continue;
        if (total >= (size_t)offset && total < (size_t)(offset + limit))
            json_object_array_add(list, mr_task_json(&tasks[i]));
        total++;
    }
    json_object_object_add(o, "total", json_object_new_int64((long long)total));
    json_object_object_add(o, "offset", json_object_new_int64(offset));
    json_object_object_add(o, "limit", json_object_new_int64(limit));
    mr_resp_header(&ctx->resp, "Cache-Control", "no-store");
    return mr_resp_json(&ctx->resp, 200, o);
}

/* ---- GET /api/tasks/{id}/events ---------------------------------------------------------- */

static void pause_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* Server-Sent Events: the task as JSON each time it changes (its rev), the
 * event id being that rev, so a client that reconnects with Last-Event-ID
 * gets only what is newer; after the final state the stream ends. */
int jobs_task_events(struct mr_ctx *ctx)
{
    struct caller who;
    struct mr_task t;
    struct mr_arena loop;            /* one turn's reads, reset each turn */
    const char *id, *last_hdr;
    long long last = -1, started = mr_clock_mono_ms(), last_write;
    long poll_ms = ctx->conf->jobs.progress_interval_ms;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_task(ctx, &who, &t)))
        return rc;
    id = mr_arena_strdup(ctx->arena, mr_task_get(&t, "id"));
    if (!id)
        return MR_ENOMEM;
    if ((last_hdr = mr_request_header(&ctx->req, "last-event-id")))
        last = strtoll(last_hdr, NULL, 10);
    mr_resp_status(&ctx->resp, 200);
    mr_resp_header(&ctx->resp, "Content-Type", "text/event-stream");
    mr_resp_header(&ctx->resp, "Cache-Control", "no-store");
    mr_resp_header(&ctx->resp, "X-Accel-Buffering", "no");
    if ((rc = mr_resp_write(&ctx->resp, "retry: 2000\n\n", 13)) || (rc = mr_resp_flush(&ctx->resp)))
        return MR_ECLIENT;
    last_write = mr_clock_mono_ms();
    mr_arena_init(&loop, 8192);
    for (;;) {
        const char *rev_s = NULL, *st;
        long long rev = -1;

        if (mr_clock_mono_ms() - started > EVENTS_MAX_S * 1000LL)
            break;
        mr_arena_reset(&loop);
        rc = mr_task_read(ctx->store, &loop, id, &t);
        if (rc == MR_ENOTFOUND) {
            static const char gone[] = "event: gone\ndata: {\"error\":{\"code\":\"not_found\","
                                       "\"message\":\"the task was deleted\"}}\n\n";
            mr_resp_write(&ctx->resp, gone, sizeof(gone) - 1);
            break;
        }
        if (!rc && (rev_s = mr_task_get(&t, "rev")) && (rev = strtoll(rev_s, NULL, 10)) == last &&
            mr_task_ended(mr_task_get(&t, "status")))
            break;      /* the client has the final state already */
        if (!rc && rev_s && rev != last) {
            struct json_object *o = mr_task_json(&t);
            const char *json = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
            char head[48];
            int hn = snprintf(head, sizeof(head), "id: %lld\ndata: ", rev);
            if (!json) {
                json_object_put(o);
                rc = MR_ENOMEM;
                break;
            }
            rc = mr_resp_write(&ctx->resp, head, (size_t)hn);
            if (!rc)
                rc = mr_resp_write(&ctx->resp, json, strlen(json));
            if (!rc)
                rc = mr_resp_write(&ctx->resp, "\n\n", 2);
            if (!rc)
                rc = mr_resp_flush(&ctx->resp);
            json_object_put(o);
            if (rc) {
                rc = MR_ECLIENT;
                break;
            }
            last = rev;
            last_write = mr_clock_mono_ms();
            st = mr_task_get(&t, "status");
            if (mr_task_ended(st))
                break;
        } else if (mr_clock_mono_ms() - last_write >= KEEPALIVE_MS) {
            /* A comment: keeps proxies from closing an idle stream, and
             * tells whether the client is still there. */
            if (mr_resp_write(&ctx->resp, ": keep-alive\n\n", 14) || mr_resp_flush(&ctx->resp)) {
                rc = MR_ECLIENT;
                break;
            }
            last_write = mr_clock_mono_ms();
        }
        rc = MR_OK;
        pause_ms(poll_ms);
    }
    mr_arena_free(&loop);
    return rc == MR_ECLIENT || rc == MR_ENOMEM ? rc : MR_OK;
}
