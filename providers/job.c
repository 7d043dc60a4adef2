/* job.c - the "job" provider: a media job's result, registered as a media
 * item (POST /api/tasks/{id}/media; docs/jobs.md).
 *
 * Its source is {"task": ID, "file"?: NAME}: a completed task's result
 * file, its first one when no file is named.  Nothing is fetched: the
 * files are in jobs.dir and mediarelay-jobs serves them at
 * /api/results/{token}/{name}, where the token (core/token.h) seals the
 * task's id and an expiry.  So a player gets them from the relay's own
 * domain, with Range, and an HLS result's relative segment URIs resolve
 * to files of the same task under the same token.  The token lives
 * hls.token_ttl_s, never past the task's own expiry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "app/jobs.h"
#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/error.h"
#include "core/token.h"

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    return n && n <= 255 && s[0] != '.' && !strchr(s, '/') && !strchr(s, '\\') &&
           !mr_str_has_ctl(s, n);
}

static int job_validate(struct json_object *source, char *field, size_t fieldlen, char *msg,
                        size_t msglen)
{
    struct json_object *v;

    if (!json_object_object_get_ex(source, "task", &v) ||
        !json_object_is_type(v, json_type_string) ||
        !mr_task_id_ok(json_object_get_string(v), (size_t)json_object_get_string_len(v))) {
        snprintf(field, fieldlen, "task");
        snprintf(msg, msglen, "a task id (%d hex digits)", MR_TASK_ID_LEN);
        return MR_EINVAL;
    }
    if (json_object_object_get_ex(source, "file", &v) &&
        (!json_object_is_type(v, json_type_string) || !name_ok(json_object_get_string(v)))) {
        snprintf(field, fieldlen, "file");
        snprintf(msg, msglen, "a file name of the task's result");
        return MR_EINVAL;
    }
    json_object_object_foreach(source, key, val) {
        (void)val;
        if (strcmp(key, "task") && strcmp(key, "file")) {
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "unknown key");
            return MR_EINVAL;
        }
    }
    return MR_OK;
}

/* base/api/results/TOKEN/NAME, the name percent-encoded. */
static const char *file_url(struct mr_ctx *ctx, const char *base, const char *token,
                            const char *name)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    const char *url;

    if (!esc)
        return NULL;
    url = mr_arena_printf(ctx->arena, "%s/api/results/%s/%s", base, token, esc);
    curl_free(esc);
    return url;
}

/* "Title.en.vtt" -> "en"; NULL when the name has no language part. */
static const char *sub_lang(struct mr_ctx *ctx, const char *name, const char **type)
{
    const char *ext = strrchr(name, '.'), *dot;

    if (!ext || (strcmp(ext, ".vtt") && strcmp(ext, ".srt") && strcmp(ext, ".ass")))
        return NULL;
    *type = ext + 1;
    for (dot = ext - 1; dot > name && *dot != '.'; dot--)
        ;
    if (dot <= name || ext - dot - 1 < 1 || ext - dot - 1 > 32)
        return NULL;
    return mr_arena_strndup(ctx->arena, dot + 1, (size_t)(ext - dot - 1));
}

static int job_resolve(struct mr_ctx *ctx, const struct mr_media *media, struct mr_source *out)
{
    struct json_object *v;
    struct mr_task t;
    const char *task, *want = NULL, *files[MR_TASK_MAX_FILES], *main_file = NULL, *st, *done_ms;
    char data[2 + MR_TASK_ID_LEN + 1], *token, *base;
    time_t exp;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_object_object_get_ex(media->source, "task", &v))
        return MR_EINVAL;
    task = json_object_get_string(v);
    if (json_object_object_get_ex(media->source, "file", &v))
        want = json_object_get_string(v);
    rc = mr_task_read(ctx->store, ctx->arena, task, &t);
    if (rc == MR_ENOTFOUND)
        return mr_fail(ctx, media->id, rc, "its task %s is gone (expired after jobs.keep_s, or "
                       "deleted)", task);
    if (rc)
        return mr_fail(ctx, media->id, MR_EUNAVAILABLE, "its task cannot be read (Redis)");
    if (!(st = mr_task_get(&t, "status")) || strcmp(st, "completed"))
        return mr_fail(ctx, media->id, MR_ENOTFOUND, "its task has not completed");
    n = mr_task_files(&t, ctx->arena, files, MR_TASK_MAX_FILES);
    for (size_t i = 0; i < n && !main_file; i++)
        if (!want || !strcmp(files[i], want))
            main_file = files[i];
    if (!main_file)
        return mr_fail(ctx, media->id, MR_ENOTFOUND, "its task has no such result file");

    /* The token: hls.token_ttl_s, never past the task's expiry, in whole
     * minutes so that the URLs stay the same for a while. */
    exp = time(NULL) + ctx->conf->hls.token_ttl_s;
    if ((done_ms = mr_task_get(&t, "completed_at"))) {
        time_t end = (time_t)(strtoll(done_ms, NULL, 10) / 1000) + ctx->conf->jobs.keep_s;
        if (end < exp)
            exp = end;
    }
    exp -= exp % 60;
    if (exp <= time(NULL))
        return mr_fail(ctx, media->id, MR_ENOTFOUND, "its task is about to expire");
    snprintf(data, sizeof(data), "r:%s", task);
    if ((rc = mr_token_sign(ctx->proc->key, ctx->arena, exp, data, strlen(data), &token)))
        return rc;
    if ((rc = mr_request_base_url(&ctx->req, ctx->conf, ctx->arena, &base)))
        return rc;

    if (!(out->url = file_url(ctx, base, token, main_file)))
        return MR_ENOMEM;
    out->video_type = mr_video_type_from_url(main_file);
    out->expire_at = exp;
    out->title = media->title ? media->title : mr_task_get(&t, "title");
    out->subs = mr_arena_calloc(ctx->arena, n ? n : 1, sizeof(*out->subs));
    if (!out->subs)
        return MR_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *type = NULL, *lang = files[i] == main_file ? NULL
                                                               : sub_lang(ctx, files[i], &type);
        if (lang) {
            out->subs[out->nsubs].lang = lang;
            out->subs[out->nsubs].type = type;
            out->subs[out->nsubs].url = file_url(ctx, base, token, files[i]);
            out->nsubs++;
        } else if (files[i] != main_file && strstr(files[i], ".jpg") &&
                   !strcmp(strstr(files[i], ".jpg"), ".jpg")) {
            out->thumbnail = file_url(ctx, base, token, files[i]);
        }
    }
    return MR_OK;
}

const struct mr_provider mr_provider_job = {
    .name = "job",
    .validate = job_validate,
    .resolve = job_resolve,
    .own_files = true,
};
