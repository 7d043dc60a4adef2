/* test_mpd_build.c - the MPD builder: the structure it makes (read back with
 * libxml2), escaping, durations, every refusal, the caps, and a manifest
 * played by ffmpeg over fragmented MP4s made here by ffmpeg (skipped when
 * ffmpeg is not on PATH). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "core/buf.h"
#include "core/error.h"
#include "format/mpd_build.h"

#define MPD_NS "urn:mpeg:dash:schema:mpd:2011"

/* ---- a Bilibili-shaped spec --------------------------------------------------- */

#define CDN  "https://upos-sz-mirrorcos.bilivideo.com/upgcxcode/71/21/1/1-1-"
#define SIG  "?e=ig8euxZM2rNcNbdl&uipk=5&nbs=1&deadline=1700000000&gen=playurlv2&upsig=ab12"
#define BAK1 "https://upos-sz-mirrorali.bilivideo.com/upgcxcode/71/21/1/1-1-"
#define BAK2 "https://cn-gdfs-ct-01-03.bilivideo.com/upgcxcode/71/21/1/1-1-"

static const char *const v80_backup[] = { BAK1 "100050.m4s" SIG, BAK2 "100050.m4s" SIG };
static const char *const a280_backup[] = { BAK1 "30280.m4s" SIG };

static const struct mr_mpd_rep video[] = {
    { .id = "80-7", .base_url = CDN "100050.m4s" SIG, .backup_urls = v80_backup, .nbackup = 2,
      .mime_type = "video/mp4", .codecs = "avc1.640032", .bandwidth = 2965681,
      .width = 1920, .height = 1080, .frame_rate = "29.970", .sar = "1:1",
      .init_range = "0-1007", .index_range = "1008-3243" },
    { .id = "64-7", .base_url = CDN "100048.m4s" SIG, .mime_type = "video/mp4",
      .codecs = "avc1.640028", .bandwidth = 1401218, .width = 1280, .height = 720,
      .frame_rate = "30000/1001", .sar = "1:1", .init_range = "0-1006",
      .index_range = "1007-3242" },
};

static const struct mr_mpd_rep audio[] = {
    { .id = "30280", .base_url = CDN "30280.m4s" SIG, .backup_urls = a280_backup, .nbackup = 1,
      .mime_type = "audio/mp4", .codecs = "mp4a.40.2", .bandwidth = 319173,
      .audio_sampling_rate = 48000, .init_range = "0-933", .index_range = "934-2177",
      .frame_rate = "", .sar = "" },
    { .id = "30216", .base_url = CDN "30216.m4s" SIG, .mime_type = "audio/mp4",
      .codecs = "mp4a.40.2", .bandwidth = 67247, .init_range = "0-933",
      .index_range = "934-2177", .lang = "" },
    { .id = "en-1", .base_url = "https://cdn.example.com/en.m4a", .mime_type = "audio/mp4",
      .codecs = "mp4a.40.5", .bandwidth = 64000, .init_range = "0-9", .index_range = "10-99",
      .lang = "en" },
    { .id = "en-2", .base_url = "https://cdn.example.com/en2.m4a", .mime_type = "audio/webm",
      .codecs = "opus", .bandwidth = 96000, .init_range = "0-9", .index_range = "10-99",
      .lang = "EN" },
};

static struct mr_mpd_spec spec(void)
{
    return (struct mr_mpd_spec){ .duration_s = 3723.456, .video = video, .nvideo = 2,
                                 .audio = audio, .naudio = 4 };
}

/* ---- reading the result back ------------------------------------------------- */

static xmlDocPtr parse(const struct mr_buf *b)
{
    xmlDocPtr d = xmlReadMemory(b->p, (int)b->len, "manifest.mpd", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOBLANKS);
    assert_non_null(d);
    return d;
}

static xmlXPathObjectPtr eval(xmlDocPtr d, const char *expr)
{
    xmlXPathContextPtr c = xmlXPathNewContext(d);
    xmlXPathObjectPtr o;

    assert_non_null(c);
    assert_int_equal(xmlXPathRegisterNs(c, BAD_CAST "d", BAD_CAST MPD_NS), 0);
    o = xmlXPathEvalExpression(BAD_CAST expr, c);
    xmlXPathFreeContext(c);
    if (!o)
        fail_msg("bad XPath %s", expr);
    return o;
}

/* The string value of an XPath expression equals want. */
static void xp_is(xmlDocPtr d, const char *expr, const char *want)
{
    xmlXPathObjectPtr o = eval(d, expr);
    xmlChar *s = xmlXPathCastToString(o);
    char got[4096];

    snprintf(got, sizeof got, "%s", s ? (const char *)s : "(null)");
    xmlFree(s);
    xmlXPathFreeObject(o);
    if (strcmp(got, want))
        fail_msg("%s: got [%s], want [%s]", expr, got, want);
}

static double xp_num(xmlDocPtr d, const char *expr)
{
    xmlXPathObjectPtr o = eval(d, expr);
    double v = xmlXPathCastToNumber(o);

    xmlXPathFreeObject(o);
    return v;
}

#define xp_count(d, expr, n) assert_int_equal((long)xp_num((d), "count(" expr ")"), (n))

static void build_ok(const struct mr_mpd_spec *s, struct mr_buf *out)
{
    const char *why = "unset";
    int rc;

    mr_buf_init(out, 1 << 20);
    rc = mr_mpd_build(s, out, &why);
    if (rc != MR_OK)
        fail_msg("mr_mpd_build: %s (%s)", mr_strerror(rc), why ? why : "");
    assert_null(why);
}

/* ---- structure ----------------------------------------------------------------- */

static void test_structure(void **state)
{
    struct mr_mpd_spec s = spec();
    struct mr_buf out;
    xmlDocPtr d;

    (void)state;
    build_ok(&s, &out);
    assert_true(strncmp(out.p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 38) == 0);
    d = parse(&out);

    /* MPD */
    xp_count(d, "/d:MPD", 1);
    xp_is(d, "/d:MPD/@profiles", "urn:mpeg:dash:profile:isoff-on-demand:2011");
    xp_is(d, "/d:MPD/@type", "static");
    xp_is(d, "/d:MPD/@mediaPresentationDuration", "PT1H2M3.456S");
    xp_is(d, "/d:MPD/@minBufferTime", "PT1.5S");
    xp_count(d, "/d:MPD/*", 1);
    xp_count(d, "/d:MPD/d:Period", 1);
    /* Sets: video; audio without lang (30280, 30216 share it: NULL and ""
     * are both absent); en + EN (case-insensitive). */
    xp_count(d, "//d:AdaptationSet", 3);
    xp_is(d, "//d:AdaptationSet[1]/@contentType", "video");
    xp_is(d, "//d:AdaptationSet[1]/@mimeType", "video/mp4");
    xp_is(d, "//d:AdaptationSet[1]/@segmentAlignment", "true");
    xp_is(d, "//d:AdaptationSet[1]/@subsegmentAlignment", "true");
    xp_is(d, "//d:AdaptationSet[1]/@startWithSAP", "1");
    xp_is(d, "//d:AdaptationSet[1]/@subsegmentStartsWithSAP", "1");
    xp_is(d, "//d:AdaptationSet[1]/@maxWidth", "1920");
    xp_is(d, "//d:AdaptationSet[1]/@maxHeight", "1080");
    xp_count(d, "//d:AdaptationSet[1]/@lang", 0);
    xp_is(d, "//d:AdaptationSet[2]/@contentType", "audio");
    xp_is(d, "//d:AdaptationSet[2]/@mimeType", "audio/mp4");
    xp_is(d, "//d:AdaptationSet[2]/@startWithSAP", "1");
    xp_count(d, "//d:AdaptationSet[2]/@lang", 0);
    xp_count(d, "//d:AdaptationSet[2]/@maxWidth", 0);
    xp_count(d, "//d:AdaptationSet[2]/d:Representation", 2);
    xp_is(d, "//d:AdaptationSet[3]/@lang", "en");
    xp_count(d, "//d:AdaptationSet[3]/d:Representation", 2);
    /* Two mime types in one set: written per Representation instead. */
    xp_count(d, "//d:AdaptationSet[3]/@mimeType", 0);
    xp_is(d, "//d:Representation[@id='en-1']/@mimeType", "audio/mp4");
    xp_is(d, "//d:Representation[@id='en-2']/@mimeType", "audio/webm");
    xp_count(d, "//d:AdaptationSet[1]/d:Representation/@mimeType", 0);

    /* Video representations, in order, with everything given. */
    xp_count(d, "//d:AdaptationSet[1]/d:Representation", 2);
    xp_is(d, "//d:AdaptationSet[1]/d:Representation[1]/@id", "80-7");
    xp_is(d, "//d:AdaptationSet[1]/d:Representation[2]/@id", "64-7");
    xp_is(d, "//d:Representation[@id='80-7']/@codecs", "avc1.640032");
    xp_is(d, "//d:Representation[@id='80-7']/@bandwidth", "2965681");
    xp_is(d, "//d:Representation[@id='80-7']/@width", "1920");
    xp_is(d, "//d:Representation[@id='80-7']/@height", "1080");
    xp_is(d, "//d:Representation[@id='80-7']/@frameRate", "2997/100");  /* from "29.970" */
    xp_is(d, "//d:Representation[@id='64-7']/@frameRate", "30000/1001");
    xp_is(d, "//d:Representation[@id='80-7']/@sar", "1:1");
    xp_count(d, "//d:Representation[@id='80-7']/@audioSamplingRate", 0);
    /* BaseURL first, then the backups in order; nothing else in between. */
    xp_count(d, "//d:Representation[@id='80-7']/d:BaseURL", 3);
    xp_is(d, "//d:Representation[@id='80-7']/d:BaseURL[1]", CDN "100050.m4s" SIG);
    xp_is(d, "//d:Representation[@id='80-7']/d:BaseURL[2]", BAK1 "100050.m4s" SIG);
    xp_is(d, "//d:Representation[@id='80-7']/d:BaseURL[3]", BAK2 "100050.m4s" SIG);
    xp_is(d, "name(//d:Representation[@id='80-7']/*[1])", "BaseURL");
    xp_is(d, "name(//d:Representation[@id='80-7']/*[4])", "SegmentBase");
    xp_count(d, "//d:Representation[@id='80-7']/*", 4);
    xp_is(d, "//d:Representation[@id='80-7']/d:SegmentBase/@indexRange", "1008-3243");
    xp_is(d, "//d:Representation[@id='80-7']/d:SegmentBase/d:Initialization/@range", "0-1007");
    xp_count(d, "//d:Representation[@id='64-7']/d:BaseURL", 1);
    xp_is(d, "//d:Representation[@id='64-7']/d:SegmentBase/@indexRange", "1007-3242");

    /* Audio: no video attributes, audioSamplingRate only where given. */
    xp_is(d, "//d:Representation[@id='30280']/@audioSamplingRate", "48000");
    xp_count(d, "//d:Representation[@id='30216']/@audioSamplingRate", 0);
    xp_count(d, "//d:Representation[@id='30280']/@width", 0);
    xp_count(d, "//d:Representation[@id='30280']/@frameRate", 0);
    xp_count(d, "//d:Representation[@id='30280']/@sar", 0);
    xp_count(d, "//d:Representation[@id='30280']/d:BaseURL", 2);
    xp_is(d, "//d:Representation[@id='30280']/d:BaseURL[2]", BAK1 "30280.m4s" SIG);
    xp_is(d, "//d:Representation[@id='30216']/d:SegmentBase/d:Initialization/@range", "0-933");
    /* Every element is in the MPD namespace. */
    xp_count(d, "//*[namespace-uri() != 'urn:mpeg:dash:schema:mpd:2011']", 0);
    xmlFreeDoc(d);
    mr_buf_free(&out);
}

/* Only video, only audio; generated ids; decimal frame rates; min buffer. */
static void test_shapes(void **state)
{
    struct mr_mpd_rep v[2] = { video[0], video[1] };
    struct mr_mpd_rep a[2] = { audio[0], audio[1] };
    struct mr_mpd_spec s = { .duration_s = 90, .min_buffer_s = 2, .video = v, .nvideo = 2 };
    struct mr_buf out;
    xmlDocPtr d;

    (void)state;
    v[0].id = NULL;
    v[1].id = "";
    v[0].frame_rate = "25";
    v[1].frame_rate = "23.976";
    v[0].width = v[0].height = 0;
    v[0].sar = NULL;
    v[0].codecs = NULL;
    build_ok(&s, &out);
    d = parse(&out);
    xp_is(d, "/d:MPD/@mediaPresentationDuration", "PT1M30S");
    xp_is(d, "/d:MPD/@minBufferTime", "PT2S");
    xp_count(d, "//d:AdaptationSet", 1);
    xp_is(d, "//d:AdaptationSet/@contentType", "video");
    xp_is(d, "//d:AdaptationSet/@maxWidth", "1280");
    xp_is(d, "//d:Representation[1]/@id", "v1");
    xp_is(d, "//d:Representation[2]/@id", "v2");
    xp_is(d, "//d:Representation[1]/@frameRate", "25");
    xp_is(d, "//d:Representation[2]/@frameRate", "2997/125");
    xp_count(d, "//d:Representation[1]/@width", 0);
    xp_count(d, "//d:Representation[1]/@height", 0);
    xp_count(d, "//d:Representation[1]/@sar", 0);
    xp_count(d, "//d:Representation[1]/@codecs", 0);
    xmlFreeDoc(d);
    mr_buf_free(&out);

    a[0].id = NULL;
    a[1].id = NULL;
    s = (struct mr_mpd_spec){ .duration_s = 0.5, .audio = a, .naudio = 2 };
    build_ok(&s, &out);
    d = parse(&out);
    xp_is(d, "/d:MPD/@mediaPresentationDuration", "PT0.5S");
    xp_count(d, "//d:AdaptationSet", 1);
    xp_is(d, "//d:AdaptationSet/@contentType", "audio");
    xp_is(d, "//d:Representation[1]/@id", "a1");
    xp_is(d, "//d:Representation[2]/@id", "a2");
    xmlFreeDoc(d);
    mr_buf_free(&out);
}

/* URLs and ids with XML's special characters come back byte for byte; URLs
 * are not decoded or re-encoded. */
static void test_escaping(void **state)
{
    static const char *const bak[] = { "https://b.example/x?a=1&b=<2>&c=%41" };
    struct mr_mpd_rep v = video[1];
    struct mr_mpd_spec s = { .duration_s = 1, .video = &v, .nvideo = 1 };
    struct mr_buf out;
    xmlDocPtr d;

    (void)state;
    v.id = "a&b<c>\"d'";
    v.base_url = "https://cdn.example.com/v.m4s?x=1&y=<2>&z=\"q\"&w='e'&p=%2F%20&u=\xe8\xa7\x86";
    v.backup_urls = bak;
    v.nbackup = 1;
    v.codecs = "avc1.640028,mp4a.40.2";
    build_ok(&s, &out);
    assert_null(strstr(out.p, "&y=<"));
    assert_null(strstr(out.p, "x=1&y"));
    assert_non_null(strstr(out.p, "x=1&amp;y=&lt;2&gt;"));
    assert_non_null(strstr(out.p, "%2F%20"));
    d = parse(&out);
    xp_is(d, "//d:Representation/@id", "a&b<c>\"d'");
    xp_is(d, "//d:Representation/d:BaseURL[1]", v.base_url);
    xp_is(d, "//d:Representation/d:BaseURL[2]", bak[0]);
    xp_is(d, "//d:Representation/@codecs", "avc1.640028,mp4a.40.2");
    xmlFreeDoc(d);
    mr_buf_free(&out);
}

static void test_duration(void **state)
{
    static const struct { double s; const char *want; } ok[] = {
        { 0, "PT0S" },           { -0.0, "PT0S" },          { 0.0004, "PT0S" },
        { 0.5, "PT0.5S" },       { 1.05, "PT1.05S" },       { 0.001, "PT0.001S" },
        { 59, "PT59S" },         { 60, "PT1M" },            { 90, "PT1M30S" },
        { 59.9996, "PT1M" },     { 3600, "PT1H" },          { 3723.456, "PT1H2M3.456S" },
        { 7200.1, "PT2H0.1S" },  { 3660, "PT1H1M" },        { 360000, "PT100H" },
        { 1234.5, "PT20M34.5S" }, { 1e9, "PT277777H46M40S" },
    };
    char b[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(mr_mpd_build_duration(ok[i].s, b, sizeof b), MR_OK);
        if (strcmp(b, ok[i].want))
            fail_msg("%g: got %s, want %s", ok[i].s, b, ok[i].want);
    }
    assert_int_equal(mr_mpd_build_duration(-1, b, sizeof b), MR_EINVAL);
    assert_int_equal(mr_mpd_build_duration(-0.001, b, sizeof b), MR_EINVAL);
    assert_int_equal(mr_mpd_build_duration(NAN, b, sizeof b), MR_EINVAL);
    assert_int_equal(mr_mpd_build_duration(INFINITY, b, sizeof b), MR_EINVAL);
    assert_int_equal(mr_mpd_build_duration(2e9, b, sizeof b), MR_EINVAL);
    /* Exactly big enough, and one byte short. */
    assert_int_equal(mr_mpd_build_duration(3723.456, b, 13), MR_OK);
    assert_string_equal(b, "PT1H2M3.456S");
    assert_int_equal(mr_mpd_build_duration(3723.456, b, 12), MR_ETOOBIG);
}

/* ---- refusals ------------------------------------------------------------------ */

enum field { F_NONE, F_BASE, F_MIME, F_INIT, F_INDEX, F_FPS, F_SAR, F_ID, F_LANG, F_CODECS,
             F_BACKUP, F_BW, F_W, F_H, F_ASR, F_NBACKUP, F_NULLBACKUP };

struct refusal {
    bool in_audio;           /* mutate audio[0] instead of video[0] */
    enum field f;
    const char *sval;
    long lval;
    const char *why;         /* a substring of the reason */
};

static const struct refusal refusals[] = {
    { false, F_BASE, NULL, 0, "without base_url" },
    { false, F_BASE, "", 0, "without base_url" },
    { true, F_BASE, NULL, 0, "without base_url" },
    { false, F_MIME, NULL, 0, "without mime_type" },
    { true, F_MIME, "", 0, "without mime_type" },
    { false, F_BASE, "ftp://cdn.example.com/v.m4s", 0, "not absolute http(s)" },
    { false, F_BASE, "file:///etc/passwd", 0, "not absolute http(s)" },
    { false, F_BASE, "javascript:alert(1)", 0, "not absolute http(s)" },
    { false, F_BASE, "data:video/mp4;base64,AAAA", 0, "not absolute http(s)" },
    { false, F_BASE, "video.mp4", 0, "not absolute http(s)" },
    { false, F_BASE, "//cdn.example.com/v.m4s", 0, "not absolute http(s)" },
    { false, F_BASE, "/v.m4s", 0, "not absolute http(s)" },
    { false, F_BASE, "http://", 0, "without a host" },
    { false, F_BASE, "https:///v.m4s", 0, "without a host" },
    { false, F_BASE, "https://?q", 0, "without a host" },
    { false, F_BASE, "https://cdn.example.com/a b.m4s", 0, "spaces" },
    { false, F_BASE, "https://cdn.example.com/a\tb.m4s", 0, "spaces" },
    { false, F_BASE, "https://cdn.example.com/a\nb.m4s", 0, "control bytes" },
    { false, F_BASE, "https://cdn.example.com/a\x7f.m4s", 0, "control bytes" },
    { false, F_BASE, "https://cdn.example.com/a\xff\xfe.m4s", 0, "bad UTF-8" },
    { false, F_BASE, "https://cdn.example.com/a\xc0\xaf.m4s", 0, "bad UTF-8" },   /* overlong */
    { false, F_BASE, "https://cdn.example.com/a\xed\xa0\x80.m4s", 0, "bad UTF-8" }, /* surrogate */
    { false, F_BASE, "https://cdn.example.com/a\xef\xbf\xbe.m4s", 0, "bad UTF-8" }, /* U+FFFE */
    { false, F_BASE, "https://cdn.example.com/a\xf4\x90\x80\x80", 0, "bad UTF-8" }, /* > 10FFFF */
    { false, F_BASE, "https://cdn.example.com/a\xe8\xa7", 0, "bad UTF-8" },     /* cut short */
    { false, F_CODECS, "avc1\xe8", 0, "codecs" },
    { true, F_BACKUP, "ftp://cdn.example.com/a.m4s", 0, "not absolute http(s)" },
    { true, F_BACKUP, "", 0, "empty URL" },
    { false, F_NBACKUP, NULL, MR_MPD_BUILD_MAX_BACKUP + 1, "too many backup URLs" },
    { false, F_NULLBACKUP, NULL, 1, "backup_urls is NULL" },
    { false, F_INIT, NULL, 0, "init_range" },
    { false, F_INIT, "", 0, "init_range" },
    { false, F_INIT, "0-", 0, "init_range" },
    { false, F_INIT, "-5", 0, "init_range" },
    { false, F_INIT, "5", 0, "init_range" },
    { false, F_INIT, "a-b", 0, "init_range" },
    { false, F_INIT, "5-4", 0, "init_range" },
    { false, F_INIT, "0-999x", 0, "init_range" },
    { false, F_INIT, "0--1", 0, "init_range" },
    { false, F_INIT, " 0-9", 0, "init_range" },
    { false, F_INIT, "0-9 ", 0, "init_range" },
    { false, F_INIT, "+1-9", 0, "init_range" },
    { false, F_INIT, "0-1234567890123456789", 0, "init_range" },
    { true, F_INDEX, "2000-1000", 0, "index_range" },
    { true, F_INDEX, NULL, 0, "index_range" },
    { true, F_INDEX, "1000,2000", 0, "index_range" },
    { false, F_BW, NULL, 0, "bandwidth" },
    { true, F_BW, NULL, -1, "bandwidth" },
    { false, F_W, NULL, -1, "negative width" },
    { false, F_H, NULL, -1, "negative width or height" },
    { true, F_ASR, NULL, -48000, "audio_sampling_rate" },
    { false, F_FPS, "abc", 0, "frame_rate" },
    { false, F_FPS, "0", 0, "frame_rate" },
    { false, F_FPS, "0.000", 0, "frame_rate" },
    { false, F_FPS, "25/0", 0, "frame_rate" },
    { false, F_FPS, "0/25", 0, "frame_rate" },
    { false, F_FPS, "25.", 0, "frame_rate" },
    { false, F_FPS, ".5", 0, "frame_rate" },
    { false, F_FPS, "1/2/3", 0, "frame_rate" },
    { false, F_FPS, "29.9700001", 0, "frame_rate" },
    { false, F_FPS, "-25", 0, "frame_rate" },
    { false, F_SAR, "1/1", 0, "sar" },
    { false, F_SAR, "1:", 0, "sar" },
    { false, F_SAR, ":1", 0, "sar" },
    { false, F_SAR, "1:1:1", 0, "sar" },
    { false, F_MIME, "audio/mp4", 0, "video mime_type" },
    { false, F_MIME, "video/", 0, "video mime_type" },
    { false, F_MIME, "video/mp4 x", 0, "video mime_type" },
    { true, F_MIME, "video/mp4", 0, "audio mime_type" },
    { false, F_ID, "a b", 0, "id" },
    { false, F_ID, "a\x01", 0, "id" },
    { false, F_ID, "30280", 0, "repeated representation id" },  /* = audio[0] */
    { false, F_ID, "64-7", 0, "repeated representation id" },   /* = video[1] */
    { true, F_ID, "80-7", 0, "repeated representation id" },    /* = video[0] */
    { false, F_CODECS, "avc1\x1f", 0, "codecs" },
    { true, F_LANG, "en us", 0, "lang" },
    { true, F_LANG, "1en", 0, "lang" },
    { true, F_LANG, "en_US", 0, "lang" },
    { true, F_LANG, "<en>", 0, "lang" },
};

static void set_field(struct mr_mpd_rep *r, const struct refusal *c)
{
    static const char *const many[MR_MPD_BUILD_MAX_BACKUP + 1] = { NULL };
    static const char *bad[1];

    switch (c->f) {
    case F_NONE: break;
    case F_BASE: r->base_url = c->sval; break;
    case F_MIME: r->mime_type = c->sval; break;
    case F_INIT: r->init_range = c->sval; break;
    case F_INDEX: r->index_range = c->sval; break;
    case F_FPS: r->frame_rate = c->sval; break;
    case F_SAR: r->sar = c->sval; break;
    case F_ID: r->id = c->sval; break;
    case F_LANG: r->lang = c->sval; break;
    case F_CODECS: r->codecs = c->sval; break;
    case F_BACKUP:
        bad[0] = c->sval;
        r->backup_urls = bad;
        r->nbackup = 1;
        break;
    case F_BW: r->bandwidth = c->lval; break;
    case F_W: r->width = c->lval; break;
    case F_H: r->height = c->lval; break;
    case F_ASR: r->audio_sampling_rate = c->lval; break;
    case F_NBACKUP:
        r->backup_urls = many;
        r->nbackup = (size_t)c->lval;
        break;
    case F_NULLBACKUP:
        r->backup_urls = NULL;
        r->nbackup = (size_t)c->lval;
        break;
    }
}

/* Refused with MR_EINVAL and the reason, and `out` left as it was. */
static void expect_refused(const struct mr_mpd_spec *s, const char *want, const char *label)
{
    struct mr_buf out;
    const char *why = NULL;
    int rc;

    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_buf_puts(&out, "kept"), MR_OK);
    rc = mr_mpd_build(s, &out, &why);
    if (rc != MR_EINVAL || !why || !strstr(why, want))
        fail_msg("%s: rc %d why [%s], want MR_EINVAL [%s]", label, rc, why ? why : "(null)",
                 want);
    assert_int_equal(out.len, 4);
    assert_string_equal(out.p, "kept");
    mr_buf_free(&out);
}

static void test_refusals(void **state)
{
    struct mr_mpd_rep v[2], a[4];
    struct mr_mpd_spec s;
    char label[128];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        const struct refusal *c = &refusals[i];
        memcpy(v, video, sizeof v);
        memcpy(a, audio, sizeof a);
        s = spec();
        s.video = v;
        s.audio = a;
        set_field(c->in_audio ? &a[0] : &v[0], c);
        snprintf(label, sizeof label, "case %zu (%s)", i, c->why);
        expect_refused(&s, c->why, label);
    }
}

static void test_spec_refusals(void **state)
{
    struct mr_mpd_spec s;
    struct mr_mpd_rep many[MR_MPD_BUILD_MAX_REPS + 1];
    struct mr_buf out;
    const char *why;

    (void)state;
    s = spec();
    s.nvideo = s.naudio = 0;
    expect_refused(&s, "no representations", "none");
    s = spec();
    s.video = NULL;
    expect_refused(&s, "NULL with a nonzero count", "video NULL");
    s = spec();
    s.audio = NULL;
    expect_refused(&s, "NULL with a nonzero count", "audio NULL");
    for (size_t i = 0; i < MR_MPD_BUILD_MAX_REPS + 1; i++) {
        many[i] = video[1];
        many[i].id = NULL;
    }
    s = spec();
    s.video = many;
    s.nvideo = MR_MPD_BUILD_MAX_REPS + 1;
    expect_refused(&s, "too many video representations", "65 video");
    s = spec();
    s.audio = many;
    s.naudio = MR_MPD_BUILD_MAX_REPS + 1;
    expect_refused(&s, "too many audio representations", "65 audio");
    s = spec();
    s.duration_s = 0;
    expect_refused(&s, "duration_s", "duration 0");
    s.duration_s = -1;
    expect_refused(&s, "duration_s", "duration -1");
    s.duration_s = NAN;
    expect_refused(&s, "duration_s", "duration NaN");
    s.duration_s = INFINITY;
    expect_refused(&s, "duration_s", "duration inf");
    s = spec();
    s.min_buffer_s = -0.5;
    expect_refused(&s, "min_buffer_s", "min buffer -0.5");
    s.min_buffer_s = NAN;
    expect_refused(&s, "min_buffer_s", "min buffer NaN");
    /* A generated id ("v1") meeting a given one. */
    s = spec();
    many[0] = video[0];
    many[0].id = NULL;
    many[1] = video[1];
    many[1].id = "v1";
    s.video = many;
    s.nvideo = 2;
    expect_refused(&s, "repeated representation id", "generated id");
    /* No spec, no buffer; why may be NULL. */
    mr_buf_init(&out, 1024);
    why = NULL;
    assert_int_equal(mr_mpd_build(NULL, &out, &why), MR_EINVAL);
    assert_non_null(why);
    s = spec();
    assert_int_equal(mr_mpd_build(&s, NULL, &why), MR_EINVAL);
    s.nvideo = s.naudio = 0;
    assert_int_equal(mr_mpd_build(&s, &out, NULL), MR_EINVAL);
    assert_int_equal(out.len, 0);
    mr_buf_free(&out);
}

/* Relative URLs only with allow_relative, and never another scheme. */
static void test_relative(void **state)
{
    static const char *const ok[] = { "video.mp4", "../a/b.m4s", "//cdn.example.com/v.m4s",
                                      "/v.m4s", "a/b:c.m4s", "v.m4s?x=1:2" };
    static const char *const bad[] = { "file:///etc/passwd", "ftp://x/y", "javascript:x",
                                       "File:/x", "a+b.c-d:x" };
    struct mr_mpd_rep v = video[1];
    struct mr_mpd_spec s = { .duration_s = 4, .video = &v, .nvideo = 1, .allow_relative = true };
    struct mr_buf out;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        v.base_url = ok[i];
        build_ok(&s, &out);
        mr_buf_free(&out);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v.base_url = bad[i];
        expect_refused(&s, "scheme other than http(s)", bad[i]);
    }
}

/* 64 of each kind is fine; out's cap is respected and out is left alone. */
static void test_caps(void **state)
{
    static const char *const backups[MR_MPD_BUILD_MAX_BACKUP] = {
        BAK1 "1.m4s", BAK1 "2.m4s", BAK1 "3.m4s", BAK1 "4.m4s", BAK1 "5.m4s", BAK1 "6.m4s",
        BAK1 "7.m4s", BAK1 "8.m4s", BAK1 "9.m4s", BAK1 "10.m4s", BAK1 "11.m4s", BAK1 "12.m4s",
        BAK1 "13.m4s", BAK1 "14.m4s", BAK1 "15.m4s", BAK1 "16.m4s",
    };
    struct mr_mpd_rep v[MR_MPD_BUILD_MAX_REPS], a[MR_MPD_BUILD_MAX_REPS];
    struct mr_mpd_spec s = { .duration_s = 10, .video = v, .nvideo = MR_MPD_BUILD_MAX_REPS,
                             .audio = a, .naudio = MR_MPD_BUILD_MAX_REPS };
    char langs[MR_MPD_BUILD_MAX_REPS][8];
    struct mr_buf out;
    const char *why;
    xmlDocPtr d;
    size_t i;

    (void)state;
    for (i = 0; i < MR_MPD_BUILD_MAX_REPS; i++) {
        v[i] = video[0];
        v[i].id = NULL;
        v[i].backup_urls = backups;
        v[i].nbackup = MR_MPD_BUILD_MAX_BACKUP;
        a[i] = audio[0];
        a[i].id = NULL;
        snprintf(langs[i], sizeof langs[i], "l%zu", i % 3);
        a[i].lang = langs[i];
    }
    build_ok(&s, &out);
    d = parse(&out);
    xp_count(d, "//d:AdaptationSet", 4);
    xp_count(d, "//d:Representation", 2 * MR_MPD_BUILD_MAX_REPS);
    xp_count(d, "//d:AdaptationSet[@lang='l1']/d:Representation", 21);
    xp_is(d, "//d:AdaptationSet[@lang='l1']/d:Representation[1]/@id", "a2");
    xp_is(d, "//d:AdaptationSet[4]/@lang", "l2");
    xp_count(d, "//d:Representation[@id='v64']/d:BaseURL", 1 + MR_MPD_BUILD_MAX_BACKUP);
    xp_is(d, "//d:Representation[@id='v64']/d:BaseURL[17]", BAK1 "16.m4s");
    xmlFreeDoc(d);

    /* The same into a buffer one byte too small. */
    {
        size_t need = out.len;
        mr_buf_free(&out);
        mr_buf_init(&out, need - 1);
        why = NULL;
        assert_int_equal(mr_mpd_build(&s, &out, &why), MR_ETOOBIG);
        assert_non_null(why);
        assert_int_equal(out.len, 0);
        mr_buf_free(&out);
        mr_buf_init(&out, need);
        assert_int_equal(mr_mpd_build(&s, &out, &why), MR_OK);
        assert_int_equal(out.len, need);
        mr_buf_free(&out);
        /* The writer appends as it goes: what was in the buffer before a
         * refused build is all that is left in it. */
        mr_buf_init(&out, need + 2);
        assert_int_equal(mr_buf_puts(&out, "abc"), MR_OK);
        assert_int_equal(mr_mpd_build(&s, &out, &why), MR_ETOOBIG);
        assert_string_equal(why, "MPD too big");
        assert_int_equal(out.len, 3);
        assert_string_equal(out.p, "abc");
        mr_buf_free(&out);
    }
}

/* ---- played by ffmpeg -------------------------------------------------------- */

static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    char dir[4096], file[4200];

    while (path && *path) {
        size_t n = strcspn(path, ":");
        if (n && n < sizeof dir) {
            memcpy(dir, path, n);
            dir[n] = '\0';
            snprintf(file, sizeof file, "%s/%s", dir, name);
            if (access(file, X_OK) == 0)
                return true;
        }
        path += n + (path[n] == ':');
    }
    return false;
}

/* Runs argv (PATH searched, no shell) with stdin from /dev/null and stdout,
 * stderr into files (NULL: /dev/null).  The exit status, or -1 when it could
 * not run, died of a signal or ran past timeout_s (then it is killed). */
static int run(char *const argv[], const char *out, const char *err, int timeout_s)
{
    posix_spawn_file_actions_t fa;
    struct timespec nap = { 0, 20 * 1000 * 1000 };
    int status, rc, waited;
    pid_t pid;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out ? out : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err ? err : "/dev/null",
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return -1;
    for (waited = 0; waited < timeout_s * 50; waited++) {
        rc = waitpid(pid, &status, WNOHANG);
        if (rc == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (rc < 0 && errno != EINTR)
            return -1;
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    print_message("%s: killed after %d s\n", argv[0], timeout_s);
    return -1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        p = malloc((size_t)n + 1);
        if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        }
        if (p) {
            p[n] = '\0';
            *len = (size_t)n;
        }
    }
    fclose(f);
    return p;
}

/* The init section (ftyp + moov, from byte 0) and the index (the sidx box)
 * of a fragmented MP4, from its top-level boxes, as "A-B" ranges. */
static void mp4_ranges(const char *path, char *init, char *index, size_t n)
{
    size_t len = 0, off = 0, moov_end = 0, sidx_at = 0, sidx_end = 0;
    unsigned char *p = (unsigned char *)slurp(path, &len);

    assert_non_null(p);
    assert_true(len > 16 && !memcmp(p + 4, "ftyp", 4));
    while (off + 8 <= len) {
        uint64_t size = (uint64_t)p[off] << 24 | (uint64_t)p[off + 1] << 16 |
                        (uint64_t)p[off + 2] << 8 | p[off + 3];
        const unsigned char *type = p + off + 4;
        if (size == 1) {
            assert_true(off + 16 <= len);
            size = 0;
            for (int i = 0; i < 8; i++)
                size = size << 8 | p[off + 8 + i];
        } else if (size == 0) {
            size = len - off;
        }
        assert_true(size >= 8 && size <= len - off);
        if (!memcmp(type, "moov", 4))
            moov_end = off + (size_t)size;
        if (!memcmp(type, "sidx", 4) && !sidx_end) {
            sidx_at = off;
            sidx_end = off + (size_t)size;
        }
        off += (size_t)size;
    }
    free(p);
    if (!moov_end || !sidx_end || sidx_at < moov_end)
        fail_msg("%s: no moov, or no sidx after it", path);
    snprintf(init, n, "0-%zu", moov_end - 1);
    snprintf(index, n, "%zu-%zu", sidx_at, sidx_end - 1);
}

static int write_file(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok;

    if (!f)
        return -1;
    ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* What ffprobe counted in each stream of the manifest (decoding it all). */
struct probed {
    int nvideo, naudio;
    long video_frames, audio_frames, sample_rate;
};

static void probe(const char *mpd, const char *txt, struct probed *r)
{
    char *argv[] = { "ffprobe", "-v", "error", "-count_frames", "-show_entries",
                     "stream=index,codec_type,nb_read_frames,sample_rate", "-of",
                     "compact=p=0", (char *)mpd, NULL };
    bool seen[16] = { false };
    char *body, *line, *nl;
    size_t len;

    memset(r, 0, sizeof *r);
    assert_int_equal(run(argv, txt, NULL, 120), 0);
    body = slurp(txt, &len);
    assert_non_null(body);
    /* "index=0|codec_type=video|nb_read_frames=100"; a stream may be listed
     * again under its program: count each index once. */
    for (line = body; *line; line = nl ? nl + 1 : line + strlen(line)) {
        const char *ix, *fr, *sr;
        long i, frames;

        if ((nl = strchr(line, '\n')))
            *nl = '\0';
        ix = strstr(line, "index=");
        fr = strstr(line, "nb_read_frames=");
        sr = strstr(line, "sample_rate=");
        i = ix ? strtol(ix + 6, NULL, 10) : -1;
        frames = fr ? strtol(fr + 15, NULL, 10) : 0;
        if (i < 0 || i >= 16 || seen[i])
            continue;
        seen[i] = true;
        if (strstr(line, "codec_type=video")) {
            r->nvideo++;
            r->video_frames = frames;
        } else if (strstr(line, "codec_type=audio")) {
            r->naudio++;
            r->audio_frames = frames;
            r->sample_rate = sr ? strtol(sr + 12, NULL, 10) : 0;
        }
    }
    free(body);
}

static void test_ffmpeg_plays(void **state)
{
    static const char *const backup[] = { "backup/video.mp4" };   /* absent: a spare */
    char dir[] = "/tmp/test_mpd_build.XXXXXX";
    char vpath[64], apath[64], mpd[64], mpd2[64], txt[64], err[64];
    char vinit[48], vindex[48], ainit[48], aindex[48];
    const char *codec = "avc1.64000d", *why = NULL;
    struct mr_mpd_rep v = { 0 }, a = { 0 };
    struct mr_mpd_spec s = { .duration_s = 4, .video = &v, .nvideo = 1, .audio = &a,
                             .naudio = 1, .allow_relative = true };
    struct mr_buf out;
    struct probed pr;
    char *vx264[] = { "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                      "testsrc2=size=320x180:rate=25", "-t", "4", "-c:v", "libx264", "-g", "25",
                      "-pix_fmt", "yuv420p", "-movflags",
                      "+frag_keyframe+empty_moov+default_base_moof+global_sidx", "-f", "mp4",
                      vpath, NULL };
    char *aaac[] = { "ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                     "sine=frequency=440:sample_rate=48000", "-t", "4", "-c:a", "aac", "-b:a",
                     "64k", "-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx",
                     "-f", "mp4", apath, NULL };
    char *play[] = { "ffmpeg", "-nostdin", "-v", "error", "-i", mpd, "-map", "0", "-f", "null",
                     "-", NULL };
    char *play2[] = { "ffmpeg", "-nostdin", "-v", "error", "-i", mpd2, "-map", "0", "-f",
                      "null", "-", NULL };
    int rc;

    (void)state;
    if (!on_path("ffmpeg") || !on_path("ffprobe")) {
        print_message("ffmpeg or ffprobe not on PATH: skipped\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    snprintf(vpath, sizeof vpath, "%s/video.mp4", dir);
    snprintf(apath, sizeof apath, "%s/audio.m4a", dir);
    snprintf(mpd, sizeof mpd, "%s/manifest.mpd", dir);
    snprintf(mpd2, sizeof mpd2, "%s/broken.mpd", dir);
    snprintf(txt, sizeof txt, "%s/probe.txt", dir);
    snprintf(err, sizeof err, "%s/stderr.txt", dir);

    /* Fragmented MP4s with a global sidx.  default_base_moof matters: without
     * it the sidx that global_sidx inserts shifts the fragments away from
     * their absolute data offsets and ffmpeg (5.1) reads garbage. */
    if (run(vx264, NULL, err, 120) != 0) {
        vx264[12] = "mpeg4";                /* an ffmpeg built without libx264 */
        codec = "mp4v.20.9";
        rc = run(vx264, NULL, err, 120);
        assert_int_equal(rc, 0);
    }
    assert_int_equal(run(aaac, NULL, err, 120), 0);
    mp4_ranges(vpath, vinit, vindex, sizeof vinit);
    mp4_ranges(apath, ainit, aindex, sizeof ainit);

    v = (struct mr_mpd_rep){ .id = "v1", .base_url = "video.mp4", .backup_urls = backup,
                             .nbackup = 1, .mime_type = "video/mp4", .codecs = codec,
                             .bandwidth = 300000, .width = 320, .height = 180,
                             .frame_rate = "25", .sar = "1:1", .init_range = vinit,
                             .index_range = vindex };
    a = (struct mr_mpd_rep){ .id = "a1", .base_url = "audio.m4a", .mime_type = "audio/mp4",
                             .codecs = "mp4a.40.2", .bandwidth = 64000,
                             .audio_sampling_rate = 48000, .init_range = ainit,
                             .index_range = aindex, .lang = "und" };
    mr_buf_init(&out, 1 << 20);
    rc = mr_mpd_build(&s, &out, &why);
    if (rc)
        fail_msg("mr_mpd_build: %s", why);
    assert_int_equal(write_file(mpd, out.p, out.len), 0);
    mr_buf_free(&out);

    rc = run(play, NULL, err, 120);
    if (rc != 0) {
        size_t n;
        char *e = slurp(err, &n);
        fail_msg("ffmpeg played %s with status %d: %s", mpd, rc, e ? e : "");
    }
    probe(mpd, txt, &pr);
    assert_int_equal(pr.nvideo, 1);
    assert_int_equal(pr.naudio, 1);
    assert_int_equal(pr.sample_rate, 48000);
    /* About 4 s each, counted from what was decoded (25 fps; AAC frames of
     * 1024 samples), not from the MPD's own duration. */
    print_message("ffprobe: %ld video frames, %ld audio frames at %ld Hz\n", pr.video_frames,
                  pr.audio_frames, pr.sample_rate);
    if (pr.video_frames < 90 || pr.video_frames > 105)
        fail_msg("video: %ld frames decoded, want about 100", pr.video_frames);
    if (pr.audio_frames * 1024.0 / 48000 < 3.6 || pr.audio_frames * 1024.0 / 48000 > 4.4)
        fail_msg("audio: %ld frames decoded, want about 4 s", pr.audio_frames);

    /* The control: the same manifest whose video BaseURL names a missing
     * file does not play, so the run above really read the BaseURLs. */
    v.base_url = "missing.mp4";
    v.nbackup = 0;
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_mpd_build(&s, &out, &why), MR_OK);
    assert_int_equal(write_file(mpd2, out.p, out.len), 0);
    mr_buf_free(&out);
    assert_int_not_equal(run(play2, NULL, NULL, 120), 0);

    unlink(vpath);
    unlink(apath);
    unlink(mpd);
    unlink(mpd2);
    unlink(txt);
    unlink(err);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_relative),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_ffmpeg_plays),
    };
    int rc;

    xmlInitParser();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
