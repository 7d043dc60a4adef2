/* m3u8_rewrite.c - how long the HLS rewriter takes over a long VOD playlist.
 *
 * Generates a VOD playlist of SEGMENTS segments as a packager writes one
 * (#EXTINF:6.006, then a relative name with a signed query; every 500th
 * segment an absolute URL on another host; an EXT-X-KEY and an EXT-X-MAP),
 * rewrites it RUNS times as the m3u8 endpoint would (a fresh output buffer
 * and an arena reset per run, as per request) and prints the best and the
 * median time.  Not a test: nothing here fails a build.
 *
 *   bench/m3u8_rewrite [-n RUNS] [-s SEGMENTS] [-o FILE]
 *
 * -o writes the last rewritten playlist to FILE, to compare the bytes of
 * two builds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/limits.h"
#include "format/m3u8.h"
#include "core/token.h"

#define BASE "https://cdn.example.com/vod/movie-4711/720p/index.m3u8?auth=Ab3%2Fx9&exp=1795000000"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The playlist, deterministic: the same bytes every run of the program. */
static int make_playlist(struct mr_buf *b, long segments)
{
    unsigned long x = 0x9e3779b97f4a7c15ul;
    int rc = mr_buf_puts(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:7\n"
                            "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
                            "#EXT-X-INDEPENDENT-SEGMENTS\n"
                            "#EXT-X-KEY:METHOD=AES-128,URI=\"keys/k1.bin?v=2\","
                            "IV=0x00000000000000000000000000000001\n"
                            "#EXT-X-MAP:URI=\"init.mp4\"\n");

    for (long i = 1; i <= segments && !rc; i++) {
        /* a 64-bit xorshift for the signatures */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (i % 500 == 0)
            rc = mr_buf_printf(b, "#EXTINF:6.006,\nhttps://cdn2.example.com/vod/movie-4711/720p/"
                                  "segment_%05ld.ts?sig=%016lx\n", i, x);
        else
            rc = mr_buf_printf(b, "#EXTINF:6.006,\nsegment_%05ld.ts?sig=%016lx\n", i, x);
    }
    if (!rc)
        rc = mr_buf_puts(b, "#EXT-X-ENDLIST\n");
    return rc;
}

int main(int argc, char **argv)
{
    long runs = 20, segments = 20000;
    const char *outfile = NULL;
    struct mr_buf in, out;
    struct mr_arena a;
    struct mr_token_key *key;
    struct mr_m3u8_ctx ctx = {
        .prefix = "https://relay.example.com",
        .scope = "m:movie-4711",
        .expire_at = 1795021200,
    };
    double *t;
    int opt, rc = MR_OK;

    while ((opt = getopt(argc, argv, "n:s:o:")) != -1) {
        char *end;
        switch (opt) {
        case 'n':
            runs = strtol(optarg, &end, 10);
            if (*end || runs < 1 || runs > 100000)
                goto usage;
            break;
        case 's':
            segments = strtol(optarg, &end, 10);
            if (*end || segments < 1 || segments > 1000000)
                goto usage;
            break;
        case 'o':
            outfile = optarg;
            break;
        default:
            goto usage;
        }
    }
    if (optind != argc)
        goto usage;

    key = mr_token_key_new("bench secret, 32 bytes long .....", 32);
    t = calloc((size_t)runs, sizeof(*t));
    if (!key || !t) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    ctx.key = key;
    mr_buf_init(&in, 256u << 20);
    if ((rc = make_playlist(&in, segments))) {
        fprintf(stderr, "playlist: %s\n", mr_strerror(rc));
        return 1;
    }
    ctx.max_bytes = in.len;
    mr_arena_init(&a, 0);
    mr_buf_init(&out, 256u << 20);
    for (long r = 0; r < runs; r++) {
        const char *why = NULL;
        double t0;

        mr_buf_free(&out);
        mr_buf_init(&out, 256u << 20);
        mr_arena_reset(&a);
        t0 = now_ms();
        rc = mr_m3u8_rewrite(&a, &ctx, mr_buf_str(&in), BASE, &out, &why);
        t[r] = now_ms() - t0;
        if (rc) {
            fprintf(stderr, "rewrite: %s (%s)\n", mr_strerror(rc), why ? why : "");
            return 1;
        }
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp_double);
    printf("rewrite %ld segments: best %.1f ms, median %.1f ms\n", segments, t[0],
           runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2);
    printf("(%zu bytes in, %zu bytes out, %ld runs)\n", in.len, out.len, runs);
    if (outfile) {
        FILE *f = fopen(outfile, "wb");
        if (!f || fwrite(out.p, 1, out.len, f) != out.len || fclose(f)) {
            perror(outfile);
            return 1;
        }
    }
    mr_buf_free(&out);
    mr_buf_free(&in);
    mr_arena_free(&a);
    mr_token_key_free(key);
    free(t);
    return 0;
usage:
    fprintf(stderr, "usage: %s [-n RUNS] [-s SEGMENTS] [-o FILE]\n", argv[0]);
    return 2;
}
