/* What router.c and router_stored.c share; not for other modules. */
#ifndef WSG_GATEWAY_ROUTER_INTERNAL_H
#define WSG_GATEWAY_ROUTER_INTERNAL_H

#include <stdint.h>

#include "router.h"

/* A live message held for a client until its stored messages are out: as it came (the client's variant is
 * chosen when it is sent), or a notice made for the client (`channel` NULL). */
struct held_msg {
    wsg_msg_t *msg;
    const wsg_channel_t *channel;
};

/* A stored-message GET in flight; `member` is cleared when the member leaves first. */
struct get_request {
    wsg_router_t *router;
    wsg_member_t *member;
};

/* Redis reads faster than the clients take them: while most outputs are behind (wsg_outq_ctx_is_congested:
 * they hold bytes the kernel refused and it still takes some), the next read (subscriber or stream reader)
 * waits WSG_ROUTER_READ_HOLD_MS at a time, so that the backlog waits in Redis instead of filling every
 * client's output to its slow-consumer limit. Redis cuts a pub/sub subscriber off past its
 * client-output-buffer-limit (the router recovers from that as from any loss); stream entries stay until
 * trimmed. Clients that stopped reading do not count (stuck), so they cannot hold the others back. Returns
 * the ms to wait, 0 to read on. */
#define WSG_ROUTER_READ_HOLD_MS 10

static inline uint64_t wsg_router_read_hold_ms(wsg_router_t *router)
{
    if (router->out_ctx == NULL || !wsg_outq_ctx_is_congested(router->out_ctx))
        return 0;
    WSG_STAT_ADD(router->stats, redis_read_held_ms, WSG_ROUTER_READ_HOLD_MS);
    return WSG_ROUTER_READ_HOLD_MS;
}

static inline uint64_t wsg_router_conn_id(const wsg_router_client_t *client)
{
    return client->out != NULL ? client->out->id : 0;
}

/* Sends what `client` gets for `msg` of `channel` (NULL: a notice made for the client), after the echo
 * filter, or holds it while stored messages are on their way. */
void wsg_router_deliver(wsg_router_t *router, wsg_router_client_t *client, const wsg_channel_t *channel,
                        wsg_msg_t *msg);

/* Hands `msg` (borrowed) to the run of `ch`, delivering the run first when it cannot take it. */
void wsg_router_add_to_run(wsg_router_t *router, wsg_channel_t *ch, wsg_msg_t *msg);

/* Stream channels (router_stream.c): follows the channel or lets it go, as its members want. */
void wsg_router_stream_sync(wsg_router_t *router, wsg_channel_t *ch);

/* A member of a stream channel joined: its resume point is read, and it catches up once the channel is
 * followed. */
void wsg_router_stream_join(wsg_router_t *router, wsg_member_t *m, wsg_str_t query);

/* A member of a stream channel leaves: its read in flight finds no member. */
void wsg_router_stream_leave(wsg_member_t *m);

/* Reads the stored value of `m`'s channel (GET), then waits for the barrier before sending it. */
void wsg_router_fetch_persisted(wsg_router_t *router, wsg_member_t *m);

/* The barrier of `m`'s channel has passed (or cannot be had): the stored value goes out, then the held
 * messages once every channel of the client is done. */
void wsg_router_finish_persisted(wsg_member_t *m);

/* A confirmation of the channel's barrier SUBSCRIBE arrived. */
void wsg_router_on_barrier(wsg_router_t *router, wsg_channel_t *ch);

#endif
