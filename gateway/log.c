/* The log renderer (logfmt or JSON from typed fields) and the writer: one write(2) per line, so that the
 * lines of concurrent workers never interleave. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "utf8.h"

wsg_log_level_t wsg_log_threshold = WSG_LOG_INFO;
bool wsg_log_json = false;

/* The longest line; what does not fit is left out and the line says so. */
#define LINE_MAX_BYTES 4096
/* Room kept at the end of every line for the marker of a cut line and the newline. */
#define TAIL_ROOM 24
/* Worst case of one escaped value: every byte as \u00XX, plus quotes and the "..." of a cut value. */
#define VALUE_ROOM (WSG_LOG_VALUE_MAX * 6 + 16)

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

/* ---- values --------------------------------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t cap, len;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (n > b->cap - b->len)
        n = b->cap - b->len; /* callers size their buffers; this only guards them */
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf_t *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The length of the valid UTF-8 sequence that starts at p (at most `left` bytes), or 0 when there is none. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc0 ? 2 : 0;
    return n != 0 && n <= left && wsg_utf8_is_valid(p, n) ? n : 0;
}

static bool is_bare_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("-._:/@,+*#%()[]!?~^&|<>;", c) != NULL);
}

/* Writes the value `s` (`n` bytes; cut to WSG_LOG_VALUE_MAX) into `b`: logfmt bare or quoted, or a JSON
 * string. */
static void put_string(buf_t *b, const char *s, size_t n, bool is_json)
{
    bool is_cut = n > WSG_LOG_VALUE_MAX;
    if (is_cut)
        n = wsg_utf8_cut((const uint8_t *)s, n, WSG_LOG_VALUE_MAX);
    bool is_bare = !is_json && !is_cut && n > 0;
    for (size_t i = 0; is_bare && i < n; i++)
        is_bare = is_bare_byte((unsigned char)s[i]);
    if (is_bare) {
        put(b, s, n);
        return;
    }
    put(b, "\"", 1);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(b, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            put(b, esc, 2);
        } else if (c >= 0x20 && c < 0x7f) {
            put(b, (const char *)&c, 1);
        } else if (c >= 0x80 && utf8_seq(u + i, n - i) > 0) {
            size_t seq = utf8_seq(u + i, n - i);
            put(b, (const char *)u + i, seq);
            i += seq;
            continue;
        } else { /* a control byte, DEL, or a byte that is not valid UTF-8 */
            snprintf(esc, sizeof esc, is_json ? "\\u%04x" : "\\x%02x", c);
            puts_(b, esc);
        }
        i++;
    }
    if (is_cut)
        put(b, "...", 3);
    put(b, "\"", 1);
}

/* Renders the value of `f` into `b`. */
static void put_value(buf_t *b, const wsg_log_field_t *f, bool is_json)
{
    char num[32];
    switch (f->type) {
    case WSG_LOG_INT:
        snprintf(num, sizeof num, "%lld", (long long)f->v.i);
        puts_(b, num);
        return;
    case WSG_LOG_UINT:
        snprintf(num, sizeof num, "%llu", (unsigned long long)f->v.u);
        puts_(b, num);
        return;
    case WSG_LOG_CHANNEL: {
        char redacted[WSG_LOG_VALUE_MAX + 8];
        size_t n =
            wsg_channel_redact(f->v.str ? f->v.str : "", f->v.str ? f->len : 0, redacted, sizeof redacted);
        put_string(b, redacted, n, is_json);
        return;
    }
    default:
        if (f->v.str == NULL)
            put_string(b, "-", 1, is_json);
        else
            put_string(b, f->v.str, f->len == SIZE_MAX ? strlen(f->v.str) : f->len, is_json);
        return;
    }
}

/* A key the code may use: [a-z0-9_]+, not one the line itself writes, and not written yet. */
static bool is_usable_key(const wsg_log_field_t *fields, size_t index)
{
    const char *key = fields[index].key;
    if (key == NULL || key[0] == '\0')
        return false;
    for (const char *c = key; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    static const char *const reserved[] = {"ts", "lvl", "level", "event", "truncated"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(key, reserved[i]) == 0)
            return false;
    for (size_t i = 0; i < index; i++)
        if (fields[i].key != NULL && strcmp(fields[i].key, key) == 0)
            return false;
    return true;
}

/* ---- lines ------------------------------------------------------------------------------------------ */

size_t wsg_log_render(char *out, size_t cap, bool is_json, uint64_t unix_ms, wsg_log_level_t level,
                      const char *event, const wsg_log_field_t *fields, size_t n)
{
    if (cap < WSG_LOG_LINE_MIN)
        return 0;
    buf_t line = {out, cap - 1 - TAIL_ROOM, 0}; /* the NUL and the tail are always left free */
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char ts[64];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(unix_ms % 1000));
    const char *level_name = wsg_log_level_name(level);
    puts_(&line, is_json ? "{\"ts\":\"" : "ts=");
    puts_(&line, ts);
    puts_(&line, is_json ? "\",\"level\":\"" : " lvl=");
    puts_(&line, level_name);
    puts_(&line, is_json ? "\",\"event\":" : " event=");
    size_t event_len = strlen(event);
    put_string(&line, event, event_len < 64 ? event_len : 64, is_json); /* a name from the code: short */
    bool is_truncated = false;
    char value_buf[VALUE_ROOM + 64];
    for (size_t i = 0; i < n && !is_truncated; i++) {
        if (!is_usable_key(fields, i))
            continue;
        /* Each field is rendered aside first: it goes in whole or not at all. */
        buf_t field = {value_buf, sizeof value_buf, 0};
        puts_(&field, is_json ? ",\"" : " ");
        puts_(&field, fields[i].key);
        puts_(&field, is_json ? "\":" : "=");
        put_value(&field, &fields[i], is_json);
        if (field.len > line.cap - line.len)
            is_truncated = true;
        else
            put(&line, field.p, field.len);
    }
    line.cap += TAIL_ROOM; /* the tail, reserved all along */
    if (is_truncated)
        puts_(&line, is_json ? ",\"truncated\":true" : " truncated=true");
    if (is_json)
        puts_(&line, "}");
    puts_(&line, "\n");
    out[line.len] = '\0';
    return line.len;
}

void wsg_log_emit(wsg_log_level_t level, const char *event, const wsg_log_field_t *fields, size_t n)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char line[LINE_MAX_BYTES];
    uint64_t unix_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
    size_t len = wsg_log_render(line, sizeof line, wsg_log_json, unix_ms, level, event, fields, n);
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored; /* nowhere to report a failing stderr */
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
