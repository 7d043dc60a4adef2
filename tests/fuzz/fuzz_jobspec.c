/* fuzz_jobspec.c - every parser of jobspec.h on arbitrary bytes: the input
 * as ffprobe's JSON, as yt-dlp's --dump-single-json, line by line as
 * yt-dlp's and ffmpeg's progress, as a title to make a file name of, and
 * (parsed as JSON) as operations and as times.  An input holding a line
 * "====" is also read as operations before it and ffprobe's JSON after it,
 * and when both parse the ffmpeg commands are planned and checked. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "core/arena.h"
#include "format/jobspec.h"

#define SEPARATOR "\n====\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct json_object *json(const char *p, size_t n)
{
    struct json_tokener *tok = json_tokener_new_ex(MR_JOBS_JSON_DEPTH);
    struct json_object *o;

    if (!tok)
        return NULL;
    o = json_tokener_parse_ex(tok, p, (int)n);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static void check_argv(const struct mr_jobs_argv *v)
{
    if (v->n > MR_JOBS_MAX_ARGS || v->v[v->n])
        abort();
    for (size_t i = 0; i < v->n; i++)
        if (!v->v[i] || !strlen(v->v[i]))
            abort();
}

static bool ops_equal(const struct mr_jobs_ops *a, const struct mr_jobs_ops *b)
{
    return a->trim == b->trim && a->start == b->start && a->duration == b->duration &&
           a->exact == b->exact && a->width == b->width && a->height == b->height &&
           a->crf == b->crf && a->fps == b->fps && a->format == b->format &&
           a->audio_only == b->audio_only && a->thumbnail == b->thumbnail &&
           a->thumbnail_at == b->thumbnail_at;
}

/* What mr_jobs_safe_name promises. */
static void check_name(const char *s, size_t n)
{
    if (!n || n > MR_JOBS_MAX_NAME || strlen(s) != n || strchr(".- ", s[0]) ||
        strchr(". ", s[n - 1]) || strpbrk(s, "/\\:*?\"<>|"))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

static void ops_and_time(struct json_object *o)
{
    struct mr_jobs_ops ops, again;
    char field[128], msg[256];
    double t;

    mr_jobs_time(o, &t);
    if (json_object_is_type(o, json_type_object)) {
        json_object_object_foreach(o, key, val) {
            (void)key;
            mr_jobs_time(val, &t);
        }
    }
    if (!mr_jobs_ops_parse(o, &ops, field, sizeof(field), msg, sizeof(msg))) {
        /* The canonical JSON reads back as the same operations. */
        struct json_object *j = mr_jobs_ops_to_json(&ops);
        if (!j || mr_jobs_ops_parse(j, &again, field, sizeof(field), msg, sizeof(msg)) ||
            !ops_equal(&ops, &again))
            abort();
        json_object_put(j);
    } else if (!field[0] || !msg[0]) {
        abort();
    }
}

static void plan(const char *ops_text, size_t ops_len, const char *probe, size_t probe_len)
{
    struct json_object *o = json(ops_text, ops_len);
    struct mr_jobs_ops ops;
    struct mr_jobs_probe in;
    struct mr_jobs_plan p;
    struct mr_arena a;
    char field[128], msg[256];

    if (o && !mr_jobs_ops_parse(o, &ops, field, sizeof(field), msg, sizeof(msg)) &&
        !mr_jobs_probe_parse(probe, probe_len, &in, msg, sizeof(msg))) {
        mr_arena_init(&a, 0);
        if (!mr_jobs_plan(&a, &ops, &in, "ffmpeg", "/in/input.mp4", "/out", "media", 1LL << 30,
                          &p, msg, sizeof(msg))) {
            check_argv(&p.main);
            check_argv(&p.thumb);
            if (!p.output || (!p.main.n && !p.thumb.n) || (ops.thumbnail && !p.thumb_output))
                abort();
        } else if (!msg[0]) {
            abort();
        }
        mr_arena_free(&a);
    }
    json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data, *sep;
    struct mr_jobs_ytdlp_event *ev = malloc(sizeof(*ev));
    struct mr_jobs_ffmpeg_progress fp = { -1, -1, 0, false };
    struct mr_jobs_probe probe;
    struct json_object *o;
    char msg[256], name[MR_JOBS_MAX_NAME + 1], cd[1024];
    size_t n;

    if (!ev || size > INT32_MAX) {
        free(ev);
        return 0;
    }
    mr_jobs_probe_parse(text, size, &probe, msg, sizeof(msg));
    if (!mr_jobs_analyze_map(text, size, &o, msg, sizeof(msg))) {
        if (!json_object_to_json_string(o))
            abort();
        json_object_put(o);
    }
    if ((o = json(text, size))) {
        ops_and_time(o);
        json_object_put(o);
    }
    for (size_t i = 0; i < size;) {
        const char *nl = memchr(text + i, '\n', size - i);
        size_t len = nl ? (size_t)(nl - text - i) : size - i;
        if (mr_jobs_ytdlp_line(text + i, len, ev) != ev->kind ||
            strlen(ev->text) > MR_JOBS_MAX_STRING)
            abort();
        mr_jobs_ffmpeg_line(text + i, len, &fp);
        i += len + 1;
    }
    n = mr_jobs_safe_name(text, size, name, sizeof(name));
    check_name(name, n);
    if (mr_jobs_content_disposition(name, cd, sizeof(cd)))
        abort();
    if (size <= MR_JOBS_MAX_FORMAT_ID + 1) {
        char s[MR_JOBS_MAX_FORMAT_ID + 2];
        memcpy(s, text, size);
        s[size] = '\0';
        mr_jobs_format_id_ok(s);
        mr_jobs_lang_ok(s);
    }
    if ((sep = memmem(text, size, SEPARATOR, sizeof(SEPARATOR) - 1))) {
        size_t k = (size_t)(sep - text) + sizeof(SEPARATOR) - 1;
        plan(text, (size_t)(sep - text), text + k, size - k);
    }
    free(ev);
    return 0;
}
