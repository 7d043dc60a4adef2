/* run.c - one job: a yt-dlp download or an ffmpeg process, from the start
 * of its attempt to its record's last word.
 *
 * The programs run under core/child (no shell, their own process group, a
 * minimal environment, in the task's folder).  While one runs, a tick at
 * least every second writes the progress (at most every
 * jobs.progress_interval_ms, and only when it changed), learns whether the
 * task was canceled (its record says so: the group is killed and its
 * folder removed), renews the worker's claim on the queue entry (so that
 * it is not taken over while this worker lives; if it was, this attempt
 * stops and touches nothing), and stops a result that outgrows
 * jobs.max_bytes.  Every write is guarded by the attempt and the worker's
 * name (app/jobs.c), so an attempt that lost its task cannot overwrite
 * the one that took it over.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "app/jobs.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/child.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "format/jobspec.h"
#include "net/store.h"
#include "worker/worker.h"

#define FINISH_RETRY_MS 60000       /* Redis gone at the end: retry this long */
#define PROBE_MAX_BYTES (1 << 20)
#define MAX_HEADERS 16              /* a media input's upstream headers */

enum stop { GO, CANCELED, LOST, HAND_BACK, TOO_BIG };

struct run {
    struct job *j;
    const struct mr_conf *c;
    struct mr_store *s;
    struct mr_arena a;
    struct mr_task task;
    long attempt;
    char dir[4096];
    enum stop stop;

    /* what the record is told */
    int pct;
    long long bytes, total, eta_s;
    double speed;
    bool dirty;
    long long last_write, last_check, last_renew;

    /* yt-dlp */
    int nformats, stages;           /* formats to download, finished */
    long long stage_bytes;          /* of the finished ones */
    char title[MR_JOBS_MAX_STRING + 1];
    char file[MR_JOBS_MAX_STRING + 1];
    double span_lo, span_hi;        /* the part of the progress this step is */
    /* ffmpeg */
    double expect_s;
    struct mr_jobs_ffmpeg_progress ff;

    struct mr_child_lines lines;
    struct mr_child_tail err;
    struct mr_buf out;               /* ffprobe's JSON */
};

/* ---- the record --------------------------------------------------------------- */

/* How a guarded change answered: MR_OK to go on, or why to stop. */
static bool answered_stop(struct run *r, int rc)
{
    if (rc == 0) {
        r->stop = CANCELED;
        return true;
    }
    if (rc == -2 || rc == MR_ENOTFOUND) {
        r->stop = LOST;
        return true;
    }
    return false;                    /* 1, or Redis away for a moment */
}

static void write_progress(struct run *r)
{
    char pct[16], bytes[24], total[24], speed[32], eta[24];
    const char *f[] = { "progress", pct, "bytes", bytes, "total_bytes", total,
                        "speed", speed, "eta_s", eta, NULL };

    snprintf(pct, sizeof(pct), "%d", r->pct);
    snprintf(bytes, sizeof(bytes), "%lld", r->bytes);
    snprintf(total, sizeof(total), "%lld", r->total > 0 ? r->total : 0);
    snprintf(speed, sizeof(speed), "%.0f", r->speed > 0 ? r->speed : 0);
    if (r->eta_s >= 0)
        snprintf(eta, sizeof(eta), "%lld", r->eta_s);
    else
        eta[0] = '\0';
    if (!answered_stop(r, mr_task_update(r->s, r->j->m.task, r->attempt, r->j->w->id, f)))
        r->dirty = false;
}

static int tick(void *arg)
{
    struct run *r = arg;
    long long now = mr_clock_mono_ms();

    if (atomic_load(&r->j->w->hand_back)) {
        r->stop = HAND_BACK;
        return 1;
    }
    if (r->bytes > r->c->jobs.max_bytes) {
        r->stop = TOO_BIG;
        return 1;
    }
    if (r->dirty && now - r->last_write >= r->c->jobs.progress_interval_ms) {
        r->last_write = r->last_check = now;
        write_progress(r);
    } else if (now - r->last_check >= 1000) {
        /* Nothing new: still ask whether the task was canceled. */
        r->last_check = now;
        answered_stop(r, mr_task_update(r->s, r->j->m.task, r->attempt, r->j->w->id, NULL));
    }
    if (r->stop == GO && now - r->last_renew >= r->c->jobs.claim_idle_s * 1000 / 3) {
        r->last_renew = now;
        if (mr_jobs_renew(r->s, r->j->w->id, &r->j->m) == 0)
            r->stop = LOST;
    }
    return r->stop != GO;
}

static void set_pct(struct run *r, double frac)
{
    int p = (int)floor((r->span_lo + frac * (r->span_hi - r->span_lo)) * 100.0);

    if (p > 99)
        p = 99;              /* 100 is for the end, once the result is there */
    if (p > r->pct) {
        r->pct = p;
        r->dirty = true;
    }
}

/* ---- yt-dlp --------------------------------------------------------------------- */

static void ytdlp_line(void *arg, const char *s, size_t n)
{
    struct run *r = arg;
    struct mr_jobs_ytdlp_event *ev = malloc(sizeof(*ev));

    if (!ev)
        return;
    switch (mr_jobs_ytdlp_line(s, n, ev)) {
    case MR_LINE_PROGRESS: {
        double frac = -1;
        if (ev->total > 0 && ev->bytes >= 0)
            frac = (double)ev->bytes / (double)ev->total;
        else if (ev->frag_count > 0 && ev->frag_index >= 0)
            frac = (double)ev->frag_index / (double)ev->frag_count;
        if (frac > 1)
            frac = 1;
        if (ev->bytes >= 0)
            r->bytes = r->stage_bytes + ev->bytes;
        if (ev->total > 0)
            r->total = r->stage_bytes + ev->total;
        r->speed = ev->speed > 0 ? ev->speed : 0;
        r->eta_s = ev->eta_s;
        if (ev->finished) {
            r->stages++;
            r->stage_bytes = r->bytes;
            frac = 0;
        }
        if (frac >= 0)
            set_pct(r, ((double)r->stages + frac) / (r->nformats > 0 ? r->nformats : 1));
        r->dirty = true;
        break;
    }
    case MR_LINE_TITLE:
        snprintf(r->title, sizeof(r->title), "%s", ev->text);
        break;
    case MR_LINE_FORMATS:
        r->nformats = ev->nformats > 0 ? ev->nformats : 1;
        break;
    case MR_LINE_FILE:
        snprintf(r->file, sizeof(r->file), "%s", ev->text);
        break;
    default:
        break;
    }
    free(ev);
}

static int on_out_ytdlp(void *arg, const char *p, size_t n)
{
    struct run *r = arg;

    mr_child_lines_feed(&r->lines, p, n, ytdlp_line, r);
    return 0;
}

static int on_err(void *arg, const char *p, size_t n)
{
    mr_child_tail_add(&((struct run *)arg)->err, p, n);
    return 0;
}

/* ---- ffmpeg ------------------------------------------------------------------------ */

static void ffmpeg_line(void *arg, const char *s, size_t n)
{
    struct run *r = arg;

    if (mr_jobs_ffmpeg_line(s, n, &r->ff) != 1)
        return;
    if (r->ff.size >= 0)
        r->bytes = r->ff.size;
    if (r->ff.out_us >= 0 && r->expect_s > 0) {
        double done = (double)r->ff.out_us / 1e6;
        set_pct(r, done / r->expect_s);
        r->speed = r->ff.speed;       /* ffmpeg's: times real time */
        r->eta_s = r->ff.speed > 0 ? (long long)((r->expect_s - done) / r->ff.speed) : -1;
    }
    r->dirty = true;
}

static int on_out_ffmpeg(void *arg, const char *p, size_t n)
{
    struct run *r = arg;

    mr_child_lines_feed(&r->lines, p, n, ffmpeg_line, r);
    return 0;
}

static int on_out_probe(void *arg, const char *p, size_t n)
{
    return mr_buf_append(&((struct run *)arg)->out, p, n) ? 1 : 0;
}

/* ---- running a program -------------------------------------------------------------- */

static void on_pid(void *arg, pid_t pid, bool alive)
{
    (void)arg;
    mr_worker_guard(pid, alive);
}

/* Runs argv in the task's folder until it ends, the task's time is up or a
 * tick says stop.  MR_OK when it exited 0; else msg says why in one line
 * (r->stop says whether it was stopped). */
static int run_program(struct run *r, const char *what, char *const *argv,
                       int (*on_out)(void *, const char *, size_t), long long deadline,
                       char *msg, size_t msglen)
{
    struct mr_child_spec spec = {
        .path = argv[0], .argv = argv, .cwd = r->dir, .on_out = on_out, .on_err = on_err,
        .tick = tick, .tick_ms = r->c->jobs.progress_interval_ms < 1000
                                 ? r->c->jobs.progress_interval_ms : 1000,
        .on_pid = on_pid, .arg = r, .deadline_ms = deadline,
    };
    struct mr_child_result res;
    char st[64], fallback[128];
    int rc;

    memset(&r->lines, 0, sizeof(r->lines));
    memset(&r->err, 0, sizeof(r->err));
    if ((rc = mr_child_run(&spec, &res, msg, msglen)))
        return rc;
    switch (res.end) {
    case MR_CHILD_NOT_RUN:
        snprintf(msg, msglen, "%s cannot be run (%.200s): %s", what, argv[0],
                 res.spawn_errno == ENOENT ? "not found" : strerror(res.spawn_errno));
        return MR_EUNAVAILABLE;
    case MR_CHILD_STOPPED:
        snprintf(msg, msglen, "stopped");
        return MR_EINTERNAL;
    case MR_CHILD_TIMEOUT:
        snprintf(msg, msglen, "%s did not finish within jobs.timeout_s (%ld s)", what,
                 r->c->jobs.timeout_s);
        return MR_ETIMEOUT;
    case MR_CHILD_EXITED:
        break;
    }
    if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0)
        return MR_OK;
    mr_child_status_str(res.status, st, sizeof(st));
    snprintf(fallback, sizeof(fallback), "%s %s", what, st);
    mr_child_tail_message(&r->err, msg, msglen, fallback);
    return MR_EUPSTREAM;
}

/* ---- files ------------------------------------------------------------------------- */

/* The size of a folder's regular files (not following links). */
static long long dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    long long sum = 0;

    if (!d)
        return 0;
    while ((e = readdir(d))) {
        struct stat st;
        if (!fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode))
            sum += st.st_size;
    }
    closedir(d);
    return sum;
}

/* After a download: media.EXT (and media.LANG.vtt ...) become
 * "<safe title>.EXT"; the downloaded files as a JSON array of
 * "<task id>/<name>", the main file first. */
static int name_results(struct run *r, struct json_object **files, char *msg, size_t msglen)
{
    char base[MR_JOBS_MAX_NAME + 1];
    const char *main_file = strrchr(r->file, '/');
    DIR *d = opendir(r->dir);
    struct dirent *e;
    struct json_object *rest;

    main_file = main_file ? main_file + 1 : r->file;
    mr_jobs_safe_name(r->title, strlen(r->title), base, sizeof(base));
    *files = json_object_new_array();
    rest = json_object_new_array();
    if (!d || !*files || !rest) {
        snprintf(msg, msglen, "cannot read the task's folder");
        if (d)
            closedir(d);
        json_object_put(*files);
        json_object_put(rest);
        *files = NULL;
        return MR_EINTERNAL;
    }
    while ((e = readdir(d))) {
        struct stat st;
        char name[512];
        bool is_main;
        const char *suffix;
        if (e->d_name[0] == '.' || strncmp(e->d_name, "media.", 6) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
            continue;
        suffix = e->d_name + 5;         /* ".mp4", ".en.vtt" */
        if (strlen(suffix) > 32 || strstr(suffix, ".part") || strstr(suffix, ".ytdl"))
            continue;
        snprintf(name, sizeof(name), "%s%s", base, suffix);
        is_main = !strcmp(e->d_name, main_file);
        if (renameat(dirfd(d), e->d_name, dirfd(d), name)) {
            snprintf(name, sizeof(name), "%s", e->d_name);
        }
        {
            char *path = mr_arena_printf(&r->a, "%s/%s", r->j->m.task, name);
            struct json_object *arr = is_main ? *files : rest;
            if (path)
                json_object_array_add(arr, json_object_new_string(path));
        }
    }
    closedir(d);
    for (size_t i = 0; i < json_object_array_length(rest); i++)
        json_object_array_add(*files, json_object_get(json_object_array_get_idx(rest, i)));
    json_object_put(rest);
    if (!json_object_array_length(*files)) {
        /* yt-dlp skips, silently and with status 0, a file whose size it
         * knows to be past --max-filesize. */
        snprintf(msg, msglen, "yt-dlp ended without a file: a file larger than "
                 "jobs.max_bytes (%ld bytes) is not downloaded", r->c->jobs.max_bytes);
        json_object_put(*files);
        *files = NULL;
        return MR_EUPSTREAM;
    }
    return MR_OK;
}

/* ---- the two kinds of job ------------------------------------------------------------ */

static const char *req_str(struct json_object *req, const char *k)
{
    struct json_object *v;

    if (!json_object_object_get_ex(req, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Runs yt-dlp on url into the task's folder as STEM.EXT: format (NULL: its
 * default), subtitles as the request asks (include_subtitles,
 * subtitle_langs), headers (a JSON object of name: value, or NULL) sent
 * with every request.  r->file is then the file it wrote. */
static int run_ytdlp(struct run *r, const char *url, const char *format, const char *stem,
                     struct json_object *req, struct json_object *headers, long long deadline,
                     char *msg, size_t msglen)
{
    const struct mr_conf *c = r->c;
    struct json_object *langs = NULL, *subs = NULL;
    char *argv[64 + 2 * MAX_HEADERS];
    int n = 0;

    argv[n++] = c->jobs.ytdlp;
    argv[n++] = "--ignore-config";
    argv[n++] = "--no-cache-dir";
    argv[n++] = "--no-playlist";
    argv[n++] = "--no-warnings";
    argv[n++] = "--newline";
    argv[n++] = "--progress";
    argv[n++] = "--progress-template";
    argv[n++] = MR_JOBS_YTDLP_PROGRESS;
    argv[n++] = "--print";
    argv[n++] = MR_JOBS_YTDLP_PRINT_TITLE;
    argv[n++] = "--print";
    argv[n++] = MR_JOBS_YTDLP_PRINT_FORMATS;
    argv[n++] = "--print";
    argv[n++] = MR_JOBS_YTDLP_PRINT_FILE;
    argv[n++] = "--no-simulate";
    argv[n++] = "--socket-timeout";
    argv[n++] = "30";
    argv[n++] = "-P";
    argv[n++] = r->dir;
    argv[n++] = "-o";
    argv[n++] = mr_arena_printf(&r->a, "%s.%%(ext)s", stem);
    argv[n++] = mr_arena_printf(&r->a, "--max-filesize=%ld", c->jobs.max_bytes);
    if (strchr(c->jobs.ffmpeg, '/'))
        argv[n++] = mr_arena_printf(&r->a, "--ffmpeg-location=%s", c->jobs.ffmpeg);
    if (format)
        argv[n++] = mr_arena_printf(&r->a, "--format=%s", format);
    if (req)
        json_object_object_get_ex(req, "include_subtitles", &subs);
    if (subs && json_object_get_boolean(subs)) {
        struct mr_buf b;
        argv[n++] = "--write-subs";
        mr_buf_init(&b, 4096);
        if (json_object_object_get_ex(req, "subtitle_langs", &langs) &&
            json_object_is_type(langs, json_type_array) && json_object_array_length(langs)) {
            for (size_t i = 0; i < json_object_array_length(langs); i++)
                mr_buf_printf(&b, "%s%s", i ? "," : "",
                              json_object_get_string(json_object_array_get_idx(langs, i)));
        } else {
            mr_buf_puts(&b, "all");
        }
        argv[n++] = mr_arena_printf(&r->a, "--sub-langs=%s", b.p ? b.p : "all");
        mr_buf_free(&b);
    }
    if (headers && json_object_is_type(headers, json_type_object)) {
        int k = 0;
        json_object_object_foreach(headers, name, val) {
            /* Checked when the task was queued; one argument each. */
            if (k++ == MAX_HEADERS || !json_object_is_type(val, json_type_string))
                break;
            argv[n++] = "--add-header";
            argv[n++] = mr_arena_printf(&r->a, "%s:%s", name, json_object_get_string(val));
        }
    }
    argv[n++] = "--";
    argv[n++] = (char *)url;
    argv[n] = NULL;
    for (int i = 0; i < n; i++)
        if (!argv[i])
            return MR_ENOMEM;
    r->nformats = 1;
    r->stages = 0;
    r->stage_bytes = 0;
    r->file[0] = '\0';
    return run_program(r, "yt-dlp", argv, on_out_ytdlp, deadline, msg, msglen);
}

static int download(struct run *r, struct json_object *req, long long deadline,
                    const char ***fields, char *msg, size_t msglen)
{
    const struct mr_conf *c = r->c;
    const char *url = req_str(req, "url");
    struct json_object *files = NULL;
    int rc;

    if (!url) {
        snprintf(msg, msglen, "the task has no url");
        return MR_EINVAL;
    }
    if ((rc = run_ytdlp(r, url, req_str(req, "format_id"), "media", req, NULL, deadline, msg,
                        msglen)))
        return rc;
    if ((r->bytes = dir_bytes(r->dir)) > c->jobs.max_bytes) {
        r->stop = TOO_BIG;
        return MR_ETOOBIG;
    }
    if ((rc = name_results(r, &files, msg, msglen)))
        return rc;
    {
        const char *list = mr_arena_strdup(&r->a, json_object_to_json_string_ext(
                                               files, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        const char **f = mr_arena_calloc(&r->a, 12, sizeof(char *));
        json_object_put(files);
        if (!list || !f)
            return MR_ENOMEM;
        f[0] = "files";
        f[1] = list;
        f[2] = "title";
        f[3] = r->title;
        f[4] = "bytes";
        f[5] = mr_arena_printf(&r->a, "%lld", r->bytes);
        f[6] = "total_bytes";
        f[7] = f[5];
        *fields = f;
    }
    return MR_OK;
}

/* The input of a process task: jobs.dir/<task>/<name>, a regular file. */
static char *input_path(struct run *r, struct json_object *req, char *msg, size_t msglen)
{
    const char *task = req_str(req, "input_task"), *name = req_str(req, "input_name");
    struct stat st;
    char *path;

    if (!task || !name || !mr_task_id_ok(task, strlen(task)) || strchr(name, '/') ||
        name[0] == '.') {
        snprintf(msg, msglen, "the task has no valid input");
        return NULL;
    }
    path = mr_arena_printf(&r->a, "%s/%s/%s", r->c->jobs.dir, task, name);
    if (!path || lstat(path, &st) || !S_ISREG(st.st_mode)) {
        snprintf(msg, msglen, "the input file is gone (its task expired or was deleted)");
        return NULL;
    }
    return path;
}

static int process(struct run *r, struct json_object *req, long long deadline,
                   const char ***fields, char *msg, size_t msglen)
{
    const struct mr_conf *c = r->c;
    struct json_object *ops_json;
    struct mr_jobs_ops ops;
    struct mr_jobs_probe probe;
    struct mr_jobs_plan plan;
    char field[128], base[MR_JOBS_MAX_NAME + 1], *input, *stem, *dot;
    const char **f, *url;
    int rc, k = 0;

    if (!json_object_object_get_ex(req, "operations", &ops_json) ||
        mr_jobs_ops_parse(ops_json, &ops, field, sizeof(field), msg, msglen))
        return MR_EINVAL;
    if ((url = req_str(req, "input_url"))) {
        /* A media item's source: fetched first (the first half of the
         * progress), as ".input.EXT", a hidden file that is not a result. */
        struct json_object *headers = NULL;
        const char *slash;
        json_object_object_get_ex(req, "input_headers", &headers);
        r->span_hi = 0.5;
        if ((rc = run_ytdlp(r, url, NULL, ".input", NULL, headers, deadline, msg, msglen)))
            return rc;
        slash = strrchr(r->file, '/');
        if (!slash || (size_t)(slash - r->file) != strlen(r->dir) ||
            strncmp(r->file, r->dir, strlen(r->dir)) || strncmp(slash, "/.input.", 8)) {
            snprintf(msg, msglen, "yt-dlp did not write the media item's source");
            return MR_EUPSTREAM;
        }
        if (!(input = mr_arena_strdup(&r->a, r->file)))
            return MR_ENOMEM;
        r->span_lo = 0.5;
        r->span_hi = 1;
        r->bytes = 0;
    } else if (!(input = input_path(r, req, msg, msglen))) {
        return MR_ENOTFOUND;
    }

    /* What the input is: its duration and streams. */
    {
        char *argv[] = { c->jobs.ffprobe, "-v", "error", "-print_format", "json",
                         "-show_format", "-show_streams", "-protocol_whitelist", "file",
                         "--", input, NULL };
        mr_buf_init(&r->out, PROBE_MAX_BYTES);
        rc = run_program(r, "ffprobe", argv, on_out_probe, deadline, msg, msglen);
        if (!rc && mr_jobs_probe_parse(r->out.p ? r->out.p : "", r->out.len, &probe, msg,
                                       msglen))
            rc = MR_EUPSTREAM;
        mr_buf_free(&r->out);
        if (rc)
            return rc;
    }
    if (url)
        stem = mr_arena_strdup(&r->a, req_str(req, "input_title") ? req_str(req, "input_title")
                                                                  : "media");
    else
        stem = mr_arena_strdup(&r->a, strrchr(input, '/') + 1);
    if (!stem)
        return MR_ENOMEM;
    if (!url && (dot = strrchr(stem, '.')) && dot != stem)
        *dot = '\0';
    mr_jobs_safe_name(stem, strlen(stem), base, sizeof(base));
    if (mr_jobs_plan(&r->a, &ops, &probe, c->jobs.ffmpeg, input, r->dir, base,
                     c->jobs.max_bytes, &plan, msg, msglen))
        return MR_EINVAL;
    r->expect_s = plan.expect_s;
    memset(&r->ff, 0, sizeof(r->ff));
    if (plan.main.n &&
        (rc = run_program(r, "ffmpeg", (char *const *)plan.main.v, on_out_ffmpeg, deadline,
                          msg, msglen)))
        return rc;
    r->expect_s = 0;       /* the thumbnail's progress is not the result's */
    if (plan.thumb.n &&
        (rc = run_program(r, "ffmpeg", (char *const *)plan.thumb.v, on_out_ffmpeg, deadline,
                          msg, msglen)))
        return rc;
    if (url)
        unlink(input);
    if ((r->bytes = dir_bytes(r->dir)) > c->jobs.max_bytes) {
        r->stop = TOO_BIG;
        return MR_ETOOBIG;
    }
    if (!(f = mr_arena_calloc(&r->a, 12, sizeof(char *))))
        return MR_ENOMEM;
    f[k++] = "output_file";
    f[k++] = mr_arena_printf(&r->a, "%s/%s", r->j->m.task, plan.output);
    if (plan.thumb_output) {
        f[k++] = "thumbnail_file";
        f[k++] = mr_arena_printf(&r->a, "%s/%s", r->j->m.task, plan.thumb_output);
    }
    f[k++] = "title";
    f[k++] = mr_arena_strdup(&r->a, base);   /* base is this frame's */
    f[k++] = "bytes";
    f[k] = mr_arena_printf(&r->a, "%lld", r->bytes);
    f[k + 2] = f[k];
    f[k + 1] = "total_bytes";
    *fields = f;
    return MR_OK;
}

/* ---- the thread ---------------------------------------------------------------------- */

/* mr_task_finish, retried while Redis is away (a restart): the work is
 * done, only its record is missing. */
static int finish(struct run *r, const char *status, const char *const *fields)
{
    long long until = mr_clock_mono_ms() + FINISH_RETRY_MS;
    int rc;

    for (;;) {
        rc = mr_task_finish(r->s, r->c, r->j->m.task, r->attempt, r->j->w->id, status, fields);
        if (rc != MR_EUNAVAILABLE || mr_clock_mono_ms() >= until)
            return rc;
        struct timespec ts = { 0, 500 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void run_job(struct run *r)
{
    struct job *j = r->j;
    const char *reqs, *st;
    struct json_object *req = NULL;
    const char **fields = NULL;
    char msg[512] = "";
    long long deadline;
    int rc;

    rc = mr_task_start(r->s, r->c, &j->m, j->w->id, &r->attempt);
    if (rc == MR_EUNAVAILABLE) {
        mr_warn("job %s: Redis is away; left pending for later", j->m.task);
        return;
    }
    if (rc != 1) {
        /* Gone, ended, canceled before it ran, or failed for too many
         * attempts: nothing to run. */
        bool canceled = rc == MR_ENOTFOUND;
        if (rc == 0 && !mr_task_read(r->s, &r->a, j->m.task, &r->task))
            canceled = (st = mr_task_get(&r->task, "status")) && !strcmp(st, "canceled");
        if (canceled || rc == 2)
            mr_jobs_remove_dir(r->c, j->m.task);   /* a completed one keeps its results */
        mr_jobs_ack(r->s, &j->m);
        return;
    }
    if (mr_task_read(r->s, &r->a, j->m.task, &r->task) ||
        !(reqs = mr_task_get(&r->task, "request")) ||
        mr_json_parse_object(&r->a, reqs, strlen(reqs), 16, &req)) {
        snprintf(msg, sizeof(msg), "the task's request cannot be read");
        goto failed;
    }
    snprintf(r->dir, sizeof(r->dir), "%s/%s", r->c->jobs.dir, j->m.task);
    if (mkdir(r->dir, 0755) && errno != EEXIST) {
        snprintf(msg, sizeof(msg), "cannot make the task's folder: %s", strerror(errno));
        goto failed;
    }
    mr_info("job %s (%s, attempt %ld) started", j->m.task, j->process ? "process" : "download",
            r->attempt);
    r->last_renew = r->last_check = mr_clock_mono_ms();
    r->eta_s = -1;
    deadline = mr_clock_mono_ms() + r->c->jobs.timeout_s * 1000;
    rc = j->process ? process(r, req, deadline, &fields, msg, sizeof(msg))
                    : download(r, req, deadline, &fields, msg, sizeof(msg));
    switch (r->stop) {
    case CANCELED:
        mr_info("job %s canceled", j->m.task);
        mr_jobs_remove_dir(r->c, j->m.task);
        mr_jobs_ack(r->s, &j->m);
        return;
    case LOST:
        mr_warn("job %s was taken over by another worker: this attempt stops", j->m.task);
        return;
    case HAND_BACK:
        if (mr_task_handback(r->s, r->c, &j->m, r->attempt, j->w->id) == 1)
            mr_info("job %s handed back to the queue", j->m.task);
        return;
    case TOO_BIG:
        snprintf(msg, sizeof(msg), "the result grew past jobs.max_bytes (%ld bytes)",
                 r->c->jobs.max_bytes);
        rc = MR_ETOOBIG;
        break;
    case GO:
        break;
    }
    if (!rc) {
        const char *pct[] = { "progress", "100", NULL };
        const char *all[16];
        size_t k = 0;
        for (size_t i = 0; fields && fields[i] && k < 12; i += 2) {
            all[k++] = fields[i];
            all[k++] = fields[i + 1] ? fields[i + 1] : "";
        }
        all[k++] = pct[0];
        all[k++] = pct[1];
        all[k] = NULL;
        rc = finish(r, "completed", all);
        if (rc == 1 || rc == MR_OK) {
            mr_info("job %s completed", j->m.task);
            mr_jobs_ack(r->s, &j->m);
        } else if (rc == 0) {
            mr_jobs_remove_dir(r->c, j->m.task);   /* canceled at the last moment */
            mr_jobs_ack(r->s, &j->m);
        } else {
            mr_warn("job %s: done, but its record cannot be written (%s)", j->m.task,
                    mr_strerror(rc));
        }
        return;
    }
failed:
    {
        const char *f[] = { "error", msg, NULL };
        mr_warn("job %s failed: %s", j->m.task, msg);
        mr_jobs_remove_dir(r->c, j->m.task);
        rc = finish(r, "failed", f);
        if (rc != MR_EUNAVAILABLE && rc != -2)
            mr_jobs_ack(r->s, &j->m);
    }
}

void *mr_worker_run(void *arg)
{
    struct job *j = arg;
    struct run *r = calloc(1, sizeof(*r));

    if (r && (r->s = mr_store_new(j->w->conf, j->w->fallback))) {
        r->j = j;
        r->c = j->w->conf;
        r->span_hi = 1;
        mr_arena_init(&r->a, 16384);
        run_job(r);
        mr_arena_free(&r->a);
        mr_store_free(r->s);
    } else {
        mr_error("job %s: out of memory; left pending", j->m.task);
    }
    free(r);
    atomic_store(&j->done, true);
    return NULL;
}
