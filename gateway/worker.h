/* One event loop with everything it serves: listener, connections, Redis links, router, timers. Nothing
 * in a worker is shared with another worker. */
#ifndef WSG_GATEWAY_WORKER_H
#define WSG_GATEWAY_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "config.h"
#include "heartbeat.h"
#include "conn.h"
#include "log.h"
#include "router.h"
#include "stats.h"
#include "subscriber.h"

/** Connections in one lifecycle state, oldest first (so timeouts are found from the head). */
typedef struct wsg_conn_list {
    wsg_conn_t *head, *tail;
    uint32_t count;
} wsg_conn_list_t;


struct wsg_worker {
    uv_loop_t loop;
    const wsg_config_t *cfg;
    uv_poll_t listener;       /* readiness of listen_fd: we accept ourselves */
    uv_timer_t accept_timer;  /* resumes accepting after running out of descriptors */
    int listen_fd;
    bool has_listener;
    uv_timer_t heartbeat_timer;
    uv_timer_t ping_timer;
    uv_timer_t probe_timer;   /* Redis liveness: a PUBLISH on a private channel, answered and delivered */
    char probe_channel[96];
    uint64_t probe_seq;       /* the probe in flight (0: none) */
    uint64_t probe_counter;
    uint64_t probe_sent_ms;
    bool probe_answered;      /* the command connection answered the probe's PUBLISH */
    bool probe_delivered;     /* the subscriber connection delivered it */
    bool is_probe_subscribed;
    bool is_probe_queued;     /* the probe's PUBLISH is still in the command link (sent or waiting) */
    uv_timer_t sweep_timer;
    uv_prepare_t prepare; /* flush before the loop blocks (output made by timers and write callbacks) */
    uv_check_t check;     /* flush after I/O callbacks (output made by reads and Redis replies) */
    uv_async_t shutdown_async; /* another thread asks for a graceful shutdown */
    unsigned index;
    wsg_redis_sub_t *sub;
    wsg_redis_cmd_t *cmd;
    wsg_redis_sub_t *sentinel_watch; /* with a redis-sentinel:// URL: +switch-master from the first sentinel */
    wsg_router_t router;
    wsg_conn_list_t handshaking, open, closing;
    wsg_conn_t *flush_head;   /* connections with deferred work this loop turn */
    wsg_msg_t *heartbeat_msg; /* the magic string, framed once at start */
    wsg_msg_t *ping_msg;      /* a protocol PING, framed once at start */
    wsg_heartbeat_rules_t heartbeat_rules;
    uint64_t sub_down_since_ms, cmd_down_since_ms;
    bool sub_was_ready, cmd_was_ready;
    bool is_shutting_down;
    bool is_finishing;       /* Redis links and timers are closing; the loop ends when they are closed */
    uint64_t shutdown_deadline_ms;
    unsigned closing_links;
    wsg_log_limit_t redis_log_limit;   /* "Redis still down" */
    wsg_log_limit_t publish_log_limit; /* failed client publishes */
    wsg_log_limit_t accept_log_limit;  /* accept errors (EMFILE...) */
    wsg_log_limit_t slow_log_limit;    /* slow-consumer drops */
    wsg_stats_t stats;
    uint8_t read_buf[64 * 1024]; /* every read of every connection lands here first */
};

/** Initialises the worker's loop, Redis links and timers, and starts accepting on `listen_fd` (a bound
 *  socket; the worker's listener takes it over). Borrows `cfg` for its life. Returns 0 or a negative errno
 *  after logging why. */
int wsg_worker_init(wsg_worker_t *worker, const wsg_config_t *cfg, unsigned index, int listen_fd);

/** Runs the loop until shutdown completes; then closes it. Returns 0 when uv_loop_close succeeded. */
int wsg_worker_run(wsg_worker_t *worker);

/** Starts a graceful shutdown: stop accepting, close clients with 1001, finish Redis commands, then stop.
 *  Call from the worker's own thread. */
void wsg_worker_shutdown(wsg_worker_t *worker);

/** Asks the worker, from any thread, to start its graceful shutdown. */
void wsg_worker_request_shutdown(wsg_worker_t *worker);

/** A process-wide unique connection id (thread-safe). */
uint64_t wsg_next_conn_id(void);

/** Takes one of the process-wide connection slots (`max` 0 = unlimited); false when all are taken. */
bool wsg_connection_slot_take(uint64_t max);

/** Gives back a slot taken by wsg_connection_slot_take. */
void wsg_connection_slot_give(void);

/** List helpers (a connection is in at most one list at a time). */
void wsg_conn_list_push(wsg_conn_list_t *list, wsg_conn_t *conn);
void wsg_conn_list_remove(wsg_conn_list_t *list, wsg_conn_t *conn);

/** Queues `conn` for wsg_conn_flush at the end of this loop turn (once). */
void wsg_worker_schedule_flush(wsg_worker_t *worker, wsg_conn_t *conn);

/** Records input on an open connection: it is alive, and moves to the young end of the idle order. */
void wsg_worker_touch(wsg_worker_t *worker, wsg_conn_t *conn);

/** Called by a connection when it is freed, so that shutdown can notice the last one. */
void wsg_worker_on_conn_freed(wsg_worker_t *worker);

#endif
