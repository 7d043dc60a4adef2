/* channels.h - IPTV channel lists in M3U: read one (channels_m3u), write one
 * (/live/channels.m3u).
 *
 * Reading understands what IPTV lists in the wild carry:
 *
 *   #EXTM3U
 *   #EXTINF:-1 tvg-id="news.us" tvg-logo="http://…/n.png" group-title="News",News HD
 *   #EXTVLCOPT:http-referrer=https://tv.example/
 *   #EXTVLCOPT:http-user-agent=Mozilla/5.0 …
 *   http://cdn.example/news/index.m3u8|Referer=https://tv.example/&User-Agent=…
 *
 * (#EXTGRP: gives a group too; Kodi-style "|Name=Value&…" values are
 * percent-decoded.)  Ids come from tvg-id when it is a valid id, else from
 * the name (lowercased, other bytes as '-'), else "chN"; an id already
 * taken gets "-2", "-3" ….  Entries whose URL is not http(s), or holds
 * spaces or control bytes, are skipped and counted; headers whose name is
 * not a token or whose value holds control bytes are dropped.  Caps: the
 * list's size (MR_M3U_MAX_BYTES), one line (MR_M3U8_MAX_LINE), the number of
 * channels (MR_M3U_MAX_CHANNELS) and headers per channel.
 */
#ifndef MR_CHANNELS_H
#define MR_CHANNELS_H

#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"

/* Parses a list into an arena array.  Ids in `taken` (n_taken channels)
 * are not given out again.  MR_EINVAL when the text is not an M3U list
 * (no #EXTM3U first), MR_ETOOBIG past a cap, MR_ENOMEM. */
int mr_channels_parse_m3u(struct mr_arena *a, const char *text, size_t len,
                          const struct mr_conf_channel *taken, size_t n_taken,
                          struct mr_conf_channel **out, size_t *n, size_t *skipped);

/* Every channel of the configuration as an M3U list whose entries point at
 * base + "/live/{id}.m3u8", with their names, groups and logos. */
int mr_channels_write_m3u(const struct mr_conf *c, const char *base, struct mr_buf *out);

/* The configuration's check (core/config.h) that reads channels_m3u: the
 * list's channels join the file's own (which win an id they share); a
 * relative path is the configuration file's directory's. */
struct mr_conf_loader;
void mr_channels_conf_import(struct mr_conf *c, struct mr_conf_loader *l);

#endif
