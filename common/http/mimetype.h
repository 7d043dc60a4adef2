/* mimetype.h - the Content-Type a relayed body may carry.
 *
 * A relayed body is the upstream's bytes served from the relay's own origin.
 * An upstream that answers a "segment" with text/html, SVG or XML would have
 * a browser that opens the link run its script as this origin (its cookies,
 * its API, its console under /ui/).  So no upstream Content-Type is passed
 * on as it is: mr_mimetype_relayed maps it through an allow-list of types a
 * browser only plays, shows as a picture or as plain text, and everything
 * else becomes application/octet-stream (which a browser downloads).  The
 * body is relayed unchanged either way.
 *
 * The allow-list (matched case-insensitively, parameters aside):
 *   video/ and audio/ any   except a subtype ending in "+xml" (an XML
 *                            document to a browser, whatever its top type)
 *   image/png, jpeg, gif, webp, avif, bmp           (never image/svg+xml)
 *   application/vnd.apple.mpegurl, application/x-mpegurl   (HLS playlists)
 *   application/mp4, application/octet-stream
 *   text/vtt, text/plain, application/x-subrip             (subtitles)
 * Not on it, deliberately: every XML type, application/dash+xml and
 * application/ttml+xml included (docs/proxy.md, "Relayed bodies", says why),
 * HTML, SVG, scripts, JSON, multipart, and anything unknown.
 *
 * contrib/nginx/mediarelay.conf has the same rule as a map
 * ($mediarelay_body_type) for the bodies nginx relays itself (offload):
 * change both together.
 */
#ifndef MR_MIMETYPE_H
#define MR_MIMETYPE_H

#include "core/arena.h"

/* What anything off the list becomes. */
#define MR_MIMETYPE_FALLBACK "application/octet-stream"
/* Longest Content-Type passed on with its parameters; a longer one keeps
 * its type alone.  A type and a subtype are at most 127 bytes each
 * (RFC 6838), so what is relayed always fits a header line. */
#define MR_MIMETYPE_MAX 256

/* The Content-Type to relay for the upstream's value (NULL or "": it sent
 * none).  On the list: the value as written (spaces and tabs at its ends
 * aside) when every parameter is well-formed (name=token or name="quoted",
 * RFC 9110) and the whole is at most MR_MIMETYPE_MAX bytes, else its
 * type/subtype alone.  Off the list, or not one type/subtype (garbage, a
 * comma-separated list, control bytes): MR_MIMETYPE_FALLBACK.  Never NULL:
 * a string in the arena, or a static one (also when the arena is out of
 * memory), valid as long as the arena. */
const char *mr_mimetype_relayed(struct mr_arena *a, const char *upstream);

#endif
