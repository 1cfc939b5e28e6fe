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

/** Parses "debug", "info", "warn"/"warning", "error". Returns 0 or -EINVAL. */
int wsg_log_parse_level(const char *text, wsg_log_level_t *out);

/** The name of a level ("debug", ...). */
const char *wsg_log_level_name(wsg_log_level_t level);

/** Writes one line: "ts=<ISO8601 UTC ms> lvl=<level> event=<event> " followed by the formatted fields.
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

/** Rate limiter for repeated warnings: true at most once per `interval_ms` (`now_ms` from the loop). */
typedef struct wsg_log_limit {
    uint64_t last_ms;
    uint64_t suppressed;
} wsg_log_limit_t;
bool wsg_log_limit_allow(wsg_log_limit_t *limit, uint64_t now_ms, uint64_t interval_ms);

#endif
