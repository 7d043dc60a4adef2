/* limits.h - every named size limit of the parsers and buffers, in one place. */
#ifndef MR_LIMITS_H
#define MR_LIMITS_H

#define MR_CONF_MAX_BYTES        (4u << 20)  /* configuration file */
#define MR_CONF_MAX_DEPTH        16          /* nesting of the configuration JSON */
#define MR_CONF_KEY_MIN          32          /* characters of secret, admin_token, metrics_token */
#define MR_REQ_MAX_PATH          8192        /* request path (before '?') */
#define MR_REQ_MAX_QUERY         16384       /* query string */
#define MR_REQ_MAX_HEADERS       64          /* request headers kept */
#define MR_REQ_MAX_COOKIES       64          /* cookies parsed */
#define MR_RESP_MAX_HEADERS      64          /* response headers */
#define MR_ROUTE_MAX_CAPTURES    4           /* {id}, {token}, ... per pattern */
#define MR_MEDIA_ID_MAX          64          /* media and channel ids */
#define MR_MEDIA_JSON_MAX        (64u << 10) /* one media item in Redis */
#define MR_STORE_KEY_MAX         512         /* a Redis key, prefix included */
#define MR_TOKEN_MAX_PAYLOAD     4113        /* a decoded token: head (18), expiry (8)
                                                and up to 4087 bytes of data */
#define MR_URL_MAX               8192        /* one URL */
#define MR_UPSTREAM_HEADERS_MAX  64          /* upstream response headers kept */
#define MR_HEADER_MAX_LINE       8192        /* one upstream header line */
#define MR_M3U8_MAX_BYTES        (8u << 20)  /* a playlist, by default (hls.max_playlist_bytes) */
#define MR_M3U8_MAX_LINE         (64u << 10) /* one playlist line */
#define MR_M3U8_MAX_VARS         64          /* EXT-X-DEFINE variables */
#define MR_M3U8_MAX_VAR_VALUE    4096        /* one variable's value */
#define MR_M3U8_MAX_VARIANTS     64          /* playlists of a master that a position
                                                hint (?v=K) can name: variants,
                                                renditions, I-frame playlists */
#define MR_M3U8_MAX_SEQUENCE     999999999999999LL /* the largest EXT-X-MEDIA-SEQUENCE
                                                read (15 digits; more are not read) */
#define MR_M3U8_MAX_CONF_BYTES   (64u << 20) /* the most hls.max_playlist_bytes may be */
#define MR_M3U8_MAX_MSN          (MR_M3U8_MAX_SEQUENCE + MR_M3U8_MAX_CONF_BYTES / 2)
                                             /* the largest media sequence number a
                                                playlist can give a segment: its
                                                sequence plus one per URI line */
#define MR_M3U_MAX_BYTES         (16u << 20) /* an M3U channel list (channels_m3u) */
#define MR_M3U_MAX_CHANNELS      100000      /* channels in it */
#define MR_ARENA_BLOCK           16384       /* first arena block per request */
#define MR_MPD_MAX_BYTES         (4u << 20)  /* a DASH manifest (conf may lower it) */
#define MR_MPD_MAX_DEPTH         64          /* element nesting of an MPD */
#define MR_MPD_MAX_NODES         200000      /* elements of an MPD */

#endif
