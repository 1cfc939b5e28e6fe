/* The process: listening sockets (one per worker, SO_REUSEPORT), worker threads, and signal handling. */
#ifndef WSG_GATEWAY_SERVER_H
#define WSG_GATEWAY_SERVER_H

#include "config.h"

/** Binds the listening sockets, starts `cfg->workers` worker threads (each a libuv loop with its own
 *  listener, Redis connections and clients), waits for SIGTERM/SIGINT, shuts the workers down gracefully and
 *  joins them. A second signal exits the process at once with status 1. Borrows `cfg`.
 *  Returns the process exit status: 0 after a clean shutdown, 1 when start-up or a worker failed. */
int wsg_server_run(const wsg_config_t *cfg);

#endif
