/* Subscriptions of one loop, end to end: the channel table indexed both ways (channel -> members, client ->
 * channels), the Redis SUBSCRIBE/UNSUBSCRIBE state machine, the stored-message GET of a joining client with
 * its ordering barrier and the live messages held back meanwhile, the echo filter, and fan-out of Redis
 * messages in runs. It is the subscriber link's handler (wsg_router_sub_handler). Clients are
 * wsg_router_client_t records embedded in connections; messages leave through their outputs (wsg_outq_send),
 * which never call back, so member lists are never changed while they are walked. */
#ifndef WSG_GATEWAY_ROUTER_H
#define WSG_GATEWAY_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channels.h"
#include "commands.h"
#include "echo_filter.h"
#include "log.h"
#include "msg.h"
#include "outq.h"
#include "stats.h"
#include "str.h"
#include "stream_reader.h"
#include "subscriber.h"

typedef struct wsg_member wsg_member_t;

struct get_request;
struct stream_request;

/** Where a member of a stream channel is (see router_stream.c). */
typedef enum wsg_member_stream_state {
    WSG_MEMBER_WAITING,     /**< the channel is not followed yet */
    WSG_MEMBER_CATCHING_UP, /**< reading the entries it missed (or the last one) */
    WSG_MEMBER_LIVE,        /**< gets the reader's entries after `cursor` */
} wsg_member_stream_state_t;

/** A member's place in a stream channel (router_stream.c), allocated only for members of stream channels so
 *  that pub/sub memberships stay small. */
typedef struct wsg_member_stream {
    struct stream_request *sreq;   /* the read in flight for it, if any */
    wsg_stream_id_t since, cursor; /* resume point; the last entry it was sent */
    uint32_t replayed;             /* entries its resume has sent */
    uint8_t state;                 /* wsg_member_stream_state_t */
    uint8_t page_entries;          /* entries its next replay page asks for */
    bool has_since;                /* the client resumes after `since` */
    bool is_paused;                /* catching up: the next page waits until its output has drained */
} wsg_member_stream_t;

/** A client's subscription to a channel. */
struct wsg_member {
    wsg_channel_t *channel;
    struct wsg_router_client *client;
    wsg_member_t *prev, *next;
    struct get_request *get;          /* the stored-message GET in flight, if any */
    wsg_msg_t *persisted;             /* the stored value, kept until the barrier confirms (NULL: none) */
    uint32_t barrier;                 /* the barrier generation this member waits for */
    bool needs_get;                   /* the stored message is read once the channel is subscribed */
    bool awaits_barrier;              /* GET answered; waiting for the barrier */
    struct wsg_member_stream *stream; /* stream channels only: where it is in the stream */
};

struct held_msg;

/** A connection as the router sees it: embedded in the connection, zeroed until it joins. */
typedef struct wsg_router_client {
    struct wsg_router *router; /* set by wsg_router_join */
    wsg_outq_t *out;           /* borrowed: where its messages go */
    wsg_member_t *subs;        /* one per subscribed channel, in ws4redis order */
    wsg_channel_t **pubs;      /* channels it publishes to */
    struct held_msg *held;     /* live messages held back until every stored message was sent */
    wsg_echo_filter_t echo;    /* its own publications awaited back */
    uint32_t held_count, held_cap;
    uint16_t gets_pending; /* stored-message GETs (with their barriers) not finished */
    uint8_t nsubs, npubs;
    bool is_echo; /* it wants its own messages back */
    bool is_v1;   /* it speaks wsgate.v1: every data message is an envelope (see msg.h) */
} wsg_router_client_t;

/** What the router reports about the subscriber link besides subscriptions (the worker logs and probes). */
typedef struct wsg_router_observer {
    void (*on_link_up)(void *arg);
    void (*on_link_down)(void *arg, const char *why, uint64_t retry_ms);
    /** A message on a channel the router does not route (the worker's probe channel). Borrowed bytes. */
    void (*on_other_message)(void *arg, const char *channel, size_t channel_len, const uint8_t *payload,
                             size_t len);
} wsg_router_observer_t;

/** Most messages one run holds before it is delivered. */
#define WSG_ROUTER_RUN_MAX 256
/** Most frame bytes of one run: enough to carry a burst of small messages in one write, small enough for one
 *  socket buffer. Never more than a quarter of the soft output limit (see wsg_router_init). */
#define WSG_ROUTER_RUN_MAX_BYTES (64 * 1024)

typedef struct wsg_router {
    wsg_channels_t channels;
    wsg_redis_sub_t *sub; /* borrowed; NULL until set */
    wsg_redis_cmd_t *cmd; /* borrowed; NULL until set */
    wsg_stats_t *stats;   /* borrowed */
    const wsg_router_observer_t *observer;
    void *observer_arg;
    /* The run: consecutive messages of one channel from one Redis read, not yet delivered. Delivered as one
     * frame buffer per run (one queue entry per subscriber instead of one per message) when the channel
     * changes, the run is full, another router event comes, or the read ends. */
    wsg_channel_t *run_channel;
    uint32_t run_count;
    size_t run_bytes;
    size_t run_max_bytes; /* frame bytes per run (WSG_ROUTER_RUN_MAX_BYTES or less) */
    wsg_msg_t *run[WSG_ROUTER_RUN_MAX];
    const wsg_channel_t *reread_channel; /* its key's message, read after an outage, is being delivered */
    /* Stream channels (router_stream.c): */
    wsg_redis_streams_t *streams; /* borrowed; NULL without stream channels */
    wsg_str_t prefix;             /* WS4REDIS_PREFIX (borrowed): labels are names without it */
    wsg_str_t stream_patterns;    /* WSGATE_STREAMS (borrowed) */
    uint32_t stream_replay_max;
    size_t soft_limit;             /* clients' WSGATE_MAX_PENDING: a replay page stays well below it */
    uv_loop_t *loop;               /* borrowed: the time of an outage */
    wsg_outq_ctx_t *out_ctx;       /* borrowed: the clients' outputs, whether they keep up */
    uint64_t stream_down_since_ms; /* the stream reader is down since then; 0 = up */
    wsg_log_limit_t stream_error_limit;
} wsg_router_t;

/** The subscriber-link handler; pass the router as its argument. */
extern const wsg_redis_sub_handler_t wsg_router_sub_handler;

/** Prepares an empty router for clients whose soft output limit is `soft_limit` bytes (runs stay far below
 *  it). Borrows `stats`, `observer` and `arg`. Returns 0 or -ENOMEM. */
int wsg_router_init(wsg_router_t *router, size_t soft_limit, wsg_stats_t *stats,
                    const wsg_router_observer_t *observer, void *arg);

/** Frees the table; every client must have left. */
void wsg_router_dispose(wsg_router_t *router);

/** Sets the subscriber the router drives and the command link it reads keys with (both borrowed). */
void wsg_router_set_redis(wsg_router_t *router, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd);

/** Stream channels: names matching `patterns` (borrowed, comma-separated globs) are streams, read by `reader`
 *  (borrowed; may be NULL when `patterns` is empty); a resume replays at most `replay_max` entries. Labels of
 *  channels are their names without "<prefix>:" (borrowed). While most of `out_ctx`'s outputs are congested
 *  the next stream read waits a little (the entries wait in Redis, not in the outputs). */
void wsg_router_set_streams(wsg_router_t *router, uv_loop_t *loop, wsg_outq_ctx_t *out_ctx,
                            wsg_str_t patterns, wsg_redis_streams_t *reader, uint32_t replay_max,
                            wsg_str_t prefix);

/** The stream reader's handler; pass the router as its argument. */
extern const wsg_redis_streams_handler_t wsg_router_streams_handler;

/** True when the channel called `name` is a stream channel. */
bool wsg_router_is_stream(const wsg_router_t *router, wsg_str_t name);

/** Joins `client` (its `out`, `is_echo` and `is_v1` set) to the channels `subs` and publish targets `pubs`.
 * Subscriptions go to Redis as needed; each channel's stored message is read (GET) once the channel is
 * subscribed and sent before any live message of the client's channels. Stream channels resume after the
 * `since` of `query` (the request's query, borrowed for the call; see wsg_query_since). Returns 0 or -ENOMEM
 * (then nothing was joined). */
int wsg_router_join(wsg_router_t *router, wsg_router_client_t *client, const wsg_str_t *subs, uint8_t nsubs,
                    const wsg_str_t *pubs, uint8_t npubs, wsg_str_t query);

/** Stops deliveries to `client`: removes it from the channels it subscribes to and drops what was held for
 *  it, keeping its publish targets (idempotent). */
void wsg_router_unsubscribe(wsg_router_t *router, wsg_router_client_t *client);

/** Removes `client` from every channel (idempotent). */
void wsg_router_leave(wsg_router_t *router, wsg_router_client_t *client);

/** Notes that `client` published `len` bytes (borrowed) to `channel`: without echo, the copy that comes back
 *  through its own subscription is not sent to it. */
void wsg_router_note_publication(wsg_router_t *router, wsg_router_client_t *client,
                                 const wsg_channel_t *channel, const void *data, size_t len);

/** Forgets the publications `client` awaits back (a publish failed: its echo may never come). */
void wsg_router_forget_publications(wsg_router_client_t *client);

/** Delivers the run: the read from Redis has ended (called by the subscriber link's on_read_done). */
void wsg_router_end_run(wsg_router_t *router);

/** `client`'s output has been drained (after wsg_outq_notify_drained): its stream replays paused for it go
 * on. Never delivers anything from inside the call. */
void wsg_router_output_drained(wsg_router_t *router, wsg_router_client_t *client);

/** What `client` is sent for `msg` of `channel`: `msg` itself, or for a wsgate.v1 client its envelope (made
 *  once per message and shared). NULL when out of memory. */
wsg_msg_t *wsg_router_variant(wsg_router_t *router, const wsg_router_client_t *client,
                              const wsg_channel_t *channel, wsg_msg_t *msg);

/** Number of channels in the table (subscribed or not). */
static inline uint32_t wsg_router_channel_count(const wsg_router_t *router)
{
    return router->channels.count;
}

#endif
