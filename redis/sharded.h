/* Sharded pub/sub on Redis Cluster (Redis 7): each channel is subscribed with SSUBSCRIBE on the master of its
 * slot, over one pub/sub connection per master. A master that is lost, or a slot that moves (Redis then
 * sends sunsubscribe), takes only its own channels: each is reported lost and subscribed again on its new
 * owner by the caller. Used by the subscriber (subscriber.c) in sharded mode. */
#ifndef WSG_REDIS_SHARDED_H
#define WSG_REDIS_SHARDED_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "cluster.h"
#include "subscriber.h"

typedef struct wsg_redis_sharded wsg_redis_sharded_t;

/** Starts following `cluster`'s map (borrowed; it must stay open until this is closed). Events go to
 *  `handler` as for a subscriber: on_ready once the map is known (and again when a lost master's connection
 *  is back), on_partial_down when a master's connection is lost (after on_channel_lost for each of its
 *  channels), confirmations of SSUBSCRIBE and SUNSUBSCRIBE as on_subscribed and on_unsubscribed, smessage as
 *  on_message. Returns NULL when out of memory. */
wsg_redis_sharded_t *wsg_redis_sharded_new(uv_loop_t *loop, wsg_redis_cluster_t *cluster,
                                           const wsg_redis_link_options_t *opts,
                                           const wsg_redis_sub_handler_t *handler, void *arg);

/** SSUBSCRIBE each channel on its slot's master (a channel already subscribed: again on the same connection,
 *  as a barrier); a master's connection that is not ready yet gets it when it is. Returns 0, or -ENOTCONN
 *  before the first map, or -ENOMEM. */
int wsg_redis_sharded_subscribe(wsg_redis_sharded_t *s, const char *const *channels, const size_t *lens,
                                size_t n);

/** SUNSUBSCRIBE a subscribed channel on the connection that carries it. Returns 0, -ENOTCONN (that connection
 *  is down: the channel is reported lost anyway) or -ENOENT. */
int wsg_redis_sharded_unsubscribe(wsg_redis_sharded_t *s, const char *channel, size_t len);

/** How many times reading was held at the handler's request (read_hold_ms) since it was made. */
uint32_t wsg_redis_sharded_holds(const wsg_redis_sharded_t *s);

/** True when the map is known and every master carrying channels has a ready connection. */
bool wsg_redis_sharded_is_ready(const wsg_redis_sharded_t *s);

/** Drops every master's pub/sub connection (as if lost): a probe found one wedged. */
void wsg_redis_sharded_reset(wsg_redis_sharded_t *s, const char *why);

/** Closes every connection; `cb` runs once the memory is gone; no event follows this call. */
void wsg_redis_sharded_close(wsg_redis_sharded_t *s, void (*cb)(void *cb_arg), void *cb_arg);

#endif
