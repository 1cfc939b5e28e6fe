/* One Redis connection on the libuv loop: our transport underneath, hiredis's reader on top, timeouts,
 * reconnect with backoff and Sentinel discovery (see link.h). */
#include "link.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentinel_query.h"

enum link_state {
    LINK_WAITING,        /* no connection; the timer starts the next attempt */
    LINK_ASKING,         /* Sentinel: the sentinels are asked for the master (sentinel_query.c) */
    LINK_CONNECTING,     /* name lookup, connect and TLS handshake (the transport's business) */
    LINK_AUTHENTICATING, /* AUTH/SELECT/ROLE/CLIENT SETNAME (or the sentinel's answer) pending */
    LINK_READY,
    LINK_CLOSING,
};

/* Bytes one batch reads when the owner sets no bound: several reads per batch let a burst of published
 * messages be parsed in one loop turn and fanned out with one write per subscriber. */
#define DEFAULT_READ_BYTES_PER_EVENT (256 * 1024)

/* A command sent whose reply (or, for pub/sub commands, confirmations) has not all come. */
typedef struct pending {
    wsg_redis_reply_cb cb;
    void *privdata;
    uint32_t confirmations; /* pub/sub commands: confirmations still expected; 0 for other commands */
} pending_t;

/* Commands in flight, oldest first, in a ring that grows by doubling. */
typedef struct pending_ring {
    pending_t *items;
    size_t cap, head, count;
} pending_ring_t;

struct wsg_redis_link {
    uv_loop_t *loop;
    wsg_redis_addr_t addr;
    wsg_redis_link_options_t opts;
    const wsg_redis_link_handler_t *handler;
    void *arg;
    wsg_transport_t *transport;
    redisReader *reader;
    pending_ring_t pending;
    uv_timer_t timer; /* next attempt, connect timeout, resume of reading, or the bound of a graceful close */
    enum link_state state;
    uint64_t backoff_ms; /* delay of the next retry: 0 right after a loss, then growing */
    unsigned setup_replies_left;
    unsigned setup_sent, setup_answered; /* setup commands of this attempt, in order */
    char setup_labels[4][24];            /* what each was, for a failure's text ("AUTH", "SELECT 3") */
    unsigned open_handles;               /* the timer and transports not yet freed */
    bool setup_failed;
    bool is_dispatching;       /* replies are being handed out: the reader must outlive the loop over them */
    bool is_read_paused;       /* the batch bound was reached, or the owner holds reads; the timer resumes */
    bool is_reset_pending;     /* wsg_redis_link_reset was called; the timer completes it */
    bool was_closed_by_server; /* the last ready connection ended with the server closing it */
    wsg_redis_sentinel_query_t *query; /* while ASKING */
    bool is_auth_optional;             /* this attempt's AUTH may meet a server without a password */
    bool has_master;                   /* target_host/port hold the master a sentinel named */
    unsigned sentinel_index;           /* the sentinel asked first next time (past those that failed) */
    size_t read_in_batch;
    char target_host[256]; /* where the current attempt connects: the address, a sentinel, or the master */
    uint16_t target_port;
    char why[640];
    void (*close_cb)(void *);
    void *close_arg;
};

static void start_attempt(wsg_redis_link_t *link);
static void schedule_retry(wsg_redis_link_t *link);
static void on_timer(uv_timer_t *timer);

static void release_handle(wsg_redis_link_t *link)
{
    if (--link->open_handles > 0 || link->state != LINK_CLOSING)
        return;
    void (*cb)(void *) = link->close_cb;
    void *cb_arg = link->close_arg;
    free(link->pending.items);
    free(link);
    if (cb != NULL)
        cb(cb_arg);
}

static void set_why(wsg_redis_link_t *link, const char *why, const char *detail)
{
    if (detail != NULL && detail[0] != '\0')
        snprintf(link->why, sizeof link->why, "%s: %s", why, detail);
    else
        snprintf(link->why, sizeof link->why, "%s", why);
}

/* Why an attempt failed: the transport names the address when connecting failed; otherwise it is added. */
static void set_attempt_why(wsg_redis_link_t *link, const char *why)
{
    const char *who = "";
    if (strncmp(why, "connect to ", 11) == 0 || strncmp(why, "cannot resolve ", 15) == 0) {
        snprintf(link->why, sizeof link->why, "%s%s", who, why);
    } else if (link->addr.is_unix) {
        snprintf(link->why, sizeof link->why, "connect to unix:%s: %s", link->addr.path, why);
    } else {
        bool is_v6 = strchr(link->target_host, ':') != NULL;
        snprintf(link->why, sizeof link->why, "%sconnect to %s%s%s:%u: %s", who, is_v6 ? "[" : "",
                 link->target_host, is_v6 ? "]" : "", link->target_port, why);
    }
}

/* ---- commands in flight ---------------------------------------------------------------------------------
 */

static int pending_push(pending_ring_t *ring, pending_t item)
{
    if (ring->count == ring->cap) {
        size_t cap = ring->cap ? ring->cap * 2 : 64;
        pending_t *items = malloc(cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < ring->count; i++)
            items[i] = ring->items[(ring->head + i) % ring->cap];
        free(ring->items);
        ring->items = items;
        ring->cap = cap;
        ring->head = 0;
    }
    ring->items[(ring->head + ring->count) % ring->cap] = item;
    ring->count++;
    return 0;
}

static pending_t *pending_head(pending_ring_t *ring)
{
    return ring->count > 0 ? &ring->items[ring->head] : NULL;
}

static void pending_pop(pending_ring_t *ring)
{
    ring->head = (ring->head + 1) % ring->cap;
    ring->count--;
}

/* Calls every callback in flight with NULL (the connection is gone). Taken out first: a callback may send. */
static void fail_pending(wsg_redis_link_t *link)
{
    pending_ring_t lost = link->pending;
    link->pending = (pending_ring_t){0};
    for (size_t i = 0; i < lost.count; i++) {
        pending_t *p = &lost.items[(lost.head + i) % lost.cap];
        if (p->cb != NULL)
            p->cb(p->privdata, NULL);
    }
    if (link->pending.items == NULL) {
        lost.head = lost.count = 0; /* keep the memory for the next connection */
        link->pending = lost;
    } else {
        free(lost.items);
    }
}

/* ---- the connection -------------------------------------------------------------------------------------
 */

static void on_transport_closed(void *arg)
{
    release_handle(arg);
}

/* Closes the current connection (if any); replies not handed out yet are dropped with it. */
static void drop_connection(wsg_redis_link_t *link)
{
    if (link->transport != NULL) {
        wsg_transport_close(link->transport, on_transport_closed, link);
        link->transport = NULL;
    }
    if (link->reader != NULL && !link->is_dispatching)
        redisReaderFree(link->reader);
    link->reader = NULL;
    link->is_read_paused = false;
    link->read_in_batch = 0;
}

static int send_raw(wsg_redis_link_t *link, const char *cmd, size_t len, pending_t item)
{
    if (pending_push(&link->pending, item) < 0)
        return -ENOMEM;
    if (wsg_transport_write(link->transport, cmd, len) < 0) {
        /* Only out of memory: the entry stays, the loss of the connection will fail it. */
        return -ENOMEM;
    }
    return 0;
}

int wsg_redis_link_send(wsg_redis_link_t *link, const char *cmd, size_t len, wsg_redis_reply_cb cb,
                        void *privdata)
{
    if (link->state != LINK_READY)
        return -ENOTCONN;
    return send_raw(link, cmd, len, (pending_t){cb, privdata, 0});
}

int wsg_redis_link_send_pubsub(wsg_redis_link_t *link, const char *cmd, size_t len, unsigned confirmations,
                               wsg_redis_reply_cb on_error, void *privdata)
{
    if (link->state != LINK_READY)
        return -ENOTCONN;
    if (!link->opts.is_pubsub || confirmations == 0)
        return -EINVAL;
    return send_raw(link, cmd, len, (pending_t){on_error, privdata, confirmations});
}

/* Internal commands while authenticating: the reply goes to `cb` with the link; `label` names the command in
 * a failure's text (never its arguments: AUTH's are secret). */
static void send_setup(wsg_redis_link_t *link, wsg_redis_reply_cb cb, const char *label, const char *fmt, ...)
{
    if (link->setup_sent < sizeof link->setup_labels / sizeof link->setup_labels[0])
        snprintf(link->setup_labels[link->setup_sent], sizeof link->setup_labels[0], "%s", label);
    link->setup_sent++;
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0 || send_raw(link, cmd, (size_t)len, (pending_t){cb, link, 0}) < 0)
        link->setup_failed = true; /* out of memory: the attempt fails when the replies are counted */
    else
        link->setup_replies_left++;
    free(cmd);
}

static bool kind_is(const redisReply *kind, const char *name)
{
    size_t n = strlen(name);
    return kind->len == n && memcmp(kind->str, name, n) == 0;
}

/* Hands one reply to whom it belongs. Returns false on a reply nothing waits for (a protocol error). */
static bool dispatch(wsg_redis_link_t *link, redisReply *reply)
{
    if (link->opts.is_pubsub && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING) {
        const redisReply *kind = reply->element[0];
        if (kind_is(kind, "message") || kind_is(kind, "pmessage") || kind_is(kind, "smessage")) {
            if (link->state == LINK_READY && link->handler->on_push != NULL)
                link->handler->on_push(link, link->arg, reply);
            return true;
        }
        if (kind_is(kind, "subscribe") || kind_is(kind, "unsubscribe") || kind_is(kind, "psubscribe") ||
            kind_is(kind, "punsubscribe") || kind_is(kind, "ssubscribe") || kind_is(kind, "sunsubscribe")) {
            /* A confirmation counts against the oldest pub/sub command; one nothing asked for (Redis Cluster
             * unsubscribes shard channels whose slot moved) is passed on all the same. */
            pending_t *head = pending_head(&link->pending);
            if (head != NULL && head->confirmations > 0 && --head->confirmations == 0)
                pending_pop(&link->pending);
            if (link->handler->on_push != NULL && link->state == LINK_READY)
                link->handler->on_push(link, link->arg, reply);
            return true;
        }
    }
    pending_t *head = pending_head(&link->pending);
    if (head == NULL)
        return false;
    pending_t item = *head;
    pending_pop(&link->pending);
    if (item.cb != NULL)
        item.cb(item.privdata, reply);
    return true;
}

static void finish_close_if_drained(wsg_redis_link_t *link);

static void on_transport_data(void *arg, const char *data, size_t len)
{
    wsg_redis_link_t *link = arg;
    redisReader *reader = link->reader;
    if (reader == NULL || redisReaderFeed(reader, data, len) != REDIS_OK) {
        if (reader == NULL)
            return;
        set_why(link, "connection lost", "out of memory");
        drop_connection(link);
        fail_pending(link);
        schedule_retry(link);
        return;
    }
    link->is_dispatching = true;
    bool is_protocol_error = false;
    while (link->reader == reader && !link->is_reset_pending) {
        void *reply = NULL;
        if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
            set_why(link, "protocol error", reader->errstr);
            is_protocol_error = true;
            break;
        }
        if (reply == NULL)
            break;
        bool is_expected = dispatch(link, reply);
        freeReplyObject(reply);
        if (!is_expected) {
            set_why(link, "protocol error", "a reply nothing waits for");
            is_protocol_error = true;
            break;
        }
    }
    link->is_dispatching = false;
    if (link->reader != reader) {
        redisReaderFree(reader); /* the connection was dropped by a callback */
        return;
    }
    if (is_protocol_error) {
        drop_connection(link);
        fail_pending(link);
        if (link->state == LINK_CLOSING)
            finish_close_if_drained(link);
        else
            schedule_retry(link);
        return;
    }
    if (link->state == LINK_CLOSING) {
        finish_close_if_drained(link);
        return;
    }
    /* Bound the work of one loop turn: what one batch reads is fanned out before the next flush. The timer
     * resumes reading in the next turn, after that flush, and asks the owner whether to wait first. */
    link->read_in_batch += len;
    if (link->state == LINK_READY && link->read_in_batch >= link->opts.read_bytes_per_event) {
        link->read_in_batch = 0;
        link->is_read_paused = true;
        wsg_transport_read_stop(link->transport);
        uv_timer_start(&link->timer, on_timer, 0, 0);
        if (link->handler->on_read_done != NULL)
            link->handler->on_read_done(link, link->arg);
    }
}

/* Asks the owner whether reading should wait (its clients are behind); if so, stops reading for the time it
 * says. Returns true when it waits. */
static bool hold_reads_if_asked(wsg_redis_link_t *link)
{
    if (link->handler->read_hold_ms == NULL || link->state != LINK_READY)
        return false;
    uint64_t hold_ms = link->handler->read_hold_ms(link, link->arg);
    if (hold_ms == 0 || link->state != LINK_READY)
        return false;
    if (!link->is_read_paused) {
        link->is_read_paused = true;
        wsg_transport_read_stop(link->transport);
    }
    uv_timer_start(&link->timer, on_timer, hold_ms, 0);
    return true;
}

static void on_transport_read_end(void *arg)
{
    wsg_redis_link_t *link = arg;
    link->read_in_batch = 0;
    if (link->state == LINK_READY && link->handler->on_read_done != NULL)
        link->handler->on_read_done(link, link->arg);
    hold_reads_if_asked(link);
}

static void on_transport_error(void *arg, int err, const char *why)
{
    wsg_redis_link_t *link = arg;
    if (link->is_reset_pending)
        return; /* the timer completes the reset */
    if (link->state == LINK_CLOSING) {
        drop_connection(link);
        fail_pending(link);
        finish_close_if_drained(link);
        return;
    }
    link->was_closed_by_server = link->state == LINK_READY && err == UV_EOF;
    if (link->state == LINK_READY)
        set_why(link, "connection lost", why);
    else
        set_attempt_why(link, why);
    drop_connection(link);
    fail_pending(link);
    schedule_retry(link);
}

static void become_ready(wsg_redis_link_t *link)
{
    uv_timer_stop(&link->timer);
    link->state = LINK_READY;
    link->backoff_ms = 0; /* the next loss retries at once */
    if (link->handler->on_ready != NULL)
        link->handler->on_ready(link, link->arg);
}

static void setup_step_done(wsg_redis_link_t *link)
{
    link->setup_answered++;
    if (--link->setup_replies_left > 0)
        return;
    if (link->setup_failed) {
        drop_connection(link);
        fail_pending(link);
        schedule_retry(link);
        return;
    }
    become_ready(link);
}

/* The label of the setup command whose reply is being handled. */
static const char *setup_label(const wsg_redis_link_t *link)
{
    size_t n = sizeof link->setup_labels / sizeof link->setup_labels[0];
    return link->setup_answered < n ? link->setup_labels[link->setup_answered] : "setup";
}

/* A server without a password answers AUTH with one of these (Redis 6+, older). */
static bool is_no_password_error(const redisReply *reply)
{
    return strstr(reply->str, "without any password configured") != NULL ||
           strstr(reply->str, "no password is set") != NULL;
}

/* AUTH and SELECT: an error fails this attempt. */
static void on_setup_reply(void *privdata, const redisReply *reply)
{
    wsg_redis_link_t *link = privdata;
    if (reply == NULL || link->state != LINK_AUTHENTICATING)
        return; /* the connection is going away; that is reported */
    if (reply->type == REDIS_REPLY_ERROR && link->is_auth_optional &&
        strcmp(setup_label(link), "AUTH") == 0 && is_no_password_error(reply)) {
        setup_step_done(link); /* a server that wants no password: fine */
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && !link->setup_failed) {
        char detail[640];
        snprintf(detail, sizeof detail, "%s: %s", setup_label(link), reply->str);
        set_why(link, "setup failed", detail);
        link->setup_failed = true;
    }
    setup_step_done(link);
}

/* CLIENT SETNAME is a courtesy: servers without it (old ones, some sentinels) are fine. Any other error (a
 * server refusing the connection: "max number of clients reached", "LOADING") fails the attempt. */
static void on_setname_reply(void *privdata, const redisReply *reply)
{
    wsg_redis_link_t *link = privdata;
    if (reply == NULL || link->state != LINK_AUTHENTICATING)
        return;
    if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "unknown") == NULL &&
        strstr(reply->str, "Unknown") == NULL) {
        on_setup_reply(privdata, reply);
        return;
    }
    setup_step_done(link);
}

/* ROLE, on a master found through Sentinel: a sentinel's answer can be stale during a failover. */
static void on_role_reply(void *privdata, const redisReply *reply)
{
    wsg_redis_link_t *link = privdata;
    if (reply == NULL || link->state != LINK_AUTHENTICATING)
        return;
    bool is_master = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                     reply->element[0]->type == REDIS_REPLY_STRING &&
                     strcmp(reply->element[0]->str, "master") == 0;
    if (!is_master && !link->setup_failed) {
        char detail[320];
        snprintf(detail, sizeof detail, "%s:%u is not a master (stale sentinel answer)", link->target_host,
                 link->target_port);
        set_why(link, "setup failed", detail);
        link->setup_failed = true;
        link->has_master = false;
    }
    setup_step_done(link);
}

static void on_transport_open(void *arg)
{
    wsg_redis_link_t *link = arg;
    link->state = LINK_AUTHENTICATING;
    link->setup_failed = false;
    link->setup_replies_left = link->setup_sent = link->setup_answered = 0;
    const wsg_redis_addr_t *a = &link->addr;
    link->is_auth_optional = link->opts.is_auth_optional;
    if (a->password[0] != '\0') {
        if (a->username[0] != '\0')
            send_setup(link, on_setup_reply, "AUTH", "AUTH %s %s", a->username, a->password);
        else
            send_setup(link, on_setup_reply, "AUTH", "AUTH %s", a->password);
    }
    if (link->opts.select_db && a->db != 0) {
        char label[24];
        snprintf(label, sizeof label, "SELECT %d", a->db);
        send_setup(link, on_setup_reply, label, "SELECT %d", a->db);
    }
    if (a->is_sentinel)
        send_setup(link, on_role_reply, "ROLE", "ROLE");
    if (link->opts.name != NULL)
        send_setup(link, on_setname_reply, "CLIENT SETNAME", "CLIENT SETNAME %s", link->opts.name);
    if (link->setup_sent == 0)
        become_ready(link); /* nothing to set up */
}

static const wsg_transport_handler_t transport_handler = {
    .on_open = on_transport_open,
    .on_data = on_transport_data,
    .on_error = on_transport_error,
    .on_read_end = on_transport_read_end,
};

/* ---- attempts and retries -------------------------------------------------------------------------------
 */

static void schedule_retry(wsg_redis_link_t *link)
{
    link->has_master = false; /* Sentinel: the master is asked for again before the next attempt */
    uint64_t delay = link->backoff_ms;
    if (delay > 0) {
        /* Jitter of +-20% so that many gateways do not reconnect in lockstep after a Redis restart. */
        uint64_t span = delay / 5;
        delay = delay - span + (span ? (uint64_t)rand() % (2 * span + 1) : 0);
    }
    uint64_t next = link->backoff_ms == 0 ? link->opts.retry_min_ms : link->backoff_ms * 2;
    link->backoff_ms = next > link->opts.retry_max_ms ? link->opts.retry_max_ms : next;
    link->state = LINK_WAITING;
    uv_timer_start(&link->timer, on_timer, delay, 0);
    if (link->handler->on_down != NULL)
        link->handler->on_down(link, link->arg, link->why, delay);
}

/* Connects to target_host:target_port (or the unix socket). */
static void connect_target(wsg_redis_link_t *link)
{
    const wsg_redis_addr_t *a = &link->addr;
    link->reader = redisReaderCreate();
    int rc = link->reader == NULL ? -ENOMEM
             : a->is_unix
                 ? wsg_transport_open_unix(link->loop, a->path, &transport_handler, link, &link->transport)
                 : wsg_transport_open(link->loop, link->target_host, link->target_port, link->opts.tls,
                                      link->opts.tls_name, &transport_handler, link, &link->transport);
    if (rc < 0) {
        set_why(link, "connect failed", uv_strerror(rc));
        drop_connection(link);
        schedule_retry(link);
        return;
    }
    link->open_handles++;
    link->state = LINK_CONNECTING;
    uv_timer_start(&link->timer, on_timer, link->opts.connect_timeout_ms, 0);
}

/* The sentinels answered (or none did): connect to the master, or wait and ask again. */
static void on_master(void *arg, const char *host, uint16_t port, const char *why, unsigned next)
{
    wsg_redis_link_t *link = arg;
    link->query = NULL;
    link->sentinel_index = next;
    if (host == NULL) {
        set_why(link, "setup failed", why);
        schedule_retry(link);
        return;
    }
    snprintf(link->target_host, sizeof link->target_host, "%s", host);
    link->target_port = port;
    link->has_master = true;
    connect_target(link);
}

static void start_attempt(wsg_redis_link_t *link)
{
    const wsg_redis_addr_t *a = &link->addr;
    if (a->is_sentinel) {
        link->query =
            wsg_redis_sentinel_ask(link->loop, a, link->sentinel_index, link->opts.connect_timeout_ms,
                                   link->opts.tls, link->opts.tls_name, on_master, link);
        if (link->query == NULL) {
            set_why(link, "setup failed", "out of memory");
            schedule_retry(link);
            return;
        }
        link->state = LINK_ASKING;
        return;
    }
    if (link->opts.next_target != NULL) {
        link->opts.next_target(link->opts.target_arg, link->target_host, sizeof link->target_host,
                               &link->target_port);
    } else {
        snprintf(link->target_host, sizeof link->target_host, "%s", a->host);
        link->target_port = a->port;
    }
    connect_target(link);
}

static void on_timer(uv_timer_t *timer)
{
    wsg_redis_link_t *link = timer->data;
    switch (link->state) {
    case LINK_WAITING:
        if (link->is_reset_pending) {
            link->is_reset_pending = false;
            drop_connection(link);
            fail_pending(link);
            schedule_retry(link);
            return;
        }
        start_attempt(link);
        break;
    case LINK_CONNECTING:
    case LINK_AUTHENTICATING:
        /* Our own connect timeout, TLS handshake and setup included. */
        set_attempt_why(link,
                        link->state == LINK_CONNECTING ? "timeout" : "timeout waiting for the setup replies");
        drop_connection(link);
        fail_pending(link);
        schedule_retry(link);
        break;
    case LINK_ASKING:
        break; /* the query has its own time limits */
    case LINK_READY:
        if (link->is_read_paused && !hold_reads_if_asked(link)) {
            link->is_read_paused = false;
            wsg_transport_read_start(link->transport); /* may hand out replies already received */
        }
        break;
    case LINK_CLOSING:
        /* Redis did not answer the replies in flight in time: abandon them. */
        drop_connection(link);
        fail_pending(link);
        finish_close_if_drained(link);
        break;
    }
}

wsg_redis_link_t *wsg_redis_link_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                     const wsg_redis_link_options_t *opts,
                                     const wsg_redis_link_handler_t *handler, void *arg)
{
    wsg_redis_link_t *link = calloc(1, sizeof(*link));
    if (link == NULL)
        return NULL;
    link->loop = loop;
    link->addr = *addr;
    link->opts = *opts;
    if (link->opts.connect_timeout_ms == 0)
        link->opts.connect_timeout_ms = 2000;
    if (link->opts.read_bytes_per_event == 0)
        link->opts.read_bytes_per_event = DEFAULT_READ_BYTES_PER_EVENT;
    if (link->opts.retry_min_ms == 0)
        link->opts.retry_min_ms = 100;
    if (link->opts.retry_max_ms < link->opts.retry_min_ms)
        link->opts.retry_max_ms = link->opts.retry_min_ms > 5000 ? link->opts.retry_min_ms : 5000;
    if (addr->is_unix)
        link->opts.tls = NULL;
    link->handler = handler;
    link->arg = arg;
    uv_timer_init(loop, &link->timer);
    link->timer.data = link;
    link->open_handles = 1;
    /* The first attempt starts from the loop: nothing is reported from inside this call. */
    link->state = LINK_WAITING;
    uv_timer_start(&link->timer, on_timer, 0, 0);
    return link;
}

bool wsg_redis_link_is_ready(const wsg_redis_link_t *link)
{
    return link->state == LINK_READY;
}

bool wsg_redis_link_was_closed_by_server(const wsg_redis_link_t *link)
{
    return link->was_closed_by_server;
}

void wsg_redis_link_reset(wsg_redis_link_t *link, const char *why)
{
    if (link->state != LINK_READY)
        return;
    set_why(link, why, NULL);
    link->state = LINK_WAITING;
    link->backoff_ms = link->opts.retry_min_ms;
    link->was_closed_by_server = false;
    link->is_reset_pending = true;
    if (link->transport != NULL)
        wsg_transport_read_stop(link->transport); /* nothing more is handed out */
    uv_timer_start(&link->timer, on_timer, 0, 0);
}

static void on_timer_closed(uv_handle_t *handle)
{
    release_handle(handle->data);
}

/* A closing link ends once nothing is in flight: the connection and the timer close, then the memory goes. */
static void finish_close_if_drained(wsg_redis_link_t *link)
{
    if (link->pending.count > 0 && link->transport != NULL)
        return;
    drop_connection(link);
    fail_pending(link);
    if (!uv_is_closing((uv_handle_t *)&link->timer)) {
        uv_timer_stop(&link->timer);
        uv_close((uv_handle_t *)&link->timer, on_timer_closed);
    }
}

void wsg_redis_link_close(wsg_redis_link_t *link, void (*cb)(void *cb_arg), void *cb_arg)
{
    if (link->state == LINK_CLOSING)
        return;
    enum link_state was = link->state;
    link->state = LINK_CLOSING;
    link->close_cb = cb;
    link->close_arg = cb_arg;
    uv_timer_stop(&link->timer);
    if (link->query != NULL) {
        wsg_redis_sentinel_cancel(link->query);
        link->query = NULL;
    }
    if (was == LINK_READY && link->pending.count > 0 && link->transport != NULL && !link->is_reset_pending) {
        /* Waits for the replies in flight; the timer bounds the wait in case Redis never answers. */
        if (link->is_read_paused) {
            link->is_read_paused = false;
            wsg_transport_read_start(link->transport);
        }
        uv_timer_start(&link->timer, on_timer, link->opts.connect_timeout_ms, 0);
        return;
    }
    drop_connection(link);
    if (link->pending.count > 0) {
        /* Commands in flight hear of the loss from the loop, not from inside this call. */
        uv_timer_start(&link->timer, on_timer, 0, 0);
        return;
    }
    uv_close((uv_handle_t *)&link->timer, on_timer_closed);
}
