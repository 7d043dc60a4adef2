/* ytdlp.h - the two halves of the "ytdlp" provider, for its unit tests.
 *
 * mr_ytdlp_run runs yt-dlp on one URL and collects what it prints;
 * mr_ytdlp_map turns that JSON into a struct mr_source.  The provider
 * (ytdlp.c) is the one call of each; neither needs a request.
 */
#ifndef MR_YTDLP_H
#define MR_YTDLP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/child.h"
#include "core/limits.h"

struct mr_arena;
struct mr_source;

#define MR_YTDLP_MAX_URL       MR_URL_MAX   /* a source URL, and every URL kept */
#define MR_YTDLP_JSON_DEPTH    32           /* nesting of yt-dlp's JSON */
#define MR_YTDLP_MAX_MORE      16           /* more_sources */
#define MR_YTDLP_MAX_SUBS      16           /* subtitles */
#define MR_YTDLP_MAX_HEADERS   16           /* http_headers kept */
#define MR_YTDLP_MAX_HEADER    4096         /* one header value */
#define MR_YTDLP_MAX_MESSAGE   MR_CHILD_MAX_MESSAGE  /* the error line handed on */

/* Runs `path --ignore-config --no-cache-dir --dump-single-json --no-playlist
 * --no-warnings --no-progress -- url` (posix_spawnp when path has no '/',
 * looked up in the server's PATH), with stdin from /dev/null, the
 * environment PATH (the server's), HOME=/nonexistent and LANG=C.UTF-8 and
 * nothing else, in "/", in its own process group, for at most timeout_s
 * seconds.  Its stdout goes
 * into `out` (which must be initialized; its cap is the output cap).
 * Returns MR_OK when it exited 0; MR_EUPSTREAM when it exited otherwise or
 * printed more than the cap; MR_ETIMEOUT when time ran out (the whole group
 * is killed); MR_EUNAVAILABLE when it cannot be run; MR_EINTERNAL, MR_ENOMEM.
 * On any error `msg` says why in one printable ASCII line (yt-dlp's last
 * error line where it printed one).  The child is always reaped and no
 * descriptor is left open. */
int mr_ytdlp_run(const char *path, const char *url, long timeout_s, struct mr_buf *out,
                 char *msg, size_t msglen);

/* Maps yt-dlp's --dump-single-json output to *out: the chosen format's URL
 * (the top-level one when it is progressive, else the best progressive by
 * height/tbr, else the best HLS, else DASH's manifest), its type, its
 * http_headers (filtered), the others as more_sources, the subtitles
 * (automatic captions only when there are none), title, duration,
 * thumbnail.  expire_at is left 0.  Strings live in the arena (the parsed
 * JSON is owned by it).  MR_EUPSTREAM with `msg` set when the JSON is not
 * yt-dlp's or has no playable format; MR_ENOMEM. */
int mr_ytdlp_map(struct mr_arena *a, const char *json, size_t len, struct mr_source *out,
                 char *msg, size_t msglen);

/* Whether s is an http(s) URL of at most MR_YTDLP_MAX_URL bytes with no
 * space or control byte. */
bool mr_ytdlp_url_ok(const char *s);

#endif
