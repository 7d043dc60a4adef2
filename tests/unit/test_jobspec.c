/* test_jobspec.c - the pure half of media jobs: times, operations (good,
 * bad with the field named, canonical JSON), ffprobe's JSON (real output of
 * ffprobe 5.1, in tests/fuzz/seeds/jobspec/), the ffmpeg command lines for
 * each rule, yt-dlp's and ffmpeg's progress lines (as yt-dlp 2023.03.04 and
 * ffmpeg 5.1 print them), analyze, file names and Content-Disposition. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "core/arena.h"
#include "format/jobspec.h"

#ifndef MR_TOP_SRCDIR
#define MR_TOP_SRCDIR "."
#endif
#define SEEDS MR_TOP_SRCDIR "/tests/fuzz/seeds/jobspec/"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* A whole file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static struct json_object *json(const char *text)
{
    struct json_object *o = json_tokener_parse(text);
    if (!o && strcmp(text, "null"))
        fail_msg("not JSON: %s", text);
    return o;
}

/* ---- times ---------------------------------------------------------------- */

static void test_time_good(void **state)
{
    static const struct { const char *json; double want; } cases[] = {
        { "0", 0 }, { "90", 90 }, { "1.5", 1.5 }, { "0.0", 0 }, { "604800", 604800 },
        { "\"0\"", 0 }, { "\"90\"", 90 }, { "\"1.5\"", 1.5 }, { "\"1.05\"", 1.05 },
        { "\"2.125\"", 2.125 }, { "\"01:30\"", 90 }, { "\"1:02\"", 62 }, { "\"90:00\"", 5400 },
        { "\"1:02:03.004\"", 3723.004 }, { "\"00:00:00.5\"", 0.5 }, { "\"168:00:00\"", 604800 },
        { "\"604800\"", 604800 }, { "\"0:00:59.999\"", 59.999 }, { "\"123456\"", 123456 },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct json_object *v = json(cases[i].json);
        double t = -1;
        if (mr_jobs_time(v, &t))
            fail_msg("refused: %s", cases[i].json);
        if (fabs(t - cases[i].want) > 1e-9)
            fail_msg("%s: %f, not %f", cases[i].json, t, cases[i].want);
        json_object_put(v);
    }
}

static void test_time_bad(void **state)
{
    static const char *const cases[] = {
        "-1", "-0.5", "604800.001", "604801", "1e300", "\"168:00:00.001\"", "\"604800.5\"",
        "\"\"", "\" 1\"", "\"1 \"", "\"1.\"", "\".5\"", "\"1.2345\"", "\"1:60\"", "\"1:5\"",
        "\"1:2:3\"", "\"1:02:03:04\"", "\"-1\"", "\"+1\"", "\"1e3\"", "\"abc\"", "\"60:60\"",
        "\"01:02:60\"", "\"01:60:00\"", "\"9999999999\"", "\"1:\"", "\":30\"", "\"1::30\"",
        "\"0x10\"", "\"1,5\"", "\"１\"", "true", "null", "[]", "{}", "[1]",
    };
    struct json_object *special[3];
    double t;

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct json_object *v = json(cases[i]);
        if (!mr_jobs_time(v, &t))
            fail_msg("accepted: %s", cases[i]);
        json_object_put(v);
    }
    special[0] = json_object_new_double(NAN);
    special[1] = json_object_new_double(INFINITY);
    special[2] = json_object_new_string_len("1\0" "0", 3);    /* a NUL inside */
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mr_jobs_time(special[i], &t), -1);
        json_object_put(special[i]);
    }
}

/* ---- operations ----------------------------------------------------------- */

static int parse_ops(const char *text, struct mr_jobs_ops *o, char *field, char *msg)
{
    struct json_object *v = json(text);
    int rc = mr_jobs_ops_parse(v, o, field, 128, msg, 256);
    json_object_put(v);
    return rc;
}

static struct mr_jobs_ops ops_of(const char *text)
{
    struct mr_jobs_ops o;
    char field[128], msg[256];

    memset(&o, 0x5a, sizeof(o));
    if (parse_ops(text, &o, field, msg))
        fail_msg("%s refused: %s: %s", text, field, msg);
    return o;
}

static void test_ops_good(void **state)
{
    struct mr_jobs_ops o;

    (void)state;
    o = ops_of("{\"trim\": {\"start\": \"00:01\", \"end\": \"00:02.5\"}}");
    assert_true(o.trim);
    assert_true(o.start == 1 && o.duration == 1.5 && o.exact);
    assert_int_equal(o.format, MR_FMT_DEFAULT);
    assert_false(o.audio_only || o.thumbnail);
    assert_true(o.width == 0 && o.height == 0 && o.crf == -1 && o.fps == 0);
    assert_true(o.thumbnail_at < 0);

    o = ops_of("{\"trim\": {\"start\": 5}}");
    assert_true(o.trim && o.start == 5 && o.duration < 0 && o.exact);
    o = ops_of("{\"trim\": {\"duration\": 3, \"exact\": false}}");
    assert_true(o.trim && o.start == 0 && o.duration == 3 && !o.exact);
    o = ops_of("{\"trim\": {\"start\": 2, \"duration\": null, \"end\": 3.25}}");
    assert_true(o.start == 2 && o.duration == 1.25);

    o = ops_of("{\"resize\": {\"width\": 641}}");
    assert_true(o.width == 640 && o.height == 0);
    o = ops_of("{\"resize\": {\"height\": 16}}");
    assert_true(o.width == 0 && o.height == 16);
    o = ops_of("{\"resize\": {\"width\": 7680, \"height\": 4320}}");
    assert_true(o.width == 7680 && o.height == 4320);
    o = ops_of("{\"resize\": {\"width\": 0, \"height\": 721}}");
    assert_true(o.width == 0 && o.height == 720);
    o = ops_of("{\"resize\": {\"width\": 17, \"height\": null}}");
    assert_true(o.width == 16 && o.height == 0);

    assert_int_equal(ops_of("{\"quality\": 0}").crf, 0);
    assert_int_equal(ops_of("{\"quality\": 51}").crf, 51);
    assert_true(ops_of("{\"fps\": 0.5}").fps == 0.5);
    assert_true(ops_of("{\"fps\": 240}").fps == 240);
    assert_true(ops_of("{\"fps\": 29.97}").fps == 29.97);

    o = ops_of("{\"format\": \"mp3\"}");
    assert_true(o.format == MR_FMT_MP3 && o.audio_only);
    o = ops_of("{\"format\": \"m4a\", \"audio_only\": false}");
    assert_true(o.format == MR_FMT_M4A && o.audio_only);
    o = ops_of("{\"audio_only\": true}");
    assert_true(o.format == MR_FMT_DEFAULT && o.audio_only);
    o = ops_of("{\"format\": \"webm\", \"audio_only\": true}");
    assert_true(o.format == MR_FMT_WEBM && o.audio_only);
    assert_int_equal(ops_of("{\"format\": \"mp4\"}").format, MR_FMT_MP4);
    assert_int_equal(ops_of("{\"format\": \"mkv\"}").format, MR_FMT_MKV);
    assert_int_equal(ops_of("{\"format\": \"hls\", \"trim\": null}").format, MR_FMT_HLS);
    o = ops_of("{\"format\": \"mp3\", \"thumbnail\": true}");
    assert_true(o.audio_only && o.thumbnail);

    o = ops_of("{\"thumbnail\": true}");
    assert_true(o.thumbnail && o.thumbnail_at < 0);
    o = ops_of("{\"thumbnail\": \"00:00:03\"}");
    assert_true(o.thumbnail && o.thumbnail_at == 3);
    o = ops_of("{\"thumbnail\": 0}");
    assert_true(o.thumbnail && o.thumbnail_at == 0);
    o = ops_of("{\"thumbnail\": {\"at\": 2.5}}");
    assert_true(o.thumbnail && o.thumbnail_at == 2.5);
    o = ops_of("{\"thumbnail\": {}}");
    assert_true(o.thumbnail && o.thumbnail_at < 0);
    o = ops_of("{\"thumbnail\": false, \"format\": \"mkv\"}");
    assert_false(o.thumbnail);
}

static void test_ops_bad(void **state)
{
    static const struct { const char *json, *field; } cases[] = {
        { "[]", "operations" },
        { "\"trim\"", "operations" },
        { "null", "operations" },
        { "{}", "operations" },
        { "{\"audio_only\": false}", "operations" },
        { "{\"format\": null}", "operations" },
        { "{\"thumbnail\": false}", "operations" },
        { "{\"trim\": null, \"resize\": null, \"quality\": null, \"fps\": null}", "operations" },
        { "{\"crop\": 1}", "operations.crop" },
        { "{\"format\": \"mp4\", \"x\\\"y\\\\z\": 1}", "operations.x?y?z" },
        { "{\"format\": \"mp4\", \"\\u00e9\\n\": 1}", "operations.???" },
        { "{\"trim\": 1}", "operations.trim" },
        { "{\"trim\": []}", "operations.trim" },
        { "{\"trim\": {}}", "operations.trim" },
        { "{\"trim\": {\"start\": 0}}", "operations.trim" },
        { "{\"trim\": {\"exact\": true}}", "operations.trim" },
        { "{\"trim\": {\"start\": -1}}", "operations.trim.start" },
        { "{\"trim\": {\"start\": \"abc\"}}", "operations.trim.start" },
        { "{\"trim\": {\"start\": 700000}}", "operations.trim.start" },
        { "{\"trim\": {\"start\": true}}", "operations.trim.start" },
        { "{\"trim\": {\"duration\": 0}}", "operations.trim.duration" },
        { "{\"trim\": {\"duration\": \"0:00\"}}", "operations.trim.duration" },
        { "{\"trim\": {\"duration\": \"x\"}}", "operations.trim.duration" },
        { "{\"trim\": {\"duration\": -2}}", "operations.trim.duration" },
        { "{\"trim\": {\"start\": 5, \"end\": 5}}", "operations.trim.end" },
        { "{\"trim\": {\"start\": 5, \"end\": 4}}", "operations.trim.end" },
        { "{\"trim\": {\"end\": 0}}", "operations.trim.end" },
        { "{\"trim\": {\"end\": \"1:60\"}}", "operations.trim.end" },
        { "{\"trim\": {\"duration\": 1, \"end\": 4}}", "operations.trim.end" },
        { "{\"trim\": {\"start\": 1, \"exact\": \"yes\"}}", "operations.trim.exact" },
        { "{\"trim\": {\"start\": 1, \"exact\": 1}}", "operations.trim.exact" },
        { "{\"trim\": {\"start\": 1, \"stop\": 2}}", "operations.trim.stop" },
        { "{\"resize\": []}", "operations.resize" },
        { "{\"resize\": 640}", "operations.resize" },
        { "{\"resize\": {}}", "operations.resize" },
        { "{\"resize\": {\"width\": 0, \"height\": 0}}", "operations.resize" },
        { "{\"resize\": {\"width\": 15}}", "operations.resize.width" },
        { "{\"resize\": {\"width\": 7681}}", "operations.resize.width" },
        { "{\"resize\": {\"width\": -16}}", "operations.resize.width" },
        { "{\"resize\": {\"width\": \"640\"}}", "operations.resize.width" },
        { "{\"resize\": {\"width\": 640.0}}", "operations.resize.width" },
        { "{\"resize\": {\"width\": 99999999999999999999}}", "operations.resize.width" },
        { "{\"resize\": {\"height\": 4321}}", "operations.resize.height" },
        { "{\"resize\": {\"height\": 15}}", "operations.resize.height" },
        { "{\"resize\": {\"height\": true}}", "operations.resize.height" },
        { "{\"resize\": {\"depth\": 2}}", "operations.resize.depth" },
        { "{\"quality\": -1}", "operations.quality" },
        { "{\"quality\": 52}", "operations.quality" },
        { "{\"quality\": \"23\"}", "operations.quality" },
        { "{\"quality\": 23.5}", "operations.quality" },
        { "{\"fps\": 0}", "operations.fps" },
        { "{\"fps\": -1}", "operations.fps" },
        { "{\"fps\": 240.001}", "operations.fps" },
        { "{\"fps\": \"30\"}", "operations.fps" },
        { "{\"fps\": true}", "operations.fps" },
        { "{\"format\": \"avi\"}", "operations.format" },
        { "{\"format\": \"MP4\"}", "operations.format" },
        { "{\"format\": \"mp4 \"}", "operations.format" },
        { "{\"format\": \"mp4\\u0000\"}", "operations.format" },
        { "{\"format\": 1}", "operations.format" },
        { "{\"format\": \"\"}", "operations.format" },
        { "{\"format\": [\"mp4\"]}", "operations.format" },
        { "{\"audio_only\": 1}", "operations.audio_only" },
        { "{\"audio_only\": \"true\"}", "operations.audio_only" },
        { "{\"thumbnail\": \"x\"}", "operations.thumbnail" },
        { "{\"thumbnail\": []}", "operations.thumbnail" },
        { "{\"thumbnail\": -1}", "operations.thumbnail" },
        { "{\"thumbnail\": {\"at\": \"x\"}}", "operations.thumbnail.at" },
        { "{\"thumbnail\": {\"at\": true}}", "operations.thumbnail.at" },
        { "{\"thumbnail\": {\"time\": 1}}", "operations.thumbnail.time" },
        { "{\"audio_only\": true, \"resize\": {\"width\": 640}}", "operations.resize" },
        { "{\"audio_only\": true, \"fps\": 30}", "operations.fps" },
        { "{\"format\": \"mp3\", \"fps\": 30}", "operations.fps" },
        { "{\"format\": \"m4a\", \"quality\": 20}", "operations.quality" },
        { "{\"format\": \"mp3\", \"quality\": 20, \"resize\": {\"height\": 480}}",
          "operations.resize" },
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        struct mr_jobs_ops o;
        char field[128], msg[256];
        if (!parse_ops(cases[i].json, &o, field, msg))
            fail_msg("accepted: %s", cases[i].json);
        if (strcmp(field, cases[i].field))
            fail_msg("%s: field %s, not %s", cases[i].json, field, cases[i].field);
        if (!msg[0])
            fail_msg("%s: no message", cases[i].json);
    }
}

static void test_ops_messages(void **state)
{
    struct mr_jobs_ops o;
    char field[128], msg[256], tiny[4];
    struct json_object *v;

    (void)state;
    assert_int_equal(parse_ops("{\"crop\": 1}", &o, field, msg), -1);
    assert_non_null(strstr(msg, "trim, resize, quality, fps, format, audio_only, thumbnail"));
    assert_int_equal(parse_ops("{}", &o, field, msg), -1);
    assert_non_null(strstr(msg, "nothing to do"));
    assert_int_equal(parse_ops("{\"format\": \"avi\"}", &o, field, msg), -1);
    assert_non_null(strstr(msg, "mp4, webm, mkv, mp3, m4a, hls"));
    /* Small buffers are cut, not overrun; no buffer at all is fine too. */
    v = json("{\"resize\": {\"width\": 1}}");
    assert_int_equal(mr_jobs_ops_parse(v, &o, tiny, sizeof(tiny), tiny, sizeof(tiny)), -1);
    assert_string_equal(tiny, "an ");
    assert_int_equal(mr_jobs_ops_parse(v, &o, NULL, 0, NULL, 0), -1);
    json_object_put(v);
    /* A long unknown key is cut to the buffer. */
    assert_int_equal(parse_ops("{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": 1}",
                               &o, field, msg), -1);
    assert_true(strlen(field) < 128 && !strncmp(field, "operations.aaaa", 15));
}

static bool ops_equal(const struct mr_jobs_ops *a, const struct mr_jobs_ops *b)
{
    return a->trim == b->trim && a->start == b->start && a->duration == b->duration &&
           a->exact == b->exact && a->width == b->width && a->height == b->height &&
           a->crf == b->crf && a->fps == b->fps && a->format == b->format &&
           a->audio_only == b->audio_only && a->thumbnail == b->thumbnail &&
           a->thumbnail_at == b->thumbnail_at;
}

static void test_ops_json(void **state)
{
    static const char *const cases[] = {
        "{\"trim\": {\"start\": \"00:00:01.001\", \"end\": 7.3}, \"fps\": 29.97}",
        "{\"trim\": {\"start\": 0.1, \"exact\": false}, \"format\": \"mkv\"}",
        "{\"resize\": {\"height\": 480}, \"quality\": 30, \"format\": \"webm\"}",
        "{\"format\": \"mp3\", \"thumbnail\": {\"at\": \"0:05\"}}",
        "{\"audio_only\": true}",
        "{\"thumbnail\": true}",
        "{\"format\": \"hls\", \"thumbnail\": 0}",
    };
    struct mr_jobs_ops o, back;
    struct json_object *j;
    char field[128], msg[256];

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        o = ops_of(cases[i]);
        j = mr_jobs_ops_to_json(&o);
        assert_non_null(j);
        if (mr_jobs_ops_parse(j, &back, field, sizeof(field), msg, sizeof(msg)))
            fail_msg("%s: its JSON %s is refused: %s", cases[i], json_object_to_json_string(j),
                     msg);
        if (!ops_equal(&o, &back))
            fail_msg("%s: %s reads back differently", cases[i], json_object_to_json_string(j));
        json_object_put(j);
    }
    /* Every field, defaults filled in. */
    o = ops_of("{\"trim\": {\"start\": 1.5, \"duration\": 2}, \"resize\": {\"width\": 640}}");
    j = mr_jobs_ops_to_json(&o);
    assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                        "{\"trim\":{\"start\":1.5,\"duration\":2.0,\"exact\":true},"
                        "\"resize\":{\"width\":640,\"height\":0},\"quality\":null,\"fps\":null,"
                        "\"format\":null,\"audio_only\":false,\"thumbnail\":false}");
    json_object_put(j);
    o = ops_of("{\"format\": \"m4a\", \"thumbnail\": 3}");
    j = mr_jobs_ops_to_json(&o);
    assert_string_equal(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN),
                        "{\"trim\":null,\"resize\":null,\"quality\":null,\"fps\":null,"
                        "\"format\":\"m4a\",\"audio_only\":true,\"thumbnail\":{\"at\":3.0}}");
    json_object_put(j);
}

/* ---- ffprobe -------------------------------------------------------------- */

static int probe_text(const char *text, struct mr_jobs_probe *p, char *msg)
{
    return mr_jobs_probe_parse(text, strlen(text), p, msg, 128);
}

static void test_probe_real(void **state)
{
    struct mr_jobs_probe p;
    char msg[128];
    size_t len;
    char *text;

    (void)state;
    /* testsrc 320x240 at 25 fps and a sine, 5 s, as H.264 and AAC in MP4. */
    text = slurp(SEEDS "probe-video.json", &len);
    assert_int_equal(mr_jobs_probe_parse(text, len, &p, msg, sizeof(msg)), 0);
    assert_true(p.has_video && p.has_audio);
    assert_string_equal(p.vcodec, "h264");
    assert_string_equal(p.acodec, "aac");
    assert_int_equal(p.width, 320);
    assert_int_equal(p.height, 240);
    assert_true(p.fps == 25);
    assert_true(p.duration == 5);
    free(text);

    /* An MP3 of 3 s. */
    text = slurp(SEEDS "probe-audio.json", &len);
    assert_int_equal(mr_jobs_probe_parse(text, len, &p, msg, sizeof(msg)), 0);
    assert_true(!p.has_video && p.has_audio);
    assert_string_equal(p.vcodec, "");
    assert_string_equal(p.acodec, "mp3");
    assert_true(p.width == 0 && p.height == 0 && p.fps == 0);
    assert_true(fabs(p.duration - 3.030204) < 1e-9);
    free(text);

    /* The same MP3 with a cover (an attached picture): still no video. */
    text = slurp(SEEDS "probe-cover.json", &len);
    assert_int_equal(mr_jobs_probe_parse(text, len, &p, msg, sizeof(msg)), 0);
    assert_true(!p.has_video && p.has_audio);
    assert_string_equal(p.vcodec, "");
    assert_string_equal(p.acodec, "mp3");
    free(text);
}

static void test_probe_shapes(void **state)
{
    struct mr_jobs_probe p;
    char msg[128];

    (void)state;
    /* avg_frame_rate 0/0: r_frame_rate; no format duration: the streams'. */
    assert_int_equal(probe_text("{\"streams\": [{\"codec_type\": \"video\", \"codec_name\": "
                                "\"vp9\", \"width\": 1920, \"height\": 1080, \"avg_frame_rate\": "
                                "\"0/0\", \"r_frame_rate\": \"30000/1001\", \"duration\": "
                                "\"12.5\"}]}", &p, msg), 0);
    assert_true(p.has_video && !p.has_audio);
    assert_string_equal(p.vcodec, "vp9");
    assert_true(fabs(p.fps - 29.97002997) < 1e-6);
    assert_true(p.duration == 12.5);
    assert_true(p.width == 1920 && p.height == 1080);
    /* Durations as numbers, N/A, nonsense. */
    assert_int_equal(probe_text("{\"streams\": [{\"codec_type\": \"audio\", \"codec_name\": "
                                "\"opus\"}], \"format\": {\"duration\": 7}}", &p, msg), 0);
    assert_true(p.duration == 7);
    assert_int_equal(probe_text("{\"streams\": [{\"codec_type\": \"audio\", \"codec_name\": "
                                "\"opus\"}], \"format\": {\"duration\": \"N/A\"}}", &p, msg), 0);
    assert_true(p.duration == 0);
    assert_int_equal(probe_text("{\"streams\": [{\"codec_type\": \"audio\", \"codec_name\": "
                                "\"opus\", \"duration\": \"nan\"}], \"format\": {\"duration\": "
                                "\"-3\"}}", &p, msg), 0);
    assert_true(p.duration == 0);
    /* Codec names not like ffmpeg's are "" (never copied); sizes out of
     * range are 0; the first video and the first audio stream count. */
    assert_int_equal(probe_text("{\"streams\": [{\"codec_type\": \"data\"}, {\"codec_type\": "
                                "\"video\", \"codec_name\": \"h264 -x\", \"width\": -5, "
                                "\"height\": \"720\", \"avg_frame_rate\": \"1/0\"}, "
                                "{\"codec_type\": \"audio\", \"codec_name\": "
                                "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}, {\"codec_type\": "
                                "\"video\", \"codec_name\": \"hevc\"}, {\"codec_type\": \"audio\", "
                                "\"codec_name\": \"aac\"}]}", &p, msg), 0);
    assert_string_equal(p.vcodec, "");
    assert_string_equal(p.acodec, "");
    assert_true(p.width == 0 && p.height == 0 && p.fps == 0);
    /* An attached picture first, the video after it. */
    assert_int_equal(probe_text("{\"streams\": [{\"codec_type\": \"video\", \"codec_name\": "
                                "\"mjpeg\", \"disposition\": {\"attached_pic\": 1}}, "
                                "{\"codec_type\": \"video\", \"codec_name\": \"av1\"}]}", &p, msg), 0);
    assert_string_equal(p.vcodec, "av1");

    static const char *const bad[] = {
        "", "null", "[]", "{}", "{\"streams\": {}}", "{\"streams\": []}",
        "{\"streams\": [{\"codec_type\": \"subtitle\"}, {\"codec_type\": \"data\"}, 5]}",
        "{\"streams\": [{\"codec_type\": \"video\", \"disposition\": {\"attached_pic\": 1}}]}",
        "{\"streams\": []} x", "{\"streams\": [", "{\"streams\": [{\"codec_type\": 1}]}",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        msg[0] = '\0';
        if (!probe_text(bad[i], &p, msg))
            fail_msg("accepted: %s", bad[i]);
        assert_true(msg[0] != '\0');
    }
    assert_int_equal(mr_jobs_probe_parse(NULL, 0, &p, msg, sizeof(msg)), -1);
}

/* ---- plans ---------------------------------------------------------------- */

#define HEAD "ffmpeg -hide_banner -nostdin -y -loglevel error -nostats -progress pipe:1 " \
             "-protocol_whitelist file"
#define IN "/in/src"
#define FS "-fs 1000000"

static const struct mr_jobs_probe h264_aac = { 60, true, true, "h264", "aac", 1920, 1080, 25 };
static const struct mr_jobs_probe vp9_opus = { 60, true, true, "vp9", "opus", 1280, 720, 30 };
static const struct mr_jobs_probe mpeg2_pcm = { 60, true, true, "mpeg2video", "pcm_s16le",
                                                720, 576, 25 };
static const struct mr_jobs_probe unknown = { 60, true, true, "", "", 720, 576, 25 };
static const struct mr_jobs_probe only_mp3 = { 180, false, true, "", "mp3", 0, 0, 0 };
static const struct mr_jobs_probe only_h264 = { 10, true, false, "h264", "", 640, 360, 30 };
static const struct mr_jobs_probe no_duration = { 0, true, true, "h264", "aac", 640, 360, 30 };

static char *join(const struct mr_jobs_argv *v)
{
    static char buf[4096];
    size_t o = 0;

    buf[0] = '\0';
    assert_true(v->n <= MR_JOBS_MAX_ARGS);
    assert_null(v->v[v->n]);
    for (size_t i = 0; i < v->n; i++) {
        assert_non_null(v->v[i]);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "", v->v[i]);
        assert_true(o < sizeof(buf));
    }
    return buf;
}

struct planned {
    struct mr_arena a;
    struct mr_jobs_plan p;
    char msg[256];
    int rc;
};

static void plan(struct planned *x, const char *ops_json, const struct mr_jobs_probe *in)
{
    struct mr_jobs_ops o = ops_of(ops_json);

    mr_arena_init(&x->a, 0);
    x->rc = mr_jobs_plan(&x->a, &o, in, "ffmpeg", IN, "/out", "clip", 1000000, &x->p, x->msg,
                         sizeof(x->msg));
}

static void expect_plan(const char *ops_json, const struct mr_jobs_probe *in, const char *main,
                        const char *thumb, const char *output, double expect_s)
{
    struct planned x;

    plan(&x, ops_json, in);
    if (x.rc)
        fail_msg("%s: %s", ops_json, x.msg);
    if (strcmp(join(&x.p.main), main))
        fail_msg("%s:\n  got  %s\n  want %s", ops_json, join(&x.p.main), main);
    if (strcmp(join(&x.p.thumb), thumb))
        fail_msg("%s:\n  got  %s\n  want %s", ops_json, join(&x.p.thumb), thumb);
    assert_string_equal(x.p.output, output);
    if (thumb[0]) {
        assert_non_null(x.p.thumb_output);
        assert_string_equal(x.p.thumb_output, "clip.jpg");
    } else {
        assert_null(x.p.thumb_output);
    }
    if (fabs(x.p.expect_s - expect_s) > 1e-9)
        fail_msg("%s: expect_s %f, not %f", ops_json, x.p.expect_s, expect_s);
    mr_arena_free(&x.a);
}

#define X264 "-c:v libx264 -preset veryfast"
#define VP9_TAIL "-b:v 0 -deadline realtime -cpu-used 8 -row-mt 1 -pix_fmt yuv420p"
#define MAPS "-map 0:V:0? -map 0:a:0?"

static void test_plan_copy(void **state)
{
    struct planned x;

    (void)state;
    /* A remux: both streams fit MP4, nothing re-encoded. */
    expect_plan("{\"format\": \"mp4\"}", &h264_aac,
                HEAD " -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn -movflags +faststart "
                FS " /out/clip.mp4", "", "clip.mp4", 60);
    plan(&x, "{\"format\": \"mp4\"}", &h264_aac);
    assert_true(x.p.copy_video && x.p.copy_audio);
    mr_arena_free(&x.a);
    /* What does not fit the container is re-encoded, the rest copied. */
    expect_plan("{\"format\": \"webm\"}", &h264_aac,
                HEAD " -i " IN " " MAPS " -c:v libvpx-vp9 -crf 32 " VP9_TAIL " -c:a libopus "
                "-sn -dn " FS " /out/clip.webm", "", "clip.webm", 60);
    expect_plan("{\"format\": \"webm\"}", &vp9_opus,
                HEAD " -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn " FS " /out/clip.webm",
                "", "clip.webm", 60);
    expect_plan("{\"format\": \"mp4\"}", &vp9_opus,
                HEAD " -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn -movflags +faststart "
                FS " /out/clip.mp4", "", "clip.mp4", 60);
    expect_plan("{\"format\": \"mp4\"}", &mpeg2_pcm,
                HEAD " -i " IN " " MAPS " " X264 " -crf 23 -pix_fmt yuv420p -c:a aac -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 60);
    plan(&x, "{\"format\": \"mp4\"}", &mpeg2_pcm);
    assert_true(!x.p.copy_video && !x.p.copy_audio);
    mr_arena_free(&x.a);
    /* MKV takes any codec, but an unknown one is not copied. */
    expect_plan("{\"format\": \"mkv\"}", &mpeg2_pcm,
                HEAD " -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn " FS " /out/clip.mkv",
                "", "clip.mkv", 60);
    expect_plan("{\"format\": \"mkv\"}", &unknown,
                HEAD " -i " IN " " MAPS " " X264 " -crf 23 -pix_fmt yuv420p -c:a aac -sn -dn "
                FS " /out/clip.mkv", "", "clip.mkv", 60);
    /* An input with one kind of stream maps only that one. */
    expect_plan("{\"format\": \"mp4\"}", &only_h264,
                HEAD " -i " IN " -map 0:V:0? -c:v copy -sn -dn -movflags +faststart " FS
                " /out/clip.mp4", "", "clip.mp4", 10);
    expect_plan("{\"format\": \"mkv\"}", &only_mp3,
                HEAD " -i " IN " -map 0:a:0? -c:a copy -sn -dn " FS " /out/clip.mkv", "",
                "clip.mkv", 180);
}

static void test_plan_trim(void **state)
{
    struct planned x;

    (void)state;
    /* Exact: input seek, a duration, everything re-encoded. */
    expect_plan("{\"trim\": {\"start\": 10, \"end\": \"00:00:20.5\"}}", &h264_aac,
                HEAD " -ss 10.000 -i " IN " " MAPS " -t 10.500 " X264 " -crf 23 -pix_fmt yuv420p "
                "-c:a aac -sn -dn -movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4",
                10.5);
    plan(&x, "{\"trim\": {\"start\": 10, \"end\": 20}}", &h264_aac);
    assert_true(!x.p.copy_video && !x.p.copy_audio);
    mr_arena_free(&x.a);
    /* Not exact: copied, cut on the keyframe before. */
    expect_plan("{\"trim\": {\"start\": 1.25, \"duration\": 5, \"exact\": false}}", &h264_aac,
                HEAD " -ss 1.250 -i " IN " " MAPS " -t 5.000 -c:v copy -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 5);
    /* From 0, to the end. */
    expect_plan("{\"trim\": {\"duration\": \"0:30\", \"exact\": false}}", &h264_aac,
                HEAD " -i " IN " " MAPS " -t 30.000 -c:v copy -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 30);
    expect_plan("{\"trim\": {\"start\": 15, \"exact\": false}}", &h264_aac,
                HEAD " -ss 15.000 -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 45);
    /* Past the end: the expected duration is what remains. */
    expect_plan("{\"trim\": {\"start\": 50, \"duration\": 30, \"exact\": false}}", &h264_aac,
                HEAD " -ss 50.000 -i " IN " " MAPS " -t 30.000 -c:v copy -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 10);
    /* A duration nobody knows. */
    expect_plan("{\"trim\": {\"start\": 50, \"exact\": false}}", &no_duration,
                HEAD " -ss 50.000 -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 0);
    expect_plan("{\"trim\": {\"start\": 50, \"duration\": 0.001, \"exact\": false}}",
                &no_duration,
                HEAD " -ss 50.000 -i " IN " " MAPS " -t 0.001 -c:v copy -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 0.001);
    /* Audio only, exact. */
    expect_plan("{\"trim\": {\"start\": \"1:00\", \"end\": \"1:30\"}, \"format\": \"mp3\"}",
                &only_mp3,
                HEAD " -ss 60.000 -i " IN " -map 0:a:0? -t 30.000 -c:a libmp3lame -q:a 2 -sn -dn "
                FS " /out/clip.mp3", "", "clip.mp3", 30);
}

static void test_plan_video(void **state)
{
    (void)state;
    /* One side given: the other follows on an even size; audio copied. */
    expect_plan("{\"resize\": {\"width\": 1281}}", &h264_aac,
                HEAD " -i " IN " " MAPS " -vf scale=1280:-2 " X264 " -crf 23 -pix_fmt yuv420p "
                "-c:a copy -sn -dn -movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 60);
    expect_plan("{\"resize\": {\"height\": 720}}", &h264_aac,
                HEAD " -i " IN " " MAPS " -vf scale=-2:720 " X264 " -crf 23 -pix_fmt yuv420p "
                "-c:a copy -sn -dn -movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 60);
    expect_plan("{\"resize\": {\"width\": 640, \"height\": 360}, \"fps\": 30}", &h264_aac,
                HEAD " -i " IN " " MAPS " -vf scale=640:360,fps=30.000 " X264 " -crf 23 "
                "-pix_fmt yuv420p -c:a copy -sn -dn -movflags +faststart " FS " /out/clip.mp4", "",
                "clip.mp4", 60);
    expect_plan("{\"fps\": 29.97}", &h264_aac,
                HEAD " -i " IN " " MAPS " -vf fps=29.970 " X264 " -crf 23 -pix_fmt yuv420p "
                "-c:a copy -sn -dn -movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 60);
    expect_plan("{\"quality\": 18}", &h264_aac,
                HEAD " -i " IN " " MAPS " " X264 " -crf 18 -pix_fmt yuv420p -c:a copy -sn -dn "
                "-movflags +faststart " FS " /out/clip.mp4", "", "clip.mp4", 60);
    expect_plan("{\"quality\": 40, \"format\": \"webm\", \"resize\": {\"height\": 240}}",
                &vp9_opus,
                HEAD " -i " IN " " MAPS " -vf scale=-2:240 -c:v libvpx-vp9 -crf 40 " VP9_TAIL
                " -c:a copy -sn -dn " FS " /out/clip.webm", "", "clip.webm", 60);
    expect_plan("{\"quality\": 0, \"format\": \"mkv\"}", &vp9_opus,
                HEAD " -i " IN " " MAPS " " X264 " -crf 0 -pix_fmt yuv420p -c:a copy -sn -dn "
                FS " /out/clip.mkv", "", "clip.mkv", 60);
}

static void test_plan_audio(void **state)
{
    (void)state;
    expect_plan("{\"format\": \"mp3\"}", &h264_aac,
                HEAD " -i " IN " -map 0:a:0? -c:a libmp3lame -q:a 2 -sn -dn " FS " /out/clip.mp3",
                "", "clip.mp3", 60);
    expect_plan("{\"format\": \"mp3\"}", &only_mp3,
                HEAD " -i " IN " -map 0:a:0? -c:a copy -sn -dn " FS " /out/clip.mp3", "",
                "clip.mp3", 180);
    expect_plan("{\"audio_only\": true}", &h264_aac,
                HEAD " -i " IN " -map 0:a:0? -c:a copy -sn -dn -movflags +faststart " FS
                " /out/clip.m4a", "", "clip.m4a", 60);
    expect_plan("{\"format\": \"m4a\"}", &only_mp3,
                HEAD " -i " IN " -map 0:a:0? -c:a aac -sn -dn -movflags +faststart " FS
                " /out/clip.m4a", "", "clip.m4a", 180);
    expect_plan("{\"format\": \"webm\", \"audio_only\": true}", &h264_aac,
                HEAD " -i " IN " -map 0:a:0? -c:a libopus -sn -dn " FS " /out/clip.webm", "",
                "clip.webm", 60);
    expect_plan("{\"format\": \"mkv\", \"audio_only\": true}", &vp9_opus,
                HEAD " -i " IN " -map 0:a:0? -c:a copy -sn -dn " FS " /out/clip.mkv", "",
                "clip.mkv", 60);
}

static void test_plan_hls(void **state)
{
    (void)state;
    expect_plan("{\"format\": \"hls\"}", &h264_aac,
                HEAD " -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn " FS " -f hls -hls_time 6 "
                "-hls_playlist_type vod -hls_segment_filename /out/seg_%05d.ts /out/index.m3u8", "",
                "index.m3u8", 60);
    expect_plan("{\"format\": \"hls\"}", &vp9_opus,
                HEAD " -i " IN " " MAPS " " X264 " -crf 23 -pix_fmt yuv420p "
                "-force_key_frames expr:gte(t,n_forced*6) -c:a aac -sn -dn " FS " -f hls -hls_time 6 -hls_playlist_type vod -hls_segment_filename "
                "/out/seg_%05d.ts /out/index.m3u8", "", "index.m3u8", 60);
    expect_plan("{\"format\": \"hls\", \"audio_only\": true}", &only_mp3,
                HEAD " -i " IN " -map 0:a:0? -c:a copy -sn -dn " FS " -f hls -hls_time 6 "
                "-hls_playlist_type vod -hls_segment_filename /out/seg_%05d.ts /out/index.m3u8", "",
                "index.m3u8", 180);
}

#define THUMB(at, vf) HEAD " -ss " at " -i " IN " -map 0:V:0 -frames:v 1 " vf "-q:v 2 " \
                      "-update 1 " FS " /out/clip.jpg"

static void test_plan_thumbnail(void **state)
{
    struct planned x;

    (void)state;
    /* Only a thumbnail: no main command, the result is the picture. */
    expect_plan("{\"thumbnail\": true}", &h264_aac, "", THUMB("6.000", ""), "clip.jpg", 60);
    plan(&x, "{\"thumbnail\": true}", &h264_aac);
    assert_int_equal(x.p.main.n, 0);
    assert_null(x.p.main.v[0]);
    assert_true(!x.p.copy_video && !x.p.copy_audio);
    mr_arena_free(&x.a);
    expect_plan("{\"thumbnail\": {\"at\": \"0:01.5\"}}", &h264_aac, "", THUMB("1.500", ""),
                "clip.jpg", 60);
    expect_plan("{\"thumbnail\": 0}", &h264_aac, "",
                HEAD " -i " IN " -map 0:V:0 -frames:v 1 -q:v 2 -update 1 " FS " /out/clip.jpg",
                "clip.jpg", 60);
    /* With a result: its time is into the result (after the trim's start),
     * and it is resized like the result. */
    expect_plan("{\"trim\": {\"start\": 10, \"duration\": 20}, \"resize\": {\"height\": 480}, "
                "\"thumbnail\": {\"at\": \"5\"}}", &h264_aac,
                HEAD " -ss 10.000 -i " IN " " MAPS " -t 20.000 -vf scale=-2:480 " X264
                " -crf 23 -pix_fmt yuv420p -c:a aac -sn -dn -movflags +faststart " FS
                " /out/clip.mp4", THUMB("15.000", "-vf scale=-2:480 "), "clip.mp4", 20);
    expect_plan("{\"trim\": {\"start\": 10, \"duration\": 20, \"exact\": false}, "
                "\"thumbnail\": true, \"fps\": 12}", &h264_aac,
                HEAD " -ss 10.000 -i " IN " " MAPS " -t 20.000 -vf fps=12.000 " X264
                " -crf 23 -pix_fmt yuv420p -c:a copy -sn -dn -movflags +faststart " FS
                " /out/clip.mp4", THUMB("12.000", ""), "clip.mp4", 20);
    /* An audio result and a picture from the video. */
    expect_plan("{\"format\": \"mp3\", \"thumbnail\": true}", &h264_aac,
                HEAD " -i " IN " -map 0:a:0? -c:a libmp3lame -q:a 2 -sn -dn " FS
                " /out/clip.mp3", THUMB("6.000", ""), "clip.mp3", 60);
    /* A format given is a result asked for. */
    expect_plan("{\"format\": \"mp4\", \"thumbnail\": true}", &h264_aac,
                HEAD " -i " IN " " MAPS " -c:v copy -c:a copy -sn -dn -movflags +faststart " FS
                " /out/clip.mp4", THUMB("6.000", ""), "clip.mp4", 60);
    /* Unknown duration: the tenth of nothing is the start. */
    expect_plan("{\"thumbnail\": true}", &no_duration, "",
                HEAD " -i " IN " -map 0:V:0 -frames:v 1 -q:v 2 -update 1 " FS " /out/clip.jpg",
                "clip.jpg", 0);
}

static void test_plan_errors(void **state)
{
    static const struct { const char *ops; const struct mr_jobs_probe *in; const char *says; }
    cases[] = {
        { "{\"trim\": {\"start\": 60}}", &h264_aac, "past the end" },
        { "{\"trim\": {\"start\": 75, \"duration\": 1}}", &h264_aac, "past the end" },
        { "{\"audio_only\": true}", &only_h264, "without audio" },
        { "{\"format\": \"mp3\"}", &only_h264, "without audio" },
        { "{\"resize\": {\"width\": 640}}", &only_mp3, "without video" },
        { "{\"fps\": 10}", &only_mp3, "without video" },
        { "{\"quality\": 10}", &only_mp3, "without video" },
        { "{\"thumbnail\": true}", &only_mp3, "without video" },
        { "{\"thumbnail\": 60}", &h264_aac, "past the end of the result" },
        { "{\"trim\": {\"start\": 10, \"duration\": 5}, \"thumbnail\": 5}", &h264_aac,
          "past the end of the result" },
    };
    struct mr_jobs_ops o = ops_of("{\"format\": \"mp4\"}");
    struct planned x;

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        plan(&x, cases[i].ops, cases[i].in);
        if (!x.rc)
            fail_msg("planned: %s", cases[i].ops);
        if (!strstr(x.msg, cases[i].says))
            fail_msg("%s: \"%s\" does not say %s", cases[i].ops, x.msg, cases[i].says);
        assert_int_equal(x.p.main.n + x.p.thumb.n, 0);
        mr_arena_free(&x.a);
    }
    /* Names that are not mr_jobs_safe_name's. */
    mr_arena_init(&x.a, 0);
    assert_int_equal(mr_jobs_plan(&x.a, &o, &h264_aac, "ffmpeg", IN, "/out", "../x", 1, &x.p,
                                  x.msg, sizeof(x.msg)), -1);
    assert_int_equal(mr_jobs_plan(&x.a, &o, &h264_aac, "ffmpeg", IN, "/out", "", 1, &x.p,
                                  x.msg, sizeof(x.msg)), -1);
    assert_int_equal(mr_jobs_plan(&x.a, &o, &h264_aac, "ffmpeg", IN, "/out", "-x", 1, &x.p,
                                  x.msg, sizeof(x.msg)), -1);
    assert_int_equal(mr_jobs_plan(&x.a, &o, &h264_aac, "ffmpeg", IN, "/out", "x", 0, &x.p,
                                  x.msg, sizeof(x.msg)), -1);
    mr_arena_free(&x.a);
}

/* ---- yt-dlp lines --------------------------------------------------------- */

static enum mr_jobs_line yt(const char *line, struct mr_jobs_ytdlp_event *ev)
{
    return mr_jobs_ytdlp_line(line, strlen(line), ev);
}

static void test_ytdlp_progress(void **state)
{
    static struct mr_jobs_ytdlp_event ev;

    (void)state;
    /* A plain download: sizes, then speed and ETA, fragments NA. */
    assert_int_equal(yt("[mr-progress] downloading 1024 73100 NA NA NA NA NA", &ev),
                     MR_LINE_PROGRESS);
    assert_int_equal(ev.kind, MR_LINE_PROGRESS);
    assert_false(ev.finished);
    assert_true(ev.bytes == 1024 && ev.total == 73100 && ev.speed == -1 && ev.eta_s == -1);
    assert_true(ev.frag_index == -1 && ev.frag_count == -1);
    assert_int_equal(yt("[mr-progress] downloading 15360 73100 NA 12558383.906432748 0 NA NA",
                        &ev), MR_LINE_PROGRESS);
    assert_true(fabs(ev.speed - 12558383.906432748) < 1e-6 && ev.eta_s == 0);
    assert_int_equal(yt("[mr-progress] finished 73100 73100 NA 15209267.443821618 NA NA NA",
                        &ev), MR_LINE_PROGRESS);
    assert_true(ev.finished && ev.bytes == 73100 && ev.total == 73100);
    /* HLS: no total but an estimate (a float), fragments. */
    assert_int_equal(yt("[mr-progress] downloading 20868 NA 104340.0 3511040.790725661 0 1 5",
                        &ev), MR_LINE_PROGRESS);
    assert_true(ev.bytes == 20868 && ev.total == 104340 && ev.frag_index == 1 &&
                ev.frag_count == 5);
    assert_int_equal(yt("[mr-progress] downloading 42760 NA 104653.33333333334 NA 12 2 5\r", &ev),
                     MR_LINE_PROGRESS);
    assert_true(ev.total == 104653 && ev.speed == -1 && ev.eta_s == 12);
    assert_int_equal(yt("[mr-progress] downloading NA NA NA NA NA NA NA", &ev), MR_LINE_PROGRESS);
    assert_true(ev.bytes == -1 && ev.total == -1);
    assert_int_equal(yt("[mr-progress] error 1e3 2E+3 NA 1.5e-2 NA NA NA", &ev), MR_LINE_PROGRESS);
    assert_true(!ev.finished && ev.bytes == 1000 && ev.total == 2000 && ev.speed == 0.015);

    static const char *const bad[] = {
        "[mr-progress] downloading 1024 73100 NA NA NA NA",          /* 7 fields */
        "[mr-progress] downloading 1024 73100 NA NA NA NA NA NA",    /* 9 */
        "[mr-progress] downloading  1024 73100 NA NA NA NA NA",
        "[mr-progress] downloading 1024 73100 NA NA NA NA NA ",
        "[mr-progress]  downloading 1024 73100 NA NA NA NA NA",
        "[mr-progress] downloading -5 73100 NA NA NA NA NA",
        "[mr-progress] downloading 1e 73100 NA NA NA NA NA",
        "[mr-progress] downloading nan 73100 NA NA NA NA NA",
        "[mr-progress] downloading inf 73100 NA NA NA NA NA",
        "[mr-progress] downloading 0x10 73100 NA NA NA NA NA",
        "[mr-progress] downloading 1,5 73100 NA NA NA NA NA",
        "[mr-progress] downloading 1024 73100 None NA NA NA NA",
        "[mr-progress] Downloading 1024 73100 NA NA NA NA NA",
        "[mr-progress] down-loading 1024 73100 NA NA NA NA NA",
        "[mr-progress] 1024 73100 NA NA NA NA NA NA",
        "[mr-progress]",
        "[mr-progress] ",
        "[mr-progress]downloading 1024 73100 NA NA NA NA NA",
        "[download] Destination: /tmp/x/out/media.mp4",
        "[download] 100% of   71.39KiB in 00:00:00 at 15.27MiB/s",
        "",
        "mr-progress downloading 1024 73100 NA NA NA NA NA",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        memset(&ev, 0x5a, sizeof(ev));
        if (yt(bad[i], &ev) != MR_LINE_OTHER)
            fail_msg("read: %s", bad[i]);
        assert_int_equal(ev.kind, MR_LINE_OTHER);
        assert_true(ev.bytes == -1 && ev.text[0] == '\0');
    }
    /* A line longer than the cap is not read. */
    {
        char *line = malloc(MR_JOBS_MAX_LINE + 2);
        size_t k = (size_t)snprintf(line, MR_JOBS_MAX_LINE + 2,
                                    "[mr-progress] downloading 1 2 NA NA NA NA NA");
        assert_int_equal(mr_jobs_ytdlp_line(line, k, &ev), MR_LINE_PROGRESS);
        memset(line + k, ' ', MR_JOBS_MAX_LINE + 1 - k);
        assert_int_equal(mr_jobs_ytdlp_line(line, MR_JOBS_MAX_LINE + 1, &ev), MR_LINE_OTHER);
        free(line);
    }
}

static void test_ytdlp_prints(void **state)
{
    static struct mr_jobs_ytdlp_event ev;
    char line[MR_JOBS_MAX_LINE + 1];
    size_t o;

    (void)state;
    assert_int_equal(yt("[mr-title] \"Clip \\u2014 test / one (1)\"", &ev), MR_LINE_TITLE);
    assert_string_equal(ev.text, "Clip \xe2\x80\x94 test / one (1)");
    assert_int_equal(yt("[mr-title] \"NA\"", &ev), MR_LINE_TITLE);
    assert_string_equal(ev.text, "NA");
    assert_int_equal(yt("[mr-title] \"\"", &ev), MR_LINE_TITLE);
    assert_string_equal(ev.text, "");
    /* A NUL, a lone surrogate and a raw bad byte become U+FFFD. */
    assert_int_equal(yt("[mr-title] \"a\\u0000b\"", &ev), MR_LINE_TITLE);
    assert_string_equal(ev.text, "a\xef\xbf\xbd" "b");
    assert_int_equal(yt("[mr-title] \"x\xff\"", &ev), MR_LINE_TITLE);
    assert_string_equal(ev.text, "x\xef\xbf\xbd");
    assert_int_equal(yt("[mr-title] \"\\ud83d\\ude00\"", &ev), MR_LINE_TITLE);
    assert_string_equal(ev.text, "\xf0\x9f\x98\x80");
    assert_int_equal(yt("[mr-title] \"\\ud83d\"", &ev), MR_LINE_TITLE);
    assert_true(ev.text[0] != '\0' && strlen(ev.text) <= 6);
    /* A long title is cut on a character, at MR_JOBS_MAX_STRING bytes. */
    o = (size_t)snprintf(line, sizeof(line), "[mr-title] \"a");
    for (int i = 0; i < 600; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\\u00e9");
    o += (size_t)snprintf(line + o, sizeof(line) - o, "\"");
    assert_int_equal(mr_jobs_ytdlp_line(line, o, &ev), MR_LINE_TITLE);
    assert_int_equal(strlen(ev.text), 1 + 2 * 511);
    assert_string_equal(ev.text + strlen(ev.text) - 2, "\xc3\xa9");

    assert_int_equal(yt("[mr-file] \"/tmp/x/out/media.mp4\"", &ev), MR_LINE_FILE);
    assert_string_equal(ev.text, "/tmp/x/out/media.mp4");
    assert_int_equal(yt("[mr-file] \"/jobs/1/m\\u00e9dia.mkv\"\n", &ev), MR_LINE_FILE);
    assert_string_equal(ev.text, "/jobs/1/m\xc3\xa9" "dia.mkv");

    assert_int_equal(yt("[mr-formats] [\"0\", \"1\"]", &ev), MR_LINE_FORMATS);
    assert_int_equal(ev.nformats, 2);
    assert_int_equal(yt("[mr-formats] [\"137\"]", &ev), MR_LINE_FORMATS);
    assert_int_equal(ev.nformats, 1);
    assert_int_equal(yt("[mr-formats] \"NA\"", &ev), MR_LINE_FORMATS);
    assert_int_equal(ev.nformats, 1);
    assert_int_equal(yt("[mr-formats] NA", &ev), MR_LINE_FORMATS);
    assert_int_equal(ev.nformats, 1);

    static const char *const bad[] = {
        "[mr-title] Clip", "[mr-title] \"open", "[mr-title] \"a\" \"b\"", "[mr-title] 5",
        "[mr-title] [\"a\"]", "[mr-title] \"bad \\x escape\"", "[mr-title]",
        "[mr-file] \"NA\"", "[mr-file] \"\"", "[mr-file] \"/a\\nb\"", "[mr-file] \"/a\\u0000b\"",
        "[mr-file] \"/a\xff\"", "[mr-file] /tmp/a.mp4", "[mr-file] null",
        "[mr-formats] []", "[mr-formats] [1]", "[mr-formats] [\"a\", null]", "[mr-formats] \"137\"",
        "[mr-formats] {}", "[mr-formats] [[\"a\"]]", "[mr-formats] nA", "[mr-formats]",
        "[mr-title ] \"x\"",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (yt(bad[i], &ev) != MR_LINE_OTHER)
            fail_msg("read: %s", bad[i]);
}

/* Every line yt-dlp printed for the three real downloads is read. */
static void test_ytdlp_real(void **state)
{
    static const char *const files[] = { "ytdlp-mp4.txt", "ytdlp-hls.txt", "ytdlp-dash.txt" };
    static struct mr_jobs_ytdlp_event ev;

    (void)state;
    for (size_t f = 0; f < ARRAY_LEN(files); f++) {
        char path[512];
        size_t len, kinds[5] = { 0 }, finished = 0;
        char *text;
        snprintf(path, sizeof(path), SEEDS "%s", files[f]);
        text = slurp(path, &len);
        for (size_t i = 0; i < len;) {
            char *nl = memchr(text + i, '\n', len - i);
            size_t n = nl ? (size_t)(nl - text) - i : len - i;
            enum mr_jobs_line k = mr_jobs_ytdlp_line(text + i, n, &ev);
            if (n && k == MR_LINE_OTHER)
                fail_msg("%s: not read: %.*s", files[f], (int)n, text + i);
            kinds[k]++;
            finished += k == MR_LINE_PROGRESS && ev.finished;
            if (k == MR_LINE_FILE)
                assert_string_equal(ev.text, "/tmp/x/out/media.mp4");
            if (k == MR_LINE_FORMATS)
                assert_int_equal(ev.nformats, f == 2 ? 2 : 1);
            i += n + 1;
        }
        assert_int_equal(kinds[MR_LINE_TITLE], 1);
        assert_int_equal(kinds[MR_LINE_FORMATS], 1);
        assert_int_equal(kinds[MR_LINE_FILE], 1);
        assert_true(kinds[MR_LINE_PROGRESS] > 5);
        assert_int_equal(finished, f == 2 ? 2 : 1);   /* DASH: video, then audio */
        free(text);
    }
}

/* ---- ffmpeg -progress ----------------------------------------------------- */

static int ff(const char *line, struct mr_jobs_ffmpeg_progress *p)
{
    return mr_jobs_ffmpeg_line(line, strlen(line), p);
}

static void test_ffmpeg_progress(void **state)
{
    struct mr_jobs_ffmpeg_progress p = { -1, -1, 0, false };
    size_t len, blocks = 0;
    char *text;

    (void)state;
    /* ffmpeg 5.1's own, for a 5 s clip. */
    text = slurp(SEEDS "ffmpeg-progress.txt", &len);
    for (size_t i = 0; i < len;) {
        char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - text) - i : len - i;
        if (mr_jobs_ffmpeg_line(text + i, n, &p)) {
            if (++blocks == 1) {
                assert_true(p.out_us == 46440 && p.size == 48 && p.speed == 3.33 && !p.end);
            }
        }
        i += n + 1;
    }
    assert_int_equal(blocks, 2);
    assert_true(p.out_us == 5015510 && p.size == 73148 && p.speed == 25.5 && p.end);
    free(text);

    /* N/A, padding, negative times, CRLF, unknown keys and values. */
    p = (struct mr_jobs_ffmpeg_progress){ -1, -1, 0, false };
    assert_int_equal(ff("frame=0", &p), 0);
    assert_int_equal(ff("total_size=N/A", &p), 0);
    assert_int_equal(ff("out_time_us=N/A", &p), 0);
    assert_int_equal(ff("out_time_ms=N/A", &p), 0);
    assert_int_equal(ff("speed=N/A", &p), 0);
    assert_int_equal(ff("progress=continue", &p), 1);
    assert_true(p.out_us == -1 && p.size == -1 && p.speed == 0 && !p.end);
    assert_int_equal(ff("out_time_us=-23220", &p), 0);
    assert_int_equal(p.out_us, 0);
    assert_int_equal(ff("out_time_us=1500000\r", &p), 0);
    assert_int_equal(p.out_us, 1500000);
    assert_int_equal(ff("out_time_ms=N/A", &p), 0);         /* keeps out_time_us */
    assert_int_equal(p.out_us, 1500000);
    assert_int_equal(ff("speed=   1x", &p), 0);
    assert_true(p.speed == 1);
    assert_int_equal(ff("speed=1.5", &p), 0);
    assert_true(p.speed == 0);
    assert_int_equal(ff("speed=x", &p), 0);
    assert_true(p.speed == 0);
    assert_int_equal(ff("total_size=12a", &p), 0);
    assert_int_equal(p.size, -1);
    assert_int_equal(ff("total_size=-1", &p), 0);
    assert_int_equal(p.size, -1);
    assert_int_equal(ff("total_size=999999999999999999", &p), 0);
    assert_true(p.size == 999999999999999999LL);
    assert_int_equal(ff("total_size=9999999999999999999", &p), 0);
    assert_int_equal(p.size, -1);
    /* Only out_time_ms (older ffmpeg): microseconds too. */
    assert_int_equal(ff("out_time_ms=2000000", &p), 0);
    assert_int_equal(p.out_us, 2000000);
    assert_int_equal(ff("progress=paused", &p), 0);
    assert_int_equal(ff("progress", &p), 0);
    assert_int_equal(ff("progress=end\r\n", &p), 1);
    assert_true(p.end);
    assert_int_equal(ff("=end", &p), 0);
    assert_int_equal(ff("", &p), 0);
    assert_int_equal(mr_jobs_ffmpeg_line(NULL, 0, &p), 0);
}

/* ---- analyze -------------------------------------------------------------- */

static struct json_object *analyze_ok(const char *text, size_t len)
{
    struct json_object *o;
    char msg[128];

    if (mr_jobs_analyze_map(text, len, &o, msg, sizeof(msg)))
        fail_msg("refused (%s): %.200s", msg, text);
    return o;
}

static const char *str(struct json_object *o, const char *key)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no %s in %s", key, json_object_to_json_string(o));
    return v ? json_object_get_string(v) : NULL;
}

static void test_analyze_real(void **state)
{
    struct json_object *o, *f, *v;
    char msg[128];
    size_t len;
    char *text;

    (void)state;
    /* An HTML page with a <video>, as yt-dlp's generic extractor saw it. */
    text = slurp(SEEDS "analyze-page.json", &len);
    o = analyze_ok(text, len);
    assert_string_equal(str(o, "title"), "Clip \xe2\x80\x94 test / one (1)");
    assert_null(str(o, "duration"));
    assert_null(str(o, "thumbnail"));
    assert_null(str(o, "uploader"));
    assert_string_equal(str(o, "webpage_url"), "http://127.0.0.1:8765/page.html");
    assert_true(json_object_object_get_ex(o, "formats", &v));
    assert_int_equal(json_object_array_length(v), 1);
    f = json_object_array_get_idx(v, 0);
    assert_string_equal(str(f, "format_id"), "0");
    assert_string_equal(str(f, "ext"), "mp4");
    assert_null(str(f, "vcodec"));
    assert_null(str(f, "width"));
    assert_int_equal(json_object_object_length(f), 10);
    assert_true(json_object_object_get_ex(o, "subtitles", &v));
    assert_int_equal(json_object_array_length(v), 0);
    json_object_put(o);
    free(text);

    /* A DASH manifest: a video and an audio format. */
    text = slurp(SEEDS "analyze-dash.json", &len);
    o = analyze_ok(text, len);
    assert_true(json_object_object_get_ex(o, "formats", &v));
    assert_int_equal(json_object_array_length(v), 2);
    f = json_object_array_get_idx(v, 0);
    assert_string_equal(str(f, "format_id"), "1");
    assert_string_equal(str(f, "vcodec"), "none");
    assert_string_equal(str(f, "acodec"), "mp4a.40.2");
    assert_string_equal(str(f, "tbr"), "69.0");
    f = json_object_array_get_idx(v, 1);
    assert_string_equal(str(f, "format_id"), "0");
    assert_string_equal(str(f, "width"), "320");
    assert_string_equal(str(f, "height"), "240");
    assert_string_equal(str(f, "format_note"), "DASH video");
    json_object_put(o);
    free(text);

    /* A <video> with a poster and two <track>s: a thumbnail, subtitles. */
    text = slurp(SEEDS "analyze-subs.json", &len);
    o = analyze_ok(text, len);
    assert_string_equal(str(o, "title"), "Subtitled clip (1)");
    assert_string_equal(str(o, "thumbnail"), "http://127.0.0.1:8765/cover.png");
    assert_true(json_object_object_get_ex(o, "subtitles", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                        "[\"en\",\"fr\"]");
    json_object_put(o);
    free(text);

    /* A page with two videos is a playlist: refused, and said so. */
    text = slurp(SEEDS "analyze-playlist.json", &len);
    assert_int_equal(mr_jobs_analyze_map(text, len, &o, msg, sizeof(msg)), -1);
    assert_null(o);
    assert_non_null(strstr(msg, "playlist"));
    free(text);
}

static void test_analyze_mapping(void **state)
{
    static const char doc[] =
        "{\"id\": \"x\", \"title\": 123, \"duration\": \"5\", \"uploader\": \"bad \xff\xfe utf8\","
        " \"thumbnail\": \"javascript:alert(1)\", \"webpage_url\": \"ftp://example.com/v\","
        " \"formats\": [5, {\"format_id\": \"22\", \"width\": \"1280\", \"height\": 720.0,"
        " \"fps\": -1, \"filesize\": 1.5, \"filesize_approx\": 1000, \"tbr\": 1e2,"
        " \"ext\": [\"mp4\"], \"vcodec\": null, \"acodec\": \"a\\u0000b\","
        " \"format_note\": {}}],"
        " \"subtitles\": {\"en\": [], \"fr-CA\": [], \"bad lang!\": [], \"\": []}}";
    struct json_object *o, *f, *v;
    char msg[128];

    (void)state;
    o = analyze_ok(doc, sizeof(doc) - 1);
    assert_null(str(o, "title"));
    assert_null(str(o, "duration"));
    assert_string_equal(str(o, "uploader"), "bad \xef\xbf\xbd\xef\xbf\xbd utf8");
    assert_null(str(o, "thumbnail"));
    assert_null(str(o, "webpage_url"));
    assert_true(json_object_object_get_ex(o, "formats", &v));
    assert_int_equal(json_object_array_length(v), 1);
    f = json_object_array_get_idx(v, 0);
    assert_string_equal(str(f, "format_id"), "22");
    assert_null(str(f, "width"));
    assert_string_equal(str(f, "height"), "720");
    assert_null(str(f, "fps"));
    assert_string_equal(str(f, "filesize"), "1000");   /* 1.5 bytes is no size */
    assert_string_equal(str(f, "tbr"), "100.0");
    assert_null(str(f, "ext"));
    assert_null(str(f, "vcodec"));
    assert_string_equal(str(f, "acodec"), "a\xef\xbf\xbd" "b");
    assert_null(str(f, "format_note"));
    assert_true(json_object_object_get_ex(o, "subtitles", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                        "[\"en\",\"fr-CA\"]");
    json_object_put(o);

    /* URLs: http and https only, whole and without spaces. */
    static const struct { const char *url; bool kept; } urls[] = {
        { "https://i.example/t.jpg", true }, { "HTTP://I.EXAMPLE/T.JPG", true },
        { "http://a", true }, { "http:///x", false }, { "http://", false },
        { "http://a b/", false }, { "http://a/\\u0001", false }, { "file:///etc/passwd", false },
        { "//i.example/t.jpg", false }, { "data:image/png;base64,AAAA", false },
    };
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"id\": \"x\", \"thumbnail\": \"%s\"}", urls[i].url);
        o = analyze_ok(text, strlen(text));
        if (urls[i].kept != (str(o, "thumbnail") != NULL))
            fail_msg("%s: %s", urls[i].url, urls[i].kept ? "dropped" : "kept");
        json_object_put(o);
    }

    /* Numbers: NaN and infinities (Python's json prints them) are null. */
    {
        static const char nan[] = "{\"id\": \"x\", \"duration\": NaN, \"formats\": [{\"fps\": "
                                  "Infinity, \"tbr\": -Infinity, \"width\": 1e400}]}";
        o = analyze_ok(nan, sizeof(nan) - 1);
        assert_null(str(o, "duration"));
        assert_true(json_object_object_get_ex(o, "formats", &v));
        f = json_object_array_get_idx(v, 0);
        assert_null(str(f, "fps"));
        assert_null(str(f, "tbr"));
        assert_null(str(f, "width"));
        json_object_put(o);
    }
    o = analyze_ok("{\"id\": \"x\", \"duration\": 12.5}", 29);
    assert_string_equal(str(o, "duration"), "12.5");
    json_object_put(o);

    static const char *const bad[] = {
        "", "[]", "null", "\"x\"", "{}", "{\"title\": \"no id\"}",
        "{\"_type\": \"playlist\", \"entries\": []}", "{\"_type\": \"multi_video\", \"id\": \"x\"}",
        "{\"id\": \"x\", \"entries\": null}", "{\"_type\": \"url\", \"url\": \"http://a/\"}",
        "{\"_type\": 5, \"id\": \"x\"}", "{\"id\": \"x\"} {}", "{\"id\": \"x\"",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        msg[0] = '\0';
        if (!mr_jobs_analyze_map(bad[i], strlen(bad[i]), &o, msg, sizeof(msg)))
            fail_msg("accepted: %s", bad[i]);
        assert_null(o);
        assert_true(msg[0] != '\0');
    }
}

static void test_analyze_caps(void **state)
{
    size_t cap = 64 + MR_JOBS_MAX_FORMATS * 64 + 4096;
    char *text = malloc(cap * 2);
    struct json_object *o, *v, *f;
    size_t n = 0;
    int i;

    (void)state;
    /* A title of 2 * 700 bytes is cut on a character at 1024. */
    n += (size_t)snprintf(text + n, cap - n, "{\"id\": \"x\", \"title\": \"");
    for (i = 0; i < 700; i++)
        n += (size_t)snprintf(text + n, cap - n, "\xc3\xa9");
    n += (size_t)snprintf(text + n, cap - n, "\", \"uploader\": \"a");
    for (i = 0; i < 1100; i++)
        text[n++] = 'b';
    n += (size_t)snprintf(text + n, cap - n, "\", \"formats\": [");
    for (i = 0; i < MR_JOBS_MAX_FORMATS + 50; i++)
        n += (size_t)snprintf(text + n, cap * 2 - n, "%s{\"format_id\": \"%d\"}", i ? "," : "", i);
    n += (size_t)snprintf(text + n, cap * 2 - n, "]}");
    o = analyze_ok(text, n);
    assert_int_equal(strlen(str(o, "title")), 1024);
    assert_int_equal(strlen(str(o, "uploader")), MR_JOBS_MAX_STRING);
    assert_true(json_object_object_get_ex(o, "formats", &v));
    assert_int_equal(json_object_array_length(v), MR_JOBS_MAX_FORMATS);
    f = json_object_array_get_idx(v, 0);
    assert_string_equal(str(f, "format_id"), "50");        /* the best ones are kept */
    json_object_put(o);
    free(text);
}

/* ---- names ---------------------------------------------------------------- */

static const char *name(const char *title, size_t n)
{
    static char out[MR_JOBS_MAX_NAME + 1];
    size_t len = mr_jobs_safe_name(title, n, out, sizeof(out));
    assert_int_equal(len, strlen(out));
    assert_true(len >= 1 && len <= MR_JOBS_MAX_NAME);
    return out;
}

#define NAME(s) name(s, sizeof(s) - 1)

static void test_safe_name(void **state)
{
    char buf[512];

    (void)state;
    assert_string_equal(NAME("Hello World"), "Hello World");
    assert_string_equal(NAME("Clip \xe2\x80\x94 t\xc3\xa9st (1)"), "Clip \xe2\x80\x94 t\xc3\xa9st (1)");
    /* Every forbidden character. */
    assert_string_equal(NAME("a/b\\c:d*e?f\"g<h>i|j"), "a_b_c_d_e_f_g_h_i_j");
    /* Controls: C0, DEL, C1, NUL, and the bidi overrides. */
    assert_string_equal(NAME("a\tb\nc\x7f" "d\r"), "a_b_c_d_");
    assert_string_equal(NAME("a\0b"), "a_b");
    assert_string_equal(NAME("x\xc2\x85y"), "x_y");
    assert_string_equal(NAME("evil\xe2\x80\xaegpj.exe"), "evil_gpj.exe");
    assert_string_equal(NAME("a\xe2\x81\xa6" "b"), "a_b");
    /* Bad UTF-8: each bad byte. */
    assert_string_equal(NAME("caf\xe9"), "caf_");
    assert_string_equal(NAME("x\xc3"), "x_");
    assert_string_equal(NAME("\xed\xa0\x80z"), "___z");          /* a surrogate */
    assert_string_equal(NAME("\xc0\xafz"), "__z");                /* overlong '/' */
    assert_string_equal(NAME("\xf4\x90\x80\x80"), "____");        /* past U+10FFFF */
    /* Leading dots, dashes and spaces; trailing dots and spaces. */
    assert_string_equal(NAME("...hidden"), "hidden");
    assert_string_equal(NAME("-rf"), "rf");
    assert_string_equal(NAME(" .- x"), "x");
    assert_string_equal(NAME("x. . "), "x");
    assert_string_equal(NAME("a.b-c d"), "a.b-c d");
    assert_string_equal(NAME(".."), "media");
    assert_string_equal(NAME("../../etc/passwd"), "_.._etc_passwd");
    assert_string_equal(NAME(""), "media");
    assert_string_equal(NAME(" . "), "media");
    assert_string_equal(name(NULL, 0), "media");
    assert_string_equal(NAME("///"), "___");
    /* Cut at MR_JOBS_MAX_NAME bytes, on a character. */
    memset(buf, 'a', 119);
    memcpy(buf + 119, "\xc3\xa9", 2);
    assert_int_equal(strlen(name(buf, 121)), 119);
    memset(buf, 'a', 118);
    memcpy(buf + 118, "\xc3\xa9xyz", 5);
    assert_int_equal(strlen(name(buf, 123)), 120);
    for (int i = 0; i < 50; i++)
        memcpy(buf + 3 * i, "\xe2\x82\xac", 3);
    assert_int_equal(strlen(name(buf, 150)), 120);
    for (int i = 0; i < 31; i++)
        memcpy(buf + 4 * i, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(strlen(name(buf, 124)), 120);
    /* A cut that leaves a trailing space drops it too. */
    memset(buf, 'a', 119);
    memcpy(buf + 119, " bc", 3);
    assert_int_equal(strlen(name(buf, 122)), 119);
    /* Leading characters dropped do not count. */
    memset(buf, '.', 10);
    memset(buf + 10, 'a', 120);
    assert_int_equal(strlen(name(buf, 130)), 120);
    assert_int_equal(name(buf, 130)[0], 'a');
}

static void test_content_disposition(void **state)
{
    char out[256], small[60];
    static const char plain[] = "attachment; filename=\"clip.mp4\"; filename*=UTF-8''clip.mp4";

    (void)state;
    assert_int_equal(mr_jobs_content_disposition("clip.mp4", out, sizeof(out)), 0);
    assert_string_equal(out, plain);
    assert_int_equal(mr_jobs_content_disposition("Caf\xc3\xa9 (1) 100%.mp4", out, sizeof(out)), 0);
    assert_string_equal(out, "attachment; filename=\"Caf__ (1) 100%.mp4\"; "
                             "filename*=UTF-8''Caf%C3%A9%20%281%29%20100%25.mp4");
    /* Not from mr_jobs_safe_name: quotes, backslashes and controls too. */
    assert_int_equal(mr_jobs_content_disposition("a\"b\\c\td;e=f'g", out, sizeof(out)), 0);
    assert_string_equal(out, "attachment; filename=\"a_b_c_d;e=f'g\"; "
                             "filename*=UTF-8''a%22b%5Cc%09d%3Be%3Df%27g");
    assert_int_equal(mr_jobs_content_disposition("!#$&+-.^_`|~", out, sizeof(out)), 0);
    assert_string_equal(out, "attachment; filename=\"!#$&+-.^_`|~\"; filename*=UTF-8''!#$&+-.^_`|~");
    /* Exactly fits; one byte short. */
    assert_int_equal(mr_jobs_content_disposition("clip.mp4", small, sizeof(plain)), 0);
    assert_string_equal(small, plain);
    assert_int_equal(mr_jobs_content_disposition("clip.mp4", small, sizeof(plain) - 1), -1);
    assert_string_equal(small, "");
    assert_int_equal(mr_jobs_content_disposition("clip.mp4", small, 0), -1);
    assert_int_equal(mr_jobs_content_disposition(NULL, out, sizeof(out)), -1);
}

static void test_format_id_and_lang(void **state)
{
    static const char *const ids_ok[] = {
        "22", "137+140", "bestvideo[height<=720]+bestaudio/best", "bv*+ba/b", "(mp4,webm)[fps>30]",
        "best[ext=mp4]", "hls-1080p", "a.b_c:d!e?f", "w",
    };
    static const char *const ids_bad[] = {
        "", "-x", "--exec", "a b", "a;b", "a$b", "a\"b", "a'b", "a`b", "a|b", "a&b",
        "a\nb", "a\\b", "\xc3\xa9", "a%b", "a~b", "a{b}", "a#b",
    };
    static const char *const langs_ok[] = { "en", "pt-BR", "all", "zh_Hans", "live_chat", "-en", "A" };
    static const char *const langs_bad[] = { "", "en us", "en,fr", "en.*", "\xc3\xa9", "en\n", "a/b" };
    char buf[200];

    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(ids_ok); i++)
        if (!mr_jobs_format_id_ok(ids_ok[i]))
            fail_msg("refused: %s", ids_ok[i]);
    for (size_t i = 0; i < ARRAY_LEN(ids_bad); i++)
        if (mr_jobs_format_id_ok(ids_bad[i]))
            fail_msg("accepted: %s", ids_bad[i]);
    assert_false(mr_jobs_format_id_ok(NULL));
    memset(buf, '1', MR_JOBS_MAX_FORMAT_ID);
    buf[MR_JOBS_MAX_FORMAT_ID] = '\0';
    assert_true(mr_jobs_format_id_ok(buf));
    buf[MR_JOBS_MAX_FORMAT_ID] = '1';
    buf[MR_JOBS_MAX_FORMAT_ID + 1] = '\0';
    assert_false(mr_jobs_format_id_ok(buf));

    for (size_t i = 0; i < ARRAY_LEN(langs_ok); i++)
        if (!mr_jobs_lang_ok(langs_ok[i]))
            fail_msg("refused: %s", langs_ok[i]);
    for (size_t i = 0; i < ARRAY_LEN(langs_bad); i++)
        if (mr_jobs_lang_ok(langs_bad[i]))
            fail_msg("accepted: %s", langs_bad[i]);
    assert_false(mr_jobs_lang_ok(NULL));
    memset(buf, 'a', MR_JOBS_MAX_LANG);
    buf[MR_JOBS_MAX_LANG] = '\0';
    assert_true(mr_jobs_lang_ok(buf));
    buf[MR_JOBS_MAX_LANG] = 'a';
    buf[MR_JOBS_MAX_LANG + 1] = '\0';
    assert_false(mr_jobs_lang_ok(buf));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_good),
        cmocka_unit_test(test_time_bad),
        cmocka_unit_test(test_ops_good),
        cmocka_unit_test(test_ops_bad),
        cmocka_unit_test(test_ops_messages),
        cmocka_unit_test(test_ops_json),
        cmocka_unit_test(test_probe_real),
        cmocka_unit_test(test_probe_shapes),
        cmocka_unit_test(test_plan_copy),
        cmocka_unit_test(test_plan_trim),
        cmocka_unit_test(test_plan_video),
        cmocka_unit_test(test_plan_audio),
        cmocka_unit_test(test_plan_hls),
        cmocka_unit_test(test_plan_thumbnail),
        cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_ytdlp_progress),
        cmocka_unit_test(test_ytdlp_prints),
        cmocka_unit_test(test_ytdlp_real),
        cmocka_unit_test(test_ffmpeg_progress),
        cmocka_unit_test(test_analyze_real),
        cmocka_unit_test(test_analyze_mapping),
        cmocka_unit_test(test_analyze_caps),
        cmocka_unit_test(test_safe_name),
        cmocka_unit_test(test_content_disposition),
        cmocka_unit_test(test_format_id_and_lang),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
