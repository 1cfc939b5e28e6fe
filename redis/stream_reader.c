/* Stream reader: one XREAD at a time over every followed stream, the last id of each, CLIENT UNBLOCK when the
 * set grows, a watchdog on a read that never returns. */
#include "stream_reader.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_slot.h"
#include "stream_cmds.h"

/* Entries per stream in one reply: bounds the work of one batch. */
#define READ_COUNT "256"
#define RETRY_AFTER_ERROR_MS 1000

typedef struct followed {
    struct followed *hash_next;
    struct followed *prev, *next; /* the list XREAD is built from */
    wsg_stream_id_t last;
    uint32_t hash;
    uint16_t slot; /* Redis Cluster: its key's slot */
    size_t len;
    char name[]; /* NUL-terminated */
} followed_t;

struct wsg_redis_streams {
    wsg_redis_link_t *link;       /* a connection of its own; NULL with a cluster */
    wsg_redis_cluster_t *cluster; /* borrowed: Redis Cluster, polled through the masters' connections */
    uint64_t poll_ms;             /* cluster: the wait between polls that found nothing */
    unsigned polls_out;           /* cluster: XREADs of the current poll not answered yet */
    bool has_poll_entries;        /* cluster: the current poll found entries */
    bool has_poll_loss;           /* cluster: a connection was lost under the current poll */
    bool is_up;                   /* cluster: on_ready was reported last, not on_down */
    unsigned idle_polls;          /* cluster: polls in a row that found nothing (up to 3) */
    wsg_redis_cmd_t *cmd;         /* borrowed: CLIENT UNBLOCK goes there */
    const wsg_redis_streams_handler_t *handler;
    void *arg;
    followed_t **buckets;
    uint32_t nbuckets; /* a power of two */
    size_t count;
    followed_t *head;
    long long client_id; /* of the reader's connection (CLIENT ID), -1 until known */
    uint64_t block_ms;
    uint64_t watchdog_ms;    /* block_ms + the connect timeout */
    uv_timer_t timer;        /* the watchdog of a read in flight, or the retry after an error */
    bool is_reading;         /* an XREAD is in flight */
    bool is_holding;         /* the timer ends a wait the handler asked for (on_batch_done) */
    unsigned probes_pending; /* TYPE questions in flight after a WRONGTYPE */
    bool is_unblock_sent;    /* ... and a CLIENT UNBLOCK for it */
    bool is_closing;
    int handles_open;
    void (*close_cb)(void *);
    void *close_arg;
};

static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static followed_t *find(const wsg_redis_streams_t *r, const char *key, size_t len)
{
    uint32_t h = hash_name(key, len);
    for (followed_t *f = r->buckets[h & (r->nbuckets - 1)]; f; f = f->hash_next)
        if (f->hash == h && f->len == len && memcmp(f->name, key, len) == 0)
            return f;
    return NULL;
}

static int grow(wsg_redis_streams_t *r)
{
    uint32_t n = r->nbuckets * 2;
    followed_t **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < r->nbuckets; i++) {
        followed_t *f = r->buckets[i];
        while (f != NULL) {
            followed_t *next = f->hash_next;
            f->hash_next = buckets[f->hash & (n - 1)];
            buckets[f->hash & (n - 1)] = f;
            f = next;
        }
    }
    free(r->buckets);
    r->buckets = buckets;
    r->nbuckets = n;
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------------------ */

static void on_read_reply(void *privdata, const redisReply *reply);
static void on_watchdog(uv_timer_t *timer);
static int probe_types(wsg_redis_streams_t *r, int slot);
static void poll_all(wsg_redis_streams_t *r);
static void maybe_close_handles(wsg_redis_streams_t *r);
static void on_timer_closed(uv_handle_t *handle);

static void on_unblocked(void *arg, int status, const redisReply *reply)
{
    (void)arg;
    (void)status;
    (void)reply; /* 0 when the reader was not blocked any more: its next read has the new set already */
}

/* Formats XREAD COUNT READ_COUNT [BLOCK `block`] STREAMS over the `n` streams of `keys` after their last ids
 * into `*wire` (freed by the caller). Returns its length, or -1 when out of memory. */
static int format_xread(followed_t *const *keys, size_t n, const char *block, char **wire)
{
    size_t head_n = block != NULL ? 6 : 4, argc = head_n + 2 * n;
    const char **argv = malloc(argc * sizeof(*argv));
    size_t *lens = malloc(argc * sizeof(*lens));
    char *ids = malloc(n * (WSG_STREAM_ID_MAX_LEN + 1));
    int len = -1;
    if (argv != NULL && lens != NULL && ids != NULL) {
        const char *head[] = {"XREAD", "COUNT", READ_COUNT, "BLOCK", block, "STREAMS"};
        for (size_t i = 0, h = 0; i < 6; i++) {
            if (block == NULL && (i == 3 || i == 4))
                continue;
            argv[h] = head[i];
            lens[h++] = strlen(head[i]);
        }
        for (size_t i = 0; i < n; i++) {
            char *id = ids + i * (WSG_STREAM_ID_MAX_LEN + 1);
            argv[head_n + i] = keys[i]->name;
            lens[head_n + i] = keys[i]->len;
            argv[head_n + n + i] = id;
            lens[head_n + n + i] = wsg_stream_id_format(keys[i]->last, id);
        }
        len = redisFormatCommandArgv(wire, (int)argc, argv, lens);
    }
    free(argv);
    free(lens);
    free(ids);
    return len;
}

/* The followed streams in an array (freed by the caller), NULL when out of memory. */
static followed_t **followed_array(const wsg_redis_streams_t *r)
{
    followed_t **keys = malloc(r->count * sizeof(*keys));
    size_t i = 0;
    for (followed_t *f = r->head; keys != NULL && f; f = f->next)
        keys[i++] = f;
    return keys;
}

/* Sends XREAD over every followed stream, unless one is in flight or there is nothing to read. */
static void issue_read(wsg_redis_streams_t *r)
{
    if (r->cluster != NULL) {
        poll_all(r);
        return;
    }
    if (r->is_reading || r->is_closing || r->count == 0 || r->probes_pending > 0 ||
        !wsg_redis_link_is_ready(r->link))
        return;
    char block[24];
    snprintf(block, sizeof block, "%" PRIu64, r->block_ms);
    followed_t **keys = followed_array(r);
    char *wire = NULL;
    int wire_len = keys != NULL ? format_xread(keys, r->count, block, &wire) : -1;
    /* On failure it is tried again on the next add, reply or reconnect. */
    if (wire_len >= 0 && wsg_redis_link_send(r->link, wire, (size_t)wire_len, on_read_reply, r) == 0) {
        r->is_reading = true;
        r->is_holding = false;
        r->is_unblock_sent = false;
        uv_timer_start(&r->timer, on_watchdog, r->watchdog_ms, 0);
    }
    free(wire);
    free(keys);
}

static void on_watchdog(uv_timer_t *timer)
{
    wsg_redis_streams_t *r = timer->data;
    if (r->is_reading) {
        wsg_redis_link_reset(r->link, "XREAD did not return in time");
        return;
    }
    if (r->is_holding) { /* the readers of the entries may still be behind: then the entries wait on */
        uint64_t wait_ms = r->is_closing ? 0 : r->handler->read_hold_ms(r->arg);
        if (wait_ms > 0) {
            uv_timer_start(&r->timer, on_watchdog, wait_ms, 0);
            return;
        }
        r->is_holding = false;
    }
    issue_read(r); /* after a wait, or the retry after an error */
}

/* Interrupts a read in flight so that the next one covers a stream just added. */
static void interrupt(wsg_redis_streams_t *r)
{
    if (r->cluster != NULL) { /* polling: the next poll covers it; one is started now when none is out */
        r->idle_polls = 0;
        if (r->polls_out == 0 && r->probes_pending == 0 && !r->is_closing) {
            uv_timer_stop(&r->timer);
            poll_all(r);
        }
        return;
    }
    if (!r->is_reading) {
        issue_read(r);
        return;
    }
    if (r->is_unblock_sent || r->client_id < 0)
        return; /* the read returns within block_ms anyway */
    char id[24];
    size_t id_len = (size_t)snprintf(id, sizeof id, "%lld", r->client_id);
    const char *argv[] = {"CLIENT", "UNBLOCK", id};
    size_t lens[] = {6, 7, id_len};
    if (wsg_redis_cmd_argv(r->cmd, 3, argv, lens, -1, false, on_unblocked, r) == 0)
        r->is_unblock_sent = true;
}

/* Reports the entries of one stream of a reply: [key, [[id, [field, value, ...]], ...]]. */
static void report_stream(wsg_redis_streams_t *r, const redisReply *stream)
{
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2 ||
        stream->element[0]->type != REDIS_REPLY_STRING || stream->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    const redisReply *key = stream->element[0], *entries = stream->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
        wsg_stream_entry_t e;
        if (!wsg_stream_entry_parse(entries->element[i], &e))
            continue;
        /* Looked up for every entry: the handler may stop following the stream while it is told. */
        followed_t *f = find(r, key->str, key->len);
        if (f == NULL || r->is_closing)
            return;
        if (wsg_stream_id_cmp(e.id, f->last) <= 0)
            continue;
        f->last = e.id;
        r->handler->on_entry(r->arg, key->str, key->len, e.id, e.payload, e.len);
    }
}

/* ---- a followed key of another type ------------------------------------------------------------------- */

/* A TYPE asked of one followed key after XREAD answered WRONGTYPE. */
typedef struct type_probe {
    wsg_redis_streams_t *reader;
    char *wire; /* the command, kept until its reply (a cluster borrows it) */
    size_t len;
    char key[];
} type_probe_t;

static void on_type(void *privdata, const redisReply *reply)
{
    type_probe_t *p = privdata;
    wsg_redis_streams_t *r = p->reader;
    bool is_last = --r->probes_pending == 0;
    if (reply != NULL && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "stream") != 0 &&
        strcmp(reply->str, "none") != 0 && !r->is_closing && find(r, p->key, p->len) != NULL) {
        wsg_redis_streams_remove(r, p->key, p->len);
        r->handler->on_wrong_type(r->arg, p->key, p->len, reply->str);
    }
    free(p->wire);
    free(p);
    if (is_last && r->is_closing)
        maybe_close_handles(r);
    else if (is_last && reply != NULL)
        issue_read(r);
}

/* Asks the TYPE of every followed key (with a cluster: of the keys of `slot`, or all when `slot` is -1);
 * 0 when the questions are out. */
static int probe_types(wsg_redis_streams_t *r, int slot)
{
    if (r->probes_pending > 0)
        return 0;
    for (followed_t *f = r->head; f; f = f->next) {
        if (slot >= 0 && f->slot != slot)
            continue;
        type_probe_t *p = malloc(sizeof(*p) + f->len + 1);
        if (p == NULL)
            break;
        p->reader = r;
        p->len = f->len;
        memcpy(p->key, f->name, f->len + 1);
        p->wire = NULL;
        int len = redisFormatCommand(&p->wire, "TYPE %b", f->name, f->len);
        int rc = len < 0 ? -ENOMEM
                 : r->cluster != NULL
                     ? wsg_redis_cluster_send(r->cluster, f->slot, p->wire, (size_t)len, on_type, p)
                     : wsg_redis_link_send(r->link, p->wire, (size_t)len, on_type, p);
        if (rc < 0) {
            free(p->wire);
            free(p);
            break;
        }
        r->probes_pending++;
    }
    return r->probes_pending > 0 ? 0 : -EIO;
}

static void on_read_reply(void *privdata, const redisReply *reply)
{
    wsg_redis_streams_t *r = privdata;
    r->is_reading = false;
    r->is_unblock_sent = false;
    uv_timer_stop(&r->timer);
    if (reply == NULL || r->is_closing)
        return; /* lost: on_down follows, and on_ready reads again */
    if (reply->type == REDIS_REPLY_ERROR) {
        r->handler->on_error(r->arg, reply->str);
        if (strncmp(reply->str, "WRONGTYPE", 9) == 0 && probe_types(r, -1) == 0)
            return; /* read again once the culprits are known */
        uv_timer_start(&r->timer, on_watchdog, RETRY_AFTER_ERROR_MS, 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements && !r->is_closing; i++)
            report_stream(r, reply->element[i]);
        uint64_t wait_ms = r->is_closing ? 0 : r->handler->on_batch_done(r->arg);
        if (wait_ms > 0 && !r->is_closing) {
            r->is_holding = true;
            uv_timer_start(&r->timer, on_watchdog, wait_ms, 0); /* reads when it fires (not reading then) */
            return;
        }
    }
    issue_read(r); /* a nil reply: the block timed out or was interrupted */
}

/* ---- Redis Cluster: polling ------------------------------------------------------------------------------
 * XREAD of several keys needs them in one slot, and a blocking read holds its connection: so with a cluster
 * every poll sends one non-blocking XREAD per slot in use to its master, over the connections the command
 * side uses (following redirections), and the next poll comes at once after a poll that found entries, else
 * after poll_ms. */

typedef struct poll_req {
    wsg_redis_streams_t *reader;
    uint16_t slot;
    char *wire; /* borrowed by the cluster until the reply */
} poll_req_t;

static int by_slot(const void *a, const void *b)
{
    const followed_t *x = *(followed_t *const *)a, *y = *(followed_t *const *)b;
    return (int)x->slot - (int)y->slot;
}

static void on_poll_reply(void *privdata, const redisReply *reply);

static void poll_all(wsg_redis_streams_t *r)
{
    if (r->polls_out > 0 || r->probes_pending > 0 || r->is_closing)
        return;
    if (r->count == 0) { /* nothing to read: up as soon as the cluster is; looked at again now and then */
        if (!r->is_up && wsg_redis_cluster_is_ready(r->cluster)) {
            r->is_up = true;
            r->handler->on_ready(r->arg);
        }
        uv_timer_start(&r->timer, on_watchdog, r->poll_ms << 3, 0);
        return;
    }
    followed_t **keys = followed_array(r);
    if (keys == NULL)
        return; /* the next add or timer tries again */
    qsort(keys, r->count, sizeof(*keys), by_slot);
    r->has_poll_entries = r->has_poll_loss = false;
    for (size_t i = 0, j; i < r->count; i = j) {
        for (j = i + 1; j < r->count && keys[j]->slot == keys[i]->slot;)
            j++;
        poll_req_t *req = malloc(sizeof(*req));
        if (req == NULL)
            break;
        req->reader = r;
        req->slot = keys[i]->slot;
        req->wire = NULL;
        int len = format_xread(keys + i, j - i, NULL, &req->wire);
        if (len < 0 ||
            wsg_redis_cluster_send(r->cluster, req->slot, req->wire, (size_t)len, on_poll_reply, req) < 0) {
            free(req->wire);
            free(req);
            continue; /* no map yet, or too much waiting: the next poll asks again */
        }
        r->polls_out++;
    }
    free(keys);
    if (r->polls_out == 0 && !r->is_closing)
        uv_timer_start(&r->timer, on_watchdog, r->poll_ms, 0);
}

static void on_poll_reply(void *privdata, const redisReply *reply)
{
    poll_req_t *req = privdata;
    wsg_redis_streams_t *r = req->reader;
    uint16_t slot = req->slot;
    free(req->wire);
    free(req);
    r->polls_out--;
    if (r->is_closing) {
        maybe_close_handles(r);
        return;
    }
    if (reply == NULL) {
        r->has_poll_loss = true;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        r->handler->on_error(r->arg, reply->str);
        if (strncmp(reply->str, "WRONGTYPE", 9) == 0)
            probe_types(r, slot);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        r->has_poll_entries = true;
        for (size_t i = 0; i < reply->elements && !r->is_closing; i++)
            report_stream(r, reply->element[i]);
    }
    if (r->polls_out > 0)
        return;
    /* The poll is over. */
    if (r->has_poll_loss && r->is_up) {
        r->is_up = false;
        r->handler->on_down(r->arg, "a master's connection was lost", r->poll_ms);
    } else if (!r->has_poll_loss && !r->is_up) {
        r->is_up = true;
        r->handler->on_ready(r->arg);
    }
    /* Idle streams cost a poll per slot each time: the wait doubles after each empty poll, up to 8 times
     * poll_ms, and is back to none as soon as a poll finds entries. */
    r->idle_polls = r->has_poll_entries ? 0 : r->idle_polls < 3 ? r->idle_polls + 1 : 3;
    uint64_t wait_ms =
        r->has_poll_entries ? r->handler->on_batch_done(r->arg) : r->poll_ms << (r->idle_polls - 1);
    r->is_holding = r->has_poll_entries && wait_ms > 0;
    if (r->probes_pending == 0 && !r->is_closing)
        uv_timer_start(&r->timer, on_watchdog, wait_ms, 0);
}

/* With a cluster: the reader is freed once no poll or probe waits for a reply and its timer is closed. */
static void maybe_close_handles(wsg_redis_streams_t *r)
{
    if (r->cluster == NULL || r->polls_out > 0 || r->probes_pending > 0 ||
        uv_is_closing((uv_handle_t *)&r->timer))
        return;
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

/* A reader with an empty table and its timer, without its connection. */
static wsg_redis_streams_t *reader_new(uv_loop_t *loop, const wsg_redis_streams_handler_t *handler, void *arg)
{
    wsg_redis_streams_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->nbuckets = 16;
    r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
    if (r->buckets == NULL) {
        free(r);
        return NULL;
    }
    r->handler = handler;
    r->arg = arg;
    r->client_id = -1;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->handles_open = 1;
    return r;
}

wsg_redis_streams_t *wsg_redis_streams_new_cluster(uv_loop_t *loop, wsg_redis_cluster_t *cluster,
                                                   uint64_t poll_ms,
                                                   const wsg_redis_streams_handler_t *handler, void *arg)
{
    wsg_redis_streams_t *r = reader_new(loop, handler, arg);
    if (r == NULL)
        return NULL;
    r->cluster = cluster;
    r->poll_ms = poll_ms ? poll_ms : 20;
    uv_timer_start(&r->timer, on_watchdog, 0, 0); /* the first poll, from the loop */
    return r;
}

/* ---- the connection --------------------------------------------------------------------------------- */

static void on_client_id(void *privdata, const redisReply *reply)
{
    wsg_redis_streams_t *r = privdata;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        r->client_id = reply->integer;
}

static void on_link_ready(wsg_redis_link_t *link, void *arg)
{
    wsg_redis_streams_t *r = arg;
    (void)link;
    r->client_id = -1;
    static const char client_id[] = "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";
    wsg_redis_link_send(r->link, client_id, sizeof client_id - 1, on_client_id, r);
    if (!r->is_closing)
        r->handler->on_ready(r->arg);
    issue_read(r);
}

static void on_link_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    wsg_redis_streams_t *r = arg;
    (void)link;
    r->is_reading = false;
    r->client_id = -1;
    uv_timer_stop(&r->timer);
    if (!r->is_closing)
        r->handler->on_down(r->arg, why, retry_ms);
}

static void on_timer_closed(uv_handle_t *handle);

static const wsg_redis_link_handler_t link_handler = {
    .on_ready = on_link_ready,
    .on_down = on_link_down,
};

wsg_redis_streams_t *wsg_redis_streams_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                           const wsg_redis_link_options_t *opts, wsg_redis_cmd_t *cmd,
                                           uint64_t block_ms, const wsg_redis_streams_handler_t *handler,
                                           void *arg)
{
    wsg_redis_streams_t *r = reader_new(loop, handler, arg);
    if (r == NULL)
        return NULL;
    r->cmd = cmd;
    r->block_ms = block_ms ? block_ms : 5000;
    r->watchdog_ms = r->block_ms + (opts->connect_timeout_ms ? opts->connect_timeout_ms : 2000);
    wsg_redis_link_options_t link_opts = *opts;
    link_opts.select_db = true;
    link_opts.is_pubsub = false;
    r->link = wsg_redis_link_new(loop, addr, &link_opts, &link_handler, r);
    if (r->link == NULL) {
        r->is_closing = true; /* freed once the timer is closed, without a callback */
        uv_close((uv_handle_t *)&r->timer, on_timer_closed);
        return NULL;
    }
    return r;
}

int wsg_redis_streams_add(wsg_redis_streams_t *r, const char *key, size_t len, wsg_stream_id_t after)
{
    if (find(r, key, len) != NULL)
        return -EEXIST;
    if (r->count >= r->nbuckets && grow(r) < 0)
        return -ENOMEM;
    followed_t *f = malloc(sizeof(*f) + len + 1);
    if (f == NULL)
        return -ENOMEM;
    memcpy(f->name, key, len);
    f->name[len] = '\0';
    f->len = len;
    f->last = after;
    f->hash = hash_name(key, len);
    f->slot = wsg_cluster_key_slot(key, len);
    f->hash_next = r->buckets[f->hash & (r->nbuckets - 1)];
    r->buckets[f->hash & (r->nbuckets - 1)] = f;
    f->prev = NULL;
    f->next = r->head;
    if (r->head != NULL)
        r->head->prev = f;
    r->head = f;
    r->count++;
    interrupt(r);
    return 0;
}

void wsg_redis_streams_remove(wsg_redis_streams_t *r, const char *key, size_t len)
{
    followed_t *f = find(r, key, len);
    if (f == NULL)
        return;
    followed_t **p = &r->buckets[f->hash & (r->nbuckets - 1)];
    while (*p != f)
        p = &(*p)->hash_next;
    *p = f->hash_next;
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        r->head = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    r->count--;
    free(f);
    /* A read in flight may go on blocking on it: its entries are ignored, and it returns within block_ms. */
}

bool wsg_redis_streams_last(const wsg_redis_streams_t *r, const char *key, size_t len, wsg_stream_id_t *out)
{
    const followed_t *f = find(r, key, len);
    if (f != NULL)
        *out = f->last;
    return f != NULL;
}

size_t wsg_redis_streams_count(const wsg_redis_streams_t *r)
{
    return r->count;
}

bool wsg_redis_streams_is_ready(const wsg_redis_streams_t *r)
{
    return r->cluster != NULL ? r->is_up : wsg_redis_link_is_ready(r->link);
}

void wsg_redis_streams_reset(wsg_redis_streams_t *r, const char *why)
{
    if (r->link != NULL)
        wsg_redis_link_reset(r->link, why);
}

static void maybe_free(wsg_redis_streams_t *r)
{
    if (r->handles_open > 0)
        return;
    while (r->head != NULL) {
        followed_t *f = r->head;
        r->head = f->next;
        free(f);
    }
    free(r->buckets);
    void (*cb)(void *) = r->close_cb;
    void *cb_arg = r->close_arg;
    free(r);
    if (cb != NULL)
        cb(cb_arg);
}

static void on_timer_closed(uv_handle_t *handle)
{
    wsg_redis_streams_t *r = handle->data;
    r->handles_open--;
    maybe_free(r);
}

static void on_link_closed(void *arg)
{
    wsg_redis_streams_t *r = arg;
    r->link = NULL;
    uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

void wsg_redis_streams_close(wsg_redis_streams_t *r, void (*cb)(void *cb_arg), void *cb_arg)
{
    r->is_closing = true;
    r->close_cb = cb;
    r->close_arg = cb_arg;
    uv_timer_stop(&r->timer);
    if (r->cluster != NULL) {
        maybe_close_handles(r); /* or when the last poll's reply comes (the cluster's close answers it) */
        return;
    }
    if (r->is_reading)
        wsg_redis_link_reset(r->link, "closing"); /* a blocked XREAD is not worth waiting for */
    wsg_redis_link_close(r->link, on_link_closed, r);
}
