/* expiry.h - when a signed link stops working, read from the link itself.
 *
 * CDNs and storage services put the expiry in the query: Bilibili's
 * `deadline=EPOCH`, CloudFront's and Aliyun OSS's `Expires=EPOCH`, OSS v4's
 * `x-oss-expires=SECONDS` with `x-oss-date`, S3's `X-Amz-Date=YYYYMMDDTHHMMSSZ`
 * + `X-Amz-Expires=SECONDS`, Akamai's `hdnts=…~exp=EPOCH~…` (also
 * `__token__`).  Parameter names are matched without regard to case; values
 * may be percent-encoded.  Nonsense (a time before 2001 or after 2200, a
 * negative duration, a malformed date) is ignored.
 */
#ifndef MR_EXPIRY_H
#define MR_EXPIRY_H

#include <time.h>

/* The expiry the URL states, or 0 when it states none. */
time_t mr_expiry_from_url(const char *url);

#endif
