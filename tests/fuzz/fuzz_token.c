/* fuzz_token.c - tokens on arbitrary bytes, and what lies behind a good one.
 *
 * - verification and base64url decoding of the input as a token;
 * - the input sealed as a token's data: it verifies back to itself, under
 *   the ring and under a ring that keeps its secret as a previous one, and
 *   not under another secret; then what the playlist and segment endpoints
 *   run on opened data (mr_m3u8_token_data, mr_m3u8_parse_vars,
 *   mr_mpd_token_data), with the shapes they promise checked;
 * - that token changed (a byte flipped, cut short, extended, as the input's
 *   hash picks): verification refuses it (abort() if a changed token
 *   verifies). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "format/m3u8.h"
#include "format/mpd.h"
#include "core/token.h"

#define SECRET "fuzz-secret-fuzz-secret-fuzz-secret"
#define OTHER "fuzz-other-secret-fuzz-other-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Whether s lies inside [p, p + n). */
static int inside(struct mr_str s, const char *p, size_t n)
{
    return !s.len || (s.p >= p && s.p + s.len <= p + n);
}

static void must_refuse(const struct mr_token_key *k, struct mr_arena *a, const char *t,
                        size_t n)
{
    struct mr_str out;
    time_t exp;
    int rc = mr_token_verify(k, a, (struct mr_str){ t, n }, 1000, &out, &exp);

    if (rc == MR_OK || rc == MR_ETOKEN_EXPIRED)
        abort();
}

/* What the endpoints run on opened data. */
static void open_data(struct mr_arena *a, struct mr_str d)
{
    struct mr_str scope, url, vars;
    struct mr_dir_query q;
    struct mr_headers imports;
    char kind;

    if (!mr_m3u8_token_data(d, &kind, &scope, &url, &vars)) {
        if ((kind != MR_TOKEN_PLAYLIST && kind != MR_TOKEN_SEGMENT) || !url.len ||
            !inside(scope, d.p, d.len) || !inside(url, d.p, d.len) || !vars.p ||
            (vars.len && (kind != MR_TOKEN_PLAYLIST || !inside(vars, d.p, d.len))) ||
            memchr(scope.p ? scope.p : "", '\n', scope.len))
            abort();
        if (!mr_m3u8_parse_vars(a, vars, &imports)) {
            if (imports.n > MR_M3U8_MAX_VARS)
                abort();
            /* (a name may hold a NUL here, cut short as a C string: the
             * rewriter seals only names of [A-Za-z0-9_-]) */
            for (size_t i = 0; i < imports.n; i++)
                if (!imports.v[i].name || !imports.v[i].value)
                    abort();
        }
    }
    if (!mr_mpd_token_data(d, &kind, &scope, &url, &q)) {
        if (!inside(scope, d.p, d.len) || !inside(url, d.p, d.len) ||
            (!mr_str_starts_c(url, "http://") && !mr_str_starts_c(url, "https://")))
            abort();
        if (kind == MR_TOKEN_DIR) {
            if (url.p[url.len - 1] != '/' || memchr(url.p, '#', url.len) ||
                memchr(url.p, '?', url.len) || (q.name.p && !q.query.p) ||
                (q.query.p && (!q.query.len || !inside(q.query, d.p, d.len))) ||
                (q.name.p && (!q.name.len || memchr(q.name.p, '\n', q.name.len))))
                abort();
        } else if (kind != MR_TOKEN_PLAYLIST || memchr(url.p, '\n', url.len) || q.query.p) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mr_token_key *key, *rotated, *other;
    struct mr_arena a;
    struct mr_str out;
    unsigned char buf[8192];
    char *tok, *bad;
    size_t n, pos;
    uint64_t h = 1469598103934665603ull;
    time_t exp;

    if (!key) {
        key = mr_token_key_new(SECRET, sizeof(SECRET) - 1);
        /* the same secret as a previous one: what a rotation leaves */
        rotated = mr_token_key_new(OTHER, sizeof(OTHER) - 1);
        other = mr_token_key_new(OTHER, sizeof(OTHER) - 1);
        if (!key || !rotated || !other ||
            mr_token_key_add_previous(rotated, SECRET, sizeof(SECRET) - 1))
            abort();
    }
    mr_arena_init(&a, 0);
    mr_token_verify(key, &a, (struct mr_str){ (const char *)data, size }, 1000, &out, &exp);
    mr_b64url_decode((const char *)data, size, buf, sizeof(buf));
    if (mr_token_sign(key, &a, 2000, data, size, &tok) != MR_OK) {
        if (size <= MR_TOKEN_MAX_DATA)
            abort();
        goto done;
    }
    n = strlen(tok);
    if (n != mr_token_len(size) || strspn(tok, alphabet) != n)
        abort();
    if (mr_token_verify(key, &a, mr_str_c(tok), 1000, &out, &exp) != MR_OK ||
        out.len != size || (size && memcmp(out.p, data, size)) || exp != 2000 ||
        out.p[out.len] != '\0')
        abort();
    if (mr_token_verify(rotated, &a, mr_str_c(tok), 1000, &out, &exp) != MR_OK ||
        out.len != size || (size && memcmp(out.p, data, size)))
        abort();
    if (mr_token_verify(key, &a, mr_str_c(tok), 3000, &out, &exp) != MR_ETOKEN_EXPIRED)
        abort();
    must_refuse(other, &a, tok, n);
    open_data(&a, out);

    /* The token changed as the input's hash says: refused. */
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    if (!(bad = mr_arena_alloc(&a, n + 64)))
        abort();
    memcpy(bad, tok, n);
    pos = (size_t)(h % n);
    /* a byte flipped: to another character of the alphabet, or any other */
    bad[pos] = (h >> 32) & 1 ? alphabet[(strchr(alphabet, tok[pos]) - alphabet + 1 +
                                         (h >> 40) % 63) % 64]
                             : (char)(tok[pos] ^ (1 + (h >> 40) % 255));
    must_refuse(key, &a, bad, n);
    bad[pos] = tok[pos];
    /* cut short */
    must_refuse(key, &a, bad, n - 1 - (size_t)((h >> 20) % n));
    /* extended */
    for (size_t i = 0; i < 1 + (h >> 48) % 63; i++)
        bad[n + i] = alphabet[(h >> (i % 48)) % 64];
    must_refuse(key, &a, bad, n + 1 + (h >> 48) % 63);
done:
    mr_arena_free(&a);
    return 0;
}
