/* Watching Redis Sentinel for a failover. The links ask the sentinels for the master on every (re)connect and
 * check its ROLE, but a failover that leaves the old master reachable (now a replica) would not drop them: a
 * pub/sub connection to the sentinels (the next one when one fails) subscribed to +switch-master resets them
 * as soon as a sentinel announces the switch of our master. */
#ifndef WSG_REDIS_SENTINEL_WATCH_H
#define WSG_REDIS_SENTINEL_WATCH_H

#include <stddef.h>
#include <uv.h>

#include "commands.h"
#include "redis_url.h"
#include "subscriber.h"

typedef struct wsg_redis_sentinel_watch wsg_redis_sentinel_watch_t;

typedef struct wsg_redis_sentinel_watch_handler {
    /** Subscribed to +switch-master on a sentinel. */
    void (*on_up)(void *arg);
    /** A sentinel announced the switch of our master ("<name> <old ip> <old port> <new ip> <new port>",
     *  borrowed); `sub` and `cmd` have been reset. */
    void (*on_switch)(void *arg, const char *detail, size_t len);
} wsg_redis_sentinel_watch_handler_t;

/** Watches the sentinels of `addr` (a Sentinel URL, with the sentinels' credentials) with the connection
 *  options `opts` (timeouts, backoff, TLS), resetting `sub` and `cmd` (borrowed until closed) on a switch.
 *  Borrows `loop`, `handler` and `arg`. Returns NULL when out of memory. */
wsg_redis_sentinel_watch_t *wsg_redis_sentinel_watch_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                                         const wsg_redis_link_options_t *opts,
                                                         wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd,
                                                         const wsg_redis_sentinel_watch_handler_t *handler,
                                                         void *arg);

/** Closes the watch; `cb` runs once its memory is gone. */
void wsg_redis_sentinel_watch_close(wsg_redis_sentinel_watch_t *w, void (*cb)(void *cb_arg), void *cb_arg);

#endif
