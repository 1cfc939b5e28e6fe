/* One event loop with everything it serves: its listener, connections, Redis links, router and timers. The
 * worker is loop, listener, timers and wiring; nothing in it is shared with another worker. */
#ifndef WSG_GATEWAY_WORKER_H
#define WSG_GATEWAY_WORKER_H

#include "config.h"
#include "stats.h"

typedef struct wsg_worker wsg_worker_t;

/** Allocates a worker that is not started yet (its counters exist, so the admin listener can read them).
 *  Returns NULL when out of memory. */
wsg_worker_t *wsg_worker_new(unsigned index);

/** The worker's counters (written by its thread only). */
wsg_stats_t *wsg_worker_stats(wsg_worker_t *worker);

/** The worker's number. */
unsigned wsg_worker_index(const wsg_worker_t *worker);

/** Initialises the worker's loop, Redis links and timers, and starts accepting on `listen_fd` (a bound
 *  socket; the worker's listener takes it over). Borrows `cfg` for its life. Returns 0 or a negative errno
 *  after logging why. */
int wsg_worker_init(wsg_worker_t *worker, const wsg_config_t *cfg, int listen_fd);

/** Runs the loop until shutdown completes; then closes it. Returns 0 when uv_loop_close succeeded. */
int wsg_worker_run(wsg_worker_t *worker);

/** Asks the worker, from any thread, to start its graceful shutdown: stop accepting, close clients with
 *  1001, finish Redis commands, then stop. */
void wsg_worker_request_shutdown(wsg_worker_t *worker);

/** Frees a worker whose loop has ended (or never started). */
void wsg_worker_free(wsg_worker_t *worker);

#endif
