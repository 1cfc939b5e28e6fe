/* key=value logging to stderr, one write per line so that concurrent workers do not interleave lines. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

wsg_log_level_t wsg_log_threshold = WSG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int wsg_log_parse_level(const char *text, wsg_log_level_t *out)
{
    if (strcasecmp(text, "warning") == 0) {
        *out = WSG_LOG_WARN;
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *out = (wsg_log_level_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *wsg_log_level_name(wsg_log_level_t level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

void wsg_log_write(wsg_log_level_t level, const char *event, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ lvl=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), wsg_log_level_name(level), event);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt != NULL && fmt[0] != '\0' && used < sizeof line - 2) {
        line[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
        va_end(ap);
        if (m > 0)
            used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    }
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored; /* nowhere to report a failing stderr */
}

const char *wsg_log_quote(char *out, size_t cap, const char *text, size_t len)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        char esc[5];
        size_t elen;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            elen = 4;
        } else {
            esc[0] = (char)c;
            elen = 1;
        }
        if (o + elen + 5 > cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, esc, elen);
        o += elen;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

bool wsg_log_limit_allow(wsg_log_limit_t *limit, uint64_t now_ms, uint64_t interval_ms)
{
    if (limit->last_ms != 0 && now_ms - limit->last_ms < interval_ms) {
        limit->suppressed++;
        return false;
    }
    limit->last_ms = now_ms ? now_ms : 1;
    return true;
}
