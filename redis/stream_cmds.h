/* The stream commands of the command link, with typed replies: the last entry (XREVRANGE + - COUNT 1), a page
 * of entries after an id (XRANGE with an exclusive start), what a stream has kept and lost (XINFO STREAM),
 * and adding an entry (XADD MAXLEN ~). A message is the WSG_STREAM_FIELD value of an entry. */
#ifndef WSG_REDIS_STREAM_CMDS_H
#define WSG_REDIS_STREAM_CMDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands.h"
#include "stream_id.h"

struct redisReply;

/** One entry of a reply, borrowed for the callback. `payload` NULL: the entry has no WSG_STREAM_FIELD. */
typedef struct wsg_stream_entry {
    wsg_stream_id_t id;
    const uint8_t *payload;
    size_t len;
} wsg_stream_entry_t;

/** What XINFO STREAM tells about a stream. */
typedef struct wsg_stream_info {
    bool exists;                 /**< false: no such key (every other field 0) */
    bool has_removals;           /**< entries were trimmed or deleted (entries-added > length) */
    uint64_t length;             /**< entries kept */
    wsg_stream_id_t first_id;    /**< the oldest entry kept (0-0 when empty) */
    wsg_stream_id_t max_deleted; /**< the newest entry removed by XDEL (0-0: none) */
} wsg_stream_info_t;

/** `status` 0 with `n` entries (oldest first), -EIO with `err` (Redis's text, e.g. WRONGTYPE), or another
 *  negative errno (-ECANCELED: the link closed). */
typedef void (*wsg_stream_entries_cb)(void *arg, int status, const char *err,
                                      const wsg_stream_entry_t *entries, size_t n);
typedef void (*wsg_stream_info_cb)(void *arg, int status, const char *err, const wsg_stream_info_t *info);
/** `status` 0 with the new entry's `id`; -ECONNRESET when the connection was lost before the reply (the entry
 *  may or may not have been added: it is not sent again, so it is never added twice). */
typedef void (*wsg_stream_added_cb)(void *arg, int status, const char *err, wsg_stream_id_t id);

/** Parses one entry of an XRANGE/XREAD reply ([id, [field, value, ...]]); false when it is not one. */
bool wsg_stream_entry_parse(const struct redisReply *reply, wsg_stream_entry_t *out);

/** The newest entry of `key` (0 or 1 entries). Each call below returns 0 or a negative errno as
 *  wsg_redis_cmd_argv, and its callback runs once, never synchronously. Borrows the bytes. */
int wsg_redis_stream_last(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_entries_cb cb,
                          void *arg);

/** At most `count` entries of `key` after `after`, oldest first. */
int wsg_redis_stream_range(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_id_t after,
                           uint32_t count, wsg_stream_entries_cb cb, void *arg);

int wsg_redis_stream_info(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_info_cb cb,
                          void *arg);

/** XADD `key` [MAXLEN ~ `maxlen`] * WSG_STREAM_FIELD `payload` (`maxlen` 0: no trimming). */
int wsg_redis_stream_add(wsg_redis_cmd_t *cmd, const char *key, size_t len, uint64_t maxlen,
                         const void *payload, size_t payload_len, wsg_stream_added_cb cb, void *arg);

#endif
