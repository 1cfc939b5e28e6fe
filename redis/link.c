/* One Redis connection on the libuv loop, with our own hiredis event adapter, timeouts and reconnect. */
#include "link.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

enum link_state {
    LINK_WAITING,        /* no connection; the timer starts the next attempt */
    LINK_RESOLVING,      /* uv_getaddrinfo in flight */
    LINK_CONNECTING,     /* TCP/unix connect in progress */
    LINK_AUTHENTICATING, /* AUTH/SELECT/CLIENT SETNAME replies pending */
    LINK_READY,
    LINK_CLOSING,
};

/* hiredis 0.14 reads at most this much per redisAsyncHandleRead (its stack buffer). */
#define HIREDIS_READ_CHUNK (16 * 1024)
/* Bytes one readiness event reads when the owner sets no bound: several reads per event let a burst of
 * published messages be parsed in one loop turn and fanned out with one write per subscriber. */
#define DEFAULT_READ_BYTES_PER_EVENT (256 * 1024)

struct wsg_redis_link {
    uv_loop_t *loop;
    wsg_redis_addr_t addr;
    wsg_redis_link_options_t opts;
    const wsg_redis_link_handler_t *handler;
    void *arg;
    redisAsyncContext *ac;
    uv_poll_t *poll;  /* one per connection: a poll handle cannot be re-initialised until it is closed */
    int poll_events;
    uv_timer_t timer; /* connect timeout while connecting, backoff while waiting */
    uv_getaddrinfo_t *resolver;
    enum link_state state;
    uint64_t backoff_ms;
    unsigned setup_replies_left;
    const char *setup_error;
    char why[640];
    unsigned open_handles; /* timer + poll handles + resolver not yet released */
    /* Where the current attempt connects: the address, a sentinel, or the master a sentinel named. */
    char target_host[256];
    uint16_t target_port;
    bool was_closed_by_server; /* the last ready connection ended with the server closing it */
    bool is_asking_sentinel; /* the current connection is to a sentinel, asking for the master */
    bool has_master;         /* target_host/port hold the master a sentinel named */
    unsigned sentinel_index; /* the sentinel asked next (rotates on failures) */
    void (*close_cb)(void *);
    void *close_arg;
};

static void start_attempt(wsg_redis_link_t *link);
static void schedule_retry(wsg_redis_link_t *link, const char *why);
static void close_timer(wsg_redis_link_t *link);

static void release_handle(wsg_redis_link_t *link)
{
    if (--link->open_handles == 0 && link->state == LINK_CLOSING) {
        void (*cb)(void *) = link->close_cb;
        void *cb_arg = link->close_arg;
        free(link);
        if (cb != NULL)
            cb(cb_arg);
    }
}

/* ---- hiredis event adapter ---------------------------------------------------------------------- */

static void on_poll_closed(uv_handle_t *handle)
{
    wsg_redis_link_t *link = handle->data;
    free(handle);
    release_handle(link);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    wsg_redis_link_t *link = handle->data;
    redisAsyncContext *ac = link->ac;
    if (ac == NULL || handle != link->poll)
        return;
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE; /* let hiredis find and report the socket error */
    if (events & UV_READABLE) {
        /* Read while the kernel holds data, up to the byte bound: what one event reads is fanned out before
         * the next flush, so the bound keeps one event from overflowing even a client that keeps up. */
        int fd = ac->c.fd; /* read before the call: a lost connection frees `ac` inside it */
        size_t taken = 0;
        do {
            int pending = 0;
            if (taken > 0 && (ioctl(fd, FIONREAD, &pending) != 0 || pending <= 0))
                break;
            redisAsyncHandleRead(ac);
            taken += HIREDIS_READ_CHUNK;
        } while (link->ac == ac && taken < link->opts.read_bytes_per_event);
        if (link->handler->on_read_done != NULL)
            link->handler->on_read_done(link, link->arg);
    }
    if ((events & UV_WRITABLE) && link->ac == ac)
        redisAsyncHandleWrite(ac);
}

static void update_poll(wsg_redis_link_t *link)
{
    if (link->poll == NULL)
        return;
    if (link->poll_events != 0)
        uv_poll_start(link->poll, link->poll_events, on_poll);
    else
        uv_poll_stop(link->poll);
}

static void ev_add_read(void *data)
{
    wsg_redis_link_t *link = data;
    link->poll_events |= UV_READABLE;
    update_poll(link);
}

static void ev_del_read(void *data)
{
    wsg_redis_link_t *link = data;
    link->poll_events &= ~UV_READABLE;
    update_poll(link);
}

static void ev_add_write(void *data)
{
    wsg_redis_link_t *link = data;
    link->poll_events |= UV_WRITABLE;
    update_poll(link);
}

static void ev_del_write(void *data)
{
    wsg_redis_link_t *link = data;
    link->poll_events &= ~UV_WRITABLE;
    update_poll(link);
}

static void ev_cleanup(void *data)
{
    wsg_redis_link_t *link = data;
    if (link->poll != NULL) {
        uv_poll_stop(link->poll);
        uv_close((uv_handle_t *)link->poll, on_poll_closed);
        link->poll = NULL;
    }
    link->poll_events = 0;
}

static int attach_adapter(wsg_redis_link_t *link, redisAsyncContext *ac)
{
    uv_poll_t *poll = malloc(sizeof(*poll));
    if (poll == NULL)
        return -ENOMEM;
    int rc = uv_poll_init(link->loop, poll, ac->c.fd);
    if (rc < 0) {
        free(poll);
        return rc;
    }
    poll->data = link;
    link->poll = poll;
    link->open_handles++;
    link->poll_events = 0;
    ac->ev.data = link;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- connection lifecycle ----------------------------------------------------------------------- */

static void set_why(wsg_redis_link_t *link, const char *why, const char *detail)
{
    if (detail != NULL && detail[0] != '\0')
        snprintf(link->why, sizeof link->why, "%s: %s", why, detail);
    else
        snprintf(link->why, sizeof link->why, "%s", why);
}

static void on_timer(uv_timer_t *timer)
{
    wsg_redis_link_t *link = timer->data;
    switch (link->state) {
    case LINK_WAITING:
        start_attempt(link);
        break;
    case LINK_CONNECTING:
    case LINK_AUTHENTICATING: {
        /* Our own connect timeout: hiredis 0.14 has none for asynchronous contexts. */
        redisAsyncContext *ac = link->ac;
        set_why(link, "connect timeout", NULL);
        link->state = LINK_WAITING; /* on_disconnect, if hiredis calls it, must not treat this as a loss */
        redisAsyncFree(ac);
        link->ac = NULL;
        schedule_retry(link, link->why);
        break;
    }
    case LINK_CLOSING:
        /* Redis did not answer the replies in flight in time: abandon them. */
        if (link->ac != NULL) {
            redisAsyncContext *ac = link->ac;
            link->ac = NULL;
            redisAsyncFree(ac);
        }
        close_timer(link);
        break;
    default:
        break;
    }
}

static void schedule_retry(wsg_redis_link_t *link, const char *why)
{
    if (link->addr.is_sentinel) {
        /* Ask a sentinel again before the next attempt (the next one, when this one failed). */
        if (link->is_asking_sentinel)
            link->sentinel_index++;
        link->has_master = false;
        link->is_asking_sentinel = false;
    }
    uint64_t base = link->backoff_ms;
    /* Jitter of +-20% so that many gateways do not reconnect in lockstep after a Redis restart. */
    uint64_t jitter_span = base / 5;
    uint64_t delay = base - jitter_span + (jitter_span ? (uint64_t)rand() % (2 * jitter_span + 1) : 0);
    link->backoff_ms = base * 2 > link->opts.retry_max_ms ? link->opts.retry_max_ms : base * 2;
    link->state = LINK_WAITING;
    uv_timer_start(&link->timer, on_timer, delay, 0);
    if (link->handler->on_down != NULL)
        link->handler->on_down(link, link->arg, why, delay);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    wsg_redis_link_t *link = ac->ev.data;
    if (link == NULL)
        return;
    link->ac = NULL;
    if (link->state == LINK_CLOSING) {
        close_timer(link);
        return;
    }
    if (link->state == LINK_WAITING)
        return; /* we asked for it */
    uv_timer_stop(&link->timer);
    if (link->is_asking_sentinel && link->has_master && link->setup_error == NULL) {
        /* The sentinel named the master: connect to it on the next loop turn (not inside hiredis). */
        link->state = LINK_WAITING;
        uv_timer_start(&link->timer, on_timer, 0, 0);
        return;
    }
    link->was_closed_by_server = link->state == LINK_READY && ac->err == REDIS_ERR_EOF;
    if (link->setup_error != NULL)
        set_why(link, "setup failed", link->setup_error);
    else if (status != REDIS_OK)
        set_why(link, "connection lost", ac->errstr);
    else
        set_why(link, "connection closed", NULL);
    link->setup_error = NULL;
    schedule_retry(link, link->why);
}

static void setup_step_done(wsg_redis_link_t *link, redisAsyncContext *ac);

/* AUTH and SELECT: an error fails this attempt. */
static void on_setup_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    wsg_redis_link_t *link = privdata;
    redisReply *reply = reply_ptr;
    if (reply == NULL || link->state != LINK_AUTHENTICATING)
        return; /* the connection is going away; on_disconnect reports it */
    if (reply->type == REDIS_REPLY_ERROR && link->setup_error == NULL) {
        snprintf(link->why, sizeof link->why, "%s", reply->str);
        link->setup_error = link->why;
    }
    setup_step_done(link, ac);
}

/* CLIENT SETNAME is a courtesy: servers without it (old ones, some sentinels) are fine. */
static void on_setname_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    wsg_redis_link_t *link = privdata;
    if (reply_ptr == NULL || link->state != LINK_AUTHENTICATING)
        return;
    setup_step_done(link, ac);
}

/* ROLE, on a master found through Sentinel: a sentinel's answer can be stale during a failover. */
static void on_role_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    wsg_redis_link_t *link = privdata;
    redisReply *reply = reply_ptr;
    if (reply == NULL || link->state != LINK_AUTHENTICATING)
        return;
    bool is_master = reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
                     reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "master") == 0;
    if (!is_master && link->setup_error == NULL) {
        snprintf(link->why, sizeof link->why, "%s:%u is not a master (stale sentinel answer)", link->target_host,
                 link->target_port);
        link->setup_error = link->why;
        link->has_master = false;
    }
    setup_step_done(link, ac);
}

/* SENTINEL get-master-addr-by-name: remember the master, then connect to it. */
static void on_sentinel_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    wsg_redis_link_t *link = privdata;
    redisReply *reply = reply_ptr;
    if (reply == NULL || link->state != LINK_AUTHENTICATING)
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING && reply->element[0]->len < sizeof link->target_host) {
        long port = strtol(reply->element[1]->str, NULL, 10);
        if (port > 0 && port < 65536) {
            memcpy(link->target_host, reply->element[0]->str, reply->element[0]->len + 1);
            link->target_port = (uint16_t)port;
            link->has_master = true;
        }
    }
    if (!link->has_master) {
        snprintf(link->why, sizeof link->why, "sentinel %s:%u does not know master %s",
                 link->addr.sentinels[link->sentinel_index % link->addr.nsentinels].host,
                 link->addr.sentinels[link->sentinel_index % link->addr.nsentinels].port, link->addr.master_name);
        link->setup_error = link->why;
    }
    redisAsyncDisconnect(ac); /* deferred until this callback returns; on_disconnect goes on */
}

static void setup_step_done(wsg_redis_link_t *link, redisAsyncContext *ac)
{
    if (--link->setup_replies_left > 0)
        return;
    if (link->setup_error != NULL) {
        redisAsyncDisconnect(ac); /* deferred by hiredis until this callback returns */
        return;
    }
    uv_timer_stop(&link->timer);
    link->state = LINK_READY;
    link->backoff_ms = link->opts.retry_min_ms;
    if (link->handler->on_ready != NULL)
        link->handler->on_ready(link, link->arg);
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    wsg_redis_link_t *link = ac->ev.data;
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        set_why(link, "connect failed", ac->errstr);
        link->ac = NULL;
        uv_timer_stop(&link->timer);
        schedule_retry(link, link->why);
        return;
    }
    link->state = LINK_AUTHENTICATING;
    link->setup_error = NULL;
    link->setup_replies_left = 0;
    const wsg_redis_addr_t *a = &link->addr;
    int rc = REDIS_OK;
    if (link->is_asking_sentinel) {
        redisAsyncCommand(ac, on_sentinel_reply, link, "SENTINEL get-master-addr-by-name %s", a->master_name);
        return;
    }
    if (a->password[0] != '\0') {
        if (a->username[0] != '\0')
            rc |= redisAsyncCommand(ac, on_setup_reply, link, "AUTH %s %s", a->username, a->password);
        else
            rc |= redisAsyncCommand(ac, on_setup_reply, link, "AUTH %s", a->password);
        link->setup_replies_left++;
    }
    if (link->opts.select_db && a->db != 0) {
        rc |= redisAsyncCommand(ac, on_setup_reply, link, "SELECT %d", a->db);
        link->setup_replies_left++;
    }
    if (a->is_sentinel) {
        rc |= redisAsyncCommand(ac, on_role_reply, link, "ROLE");
        link->setup_replies_left++;
    }
    rc |= redisAsyncCommand(ac, on_setname_reply, link, "CLIENT SETNAME %s", link->opts.name);
    link->setup_replies_left++;
    (void)rc; /* a failure here surfaces as a disconnect */
}

static void connect_to(wsg_redis_link_t *link, const char *host)
{
    redisAsyncContext *ac = link->addr.is_unix ? redisAsyncConnectUnix(link->addr.path)
                                               : redisAsyncConnect(host, link->target_port);
    if (ac == NULL) {
        set_why(link, "connect failed", "out of memory");
        schedule_retry(link, link->why);
        return;
    }
    if (ac->err) {
        set_why(link, "connect failed", ac->errstr);
        redisAsyncFree(ac);
        schedule_retry(link, link->why);
        return;
    }
    int rc = attach_adapter(link, ac);
    if (rc < 0) {
        set_why(link, "connect failed", uv_strerror(rc));
        redisAsyncFree(ac);
        schedule_retry(link, link->why);
        return;
    }
    link->ac = ac;
    link->state = LINK_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    uv_timer_start(&link->timer, on_timer, link->opts.connect_timeout_ms, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    wsg_redis_link_t *link = req->data;
    free(req);
    link->resolver = NULL;
    if (link->state == LINK_CLOSING) {
        uv_freeaddrinfo(res);
        release_handle(link);
        return;
    }
    link->open_handles--; /* the resolver no longer pins the link */
    if (status < 0 || res == NULL) {
        set_why(link, "cannot resolve host", uv_strerror(status));
        uv_freeaddrinfo(res);
        schedule_retry(link, link->why);
        return;
    }
    char ip[INET6_ADDRSTRLEN] = "";
    if (res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
    else
        uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    connect_to(link, ip);
}

static bool is_numeric_host(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void start_attempt(wsg_redis_link_t *link)
{
    const wsg_redis_addr_t *a = &link->addr;
    link->is_asking_sentinel = false;
    if (a->is_sentinel && !link->has_master) {
        const struct wsg_redis_sentinel_addr *s = &a->sentinels[link->sentinel_index % a->nsentinels];
        snprintf(link->target_host, sizeof link->target_host, "%s", s->host);
        link->target_port = s->port;
        link->is_asking_sentinel = true;
    } else if (!a->is_sentinel) {
        snprintf(link->target_host, sizeof link->target_host, "%s", a->host);
        link->target_port = a->port;
    }
    if (a->is_unix || is_numeric_host(link->target_host)) {
        connect_to(link, link->target_host);
        return;
    }
    /* hiredis would resolve names with a blocking getaddrinfo() inside the loop: resolve them ourselves. */
    uv_getaddrinfo_t *req = malloc(sizeof(*req));
    if (req == NULL) {
        schedule_retry(link, "cannot resolve host: out of memory");
        return;
    }
    req->data = link;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(link->loop, req, on_resolved, link->target_host, NULL, &hints);
    if (rc < 0) {
        free(req);
        set_why(link, "cannot resolve host", uv_strerror(rc));
        schedule_retry(link, link->why);
        return;
    }
    link->resolver = req;
    link->open_handles++;
    link->state = LINK_RESOLVING;
}

wsg_redis_link_t *wsg_redis_link_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                     const wsg_redis_link_options_t *opts, const wsg_redis_link_handler_t *handler,
                                     void *arg)
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
    link->handler = handler;
    link->arg = arg;
    link->backoff_ms = link->opts.retry_min_ms;
    uv_timer_init(loop, &link->timer);
    link->timer.data = link;
    link->open_handles = 1;
    start_attempt(link);
    return link;
}

struct redisAsyncContext *wsg_redis_link_context(wsg_redis_link_t *link)
{
    return link->state == LINK_READY ? link->ac : NULL;
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
    redisAsyncContext *ac = link->ac;
    set_why(link, why, NULL);
    link->state = LINK_WAITING;
    link->backoff_ms = link->opts.retry_min_ms;
    link->was_closed_by_server = false;
    redisAsyncFree(ac); /* pending callbacks run with NULL replies */
    link->ac = NULL;
    schedule_retry(link, link->why);
}

static void on_timer_closed(uv_handle_t *handle)
{
    release_handle(handle->data);
}

static void close_timer(wsg_redis_link_t *link)
{
    if (uv_is_closing((uv_handle_t *)&link->timer))
        return;
    uv_timer_stop(&link->timer);
    uv_close((uv_handle_t *)&link->timer, on_timer_closed);
}

void wsg_redis_link_close(wsg_redis_link_t *link, void (*cb)(void *cb_arg), void *cb_arg)
{
    enum link_state was = link->state;
    link->state = LINK_CLOSING;
    link->close_cb = cb;
    link->close_arg = cb_arg;
    if (link->resolver != NULL)
        uv_cancel((uv_req_t *)link->resolver); /* on_resolved releases it */
    uv_timer_stop(&link->timer);
    if (link->ac != NULL) {
        redisAsyncContext *ac = link->ac;
        if (was == LINK_READY) {
            /* Waits for the replies in flight (on_disconnect then closes the timer); the timer bounds the
             * wait in case Redis never answers. */
            uv_timer_start(&link->timer, on_timer, link->opts.connect_timeout_ms, 0);
            redisAsyncDisconnect(ac);
            return;
        }
        link->ac = NULL;
        redisAsyncFree(ac);
    }
    close_timer(link);
}
