/* result.c - a task's result files: GET|HEAD /api/download-result/{id}
 * (to its owner, or the admin, as an attachment), GET|HEAD
 * /api/results/{token}/{name} (to whoever holds the link the "job"
 * provider made for a registered result, inline, for players), and
 * POST /api/tasks/{id}/media, which registers a result as a media item.
 *
 * With stream.offload "nginx", nginx sends the file itself: the answer is
 * an X-Accel-Redirect to jobs.accel_prefix, the internal location that
 * contrib/nginx maps to jobs.dir, and nginx does Range, HEAD and sendfile.
 * Elsewhere the file is streamed from here, with Range.  Either way the
 * answer has a type from the file's extension and nosniff; a download has
 * a safe name (format/jobspec.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "core/token.h"
#include "fcgi/jobs/handlers.h"
#include "format/jobspec.h"
#include "http/range.h"
#include "net/store.h"
#include "relay/mediasource.h"
#include "relay/resolver.h"

#define CHUNK (256 * 1024)

/* A result's type by its extension: what players and browsers expect.
 * Anything else is a download. */
static const char *type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        { "mp4", "video/mp4" }, { "m4v", "video/mp4" }, { "webm", "video/webm" },
        { "mkv", "video/x-matroska" }, { "mp3", "audio/mpeg" }, { "m4a", "audio/mp4" },
        { "opus", "audio/ogg" }, { "ogg", "audio/ogg" }, { "jpg", "image/jpeg" },
        { "m3u8", "application/vnd.apple.mpegurl" }, { "ts", "video/mp2t" },
        { "vtt", "text/vtt" }, { "srt", "application/x-subrip" }, { "flv", "video/x-flv" },
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcasecmp(dot + 1, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* The task's result named `want` (a file name), or its first one. */
static const char *pick(struct mr_ctx *ctx, const struct mr_task *t, const char *want)
{
    const char *names[MR_TASK_MAX_FILES];
    size_t n = mr_task_files(t, ctx->arena, names, MR_TASK_MAX_FILES);

    for (size_t i = 0; i < n; i++)
        if (!want || !strcmp(names[i], want))
            return names[i];
    return NULL;
}

/* Percent-encodes a file name for the internal location's path. */
static char *path_escape(struct mr_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *out = mr_arena_alloc(a, 3 * n + 1), *o = out;

    if (!out)
        return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            *o++ = (char)c;
        } else {
            snprintf(o, 4, "%%%02X", c);
            o += 3;
        }
    }
    *o = '\0';
    return out;
}

/* Sends jobs.dir/<id>/<name>: an attachment (a download) or inline (a
 * player's), with Range, by nginx (X-Accel-Redirect) or from here. */
static int serve_file(struct mr_ctx *ctx, const char *id, const char *name, bool attachment)
{
    struct mr_range range;
    struct stat st;
    char *path, disp[2048];
    long long left;
    int rc, fd;

    if (!(path = mr_arena_printf(ctx->arena, "%s/%s/%s", ctx->conf->jobs.dir, id, name)))
        return MR_ENOMEM;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, "the result file is gone");
    }
    mr_resp_header(&ctx->resp, "Content-Type", type_of(name));
    if (attachment) {
        if (mr_jobs_content_disposition(name, disp, sizeof(disp)))
            snprintf(disp, sizeof(disp), "attachment");
        mr_resp_header(&ctx->resp, "Content-Disposition", disp);
        mr_resp_header(&ctx->resp, "Cache-Control", "private, no-cache");
    } else {
        /* A result does not change: a player's cache may keep it. */
        mr_resp_header(&ctx->resp, "Cache-Control", "private, max-age=3600");
    }
    mr_resp_header(&ctx->resp, "X-Content-Type-Options", "nosniff");
    mr_resp_headerf(&ctx->resp, "ETag", "\"%llx-%llx\"", (unsigned long long)st.st_size,
                    (unsigned long long)st.st_mtime);

    if (!strcmp(ctx->conf->stream.offload, "nginx")) {
        char *esc = path_escape(ctx->arena, name);
        close(fd);
        if (!esc)
            return MR_ENOMEM;
        mr_resp_status(&ctx->resp, 200);
        return mr_resp_headerf(&ctx->resp, "X-Accel-Redirect", "%s%s/%s",
                               ctx->conf->jobs.accel_prefix, id, esc);
    }

    rc = mr_range_parse(mr_request_header(&ctx->req, "range"), (long long)st.st_size, &range);
    mr_resp_header(&ctx->resp, "Accept-Ranges", "bytes");
    if (rc == MR_ERANGE) {
        close(fd);
        mr_resp_headerf(&ctx->resp, "Content-Range", "bytes */%lld", (long long)st.st_size);
        return mr_resp_error(&ctx->resp, rc, "the range is past the end of the file");
    }
    if (range.partial) {
        mr_resp_status(&ctx->resp, 206);
        mr_resp_headerf(&ctx->resp, "Content-Range", "bytes %lld-%lld/%lld", range.from,
                        range.to, (long long)st.st_size);
    } else {
        mr_resp_status(&ctx->resp, 200);
        range.from = 0;
        range.to = (long long)st.st_size - 1;
    }
    left = range.to - range.from + 1;
    mr_resp_headerf(&ctx->resp, "Content-Length", "%lld", left);
    if (ctx->req.method.len == 4 && !memcmp(ctx->req.method.p, "HEAD", 4)) {
        close(fd);
        return mr_resp_send_headers(&ctx->resp);
    }
    {
        char *buf = malloc(CHUNK);
        off_t off = (off_t)range.from;
        rc = buf ? MR_OK : MR_ENOMEM;
        while (!rc && left > 0) {
            ssize_t got = pread(fd, buf, left < CHUNK ? (size_t)left : CHUNK, off);
            if (got <= 0) {
                /* Shorter than it said (it is being replaced): the
                 * answer is cut, which the client sees by its length. */
                mr_warn("result %s/%s: read failed at %lld: %s", id, name, (long long)off,
                        got ? strerror(errno) : "end of file");
                rc = MR_EINTERNAL;
                break;
            }
            rc = mr_resp_write(&ctx->resp, buf, (size_t)got);
            off += got;
            left -= got;
        }
        free(buf);
    }
    close(fd);
    return rc;
}

/* GET|HEAD /api/download-result/{id}[?file=NAME] */
int jobs_result(struct mr_ctx *ctx)
{
    struct caller who;
    struct mr_task t;
    char *want = NULL;
    const char *name, *status;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_task(ctx, &who, &t)))
        return rc;
    if (mr_request_query(&ctx->req, ctx->arena, "file", &want) == MR_EINVAL)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "malformed query string");
    status = mr_task_get(&t, "status");
    if (!status || strcmp(status, "completed"))
        return mr_resp_error_status(&ctx->resp, 409, "conflict", "the task has not completed: "
                                    "there is no result yet");
    if (!(name = pick(ctx, &t, want)))
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, want ? "file: not a file of this task"
                                                            : "the task has no result file");
    return serve_file(ctx, mr_task_get(&t, "id"), name, true);
}

/* GET|HEAD /api/results/{token}/{name}: a file of the task the token
 * names (providers/job.c makes these URLs for a task registered as a
 * media item).  The token is the credential: whoever the relay gave the
 * item's source to may play it, as with the relay's other URLs.  Any file
 * directly in the task's folder: an HLS result's playlist and segments. */
int jobs_results_file(struct mr_ctx *ctx)
{
    struct mr_str token = mr_route_capture(&ctx->match, "token");
    struct mr_str name = mr_route_capture(&ctx->match, "name");
    struct mr_str data;
    char *file;
    time_t exp;
    long len;
    int rc;

    rc = mr_token_verify(ctx->proc->key, ctx->arena, token, time(NULL), &data, &exp);
    if (rc == MR_ETOKEN_EXPIRED)
        return mr_resp_error(&ctx->resp, rc, "this result link has expired: ask the media "
                             "item's source again");
    if (rc || data.len != 2 + MR_TASK_ID_LEN || memcmp(data.p, "r:", 2) ||
        !mr_task_id_ok(data.p + 2, MR_TASK_ID_LEN))
        return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "not a result link of this relay");
    /* The name as the path has it, percent-encoded: one file name, never
     * a path. */
    if (!(file = mr_arena_alloc(ctx->arena, name.len + 1)))
        return MR_ENOMEM;
    len = mr_str_unescape(name, file, name.len + 1, false);
    if (len <= 0 || (size_t)len != strlen(file) || file[0] == '.' || strchr(file, '/') ||
        strchr(file, '\\') || mr_str_has_ctl(file, (size_t)len))
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, "no such file");
    return serve_file(ctx, data.p + 2, file, false);
}

/* POST /api/tasks/{id}/media [{"file"?, "title"?, "room"?}]: the task's
 * result as a media item of the "job" provider (providers/job.c), which
 * lives as long as the task; answers 201 with its MediaSource, so it
 * plays from the relay like any other item.  A room may be named by the
 * admin, or by a user who is a member of it. */
int jobs_task_media(struct mr_ctx *ctx)
{
    struct json_object *root = NULL, *item, *source, *v, *o;
    struct caller who;
    struct mr_task t;
    struct mr_media m;
    struct mr_source src;
    const char *id, *status, *done_ms;
    char mid[MR_MEDIA_NEW_ID_LEN + 1], why[320];
    long long ttl_ms;
    int rc;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)))
        return rc;
    if (ctx->req.content_length > 0 && (rc = jobs_body(ctx, 4096, &root)))
        return rc;
    if ((rc = jobs_task(ctx, &who, &t)))
        return rc;
    id = mr_task_get(&t, "id");
    status = mr_task_get(&t, "status");
    if (!status || strcmp(status, "completed"))
        return mr_resp_error_status(&ctx->resp, 409, "conflict", "the task has not completed: "
                                    "there is no result yet");
    item = json_object_new_object();
    source = json_object_new_object();
    if (mr_json_own(ctx->arena, item) || !source)
        return MR_ENOMEM;
    json_object_object_add(item, "provider", json_object_new_string("job"));
    json_object_object_add(item, "source", source);
    json_object_object_add(source, "task", json_object_new_string(id));
    if (mr_task_get(&t, "title"))
        json_object_object_add(item, "title", json_object_new_string(mr_task_get(&t, "title")));
    if (root) {
        json_object_object_foreach(root, k, val) {
            if (strcmp(k, "file") && strcmp(k, "title") && strcmp(k, "room"))
                return mr_resp_error(&ctx->resp, MR_EINVAL, "%.64s: unknown field (file, "
                                     "title, room)", k);
            (void)val;
        }
        if (json_object_object_get_ex(root, "file", &v)) {
            if (!json_object_is_type(v, json_type_string) ||
                !pick(ctx, &t, json_object_get_string(v)))
                return mr_resp_error(&ctx->resp, MR_EINVAL, "file: a file of this task's "
                                     "result");
            json_object_object_add(source, "file", json_object_get(v));
        }
        if (json_object_object_get_ex(root, "title", &v)) {
            if (!json_object_is_type(v, json_type_string) || !json_object_get_string_len(v) ||
                json_object_get_string_len(v) > 1024)
                return mr_resp_error(&ctx->resp, MR_EINVAL, "title: a string of 1-1024 bytes");
            json_object_object_add(item, "title", json_object_get(v));
        }
        if (json_object_object_get_ex(root, "room", &v)) {
            const char *room = json_object_get_string(v);
            bool member = false;
            char key[MR_STORE_KEY_MAX];
            if (!json_object_is_type(v, json_type_string) || !mr_conf_id_ok(room))
                return mr_resp_error(&ctx->resp, MR_EINVAL, "room: a room id (1-%d characters "
                                     "of A-Z a-z 0-9 . _ -)", MR_MEDIA_ID_MAX);
            snprintf(key, sizeof(key), "room:%s:members", room);
            if (!who.admin && (mr_store_sismember(ctx->store, key, who.user, &member) || !member))
                return mr_resp_error(&ctx->resp, MR_EFORBIDDEN, "room: you are not a member "
                                     "of that room");
            json_object_object_add(item, "room", json_object_get(v));
        }
    }
    if ((rc = mr_media_new_id(mid)))
        return rc;
    {
        const char *text = json_object_to_json_string_ext(item, JSON_C_TO_STRING_PLAIN);
        if ((rc = mr_media_parse(ctx->arena, mid, mr_str_c(text), &m, why, sizeof(why))))
            return rc == MR_EINVAL ? mr_resp_error(&ctx->resp, rc, "%s", why) : rc;
    }
    /* The item goes when its task does. */
    ttl_ms = ctx->conf->jobs.keep_s * 1000LL;
    if ((done_ms = mr_task_get(&t, "completed_at")))
        ttl_ms = strtoll(done_ms, NULL, 10) + ctx->conf->jobs.keep_s * 1000LL -
                 mr_clock_wall_ms();
    if (ttl_ms < 1000)
        ttl_ms = 1000;
    if ((rc = mr_media_store(ctx->store, mid, item, (long)ttl_ms)))
        return mr_resp_error(&ctx->resp, rc, "the media item cannot be stored (Redis)");
    mr_info("task %s registered as media item %s by %s", id, mid, who.user);
    if ((rc = mr_resolve(ctx, &m, &src)))
        return mr_answer_unresolved(ctx, &m, rc);
    if ((rc = mr_mediasource_json(ctx, &m, &src, &o)))
        return rc == MR_EINVAL ? mr_resp_error(&ctx->resp, rc, "cannot tell this server's "
                                               "own URL: set public_url") : rc;
    mr_resp_headerf(&ctx->resp, "Location", "/api/media/%s/source", mid);
    return mr_resp_json(&ctx->resp, 201, o);
}
