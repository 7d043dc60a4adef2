/* log.h - leveled log lines and the one access line per request.
 *
 * Lines go to stderr (spawn-fcgi and systemd keep it) or to syslog.  Every
 * value that came from a request is escaped before it is written.
 */
#ifndef MR_LOG_H
#define MR_LOG_H

#include <stdbool.h>

#include "core/str.h"

enum mr_log_level { MR_LOG_DEBUG, MR_LOG_INFO, MR_LOG_WARN, MR_LOG_ERROR };

/* Sets the program name, minimum level ("info") and target ("stderr" or
 * "syslog").  Safe to call again; not thread-safe against concurrent logs. */
void mr_log_setup(const char *ident, const char *level, const char *target);
bool mr_log_enabled(enum mr_log_level level);
void mr_log(enum mr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define mr_debug(...) mr_log(MR_LOG_DEBUG, __VA_ARGS__)
#define mr_info(...)  mr_log(MR_LOG_INFO, __VA_ARGS__)
#define mr_warn(...)  mr_log(MR_LOG_WARN, __VA_ARGS__)
#define mr_error(...) mr_log(MR_LOG_ERROR, __VA_ARGS__)

/* The access line: "GET /api/health 200 67B up=- 0.4ms".  The path is
 * escaped (non-printable bytes as \xNN) and cut at 512 bytes; upstream
 * status 0 prints as "-". */
void mr_log_access(struct mr_str method, struct mr_str path, int status,
                   unsigned long long bytes_out, long upstream_status, double ms);

/* Escapes s into dst (always NUL-terminated); for log lines. */
void mr_log_escape(struct mr_str s, char *dst, size_t dstlen);

#endif
