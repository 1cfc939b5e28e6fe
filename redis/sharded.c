/* Sharded pub/sub on Redis Cluster: SSUBSCRIBE per channel on its slot's master (see sharded.h). */
#include "sharded.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_slot.h"

/* Masters carrying channels (one pub/sub connection each). */
#define MAX_SHARDS 256

typedef struct shard {
    wsg_redis_sharded_t *s;
    int16_t index;
    wsg_redis_link_t *link;
    bool is_ready;
    bool was_down; /* lost since it was last ready: its return is reported */
    uint16_t port;
    char host[256];
} shard_t;

/* A channel this module subscribed (or is to subscribe): where, and how far. */
typedef struct entry {
    struct entry *next; /* in its hash bucket */
    int16_t shard;      /* -1: waiting for a map that names its slot's owner */
    bool is_sent;       /* SSUBSCRIBE went out on the shard's connection */
    bool is_confirmed;  /* and Redis confirmed it */
    bool is_unsubscribing;
    uint16_t slot;
    size_t len;
    char name[]; /* NUL-terminated */
} entry_t;

struct wsg_redis_sharded {
    uv_loop_t *loop;
    wsg_redis_cluster_t *cluster;
    wsg_redis_link_options_t opts;
    wsg_redis_addr_t addr; /* credentials and TLS of every master */
    const wsg_redis_sub_handler_t *handler;
    void *arg;
    shard_t *shards[MAX_SHARDS];
    unsigned nshards;
    entry_t **buckets;
    size_t nbuckets, nentries;
    bool has_map;
    bool is_closing;
    bool is_down_reported; /* on_partial_down was raised: on_ready is owed once every connection is ready */
    unsigned open_links;
    uint32_t holds; /* reads held at the owner's request (wsg_redis_sharded_holds) */
    void (*close_cb)(void *);
    void *close_arg;
};

/* ---- the channel table ----------------------------------------------------------------------------------
 */

static size_t hash_name(const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
    return (size_t)h;
}

static entry_t **slot_of(wsg_redis_sharded_t *s, const char *name, size_t len)
{
    entry_t **p = &s->buckets[hash_name(name, len) & (s->nbuckets - 1)];
    while (*p != NULL && !((*p)->len == len && memcmp((*p)->name, name, len) == 0))
        p = &(*p)->next;
    return p;
}

static entry_t *find_entry(wsg_redis_sharded_t *s, const char *name, size_t len)
{
    return *slot_of(s, name, len);
}

static int grow(wsg_redis_sharded_t *s)
{
    size_t n = s->nbuckets * 2;
    entry_t **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (entry_t *e = s->buckets[i], *next; e != NULL; e = next) {
            next = e->next;
            entry_t **head = &buckets[hash_name(e->name, e->len) & (n - 1)];
            e->next = *head;
            *head = e;
        }
    }
    free(s->buckets);
    s->buckets = buckets;
    s->nbuckets = n;
    return 0;
}

static entry_t *add_entry(wsg_redis_sharded_t *s, const char *name, size_t len)
{
    if (s->nentries >= s->nbuckets && grow(s) < 0)
        return NULL;
    entry_t *e = calloc(1, sizeof(*e) + len + 1);
    if (e == NULL)
        return NULL;
    memcpy(e->name, name, len);
    e->len = len;
    e->shard = -1;
    e->slot = wsg_cluster_key_slot(name, len);
    entry_t **p = slot_of(s, name, len);
    *p = e;
    s->nentries++;
    return e;
}

static void remove_entry(wsg_redis_sharded_t *s, entry_t *e)
{
    entry_t **p = slot_of(s, e->name, e->len);
    if (*p == e) {
        *p = e->next;
        s->nentries--;
        free(e);
    }
}

/* ---- sending --------------------------------------------------------------------------------------------
 */

static void on_ssubscribe_error(void *privdata, const redisReply *reply);

static int send_one(shard_t *shard, const char *verb, entry_t *e, wsg_redis_reply_cb on_error)
{
    const char *argv[2] = {verb, e->name};
    size_t argvlen[2] = {strlen(verb), e->len};
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, 2, argv, argvlen);
    if (len < 0)
        return -ENOMEM;
    /* The error callback gets the shard; the channel is named again in the reply's text. */
    int rc = wsg_redis_link_send_pubsub(shard->link, cmd, (size_t)len, 1, on_error, shard);
    free(cmd);
    return rc;
}

static shard_t *shard_for(wsg_redis_sharded_t *s, uint16_t slot);

/* Routes `e` to its slot's master and sends SSUBSCRIBE when that connection is ready. */
static void route(wsg_redis_sharded_t *s, entry_t *e)
{
    shard_t *shard = shard_for(s, e->slot);
    e->is_sent = e->is_confirmed = false;
    e->shard = shard != NULL ? shard->index : -1;
    if (shard == NULL) {
        wsg_redis_cluster_refresh(s->cluster);
        return;
    }
    if (shard->is_ready && send_one(shard, "SSUBSCRIBE", e, on_ssubscribe_error) == 0)
        e->is_sent = true;
}

/* An error answer to SSUBSCRIBE (a MOVED: the map was stale): the channels of that connection that are not
 * confirmed yet go through the map again once it is asked for again (those that were fine are confirmed
 * twice, which the caller takes as a barrier). */
static void on_ssubscribe_error(void *privdata, const redisReply *reply)
{
    shard_t *shard = privdata;
    wsg_redis_sharded_t *s = shard->s;
    if (reply == NULL || s->is_closing)
        return; /* the loss is reported by on_shard_down */
    wsg_redis_cluster_refresh(s->cluster);
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (entry_t *e = s->buckets[b]; e != NULL; e = e->next) {
            if (e->shard != shard->index || !e->is_sent || e->is_confirmed || e->is_unsubscribing)
                continue;
            e->is_sent = false;
            /* The map may already be new (then on_map has passed): go to the owner now; with the same stale
             * owner, wait for the map instead of bouncing off it. */
            char host[256];
            uint16_t port;
            if (wsg_redis_cluster_master_of(s->cluster, e->slot, host, sizeof host, &port) &&
                (port != shard->port || strcmp(host, shard->host) != 0))
                route(s, e);
        }
    }
}

/* ---- shards ---------------------------------------------------------------------------------------------
 */

/* Reports every channel sent on `shard` as lost (confirmed or not, the subscription is gone with the
 * connection). Gathered first: the caller subscribes again from the callback, which changes the table. */
static void report_lost_channels(wsg_redis_sharded_t *s, int16_t shard)
{
    entry_t *lost = NULL;
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (entry_t **p = &s->buckets[b]; *p != NULL;) {
            entry_t *e = *p;
            if (e->shard == shard && e->is_sent) {
                *p = e->next;
                s->nentries--;
                e->next = lost;
                lost = e;
            } else {
                p = &e->next;
            }
        }
    }
    for (entry_t *e = lost, *next; e != NULL; e = next) {
        next = e->next;
        if (!s->is_closing && s->handler->on_channel_lost != NULL)
            s->handler->on_channel_lost(s->arg, e->name, e->len);
        free(e);
    }
}

/* After a lost connection: on_ready once every master carrying channels has a ready connection again, whether
 * the lost master came back or its replica took over. The replica's connection is a new one, never down
 * itself, so its own return cannot be what is reported. */
static void report_ready_if_whole(wsg_redis_sharded_t *s)
{
    if (!s->is_down_reported || !wsg_redis_sharded_is_ready(s))
        return;
    s->is_down_reported = false;
    if (s->handler->on_ready != NULL)
        s->handler->on_ready(s->arg);
}

static void on_shard_ready(wsg_redis_link_t *link, void *arg)
{
    shard_t *shard = arg;
    wsg_redis_sharded_t *s = shard->s;
    shard->is_ready = true;
    /* Channels that waited for this connection. */
    for (size_t b = 0; b < s->nbuckets; b++)
        for (entry_t *e = s->buckets[b]; e != NULL; e = e->next)
            if (e->shard == shard->index && !e->is_sent && !e->is_unsubscribing &&
                send_one(shard, "SSUBSCRIBE", e, on_ssubscribe_error) == 0)
                e->is_sent = true;
    shard->was_down = false;
    report_ready_if_whole(s);
}

static void on_shard_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    shard_t *shard = arg;
    wsg_redis_sharded_t *s = shard->s;
    bool was_ready = shard->is_ready;
    shard->is_ready = false;
    if (s->is_closing)
        return;
    report_lost_channels(s, shard->index);
    wsg_redis_cluster_refresh(s->cluster); /* a replica may take over */
    if (was_ready || !shard->was_down) {
        shard->was_down = true;
        s->is_down_reported = true;
        char text[700];
        snprintf(text, sizeof text, "shard %s:%u: %s", shard->host, shard->port, why);
        if (s->handler->on_partial_down != NULL)
            s->handler->on_partial_down(s->arg, text, retry_ms);
    }
}

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

static void on_shard_push(wsg_redis_link_t *link, void *arg, const redisReply *reply)
{
    shard_t *shard = arg;
    wsg_redis_sharded_t *s = shard->s;
    if (s->is_closing || reply->elements < 3 || !is_str(reply->element[1]))
        return;
    const redisReply *kind = reply->element[0];
    const redisReply *chan = reply->element[1];
    if (kind->len == 8 && memcmp(kind->str, "smessage", 8) == 0) {
        if (is_str(reply->element[2]))
            s->handler->on_message(s->arg, chan->str, chan->len, (const uint8_t *)reply->element[2]->str,
                                   reply->element[2]->len);
        return;
    }
    entry_t *e = find_entry(s, chan->str, chan->len);
    if (kind->len == 10 && memcmp(kind->str, "ssubscribe", 10) == 0) {
        if (e != NULL && e->shard == shard->index) {
            e->is_confirmed = true;
            s->handler->on_subscribed(s->arg, chan->str, chan->len);
        }
        return;
    }
    if (kind->len == 12 && memcmp(kind->str, "sunsubscribe", 12) == 0) {
        if (e == NULL || e->shard != shard->index)
            return;
        bool was_asked = e->is_unsubscribing;
        remove_entry(s, e);
        if (was_asked) {
            s->handler->on_unsubscribed(s->arg, chan->str, chan->len);
        } else {
            /* Redis unsubscribed it itself: the slot moved to another master. */
            wsg_redis_cluster_refresh(s->cluster);
            if (s->handler->on_channel_lost != NULL)
                s->handler->on_channel_lost(s->arg, chan->str, chan->len);
        }
    }
}

static void on_shard_read_done(wsg_redis_link_t *link, void *arg)
{
    shard_t *shard = arg;
    wsg_redis_sharded_t *s = shard->s;
    if (!s->is_closing && s->handler->on_read_done != NULL)
        s->handler->on_read_done(s->arg);
}

static uint64_t on_shard_read_hold(wsg_redis_link_t *link, void *arg)
{
    shard_t *shard = arg;
    wsg_redis_sharded_t *s = shard->s;
    if (s->is_closing || s->handler->read_hold_ms == NULL)
        return 0;
    uint64_t hold_ms = s->handler->read_hold_ms(s->arg);
    s->holds += hold_ms > 0;
    return hold_ms;
}

static const wsg_redis_link_handler_t shard_handler = {
    .on_ready = on_shard_ready,
    .on_down = on_shard_down,
    .on_read_done = on_shard_read_done,
    .read_hold_ms = on_shard_read_hold,
    .on_push = on_shard_push,
};

static int connect_shard(wsg_redis_sharded_t *s, shard_t *shard)
{
    wsg_redis_addr_t addr = s->addr;
    snprintf(addr.host, sizeof addr.host, "%s", shard->host);
    addr.port = shard->port;
    wsg_redis_link_options_t opts = s->opts;
    opts.name = "wsgate-sub";
    opts.is_pubsub = true;
    opts.select_db = false;
    opts.next_target = NULL;
    shard->link = wsg_redis_link_new(s->loop, &addr, &opts, &shard_handler, shard);
    if (shard->link == NULL)
        return -ENOMEM;
    shard->was_down = false;
    s->open_links++;
    return 0;
}

/* The shard of `slot`'s master, connected on first use; NULL without an owner (or out of memory). */
static shard_t *shard_for(wsg_redis_sharded_t *s, uint16_t slot)
{
    char host[256];
    uint16_t port;
    if (!wsg_redis_cluster_master_of(s->cluster, slot, host, sizeof host, &port))
        return NULL;
    for (unsigned i = 0; i < s->nshards; i++) {
        shard_t *shard = s->shards[i];
        if (shard->port == port && strcmp(shard->host, host) == 0)
            return shard->link != NULL || connect_shard(s, shard) == 0 ? shard : NULL;
    }
    if (s->nshards == MAX_SHARDS)
        return NULL;
    shard_t *shard = calloc(1, sizeof(*shard));
    if (shard == NULL)
        return NULL;
    shard->s = s;
    shard->index = (int16_t)s->nshards;
    shard->port = port;
    snprintf(shard->host, sizeof shard->host, "%s", host);
    if (connect_shard(s, shard) < 0) {
        free(shard);
        return NULL;
    }
    s->shards[s->nshards++] = shard;
    return shard;
}

static void on_shard_closed(void *arg);

/* A former master (failed over, or its slots all moved): its channels went with its connection or with
 * sunsubscribe; stop reconnecting to it. */
static void retire_shard(wsg_redis_sharded_t *s, shard_t *shard)
{
    for (size_t b = 0; b < s->nbuckets; b++)
        for (entry_t *e = s->buckets[b]; e != NULL; e = e->next)
            if (e->shard == shard->index)
                return; /* still carries channels (their loss or move is on its way) */
    wsg_redis_link_close(shard->link, on_shard_closed, shard);
    shard->link = NULL;
    shard->is_ready = false;
}

/* ---- following the map ----------------------------------------------------------------------------------
 */

/* A new map: channels not sent yet go to their (maybe new) owner. Sent ones stay: a slot that moved is
 * announced by Redis with sunsubscribe, a lost master by its connection. */
static void on_map(void *arg)
{
    wsg_redis_sharded_t *s = arg;
    bool is_first = !s->has_map;
    s->has_map = true;
    for (size_t b = 0; b < s->nbuckets; b++)
        for (entry_t *e = s->buckets[b]; e != NULL; e = e->next)
            if (!e->is_sent && !e->is_unsubscribing)
                route(s, e);
    for (unsigned i = 0; i < s->nshards; i++) {
        shard_t *shard = s->shards[i];
        if (shard->link != NULL && !wsg_redis_cluster_is_master(s->cluster, shard->host, shard->port))
            retire_shard(s, shard);
    }
    if (is_first) {
        s->is_down_reported = false;
        if (s->handler->on_ready != NULL)
            s->handler->on_ready(s->arg);
        return;
    }
    /* A lost master replaced by its replica (whose connection may be ready already, or only later). */
    report_ready_if_whole(s);
}

static const wsg_redis_cluster_handler_t cluster_handler = {.on_map = on_map};

/* ---- the interface --------------------------------------------------------------------------------------
 */

wsg_redis_sharded_t *wsg_redis_sharded_new(uv_loop_t *loop, wsg_redis_cluster_t *cluster,
                                           const wsg_redis_link_options_t *opts,
                                           const wsg_redis_sub_handler_t *handler, void *arg)
{
    wsg_redis_sharded_t *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->buckets = calloc(64, sizeof(*s->buckets))) == NULL) {
        free(s);
        return NULL;
    }
    s->nbuckets = 64;
    s->loop = loop;
    s->cluster = cluster;
    s->opts = *opts;
    s->addr = *wsg_redis_cluster_addr(cluster);
    s->handler = handler;
    s->arg = arg;
    if (wsg_redis_cluster_observe(cluster, &cluster_handler, s) < 0) {
        free(s->buckets);
        free(s);
        return NULL;
    }
    s->has_map = wsg_redis_cluster_has_map(cluster);
    return s;
}

int wsg_redis_sharded_subscribe(wsg_redis_sharded_t *s, const char *const *channels, const size_t *lens,
                                size_t n)
{
    if (!s->has_map)
        return -ENOTCONN;
    for (size_t i = 0; i < n; i++) {
        entry_t *e = find_entry(s, channels[i], lens[i]);
        if (e != NULL && e->is_sent) {
            /* Already subscribed there: again on the same connection, as a barrier. */
            shard_t *shard = s->shards[e->shard];
            if (!shard->is_ready || send_one(shard, "SSUBSCRIBE", e, on_ssubscribe_error) < 0)
                return -ENOTCONN;
            continue;
        }
        if (e == NULL && (e = add_entry(s, channels[i], lens[i])) == NULL)
            return -ENOMEM;
        e->is_unsubscribing = false;
        route(s, e);
    }
    return 0;
}

int wsg_redis_sharded_unsubscribe(wsg_redis_sharded_t *s, const char *channel, size_t len)
{
    entry_t *e = find_entry(s, channel, len);
    if (e == NULL)
        return -ENOENT;
    if (!e->is_sent) {
        remove_entry(s, e); /* never sent: nothing to undo */
        return -ENOENT;
    }
    shard_t *shard = s->shards[e->shard];
    if (!shard->is_ready || send_one(shard, "SUNSUBSCRIBE", e, NULL) < 0)
        return -ENOTCONN;
    e->is_unsubscribing = true;
    return 0;
}

uint32_t wsg_redis_sharded_holds(const wsg_redis_sharded_t *s)
{
    return s->holds;
}

bool wsg_redis_sharded_is_ready(const wsg_redis_sharded_t *s)
{
    if (!s->has_map)
        return false;
    for (unsigned i = 0; i < s->nshards; i++)
        if (s->shards[i]->link != NULL && !s->shards[i]->is_ready)
            return false;
    return true;
}

void wsg_redis_sharded_reset(wsg_redis_sharded_t *s, const char *why)
{
    for (unsigned i = 0; i < s->nshards; i++)
        if (s->shards[i]->link != NULL)
            wsg_redis_link_reset(s->shards[i]->link, why);
}

static void finish_close(wsg_redis_sharded_t *s)
{
    for (unsigned i = 0; i < s->nshards; i++)
        free(s->shards[i]);
    for (size_t b = 0; b < s->nbuckets; b++)
        for (entry_t *e = s->buckets[b], *next; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    free(s->buckets);
    void (*cb)(void *) = s->close_cb;
    void *cb_arg = s->close_arg;
    free(s);
    if (cb != NULL)
        cb(cb_arg);
}

static void on_shard_closed(void *arg)
{
    shard_t *shard = arg;
    wsg_redis_sharded_t *s = shard->s;
    s->open_links--;
    if (!s->is_closing)
        return; /* a retired shard: known still, connected again when it masters slots */
    if (s->open_links == 0)
        finish_close(s);
}

static void on_idle_close(uv_handle_t *handle)
{
    wsg_redis_sharded_t *s = handle->data;
    free(handle);
    finish_close(s);
}

void wsg_redis_sharded_close(wsg_redis_sharded_t *s, void (*cb)(void *cb_arg), void *cb_arg)
{
    if (s->is_closing)
        return;
    s->is_closing = true;
    s->close_cb = cb;
    s->close_arg = cb_arg;
    if (s->open_links == 0) {
        /* No connection to wait for: the callback still comes from the loop. */
        uv_idle_t *idle = malloc(sizeof(*idle));
        if (idle == NULL) {
            finish_close(s);
            return;
        }
        uv_idle_init(s->loop, idle);
        idle->data = s;
        uv_close((uv_handle_t *)idle, on_idle_close);
        return;
    }
    for (unsigned i = 0; i < s->nshards; i++)
        if (s->shards[i]->link != NULL)
            wsg_redis_link_close(s->shards[i]->link, on_shard_closed, s->shards[i]);
}
