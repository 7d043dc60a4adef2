/* test_url.c - URL resolution (RFC 3986 section 5.4), normalization and
 * parts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/error.h"
#include "net/url.h"

static int setup(void **state)
{
    struct mr_arena *a = malloc(sizeof(*a));
    if (!a)
        return -1;
    mr_arena_init(a, 0);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    mr_arena_free(*state);
    free(*state);
    return 0;
}

struct resolve_case {
    const char *base, *ref;
    const char *want;    /* NULL: MR_EINVAL */
};

static void run_resolve(struct mr_arena *a, const struct resolve_case *c, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char *out = NULL;
        int rc = mr_url_resolve(a, c[i].base, c[i].ref, &out);
        if (!c[i].want) {
            if (rc != MR_EINVAL) {
                print_error("resolve(\"%s\", \"%s\"): got %d \"%s\", want MR_EINVAL\n",
                            c[i].base, c[i].ref, rc, rc ? "" : out);
                failures++;
            }
        } else if (rc != MR_OK) {
            print_error("resolve(\"%s\", \"%s\"): got error %d, want \"%s\"\n", c[i].base,
                        c[i].ref, rc, c[i].want);
            failures++;
        } else if (strcmp(out, c[i].want) != 0) {
            print_error("resolve(\"%s\", \"%s\"): got \"%s\", want \"%s\"\n", c[i].base,
                        c[i].ref, out, c[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

#define RFC_BASE "http://a/b/c/d;p?q"

/* RFC 3986 section 5.4.1, normal examples. */
static const struct resolve_case rfc_normal[] = {
    { RFC_BASE, "g:h", "g:h" },
    { RFC_BASE, "g", "http://a/b/c/g" },
    { RFC_BASE, "./g", "http://a/b/c/g" },
    { RFC_BASE, "g/", "http://a/b/c/g/" },
    { RFC_BASE, "/g", "http://a/g" },
    /* The RFC gives "http://g": curl adds the empty path as "/".  For http
     * an empty path and "/" are the same resource (RFC 3986 6.2.3, RFC 9110
     * 4.2.3: an empty path is sent as "/"), so the URLs are equivalent. */
    { RFC_BASE, "//g", "http://g/" },
    { RFC_BASE, "?y", "http://a/b/c/d;p?y" },
    { RFC_BASE, "g?y", "http://a/b/c/g?y" },
    { RFC_BASE, "#s", "http://a/b/c/d;p?q#s" },
    { RFC_BASE, "g#s", "http://a/b/c/g#s" },
    { RFC_BASE, "g?y#s", "http://a/b/c/g?y#s" },
    { RFC_BASE, ";x", "http://a/b/c/;x" },
    { RFC_BASE, "g;x", "http://a/b/c/g;x" },
    { RFC_BASE, "g;x?y#s", "http://a/b/c/g;x?y#s" },
    { RFC_BASE, "", "http://a/b/c/d;p?q" },
    { RFC_BASE, ".", "http://a/b/c/" },
    { RFC_BASE, "./", "http://a/b/c/" },
    { RFC_BASE, "..", "http://a/b/" },
    { RFC_BASE, "../", "http://a/b/" },
    { RFC_BASE, "../g", "http://a/b/g" },
    { RFC_BASE, "../..", "http://a/" },
    { RFC_BASE, "../../", "http://a/" },
    { RFC_BASE, "../../g", "http://a/g" },
};

/* RFC 3986 section 5.4.2, abnormal examples. */
static const struct resolve_case rfc_abnormal[] = {
    { RFC_BASE, "../../../g", "http://a/g" },
    { RFC_BASE, "../../../../g", "http://a/g" },
    { RFC_BASE, "/./g", "http://a/g" },
    { RFC_BASE, "/../g", "http://a/g" },
    { RFC_BASE, "g.", "http://a/b/c/g." },
    { RFC_BASE, ".g", "http://a/b/c/.g" },
    { RFC_BASE, "g..", "http://a/b/c/g.." },
    { RFC_BASE, "..g", "http://a/b/c/..g" },
    { RFC_BASE, "./../g", "http://a/b/g" },
    { RFC_BASE, "./g/.", "http://a/b/c/g/" },
    { RFC_BASE, "g/./h", "http://a/b/c/g/h" },
    { RFC_BASE, "g/../h", "http://a/b/c/h" },
    { RFC_BASE, "g;x=1/./y", "http://a/b/c/g;x=1/y" },
    { RFC_BASE, "g;x=1/../y", "http://a/b/c/y" },
    { RFC_BASE, "g?y/./x", "http://a/b/c/g?y/./x" },
    { RFC_BASE, "g?y/../x", "http://a/b/c/g?y/../x" },
    { RFC_BASE, "g#s/./x", "http://a/b/c/g#s/./x" },
    { RFC_BASE, "g#s/../x", "http://a/b/c/g#s/../x" },
    /* Strict parsers keep the scheme (the RFC's "for strict parsers"). */
    { RFC_BASE, "http:g", "http:g" },
};

static void test_rfc_normal(void **state)
{
    run_resolve(*state, rfc_normal, sizeof(rfc_normal) / sizeof(rfc_normal[0]));
}

static void test_rfc_abnormal(void **state)
{
    run_resolve(*state, rfc_abnormal, sizeof(rfc_abnormal) / sizeof(rfc_abnormal[0]));
}

static void test_resolve_more(void **state)
{
    static const struct resolve_case cases[] = {
        /* Percent-encoding is kept exactly: not decoded, not re-cased. */
        { "http://h/dir/x.m3u8", "a%2Fb.ts", "http://h/dir/a%2Fb.ts" },
        { "http://h/dir/x.m3u8", "%7euser/x", "http://h/dir/%7euser/x" },
        { "http://h/dir/x.m3u8", "%7Euser/x", "http://h/dir/%7Euser/x" },
        { "http://h/dir/x.m3u8", "a%20b%2f", "http://h/dir/a%20b%2f" },
        { "http://h/a%2Fb/x.m3u8", "seg.ts", "http://h/a%2Fb/seg.ts" },
        /* The query is kept byte for byte. */
        { "http://h/dir/x.m3u8", "seg.ts?a=%2F&b=c+d%20e&&=;x=1,2&sig=AbC%3d%3D",
          "http://h/dir/seg.ts?a=%2F&b=c+d%20e&&=;x=1,2&sig=AbC%3d%3D" },
        { "http://h/dir/x.m3u8?token=abc", "seg.ts", "http://h/dir/seg.ts" },
        { "http://h/dir/x.m3u8?token=abc", "?other=1", "http://h/dir/x.m3u8?other=1" },
        { "http://h/dir/x.m3u8?token=abc", "", "http://h/dir/x.m3u8?token=abc" },
        { "http://h/dir/x.m3u8?q#f", "#g", "http://h/dir/x.m3u8?q#g" },
        { "http://h/dir/x.m3u8?q#f", "", "http://h/dir/x.m3u8?q" },
        { "https://cdn.example/v/1.ts?Expires=1&Signature=a~b_c-d&Key-Pair-Id=K", "",
          "https://cdn.example/v/1.ts?Expires=1&Signature=a~b_c-d&Key-Pair-Id=K" },
        /* "../" above the root stays at the root. */
        { "http://h/a/b.m3u8", "../../../../x.ts", "http://h/x.ts" },
        { "http://h/", "../x.ts", "http://h/x.ts" },
        { "http://h", "..", "http://h/" },
        { "http://h/a/b/c.m3u8", "../../d/../e.ts", "http://h/e.ts" },
        /* Protocol-relative references take the base's scheme. */
        { "https://h/a/b.m3u8", "//cdn.example/x/y.ts?s=1",
          "https://cdn.example/x/y.ts?s=1" },
        { "http://h/a/b.m3u8", "//cdn.example/x.ts", "http://cdn.example/x.ts" },
        { "https://h:8443/a/b.m3u8", "//cdn.example:9000/x.ts", "https://cdn.example:9000/x.ts" },
        /* Root-relative keeps the authority, port included. */
        { "https://user@h:8443/a/b.m3u8", "/x.ts", "https://user@h:8443/x.ts" },
        { "http://[::1]:8080/a/b.m3u8", "c.ts", "http://[::1]:8080/a/c.ts" },
        /* Absolute references: http(s) ones are normalized, others are
         * returned as they are. */
        { "http://h/a", "https://other.example/p/../q?x=%2F", "https://other.example/q?x=%2F" },
        { "http://h/a", "HTTP://other.example/p", "http://other.example/p" },
        { "http://h/a", "skd://key-id-123", "skd://key-id-123" },
        { "http://h/a", "data:text/plain;base64,QQ==", "data:text/plain;base64,QQ==" },
        { "http://h/a", "urn:uuid:1234", "urn:uuid:1234" },
        /* The base may have another scheme than http only when the reference
         * is absolute or empty. */
        { "skd://x", "https://k.example/key", "https://k.example/key" },
        /* Bad bases. */
        { "/relative/base", "x", NULL },
        { "relative", "x", NULL },
        { "", "x", NULL },
        { "://h/a", "x", NULL },
        { "1http://h/a", "x", NULL },
        /* Control characters anywhere are refused. */
        { "http://h/a", "x\r\nHost: evil", NULL },
        { "http://h/a", "x\ny", NULL },
        { "http://h/a", "x\ty", NULL },
        { "http://h/a", "x\x7fy", NULL },
        { "http://h/a", "\x01", NULL },
        { "http://h/a", "#\n", NULL },
        { "http://h/a", "http://h/\r\n", NULL },
        { "http://h/a\n", "x", NULL },
        { "http://h/a\x1b", "", NULL },
    };
    run_resolve(*state, cases, sizeof(cases) / sizeof(cases[0]));
}

/* A space in a playlist URI is kept as written ("curl keeps them as they
 * are and the caller decides", url.c), as it is in an absolute reference,
 * or percent-encoded as %20.  It must not become '+' in the query: RFC 3986
 * reads '+' as a literal plus, and a signed query would no longer match. */
static void test_resolve_space(void **state)
{
    static const struct {
        const char *base, *ref, *kept, *encoded;
    } cases[] = {
        { "http://h/a", "http://h/b c?d e", "http://h/b c?d e", "http://h/b%20c?d%20e" },
        { "http://h/a", "b c?d e", "http://h/b c?d e", "http://h/b%20c?d%20e" },
        { "http://h/a", "b?d e", "http://h/b?d e", "http://h/b?d%20e" },
        { "http://h/a", "?d e", "http://h/a?d e", "http://h/a?d%20e" },
    };
    struct mr_arena *a = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = mr_url_resolve(a, cases[i].base, cases[i].ref, &out);
        if (rc != MR_OK || (strcmp(out, cases[i].kept) && strcmp(out, cases[i].encoded))) {
            print_error("resolve(\"%s\", \"%s\"): got %d \"%s\", want \"%s\" or \"%s\"\n",
                        cases[i].base, cases[i].ref, rc, rc ? "" : out, cases[i].kept,
                        cases[i].encoded);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_resolve_long(void **state)
{
    struct mr_arena *a = *state;
    size_t n = 9000;
    char *ref = malloc(n + 1), *out = NULL;

    assert_non_null(ref);
    memset(ref, 'a', n);
    ref[n] = '\0';
    assert_int_equal(mr_url_resolve(a, "http://h/", ref, &out), MR_EINVAL);
    assert_int_equal(mr_url_resolve(a, ref, "x", &out), MR_EINVAL);
    ref[4000] = '\0';
    assert_int_equal(mr_url_resolve(a, "http://h/", ref, &out), MR_OK);
    assert_int_equal(strlen(out), strlen("http://h/") + 4000);
    free(ref);
}

static void test_normalize(void **state)
{
    static const struct {
        const char *in;
        const char *want;    /* NULL: MR_EINVAL */
    } cases[] = {
        { "http://h/a/./b/../c", "http://h/a/c" },
        { "http://h/a/b/../../../../c", "http://h/c" },
        { "http://h/a/b/.", "http://h/a/b/" },
        { "http://h/a/b/..", "http://h/a/" },
        { "HTTP://h/x", "http://h/x" },
        { "HtTpS://h/x", "https://h/x" },
        { "http://h", "http://h/" },
        { "https://h?q=1", "https://h/?q=1" },
        { "http://h/a%2Fb/%7e?x=%2f&y=%7E", "http://h/a%2Fb/%7e?x=%2f&y=%7E" },
        { "http://h/p?q=a/../b", "http://h/p?q=a/../b" },
        { "http://h:8080/x", "http://h:8080/x" },
        { "http://[::1]:8080/x", "http://[::1]:8080/x" },
        { "http://h/x#frag", "http://h/x#frag" },
        /* Lowercase host, as url.h says. */
        { "http://Example.COM/Path", "http://example.com/Path" },
        { "HTTPS://CDN.EXAMPLE/A/../B", "https://cdn.example/B" },
        /* Not http(s), not absolute, or not a URL. */
        { "ftp://h/x", NULL },
        { "skd://h/x", NULL },
        { "/a/b", NULL },
        { "h/a", NULL },
        { "", NULL },
        { "http://h/a\nb", NULL },
        { "http://h/a\rb", NULL },
        { "http://h:99999/", NULL },
    };
    struct mr_arena *a = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out = NULL;
        int rc = mr_url_normalize(a, cases[i].in, &out);
        if (!cases[i].want) {
            if (rc != MR_EINVAL) {
                print_error("normalize(\"%s\"): got %d, want MR_EINVAL\n", cases[i].in, rc);
                failures++;
            }
        } else if (rc != MR_OK) {
            print_error("normalize(\"%s\"): got error %d\n", cases[i].in, rc);
            failures++;
        } else if (strcmp(out, cases[i].want) != 0) {
            print_error("normalize(\"%s\"): got \"%s\", want \"%s\"\n", cases[i].in, out,
                        cases[i].want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_parts(void **state)
{
    static const struct {
        const char *in;
        const char *scheme, *host;   /* scheme NULL: MR_EINVAL */
        long port;
        const char *path;
    } cases[] = {
        { "http://h/x", "http", "h", 80, "/x" },
        { "https://h/x", "https", "h", 443, "/x" },
        { "http://h", "http", "h", 80, "/" },
        { "https://h:8443/a/b?c=d&e=%2F", "https", "h", 8443, "/a/b?c=d&e=%2F" },
        { "http://h:443/", "http", "h", 443, "/" },
        { "https://h:80/", "https", "h", 80, "/" },
        { "HTTP://Example.COM/Path?Q=A", "http", "example.com", 80, "/Path?Q=A" },
        { "http://[::1]/x", "http", "::1", 80, "/x" },
        { "https://[2001:DB8::1]:8443/p?q", "https", "2001:db8::1", 8443, "/p?q" },
        { "http://127.0.0.1:8080/seg.ts", "http", "127.0.0.1", 8080, "/seg.ts" },
        { "http://user:pw@h/x", "http", "h", 80, "/x" },
        { "http://h/x#frag", "http", "h", 80, "/x" },
        { "http://h?q", "http", "h", 80, "/?q" },
        { "http://h/a/./b/../c", "http", "h", 80, "/a/c" },
        { "ftp://h/x", NULL, NULL, 0, NULL },
        { "/x", NULL, NULL, 0, NULL },
        { "http://h/\n", NULL, NULL, 0, NULL },
        { "http://h:70000/", NULL, NULL, 0, NULL },
        { "", NULL, NULL, 0, NULL },
    };
    struct mr_arena *a = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_url_parts p;
        int rc = mr_url_parts(a, cases[i].in, &p);
        if (!cases[i].scheme) {
            if (rc != MR_EINVAL)
                fail_msg("parts(\"%s\"): got %d, want MR_EINVAL", cases[i].in, rc);
            continue;
        }
        if (rc != MR_OK)
            fail_msg("parts(\"%s\"): got error %d", cases[i].in, rc);
        assert_string_equal(p.scheme, cases[i].scheme);
        assert_string_equal(p.host, cases[i].host);
        assert_int_equal(p.port, cases[i].port);
        assert_string_equal(p.path, cases[i].path);
    }
}

static void test_is_http(void **state)
{
    static const struct {
        const char *in;
        bool http;
        size_t scheme_len;
    } cases[] = {
        { "http://h/", true, 4 },
        { "https://h/", true, 5 },
        { "HTTP://h/", true, 4 },
        { "HtTpS://h/", true, 5 },
        { "http:g", true, 4 },
        { "https:", true, 5 },
        { "httpx://h/", false, 5 },
        { "htt://h/", false, 3 },
        { "ftp://h/", false, 3 },
        { "skd://id", false, 3 },
        { "g:h", false, 1 },
        { "a+b-c.d:x", false, 7 },
        { "data:,x", false, 4 },
        { "//h/x", false, 0 },
        { "/http://h", false, 0 },
        { "http", false, 0 },
        { "http//h", false, 0 },
        { ":x", false, 0 },
        { "1a:x", false, 0 },
        { "+a:x", false, 0 },
        { "a_b:x", false, 0 },
        { "a b:x", false, 0 },
        { "a/b:c", false, 0 },
        { " http://h/", false, 0 },
        { "", false, 0 },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (mr_url_is_http(cases[i].in) != cases[i].http)
            fail_msg("is_http(\"%s\"): want %d", cases[i].in, cases[i].http);
        if (mr_url_scheme_len(cases[i].in) != cases[i].scheme_len)
            fail_msg("scheme_len(\"%s\"): got %zu, want %zu", cases[i].in,
                     mr_url_scheme_len(cases[i].in), cases[i].scheme_len);
    }
}

static void test_strip_fragment(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "http://h/x#f", "http://h/x" },
        { "http://h/x?q#f#g", "http://h/x?q" },
        { "http://h/x", "http://h/x" },
        { "#", "" },
        { "", "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        mr_url_strip_fragment(buf);
        assert_string_equal(buf, cases[i].out);
    }
}

/* ---- plain names against a prepared base ---------------------------------- */

static const char *const name_bases[] = {
    "https://cdn.example.com/vod/movie/index.m3u8?auth=a%2Fb",
    "http://h.example:8080/a/b/",
    "https://cdn.example.com",
    "https://cdn.example.com?q=1/2",
    "https://cdn.example.com#f/g",
    "http://[::1]:8080/v/x.m3u8",
    "ftp://h.example/d/x",
    /* no fast path for these: */
    "HTTPS://h.example/d/x", "https://H.example/d/x", "https://u@h.example/d/x",
    "https://h.example/d/./x", "https://h.example/d%20e/x", "https://h.example/d e/x",
    "https://h.example/d/x\x01", "h.example/d/x", "x:y",
};

/* Whenever a name is taken as plain, it resolves to the base's directory
 * and the name, exactly as mr_url_resolve says. */
static void test_is_name(void **state)
{
    static const struct {
        const char *ref;
        bool plain;     /* against a base with a fast path */
    } refs[] = {
        { "seg-1.ts", true },
        { "segment_00001.ts?sig=Ab3-x9&exp=1", true },
        { "a/b/c.ts", true },
        { "x.ts?y=/z", true },
        { "x.ts?a=b.", true },
        { "x.ts#f", true },
        { "x~y+z-_.ts", true },
        { "1abc:x", true },          /* a scheme starts with a letter */
        { "a_b:c", true },           /* '_' ends a scheme */
        { "\xc3\xa9.ts", true },
        { "", false },
        { "/root.ts", false },
        { "?q", false },
        { "#f", false },
        { ".hidden", false },
        { "./x.ts", false },
        { "../x.ts", false },
        { "a/./b", false },
        { "a/../b", false },
        { "a/.", false },
        { "file.", false },
        { "file.?q", false },
        { "file.#f", false },
        { "a b.ts", false },
        { "a%20b.ts", false },
        { "a\\b.ts", false },
        { "a\tb.ts", false },
        { "a\x7f.ts", false },
        { "http://h/x.ts", false },
        { "HTTPS://h/x.ts", false },
        { "skd://key", false },
        { "data:text/plain,x", false },
        { "a+b-c.d:e", false },
        { "//h/x.ts", false },
    };
    struct mr_arena *a = *state;

    for (size_t b = 0; b < sizeof(name_bases) / sizeof(name_bases[0]); b++) {
        struct mr_url_base ub;
        mr_url_base_init(&ub, name_bases[b]);
        assert_ptr_equal(ub.url, name_bases[b]);
        /* The bases after "ftp:" have no fast path. */
        assert_int_equal(ub.dir != 0, b < 7);
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
            struct mr_str ref = mr_str_c(refs[i].ref);
            char *out = NULL, *want;
            bool plain = mr_url_is_name(&ub, ref);
            if (plain != (refs[i].plain && ub.dir))
                fail_msg("is_name(\"%s\", \"%s\"): got %d", name_bases[b], refs[i].ref, plain);
            if (!plain)
                continue;
            assert_int_equal(mr_url_resolve(a, name_bases[b], refs[i].ref, &out), MR_OK);
            want = mr_arena_printf(a, "%.*s%s%s", (int)ub.dir, name_bases[b],
                                   ub.slash ? "/" : "", refs[i].ref);
            if (strcmp(out, want))
                fail_msg("\"%s\" against \"%s\": resolve gives \"%s\", the name \"%s\"",
                         refs[i].ref, name_bases[b], out, want);
        }
    }
}

/* A name is read up to its length, not to a NUL: the rewriter passes
 * pieces of a playlist line. */
static void test_is_name_bounds(void **state)
{
    static const char line[] = "ab:c.ts/./x y%";
    struct mr_url_base ub;
    (void)state;

    mr_url_base_init(&ub, "https://h.example/d/x.m3u8");
    assert_int_equal(ub.dir, strlen("https://h.example/d/"));
    assert_false(ub.slash);
    assert_true(mr_url_is_name(&ub, (struct mr_str){ line, 2 }));      /* "ab" */
    assert_false(mr_url_is_name(&ub, (struct mr_str){ line, 3 }));     /* "ab:" */
    assert_true(mr_url_is_name(&ub, (struct mr_str){ line + 3, 4 }));  /* "c.ts" */
    assert_true(mr_url_is_name(&ub, (struct mr_str){ line + 3, 5 }));  /* "c.ts/" */
    assert_false(mr_url_is_name(&ub, (struct mr_str){ line + 3, 6 })); /* "c.ts/." */
    assert_true(mr_url_is_name(&ub, (struct mr_str){ line + 10, 1 })); /* "x" */
    assert_false(mr_url_is_name(&ub, (struct mr_str){ line + 10, 2 }));/* "x " */
    assert_false(mr_url_is_name(&ub, (struct mr_str){ line + 12, 2 }));/* "y%" */
    assert_true(mr_url_is_name(&ub, (struct mr_str){ line + 12, 1 })); /* "y" */
    assert_false(mr_url_is_name(&ub, (struct mr_str){ line, 0 }));
    mr_url_base_init(&ub, "https://h.example");
    assert_int_equal(ub.dir, strlen("https://h.example"));
    assert_true(ub.slash);
}

/* Every control byte is found at every position of strings of 1 to 40
 * bytes (the test reads eight bytes at a time), and nothing else is. */
static void test_has_ctl(void **state)
{
    char s[40];
    (void)state;

    assert_false(mr_url_has_ctl((struct mr_str){ "", 0 }));
    for (size_t n = 1; n <= sizeof(s); n++) {
        memset(s, 'a', sizeof(s));
        assert_false(mr_url_has_ctl((struct mr_str){ s, n }));
        for (int c = 0; c < 256; c++) {
            bool ctl = c < 0x20 || c == 0x7f;
            for (size_t pos = 0; pos < n; pos++) {
                s[pos] = (char)c;
                if (mr_url_has_ctl((struct mr_str){ s, n }) != ctl)
                    fail_msg("has_ctl: byte 0x%02x at %zu of %zu", c, pos, n);
                s[pos] = 'a';
            }
            /* Past the end does not count. */
            if (n < sizeof(s)) {
                s[n] = (char)c;
                assert_false(mr_url_has_ctl((struct mr_str){ s, n }));
                s[n] = 'a';
            }
        }
    }
}

/* stream.allow_hosts entries against URLs: whole hosts, any case, the
 * scheme's default port unless the entry names one, IPv6 in brackets. */
static void test_host_listed(void **state)
{
    static char *entries[] = { "cdn.example.com", "127.0.0.1:8081", "[::1]:8082", "[fd00::1]",
                               "Upper.Example", "bad:port", "[::2", "x.example:0",
                               "y.example:65536" };
    static const struct mr_strlist list = { entries, sizeof(entries) / sizeof(entries[0]) };
    static const struct {
        const char *url;
        bool listed;
    } cases[] = {
        { "http://cdn.example.com/x", true },
        { "https://cdn.example.com/x", true },
        { "http://CDN.Example.COM/x", true },
        { "http://cdn.example.com:80/x", true },
        { "https://cdn.example.com:443/x", true },
        { "http://cdn.example.com:443/x", false },
        { "https://cdn.example.com:80/x", false },
        { "http://cdn.example.com:8080/x", false },
        { "http://evilcdn.example.com/x", false },
        { "http://cdn.example.com.evil.example/x", false },
        { "http://sub.cdn.example.com/x", false },
        { "http://cdn.example.com@127.0.0.1:8081/x", true },    /* the host is 127.0.0.1 */
        { "http://127.0.0.1@cdn.example.com:8081/x", false },
        { "http://127.0.0.1:8081/x", true },
        { "http://127.0.0.1/x", false },
        { "http://localhost:8081/x", false },
        { "http://[::1]:8082/x", true },
        { "http://[::1]/x", false },
        { "http://[fd00::1]/x", true },
        { "https://[fd00::1]/x", true },
        { "http://[fd00::1]:8080/x", false },
        { "http://upper.example/x", true },
        { "http://bad/x", false },
        { "http://x.example/x", false },
        { "http://y.example/x", false },
    };
    struct mr_arena a;
    int failures = 0;
    (void)state;

    mr_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mr_url_parts u;
        assert_int_equal(mr_url_parts(&a, cases[i].url, &u), MR_OK);
        if (mr_url_host_listed(&list, &u) != cases[i].listed) {
            print_error("%s: %s\n", cases[i].url, cases[i].listed ? "not listed" : "listed");
            failures++;
        }
    }
    {
        struct mr_url_parts u;
        static const struct mr_strlist empty = { NULL, 0 };
        assert_int_equal(mr_url_parts(&a, "http://cdn.example.com/", &u), MR_OK);
        assert_false(mr_url_host_listed(&empty, &u));
        assert_false(mr_url_host_listed(NULL, &u));
    }
    mr_arena_free(&a);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rfc_normal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rfc_abnormal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_long, setup, teardown),
        cmocka_unit_test_setup_teardown(test_normalize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parts, setup, teardown),
        cmocka_unit_test(test_is_http),
        cmocka_unit_test(test_strip_fragment),
        cmocka_unit_test_setup_teardown(test_is_name, setup, teardown),
        cmocka_unit_test(test_is_name_bounds),
        cmocka_unit_test(test_has_ctl),
        cmocka_unit_test(test_host_listed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
