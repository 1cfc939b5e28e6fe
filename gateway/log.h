/* Logging: one event per line on stderr, built from typed fields and rendered once, as logfmt or as JSON. The
 * keys come from the code; every value that came from outside is quoted and escaped by the renderer, so no
 * input can add a field or end a line. The level is checked before the fields are evaluated. */
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

/** The current threshold; lines below it are not built at all. */
extern wsg_log_level_t wsg_log_threshold;

/** When true, lines are JSON objects instead of logfmt. Set once by main() before any thread starts
 *  (WSGATE_LOG_FORMAT=json); default false. */
extern bool wsg_log_json;

/** Parses "debug", "info", "warn"/"warning", "error". Returns 0 or -EINVAL. */
int wsg_log_parse_level(const char *text, wsg_log_level_t *out);

/** The name of a level ("debug", ...). */
const char *wsg_log_level_name(wsg_log_level_t level);

typedef enum wsg_log_type {
    WSG_LOG_STR, /**< bytes (`len`, or NUL-terminated when `len` is SIZE_MAX; NULL renders "-") */
    WSG_LOG_INT,
    WSG_LOG_UINT,
    WSG_LOG_CHANNEL, /**< a channel name, with session keys redacted (wsg_channel_redact) */
} wsg_log_type_t;

/** One field of an event: a key from the code ([a-z0-9_], not "ts", "lvl", "level" or "event") and a value.
 */
typedef struct wsg_log_field {
    const char *key;
    uint8_t type;
    size_t len;
    union {
        const char *str;
        int64_t i;
        uint64_t u;
    } v;
} wsg_log_field_t;

#define WSG_F_STR(k, s) ((wsg_log_field_t){.key = (k), .type = WSG_LOG_STR, .len = SIZE_MAX, .v.str = (s)})
#define WSG_F_BYTES(k, p, n)                                                                                 \
    ((wsg_log_field_t){.key = (k), .type = WSG_LOG_STR, .len = (n), .v.str = (const char *)(p)})
#define WSG_F_INT(k, x) ((wsg_log_field_t){.key = (k), .type = WSG_LOG_INT, .v.i = (int64_t)(x)})
#define WSG_F_UINT(k, x) ((wsg_log_field_t){.key = (k), .type = WSG_LOG_UINT, .v.u = (uint64_t)(x)})
#define WSG_F_CHANNEL(k, name, n)                                                                            \
    ((wsg_log_field_t){.key = (k), .type = WSG_LOG_CHANNEL, .len = (n), .v.str = (name)})

/** Longest value written (in bytes of input); a longer one is cut at a UTF-8 boundary and ends in "...". */
#define WSG_LOG_VALUE_MAX 512

/** Smallest buffer wsg_log_render writes into: room for the timestamp, level and event of any line. */
#define WSG_LOG_LINE_MIN 256

/** Renders one line, newline included, into `out` (capacity `cap` >= WSG_LOG_LINE_MIN), NUL-terminated:
 *  logfmt: `ts=2026-11-30T15:32:11.617Z lvl=info event=conn_open conn=3 why="a b"`. A string value is bare
 * when it is not empty and every byte is a letter, a digit or one of -._:/@,+*#%()[]!?~^&|<>; ; otherwise it
 * is quoted, with \" \\ \n \r \t and \xNN for other control bytes and for bytes that are not valid UTF-8.
 *  JSON: {"ts":"...","level":"info","event":"...","conn":3,"why":"a b"}: numbers for numeric fields, strings
 *  escaped (\u00XX for control bytes, and for bytes that are not valid UTF-8 as Latin-1 reads them).
 *  Fields whose key is not [a-z0-9_]+, is reserved, or was written already are left out (each key once). When
 *  the line does not fit, the fields that do not fit are left out and `truncated=true` ends it.
 *  `unix_ms` is the timestamp. Pure: no I/O, no clock. Returns the length (without the NUL); 0, writing
 *  nothing, when `cap` is below WSG_LOG_LINE_MIN. */
size_t wsg_log_render(char *out, size_t cap, bool is_json, uint64_t unix_ms, wsg_log_level_t level,
                      const char *event, const wsg_log_field_t *fields, size_t n);

/** Renders the event with the current time in the current format and writes it to stderr in one write(2).
 *  Use the WSG_LOG() macros, so that nothing is evaluated below the threshold. */
void wsg_log_emit(wsg_log_level_t level, const char *event, const wsg_log_field_t *fields, size_t n);

#define WSG_LOG(level, event, ...)                                                                           \
    do {                                                                                                     \
        if ((level) >= wsg_log_threshold) {                                                                  \
            const wsg_log_field_t wsg_log_fields_[] = {__VA_ARGS__};                                         \
            wsg_log_emit((level), (event), wsg_log_fields_,                                                  \
                         sizeof wsg_log_fields_ / sizeof wsg_log_fields_[0]);                                \
        }                                                                                                    \
    } while (0)

#define WSG_DEBUG(event, ...) WSG_LOG(WSG_LOG_DEBUG, event, __VA_ARGS__)
#define WSG_INFO(event, ...) WSG_LOG(WSG_LOG_INFO, event, __VA_ARGS__)
#define WSG_WARN(event, ...) WSG_LOG(WSG_LOG_WARN, event, __VA_ARGS__)
#define WSG_ERROR(event, ...) WSG_LOG(WSG_LOG_ERROR, event, __VA_ARGS__)

/** Rate limiter for repeated warnings: true at most once per `interval_ms` (`now_ms` from the loop). */
typedef struct wsg_log_limit {
    uint64_t last_ms;
    uint64_t suppressed;
} wsg_log_limit_t;
bool wsg_log_limit_allow(wsg_log_limit_t *limit, uint64_t now_ms, uint64_t interval_ms);

#endif
