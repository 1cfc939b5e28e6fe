/* Stored messages: a joining client gets each channel's stored value (GET) before any live message, with the
 * ordering barrier that keeps a live message from being sent twice or out of order. Part of the router. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "router.h"
#include "router_internal.h"

/* True when a live message of `channel` with this payload is already held: then the stored value is that
 * very message, and sending both would duplicate it. */
static bool is_held(const wsg_router_client_t *client, const wsg_channel_t *channel, const wsg_msg_t *value)
{
    for (uint32_t i = 0; i < client->held_count; i++) {
        const wsg_msg_t *m = client->held[i].msg;
        if (client->held[i].channel == channel && m->payload_len == value->payload_len &&
            memcmp(wsg_msg_payload(m), wsg_msg_payload(value), value->payload_len) == 0)
            return true;
    }
    return false;
}

static void release_held(wsg_router_client_t *client)
{
    struct held_msg *held = client->held;
    uint32_t n = client->held_count;
    client->held = NULL;
    client->held_count = client->held_cap = 0;
    for (uint32_t i = 0; i < n; i++) {
        wsg_msg_t *out = wsg_router_variant(client->router, client, held[i].channel, held[i].msg);
        if (out != NULL)
            wsg_outq_send(client->out, out);
        else
            wsg_outq_fail(client->out, -ENOMEM); /* a message would be lost: drop the client instead */
        wsg_msg_unref(held[i].msg);
    }
    free(held);
}

static void get_finished(wsg_router_client_t *client)
{
    if (client->gets_pending > 0 && --client->gets_pending == 0)
        release_held(client);
}

/* ---- stored messages ---------------------------------------------------------------------------------
 * A joining client gets each channel's stored value (GET) before any live message. Live messages published
 * before the GET ran may still be on their way on the subscriber connection (another socket than the GET
 * reply), so after the GET the router re-SUBSCRIBEs the channel as a barrier (Redis confirms it after every
 * message published before it) and only then sends the value: unless a held live message already is it. */

/* The barrier is passed (or cannot be had): the stored value goes out, then the held messages once every
 * channel of the client is done. */
void wsg_router_finish_persisted(wsg_member_t *m)
{
    wsg_msg_t *value = m->persisted;
    wsg_router_client_t *client = m->client;
    m->persisted = NULL;
    m->awaits_barrier = false;
    if (value != NULL && !is_held(client, m->channel, value)) {
        wsg_msg_t *out = wsg_router_variant(client->router, client, m->channel, value);
        if (out != NULL)
            wsg_outq_send(client->out, out);
        else
            wsg_outq_fail(client->out, -ENOMEM);
    }
    wsg_msg_unref(value);
    get_finished(client);
}

static void send_barrier(wsg_router_t *router, wsg_channel_t *ch)
{
    const char *name = ch->name;
    size_t len = ch->name_len;
    if (ch->state == WSG_CHANNEL_SUBSCRIBED && router->sub != NULL &&
        wsg_redis_sub_subscribe(router->sub, &name, &len, 1) == 0) {
        ch->is_barrier_in_flight = true;
        ch->barriers_sent++;
        return;
    }
    /* No barrier possible (Redis is down): deliver now; at worst a message arrives twice. */
    for (wsg_member_t *m = ch->members; m; m = m->next)
        if (m->awaits_barrier)
            wsg_router_finish_persisted(m);
}

static void on_persisted(wsg_router_t *router, wsg_member_t *m, wsg_msg_t *value)
{
    wsg_router_end_run(router);
    wsg_channel_t *ch = m->channel;
    if (value != NULL) {
        ch->stored_hash = wsg_hash_bytes(wsg_msg_payload(value), value->payload_len);
        ch->has_stored = true;
    }
    m->persisted = value ? wsg_msg_ref(value) : NULL;
    m->awaits_barrier = true;
    /* A barrier already on its way may have been sent before this GET ran: wait for the next one. */
    m->barrier = ch->barriers_sent + 1;
    if (!ch->is_barrier_in_flight)
        send_barrier(router, ch);
}

void wsg_router_on_barrier(wsg_router_t *router, wsg_channel_t *ch)
{
    ch->is_barrier_in_flight = false;
    ch->barriers_done = ch->barriers_sent;
    bool more = false;
    for (wsg_member_t *m = ch->members; m; m = m->next) {
        if (!m->awaits_barrier)
            continue;
        if ((int32_t)(m->barrier - ch->barriers_done) <= 0)
            wsg_router_finish_persisted(m);
        else
            more = true;
    }
    if (more)
        send_barrier(router, ch);
}

static void on_get_done(void *arg, int status, const char *value, size_t len)
{
    struct get_request *req = arg;
    wsg_router_t *router = req->router;
    wsg_member_t *m = req->member;
    free(req);
    if (m == NULL)
        return; /* the client left meanwhile */
    m->get = NULL;
    wsg_msg_t *msg = NULL;
    if (status < 0)
        WSG_WARN("persisted_get_failed", WSG_F_UINT("conn", wsg_router_conn_id(m->client)),
                 WSG_F_CHANNEL("channel", m->channel->name, m->channel->name_len), WSG_F_INT("err", status));
    else if (value != NULL && len > 0 && (msg = wsg_msg_new_data(value, len)) == NULL)
        WSG_WARN("persisted_get_failed", WSG_F_UINT("conn", wsg_router_conn_id(m->client)),
                 WSG_F_CHANNEL("channel", m->channel->name, m->channel->name_len), WSG_F_UINT("len", len),
                 WSG_F_INT("err", -ENOMEM));
    on_persisted(router, m, msg);
    wsg_msg_unref(msg);
}

void wsg_router_fetch_persisted(wsg_router_t *router, wsg_member_t *m)
{
    const wsg_channel_t *ch = m->channel;
    struct get_request *req = malloc(sizeof(*req));
    int rc = -ENOMEM;
    if (req != NULL) {
        *req = (struct get_request){router, m};
        rc = router->cmd != NULL ? wsg_redis_cmd_get(router->cmd, ch->name, ch->name_len, on_get_done, req)
                                 : -ENOTCONN;
    }
    if (rc < 0) {
        free(req);
        WSG_WARN("persisted_get_failed", WSG_F_UINT("conn", wsg_router_conn_id(m->client)),
                 WSG_F_CHANNEL("channel", ch->name, ch->name_len), WSG_F_INT("err", rc));
        get_finished(m->client);
        return;
    }
    m->get = req;
}
