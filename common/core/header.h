/* header.h - HTTP request header fields: well-formed, and which ones the
 * relay never sends upstream.
 *
 * Pure string rules (RFC 9110 5.1, 5.5), in the core so that every layer
 * applies the same ones: the configuration's loader to the headers in the
 * file, the providers to what an API or a channel list hands them, and the
 * upstream module (common/net/upstream.c) to every transfer.
 */
#ifndef MR_HEADER_H
#define MR_HEADER_H

#include <stdbool.h>

/* The one filter for request headers: NULL when the header may be sent
 * upstream, else why not (a static string).  Refused: a malformed header
 * (mr_header_malformed); a header that frames the message or the
 * connection, which libcurl sets from the request itself or which belongs
 * to one hop (Host, Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive, Proxy-Connection, Upgrade, TE, Trailer, Expect,
 * HTTP2-Settings, Proxy-Authorization: no proxy is used, so that would be a
 * credential for the origin); an empty value (libcurl would take it as
 * "remove your own").  With `policy` (a header from a provider, a channel
 * list, the configuration or an API, not from the relay's own code) also
 * the ones the relay takes from the player's request: Range and the
 * conditionals.  Every transfer drops what this refuses, so no caller can
 * send it; the entry points use it too, to drop such a header at once. */
const char *mr_header_refused(const char *name, const char *value, bool policy);

/* The filter's first half: NULL when name and value make a header at all,
 * else why not: a name that is not an RFC 9110 token, a value with a
 * control byte other than HTAB (CR, LF and NUL among them), a name and
 * value longer than MR_HEADER_MAX_LINE.  What the configuration and the API
 * refuse with an error; a well-formed header the filter declines (a Host, a
 * Connection) is dropped there, as it always was. */
const char *mr_header_malformed(const char *name, const char *value);

/* The reason both give for a name that is not one (the caller then does
 * not print the name). */
extern const char mr_header_bad_name[];

#endif
