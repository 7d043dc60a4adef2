/* test_ytdlp.c - the ytdlp provider's halves: yt-dlp's JSON to a source, and
 * running a program with a timeout, an output cap and no leftovers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/error.h"
#include "app/provider.h"
#include "providers/ytdlp.h"

static struct mr_arena arena;
static char msg[512];

static int setup(void **state)
{
    (void)state;
    mr_arena_init(&arena, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mr_arena_free(&arena);
    return 0;
}

static int map(const char *json, struct mr_source *s)
{
    msg[0] = '\0';
    return mr_ytdlp_map(&arena, json, strlen(json), s, msg, sizeof(msg));
}

static const char *header(const struct mr_source *s, const char *name)
{
    for (size_t i = 0; i < s->headers.n; i++)
        if (!strcasecmp(s->headers.v[i].name, name))
            return s->headers.v[i].value;
    return NULL;
}

/* What yt-dlp 2023.03.04's generic extractor prints for a plain mp4. */
static void test_generic_file(void **state)
{
    struct mr_source s;
    (void)state;
    assert_int_equal(map("{\"id\":\"a\",\"title\":\"a\",\"direct\":true,\"formats\":[{\"format_id\":"
                         "\"mp4\",\"url\":\"http://127.0.0.1:1/a.mp4\",\"vcodec\":null,\"ext\":"
                         "\"mp4\",\"protocol\":\"http\",\"http_headers\":{\"User-Agent\":\"UA/1\","
                         "\"Accept\":\"*/*\",\"Accept-Language\":\"en\",\"Sec-Fetch-Mode\":"
                         "\"navigate\"}}],\"subtitles\":{},\"http_headers\":{\"User-Agent\":"
                         "\"UA/1\"},\"format_id\":\"mp4\",\"url\":\"http://127.0.0.1:1/a.mp4\","
                         "\"vcodec\":null,\"ext\":\"mp4\",\"protocol\":\"http\",\"_type\":"
                         "\"video\"}\n", &s), MR_OK);
    assert_string_equal(s.url, "http://127.0.0.1:1/a.mp4");
    assert_string_equal(s.video_type, "mp4");
    assert_string_equal(s.title, "a");
    assert_int_equal(s.nmore, 0);
    assert_int_equal(s.nsubs, 0);
    assert_int_equal(s.expire_at, 0);
    assert_int_equal(s.headers.n, 1);
    assert_string_equal(header(&s, "User-Agent"), "UA/1");
}

/* Unknown ext, no formats: the URL, type left to the relay's sniff. */
static void test_no_formats(void **state)
{
    struct mr_source s;
    (void)state;
    assert_int_equal(map("{\"url\":\"http://h/noext\",\"ext\":\"unknown_video\",\"protocol\":"
                         "\"http\",\"duration\":12.5,\"thumbnail\":\"https://h/t.jpg\"}", &s),
                     MR_OK);
    assert_string_equal(s.url, "http://h/noext");
    assert_null(s.video_type);
    assert_true(s.duration == 12.5);
    assert_string_equal(s.thumbnail, "https://h/t.jpg");
    assert_null(s.title);
}

/* A site with separate video and audio (requested_formats), progressive
 * formats, HLS variants and DASH: the best progressive first. */
static void test_formats_ranked(void **state)
{
    struct mr_source s;
    (void)state;
    assert_int_equal(map(
        "{\"title\":\"T\",\"requested_formats\":[{},{}],\"formats\":["
        "{\"format_id\":\"a\",\"url\":\"https://c/a.m4a\",\"protocol\":\"https\",\"vcodec\":"
        "\"none\",\"acodec\":\"mp4a\",\"ext\":\"m4a\"},"
        "{\"format_id\":\"18\",\"url\":\"https://c/360.mp4\",\"protocol\":\"https\",\"vcodec\":"
        "\"avc1\",\"acodec\":\"mp4a\",\"ext\":\"mp4\",\"height\":360,\"tbr\":500,"
        "\"http_headers\":{\"Referer\":\"https://site/\",\"Accept\":\"*/*\"}},"
        "{\"format_id\":\"22\",\"url\":\"https://c/720.mp4\",\"protocol\":\"https\",\"vcodec\":"
        "\"avc1\",\"acodec\":\"mp4a\",\"ext\":\"mp4\",\"height\":720,\"tbr\":1500,"
        "\"http_headers\":{\"Referer\":\"https://site/\",\"Cookie\":\"a=b\",\"Origin\":"
        "\"https://site\",\"Connection\":\"close\",\"Bad Name\":\"x\",\"X-Evil\":\"a\\r\\nb\"}},"
        "{\"format_id\":\"137\",\"url\":\"https://c/1080v.mp4\",\"protocol\":\"https\","
        "\"vcodec\":\"avc1\",\"acodec\":\"none\",\"height\":1080},"
        "{\"format_id\":\"hls-720\",\"url\":\"https://c/720.m3u8\",\"manifest_url\":"
        "\"https://c/master.m3u8\",\"protocol\":\"m3u8_native\",\"vcodec\":\"avc1\",\"acodec\":"
        "\"mp4a\",\"height\":720,\"ext\":\"mp4\"},"
        "{\"format_id\":\"hls-1080\",\"url\":\"https://c/1080.m3u8\",\"manifest_url\":"
        "\"https://c/master.m3u8\",\"protocol\":\"m3u8_native\",\"vcodec\":\"avc1\",\"acodec\":"
        "\"none\",\"height\":1080,\"ext\":\"mp4\"},"
        "{\"format_id\":\"dash-v\",\"url\":\"https://c/v.m4s\",\"manifest_url\":"
        "\"https://c/m.mpd\",\"protocol\":\"http_dash_segments\",\"vcodec\":\"avc1\",\"acodec\":"
        "\"none\",\"height\":1080},"
        "{\"format_id\":\"dash-a\",\"url\":\"https://c/a.m4s\",\"manifest_url\":"
        "\"https://c/m.mpd\",\"protocol\":\"http_dash_segments\",\"vcodec\":\"none\"},"
        "{\"format_id\":\"r\",\"url\":\"rtmp://c/live\",\"protocol\":\"rtmp\"}"
        "]}", &s), MR_OK);
    assert_string_equal(s.url, "https://c/720.mp4");
    assert_string_equal(s.video_type, "mp4");
    assert_int_equal(s.headers.n, 3);
    assert_string_equal(header(&s, "Referer"), "https://site/");
    assert_string_equal(header(&s, "Cookie"), "a=b");
    assert_string_equal(header(&s, "Origin"), "https://site");
    assert_int_equal(s.nmore, 4);
    assert_string_equal(s.more[0].name, "360p mp4");
    assert_string_equal(s.more[0].url, "https://c/360.mp4");
    /* A video-only HLS variant plays from its master playlist. */
    assert_string_equal(s.more[1].name, "1080p hls");
    assert_string_equal(s.more[1].url, "https://c/master.m3u8");
    assert_string_equal(s.more[2].name, "720p hls");
    assert_string_equal(s.more[2].url, "https://c/720.m3u8");
    assert_string_equal(s.more[3].name, "1080p mpd");
    assert_string_equal(s.more[3].url, "https://c/m.mpd");
    assert_string_equal(s.more[3].video_type, "mpd");
}

static void test_hls_then_dash(void **state)
{
    struct mr_source s;
    (void)state;
    assert_int_equal(map("{\"formats\":[{\"url\":\"https://c/lo.m3u8\",\"protocol\":\"m3u8\","
                         "\"height\":240},{\"url\":\"https://c/hi.m3u8\",\"protocol\":\"m3u8\","
                         "\"height\":480}]}", &s), MR_OK);
    assert_string_equal(s.url, "https://c/hi.m3u8");
    assert_string_equal(s.video_type, "hls");
    assert_int_equal(s.nmore, 1);
    assert_string_equal(s.more[0].name, "240p hls");

    assert_int_equal(map("{\"formats\":[{\"url\":\"https://c/v.m4s\",\"manifest_url\":"
                         "\"https://c/m.mpd\",\"protocol\":\"http_dash_segments\",\"vcodec\":"
                         "\"avc1\",\"acodec\":\"none\",\"height\":480}]}", &s), MR_OK);
    assert_string_equal(s.url, "https://c/m.mpd");
    assert_string_equal(s.video_type, "mpd");
    assert_int_equal(s.nmore, 0);
}

static void test_more_capped_and_unique(void **state)
{
    char json[16384];
    size_t n = 0;
    struct mr_source s;
    (void)state;
    n += (size_t)snprintf(json + n, sizeof(json) - n, "{\"formats\":[");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s{\"url\":\"https://c/%d.mp4\","
                              "\"ext\":\"mp4\",\"height\":360}", i ? "," : "", i);
    snprintf(json + n, sizeof(json) - n, "]}");
    assert_int_equal(map(json, &s), MR_OK);
    assert_string_equal(s.url, "https://c/39.mp4");   /* yt-dlp lists worst first */
    assert_int_equal(s.nmore, MR_YTDLP_MAX_MORE);
    assert_string_equal(s.more[0].name, "360p mp4");
    assert_string_equal(s.more[1].name, "360p mp4 (2)");
    for (size_t i = 0; i < s.nmore; i++)
        for (size_t j = i + 1; j < s.nmore; j++)
            assert_string_not_equal(s.more[i].name, s.more[j].name);
}

static void test_subtitles(void **state)
{
    struct mr_source s;
    (void)state;
    assert_int_equal(map("{\"url\":\"https://c/a.mp4\",\"ext\":\"mp4\",\"subtitles\":{"
                         "\"en\":[{\"ext\":\"srt\",\"url\":\"https://c/en.srt\"},{\"ext\":"
                         "\"vtt\",\"url\":\"https://c/en.vtt\"}],"
                         "\"fr\":[{\"ext\":\"json3\",\"url\":\"https://c/fr.json\"},{\"ext\":"
                         "\"ass\",\"url\":\"https://c/fr.ass\"}],"
                         "\"bad lang\":[{\"ext\":\"vtt\",\"url\":\"https://c/x.vtt\"}],"
                         "\"de\":[{\"ext\":\"vtt\",\"url\":\"javascript:alert(1)\"}]},"
                         "\"automatic_captions\":{\"ja\":[{\"ext\":\"vtt\",\"url\":"
                         "\"https://c/ja.vtt\"}]}}", &s), MR_OK);
    assert_int_equal(s.nsubs, 2);
    assert_string_equal(s.subs[0].lang, "en");
    assert_string_equal(s.subs[0].url, "https://c/en.vtt");
    assert_string_equal(s.subs[0].type, "vtt");
    assert_string_equal(s.subs[1].lang, "fr");
    assert_string_equal(s.subs[1].type, "ass");
    /* Automatic captions only when there are no subtitles. */
    assert_int_equal(map("{\"url\":\"https://c/a.mp4\",\"subtitles\":{},\"automatic_captions\":"
                         "{\"ja\":[{\"ext\":\"vtt\",\"url\":\"https://c/ja.vtt\"}]}}", &s), MR_OK);
    assert_int_equal(s.nsubs, 1);
    assert_string_equal(s.subs[0].lang, "ja");
}

static void test_playlist_takes_first_entry(void **state)
{
    struct mr_source s;
    (void)state;
    assert_int_equal(map("{\"_type\":\"playlist\",\"entries\":[{\"title\":\"one\",\"url\":"
                         "\"https://c/1.webm\",\"ext\":\"webm\"},{\"url\":\"https://c/2.webm\"}]}",
                         &s), MR_OK);
    assert_string_equal(s.url, "https://c/1.webm");
    assert_string_equal(s.video_type, "webm");
    assert_string_equal(s.title, "one");
    assert_int_equal(map("{\"_type\":\"playlist\",\"entries\":[]}", &s), MR_EUPSTREAM);
}

static void test_garbage(void **state)
{
    static const char *const bad[] = {
        "", "null", "[1,2]", "not json", "{\"url\":\"ftp://x/a\"}", "{\"url\":\"http://x/a b\"}",
        "{\"formats\":[{\"url\":\"https://c/a.m4a\",\"vcodec\":\"none\"}]}", "{\"title\":1}",
        "{\"url\":\"http://x/a\"", NULL
    };
    struct mr_source s;
    char deep[200];
    (void)state;
    for (const char *const *b = bad; *b; b++) {
        assert_int_equal(map(*b, &s), MR_EUPSTREAM);
        assert_true(msg[0] != '\0');
    }
    /* Nesting past the cap. */
    memset(deep, '[', 100);
    memset(deep + 100, ']', 99);
    deep[199] = '\0';
    assert_int_equal(map(deep, &s), MR_EUPSTREAM);
}

static void test_long_title_cut_on_utf8(void **state)
{
    char json[4096];
    struct mr_source s;
    size_t n;
    (void)state;
    n = (size_t)snprintf(json, sizeof(json), "{\"url\":\"https://c/a.mp4\",\"title\":\"x");
    for (int i = 0; i < 600; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "\xc3\xa9");
    snprintf(json + n, sizeof(json) - n, "\"}");
    assert_int_equal(map(json, &s), MR_OK);
    assert_true(strlen(s.title) <= 1024);
    assert_true(((unsigned char)s.title[strlen(s.title) - 1]) == 0xa9);
}

static void test_url_ok(void **state)
{
    char longurl[MR_YTDLP_MAX_URL + 20];
    (void)state;
    assert_true(mr_ytdlp_url_ok("https://www.example.com/watch?v=x"));
    assert_true(mr_ytdlp_url_ok("HTTP://a/b;c"));
    assert_false(mr_ytdlp_url_ok("https://"));
    assert_false(mr_ytdlp_url_ok("file:///etc/passwd"));
    assert_false(mr_ytdlp_url_ok("-o/tmp/x"));
    assert_false(mr_ytdlp_url_ok("http://a/b c"));
    assert_false(mr_ytdlp_url_ok("http://a/b\nc"));
    assert_false(mr_ytdlp_url_ok("http://a/b\x7f"));
    memcpy(longurl, "http://a/", 9);
    memset(longurl + 9, 'a', sizeof(longurl) - 10);
    longurl[sizeof(longurl) - 1] = '\0';
    assert_false(mr_ytdlp_url_ok(longurl));
}

/* --- running ------------------------------------------------------------------ */

static char dir[64];

static const char *script(const char *name, const char *body)
{
    static char path[128];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
    return path;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Live processes whose command line holds s. */
static int procs_mentioning(const char *s)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d))) {
        char path[300], buf[4096];
        FILE *f;
        size_t got;
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        got = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        for (size_t i = 0; i < got; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[got] = '\0';
        if (strstr(buf, s) && !strstr(buf, "test_ytdlp"))
            n++;
    }
    closedir(d);
    return n;
}

static int run(const char *path, const char *url, long timeout_s, size_t cap, struct mr_buf *out)
{
    mr_buf_init(out, cap);
    msg[0] = '\0';
    return mr_ytdlp_run(path, url, timeout_s, out, msg, sizeof(msg));
}

static void test_run_ok_and_argv(void **state)
{
    struct mr_buf out;
    int fds = count_fds();
    (void)state;
    /* Each argument on its own line: nothing was split or interpreted. */
    assert_int_equal(run(script("ok", "for a in \"$@\"; do echo \"[$a]\"; done; read x && echo "
                                "stdin-not-empty; exit 0"),
                         "http://a/b;touch x|y$(id)", 5, 4096, &out), MR_OK);
    assert_non_null(strstr(out.p, "[--ignore-config]\n[--no-cache-dir]\n[--dump-single-json]\n"
                                  "[--no-playlist]\n[--no-warnings]\n[--no-progress]\n[--]\n"
                                  "[http://a/b;touch x|y$(id)]\n"));
    assert_null(strstr(out.p, "stdin-not-empty"));
    mr_buf_free(&out);
    assert_int_equal(count_fds(), fds);
}

/* yt-dlp's environment is three variables, whatever the server's holds:
 * no secret, proxy, Python or XDG variable gets through; it runs in "/". */
static void test_run_environment(void **state)
{
    struct mr_buf out;
    char want[8192];
    (void)state;
    setenv("MEDIARELAY_ADMIN_TOKEN", "do-not-leak", 1);
    setenv("http_proxy", "http://127.0.0.1:3128", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:3128", 1);
    setenv("PYTHONPATH", "/tmp/evil", 1);
    setenv("XDG_CONFIG_HOME", "/tmp/evil", 1);
    setenv("HOME", "/root", 1);
    /* The environment the kernel started the script with, one per line. */
    assert_int_equal(run(script("env", "tr '\\000' '\\n' </proc/$$/environ; pwd"), "http://a/",
                         5, 4096, &out), MR_OK);
    snprintf(want, sizeof(want), "PATH=%s\nHOME=/nonexistent\nLANG=C.UTF-8\n/\n", getenv("PATH"));
    assert_string_equal(out.p, want);
    mr_buf_free(&out);
    unsetenv("MEDIARELAY_ADMIN_TOKEN");
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("PYTHONPATH");
    unsetenv("XDG_CONFIG_HOME");
}

static void test_run_exit_status_message(void **state)
{
    struct mr_buf out;
    (void)state;
    assert_int_equal(run(script("fail", "echo 'WARNING: w' >&2; printf 'ERROR: [generic] "
                                "nope\\033[31m \\001\\n' >&2; echo trailing >&2; exit 1"),
                         "http://a/", 5, 4096, &out), MR_EUPSTREAM);
    assert_string_equal(msg, "ERROR: [generic] nope?[31m ?");
    mr_buf_free(&out);
    /* No "ERROR:" line: the last line; a long one is cut. */
    assert_int_equal(run(script("fail2", "head -c 5000 /dev/zero | tr '\\0' x >&2; exit 2"),
                         "http://a/", 5, 4096, &out), MR_EUPSTREAM);
    assert_int_equal(strlen(msg), MR_YTDLP_MAX_MESSAGE);
    mr_buf_free(&out);
    assert_int_equal(run(script("fail3", "kill -9 $$"), "http://a/", 5, 4096, &out),
                     MR_EUPSTREAM);
    assert_non_null(strstr(msg, "signal 9"));
    mr_buf_free(&out);
}

static void test_run_timeout_kills_the_group(void **state)
{
    struct mr_buf out;
    char marker[128];
    time_t t0 = time(NULL);
    int fds = count_fds();
    (void)state;
    snprintf(marker, sizeof(marker), "%s/slow", dir);
    /* A grandchild that holds the pipes, and one that does not. */
    assert_int_equal(run(script("slow", "sleep 30 & (sleep 31 >/dev/null 2>&1 &); echo '{' ; "
                                "sleep 32"), "http://a/", 1, 4096, &out), MR_ETIMEOUT);
    assert_true(time(NULL) - t0 < 5);
    mr_buf_free(&out);
    assert_int_equal(procs_mentioning(marker), 0);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);   /* no child left, no zombie */
}

static void test_run_output_cap(void **state)
{
    struct mr_buf out;
    time_t t0 = time(NULL);
    (void)state;
    assert_int_equal(run(script("big", "yes '{}'"), "http://a/", 10, 8192, &out), MR_EUPSTREAM);
    assert_non_null(strstr(msg, "max_output_bytes"));
    assert_true(time(NULL) - t0 < 5);
    assert_true(out.len <= 8192);
    mr_buf_free(&out);
}

static void test_run_missing(void **state)
{
    struct mr_buf out;
    (void)state;
    assert_int_equal(run("/nonexistent/yt-dlp", "http://a/", 5, 4096, &out), MR_EUNAVAILABLE);
    assert_non_null(strstr(msg, "not found"));
    mr_buf_free(&out);
    assert_int_equal(run(script("exec127", "exec /nonexistent/yt-dlp \"$@\""), "http://a/", 5,
                         4096, &out), MR_EUNAVAILABLE);
    mr_buf_free(&out);
    assert_int_equal(run("mr-no-such-yt-dlp", "http://a/", 5, 4096, &out), MR_EUNAVAILABLE);
    mr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generic_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_formats_ranked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hls_then_dash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_more_capped_and_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subtitles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_playlist_takes_first_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_title_cut_on_utf8, setup, teardown),
        cmocka_unit_test(test_url_ok),
        cmocka_unit_test(test_run_ok_and_argv),
        cmocka_unit_test(test_run_environment),
        cmocka_unit_test(test_run_exit_status_message),
        cmocka_unit_test(test_run_timeout_kills_the_group),
        cmocka_unit_test(test_run_output_cap),
        cmocka_unit_test(test_run_missing),
    };
    int rc;

    snprintf(dir, sizeof(dir), "/tmp/mr-ytdlp-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    {
        static const char *const names[] = { "ok", "env", "fail", "fail2", "fail3", "slow", "big",
                                             "exec127" };
        char path[128];
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    return rc;
}
