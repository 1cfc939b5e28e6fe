/* What the modules serving clients on one event loop share: settings, counters, the router, the command link,
 * the outputs' shared state and the connection lists. The worker owns it and wires it up; connections,
 * upgrades and client publishing borrow it. Nothing in it is shared with another loop. */
#ifndef WSG_GATEWAY_CTX_H
#define WSG_GATEWAY_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "config.h"
#include "heartbeat.h"
#include "log.h"
#include "outq.h"
#include "router.h"
#include "stats.h"

struct wsg_conn;
struct wsg_auth_client;

/** Connections in one lifecycle state, oldest first (so timeouts are found from the head). */
typedef struct wsg_conn_list {
    struct wsg_conn *head, *tail;
    uint32_t count;
} wsg_conn_list_t;

typedef struct wsg_ctx {
    uv_loop_t *loop;
    const wsg_config_t *cfg;
    wsg_stats_t *stats;
    wsg_router_t *router;
    wsg_redis_cmd_t *cmd;
    struct wsg_auth_client *auth; /* the authorization callback's client; NULL without WSGATE_AUTH_URL */
    wsg_outq_ctx_t out; /* every connection's output shares it */
    wsg_conn_list_t handshaking, open, closing;
    wsg_heartbeat_rules_t heartbeat_rules;
    bool is_shutting_down;
    uint64_t shutdown_deadline_ms;
    wsg_log_limit_t publish_log_limit; /* failed client publishes */
    void (*on_conn_freed)(void *arg);  /* a connection's memory is gone (shutdown waits for the last) */
    void *on_conn_freed_arg;
    uint8_t read_buf[64 * 1024]; /* every read of every connection lands here first */
} wsg_ctx_t;

#endif
