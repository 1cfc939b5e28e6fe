/* key=value logging to stderr, one write per line so that concurrent workers do not interleave lines. */
#include "log.h"
#include "str.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

wsg_log_level_t wsg_log_threshold = WSG_LOG_INFO;
bool wsg_log_json = false;

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
    /* JSON lines are converted from the same text, so both formats carry the same fields; the JSON name of
     * the level is "level". */
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (long)(tv.tv_usec / 1000), wsg_log_json ? "level" : "lvl", wsg_log_level_name(level),
                     event);
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
    if (wsg_log_json) {
        char json[4096];
        size_t jlen = wsg_log_kv_to_json(line, used, json, sizeof json - 1);
        json[jlen++] = '\n';
        ssize_t ignored = write(STDERR_FILENO, json, jlen);
        (void)ignored;
        return;
    }
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored; /* nowhere to report a failing stderr */
}

/* ---- key=value text to JSON ------------------------------------------------------------------------- */

/* One token of the key=value text: `key` (has_key) and the raw value, without its quotes when quoted. */
typedef struct kv_token {
    bool has_key;
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
    bool is_quoted;
} kv_token_t;

/* Scans a quoted text starting after its opening quote; returns the length up to the closing quote (or to
 * the end when there is none) and sets *closed. */
static size_t scan_quoted(const char *p, size_t len, bool *closed)
{
    size_t i = 0;
    while (i < len) {
        if (p[i] == '\\')
            i += 2;
        else if (p[i] == '"')
            break;
        else
            i++;
    }
    if (i > len)
        i = len; /* a trailing lone backslash */
    *closed = i < len;
    return i;
}

/* The token at kv[*pos..len), skipping spaces; false at the end. */
static bool next_token(const char *kv, size_t len, size_t *pos, kv_token_t *t)
{
    size_t i = *pos;
    while (i < len && kv[i] == ' ')
        i++;
    if (i >= len) {
        *pos = len;
        return false;
    }
    *t = (kv_token_t){0};
    bool closed;
    if (kv[i] == '"') { /* a quoted token without a key */
        t->val = kv + i + 1;
        t->val_len = scan_quoted(t->val, len - i - 1, &closed);
        t->is_quoted = true;
        *pos = i + 1 + t->val_len + (closed ? 1 : 0);
        return true;
    }
    size_t k = i;
    while (k < len && kv[k] != ' ' && kv[k] != '=')
        k++;
    if (k >= len || kv[k] == ' ') { /* a bare token without a key */
        t->val = kv + i;
        t->val_len = k - i;
        *pos = k;
        return true;
    }
    t->has_key = true;
    t->key = kv + i;
    t->key_len = k - i;
    size_t v = k + 1;
    if (v < len && kv[v] == '"') {
        t->val = kv + v + 1;
        t->val_len = scan_quoted(t->val, len - v - 1, &closed);
        t->is_quoted = true;
        *pos = v + 1 + t->val_len + (closed ? 1 : 0);
        return true;
    }
    size_t e = v;
    while (e < len && kv[e] != ' ')
        e++;
    t->val = kv + v;
    t->val_len = e - v;
    *pos = e;
    return true;
}

/* The next byte of a value, undoing wsg_log_quote()'s escapes when quoted; advances *i (< len on entry). */
static unsigned char decode_byte(const char *p, size_t len, size_t *i, bool is_quoted)
{
    unsigned char c = (unsigned char)p[*i];
    if (!is_quoted || c != '\\' || *i + 1 >= len) {
        (*i)++;
        return c;
    }
    char e = p[*i + 1];
    if (e == '"' || e == '\\') {
        *i += 2;
        return (unsigned char)e;
    }
    if (e == 'x' && *i + 3 < len && wsg_hex_value(p[*i + 2]) >= 0 && wsg_hex_value(p[*i + 3]) >= 0) {
        unsigned char b = (unsigned char)(wsg_hex_value(p[*i + 2]) * 16 + wsg_hex_value(p[*i + 3]));
        *i += 4;
        return b;
    }
    (*i)++; /* an unknown or cut escape: keep the backslash, the next byte follows as itself */
    return c;
}

/* Bytes kept free at the end of `out`: the closing brace and the NUL, and when cut, the marker before
 * them. */
#define JSON_RESERVE_WHOLE 2
#define JSON_RESERVE_CUT (sizeof ",\"truncated\":true}" - 1 + 1)

typedef struct json_writer {
    char *out;
    size_t len;
    size_t limit; /* units may be written up to here; the reserve follows */
    size_t members;
    bool is_in_string; /* a string value is open: its closing quote needs room too */
    bool is_truncated;
} json_writer_t;

/* Appends `n` bytes when they fit below the limit; false (and is_truncated) otherwise. */
static bool put_unit(json_writer_t *w, const void *p, size_t n)
{
    if (w->is_truncated || w->len + n + (w->is_in_string ? 1 : 0) > w->limit) {
        w->is_truncated = true;
        return false;
    }
    memcpy(w->out + w->len, p, n);
    w->len += n;
    return true;
}

/* Writes the bytes of a value as JSON string content (no quotes); stops at the first unit that does not
 * fit. Returns false when cut. */
static bool put_string_body(json_writer_t *w, const char *p, size_t len, bool is_quoted)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = decode_byte(p, len, &i, is_quoted);
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            if (!put_unit(w, esc, 2))
                return false;
            continue;
        }
        if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            if (!put_unit(w, esc, 6))
                return false;
            continue;
        }
        if (c < 0x80) {
            if (!put_unit(w, &c, 1))
                return false;
            continue;
        }
        /* A UTF-8 sequence goes out whole or not at all; an invalid lead or continuation byte is escaped
         * alone and decoding resumes right after it. */
        size_t need = c >= 0xc2 && c <= 0xdf   ? 2
                      : c >= 0xe0 && c <= 0xef ? 3
                      : c >= 0xf0 && c <= 0xf4 ? 4
                                               : 0;
        uint8_t seq[4] = {c};
        size_t got = 1, j = i;
        while (need > 0 && got < need && j < len)
            seq[got++] = decode_byte(p, len, &j, is_quoted);
        if (need > 0 && got == need && wsg_utf8_is_valid(seq, need)) {
            if (!put_unit(w, seq, need))
                return false;
            i = j;
            continue;
        }
        snprintf(esc, sizeof esc, "\\u%04x", c);
        if (!put_unit(w, esc, 6))
            return false;
    }
    return true;
}

/* Writes the opening quote of a string value when it and the closing quote fit. */
static bool open_string(json_writer_t *w)
{
    w->is_in_string = true;
    if (!put_unit(w, "\"", 1)) {
        w->is_in_string = false;
        return false;
    }
    return true;
}

/* Writes the closing quote, for which open_string() kept room. */
static void close_string(json_writer_t *w)
{
    w->is_in_string = false;
    w->out[w->len++] = '"';
}

/* Starts a member: ",\"key\":". Rolls back and returns false when it does not fit whole. */
static bool put_member_key(json_writer_t *w, const char *key, size_t key_len, size_t *mark)
{
    *mark = w->len;
    bool ok = (w->members == 0 || put_unit(w, ",", 1)) && put_unit(w, "\"", 1) &&
              put_string_body(w, key, key_len, false) && put_unit(w, "\":", 2);
    if (!ok) {
        w->len = *mark;
        w->is_truncated = true;
    }
    return ok;
}

/* True when the bare value is a JSON integer of at most 18 digits. */
static bool is_json_int(const char *p, size_t len)
{
    size_t i = 0;
    if (i < len && p[i] == '-')
        i++;
    size_t digits = len - i;
    if (digits == 0 || digits > 18 || (p[i] == '0' && digits > 1))
        return false;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
    }
    return true;
}

/* One conversion keeping `reserve` bytes free for the brace, the NUL and, when cut, the marker. */
static size_t convert(const char *kv, size_t len, char *out, size_t cap, size_t reserve, bool *is_truncated)
{
    json_writer_t w = {.out = out, .len = 0, .limit = cap - reserve};
    out[w.len++] = '{';
    bool has_msg = false;
    size_t pos = 0;
    kv_token_t t;
    while (!w.is_truncated && next_token(kv, len, &pos, &t)) {
        size_t mark;
        if (!t.has_key) {
            if (has_msg)
                continue;
            has_msg = true;
            /* Every token without a key, from this one on, goes into one "msg" member. */
            if (!put_member_key(&w, "msg", 3, &mark) || !open_string(&w)) {
                w.len = mark;
                break;
            }
            w.members++;
            size_t p2 = pos, parts = 0;
            kv_token_t u = t;
            do {
                if (u.has_key)
                    continue;
                if (parts++ > 0 && !put_unit(&w, " ", 1))
                    break;
                if (!put_string_body(&w, u.val, u.val_len, u.is_quoted))
                    break;
            } while (next_token(kv, len, &p2, &u));
            close_string(&w);
            continue;
        }
        if (!put_member_key(&w, t.key, t.key_len, &mark))
            break;
        if (!t.is_quoted && is_json_int(t.val, t.val_len)) {
            if (!put_unit(&w, t.val, t.val_len)) {
                w.len = mark;
                break;
            }
            w.members++;
            continue;
        }
        if (!open_string(&w)) {
            w.len = mark;
            break;
        }
        w.members++;
        put_string_body(&w, t.val, t.val_len, t.is_quoted);
        close_string(&w);
    }
    *is_truncated = w.is_truncated;
    if (w.is_truncated && reserve < JSON_RESERVE_CUT)
        return 0; /* no room for the marker: the caller tries again with it */
    if (w.is_truncated) {
        const char *tail = w.members > 0 ? ",\"truncated\":true" : "\"truncated\":true";
        size_t n = strlen(tail);
        memcpy(out + w.len, tail, n);
        w.len += n;
    }
    out[w.len++] = '}';
    out[w.len] = '\0';
    return w.len;
}

size_t wsg_log_kv_to_json(const char *kv, size_t len, char *out, size_t cap)
{
    if (cap < WSG_LOG_JSON_MIN_CAP) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    /* First with room for the brace and NUL only, so that whatever fits is whole; when it
     * does not fit, again with room for the truncation marker. */
    bool is_truncated;
    size_t n = convert(kv, len, out, cap, JSON_RESERVE_WHOLE, &is_truncated);
    if (is_truncated)
        n = convert(kv, len, out, cap, JSON_RESERVE_CUT, &is_truncated);
    return n;
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
