/* ytdlp.c - the "ytdlp" provider: any page yt-dlp understands, as the last resort.
 *
 * resolve() runs `yt-dlp --ignore-config --no-cache-dir --dump-single-json …
 * -- URL` with posix_spawn and an argv array (never a shell), in a process
 * group of its own, stdin from /dev/null, stdout and stderr into O_CLOEXEC
 * pipes that one poll() loop drains against a deadline: past it, or past
 * the output cap, the whole group gets SIGKILL; the child is always reaped.
 * The JSON is then mapped to a struct mr_source by a pure function
 * (mr_ytdlp_map), so the choice of format is tested without a process.
 * Caching, refresh and single-flight are the resolver's (.remote = true):
 * 50 viewers start one yt-dlp.
 *
 * What yt-dlp does is what this file says, not what its surroundings say:
 * no configuration file (system, user, portable, the working directory's)
 * is read, and it gets an environment of three variables -- the server's
 * PATH, HOME=/nonexistent (no ~/.config, plugins, .netrc or cache of the
 * service user) and LANG=C.UTF-8 -- so neither secrets in the server's
 * environment nor PYTHON*, XDG_* or proxy variables reach it (the relay's
 * own transfers ignore proxy variables too); it runs in "/".  At most
 * providers.ytdlp.max_running runs are in flight per process; one more is
 * refused at once (MR_EOVERLOADED: 503 with Retry-After) rather than
 * queued, since a queued request would hold one of the process's few
 * threads.
 */
#include "providers/ytdlp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "app/media.h"
#include "app/provider.h"
#include "app/server.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/header.h"
#include "core/json.h"
#include "core/log.h"
#include "core/str.h"
#include "net/upstream.h"

#define MAX_TITLE 1024
#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* providers.ytdlp (app/provider.h): its section of mediarelay.json. */
struct ytdlp_conf {
    char *mode;
    char *path;
    long timeout_s;
    long max_output_bytes;
    long max_running;            /* yt-dlp runs at once, per process */
};

static const struct mr_conf_field ytdlp_fields[] = {
#define Y(m) offsetof(struct ytdlp_conf, m)
    MR_PROVIDER_MODE(struct ytdlp_conf, "proxy"),
    MR_CONF_STR("path", Y(path), "yt-dlp"),
    MR_CONF_INT("timeout_s", Y(timeout_s), 30, 1, 600),
    MR_CONF_INT("max_output_bytes", Y(max_output_bytes), 16 << 20, 4096, 256 << 20),
    MR_CONF_INT("max_running", Y(max_running), 4, 1, 1024),
#undef Y
    MR_CONF_END
};

extern const struct mr_provider mr_provider_ytdlp;

static const struct ytdlp_conf *settings(const struct mr_conf *c)
{
    return mr_conf_settings(c, &mr_provider_ytdlp.conf);
}

static bool ytdlp_is_direct(const struct mr_conf *c)
{
    return !strcmp(settings(c)->mode, "direct");
}

/* --- small checks ------------------------------------------------------------ */

/* At most max bytes, none a control byte or a space. */
static bool no_ctl(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    return n <= max && !mr_str_has_ctl(s, n) && !memchr(s, ' ', n);
}

bool mr_ytdlp_url_ok(const char *s)
{
    if (strncasecmp(s, "http://", 7) && strncasecmp(s, "https://", 8))
        return false;
    if (!s[strncasecmp(s, "http://", 7) ? 8 : 7])
        return false;   /* no host */
    return no_ctl(s, MR_YTDLP_MAX_URL);
}

/* One printable ASCII line: other bytes become '?', cut at msglen - 1. */
static void sanitize_line(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t k = 0;

    if (!dstlen)
        return;
    for (size_t i = 0; i < n && k + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[k++] = mr_is_vchar(c) || c == ' ' ? (char)c : '?';
    }
    dst[k] = '\0';
}

/* --- running yt-dlp ------------------------------------------------------------ */

/* yt-dlp's whole environment, made once per process. */
static char *child_env[4];
static pthread_once_t child_env_once = PTHREAD_ONCE_INIT;

static void child_env_init(void)
{
    static char path_default[] = "PATH=" DEFAULT_PATH;
    static char home[] = "HOME=/nonexistent";
    static char lang[] = "LANG=C.UTF-8";
    const char *path = getenv("PATH");
    char *p = NULL;

    if (path && *path && (p = malloc(strlen(path) + 6)))
        snprintf(p, strlen(path) + 6, "PATH=%s", path);    /* kept for the process */
    child_env[0] = p ? p : path_default;
    child_env[1] = home;
    child_env[2] = lang;
    child_env[3] = NULL;
}

/* A pipe whose ends are O_CLOEXEC and above stderr, so that the dup2 of the
 * file actions always makes a fresh, inheritable descriptor. */
static int cloexec_pipe(int p[2])
{
    if (pipe2(p, O_CLOEXEC))
        return -1;
    for (int i = 0; i < 2; i++) {
        if (p[i] <= 2) {
            int fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
            if (fd < 0) {
                close(p[0]);
                close(p[1]);
                return -1;
            }
            close(p[i]);
            p[i] = fd;
        }
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Keeps the last MR_YTDLP_STDERR_TAIL bytes of what arrives. */
struct tail {
    char b[2 * MR_YTDLP_STDERR_TAIL];
    size_t n;
};

static void tail_add(struct tail *t, const char *p, size_t n)
{
    if (n >= MR_YTDLP_STDERR_TAIL) {
        memcpy(t->b, p + n - MR_YTDLP_STDERR_TAIL, MR_YTDLP_STDERR_TAIL);
        t->n = MR_YTDLP_STDERR_TAIL;
        return;
    }
    if (t->n + n > sizeof(t->b)) {
        size_t keep = MR_YTDLP_STDERR_TAIL - n;
        memmove(t->b, t->b + t->n - keep, keep);
        t->n = keep;
    }
    memcpy(t->b + t->n, p, n);
    t->n += n;
}

/* The line to report: the last one that starts with "ERROR:", else the last
 * non-empty one. */
static void tail_message(const struct tail *t, char *msg, size_t msglen, const char *fallback)
{
    const char *best = NULL, *last = NULL;
    size_t bestn = 0, lastn = 0, i = 0;

    while (i < t->n) {
        size_t j = i;
        while (j < t->n && t->b[j] != '\n' && t->b[j] != '\r')
            j++;
        if (j > i) {
            last = t->b + i;
            lastn = j - i;
            if (lastn >= 6 && !memcmp(last, "ERROR:", 6)) {
                best = last;
                bestn = lastn;
            }
        }
        i = j + 1;
    }
    if (!best) {
        best = last;
        bestn = lastn;
    }
    if (!best) {
        snprintf(msg, msglen, "%s", fallback);
        return;
    }
    sanitize_line(msg, msglen < MR_YTDLP_MAX_MESSAGE + 1 ? msglen : MR_YTDLP_MAX_MESSAGE + 1,
                  best, bestn);
}

/* Reaps pid, waiting until deadline (ms) at most; then its whole group is
 * killed.  The group is killed before the reap in every case, while the
 * unreaped leader still holds the group's id: nothing it started outlives
 * it, and no other group can be hit.  Returns the wait status. */
static int reap(pid_t pid, long long deadline, bool *timed_out)
{
    siginfo_t si;
    int status = 0;

    for (;;) {
        memset(&si, 0, sizeof(si));
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
            if (si.si_pid == pid)
                break;      /* exited, not reaped yet */
        } else if (errno != EINTR) {
            break;
        }
        if (mr_clock_mono_ms() >= deadline) {
            *timed_out = true;
            break;
        }
        {
            struct timespec ts = { 0, 10 * 1000000L };
            nanosleep(&ts, NULL);
        }
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

int mr_ytdlp_run(const char *path, const char *url, long timeout_s, struct mr_buf *out,
                 char *msg, size_t msglen)
{
    char *const argv[] = {
        (char *)path, "--ignore-config", "--no-cache-dir", "--dump-single-json",
        "--no-playlist", "--no-warnings", "--no-progress", "--", (char *)url, NULL
    };
    int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false, timed_out = false, too_big = false;
    struct tail *err = NULL;
    long long deadline;
    sigset_t set;
    pid_t pid = -1;
    int rc = MR_EINTERNAL, status;

    snprintf(msg, msglen, "yt-dlp failed");
    if (!path || !*path || !url) {
        snprintf(msg, msglen, "providers.ytdlp.path is empty");
        return MR_EUNAVAILABLE;
    }
    pthread_once(&child_env_once, child_env_init);
    if (!(err = calloc(1, sizeof(*err))))
        return MR_ENOMEM;
    if (cloexec_pipe(outp) || cloexec_pipe(errp)) {
        snprintf(msg, msglen, "cannot make a pipe: %s", strerror(errno));
        goto fail;
    }
    if (posix_spawn_file_actions_init(&fa))
        goto fail;
    fa_ok = true;
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1) ||
        posix_spawn_file_actions_adddup2(&fa, errp[1], 2))
        goto fail;
#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 34)
    /* Descriptors that are not O_CLOEXEC (a FastCGI connection, Redis,
     * curl's) must not reach yt-dlp. */
    if (posix_spawn_file_actions_addclosefrom_np(&fa, 3))
        goto fail;
#endif
#if __GLIBC_PREREQ(2, 29)
    /* In "/", not the server's directory: nothing yt-dlp would find or
     * leave relative to it (a yt-dlp.conf there is its "home" config). */
    if (posix_spawn_file_actions_addchdir_np(&fa, "/"))
        goto fail;
#endif
#endif
    if (posix_spawnattr_init(&attr))
        goto fail;
    attr_ok = true;
    /* Its own group (to kill all of it), an empty signal mask (the server's
     * threads block SIGTERM) and default dispositions (it ignores SIGPIPE). */
    sigemptyset(&set);
    if (posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF) ||
        posix_spawnattr_setpgroup(&attr, 0) || posix_spawnattr_setsigmask(&attr, &set))
        goto fail;
    sigfillset(&set);
    sigdelset(&set, SIGKILL);
    sigdelset(&set, SIGSTOP);
    if (posix_spawnattr_setsigdefault(&attr, &set))
        goto fail;

    {
        /* posix_spawnp looks the name up in the server's own PATH. */
        int e = strchr(path, '/') ? posix_spawn(&pid, path, &fa, &attr, argv, child_env)
                                  : posix_spawnp(&pid, path, &fa, &attr, argv, child_env);
        if (e) {
            pid = -1;
            snprintf(msg, msglen, "yt-dlp cannot be run (providers.ytdlp.path \"%.200s\"): %s",
                     path, e == ENOENT ? "not found" : strerror(e));
            rc = e == ENOENT || e == EACCES || e == ENOEXEC || e == ENOTDIR
                 ? MR_EUNAVAILABLE : MR_EINTERNAL;
            goto fail;
        }
    }
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);
    fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);

    deadline = mr_clock_mono_ms() + timeout_s * 1000;
    while (outp[0] >= 0 || errp[0] >= 0) {
        struct pollfd pf[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
        long long left = deadline - mr_clock_mono_ms();
        char chunk[16384];
        int n;

        if (left <= 0) {
            timed_out = true;
            break;
        }
        n = poll(pf, 2, left > 1000 ? 1000 : (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            int *fd = i ? &errp[0] : &outp[0];
            ssize_t got;
            if (*fd < 0 || !pf[i].revents)
                continue;
            got = read(*fd, chunk, sizeof(chunk));
            if (got > 0) {
                if (i)
                    tail_add(err, chunk, (size_t)got);
                else if (mr_buf_append(out, chunk, (size_t)got))
                    too_big = true;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_fd(fd);
            }
        }
        if (too_big)
            break;
    }
    /* Whatever ended the loop, a child that is still there gets until the
     * deadline to exit; a timeout or a cap overrun ends it at once. */
    status = reap(pid, timed_out || too_big ? 0 : deadline, &timed_out);
    pid = -1;
    if (too_big) {
        snprintf(msg, msglen, "yt-dlp printed more than providers.ytdlp.max_output_bytes "
                 "(%zu bytes)", out->cap);
        rc = MR_EUPSTREAM;
    } else if (timed_out) {
        snprintf(msg, msglen, "yt-dlp did not finish within providers.ytdlp.timeout_s (%ld s)",
                 timeout_s);
        rc = MR_ETIMEOUT;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        rc = MR_OK;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        /* The exec failed after all (where posix_spawn cannot tell, as
         * under valgrind), or a wrapper's exec did: the shell's 127. */
        char what[300];
        snprintf(what, sizeof(what), "yt-dlp cannot be run (providers.ytdlp.path \"%.200s\"): "
                 "not found", path);
        tail_message(err, msg, msglen, what);
        rc = MR_EUNAVAILABLE;
    } else {
        char what[64];
        if (WIFEXITED(status))
            snprintf(what, sizeof(what), "yt-dlp exited with status %d", WEXITSTATUS(status));
        else
            snprintf(what, sizeof(what), "yt-dlp was killed by signal %d",
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        tail_message(err, msg, msglen, what);
        rc = MR_EUPSTREAM;
    }

fail:
    if (pid > 0) {
        kill(-pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    free(err);
    return rc;
}

/* --- mapping its JSON ------------------------------------------------------------ */

enum kind { K_NONE, K_FILE, K_HLS, K_DASH };

struct cand {
    struct json_object *f;
    enum kind kind;
    const char *url;
    const char *type;
    long height;
    double tbr;
    size_t index;
};

static const char *str_of(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static double num_of(struct json_object *o, const char *k)
{
    struct json_object *v;
    if (!o || !json_object_object_get_ex(o, k, &v) ||
        !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return 0;
    return json_object_get_double(v);
}

static const char *url_of(struct json_object *o, const char *k)
{
    const char *s = str_of(o, k);
    return s && mr_ytdlp_url_ok(s) ? s : NULL;
}

static bool is_none(const char *codec)
{
    return codec && !strcmp(codec, "none");
}

/* A file's type from yt-dlp's ext; NULL lets the relay sniff it. */
static const char *type_of_ext(const char *ext)
{
    static const struct {
        const char *ext, *type;
    } map[] = {
        { "mp4", "mp4" }, { "m4v", "mp4" }, { "mov", "mp4" }, { "m4a", "mp4" },
        { "webm", "webm" }, { "flv", "flv" }, { "mkv", "mkv" }, { "ts", "ts" },
    };
    for (size_t i = 0; ext && i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcasecmp(ext, map[i].ext))
            return map[i].type;
    return NULL;
}

/* What a format (or the top-level object, which is the chosen format) is. */
static enum kind classify(struct json_object *f, const char **url, const char **type)
{
    const char *proto = str_of(f, "protocol");
    const char *vc = str_of(f, "vcodec"), *ac = str_of(f, "acodec");

    if (is_none(vc) && !(proto && !strcmp(proto, "http_dash_segments")))
        return K_NONE;      /* audio only */
    if (!proto || !strcmp(proto, "http") || !strcmp(proto, "https")) {
        if (is_none(ac))
            return K_NONE;  /* video only: no sound on its own */
        if (!(*url = url_of(f, "url")))
            return K_NONE;
        *type = type_of_ext(str_of(f, "ext"));
        return K_FILE;
    }
    if (!strcmp(proto, "m3u8") || !strcmp(proto, "m3u8_native")) {
        /* A variant whose audio is a separate rendition plays with it
         * only from the master playlist. */
        *url = is_none(ac) ? url_of(f, "manifest_url") : NULL;
        if (!*url && !is_none(ac))
            *url = url_of(f, "url");
        *type = "hls";
        return *url ? K_HLS : K_NONE;
    }
    if (!strcmp(proto, "http_dash_segments")) {
        *url = url_of(f, "manifest_url");
        *type = "mpd";
        return *url ? K_DASH : K_NONE;
    }
    return K_NONE;          /* rtmp, f4m, ism, mhtml, websocket_frag, … */
}

/* Better first: kind (file, HLS, DASH), then height, tbr, yt-dlp's order
 * (it lists formats worst to best). */
static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->height != b->height)
        return a->height > b->height ? -1 : 1;
    if (a->tbr != b->tbr)
        return a->tbr > b->tbr ? -1 : 1;
    return a->index > b->index ? -1 : a->index < b->index;
}

/* Headers a browser sends anyway (they say nothing about the upstream);
 * what is hop-by-hop, frames the message or is the relay's own is the
 * upstream filter's to refuse (mr_header_refused). */
static bool header_dropped(const char *name)
{
    static const char *const drop[] = {
        "Accept", "Accept-Language", "Accept-Encoding", "Accept-Charset", "Content-Type",
        "Cache-Control", "Pragma", "DNT", "Upgrade-Insecure-Requests", "Priority", NULL
    };
    if (!strncasecmp(name, "Sec-", 4))
        return true;    /* Sec-Fetch-*, Sec-Ch-Ua*: the browser's own */
    for (const char *const *d = drop; *d; d++)
        if (!strcasecmp(name, *d))
            return true;
    return false;
}

static int map_headers(struct mr_arena *a, struct json_object *h, struct mr_source *out)
{
    if (!h || !json_object_is_type(h, json_type_object))
        return MR_OK;
    out->headers.v = mr_arena_calloc(a, MR_YTDLP_MAX_HEADERS, sizeof(*out->headers.v));
    if (!out->headers.v)
        return MR_ENOMEM;
    json_object_object_foreach(h, name, v) {
        const char *val;
        if (out->headers.n == MR_YTDLP_MAX_HEADERS)
            break;
        if (!json_object_is_type(v, json_type_string) || header_dropped(name))
            continue;
        val = json_object_get_string(v);
        if (strlen(name) > 64 || strlen(val) >= MR_YTDLP_MAX_HEADER ||
            (size_t)json_object_get_string_len(v) != strlen(val) ||
            mr_header_refused(name, val, true))
            continue;
        out->headers.v[out->headers.n++] = (struct mr_header){ name, val };
    }
    return MR_OK;
}

static bool lang_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 32)
        return false;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

static bool sub_type_ok(const char *ext)
{
    static const char *const ok[] = { "vtt", "srt", "ass", "ssa", "ttml", "dfxp", NULL };
    for (const char *const *o = ok; ext && *o; o++)
        if (!strcmp(ext, *o))
            return true;
    return false;
}

/* Subtitles of one map (lang -> [{ext,url}, …]), vtt preferred per lang. */
static int map_subs(struct mr_arena *a, struct json_object *subs, struct mr_source *out)
{
    if (!subs || !json_object_is_type(subs, json_type_object))
        return MR_OK;
    json_object_object_foreach(subs, lang, list) {
        struct json_object *pick = NULL;
        size_t n;
        if (out->nsubs == MR_YTDLP_MAX_SUBS)
            break;
        if (!lang_ok(lang) || !json_object_is_type(list, json_type_array))
            continue;
        n = json_object_array_length(list);
        for (size_t i = 0; i < n; i++) {
            struct json_object *e = json_object_array_get_idx(list, i);
            const char *ext = str_of(e, "ext");
            if (!json_object_is_type(e, json_type_object) || !sub_type_ok(ext) ||
                !url_of(e, "url"))
                continue;
            if (!pick || !strcmp(ext, "vtt"))
                pick = e;
            if (!strcmp(ext, "vtt"))
                break;
        }
        if (!pick)
            continue;
        if (!out->subs &&
            !(out->subs = mr_arena_calloc(a, MR_YTDLP_MAX_SUBS, sizeof(*out->subs))))
            return MR_ENOMEM;
        out->subs[out->nsubs++] = (struct mr_subtitle){ lang, url_of(pick, "url"),
                                                        str_of(pick, "ext") };
    }
    return MR_OK;
}

/* A quality's name: "720p mp4", "hls", "1080p hls (2)" when taken. */
static const char *alt_name(struct mr_arena *a, const struct cand *c, const struct mr_source *out)
{
    const char *type = c->type ? c->type : "file";
    char *name = c->height > 0 ? mr_arena_printf(a, "%ldp %s", c->height, type)
                               : mr_arena_printf(a, "%s", type);
    for (int k = 2; name && k < 100; k++) {
        bool taken = false;
        for (size_t i = 0; i < out->nmore && !taken; i++)
            taken = !strcmp(out->more[i].name, name);
        if (!taken)
            return name;
        name = c->height > 0 ? mr_arena_printf(a, "%ldp %s (%d)", c->height, type, k)
                             : mr_arena_printf(a, "%s (%d)", type, k);
    }
    return NULL;
}

/* A title for a JSON answer: cut at MAX_TITLE bytes, on a UTF-8 boundary. */
static const char *title_of(struct mr_arena *a, struct json_object *o)
{
    const char *t = str_of(o, "title");
    size_t n;
    if (!t || !*t)
        return NULL;
    n = strlen(t);
    if (n <= MAX_TITLE)
        return t;
    n = MAX_TITLE;
    while (n && ((unsigned char)t[n] & 0xC0) == 0x80)
        n--;
    return mr_arena_strndup(a, t, n);
}

int mr_ytdlp_map(struct mr_arena *a, const char *json, size_t len, struct mr_source *out,
                 char *msg, size_t msglen)
{
    struct json_object *root, *o, *formats, *v;
    struct cand top = { 0 }, *c = NULL, *chosen = NULL;
    size_t nc = 0, nf = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = mr_json_parse_object(a, json, len, MR_YTDLP_JSON_DEPTH, &root);
    if (rc == MR_ENOMEM)
        return rc;
    if (rc) {
        snprintf(msg, msglen, "yt-dlp printed no JSON object");
        return MR_EUPSTREAM;
    }
    o = root;
    /* A page of several videos, even with --no-playlist: its first one. */
    if ((str_of(o, "_type") && !strcmp(str_of(o, "_type"), "playlist")) ||
        (!json_object_object_get_ex(o, "url", &v) &&
         !json_object_object_get_ex(o, "formats", &v) &&
         json_object_object_get_ex(o, "entries", &v))) {
        struct json_object *e = json_object_object_get_ex(o, "entries", &v) &&
                                json_object_is_type(v, json_type_array) &&
                                json_object_array_length(v)
                                ? json_object_array_get_idx(v, 0) : NULL;
        if (!e || !json_object_is_type(e, json_type_object)) {
            snprintf(msg, msglen, "yt-dlp found a playlist with no video in it");
            return MR_EUPSTREAM;
        }
        o = e;
    }

    /* The candidates: every format that plays on its own. */
    if (json_object_object_get_ex(o, "formats", &formats) &&
        json_object_is_type(formats, json_type_array))
        nf = json_object_array_length(formats);
    if (nf && !(c = mr_arena_calloc(a, nf, sizeof(*c))))
        return MR_ENOMEM;
    for (size_t i = 0; i < nf; i++) {
        struct json_object *f = json_object_array_get_idx(formats, i);
        struct cand k = { f, K_NONE, NULL, NULL, 0, 0, i };
        if (!json_object_is_type(f, json_type_object) ||
            (k.kind = classify(f, &k.url, &k.type)) == K_NONE)
            continue;
        k.height = (long)num_of(f, "height");
        k.tbr = num_of(f, "tbr");
        c[nc++] = k;
    }
    if (nc)
        qsort(c, nc, sizeof(*c), cand_cmp);

    /* yt-dlp's own pick, when it is one file that plays on its own. */
    if (!json_object_object_get_ex(o, "requested_formats", &v)) {
        top.f = o;
        top.kind = classify(o, &top.url, &top.type);
        top.height = (long)num_of(o, "height");
    }
    if (top.kind == K_FILE)
        chosen = &top;
    else if (nc)
        chosen = &c[0];
    else if (top.kind != K_NONE)
        chosen = &top;
    if (!chosen) {
        snprintf(msg, msglen, "yt-dlp found no format that plays on its own");
        return MR_EUPSTREAM;
    }
    out->url = chosen->url;
    out->video_type = chosen->type;
    if ((rc = map_headers(a, json_object_object_get_ex(chosen->f, "http_headers", &v)
                             ? v : (json_object_object_get_ex(o, "http_headers", &v) ? v : NULL),
                          out)))
        return rc;

    /* The others, best first, once per URL. */
    for (size_t i = 0; i < nc && out->nmore < MR_YTDLP_MAX_MORE; i++) {
        bool seen = !strcmp(c[i].url, out->url);
        for (size_t j = 0; j < out->nmore && !seen; j++)
            seen = !strcmp(out->more[j].url, c[i].url);
        if (seen)
            continue;
        if (!out->more && !(out->more = mr_arena_calloc(a, MR_YTDLP_MAX_MORE, sizeof(*out->more))))
            return MR_ENOMEM;
        out->more[out->nmore] = (struct mr_alt_source){ alt_name(a, &c[i], out), c[i].url,
                                                        c[i].type };
        if (!out->more[out->nmore].name)
            return MR_ENOMEM;
        out->nmore++;
    }

    if ((rc = map_subs(a, json_object_object_get_ex(o, "subtitles", &v) ? v : NULL, out)))
        return rc;
    if (!out->nsubs &&
        (rc = map_subs(a, json_object_object_get_ex(o, "automatic_captions", &v) ? v : NULL,
                       out)))
        return rc;

    out->title = title_of(a, o);
    out->duration = num_of(o, "duration");
    if (out->duration < 0 || out->duration != out->duration)
        out->duration = 0;
    out->thumbnail = url_of(o, "thumbnail");
    return MR_OK;
}

/* --- the provider ------------------------------------------------------------ */

static int ytdlp_validate(struct json_object *source, char *field, size_t fieldlen, char *msg,
                          size_t msglen)
{
    struct json_object *url;

    if (!json_object_object_get_ex(source, "url", &url) ||
        !json_object_is_type(url, json_type_string)) {
        snprintf(field, fieldlen, "url");
        snprintf(msg, msglen, "a string is required");
        return MR_EINVAL;
    }
    if (!mr_ytdlp_url_ok(json_object_get_string(url))) {
        snprintf(field, fieldlen, "url");
        snprintf(msg, msglen, "must be an http(s) URL of at most %d bytes, without spaces or "
                 "control characters", MR_YTDLP_MAX_URL);
        return MR_EINVAL;
    }
    json_object_object_foreach(source, key, v) {
        (void)v;
        if (strcmp(key, "url")) {
            snprintf(field, fieldlen, "%s", key);
            snprintf(msg, msglen, "unknown key");
            return MR_EINVAL;
        }
    }
    return MR_OK;
}

static bool ytdlp_can_handle(const char *url)
{
    return mr_ytdlp_url_ok(url);
}

/* Runs in flight in this process: a slot is taken before a run and given
 * back after it. */
static atomic_long running;

static bool slot_take(long max)
{
    long n = atomic_load(&running);

    do {
        if (n >= max)
            return false;
    } while (!atomic_compare_exchange_weak(&running, &n, n + 1));
    return true;
}

static void slot_give(void)
{
    atomic_fetch_sub(&running, 1);
}

static int ytdlp_resolve(struct mr_ctx *ctx, const struct mr_media *media, struct mr_source *out)
{
    const struct mr_conf *c = ctx->conf;
    struct json_object *url;
    struct mr_buf *buf;
    const char *why = NULL;
    char msg[512];
    int rc;

    memset(out, 0, sizeof(*out));
    if (!json_object_object_get_ex(media->source, "url", &url) ||
        !mr_ytdlp_url_ok(json_object_get_string(url)))
        return MR_EINVAL;
    if (!(buf = mr_arena_alloc(ctx->arena, sizeof(*buf))))
        return MR_ENOMEM;
    mr_buf_init(buf, (size_t)settings(c)->max_output_bytes);
    if ((rc = mr_arena_cleanup(ctx->arena, mr_buf_cleanup, buf)))
        return rc;
    /* yt-dlp fetches the page itself, past the guard libcurl's fetches go
     * through: its address is held to the same rule first. */
    if ((rc = mr_upstream_vet(c, ctx->arena, json_object_get_string(url), &why)))
        return mr_fail(ctx, media->id, rc, rc == MR_EBLOCKED
                       ? "ytdlp: the page's address is not allowed (%s)"
                       : "ytdlp: the page's host does not resolve%s", rc == MR_EBLOCKED ? why : "");
    if (!slot_take(settings(c)->max_running))
        return mr_fail(ctx, media->id, MR_EOVERLOADED, "ytdlp: %ld runs of yt-dlp are under "
                       "way in this process (providers.ytdlp.max_running); try again shortly",
                       settings(c)->max_running);
    rc = mr_ytdlp_run(settings(c)->path, json_object_get_string(url),
                      settings(c)->timeout_s, buf, msg, sizeof(msg));
    slot_give();
    if (!rc)
        rc = mr_ytdlp_map(ctx->arena, buf->p ? buf->p : "", buf->len, out, msg, sizeof(msg));
    if (rc)
        return mr_fail(ctx, media->id, rc, "ytdlp: %s", msg);
    mr_buf_free(buf);   /* the JSON is parsed: the text is no longer needed */
    if (media->title)
        out->title = media->title;  /* the registrant's title wins */
    return MR_OK;
}

const struct mr_provider mr_provider_ytdlp = {
    .name = "ytdlp",
    .conf = { "ytdlp", ytdlp_fields, sizeof(struct ytdlp_conf) },
    .direct = ytdlp_is_direct,
    .validate = ytdlp_validate,
    .can_handle = ytdlp_can_handle,
    .resolve = ytdlp_resolve,
    .remote = true,
};
