/* What a client sends: heartbeats dropped, JSON pings answered, the publish rate limit, and ws4redis's
 * PUBLISH (+ SETEX) of every other message to each of the client's publish channels, with the echo filter
 * told. The connection decides what a refusal means for it (a close code) and when its close is answered. */
#ifndef WSG_GATEWAY_PUBLISH_H
#define WSG_GATEWAY_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "commands.h"
#include "ctx.h"
#include "outq.h"
#include "router.h"

/** Past this many commands awaiting Redis, a connection stops reading from its client until half are done:
 *  a client cannot make the gateway buffer without bound. */
#define WSG_PUBLISH_MAX_IN_FLIGHT 1024

/** A client's publishing state, embedded in its connection. */
typedef struct wsg_client_pub {
    uint32_t pending;      /**< PUBLISH commands awaiting Redis */
    uint32_t tokens_milli; /**< token bucket of WSGATE_PUBLISH_RATE, in thousandths of a message */
    uint64_t refill_ms;
} wsg_client_pub_t;

/** The client's side of publishing: where it publishes (its router record), where replies to it go (its
 *  output), and who learns of each command's completion. */
typedef struct wsg_publisher {
    wsg_ctx_t *ctx;
    wsg_client_pub_t *pub;
    wsg_router_client_t *client;
    wsg_outq_t *out;
    uint64_t conn_id;
    wsg_redis_done_cb done; /**< called once per command issued; must call wsg_publish_done */
    void *done_arg;
} wsg_publisher_t;

/** Fills the bucket for a client that opens at `now_ms`. */
void wsg_publish_init(wsg_client_pub_t *pub, const wsg_config_t *cfg, uint64_t now_ms);

/** Handles one complete inbound message (`data` borrowed). Returns 0 when it was published, dropped or
 *  answered, or a close code for the connection with `*reason` set to static text: 1008 over the publish
 *  rate, 1013 when the commands waiting for Redis are full, 1011 when a command could not be made. Every
 *  refusal is logged and counted here. Each command issued counts in `pub->pending` until its completion. */
uint16_t wsg_publish_message(const wsg_publisher_t *p, const uint8_t *data, size_t len, const char **reason);

/** Bookkeeping of one finished command (`status`, `err` as in wsg_redis_done_cb): `pub->pending` goes down,
 *  a failure is counted and logged, and the echo filter forgets what may never come back. */
void wsg_publish_done(const wsg_publisher_t *p, int status, const char *err);

#endif
