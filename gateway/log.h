/* Logging: one key=value line per event on stderr, level checked before arguments are evaluated. */
#ifndef WSG_GATEWAY_LOG_H
#define WSG_GATEWAY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum wsg_log_level {
    WSG_LOG_DEBUG = 0,
    WSG_LOG_INFO = 1,
    WSG_LOG_WARN = 2,
    WSG_LOG_ERROR = 3,
} wsg_log_level_t;

/** The current threshold; lines below it are not formatted at all. */
extern wsg_log_level_t wsg_log_threshold;

/** When true, wsg_log_write() writes each line as one JSON object (see wsg_log_kv_to_json()) instead of
 *  key=value text. Set once by main() before any thread starts (WSGATE_LOG_FORMAT=json); default false. */
extern bool wsg_log_json;

/** Parses "debug", "info", "warn"/"warning", "error". Returns 0 or -EINVAL. */
int wsg_log_parse_level(const char *text, wsg_log_level_t *out);

/** The name of a level ("debug", ...). */
const char *wsg_log_level_name(wsg_log_level_t level);

/** Writes one line: "ts=<ISO8601 UTC ms> lvl=<level> event=<event> " followed by the formatted fields; with
 *  wsg_log_json, that text (with "level" for "lvl") converted by wsg_log_kv_to_json(), e.g.
 *  {"ts":"2026-11-23T15:32:11.617Z","level":"info","event":"conn_open","conn":3,...}.
 *  Use WSG_LOG() so that arguments are not evaluated below the threshold. */
void wsg_log_write(wsg_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define WSG_LOG(level, event, ...)                                                                       \
    do {                                                                                                 \
        if ((level) >= wsg_log_threshold)                                                                \
            wsg_log_write((level), (event), __VA_ARGS__);                                                \
    } while (0)

#define WSG_DEBUG(event, ...) WSG_LOG(WSG_LOG_DEBUG, event, __VA_ARGS__)
#define WSG_INFO(event, ...) WSG_LOG(WSG_LOG_INFO, event, __VA_ARGS__)
#define WSG_WARN(event, ...) WSG_LOG(WSG_LOG_WARN, event, __VA_ARGS__)
#define WSG_ERROR(event, ...) WSG_LOG(WSG_LOG_ERROR, event, __VA_ARGS__)

/** Writes `len` bytes of `text` into `out` (capacity `cap` >= 4) as a double-quoted log value, escaping
 *  quotes, backslashes and non-printable bytes, cut with "..." when too long. Returns `out`. */
const char *wsg_log_quote(char *out, size_t cap, const char *text, size_t len);

/** Smallest `cap` with which wsg_log_kv_to_json() writes anything. */
#define WSG_LOG_JSON_MIN_CAP 24

/** Converts one formatted `key=value` log text (`len` bytes at `kv`, not necessarily NUL-terminated) into a
 *  JSON object written into `out` (capacity `cap`, NUL-terminated, no newline). Pure: no I/O, no globals.
 *  - Tokens are separated by spaces. A token `key=value` becomes the member "key": value. A value is either
 *    bare (up to the next space) or double-quoted with the escapes wsg_log_quote() produces (\" \\ \xNN;
 *    any other backslash pair is kept as both characters); an unterminated quote runs to the end of the text
 *    (a line cut by the log buffer).
 *  - A bare value that is a decimal integer in JSON form (-?(0|[1-9][0-9]*), at most 18 digits, so it fits
 *    an int64) becomes a JSON number; every other value, and every quoted one, a JSON string.
 *  - Tokens without '=' (bare or quoted) are joined with single spaces into one "msg" member, placed where
 *    the first of them is.
 *  - Strings are JSON-escaped: '"' and '\\' with a backslash, control characters (below 0x20, and 0x7f)
 *    as \u00XX. Bytes >= 0x80 that form valid UTF-8 are passed through; each byte of an invalid sequence is
 *    written as \u00XX (the code point of the same number, as Latin-1 would read it), so the byte value
 *    stays visible and the output is always valid UTF-8.
 *  - The output is always one valid JSON object. When it does not fit, the value being written is cut at a
 *    character boundary and closed, members that do not fit at all are left out, and "truncated":true is
 *    added as the last member.
 *  Returns the length written (without the NUL); 0, with `out` set to "" when `cap` > 0, if `cap` is below
 *  WSG_LOG_JSON_MIN_CAP. Borrows `kv`. */
size_t wsg_log_kv_to_json(const char *kv, size_t len, char *out, size_t cap);

/** Rate limiter for repeated warnings: true at most once per `interval_ms` (`now_ms` from the loop). */
typedef struct wsg_log_limit {
    uint64_t last_ms;
    uint64_t suppressed;
} wsg_log_limit_t;
bool wsg_log_limit_allow(wsg_log_limit_t *limit, uint64_t now_ms, uint64_t interval_ms);

#endif
