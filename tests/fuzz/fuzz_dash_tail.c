/* fuzz_dash_tail.c - the DASH segment endpoint after its token opened:
 * mr_mpd_token_data on the token's data, then mr_mpd_join_tail of the
 * directory, the request's tail and the client's query.
 *
 * The input is the token's data ("d scope \n DIR [? QUERY [\n NAME]]"), a
 * NUL, the tail, a NUL and the client's query (none without the second
 * NUL: "", as mr_request_parse makes it).  Checked (__builtin_trap):
 * - a joined URL is the directory, the tail as it came, and the query the
 *   token's (for the file it names, if it names one) or, when that query is
 *   a template, the client's, which then fills it;
 * - what curl's normalization makes of the joined URL stays under what it
 *   makes of the directory;
 * - a tail that mr_mpd_stays_under refuses is refused. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "core/error.h"
#include "format/mpd.h"
#include "net/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int value_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '~' || c == '-';
}

/* A loose check of a filled template: every byte of q is a literal of t or
 * a value character, and q has t's literals before its first identifier. */
static int fills(struct mr_str t, struct mr_str q)
{
    const char *dollar = memchr(t.p, '$', t.len);
    size_t lead = dollar ? (size_t)(dollar - t.p) : t.len;

    if (q.len < lead || memcmp(q.p, t.p, lead))
        return 0;
    for (size_t i = 0; i < q.len; i++)
        if (!value_char(q.p[i]) && !memchr(t.p, q.p[i], t.len))
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *nul, *nul2;
    struct mr_str tdata, tail, client = { "", 0 }, scope, dir, want_q = MR_STR_NULL;
    struct mr_dir_query dq;
    struct mr_arena a;
    char kind, *d, *joined, *nd, *nj;
    size_t dn;
    int rc;

    if (size > 8192 || !(nul = memchr(p, '\0', size)))
        return 0;
    tdata = (struct mr_str){ p, (size_t)(nul - p) };
    tail = (struct mr_str){ nul + 1, size - tdata.len - 1 };
    if ((nul2 = memchr(tail.p, '\0', tail.len))) {
        client = (struct mr_str){ nul2 + 1, (size_t)(p + size - nul2 - 1) };
        tail.len = (size_t)(nul2 - tail.p);
    }
    if (mr_mpd_token_data(tdata, &kind, &scope, &dir, &dq) || kind != MR_TOKEN_DIR)
        return 0;
    mr_arena_init(&a, 0);
    if (!(d = mr_arena_strdup_str(&a, dir)))
        __builtin_trap();
    rc = mr_mpd_join_tail(&a, d, tail, dq, client, &joined);
    if (rc == MR_OK) {
        dn = strlen(d);
        if (!mr_mpd_stays_under(tail) || memchr(tail.p, '?', tail.len))
            __builtin_trap();
        /* the directory, the tail as it came, then the query */
        if (strncmp(joined, d, dn) || strlen(joined) < dn + tail.len ||
            memcmp(joined + dn, tail.p, tail.len))
            __builtin_trap();
        if (dq.query.p && (!dq.name.p || mr_str_eq(tail, dq.name))) {
            want_q = dq.query;
            if (memchr(dq.query.p, '$', dq.query.len)) {
                if (!fills(dq.query, client))
                    __builtin_trap();
                want_q = client;
            }
        }
        if (want_q.p ? (joined[dn + tail.len] != '?' ||
                        strlen(joined + dn + tail.len + 1) != want_q.len ||
                        memcmp(joined + dn + tail.len + 1, want_q.p, want_q.len))
                     : joined[dn + tail.len] != '\0')
            __builtin_trap();
        /* curl's normalization keeps it under the directory's */
        if (!mr_url_normalize(&a, d, &nd) && !mr_url_normalize(&a, joined, &nj) &&
            strncmp(nj, nd, strlen(nd)))
            __builtin_trap();
    } else if (rc != MR_EFORBIDDEN && rc != MR_ETOOBIG) {
        __builtin_trap();
    }
    mr_arena_free(&a);
    return 0;
}
