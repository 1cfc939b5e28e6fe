/* One Redis connection driven by the libuv loop: asynchronous name resolution, connect with a timeout,
 * AUTH/SELECT/CLIENT SETNAME, loss detection and reconnect with exponential backoff and jitter. The hiredis
 * event adapter is ours (uv_poll), so that we own timeouts and read replies in large batches. */
#ifndef WSG_REDIS_LINK_H
#define WSG_REDIS_LINK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "redis_url.h"

struct redisAsyncContext;
typedef struct wsg_redis_link wsg_redis_link_t;

/** Events of a link; called from the loop, never from inside wsg_redis_link_* calls. */
typedef struct wsg_redis_link_handler {
    /** The connection is up and authenticated: commands may be sent on wsg_redis_link_context(). */
    void (*on_ready)(wsg_redis_link_t *link, void *arg);
    /** The connection failed or was lost (callbacks of commands in flight have been or are being called with
     *  a NULL reply). `why` is a static or short-lived text; `retry_ms` when the next attempt starts. */
    void (*on_down)(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms);
    /** Optional: the replies of one readiness event (at most read_bytes_per_event bytes) have all been
     *  handed to their callbacks; lets the owner act once per batch instead of once per reply. */
    void (*on_read_done)(wsg_redis_link_t *link, void *arg);
} wsg_redis_link_handler_t;

typedef struct wsg_redis_link_options {
    const char *name;          /**< CLIENT SETNAME value and log name, e.g. "wsgate-sub" (borrowed, static) */
    bool select_db;            /**< send SELECT when the address names a database other than 0 */
    uint64_t connect_timeout_ms; /**< connect + AUTH/SELECT must finish within this; 0 = 2000 */
    uint64_t retry_min_ms;     /**< first backoff; 0 = 100 */
    uint64_t retry_max_ms;     /**< backoff ceiling; 0 = 5000 */
    size_t read_bytes_per_event; /**< most bytes read per readiness event (in reads of 16 KiB); 0 = 256 KiB */
} wsg_redis_link_options_t;

/** Allocates a link and starts connecting at once. Borrows `loop`, `handler` and `arg` for its life; copies
 *  `addr` and `opts`. Returns NULL when out of memory. */
wsg_redis_link_t *wsg_redis_link_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                     const wsg_redis_link_options_t *opts, const wsg_redis_link_handler_t *handler,
                                     void *arg);

/** The hiredis context while the link is ready, else NULL. Borrowed: valid until the next on_down. */
struct redisAsyncContext *wsg_redis_link_context(wsg_redis_link_t *link);

/** True between on_ready and the next on_down. */
bool wsg_redis_link_is_ready(const wsg_redis_link_t *link);

/** True when the last loss of a ready connection was the server closing it (end of stream, no error): Redis
 *  does that to a client past its client-output-buffer-limit, or on CLIENT KILL, or when it shuts down. */
bool wsg_redis_link_was_closed_by_server(const wsg_redis_link_t *link);

/** Drops the current connection (as if lost) and reconnects after the minimum backoff; used when a probe
 *  finds the connection wedged. No-op unless ready. */
void wsg_redis_link_reset(wsg_redis_link_t *link, const char *why);

/** Disconnects for good: a ready connection is closed once the replies in flight have arrived (their
 *  callbacks run), anything else is abandoned. `cb` runs once all handles are closed and the link is freed;
 *  no handler event follows this call. Must not be called from inside a hiredis callback of this link. */
void wsg_redis_link_close(wsg_redis_link_t *link, void (*cb)(void *cb_arg), void *cb_arg);

#endif
