/* mpd_rewrite.c - how long the DASH rewriter takes on a 1 MB MPD.
 *
 *     make bench/mpd_rewrite && bench/mpd_rewrite [-q] [-n RUNS]
 *
 * Two generated inputs of about 1 MB: a SegmentList with ~10,000 absolute
 * SegmentURLs (each becomes a relay URL) and a SegmentTimeline with ~28,000
 * S elements under one BaseURL (one relay URL; the rest is parsing and
 * copying).  Prints the best and median of RUNS (default 15) and, for
 * scale (not with -q), libxml2 building and saving a tree of the same bytes
 * with no rewrite, as the rewriter did before it wrote the input's own
 * bytes.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libxml/parser.h>

#include "core/arena.h"
#include "core/buf.h"
#include "format/mpd.h"
#include "core/token.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void segment_list(struct mr_buf *in)
{
    size_t n = 0;
    mr_buf_printf(in, "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                      "type=\"static\">\n <Period>\n  <AdaptationSet mimeType=\"video/mp4\">\n"
                      "   <Representation id=\"v1\" bandwidth=\"1000000\">\n"
                      "    <SegmentList timescale=\"1000\" duration=\"4000\">\n"
                      "     <Initialization sourceURL=\"https://cdn.example.com/vod/movie-1234/"
                      "video/720p/init.mp4\"/>\n");
    while (in->len < 1000000)
        mr_buf_printf(in, "     <SegmentURL media=\"https://cdn.example.com/vod/movie-1234/"
                          "video/720p/segment-%06zu.m4s\"/>\n", n++);
    mr_buf_printf(in, "    </SegmentList>\n   </Representation>\n  </AdaptationSet>\n"
                      " </Period>\n</MPD>\n");
}

static void timeline(struct mr_buf *in)
{
    size_t n = 0;
    mr_buf_printf(in, "<?xml version=\"1.0\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" "
                      "type=\"static\">\n <BaseURL>https://cdn.example.com/vod/</BaseURL>\n"
                      " <Period>\n  <AdaptationSet>\n   <SegmentTemplate timescale=\"90000\" "
                      "media=\"$RepresentationID$/$Time$.m4s\" initialization=\"$RepresentationID$/"
                      "init.mp4\">\n    <SegmentTimeline>\n");
    while (in->len < 1000000) {
        mr_buf_printf(in, "     <S t=\"%zu\" d=\"360360\"/>\n", n * 360360);
        n++;
    }
    mr_buf_printf(in, "    </SegmentTimeline>\n   </SegmentTemplate>\n   <Representation "
                      "id=\"v\"/>\n  </AdaptationSet>\n </Period>\n</MPD>\n");
}

/* Runs the rewrite, then (apart, so that neither disturbs the other's
 * caches and heap) libxml2's own tree parse + save of the same bytes. */
static int run(const char *name, const struct mr_buf *in, struct mr_token_key *key, int runs,
               bool reference)
{
    struct mr_mpd_ctx ctx = { key, "", "m:bench", 4000000000, 0, NULL };
    double *t = calloc((size_t)runs, sizeof(*t)), *u = calloc((size_t)runs, sizeof(*u));
    size_t outlen = 0;

    if (!t || !u)
        return 1;
    for (int r = 0; r < runs; r++) {
        struct mr_arena a;
        struct mr_buf out;
        const char *why = NULL;
        double t0;

        mr_arena_init(&a, 0);
        mr_buf_init(&out, 64u << 20);
        t0 = now_ms();
        if (mr_mpd_rewrite(&a, &ctx, (struct mr_str){ in->p, in->len },
                           "https://cdn.example.com/vod/manifest.mpd", &out, &why)) {
            fprintf(stderr, "%s: refused: %s\n", name, why ? why : "?");
            return 1;
        }
        t[r] = now_ms() - t0;
        outlen = out.len;
        mr_buf_cleanup(&out);
        mr_arena_free(&a);
    }
    for (int r = 0; reference && r < runs; r++) {
        xmlDocPtr doc;
        xmlChar *mem = NULL;
        int memlen = 0;
        double t0 = now_ms();

        doc = xmlReadMemory(in->p, (int)in->len, NULL, NULL, XML_PARSE_NONET);
        xmlDocDumpMemory(doc, &mem, &memlen);
        u[r] = now_ms() - t0;
        xmlFree(mem);
        xmlFreeDoc(doc);
    }
    qsort(t, (size_t)runs, sizeof(*t), cmp);
    qsort(u, (size_t)runs, sizeof(*u), cmp);
    printf("rewrite %s (%zu bytes in, %zu out): best %.1f ms, median %.1f ms",
           name, in->len, outlen, t[0], t[runs / 2]);
    if (reference)
        printf(" (libxml2 tree parse + save alone: best %.1f ms)", u[0]);
    printf("\n");
    free(t);
    free(u);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 15, rc, argi = 1;
    bool reference = true;
    struct mr_token_key *key;
    struct mr_buf in;

    if (argi < argc && !strcmp(argv[argi], "-q")) {
        reference = false;
        argi++;
    }
    if (argi + 1 < argc && !strcmp(argv[argi], "-n")) {
        char *end;
        long n = strtol(argv[argi + 1], &end, 10);
        runs = *end || n < 1 || n > 1000 ? 0 : (int)n;
        argi += 2;
    }
    if (runs < 1 || argi != argc) {
        fprintf(stderr, "usage: %s [-q] [-n RUNS]\n", argv[0]);
        return 2;
    }
    xmlInitParser();
    key = mr_token_key_new("bench secret, 32 bytes long .....", 32);
    if (!key)
        return 1;
    mr_buf_init(&in, 4u << 20);
    segment_list(&in);
    rc = run("1 MB SegmentList, absolute SegmentURLs", &in, key, runs, reference);
    mr_buf_reset(&in);
    timeline(&in);
    rc |= run("1 MB SegmentTimeline", &in, key, runs, reference);
    mr_buf_cleanup(&in);
    mr_token_key_free(key);
    return rc;
}
