/* Channels of one loop, indexed both ways: channel -> subscribed connections (members) and connection ->
 * channels (conn->subs). Drives the Redis subscriber: SUBSCRIBE for the first member, UNSUBSCRIBE after the
 * last, one command in flight per channel, and a full resubscribe after a reconnect. */
#ifndef WSG_GATEWAY_ROUTER_H
#define WSG_GATEWAY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "msg.h"
#include "str.h"
#include "commands.h"
#include "subscriber.h"

typedef enum wsg_channel_state {
    WSG_CHANNEL_UNSUBSCRIBED,
    WSG_CHANNEL_SUBSCRIBING,
    WSG_CHANNEL_SUBSCRIBED,
    WSG_CHANNEL_UNSUBSCRIBING,
} wsg_channel_state_t;

struct wsg_channel {
    struct wsg_channel *hash_next;
    wsg_member_t *members;  /* doubly linked through wsg_member_t */
    uint32_t hash;
    uint32_t nmembers;
    uint32_t npublishers;
    uint64_t last_live_hash; /* the latest message relayed from Redis */
    uint64_t stored_hash;    /* the latest value read from its key */
    uint32_t barriers_sent; /* re-SUBSCRIBEs sent as ordering barriers (see wsg_router_on_persisted) */
    uint32_t barriers_done; /* ... and confirmed */
    uint16_t name_len;
    uint8_t state;          /* wsg_channel_state_t */
    bool is_barrier_in_flight;
    bool has_live, has_stored;
    bool needs_reread;      /* the subscription was lost: re-read the key once it is back */
    char name[];            /* NUL-terminated */
};

/** A connection's subscription to a channel. */
struct wsg_member {
    wsg_channel_t *channel;
    wsg_conn_t *conn;
    wsg_member_t *prev, *next;
    wsg_msg_t *persisted;   /* the stored value, kept until the barrier confirms (NULL: none) */
    uint32_t barrier;       /* the barrier generation this member waits for */
    bool needs_get;         /* the persisted message is read once the channel is subscribed */
    bool awaits_barrier;    /* GET answered; waiting for the barrier */
};

/** Most messages one run (see wsg_router_t) holds before it is delivered. */
#define WSG_ROUTER_RUN_MAX 256
/** Most frame bytes of one run: enough to carry a burst of small messages in one write, small enough for one
 *  socket buffer. Never more than a quarter of the per-connection output cap (see wsg_router_init). */
#define WSG_ROUTER_RUN_MAX_BYTES (64 * 1024)

typedef struct wsg_router {
    wsg_channel_t **buckets;
    uint32_t nbuckets;      /* a power of two */
    uint32_t nchannels;
    wsg_redis_sub_t *sub;   /* borrowed; NULL until set */
    wsg_redis_cmd_t *cmd;   /* borrowed; NULL until set */
    /* The run: consecutive messages of one channel from one Redis read, not yet delivered. Delivered as
     * one frame buffer per run (one queue entry per subscriber instead of one per message) when the channel
     * changes, the run is full, another router event comes, or the read ends (wsg_router_end_run). */
    wsg_channel_t *run_channel;
    uint32_t run_count;
    size_t run_bytes;
    size_t run_max_bytes;   /* frame bytes per run (WSG_ROUTER_RUN_MAX_BYTES or less) */
    wsg_msg_t *run[WSG_ROUTER_RUN_MAX];
} wsg_router_t;

/** Longest channel name: prefix, audience, identity and facility with their separators. */
#define WSG_CHANNEL_NAME_MAX 1024

/** Prepares an empty router for connections whose output cap is `max_pending` bytes (runs are queued whole to
 *  each subscriber, so they stay far below it). Returns 0 or -ENOMEM. */
int wsg_router_init(wsg_router_t *router, size_t max_pending);

/** Frees the table; every connection must have left. */
void wsg_router_dispose(wsg_router_t *router);

/** Sets the subscriber the router drives and the command link it reads keys with (both borrowed). */
void wsg_router_set_redis(wsg_router_t *router, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd);

/** Joins `conn` to the channels `subs` (subscriptions) and `pubs` (publish targets), filling conn->subs and
 *  conn->pubs. Subscriptions go to Redis as needed; persisted messages of channels already subscribed are
 *  requested at once, the others once Redis confirms. Returns 0 or -ENOMEM (then nothing was joined). */
int wsg_router_join(wsg_router_t *router, wsg_conn_t *conn, const wsg_str_t *subs, uint8_t nsubs,
                    const wsg_str_t *pubs, uint8_t npubs);

/** Removes `conn` from the channels it subscribes to, keeping its publish targets (idempotent). */
void wsg_router_unsubscribe(wsg_router_t *router, wsg_conn_t *conn);

/** Removes `conn` from every channel (idempotent). */
void wsg_router_leave(wsg_router_t *router, wsg_conn_t *conn);

/** True when `channel` is confirmed subscribed in Redis. */
static inline bool wsg_channel_is_live(const wsg_channel_t *channel)
{
    return channel->state == WSG_CHANNEL_SUBSCRIBED;
}

/** The GET of member `index` of `conn` was answered with `value` (borrowed; NULL when there is none).
 *  Live messages of the channel that were published before the GET ran may still be on their way on the
 *  subscriber connection, in another socket than the GET reply: so the router re-SUBSCRIBEs the channel as a
 *  barrier (Redis confirms it after every message published before it) and only then hands the value to
 *  the connection (wsg_conn_persisted_ready), which can tell whether a held live message already is it. */
void wsg_router_on_persisted(wsg_router_t *router, wsg_conn_t *conn, uint8_t index, wsg_msg_t *value);

/* Events from the subscriber link (see wsg_redis_sub_handler_t). */
void wsg_router_on_redis_ready(wsg_router_t *router);
void wsg_router_on_redis_down(wsg_router_t *router);
void wsg_router_on_subscribed(wsg_router_t *router, const char *name, size_t len);
void wsg_router_on_unsubscribed(wsg_router_t *router, const char *name, size_t len);
/** Frames `msg` once and adds it to the run; every member of its channel gets it when the run is delivered,
 *  at the latest at wsg_router_end_run. Borrows `msg`. */
void wsg_router_on_message(wsg_router_t *router, wsg_msg_t *msg);
/** Delivers the run: call once the messages of a Redis read have all been handed over. */
void wsg_router_end_run(wsg_router_t *router);

/** Number of channels in the table (subscribed or not). */
static inline uint32_t wsg_router_channel_count(const wsg_router_t *router)
{
    return router->nchannels;
}

#endif
