/* handlers.h - mediarelay-segment's request handlers (segment.c; main.c
 * routes them). */
#ifndef MR_SEGMENT_HANDLERS_H
#define MR_SEGMENT_HANDLERS_H

struct mr_ctx;

int mr_hls_segment(struct mr_ctx *ctx);            /* /api/seg/{token}[.ext] */
int mr_dash_segment(struct mr_ctx *ctx);           /* /api/seg/{token}/{tail*} */

#endif
