/* result.c - GET|HEAD /api/download-result/{id}[?file=NAME]: a completed
 * task's result file, to its owner (or the admin).
 *
 * With stream.offload "nginx", nginx sends the file itself: the answer is
 * an X-Accel-Redirect to jobs.accel_prefix, the internal location that
 * contrib/nginx maps to jobs.dir, and nginx does Range, HEAD and sendfile.
 * Elsewhere the file is streamed from here, with Range.  Either way the
 * answer is an attachment with a safe name (format/jobspec.h) and nosniff.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "fcgi/jobs/handlers.h"
#include "format/jobspec.h"
#include "http/range.h"

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
    const char *files = mr_task_get(t, "files");
    const char *one[2] = { mr_task_get(t, "output_file"), mr_task_get(t, "thumbnail_file") };
    struct json_object *a = files ? json_tokener_parse(files) : NULL;
    const char *found = NULL;

    if (a && json_object_is_type(a, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(a) && !found; i++) {
            const char *p = json_object_get_string(json_object_array_get_idx(a, i));
            const char *slash = p ? strchr(p, '/') : NULL;
            if (slash && (!want || !strcmp(slash + 1, want)))
                found = mr_arena_strdup(ctx->arena, slash + 1);
        }
    }
    json_object_put(a);
    for (size_t i = 0; i < 2 && !found; i++) {
        const char *slash = one[i] ? strchr(one[i], '/') : NULL;
        if (slash && (!want || !strcmp(slash + 1, want)))
            found = slash + 1;
    }
    return found;
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

int jobs_result(struct mr_ctx *ctx)
{
    struct caller who;
    struct mr_task t;
    struct mr_range range;
    struct stat st;
    char *want = NULL, *path, disp[2048];
    const char *id, *name, *status;
    long long left;
    int rc, fd;

    if ((rc = jobs_caller(ctx, &who)) || (rc = jobs_need_redis(ctx)) ||
        (rc = jobs_task(ctx, &who, &t)))
        return rc;
    if (mr_request_query(&ctx->req, ctx->arena, "file", &want) == MR_EINVAL)
        return mr_resp_error(&ctx->resp, MR_EINVAL, "malformed query string");
    id = mr_task_get(&t, "id");
    status = mr_task_get(&t, "status");
    if (!status || strcmp(status, "completed"))
        return mr_resp_error_status(&ctx->resp, 409, "conflict", "the task has not completed: "
                                    "there is no result yet");
    if (!(name = pick(ctx, &t, want)))
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, want ? "file: not a file of this task"
                                                            : "the task has no result file");
    if (!(path = mr_arena_printf(ctx->arena, "%s/%s/%s", ctx->conf->jobs.dir, id, name)))
        return MR_ENOMEM;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return mr_resp_error(&ctx->resp, MR_ENOTFOUND, "the result file is gone");
    }
    if (mr_jobs_content_disposition(name, disp, sizeof(disp)))
        snprintf(disp, sizeof(disp), "attachment");
    mr_resp_header(&ctx->resp, "Content-Type", type_of(name));
    mr_resp_header(&ctx->resp, "Content-Disposition", disp);
    mr_resp_header(&ctx->resp, "X-Content-Type-Options", "nosniff");
    mr_resp_header(&ctx->resp, "Cache-Control", "private, no-cache");
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
    return rc == MR_ECLIENT ? MR_ECLIENT : rc;
}

int jobs_task_media(struct mr_ctx *ctx)
{
    return mr_handle_not_implemented(ctx);
}
