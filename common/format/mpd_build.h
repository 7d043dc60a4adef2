/* mpd_build.h - builds a static DASH MPD from a provider's representations.
 *
 * For providers whose API hands out separate video and audio files with a
 * byte-range index (Bilibili's playurl `dash.video[]` / `dash.audio[]`: each
 * stream one fragmented MP4 with a sidx, `SegmentBase.Initialization` and
 * `indexRange`), so a provider offers DASH without writing XML by hand.  The
 * result is an ISO/IEC 23009-1 MPD, profile isoff-on-demand:2011, type
 * static, with one Period; one AdaptationSet for the video representations
 * and one per audio language (audio without a language shares one set), in
 * the order the languages first appear (compared case-insensitively).
 * Every set says segmentAlignment, subsegmentAlignment, startWithSAP=1 and
 * subsegmentStartsWithSAP=1, as an indexed fragmented MP4 (what Bilibili
 * serves) does; the video set adds maxWidth/maxHeight; mimeType goes on the
 * set when its representations share one.  Each Representation has its
 * BaseURL, then the backup URLs as further BaseURL elements in the order
 * given (players fail over between them), and SegmentBase@indexRange with
 * Initialization@range.
 *
 * The XML is written by a small streaming writer (no libxml2: the provider
 * registry puts this file in every executable) that escapes every value; URLs
 * are written as the bytes given (never decoded or re-encoded: a re-encoded
 * query breaks signed CDN links).  Everything is validated before anything
 * is built.  Knows nothing of FastCGI or the network.
 */
#ifndef MR_MPD_BUILD_H
#define MR_MPD_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Caps (they belong with the others in limits.h once that file is free). */
#define MR_MPD_BUILD_MAX_REPS    64       /* video, and audio, representations each */
#define MR_MPD_BUILD_MAX_BACKUP  16       /* backup URLs of one representation */
#define MR_MPD_BUILD_MAX_FIELD   256      /* id, mime type, codecs, frame rate, sar, lang */
#define MR_MPD_BUILD_MAX_SECONDS 1e9      /* duration_s, min_buffer_s */
#define MR_MPD_BUILD_MIN_BUFFER  1.5      /* minBufferTime when min_buffer_s is 0 */

/* One representation: one file with its init section and index.  Strings
 * are borrowed for the call; for every optional string NULL and "" both
 * mean absent (JSON APIs give "" for a missing value). */
struct mr_mpd_rep {
    const char *id;            /* Representation@id; absent: "v1", "v2"… / "a1"…
                                * (index in its array + 1).  Unique in the MPD, no
                                * whitespace.  Bilibili repeats a quality id across
                                * codecs (avc/hevc/av1): append the codecid. */
    const char *base_url;      /* required; absolute http(s) (see allow_relative) */
    const char *const *backup_urls;  /* further BaseURLs, same rules; may be NULL */
    size_t nbackup;            /* at most MR_MPD_BUILD_MAX_BACKUP */
    const char *mime_type;     /* required: "video/…" in video[], "audio/…" in audio[] */
    const char *codecs;        /* RFC 6381 ("avc1.640032", "mp4a.40.2"); optional */
    long bandwidth;            /* bits per second, > 0 */
    long width, height;        /* video; 0 = absent */
    const char *frame_rate;    /* video: "25", "30000/1001", or a decimal "29.970"
                                * (written as the fraction 2997/100: the MPD's
                                * FrameRateType has no decimals); optional */
    const char *sar;           /* video: "1:1"; optional */
    long audio_sampling_rate;  /* audio: Hz; 0 = absent */
    const char *init_range;    /* required: "A-B", decimal, A <= B (Initialization@range) */
    const char *index_range;   /* required: "A-B" (SegmentBase@indexRange, the sidx) */
    const char *lang;          /* audio: RFC 5646 tag ("en", "zh-Hans"); optional */
};

struct mr_mpd_spec {
    double duration_s;         /* > 0: mediaPresentationDuration */
    double min_buffer_s;       /* >= 0; 0 = MR_MPD_BUILD_MIN_BUFFER */
    const struct mr_mpd_rep *video;
    size_t nvideo;             /* at most MR_MPD_BUILD_MAX_REPS */
    const struct mr_mpd_rep *audio;
    size_t naudio;             /* at most MR_MPD_BUILD_MAX_REPS; nvideo + naudio >= 1 */
    bool allow_relative;       /* for tests and local files only: also accept URLs
                                * without a scheme ("video.mp4", "../a/b.m4s"),
                                * resolved by the player against the MPD's own
                                * URL.  Other schemes stay refused.  A provider
                                * leaves this false. */
};

/* Appends the MPD (UTF-8 XML with its declaration) to `out`, a buffer the
 * caller initialized and frees; its cap is respected.  On failure `out` is
 * left as it was and MR_EINVAL comes with `why` (static text) naming what is
 * wrong: no representations, too many, a representation without base_url
 * or mime_type, a URL that is not http(s) or holds control bytes or spaces,
 * a range that is not "A-B" with A <= B, a bandwidth <= 0, a negative size,
 * a malformed frame rate, sar, id or lang, a repeated id, a bad duration,
 * text that XML cannot carry (not UTF-8, control bytes, U+FFFE).
 * MR_ETOOBIG past out's cap (why "MPD too big"), MR_ENOMEM when malloc
 * fails (why "out of memory").  Thread-safe. */
int mr_mpd_build(const struct mr_mpd_spec *s, struct mr_buf *out, const char **why);

/* Writes `seconds` as an ISO 8601 duration in the MPD's style, rounded to
 * the millisecond: "PT1H2M3.456S", "PT1M30S", "PT1H", "PT0.5S", "PT0S" (no
 * days: "PT100H").  MR_EINVAL for a negative, NaN, infinite or too large
 * (> MR_MPD_BUILD_MAX_SECONDS) value, MR_ETOOBIG when `n` is too small (32
 * bytes always suffice). */
int mr_mpd_build_duration(double seconds, char *dst, size_t n);

#endif
