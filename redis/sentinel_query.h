/* Asking Redis Sentinel for the master: the sentinels of a redis-sentinel:// URL are asked in turn
 * (SENTINEL get-master-addr-by-name, after AUTH when they want it) until one names the master. Used by the
 * link before each connection to a master found through Sentinel. */
#ifndef WSG_REDIS_SENTINEL_QUERY_H
#define WSG_REDIS_SENTINEL_QUERY_H

#include <stdint.h>
#include <uv.h>

#include "redis_url.h"
#include "transport.h"

typedef struct wsg_redis_sentinel_query wsg_redis_sentinel_query_t;

/** The answer: the master's host and port (borrowed for the call), or host NULL and `why` saying what each
 *  sentinel did (the last one's reason). `next` is the sentinel to ask first next time (past those that
 *  failed). */
typedef void (*wsg_redis_master_cb)(void *arg, const char *host, uint16_t port, const char *why,
                                    unsigned next);

/** Asks the sentinels of `addr` (a Sentinel URL, with the sentinels' credentials), starting with index
 * `first` (modulo their number), each within `timeout_ms`, over TLS when `tls` is set (`tls_name`: the name
 * their certificates must carry, NULL = their host). `cb` runs once, from the loop, unless cancelled. Borrows
 *  `loop`, `tls` and `arg`; copies the rest. Returns NULL when out of memory. */
wsg_redis_sentinel_query_t *wsg_redis_sentinel_ask(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                                   unsigned first, uint64_t timeout_ms, wsg_tls_t *tls,
                                                   const char *tls_name, wsg_redis_master_cb cb, void *arg);

/** Abandons `q`: its callback will not run; its memory goes once its handles are closed. */
void wsg_redis_sentinel_cancel(wsg_redis_sentinel_query_t *q);

#endif
