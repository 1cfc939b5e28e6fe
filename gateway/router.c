/* Channel table, membership lists, the subscription state machine, held messages, the echo filter, and
 * fan-out of Redis messages in runs (stored messages and their barrier: router_stored.c). */
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "channel.h"
#include "log.h"
#include "router_internal.h"

/* SUBSCRIBE arguments per command when many channels are (re)subscribed at once. */
#define SUBSCRIBE_BATCH 256

int wsg_router_init(wsg_router_t *router, size_t soft_limit, wsg_stats_t *stats,
                    const wsg_router_observer_t *observer, void *arg)
{
    memset(router, 0, sizeof *router);
    router->run_max_bytes =
        soft_limit / 4 < WSG_ROUTER_RUN_MAX_BYTES ? soft_limit / 4 : WSG_ROUTER_RUN_MAX_BYTES;
    router->soft_limit = soft_limit;
    router->stats = stats;
    router->observer = observer;
    router->observer_arg = arg;
    return wsg_channels_init(&router->channels);
}

void wsg_router_dispose(wsg_router_t *router)
{
    for (uint32_t i = 0; i < router->run_count; i++)
        wsg_msg_unref(router->run[i]);
    router->run_count = 0;
    wsg_channels_dispose(&router->channels);
}

void wsg_router_set_redis(wsg_router_t *router, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd)
{
    router->sub = sub;
    router->cmd = cmd;
}

/* Moves `ch` one step toward what its members want; at most one Redis command is in flight per channel, so
 * that hiredis's per-channel callback bookkeeping never sees SUBSCRIBE and UNSUBSCRIBE of one channel
 * overlap. Frees the channel when nobody needs it any more. */
static void sync_channel(wsg_router_t *router, wsg_channel_t *ch)
{
    if (ch->is_stream) {
        wsg_router_stream_sync(router, ch);
        return;
    }
    bool want = ch->nmembers > 0;
    if (ch->state == WSG_CHANNEL_UNSUBSCRIBED) {
        if (want) {
            const char *name = ch->name;
            size_t len = ch->name_len;
            if (router->sub != NULL && wsg_redis_sub_subscribe(router->sub, &name, &len, 1) == 0)
                ch->state = WSG_CHANNEL_SUBSCRIBING;
            /* otherwise the link's on_ready subscribes it */
        } else if (ch->npublishers == 0) {
            wsg_channels_remove(&router->channels, ch);
        }
    } else if (ch->state == WSG_CHANNEL_SUBSCRIBED && !want) {
        if (wsg_redis_sub_unsubscribe(router->sub, ch->name, ch->name_len) == 0)
            ch->state = WSG_CHANNEL_UNSUBSCRIBING;
    }
}

/* ---- delivery to one client -------------------------------------------------------------------------- */

static void hold(wsg_router_client_t *client, const wsg_channel_t *channel, wsg_msg_t *msg)
{
    if (client->held_count == client->held_cap) {
        uint32_t cap = client->held_cap ? client->held_cap * 2 : 8;
        struct held_msg *held = realloc(client->held, cap * sizeof(*held));
        if (held == NULL) {
            wsg_outq_fail(client->out, -ENOMEM); /* a message would be lost: drop the client instead */
            return;
        }
        client->held = held;
        client->held_cap = cap;
    }
    client->held[client->held_count++] = (struct held_msg){wsg_msg_ref(msg), channel};
}

static void drop_held(wsg_router_client_t *client)
{
    for (uint32_t i = 0; i < client->held_count; i++)
        wsg_msg_unref(client->held[i].msg);
    free(client->held);
    client->held = NULL;
    client->held_count = client->held_cap = 0;
}

/* The wsgate.v1 envelope of `msg` of `channel`, made once and kept with the message. NULL when out of memory.
 */
static wsg_msg_t *envelope_of(wsg_router_t *router, const wsg_channel_t *channel, wsg_msg_t *msg)
{
    if (msg->alt == NULL) {
        char label[WSG_CHANNEL_NAME_MAX + 1];
        ssize_t n = wsg_channel_label(channel->name, channel->name_len, router->prefix, label, sizeof label);
        if (n < 0)
            return NULL;
        msg->alt = wsg_msg_new_envelope((wsg_str_t){label, (size_t)n}, msg->has_id ? &msg->id : NULL,
                                        wsg_msg_payload(msg), msg->payload_len);
        if (msg->alt == NULL)
            return NULL;
        msg->alt->recv_ns = msg->recv_ns;
        msg->alt->hash = msg->hash;
    }
    return msg->alt;
}

wsg_msg_t *wsg_router_variant(wsg_router_t *router, const wsg_router_client_t *client,
                              const wsg_channel_t *channel, wsg_msg_t *msg)
{
    if (!client->is_v1 || channel == NULL)
        return msg; /* a notice (no channel) is made for its client already */
    return envelope_of(router, channel, msg);
}

/* Sends what `client` gets for `msg` of `channel` (NULL: a notice made for it), or holds it back while a
 * stored message is still on its way. */
void wsg_router_deliver(wsg_router_t *router, wsg_router_client_t *client, const wsg_channel_t *channel,
                        wsg_msg_t *msg)
{
    if (channel != NULL && !client->is_echo && !wsg_echo_filter_is_empty(&client->echo) &&
        (channel == router->reread_channel
             ? wsg_echo_filter_take_lost(&client->echo, channel, msg->hash, msg->payload_len)
             : wsg_echo_filter_take(&client->echo, channel, msg->hash, msg->payload_len)))
        return;
    if (client->gets_pending > 0) {
        hold(client, channel, msg);
        return;
    }
    wsg_msg_t *out = wsg_router_variant(router, client, channel, msg);
    if (out == NULL)
        wsg_outq_fail(client->out, -ENOMEM); /* a message would be lost: drop the client instead */
    else
        wsg_outq_send(client->out, out);
}

/* `run` (may be NULL) holds the `n` messages back to back, as the client reads them (raw or wsgate.v1): one
 * queue entry for a client that takes every message as it is; a client that filters its own echoes, holds
 * messages back or has seen some of them (a stream member's cursor) gets them one by one. */
static void deliver_run(wsg_router_t *router, wsg_member_t *m, const wsg_channel_t *channel, wsg_msg_t *run,
                        wsg_msg_t *const *msgs, uint32_t n)
{
    wsg_router_client_t *client = m->client;
    wsg_stream_id_t seen = {0, 0};
    bool is_filtered = false;
    if (channel->is_stream) {
        if (m->stream->state != WSG_MEMBER_LIVE)
            return; /* catching up: its own reads cover these entries */
        seen = m->stream->cursor;
        if (wsg_stream_id_cmp(msgs[n - 1]->id, seen) <= 0)
            return;
        if (wsg_stream_id_cmp(msgs[0]->id, seen) <= 0) {
            run = NULL;
            is_filtered = true;
        }
        m->stream->cursor = msgs[n - 1]->id;
    }
    if (run != NULL && client->gets_pending == 0 &&
        (client->is_echo || wsg_echo_filter_is_empty(&client->echo))) {
        wsg_outq_send(client->out, run);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!is_filtered || wsg_stream_id_cmp(msgs[i]->id, seen) > 0)
            wsg_router_deliver(router, client, channel, msgs[i]);
}

/* ---- joining and leaving --------------------------------------------------------------------------------
 */

/* The channel called `name`, created when missing, and known as a stream channel or not. */
static wsg_channel_t *get_channel(wsg_router_t *router, wsg_str_t name)
{
    wsg_channel_t *ch = wsg_channels_get(&router->channels, name);
    if (ch != NULL && ch->nmembers == 0 && ch->npublishers == 0 && ch->state == WSG_CHANNEL_UNSUBSCRIBED)
        ch->is_stream = wsg_router_is_stream(router, name);
    return ch;
}

int wsg_router_join(wsg_router_t *router, wsg_router_client_t *client, const wsg_str_t *subs, uint8_t nsubs,
                    const wsg_str_t *pubs, uint8_t npubs, wsg_str_t query)
{
    wsg_router_end_run(router); /* messages read before the join are not the newcomer's */
    wsg_member_t *members = nsubs ? calloc(nsubs, sizeof(*members)) : NULL;
    wsg_channel_t **targets = npubs ? calloc(npubs, sizeof(*targets)) : NULL;
    if ((nsubs && members == NULL) || (npubs && targets == NULL))
        goto Error;
    /* Create every channel first so that a failure leaves nothing half-joined. */
    for (uint8_t i = 0; i < nsubs; i++) {
        if ((members[i].channel = get_channel(router, subs[i])) == NULL)
            goto Error;
        if (members[i].channel->is_stream &&
            (members[i].stream = calloc(1, sizeof(*members[i].stream))) == NULL)
            goto Error;
    }
    for (uint8_t i = 0; i < npubs; i++)
        if ((targets[i] = get_channel(router, pubs[i])) == NULL)
            goto Error;
    client->router = router;
    client->subs = members;
    client->nsubs = nsubs;
    client->pubs = targets;
    client->npubs = npubs;
    client->gets_pending = 0;
    for (uint8_t i = 0; i < nsubs; i++)
        client->gets_pending += !members[i].channel->is_stream; /* streams send their last entry themselves */
    for (uint8_t i = 0; i < npubs; i++)
        targets[i]->npublishers++;
    for (uint8_t i = 0; i < nsubs; i++) {
        wsg_member_t *m = &members[i];
        wsg_channel_t *ch = m->channel;
        m->client = client;
        m->prev = NULL;
        m->next = ch->members;
        if (ch->members != NULL)
            ch->members->prev = m;
        ch->members = m;
        ch->nmembers++;
        ch->nv1 += client->is_v1;
        if (ch->is_stream) {
            wsg_router_stream_join(router, m, query);
        } else if (ch->state == WSG_CHANNEL_SUBSCRIBED) {
            wsg_router_fetch_persisted(router, m);
        } else {
            m->needs_get = true;
            sync_channel(router, ch);
        }
    }
    return 0;
Error:
    /* Channels created above have no members or publishers yet: drop the unused ones. */
    for (uint8_t i = 0; members && i < nsubs; i++) {
        free(members[i].stream);
        if (members[i].channel != NULL)
            sync_channel(router, members[i].channel);
    }
    for (uint8_t i = 0; targets && i < npubs; i++)
        if (targets[i] != NULL)
            sync_channel(router, targets[i]);
    free(members);
    free(targets);
    return -ENOMEM;
}

void wsg_router_unsubscribe(wsg_router_t *router, wsg_router_client_t *client)
{
    wsg_router_end_run(router); /* members leave only between runs */
    for (uint8_t i = 0; i < client->nsubs; i++) {
        wsg_member_t *m = &client->subs[i];
        wsg_channel_t *ch = m->channel;
        if (m->get != NULL)
            m->get->member = NULL; /* its reply finds no member */
        wsg_router_stream_leave(m);
        wsg_msg_unref(m->persisted);
        if (m->prev != NULL)
            m->prev->next = m->next;
        else
            ch->members = m->next;
        if (m->next != NULL)
            m->next->prev = m->prev;
        ch->nmembers--;
        ch->nv1 -= client->is_v1;
        sync_channel(router, ch);
    }
    free(client->subs);
    client->subs = NULL;
    client->nsubs = 0;
    client->gets_pending = 0;
    drop_held(client);
    wsg_echo_filter_dispose(&client->echo);
}

void wsg_router_leave(wsg_router_t *router, wsg_router_client_t *client)
{
    wsg_router_unsubscribe(router, client);
    for (uint8_t i = 0; i < client->npubs; i++) {
        client->pubs[i]->npublishers--;
        sync_channel(router, client->pubs[i]);
    }
    free(client->pubs);
    client->pubs = NULL;
    client->npubs = 0;
}

/* ---- the echo filter ---------------------------------------------------------------------------------- */

void wsg_router_note_publication(wsg_router_t *router, wsg_router_client_t *client,
                                 const wsg_channel_t *channel, const void *data, size_t len)
{
    if (client->is_echo || channel->state != WSG_CHANNEL_SUBSCRIBED)
        return; /* without a live subscription the message cannot come back */
    bool is_subscribed = false;
    for (uint8_t i = 0; i < client->nsubs && !is_subscribed; i++)
        is_subscribed = client->subs[i].channel == channel;
    if (!is_subscribed)
        return;
    wsg_echo_filter_note(&client->echo, channel, wsg_hash_bytes(data, len), len);
}

void wsg_router_forget_publications(wsg_router_client_t *client)
{
    wsg_echo_filter_clear(&client->echo);
}

/* ---- the subscriber link ---------------------------------------------------------------------------- */

/* Batches SUBSCRIBE commands over the channels that want one after a reconnect. */
typedef struct resubscribe {
    wsg_router_t *router;
    const char *names[SUBSCRIBE_BATCH];
    size_t lens[SUBSCRIBE_BATCH];
    wsg_channel_t *batch[SUBSCRIBE_BATCH];
    size_t n;
} resubscribe_t;

static void send_subscribe_batch(resubscribe_t *r)
{
    if (r->n > 0 && wsg_redis_sub_subscribe(r->router->sub, r->names, r->lens, r->n) == 0)
        for (size_t i = 0; i < r->n; i++)
            r->batch[i]->state = WSG_CHANNEL_SUBSCRIBING;
    r->n = 0;
}

static void add_to_subscribe_batch(wsg_channel_t *ch, void *arg)
{
    resubscribe_t *r = arg;
    if (ch->nmembers == 0 || ch->state != WSG_CHANNEL_UNSUBSCRIBED || ch->is_stream)
        return;
    r->names[r->n] = ch->name;
    r->lens[r->n] = ch->name_len;
    r->batch[r->n++] = ch;
    if (r->n == SUBSCRIBE_BATCH)
        send_subscribe_batch(r);
}

static void on_link_ready(void *arg)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router);
    router->observer->on_link_up(router->observer_arg);
    resubscribe_t r = {.router = router};
    wsg_channels_each(&router->channels, add_to_subscribe_batch, &r);
    send_subscribe_batch(&r);
}

/* The subscription is gone: the channel waits for the next on_link_ready, and its key is re-read then. */
static void lose_subscription(wsg_channel_t *ch, void *arg)
{
    wsg_router_t *router = arg;
    if (ch->is_stream)
        return; /* read by the stream reader, which keeps its place */
    ch->state = WSG_CHANNEL_UNSUBSCRIBED;
    ch->is_barrier_in_flight = false;
    ch->barriers_done = ch->barriers_sent;
    ch->needs_reread = ch->nmembers > 0;
    for (wsg_member_t *m = ch->members; m; m = m->next) {
        wsg_echo_filter_lose(&m->client->echo, ch); /* their echoes may never come, or come from the key */
        if (m->awaits_barrier)
            wsg_router_finish_persisted(m);
    }
    if (ch->nmembers == 0 && ch->npublishers == 0)
        wsg_channels_remove(&router->channels, ch);
}

static void on_link_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router); /* what was read before the loss is delivered */
    router->observer->on_link_down(router->observer_arg, why, retry_ms);
    wsg_channels_each(&router->channels, lose_subscription, router);
}

/* Hands `msg` (borrowed) to the run, delivering the run first when it cannot take it. */
void wsg_router_add_to_run(wsg_router_t *router, wsg_channel_t *ch, wsg_msg_t *msg)
{
    if (router->run_count > 0 && (ch != router->run_channel || router->run_count == WSG_ROUTER_RUN_MAX ||
                                  router->run_bytes + msg->frame_len > router->run_max_bytes))
        wsg_router_end_run(router); /* every subscriber still sees the order Redis sent */
    router->run[router->run_count++] = wsg_msg_ref(msg);
    router->run_channel = ch;
    router->run_bytes += msg->frame_len;
}

/* Frames a message of `ch` once (hashed for the echo filter and the outage re-read) and adds it to the run.
 * Borrows the bytes. */
static void route(wsg_router_t *router, wsg_channel_t *ch, const void *payload, size_t len)
{
    wsg_msg_t *msg = wsg_msg_new_data(payload, len);
    if (msg == NULL) {
        WSG_WARN("message_lost", WSG_F_CHANNEL("channel", ch->name, ch->name_len), WSG_F_UINT("len", len),
                 WSG_F_STR("why", "out of memory"));
        return;
    }
    msg->recv_ns = uv_hrtime();
    msg->hash = wsg_hash_bytes(payload, len);
    ch->last_live_hash = msg->hash;
    ch->has_live = true;
    wsg_router_add_to_run(router, ch, msg);
    wsg_msg_unref(msg);
}

static void on_link_message(void *arg, const char *channel, size_t channel_len, const uint8_t *payload,
                            size_t len)
{
    wsg_router_t *router = arg;
    wsg_channel_t *ch = wsg_channels_find(&router->channels, channel, channel_len);
    if (ch == NULL) {
        router->observer->on_other_message(router->observer_arg, channel, channel_len, payload, len);
        return;
    }
    if (ch->is_stream)
        return; /* never subscribed: its messages come from its stream */
    WSG_STAT_ADD(router->stats, messages_from_redis, 1);
    if (ch->members != NULL)
        route(router, ch, payload, len);
}

/* After an outage: the key may hold a message published while the subscription was gone. */
typedef struct reread {
    wsg_router_t *router;
    size_t len;
    char name[];
} reread_t;

/* The key has been read again (or cannot be): the publications lost with the subscription are forgotten. */
static void forget_lost_echoes(wsg_channel_t *ch)
{
    for (wsg_member_t *m = ch->members; m; m = m->next)
        wsg_echo_filter_forget_lost(&m->client->echo, ch);
}

static void on_reread(void *arg, int status, const char *value, size_t len)
{
    reread_t *r = arg;
    wsg_router_t *router = r->router;
    wsg_channel_t *ch = wsg_channels_find(&router->channels, r->name, r->len);
    if (ch == NULL) {
        free(r);
        return;
    }
    if (status == 0 && value != NULL && len > 0 && ch->nmembers > 0) {
        uint64_t h = wsg_hash_bytes(value, len);
        bool is_known = (ch->has_live && h == ch->last_live_hash) || (ch->has_stored && h == ch->stored_hash);
        ch->stored_hash = h;
        ch->has_stored = true;
        if (!is_known) {
            WSG_INFO("redis_missed_message", WSG_F_CHANNEL("channel", ch->name, ch->name_len),
                     WSG_F_UINT("len", len), WSG_F_STR("msg", "stored during the outage: delivered"));
            wsg_router_end_run(router);
            /* A client's own message found there, published before the loss, is not sent back to it. */
            router->reread_channel = ch;
            route(router, ch, value, len);
            wsg_router_end_run(router);
            router->reread_channel = NULL;
        }
    }
    forget_lost_echoes(ch);
    free(r);
}

static void reread_key(wsg_router_t *router, wsg_channel_t *ch)
{
    reread_t *r = router->cmd != NULL ? malloc(sizeof(*r) + ch->name_len + 1) : NULL;
    if (r == NULL) {
        forget_lost_echoes(ch);
        return;
    }
    r->router = router;
    r->len = ch->name_len;
    memcpy(r->name, ch->name, ch->name_len + 1);
    if (wsg_redis_cmd_get(router->cmd, ch->name, ch->name_len, on_reread, r) < 0) {
        free(r);
        forget_lost_echoes(ch);
    }
}

static void on_link_subscribed(void *arg, const char *name, size_t len)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router); /* a barrier confirms only the messages before it */
    wsg_channel_t *ch = wsg_channels_find(&router->channels, name, len);
    if (ch == NULL || ch->is_stream)
        return;
    WSG_DEBUG("redis_subscribed", WSG_F_CHANNEL("channel", ch->name, ch->name_len));
    if (ch->state != WSG_CHANNEL_SUBSCRIBING) {
        /* Replies come in order and only one subscription command is in flight per channel, so a
         * confirmation outside SUBSCRIBING is the barrier's. */
        if (ch->is_barrier_in_flight)
            wsg_router_on_barrier(router, ch);
        return;
    }
    ch->state = WSG_CHANNEL_SUBSCRIBED;
    if (ch->needs_reread) {
        ch->needs_reread = false;
        reread_key(router, ch);
    }
    for (wsg_member_t *m = ch->members; m; m = m->next) {
        if (m->needs_get) {
            m->needs_get = false;
            wsg_router_fetch_persisted(router, m);
        }
    }
    sync_channel(router, ch);
}

static void on_link_unsubscribed(void *arg, const char *name, size_t len)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router);
    wsg_channel_t *ch = wsg_channels_find(&router->channels, name, len);
    if (ch == NULL || ch->state != WSG_CHANNEL_UNSUBSCRIBING || ch->is_stream)
        return;
    WSG_DEBUG("redis_unsubscribed", WSG_F_CHANNEL("channel", ch->name, ch->name_len));
    ch->state = WSG_CHANNEL_UNSUBSCRIBED;
    sync_channel(router, ch);
}

static void on_link_read_done(void *arg)
{
    wsg_router_end_run(arg);
}

static uint64_t on_link_read_hold(void *arg)
{
    wsg_router_t *router = arg;
    return wsg_router_read_hold_ms(router);
}

/* Sharded pub/sub: one channel's subscription is gone (its master was lost or its slot moved); it is
 * subscribed again at once, on the slot's current owner, and its key re-read once confirmed. */
static void on_link_channel_lost(void *arg, const char *name, size_t len)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router);
    wsg_channel_t *ch = wsg_channels_find(&router->channels, name, len);
    if (ch == NULL || ch->state == WSG_CHANNEL_UNSUBSCRIBED || ch->is_stream)
        return;
    bool is_kept = ch->nmembers > 0 || ch->npublishers > 0;
    lose_subscription(ch, router); /* may free the channel */
    if (is_kept)
        sync_channel(router, ch);
}

static void on_link_partial_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_router_t *router = arg;
    router->observer->on_link_down(router->observer_arg, why, retry_ms);
}

const wsg_redis_sub_handler_t wsg_router_sub_handler = {
    .on_ready = on_link_ready,
    .on_down = on_link_down,
    .on_subscribed = on_link_subscribed,
    .on_unsubscribed = on_link_unsubscribed,
    .on_message = on_link_message,
    .on_read_done = on_link_read_done,
    .read_hold_ms = on_link_read_hold,
    .on_channel_lost = on_link_channel_lost,
    .on_partial_down = on_link_partial_down,
};

/* The run as wsgate.v1 clients read it: the envelopes of its messages back to back. NULL when out of memory
 * (then each client gets the messages one by one, and a missing envelope drops the client). */
static wsg_msg_t *envelope_run(wsg_router_t *router, const wsg_channel_t *ch)
{
    wsg_msg_t *alts[WSG_ROUTER_RUN_MAX];
    for (uint32_t i = 0; i < router->run_count; i++)
        if ((alts[i] = envelope_of(router, ch, router->run[i])) == NULL)
            return NULL;
    return wsg_msg_new_run(alts, router->run_count);
}

void wsg_router_end_run(wsg_router_t *router)
{
    uint32_t n = router->run_count;
    if (n == 0)
        return;
    wsg_channel_t *ch = router->run_channel;
    /* NULL: one by one. Made only for the kinds of clients the channel has. */
    wsg_msg_t *run = n > 1 && ch->nmembers > ch->nv1 ? wsg_msg_new_run(router->run, n) : NULL;
    wsg_msg_t *run_v1 = n > 1 && ch->nv1 > 0 ? envelope_run(router, ch) : NULL;
    router->run_count = 0;
    router->run_bytes = 0;
    router->run_channel = NULL;
    /* Outputs only queue: no client closes or leaves while this list is walked. */
    for (wsg_member_t *m = ch->members; m; m = m->next)
        deliver_run(router, m, ch, m->client->is_v1 ? run_v1 : run, router->run, n);
    wsg_msg_unref(run);
    wsg_msg_unref(run_v1);
    for (uint32_t i = 0; i < n; i++)
        wsg_msg_unref(router->run[i]);
}
