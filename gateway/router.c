/* Channel table, membership lists and the subscription state machine; fan-out of Redis messages. */
#include "router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* SUBSCRIBE arguments per command when many channels are (re)subscribed at once. */
#define SUBSCRIBE_BATCH 256

static uint32_t hash_name(const char *name, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}

int wsg_router_init(wsg_router_t *router, size_t max_pending)
{
    memset(router, 0, sizeof *router);
    router->run_max_bytes = max_pending / 4 < WSG_ROUTER_RUN_MAX_BYTES ? max_pending / 4 : WSG_ROUTER_RUN_MAX_BYTES;
    router->nbuckets = 64;
    router->buckets = calloc(router->nbuckets, sizeof(*router->buckets));
    return router->buckets ? 0 : -ENOMEM;
}

void wsg_router_dispose(wsg_router_t *router)
{
    for (uint32_t i = 0; i < router->run_count; i++)
        wsg_msg_unref(router->run[i]);
    router->run_count = 0;
    for (uint32_t i = 0; i < router->nbuckets; i++) {
        wsg_channel_t *ch = router->buckets[i];
        while (ch != NULL) {
            wsg_channel_t *next = ch->hash_next;
            free(ch);
            ch = next;
        }
    }
    free(router->buckets);
    router->buckets = NULL;
    router->nchannels = 0;
}

void wsg_router_set_redis(wsg_router_t *router, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd)
{
    router->sub = sub;
    router->cmd = cmd;
}

static wsg_channel_t *find(const wsg_router_t *router, const char *name, size_t len, uint32_t hash)
{
    for (wsg_channel_t *ch = router->buckets[hash & (router->nbuckets - 1)]; ch; ch = ch->hash_next)
        if (ch->hash == hash && ch->name_len == len && memcmp(ch->name, name, len) == 0)
            return ch;
    return NULL;
}

static void grow(wsg_router_t *router)
{
    uint32_t n = router->nbuckets * 2;
    wsg_channel_t **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        return; /* longer chains, still correct */
    for (uint32_t i = 0; i < router->nbuckets; i++) {
        wsg_channel_t *ch = router->buckets[i];
        while (ch != NULL) {
            wsg_channel_t *next = ch->hash_next;
            ch->hash_next = buckets[ch->hash & (n - 1)];
            buckets[ch->hash & (n - 1)] = ch;
            ch = next;
        }
    }
    free(router->buckets);
    router->buckets = buckets;
    router->nbuckets = n;
}

static wsg_channel_t *get_or_create(wsg_router_t *router, wsg_str_t name)
{
    uint32_t hash = hash_name(name.ptr, name.len);
    wsg_channel_t *ch = find(router, name.ptr, name.len, hash);
    if (ch != NULL)
        return ch;
    if (name.len > WSG_CHANNEL_NAME_MAX)
        return NULL;
    ch = calloc(1, sizeof(*ch) + name.len + 1);
    if (ch == NULL)
        return NULL;
    ch->hash = hash;
    ch->name_len = (uint16_t)name.len;
    memcpy(ch->name, name.ptr, name.len);
    ch->name[name.len] = '\0';
    ch->state = WSG_CHANNEL_UNSUBSCRIBED;
    uint32_t b = hash & (router->nbuckets - 1);
    ch->hash_next = router->buckets[b];
    router->buckets[b] = ch;
    if (++router->nchannels > router->nbuckets)
        grow(router);
    return ch;
}

static void remove_channel(wsg_router_t *router, wsg_channel_t *ch)
{
    wsg_channel_t **pp = &router->buckets[ch->hash & (router->nbuckets - 1)];
    while (*pp != ch)
        pp = &(*pp)->hash_next;
    *pp = ch->hash_next;
    router->nchannels--;
    free(ch);
}

/* Moves `ch` one step toward what its members want; at most one Redis command is in flight per channel, so
 * that hiredis's per-channel callback bookkeeping never sees SUBSCRIBE and UNSUBSCRIBE of one channel
 * overlap. Frees the channel when nobody needs it any more. */
static void sync_channel(wsg_router_t *router, wsg_channel_t *ch)
{
    bool want = ch->nmembers > 0;
    if (ch->state == WSG_CHANNEL_UNSUBSCRIBED) {
        if (want) {
            const char *name = ch->name;
            size_t len = ch->name_len;
            if (router->sub != NULL && wsg_redis_sub_subscribe(router->sub, &name, &len, 1) == 0)
                ch->state = WSG_CHANNEL_SUBSCRIBING;
            /* otherwise on_redis_ready subscribes it */
        } else if (ch->npublishers == 0) {
            remove_channel(router, ch);
        }
    } else if (ch->state == WSG_CHANNEL_SUBSCRIBED && !want) {
        if (wsg_redis_sub_unsubscribe(router->sub, ch->name, ch->name_len) == 0)
            ch->state = WSG_CHANNEL_UNSUBSCRIBING;
    }
}

int wsg_router_join(wsg_router_t *router, wsg_conn_t *conn, const wsg_str_t *subs, uint8_t nsubs,
                    const wsg_str_t *pubs, uint8_t npubs)
{
    wsg_router_end_run(router); /* messages read before the join are not the newcomer's */
    wsg_member_t *members = nsubs ? calloc(nsubs, sizeof(*members)) : NULL;
    wsg_channel_t **targets = npubs ? calloc(npubs, sizeof(*targets)) : NULL;
    if ((nsubs && members == NULL) || (npubs && targets == NULL))
        goto Error;
    /* Create every channel first so that a failure leaves nothing half-joined. */
    for (uint8_t i = 0; i < nsubs; i++)
        if ((members[i].channel = get_or_create(router, subs[i])) == NULL)
            goto Error;
    for (uint8_t i = 0; i < npubs; i++)
        if ((targets[i] = get_or_create(router, pubs[i])) == NULL)
            goto Error;
    conn->subs = members;
    conn->nsubs = nsubs;
    conn->pubs = targets;
    conn->npubs = npubs;
    conn->gets_pending = nsubs;
    for (uint8_t i = 0; i < npubs; i++)
        targets[i]->npublishers++;
    for (uint8_t i = 0; i < nsubs; i++) {
        wsg_member_t *m = &members[i];
        wsg_channel_t *ch = m->channel;
        m->conn = conn;
        m->prev = NULL;
        m->next = ch->members;
        if (ch->members != NULL)
            ch->members->prev = m;
        ch->members = m;
        ch->nmembers++;
        m->needs_get = true;
        if (ch->state == WSG_CHANNEL_SUBSCRIBED) {
            m->needs_get = false;
            wsg_conn_fetch_persisted(conn, i);
        } else {
            sync_channel(router, ch);
        }
    }
    return 0;
Error:
    /* Channels created above have no members or publishers yet: drop the unused ones. */
    for (uint8_t i = 0; members && i < nsubs; i++)
        if (members[i].channel != NULL)
            sync_channel(router, members[i].channel);
    for (uint8_t i = 0; targets && i < npubs; i++)
        if (targets[i] != NULL)
            sync_channel(router, targets[i]);
    free(members);
    free(targets);
    return -ENOMEM;
}

/* Hands the stored value to the member's connection: the barrier is passed (or cannot be had). */
static void finish_persisted(wsg_member_t *m)
{
    wsg_msg_t *value = m->persisted;
    m->persisted = NULL;
    m->awaits_barrier = false;
    wsg_conn_persisted_ready(m->conn, (uint8_t)(m - m->conn->subs), value);
    wsg_msg_unref(value);
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
            finish_persisted(m);
}

void wsg_router_on_persisted(wsg_router_t *router, wsg_conn_t *conn, uint8_t index, wsg_msg_t *value)
{
    wsg_router_end_run(router);
    wsg_member_t *m = &conn->subs[index];
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

static void on_barrier(wsg_router_t *router, wsg_channel_t *ch)
{
    ch->is_barrier_in_flight = false;
    ch->barriers_done = ch->barriers_sent;
    bool more = false;
    for (wsg_member_t *m = ch->members; m; m = m->next) {
        if (!m->awaits_barrier)
            continue;
        if ((int32_t)(m->barrier - ch->barriers_done) <= 0)
            finish_persisted(m);
        else
            more = true;
    }
    if (more)
        send_barrier(router, ch);
}

void wsg_router_unsubscribe(wsg_router_t *router, wsg_conn_t *conn)
{
    wsg_router_end_run(router); /* members leave only between runs */
    for (uint8_t i = 0; i < conn->nsubs; i++) {
        wsg_member_t *m = &conn->subs[i];
        wsg_channel_t *ch = m->channel;
        wsg_msg_unref(m->persisted);
        m->persisted = NULL;
        if (m->prev != NULL)
            m->prev->next = m->next;
        else
            ch->members = m->next;
        if (m->next != NULL)
            m->next->prev = m->prev;
        ch->nmembers--;
        sync_channel(router, ch);
    }
    free(conn->subs);
    conn->subs = NULL;
    conn->nsubs = 0;
}

void wsg_router_leave(wsg_router_t *router, wsg_conn_t *conn)
{
    wsg_router_unsubscribe(router, conn);
    for (uint8_t i = 0; i < conn->npubs; i++) {
        conn->pubs[i]->npublishers--;
        sync_channel(router, conn->pubs[i]);
    }
    free(conn->pubs);
    conn->pubs = NULL;
    conn->npubs = 0;
}

void wsg_router_on_redis_ready(wsg_router_t *router)
{
    wsg_router_end_run(router);
    const char *names[SUBSCRIBE_BATCH];
    size_t lens[SUBSCRIBE_BATCH];
    wsg_channel_t *batch[SUBSCRIBE_BATCH];
    size_t n = 0;
    for (uint32_t b = 0; b < router->nbuckets; b++) {
        for (wsg_channel_t *ch = router->buckets[b]; ch; ch = ch->hash_next) {
            if (ch->nmembers == 0 || ch->state != WSG_CHANNEL_UNSUBSCRIBED)
                continue;
            names[n] = ch->name;
            lens[n] = ch->name_len;
            batch[n++] = ch;
            if (n == SUBSCRIBE_BATCH) {
                if (wsg_redis_sub_subscribe(router->sub, names, lens, n) == 0)
                    for (size_t i = 0; i < n; i++)
                        batch[i]->state = WSG_CHANNEL_SUBSCRIBING;
                n = 0;
            }
        }
    }
    if (n > 0 && wsg_redis_sub_subscribe(router->sub, names, lens, n) == 0)
        for (size_t i = 0; i < n; i++)
            batch[i]->state = WSG_CHANNEL_SUBSCRIBING;
}

void wsg_router_on_redis_down(wsg_router_t *router)
{
    wsg_router_end_run(router); /* what was read before the loss is delivered */
    for (uint32_t b = 0; b < router->nbuckets; b++) {
        wsg_channel_t *ch = router->buckets[b];
        while (ch != NULL) {
            wsg_channel_t *next = ch->hash_next;
            ch->state = WSG_CHANNEL_UNSUBSCRIBED;
            ch->is_barrier_in_flight = false;
            ch->barriers_done = ch->barriers_sent;
            ch->needs_reread = ch->nmembers > 0;
            for (wsg_member_t *m = ch->members; m; m = m->next) {
                wsg_conn_forget_own_publications(m->conn);
                if (m->awaits_barrier)
                    finish_persisted(m);
            }
            if (ch->nmembers == 0 && ch->npublishers == 0)
                remove_channel(router, ch);
            ch = next;
        }
    }
}

/* After an outage: the key may hold a message published while the subscription was gone. */
typedef struct reread {
    wsg_router_t *router;
    size_t len;
    char name[];
} reread_t;

static void on_reread(void *arg, int status, const char *value, size_t len)
{
    reread_t *r = arg;
    wsg_router_t *router = r->router;
    wsg_channel_t *ch = router->buckets ? find(router, r->name, r->len, hash_name(r->name, r->len)) : NULL;
    if (status == 0 && value != NULL && len > 0 && ch != NULL && ch->nmembers > 0) {
        uint64_t h = wsg_hash_bytes(value, len);
        bool is_known = (ch->has_live && h == ch->last_live_hash) || (ch->has_stored && h == ch->stored_hash);
        ch->stored_hash = h;
        ch->has_stored = true;
        if (!is_known) {
            wsg_msg_t *msg = wsg_msg_new(value, len, ch->name, ch->name_len);
            if (msg != NULL) {
                WSG_INFO("redis_missed_message", "channel=%s len=%zu msg=\"stored during the outage: delivered\"",
                         ch->name, len);
                wsg_router_on_message(router, msg);
                wsg_router_end_run(router);
                wsg_msg_unref(msg);
            }
        }
    }
    free(r);
}

static void reread_key(wsg_router_t *router, wsg_channel_t *ch)
{
    if (router->cmd == NULL)
        return;
    reread_t *r = malloc(sizeof(*r) + ch->name_len + 1);
    if (r == NULL)
        return;
    r->router = router;
    r->len = ch->name_len;
    memcpy(r->name, ch->name, ch->name_len + 1);
    if (wsg_redis_cmd_get(router->cmd, ch->name, ch->name_len, on_reread, r) < 0)
        free(r);
}

void wsg_router_on_subscribed(wsg_router_t *router, const char *name, size_t len)
{
    wsg_router_end_run(router); /* a barrier confirms only the messages before it */
    wsg_channel_t *ch = find(router, name, len, hash_name(name, len));
    if (ch == NULL)
        return;
    if (ch->state != WSG_CHANNEL_SUBSCRIBING) {
        /* Replies come in order and only one subscription command is in flight per channel, so a
         * confirmation outside SUBSCRIBING is the barrier's. */
        if (ch->is_barrier_in_flight)
            on_barrier(router, ch);
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
            wsg_conn_fetch_persisted(m->conn, (uint8_t)(m - m->conn->subs));
        }
    }
    sync_channel(router, ch);
}

void wsg_router_on_unsubscribed(wsg_router_t *router, const char *name, size_t len)
{
    wsg_router_end_run(router);
    wsg_channel_t *ch = find(router, name, len, hash_name(name, len));
    if (ch == NULL || ch->state != WSG_CHANNEL_UNSUBSCRIBING)
        return;
    ch->state = WSG_CHANNEL_UNSUBSCRIBED;
    sync_channel(router, ch);
}

/* The run's frames back to back in one buffer, or NULL when out of memory (then members get the messages
 * one by one). */
static wsg_msg_t *join_run(const wsg_router_t *router)
{
    wsg_msg_t *batch = wsg_msg_new(NULL, router->run_bytes, NULL, 0);
    if (batch == NULL)
        return NULL;
    uint8_t *out = wsg_msg_payload(batch);
    for (uint32_t i = 0; i < router->run_count; i++) {
        memcpy(out, router->run[i]->frame, router->run[i]->frame_len);
        out += router->run[i]->frame_len;
    }
    batch->frame = wsg_msg_payload(batch);
    batch->frame_len = router->run_bytes;
    batch->nmsgs = router->run_count;
    batch->recv_ns = router->run[0]->recv_ns; /* the oldest: latency is counted from it for every message */
    return batch;
}

void wsg_router_end_run(wsg_router_t *router)
{
    uint32_t n = router->run_count;
    if (n == 0)
        return;
    wsg_msg_t *batch = n > 1 ? join_run(router) : NULL;
    wsg_channel_t *ch = router->run_channel;
    router->run_count = 0;
    router->run_bytes = 0;
    router->run_channel = NULL;
    /* Delivery only queues; no connection closes or leaves while this list is walked. */
    for (wsg_member_t *m = ch->members; m; m = m->next)
        wsg_conn_deliver_run(m->conn, m, batch, router->run, n);
    wsg_msg_unref(batch);
    for (uint32_t i = 0; i < n; i++)
        wsg_msg_unref(router->run[i]);
}

void wsg_router_on_message(wsg_router_t *router, wsg_msg_t *msg)
{
    wsg_channel_t *ch = find(router, msg->channel, msg->channel_len, hash_name(msg->channel, msg->channel_len));
    if (ch == NULL || ch->members == NULL)
        return;
    /* Hashed once per message: the outage re-read and every subscriber's echo filter use it. */
    msg->hash = wsg_hash_bytes(wsg_msg_payload(msg), msg->payload_len);
    ch->last_live_hash = msg->hash;
    ch->has_live = true;
    wsg_msg_frame_data(msg);
    if (router->run_count > 0 && (ch != router->run_channel || router->run_count == WSG_ROUTER_RUN_MAX ||
                                  router->run_bytes + msg->frame_len > router->run_max_bytes))
        wsg_router_end_run(router); /* every subscriber still sees the order Redis sent */
    router->run[router->run_count++] = wsg_msg_ref(msg);
    router->run_channel = ch;
    router->run_bytes += msg->frame_len;
}
