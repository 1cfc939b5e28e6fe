/* The stream reader of one event loop: a Redis connection of its own that reads every stream the loop's
 * clients follow with one blocking XREAD, from the last id it handed out, re-issued after each batch. A new
 * stream interrupts the block (CLIENT UNBLOCK, sent on the command link); after a loss the read resumes from
 * the last id handed out, so nothing the streams still hold is skipped. Which streams are wanted belongs to
 * the caller; this module keeps only each stream's last id. */
#ifndef WSG_REDIS_STREAM_READER_H
#define WSG_REDIS_STREAM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "link.h"
#include "stream_id.h"

typedef struct wsg_redis_streams wsg_redis_streams_t;

/** The field of a stream entry that carries a message. */
#define WSG_STREAM_FIELD "payload"

/** Events; all are called from the loop, never synchronously from a wsg_redis_streams_* call. */
typedef struct wsg_redis_streams_handler {
    void (*on_ready)(void *arg);
    void (*on_down)(void *arg, const char *why, uint64_t retry_ms);
    /** The next entry of stream `key` (`key_len` bytes, NUL-terminated), in order: `payload` is its
     *  WSG_STREAM_FIELD value, or NULL when the entry has none. All borrowed for the call. */
    void (*on_entry)(void *arg, const char *key, size_t key_len, wsg_stream_id_t id, const uint8_t *payload,
                     size_t len);
    /** The entries of one XREAD reply have all been reported. Returns how long (ms) the next XREAD waits: 0
     *  at once; more while the readers of the entries cannot keep up (the entries wait in Redis). */
    uint64_t (*on_batch_done)(void *arg);
    /** When that wait is over: how much longer (ms) the next XREAD waits, 0 to read now. */
    uint64_t (*read_hold_ms)(void *arg);
    /** Redis refused the XREAD; it is tried again in a second (after on_wrong_type, at once). */
    void (*on_error)(void *arg, const char *err);
    /** `key` (borrowed for the call) holds `type`, not a stream: it is no longer followed, so that the others
     *  are read on. Found by asking each key's TYPE when XREAD answers WRONGTYPE. */
    void (*on_wrong_type)(void *arg, const char *key, size_t key_len, const char *type);
} wsg_redis_streams_handler_t;

/** Allocates the reader and starts connecting. `cmd` (borrowed, open while this is) carries CLIENT UNBLOCK.
 *  `block_ms` is the longest a read waits (0 = 5000); a read that has not returned `block_ms` + the connect
 *  timeout after it was sent resets the connection. Borrows `loop`, `handler`, `arg`; copies `addr`, `opts`.
 *  NULL when out of memory. */
wsg_redis_streams_t *wsg_redis_streams_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                           const wsg_redis_link_options_t *opts, wsg_redis_cmd_t *cmd,
                                           uint64_t block_ms, const wsg_redis_streams_handler_t *handler,
                                           void *arg);

struct wsg_redis_cluster;

/** The reader for Redis Cluster (`cluster` borrowed, open until this is closed): a blocking XREAD may only
 * name keys of one slot, so it polls instead, one non-blocking XREAD per slot in use on its master, at once
 * after a poll that found entries, else after `poll_ms` (0 = 20), doubled after each empty poll up to 8 times
 * that. on_ready/on_down report whether the last poll reached every master. */
wsg_redis_streams_t *wsg_redis_streams_new_cluster(uv_loop_t *loop, struct wsg_redis_cluster *cluster,
                                                   uint64_t poll_ms,
                                                   const wsg_redis_streams_handler_t *handler, void *arg);

/** Follows stream `key` (copied) from after `after`: its later entries are reported. Returns 0, -EEXIST when
 *  followed already, or -ENOMEM. */
int wsg_redis_streams_add(wsg_redis_streams_t *reader, const char *key, size_t len, wsg_stream_id_t after);

/** Stops following `key`; entries of it already on their way are not reported. */
void wsg_redis_streams_remove(wsg_redis_streams_t *reader, const char *key, size_t len);

/** The last id reported for `key` (or the one it was added with); false when `key` is not followed. */
bool wsg_redis_streams_last(const wsg_redis_streams_t *reader, const char *key, size_t len,
                            wsg_stream_id_t *out);

/** Streams followed. */
size_t wsg_redis_streams_count(const wsg_redis_streams_t *reader);

/** True between on_ready and on_down. */
bool wsg_redis_streams_is_ready(const wsg_redis_streams_t *reader);

/** Drops the connection and reconnects (see wsg_redis_link_reset), e.g. when the sentinels name a new master:
 *  reading goes on from the last id reported. */
void wsg_redis_streams_reset(wsg_redis_streams_t *reader, const char *why);

/** Disconnects and frees the reader; `cb` runs when done. No handler event follows. */
void wsg_redis_streams_close(wsg_redis_streams_t *reader, void (*cb)(void *cb_arg), void *cb_arg);

#endif
