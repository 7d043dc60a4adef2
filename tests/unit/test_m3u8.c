/* test_m3u8.c - the HLS rewriter: every playlist of tests/corpus/hls
 * (every URI through the relay, every other line kept, or a clear refusal
 * for the malformed ones), and cases written for one rule each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/limits.h"
#include "format/m3u8.h"
#include "core/token.h"
#include "net/url.h"

#ifndef MR_TOP_SRCDIR
#define MR_TOP_SRCDIR "."
#endif

#define BASE "https://cdn.example.com/vod/movie/index.m3u8?auth=a%2Fb"

static struct mr_token_key *key;

static int setup(void **state)
{
    (void)state;
    key = mr_token_key_new("0123456789abcdef0123456789abcdef", 32);
    return key ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    mr_token_key_free(key);
    return 0;
}

static const struct mr_m3u8_ctx ctx = {
    .key = NULL, .prefix = "", .scope = "m:movie", .expire_at = 4000000000,
};

static int rewrite(struct mr_arena *a, const char *in, size_t len, const char *base,
                   struct mr_buf *out, const char **why)
{
    struct mr_m3u8_ctx c = ctx;
    c.key = key;
    mr_buf_init(out, 64u << 20);
    return mr_m3u8_rewrite(a, &c, (struct mr_str){ in, len }, base, out, why);
}

/* The upstream URL a relay URL stands for ("/api/seg/TOKEN.ext"). */
static const char *decode(struct mr_arena *a, struct mr_str relay, char *kind)
{
    struct mr_str tok, data, scope, url, vars;
    const char *p;
    time_t exp;

    if (mr_str_starts_c(relay, "/api/seg/")) {
        tok = (struct mr_str){ relay.p + 9, relay.len - 9 };
    } else if (mr_str_starts_c(relay, "/api/m3u8/")) {
        tok = (struct mr_str){ relay.p + 10, relay.len - 10 };
    } else {
        return NULL;
    }
    /* the token, then an optional ".ext" */
    p = memchr(tok.p, '.', tok.len);
    if (p)
        tok.len = (size_t)(p - tok.p);
    if (mr_token_verify(key, a, tok, 1000, &data, &exp) != MR_OK)
        return NULL;
    if (mr_m3u8_token_data(data, kind, &scope, &url, &vars) || !mr_str_eq_c(scope, "m:movie"))
        return NULL;
    return mr_arena_strdup_str(a, url);
}

/* ---- the corpus ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) {
        p[n] = '\0';
        *len = (size_t)n;
    }
    return p;
}

static const char *const malformed[] = {
    "videojs__empty.m3u8", "videojs__manifestNoExtM3u.m3u8", NULL
};

static const char *const uri_tags[] = {
    "#EXT-X-MEDIA:", "#EXT-X-I-FRAME-STREAM-INF:", "#EXT-X-RENDITION-REPORT:", "#EXT-X-KEY:",
    "#EXT-X-SESSION-KEY:", "#EXT-X-MAP:", "#EXT-X-PART:", "#EXT-X-PRELOAD-HINT:",
    "#EXT-X-SESSION-DATA:", NULL
};

/* Next line of s (without its LF; CR kept); false at the end. */
static bool next_line(struct mr_str *s, struct mr_str *line)
{
    struct mr_str rest;
    if (!s->p)
        return false;
    rest = mr_str_cut(*s, '\n', line);
    *s = rest;
    return true;
}

/* Checks one rewritten line against its original: the number of URIs that
 * went through the relay is added to *relayed. */
static void check_line(struct mr_arena *a, const char *file, struct mr_str in,
                       struct mr_str out, int *relayed)
{
    struct mr_str t = mr_str_trim(in);
    char kind;

    if (t.len && t.p[t.len - 1] == '\r')
        t.len--;
    if (!t.len || (t.p[0] == '#' && !mr_str_starts_c(t, "#EXT"))) {
        if (!mr_str_eq(in, out))
            fail_msg("%s: a blank or comment line changed: [%.*s] -> [%.*s]", file,
                     (int)in.len, in.p, (int)out.len, out.p);
        return;
    }
    if (t.p[0] != '#') {
        struct mr_str o = out;
        const char *up;
        if (o.len && o.p[o.len - 1] == '\r')
            o.len--;
        up = decode(a, o, &kind);
        if (!up)
            fail_msg("%s: URI line [%.*s] not relayed: [%.*s]", file, (int)in.len, in.p,
                     (int)out.len, out.p);
        if (strncmp(up, "http://", 7) && strncmp(up, "https://", 8))
            fail_msg("%s: [%.*s] resolved to a non-http URL %s", file, (int)in.len, in.p, up);
        (*relayed)++;
        return;
    }
    for (int i = 0; uri_tags[i]; i++) {
        const char *u;
        if (!mr_str_starts_c(in, uri_tags[i]))
            continue;
        u = memmem(in.p, in.len, "URI=\"", 5);
        if (!u)
            break;
        {
            size_t head = (size_t)(u + 5 - in.p);
            const char *q = memchr(in.p + head, '"', in.len - head);
            struct mr_str value = { in.p + head, q ? (size_t)(q - in.p) - head : 0 };
            const char *oq;
            size_t tail = q ? in.len - (size_t)(q - in.p) : 0;
            assert_non_null(q);
            /* Everything before and after the value is the same. */
            if (out.len < head + tail || memcmp(out.p, in.p, head) ||
                memcmp(out.p + out.len - tail, q, tail))
                fail_msg("%s: tag changed outside its URI: [%.*s] -> [%.*s]", file,
                         (int)in.len, in.p, (int)out.len, out.p);
            oq = out.p + head;
            if (mr_str_starts_c(value, "skd:") || mr_str_starts_c(value, "data:")) {
                if (!mr_str_eq(in, out))
                    fail_msg("%s: skd:/data: URI changed", file);
                return;
            }
            if (!decode(a, (struct mr_str){ oq, out.len - head - tail }, &kind))
                fail_msg("%s: URI of [%.*s] not relayed: [%.*s]", file, (int)in.len, in.p,
                         (int)out.len, out.p);
            (*relayed)++;
            return;
        }
    }
    if (!mr_str_eq(in, out))
        fail_msg("%s: a tag line changed: [%.*s] -> [%.*s]", file, (int)in.len, in.p,
                 (int)out.len, out.p);
}

static void test_corpus(void **state)
{
    char dirpath[512];
    const char *env = getenv("MR_CORPUS");
    struct dirent *e;
    DIR *d;
    int files = 0;

    (void)state;
    snprintf(dirpath, sizeof(dirpath), "%s/hls", env ? env : MR_TOP_SRCDIR "/tests/corpus");
    d = opendir(dirpath);
    if (!d) {
        fail_msg("no corpus at %s", dirpath);
    }
    while ((e = readdir(d))) {
        char path[1024];
        struct mr_arena a;
        struct mr_buf out;
        struct mr_str in, ol, il;
        const char *why;
        bool bad = false;
        size_t len = 0;
        char *body;
        int rc, relayed = 0, uris = 0;

        if (!strstr(e->d_name, ".m3u8"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dirpath, e->d_name);
        body = read_file(path, &len);
        assert_non_null(body);
        for (int i = 0; malformed[i]; i++)
            bad |= !strcmp(e->d_name, malformed[i]);
        mr_arena_init(&a, 0);
        rc = rewrite(&a, body, len, BASE, &out, &why);
        if (bad) {
            if (rc != MR_EUPSTREAM || !why)
                fail_msg("%s: malformed, yet not refused (rc %d)", e->d_name, rc);
        } else {
            if (rc)
                fail_msg("%s: refused: %s", e->d_name, why ? why : "?");
            in = (struct mr_str){ body, len };
            if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3)) {
                in.p += 3;
                in.len -= 3;
            }
            ol = mr_buf_str(&out);
            /* Line for line, the same line endings. */
            while (next_line(&in, &il)) {
                struct mr_str t = mr_str_trim(il);
                if (!next_line(&ol, &(struct mr_str){ 0 }))
                    fail_msg("%s: output has fewer lines", e->d_name);
                (void)t;
            }
            assert_null(ol.p);
            /* Again, now line by line. */
            in = (struct mr_str){ body, len };
            if (len >= 3 && !memcmp(body, "\xEF\xBB\xBF", 3)) {
                in.p += 3;
                in.len -= 3;
            }
            ol = mr_buf_str(&out);
            while (next_line(&in, &il)) {
                struct mr_str o, t = mr_str_trim(il);
                next_line(&ol, &o);
                if (t.len && t.p[0] != '#' && !(t.len == 1 && t.p[0] == '\r'))
                    uris++;
                check_line(&a, e->d_name, il, o, &relayed);
            }
            if (relayed < uris)
                fail_msg("%s: %d URI lines, %d relayed", e->d_name, uris, relayed);
        }
        mr_buf_free(&out);
        mr_arena_free(&a);
        free(body);
        files++;
    }
    closedir(d);
    assert_true(files >= 60);
}

/* ---- one rule each ---------------------------------------------------------- */

struct tcase {
    const char *in;
    const char *base;
    const char *want;   /* the upstream URL of the first relayed URI, or NULL */
    char kind;
};

static void test_resolution(void **state)
{
    static const struct tcase cases[] = {
        { "#EXTM3U\n#EXTINF:4,\nseg-1.ts\n", BASE, "https://cdn.example.com/vod/movie/seg-1.ts", 's' },
        { "#EXTM3U\n#EXTINF:4,\n./seg-1.ts\n", BASE, "https://cdn.example.com/vod/movie/seg-1.ts", 's' },
        { "#EXTM3U\n#EXTINF:4,\n../../../../up.ts\n", BASE, "https://cdn.example.com/up.ts", 's' },
        { "#EXTM3U\n#EXTINF:4,\n/root.ts?x=%2F\n", BASE, "https://cdn.example.com/root.ts?x=%2F", 's' },
        { "#EXTM3U\n#EXTINF:4,\n//other.example/p.ts\n", BASE, "https://other.example/p.ts", 's' },
        { "#EXTM3U\n#EXTINF:4,\nhttp://abs.example/a%2Fb.ts?q=1&r=%3D#frag\n", BASE,
          "http://abs.example/a%2Fb.ts?q=1&r=%3D", 's' },
        { "#EXTM3U\n#EXTINF:4,\n \tseg 1.ts\t \n", BASE, "https://cdn.example.com/vod/movie/seg%201.ts", 's' },
        { "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/1.m3u8?s=1\n", BASE,
          "https://cdn.example.com/vod/movie/v/1.m3u8?s=1", 'p' },
        { "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\",URI=\"a/en.m3u8\"\n", BASE,
          "https://cdn.example.com/vod/movie/a/en.m3u8", 'p' },
        { "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"../k.bin?x\",IV=0x1\n", BASE,
          "https://cdn.example.com/vod/k.bin?x", 's' },
        { "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"10@0\"\n", BASE,
          "https://cdn.example.com/vod/movie/init.mp4", 's' },
        { "#EXTM3U\n#EXT-X-DEFINE:NAME=\"h\",VALUE=\"v.example\"\n#EXTINF:1,\nhttps://{$h}/x.ts\n",
          BASE, "https://v.example/x.ts", 's' },
        { "#EXTM3U\n#EXT-X-DEFINE:QUERYPARAM=\"auth\"\n#EXTINF:1,\ns.ts?auth={$auth}\n", BASE,
          "https://cdn.example.com/vod/movie/s.ts?auth=a%2Fb", 's' },
        { "#EXTM3U\n#EXT-X-DEFINE:NAME=\"a\",VALUE=\"1\"\n#EXT-X-DEFINE:NAME=\"b\",VALUE=\"{$a}2\"\n"
          "#EXTINF:1,\n{$b}.ts\n", BASE, "https://cdn.example.com/vod/movie/12.ts", 's' },
        { "\xEF\xBB\xBF#EXTM3U\r\n#EXTINF:1,\r\na.ts\r\n", BASE,
          "https://cdn.example.com/vod/movie/a.ts", 's' },
        { "# a comment first\n#EXTM3U\n#EXTINF:1,\na.ts", BASE,
          "https://cdn.example.com/vod/movie/a.ts", 's' },
        { "#EXTM3U\n#EXTINF:1,\na.ts\n", "http://Host.Example:8080", "http://host.example:8080/a.ts", 's' },
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_arena a;
        struct mr_buf out;
        const char *why, *up, *p;
        char kind = 0;
        int rc;

        mr_arena_init(&a, 0);
        rc = rewrite(&a, cases[i].in, strlen(cases[i].in), cases[i].base, &out, &why);
        if (rc)
            fail_msg("case %zu refused: %s", i, why);
        p = strstr(out.p, "/api/");
        assert_non_null(p);
        up = decode(&a, (struct mr_str){ p, strcspn(p, "\"\r\n") }, &kind);
        if (!up || strcmp(up, cases[i].want) || kind != cases[i].kind)
            fail_msg("case %zu: got %s (%c), want %s (%c)\n%s", i, up ? up : "(none)",
                     kind ? kind : '-', cases[i].want, cases[i].kind, out.p);
        mr_buf_free(&out);
        mr_arena_free(&a);
    }
}

static void test_bytes_kept(void **state)
{
    static const char in[] =
        "#EXTM3U\r\n"
        "#EXT-X-VERSION:7\r\n"
        "## comment with http://x/y.ts\r\n"
        "#EXT-X-DATERANGE:ID=\"ad\",X-ASSET-URI=\"http://ads/ad.m3u8\",START-DATE=\"2020\"\r\n"
        "#EXT-X-UNKNOWN-TAG:URI=\"left.ts\"\r\n"
        "\r\n"
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key-1\",KEYFORMAT=\"com.apple\"\r\n"
        "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,URI=\"data:text/plain;base64,AAAA\"\r\n"
        "#EXTINF:4.0,title, with comma\r\n"
        "seg.ts\r\n"
        "#EXT-X-ENDLIST";
    struct mr_arena a;
    struct mr_buf out;
    const char *why, *seg;
    int rc;

    (void)state;
    mr_arena_init(&a, 0);
    rc = rewrite(&a, in, strlen(in), BASE, &out, &why);
    assert_int_equal(rc, MR_OK);
    seg = strstr(in, "seg.ts");
    /* Everything up to the URI line is byte for byte the same. */
    assert_memory_equal(out.p, in, (size_t)(seg - in));
    assert_true(mr_str_starts_c(mr_str_c(out.p + (seg - in)), "/api/seg/"));
    /* ...with the extension kept, the CRLF kept, no newline added at the end. */
    assert_non_null(strstr(out.p, ".ts\r\n#EXT-X-ENDLIST"));
    assert_int_equal(out.p[out.len - 1], 'T');
    mr_buf_free(&out);
    mr_arena_free(&a);
}

static void test_prefix_and_determinism(void **state)
{
    static const char in[] = "#EXTM3U\n#EXTINF:1,\na.ts\n";
    struct mr_m3u8_ctx c = ctx;
    struct mr_arena a;
    struct mr_buf o1, o2;
    const char *why;

    (void)state;
    c.key = key;
    c.prefix = "https://relay.example/r";
    mr_arena_init(&a, 0);
    mr_buf_init(&o1, 1 << 20);
    mr_buf_init(&o2, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(in), BASE, &o1, &why), MR_OK);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(in), BASE, &o2, &why), MR_OK);
    assert_string_equal(o1.p, o2.p);
    assert_non_null(strstr(o1.p, "\nhttps://relay.example/r/api/seg/"));
    mr_buf_free(&o1);
    mr_buf_free(&o2);
    mr_arena_free(&a);
}

static void test_refusals(void **state)
{
    static const struct {
        const char *in;
        int rc;
    } cases[] = {
        { "", MR_EUPSTREAM },
        { "<html>not a playlist</html>", MR_EUPSTREAM },
        { "#EXTINF:1,\na.ts\n", MR_EUPSTREAM },
        { "#EXTM3U\n#EXTINF:1,\na\x01.ts\n", MR_EUPSTREAM },
        { "#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\x1b.bin\"\n", MR_EUPSTREAM },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_arena a;
        struct mr_buf out;
        const char *why = NULL;
        mr_arena_init(&a, 0);
        assert_int_equal(rewrite(&a, cases[i].in, strlen(cases[i].in), BASE, &out, &why),
                         cases[i].rc);
        assert_non_null(why);
        mr_buf_free(&out);
        mr_arena_free(&a);
    }
}

static void test_caps(void **state)
{
    struct mr_m3u8_ctx c = ctx;
    struct mr_arena a;
    struct mr_buf out;
    const char *why;
    size_t n = MR_M3U8_MAX_LINE + 100;
    char *big = malloc(n + 16);

    (void)state;
    if (!big) {     /* not assert_non_null: GCC would still see big + 9 on NULL */
        fail_msg("out of memory");
        return;
    }
    c.key = key;
    mr_arena_init(&a, 0);
    memcpy(big, "#EXTM3U\n#", 9);
    memset(big + 9, 'x', n);
    big[9 + n] = '\0';
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(big), BASE, &out, &why), MR_ETOOBIG);
    mr_buf_reset(&out);
    c.max_bytes = 100;
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(big), BASE, &out, &why), MR_ETOOBIG);
    /* An output cap is respected too. */
    c.max_bytes = 0;
    mr_buf_free(&out);
    mr_buf_init(&out, 64);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c("#EXTM3U\n#EXTINF:1,\na.ts\n"), BASE,
                                     &out, &why), MR_ETOOBIG);
    mr_buf_free(&out);
    mr_arena_free(&a);
    free(big);
}

/* The n-th line of s (from 0, without its LF), arena-allocated. */
static char *nth_line(struct mr_arena *a, const char *s, int n)
{
    struct mr_str rest = mr_str_c(s), line = MR_STR_NULL;
    for (int i = 0; i <= n; i++)
        assert_true(next_line(&rest, &line));
    return mr_arena_strdup_str(a, line);
}

/* A plain name takes the rewriter's fast path (its token made from a
 * prefix prepared once per playlist); the same URL written absolute takes
 * the general one.  Both give the same relay URL, for segments and
 * playlists, with scopes of every length modulo 3 (the prefix's base64
 * ends at each place of a group), bases with and without a path. */
static void test_fast_path_same(void **state)
{
    static const struct {
        const char *base, *dir;
    } bases[] = {
        { BASE, "https://cdn.example.com/vod/movie/" },
        { "https://cdn.example.com", "https://cdn.example.com/" },
        { "http://h.example:81/a/b/x.m3u8#f", "http://h.example:81/a/b/" },
    };
    static const char *const names[] = {
        "seg-1.ts", "segment_00001.ts?sig=Ab3-x9&exp=1795000000", "v/720p.m3u8", "x",
        "seg.TS#frag", "a.b.c", "k.toolongext",
    };
    static const char *const scopes[] = { "m:movie", "m:movie1", "m:movie12", "" };
    struct mr_arena a;
    (void)state;

    mr_arena_init(&a, 0);
    for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++)
        for (size_t sc = 0; sc < sizeof(scopes) / sizeof(scopes[0]); sc++)
            for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                struct mr_m3u8_ctx c = ctx;
                struct mr_buf out;
                const char *why;
                char *in = mr_arena_printf(&a,
                    "#EXTM3U\n#EXTINF:1,\n%s\n#EXTINF:1,\n%s%s\n"
                    "#EXT-X-STREAM-INF:BANDWIDTH=1\n%s\n#EXT-X-STREAM-INF:BANDWIDTH=1\n%s%s\n",
                    names[i], bases[b].dir, names[i], names[i], bases[b].dir, names[i]);
                c.key = key;
                c.scope = scopes[sc];
                c.prefix = sc % 2 ? "https://relay.example/r" : "";
                mr_buf_init(&out, 1 << 20);
                assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(in), bases[b].base, &out, &why),
                                 MR_OK);
                assert_string_equal(nth_line(&a, out.p, 2), nth_line(&a, out.p, 4));
                assert_string_equal(nth_line(&a, out.p, 6), nth_line(&a, out.p, 8));
                assert_string_not_equal(nth_line(&a, out.p, 2), nth_line(&a, out.p, 6));
                if (sc == 0 && c.prefix[0] == '\0') {
                    char kind;
                    const char *url = decode(&a, mr_str_c(nth_line(&a, out.p, 2)), &kind);
                    char *want = mr_arena_printf(&a, "%s%s", bases[b].dir, names[i]);
                    want[strcspn(want, "#")] = '\0';
                    assert_non_null(url);
                    assert_string_equal(url, want);
                    assert_int_equal(kind, 's');
                }
                mr_buf_free(&out);
            }
    mr_arena_free(&a);
}

/* The cap on a token's data is where it was: a URL that just fits is
 * relayed, one byte more is MR_ETOOBIG, by either path. */
static void test_token_cap(void **state)
{
    static const char dir[] = "https://cdn.example.com/vod/movie/";
    size_t fit = MR_TOKEN_MAX_DATA - 2 - strlen(ctx.scope) - strlen(dir);
    char *name = malloc(fit + 2);
    struct mr_arena a;
    (void)state;

    assert_non_null(name);
    mr_arena_init(&a, 0);
    for (size_t n = fit - 1; n <= fit + 1; n++)
        for (int absolute = 0; absolute <= 1; absolute++) {
            struct mr_buf out;
            const char *why;
            char *in;
            memset(name, 'n', n);
            name[n] = '\0';
            in = mr_arena_printf(&a, "#EXTM3U\n#EXTINF:1,\n%s%s\n", absolute ? dir : "", name);
            assert_int_equal(rewrite(&a, in, strlen(in), BASE, &out, &why),
                             n <= fit ? MR_OK : MR_ETOOBIG);
            mr_buf_free(&out);
        }
    mr_arena_free(&a);
    free(name);
}

/* The data of the first relay URL in out (a token made with `key`). */
static struct mr_str first_token_data(struct mr_arena *a, const char *out)
{
    const char *p = strstr(out, "/api/m3u8/");
    struct mr_str tok, data = MR_STR_NULL;
    const char *dot;

    assert_non_null(p);
    tok.p = p + 10;
    dot = strchr(tok.p, '.');
    assert_non_null(dot);
    tok.len = (size_t)(dot - tok.p);
    assert_int_equal(mr_token_verify(key, a, tok, 1000, &data, NULL), MR_OK);
    return data;
}

/* A master's variables travel in its variant tokens, so a media playlist's
 * EXT-X-DEFINE:IMPORT finds them, as a player would. */
static void test_import_carried(void **state)
{
    static const char master[] =
        "#EXTM3U\n#EXT-X-DEFINE:NAME=\"host\",VALUE=\"cdn2.example\"\n"
        "#EXT-X-DEFINE:QUERYPARAM=\"auth\"\n"
        "#EXT-X-DEFINE:NAME=\"odd\",VALUE=\"a&b=c%d e\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1\nv1.m3u8\n";
    static const char media[] =
        "#EXTM3U\n#EXT-X-DEFINE:IMPORT=\"host\"\n#EXT-X-DEFINE:IMPORT=\"auth\"\n"
        "#EXT-X-DEFINE:IMPORT=\"odd\"\n#EXT-X-DEFINE:IMPORT=\"missing\"\n"
        "#EXTINF:1,\nhttps://{$host}/s.ts?auth={$auth}&o={$odd}&m={$missing}\n";
    struct mr_str data, scope, url, vars;
    struct mr_headers im;
    struct mr_m3u8_ctx c = ctx;
    struct mr_arena a;
    struct mr_buf out, out2;
    const char *why, *p, *up;
    char kind;

    (void)state;
    mr_arena_init(&a, 0);
    assert_int_equal(rewrite(&a, master, strlen(master), BASE, &out, &why), MR_OK);
    data = first_token_data(&a, out.p);
    assert_int_equal(mr_m3u8_token_data(data, &kind, &scope, &url, &vars), MR_OK);
    assert_true(mr_str_eq_c(url, "https://cdn.example.com/vod/movie/v1.m3u8"));
    assert_true(mr_str_eq_c(vars, "host=cdn2.example&auth=a%252Fb&odd=a%26b%3Dc%25d%20e"));
    assert_int_equal(mr_m3u8_parse_vars(&a, vars, &im), MR_OK);
    assert_int_equal(im.n, 3);
    assert_string_equal(im.v[1].name, "auth");
    assert_string_equal(im.v[1].value, "a%2Fb");
    assert_string_equal(im.v[2].value, "a&b=c%d e");
    /* The nested playlist, rewritten with them. */
    c.key = key;
    c.imports = &im;
    mr_buf_init(&out2, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(media), "https://cdn.example.com/v1.m3u8",
                                     &out2, &why), MR_OK);
    p = strstr(out2.p, "/api/seg/");
    assert_non_null(p);
    up = decode(&a, (struct mr_str){ p, strcspn(p, "\r\n") }, &kind);
    assert_non_null(up);
    assert_string_equal(up, "https://cdn2.example/s.ts?auth=a%2Fb&o=a&b=c%d%20e&m={$missing}");
    /* A playlist without variables: nothing after the URL; a segment token
     * with something after its URL is not one of ours. */
    assert_int_equal(mr_m3u8_token_data(mr_str_c("pm:x\nhttp://a/b.m3u8"), &kind, &scope, &url,
                                        &vars), MR_OK);
    assert_int_equal(vars.len, 0);
    assert_int_equal(mr_m3u8_token_data(mr_str_c("sm:x\nhttp://a/b.ts\nk=v"), &kind, &scope,
                                        &url, &vars), MR_EFORBIDDEN);
    assert_int_equal(mr_m3u8_parse_vars(&a, mr_str_c("novalue"), &im), MR_EINVAL);
    mr_buf_free(&out);
    mr_buf_free(&out2);
    mr_arena_free(&a);
}

/* Regression (a heap overflow): a master with EXT-X-DEFINE variables and a
 * variant whose absolute URL fills a token's data.  The variables were
 * written after it with a room of MR_TOKEN_MAX_DATA - dlen, which wrapped
 * around once dlen was past the cap.  The file is that playlist; around
 * the cap, by either path, a variant is relayed with its variables whole
 * or without them, or the playlist is refused as too large. */
static void test_define_long_variant(void **state)
{
    static const char dir[] = "https://cdn.example.com/vod/movie/";
    size_t len = 0, fit = MR_TOKEN_MAX_DATA - 2 - strlen(ctx.scope);
    char *body = read_file(MR_TOP_SRCDIR "/tests/data/m3u8/regress-define-long-variant.m3u8",
                           &len);
    char *url = malloc(fit + 8);
    struct mr_arena a;
    struct mr_buf out;
    const char *why;

    (void)state;
    assert_non_null(body);
    assert_non_null(url);
    mr_arena_init(&a, 0);
    assert_int_equal(rewrite(&a, body, len, BASE, &out, &why), MR_ETOOBIG);
    assert_non_null(why);
    mr_buf_free(&out);
    for (size_t n = fit - 40; n <= fit + 3; n++)
        for (int absolute = 0; absolute <= 1; absolute++) {
            struct mr_str data, scope, u, vars;
            char kind, *in;
            int rc;
            if (absolute) {
                memcpy(url, dir, sizeof(dir) - 1);
                memset(url + sizeof(dir) - 1, 'v', n - (sizeof(dir) - 1));
            } else {
                memset(url, 'v', n - (sizeof(dir) - 1));
            }
            url[absolute ? n : n - (sizeof(dir) - 1)] = '\0';
            in = mr_arena_printf(&a, "#EXTM3U\n#EXT-X-DEFINE:NAME=\"a\",VALUE=\"0123456789\"\n"
                                 "#EXT-X-DEFINE:NAME=\"b\",VALUE=\"x y\"\n"
                                 "#EXT-X-STREAM-INF:BANDWIDTH=1\n%s\n", url);
            rc = rewrite(&a, in, strlen(in), BASE, &out, &why);
            if (n > fit) {
                assert_int_equal(rc, MR_ETOOBIG);
            } else {
                assert_int_equal(rc, MR_OK);
                data = first_token_data(&a, out.p);
                assert_int_equal(mr_m3u8_token_data(data, &kind, &scope, &u, &vars), MR_OK);
                assert_int_equal(u.len, n);
                assert_true(data.len <= MR_TOKEN_MAX_DATA);
                assert_true(!vars.len || mr_str_eq_c(vars, "a=0123456789&b=x%20y"));
                /* the variables are dropped only when they do not fit */
                assert_true(vars.len || n + 23 > fit);
            }
            mr_buf_free(&out);
        }
    mr_arena_free(&a);
    free(url);
    free(body);
}

/* Position hints (mr_m3u8_ctx.locate): a master's playlists are numbered,
 * a media playlist's segments carry their media sequence number; URIs kept
 * as written are counted but get nothing; off, nothing is added. */
static void test_locate_hints(void **state)
{
    static const char master[] =
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/en.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2\nftp://elsewhere/x.m3u8\n"
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=3,URI=\"iframes.m3u8\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=4\nhigh/index.m3u8\n";
    static const char media[] =
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:41\n"
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\"\n"
        "#EXT-X-MAP:URI=\"init.mp4\"\n"
        "#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n"
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://key\"\n"
        "#EXTINF:1,\nc.ts\n#EXT-X-RENDITION-REPORT:URI=\"../low/index.m3u8\"\n";
    struct mr_m3u8_ctx c = ctx;
    struct mr_arena a;
    struct mr_buf out;
    const char *why;

    (void)state;
    mr_arena_init(&a, 0);
    c.key = key;
    c.locate = true;
    c.variant = -1;
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(master), BASE, &out, &why), MR_OK);
    /* en.m3u8 0, low 1, ftp (kept) 2, iframes 3, high 4. */
    assert_non_null(strstr(out.p, ".m3u8?v=0\"\n"));
    assert_non_null(strstr(out.p, ".m3u8?v=1\n"));
    assert_non_null(strstr(out.p, "\nftp://elsewhere/x.m3u8\n"));
    assert_null(strstr(out.p, "?v=2"));
    assert_non_null(strstr(out.p, ".m3u8?v=3\"\n"));
    assert_non_null(strstr(out.p, ".m3u8?v=4\n"));
    mr_buf_free(&out);

    c.variant = 4;
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(media), BASE, &out, &why), MR_OK);
    assert_non_null(strstr(out.p, ".bin?v=4\"\n"));
    assert_non_null(strstr(out.p, ".mp4?v=4\"\n"));
    assert_non_null(strstr(out.p, ".ts?n=41&v=4\n"));
    assert_non_null(strstr(out.p, ".ts?n=42&v=4\n"));
    assert_non_null(strstr(out.p, ".ts?n=43&v=4\n"));
    assert_non_null(strstr(out.p, "URI=\"skd://key\"\n"));
    /* A rendition report points elsewhere: no hint. */
    assert_non_null(strstr(out.p, ".m3u8\"\n"));
    mr_buf_free(&out);

    c.locate = false;
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(media), BASE, &out, &why), MR_OK);
    assert_null(strchr(out.p, '?'));
    mr_buf_free(&out);
    mr_arena_free(&a);
}

/* A hint as a client sends it back: plain decimal within what a playlist
 * can hold, else -1 (as absent), so made-up values come out as few. */
static void test_hint_values(void **state)
{
    static const char *const refused[] = {
        "", "-1", "-0", "+5", " 5", "5 ", "0x10", "1e3", "5.0", "%35", "5\n", "٣",
        "9223372036854775807", "99999999999999999999999999",
    };
    char big[32];

    (void)state;
    assert_int_equal(mr_m3u8_hint(NULL, 63), -1);
    assert_int_equal(mr_m3u8_hint("0", 63), 0);
    assert_int_equal(mr_m3u8_hint("007", 63), 7);
    assert_int_equal(mr_m3u8_hint("63", 63), 63);
    assert_int_equal(mr_m3u8_hint("64", 63), -1);
    assert_int_equal(mr_m3u8_hint("100000", 63), -1);
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        long long got = mr_m3u8_hint(refused[i], MR_M3U8_MAX_MSN);
        if (got != -1)
            print_message("\"%s\" gave %lld\n", refused[i], got);
        assert_int_equal(got, -1);
    }
    /* The media sequence bound: the largest EXT-X-MEDIA-SEQUENCE read, plus
     * one per URI line of a playlist at the size cap. */
    snprintf(big, sizeof(big), "%lld", (long long)MR_M3U8_MAX_MSN);
    assert_int_equal(mr_m3u8_hint(big, MR_M3U8_MAX_MSN), MR_M3U8_MAX_MSN);
    snprintf(big, sizeof(big), "%lld", (long long)MR_M3U8_MAX_MSN + 1);
    assert_int_equal(mr_m3u8_hint(big, MR_M3U8_MAX_MSN), -1);
    assert_int_equal(mr_m3u8_hint("100000000000000", MR_M3U8_MAX_MSN), 100000000000000LL);
}

/* The hints the rewriter writes are the ones a request may send back: a
 * media sequence number as long as it can be read (a longer one is read
 * to its 15th digit, by the rewriter and mr_m3u8_find alike), and no "v"
 * for a master's playlists past MR_M3U8_MAX_VARIANTS. */
static void test_hint_bounds(void **state)
{
    struct mr_m3u8_ctx c = ctx;
    struct mr_arena a;
    struct mr_buf master, out;
    const char *why;
    char want[64];
    char *url;
    bool nested;

    (void)state;
    mr_arena_init(&a, 0);
    c.key = key;
    c.locate = true;
    c.variant = -1;
    mr_buf_init(&master, 1 << 20);
    assert_int_equal(mr_buf_append_str(&master, mr_str_c("#EXTM3U\n")), MR_OK);
    for (int i = 0; i < MR_M3U8_MAX_VARIANTS + 6; i++) {
        char line[96];
        int n = snprintf(line, sizeof(line), "#EXT-X-STREAM-INF:BANDWIDTH=%d\nv%d.m3u8\n",
                         i + 1, i);
        assert_int_equal(mr_buf_append(&master, line, (size_t)n), MR_OK);
    }
    mr_buf_init(&out, 1 << 22);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_buf_str(&master), BASE, &out, &why), MR_OK);
    snprintf(want, sizeof(want), ".m3u8?v=%d\n", MR_M3U8_MAX_VARIANTS - 1);
    assert_non_null(strstr(out.p, want));
    snprintf(want, sizeof(want), "?v=%d", MR_M3U8_MAX_VARIANTS);
    assert_null(strstr(out.p, want));
    mr_buf_free(&out);
    mr_buf_free(&master);

    c.variant = 2;
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c("#EXTM3U\n"
                                     "#EXT-X-MEDIA-SEQUENCE:999999999999999123\n"
                                     "#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n"), BASE, &out, &why),
                     MR_OK);
    assert_non_null(strstr(out.p, ".ts?n=999999999999999&v=2\n"));
    assert_non_null(strstr(out.p, ".ts?n=1000000000000000&v=2\n"));
    assert_int_equal(mr_m3u8_hint("1000000000000000", MR_M3U8_MAX_MSN), 1000000000000000LL);
    assert_int_equal(mr_m3u8_find(&a, mr_str_c("#EXTM3U\n"
                                               "#EXT-X-MEDIA-SEQUENCE:999999999999999123\n"
                                               "#EXTINF:1,\na.ts\n#EXTINF:1,\nb.ts\n"),
                                  BASE, &(struct mr_m3u8_want){ "/x/y.ts", -1,
                                                                1000000000000000LL },
                                  &url, &nested), MR_OK);
    assert_non_null(strstr(url, "/b.ts"));
    mr_buf_free(&out);
    mr_arena_free(&a);
}

/* mr_m3u8_find: the same path first (query and host may differ), else the
 * position; a master's answer is a playlist to look in next. */
/* The engine reports what the relay's playlist cache needs: a live media
 * playlist (a target duration and no EXT-X-ENDLIST) and its target
 * duration in ms. */
static void test_refresh(void **state)
{
    static const struct {
        const char *pl;
        bool live;
        long period_ms;
    } cases[] = {
        { "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n", true, 6000 },
        { "#EXTM3U\r\n#EXT-X-TARGETDURATION:10\r\n#EXTINF:6,\r\na.ts", true, 10000 },
        { "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n#EXT-X-ENDLIST\n", false, 6000 },
        { "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow.m3u8\n", false, 0 },
        { "#EXTM3U\n#EXT-X-TARGETDURATION:x\na.ts\n", true, 0 },
        { "#EXTM3U\n#EXT-X-TARGETDURATION:99999999999\na.ts\n", true, 999999000 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_manifest_refresh r = { !cases[i].live, 12345 };
        struct mr_m3u8_ctx c = ctx;
        struct mr_arena a;
        struct mr_buf out;
        const char *why;
        c.key = key;
        c.refresh = &r;
        mr_arena_init(&a, 0);
        mr_buf_init(&out, 1u << 20);
        assert_int_equal(mr_m3u8_rewrite(&a, &c, mr_str_c(cases[i].pl), BASE, &out, &why), MR_OK);
        if (r.live != cases[i].live || r.period_ms != cases[i].period_ms)
            fail_msg("%s: live %d period %ld", cases[i].pl, r.live, r.period_ms);
        mr_buf_free(&out);
        mr_arena_free(&a);
    }
}

static void test_find(void **state)
{
    static const char master[] =
        "#EXTM3U\n"
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/en.m3u8?sig=2\"\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8?sig=2\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=4\nhttps://cdn2.example.com/t2/high/index.m3u8\n";
    static const char media[] =
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:41\n#EXT-X-MAP:URI=\"init.mp4?sig=2\"\n"
        "#EXTINF:1,\na.ts?sig=2\n#EXTINF:1,\nb.ts?sig=2\n#EXTINF:1,\nc.ts?sig=2\n";
    const char *base = "https://cdn.example.com/t2/master.m3u8?sig=2";
    struct mr_arena a;
    char *url;
    bool nested;

    (void)state;
    mr_arena_init(&a, 0);
    /* By path. */
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(media), base,
                                  &(struct mr_m3u8_want){ "/t2/b.ts", -1, -1 }, &url, &nested),
                     MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/b.ts?sig=2");
    assert_false(nested);
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(media), base,
                                  &(struct mr_m3u8_want){ "/t2/init.mp4", -1, 99 }, &url,
                                  &nested), MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/init.mp4?sig=2");
    /* The path wins over the position. */
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(media), base,
                                  &(struct mr_m3u8_want){ "/t2/c.ts", -1, 41 }, &url, &nested),
                     MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/c.ts?sig=2");
    /* By media sequence number. */
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(media), base,
                                  &(struct mr_m3u8_want){ "/t1/b.ts", -1, 42 }, &url, &nested),
                     MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/b.ts?sig=2");
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(media), base,
                                  &(struct mr_m3u8_want){ "/t1/b.ts", -1, 44 }, &url, &nested),
                     MR_ENOTFOUND);
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(media), base,
                                  &(struct mr_m3u8_want){ "/t1/b.ts", -1, -1 }, &url, &nested),
                     MR_ENOTFOUND);
    /* In a master: a variant by position (renditions count), or by path. */
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(master), base,
                                  &(struct mr_m3u8_want){ "/t1/b.ts", 2, 42 }, &url, &nested),
                     MR_OK);
    assert_string_equal(url, "https://cdn2.example.com/t2/high/index.m3u8");
    assert_true(nested);
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(master), base,
                                  &(struct mr_m3u8_want){ "/t2/low/index.m3u8", 2, -1 }, &url,
                                  &nested), MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/low/index.m3u8?sig=2");
    assert_true(nested);
    assert_int_equal(mr_m3u8_find(&a, mr_str_c(master), base,
                                  &(struct mr_m3u8_want){ NULL, 3, -1 }, &url, &nested),
                     MR_ENOTFOUND);
    /* Not a playlist. */
    assert_int_equal(mr_m3u8_find(&a, mr_str_c("<html>"), base,
                                  &(struct mr_m3u8_want){ "/a", 0, 0 }, &url, &nested),
                     MR_ENOTFOUND);
    assert_string_equal(mr_m3u8_url_path(&a, "https://h:8/a/b.ts?x=1#f"), "/a/b.ts");
    /* Read as the rewriter reads: CRLF, a BOM, a tag after leading blanks
     * (not a tag, for the rewriter either). */
    assert_int_equal(mr_m3u8_find(&a, mr_str_c("\xEF\xBB\xBF#EXTM3U\r\n#EXT-X-MEDIA-SEQUENCE:7\r\n"
                                               "#EXTINF:1,\r\na.ts\r\n#EXTINF:1,\r\nb.ts\r\n"),
                                  base, &(struct mr_m3u8_want){ "/t1/x.ts", -1, 8 }, &url,
                                  &nested), MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/b.ts");
    assert_int_equal(mr_m3u8_find(&a, mr_str_c("#EXTM3U\r\n#EXTINF:1,\r\na.ts?s=1\r\n"), base,
                                  &(struct mr_m3u8_want){ "/t2/a.ts", -1, -1 }, &url, &nested),
                     MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/a.ts?s=1");
    assert_int_equal(mr_m3u8_find(&a, mr_str_c("#EXTM3U\n #EXT-X-STREAM-INF:BANDWIDTH=1\n"
                                               "a.m3u8\nb.ts\n"),
                                  base, &(struct mr_m3u8_want){ NULL, -1, 0 }, &url, &nested),
                     MR_OK);
    assert_string_equal(url, "https://cdn.example.com/t2/a.m3u8");
    assert_false(nested);
    /* The query picks the file: several URIs share the path, and the
     * position decides; without one, the first. */
    {
        static const char php[] = "#EXTM3U\n#EXTINF:1,\nseg.php?i=0\n#EXTINF:1,\nseg.php?i=1\n";
        assert_int_equal(mr_m3u8_find(&a, mr_str_c(php), base,
                                      &(struct mr_m3u8_want){ "/t2/seg.php", -1, 1 }, &url,
                                      &nested), MR_OK);
        assert_string_equal(url, "https://cdn.example.com/t2/seg.php?i=1");
        assert_int_equal(mr_m3u8_find(&a, mr_str_c(php), base,
                                      &(struct mr_m3u8_want){ "/t2/seg.php", -1, -1 }, &url,
                                      &nested), MR_OK);
        assert_string_equal(url, "https://cdn.example.com/t2/seg.php?i=0");
    }
    mr_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_resolution),
        cmocka_unit_test(test_bytes_kept),
        cmocka_unit_test(test_prefix_and_determinism),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_fast_path_same),
        cmocka_unit_test(test_token_cap),
        cmocka_unit_test(test_import_carried),
        cmocka_unit_test(test_define_long_variant),
        cmocka_unit_test(test_locate_hints),
        cmocka_unit_test(test_hint_values),
        cmocka_unit_test(test_hint_bounds),
        cmocka_unit_test(test_refresh),
        cmocka_unit_test(test_find),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
