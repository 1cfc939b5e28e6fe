/* Redis Cluster for one loop: the slot map (CLUSTER SLOTS, asked again after a MOVED or a lost node), one
 * command connection per master shared by every command of the worker, and keyed commands routed to the
 * master of their slot, following MOVED and ASK redirections and retrying TRYAGAIN and CLUSTERDOWN. */
#ifndef WSG_REDIS_CLUSTER_H
#define WSG_REDIS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "link.h"
#include "redis_url.h"

typedef struct wsg_redis_cluster wsg_redis_cluster_t;

/** Events, from the loop, never from inside a wsg_redis_cluster_* call. */
typedef struct wsg_redis_cluster_handler {
    /** Every master of the map has a ready connection (after the first map, and again after an outage). */
    void (*on_ready)(void *arg);
    /** A master's connection failed or was lost, or no node answers for a map: `why` names it. */
    void (*on_down)(void *arg, const char *why, uint64_t retry_ms);
    /** The map changed (first map, failover, slots moved): the owners of slots may differ. */
    void (*on_map)(void *arg);
} wsg_redis_cluster_handler_t;

/** Starts asking the seeds of `addr` (a cluster URL: seeds, credentials, TLS) for the map. `opts` are those
 * of every connection (timeouts, backoff, TLS; name and pub/sub ignored). Borrows `loop` and the options'
 *  pointers for its life; copies the rest. Returns NULL when out of memory. */
wsg_redis_cluster_t *wsg_redis_cluster_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                           const wsg_redis_link_options_t *opts);

/** Adds an observer of the cluster's events (at most 4). Borrows `handler` and `arg` until the close.
 *  Returns 0 or -ENOSPC. */
int wsg_redis_cluster_observe(wsg_redis_cluster_t *c, const wsg_redis_cluster_handler_t *handler, void *arg);

/** The cluster's URL as parsed (seeds, credentials, TLS); borrowed for the cluster's life. */
const wsg_redis_addr_t *wsg_redis_cluster_addr(const wsg_redis_cluster_t *c);

/** True once a map is known. */
bool wsg_redis_cluster_has_map(const wsg_redis_cluster_t *c);

/** True when every master of the map has a ready connection. */
bool wsg_redis_cluster_is_ready(const wsg_redis_cluster_t *c);

/** Sends `cmd` (a whole RESP command of `len` bytes, borrowed until `cb` runs) to the master of `slot`,
 *  waiting for that master's connection if needed, following redirections (at most 5), and calls `cb` with
 * the final reply, or with NULL when the connection it was sent on was lost (the command may or may not have
 *  run). Returns 0, -ENOTCONN before the first map, -ENOBUFS when more than `max_waiting` commands wait for
 *  connections, -ENOMEM. */
int wsg_redis_cluster_send(wsg_redis_cluster_t *c, uint16_t slot, const char *cmd, size_t len,
                           wsg_redis_reply_cb cb, void *privdata);

/** Commands waiting for a connection, sent and not yet answered, or waiting to be retried. */
size_t wsg_redis_cluster_pending(const wsg_redis_cluster_t *c);

/** Bounds the commands that wait for connections (see wsg_redis_cluster_send); 0 = 10000. */
void wsg_redis_cluster_set_max_waiting(wsg_redis_cluster_t *c, size_t max_waiting);

/** The master of `slot` in the current map: writes its host (at most host_cap - 1 bytes) and port. Returns
 *  false when no map is known or the slot has no owner. */
bool wsg_redis_cluster_master_of(const wsg_redis_cluster_t *c, uint16_t slot, char *host, size_t host_cap,
                                 uint16_t *port);

/** True when host:port masters slots in the current map. */
bool wsg_redis_cluster_is_master(const wsg_redis_cluster_t *c, const char *host, uint16_t port);

/** Writes the host and port of a node to connect to for things any node serves (classic pub/sub), taking
 *  the known nodes in turn on each call: the seeds first, then every node of the map. */
void wsg_redis_cluster_next_node(wsg_redis_cluster_t *c, char *host, size_t host_cap, uint16_t *port);

/** Drops the connection to the master of `slot` (as if lost) and asks for the map again: a probe found it
 *  wedged. */
void wsg_redis_cluster_reset_slot(wsg_redis_cluster_t *c, uint16_t slot, const char *why);

/** Drops the connection to every master (as if lost): a probe found the command side wedged. */
void wsg_redis_cluster_reset_all(wsg_redis_cluster_t *c, const char *why);

/** Asks for the map again soon (coalesced): a redirection or a lost node seen by another part. */
void wsg_redis_cluster_refresh(wsg_redis_cluster_t *c);

/** Closes every connection; commands not answered get NULL from the loop. `cb` runs once the memory is
 *  gone; no handler event follows this call. */
void wsg_redis_cluster_close(wsg_redis_cluster_t *c, void (*cb)(void *cb_arg), void *cb_arg);

#endif
