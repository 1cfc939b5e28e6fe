/* The admin listener: GET /metrics (Prometheus text), /healthz and /readyz, on its own address, served from
 * the main thread so that it answers even when a worker is busy. */
#ifndef WSG_GATEWAY_ADMIN_H
#define WSG_GATEWAY_ADMIN_H

#include <uv.h>

#include "config.h"
#include "stats.h"

typedef struct wsg_admin wsg_admin_t;

/** Starts listening on cfg->admin_host:admin_port in `loop`, reporting the sum of the `n` workers' `stats`
 *  (borrowed for the admin's life). Returns NULL after logging why when the address cannot be bound. */
wsg_admin_t *wsg_admin_start(uv_loop_t *loop, const wsg_config_t *cfg, wsg_stats_t *const *stats, unsigned n);

/** Marks the process as shutting down: /readyz answers 503 from now on. */
void wsg_admin_set_draining(wsg_admin_t *admin);

/** Stops listening, drops open admin connections and frees everything once their handles are closed. */
void wsg_admin_stop(wsg_admin_t *admin);

#endif
