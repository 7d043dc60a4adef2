/* log.c - log lines to stderr or syslog. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

static char log_ident[64] = "mediarelay";
static enum mr_log_level log_min = MR_LOG_INFO;
static bool log_syslog;

void mr_log_setup(const char *ident, const char *level, const char *target)
{
    if (ident)
        snprintf(log_ident, sizeof(log_ident), "%s", ident);
    if (level) {
        if (!strcmp(level, "debug"))
            log_min = MR_LOG_DEBUG;
        else if (!strcmp(level, "warn"))
            log_min = MR_LOG_WARN;
        else if (!strcmp(level, "error"))
            log_min = MR_LOG_ERROR;
        else
            log_min = MR_LOG_INFO;
    }
    if (target) {
        bool want = !strcmp(target, "syslog");
        if (want && !log_syslog)
            openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        else if (!want && log_syslog)
            closelog();
        log_syslog = want;
    }
}

bool mr_log_enabled(enum mr_log_level level)
{
    return level >= log_min;
}

static void emit(enum mr_log_level level, const char *msg)
{
    static const char *const names[] = { "debug", "info", "warn", "error" };
    static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };

    if (log_syslog) {
        syslog(prio[level], "%s", msg);
    } else {
        char line[4096 + 128], stamp[32];
        long long ms = mr_clock_wall_ms();
        time_t sec = (time_t)(ms / 1000);
        struct tm tm;
        int n;

        gmtime_r(&sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof(line), "%s.%03lldZ %s[%d] %s: %s\n", stamp,
                     ms % 1000, log_ident, (int)getpid(), names[level], msg);
        if (n < 0)
            return;
        if ((size_t)n >= sizeof(line)) {
            n = sizeof(line) - 1;
            line[n - 1] = '\n';
        }
        /* One write() per line: lines from threads do not interleave. */
        if (write(STDERR_FILENO, line, (size_t)n) < 0)
            return;
    }
}

void mr_log(enum mr_log_level level, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    if (!mr_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    emit(level, msg);
}

void mr_log_escape(struct mr_str s, char *dst, size_t dstlen)
{
    size_t o = 0;
    if (!dstlen)
        return;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') {
            if (o + 4 >= dstlen)
                break;
            snprintf(dst + o, 5, "\\x%02x", c);
            o += 4;
        } else {
            if (o + 1 >= dstlen)
                break;
            dst[o++] = (char)c;
        }
    }
    dst[o] = '\0';
}

void mr_log_access(struct mr_str method, struct mr_str path, int status,
                   unsigned long long bytes_out, long upstream_status, double ms)
{
    char m[24], p[513], up[24];

    if (!mr_log_enabled(MR_LOG_INFO))
        return;
    mr_log_escape(method, m, sizeof(m));
    mr_log_escape(path, p, sizeof(p));
    if (upstream_status > 0)
        snprintf(up, sizeof(up), "%ld", upstream_status);
    else
        snprintf(up, sizeof(up), "-");
    mr_log(MR_LOG_INFO, "%s %s %d %lluB up=%s %.1fms", m, p, status, bytes_out, up, ms);
}
