/* The subscriber link of one event loop: a single Redis connection in pub/sub mode carrying every channel
 * that the loop's clients want. Channel bookkeeping (who wants what) belongs to the caller; this module only
 * sends SUBSCRIBE/UNSUBSCRIBE and reports confirmations and messages. */
#ifndef WSG_REDIS_SUBSCRIBER_H
#define WSG_REDIS_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "link.h"

typedef struct wsg_redis_sub wsg_redis_sub_t;

/** Events; all are called from the loop, never synchronously from a wsg_redis_sub_* call. */
typedef struct wsg_redis_sub_handler {
    /** Connected: no channel is subscribed on this connection yet; subscribe everything that is wanted. */
    void (*on_ready)(void *arg);
    /** Lost (or an attempt failed): every subscription is gone until the next on_ready. */
    void (*on_down)(void *arg, const char *why, uint64_t retry_ms);
    /** Redis confirmed SUBSCRIBE of `channel` (borrowed, NUL-terminated, `len` bytes). */
    void (*on_subscribed)(void *arg, const char *channel, size_t len);
    /** Redis confirmed UNSUBSCRIBE of `channel`. */
    void (*on_unsubscribed)(void *arg, const char *channel, size_t len);
    /** A message arrived on `channel` (`channel_len` bytes, NUL-terminated) with `len` bytes of `payload`;
     *  both borrowed for the call. */
    void (*on_message)(void *arg, const char *channel, size_t channel_len, const uint8_t *payload,
                       size_t len);
    /** The events of one read from Redis have all been reported (messages may be acted on as a batch). */
    void (*on_read_done)(void *arg);
    /** Optional: asked after a read whether the next should wait, because what was read cannot be passed on
     *  fast enough; returns ms to wait before asking again (messages wait in Redis meanwhile), 0 to read on.
     */
    uint64_t (*read_hold_ms)(void *arg);
    /** Sharded mode: the subscription of `channel` is gone (its master was lost, or its slot moved); the
     *  caller subscribes it again, and it goes to the slot's current owner. */
    void (*on_channel_lost)(void *arg, const char *channel, size_t len);
    /** Sharded mode: one master's connection was lost (its channels were reported with on_channel_lost);
     *  the others carry on. */
    void (*on_partial_down)(void *arg, const char *why, uint64_t retry_ms);
} wsg_redis_sub_handler_t;

/** Allocates the subscriber and starts connecting. Borrows `loop`, `handler`, `arg`; copies `addr` and
 *  `opts`. Returns NULL when out of memory. */
wsg_redis_sub_t *wsg_redis_sub_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                   const wsg_redis_link_options_t *opts,
                                   const wsg_redis_sub_handler_t *handler, void *arg);

struct wsg_redis_cluster;

/** The subscriber for Redis Cluster (`cluster` borrowed, shared with the command side, open until this is
 *  closed). Classic mode: one connection to any node (a PUBLISH anywhere reaches every node). Sharded mode
 *  (`is_sharded`): SSUBSCRIBE on each channel's master (see sharded.h for its events). */
wsg_redis_sub_t *wsg_redis_sub_new_cluster(uv_loop_t *loop, struct wsg_redis_cluster *cluster,
                                           bool is_sharded, const wsg_redis_link_options_t *opts,
                                           const wsg_redis_sub_handler_t *handler, void *arg);

/** Sends one SUBSCRIBE for `n` channels (borrowed). Returns 0, -ENOTCONN when not ready (wait for
 *  on_ready), -EINVAL for n == 0, or -EIO when hiredis refuses the command. */
int wsg_redis_sub_subscribe(wsg_redis_sub_t *sub, const char *const *channels, const size_t *lens, size_t n);

/** Sends UNSUBSCRIBE for one channel (borrowed). Returns 0, -ENOTCONN or -EIO. */
int wsg_redis_sub_unsubscribe(wsg_redis_sub_t *sub, const char *channel, size_t len);

/** How many times reading was held at the handler's request (read_hold_ms) since the subscriber was made. */
uint32_t wsg_redis_sub_holds(const wsg_redis_sub_t *sub);

/** True between on_ready and on_down. */
bool wsg_redis_sub_is_ready(const wsg_redis_sub_t *sub);

/** True when the last loss was Redis closing the connection (see wsg_redis_link_was_closed_by_server). */
bool wsg_redis_sub_was_closed_by_server(const wsg_redis_sub_t *sub);

/** Forces a reconnect (see wsg_redis_link_reset). */
void wsg_redis_sub_reset(wsg_redis_sub_t *sub, const char *why);

/** Disconnects and frees the subscriber; `cb` runs when done. No handler event follows. */
void wsg_redis_sub_close(wsg_redis_sub_t *sub, void (*cb)(void *cb_arg), void *cb_arg);

#endif
