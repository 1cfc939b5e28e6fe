/* Asking the sentinels for the master, one after the other (see sentinel_query.h). */
#include "sentinel_query.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wsg_redis_sentinel_query {
    uv_loop_t *loop;
    wsg_redis_addr_t addr;
    wsg_tls_t *tls;
    char tls_name[256];
    uint64_t timeout_ms;
    uv_timer_t timer; /* each sentinel's time, or a failure reported from the loop */
    wsg_transport_t *transport;
    redisReader *reader;
    unsigned index; /* the sentinel being asked */
    unsigned tried;
    bool has_auth; /* AUTH went before the question */
    bool is_auth_optional;
    bool is_done;
    int refs;       /* the timer and the transport */
    int open_error; /* connecting to the current sentinel failed at once: reported from the loop */
    wsg_redis_master_cb cb;
    void *arg;
    char why[512];
};

static void release(wsg_redis_sentinel_query_t *q)
{
    if (--q->refs > 0)
        return;
    if (q->reader != NULL)
        redisReaderFree(q->reader);
    free(q);
}

static void on_transport_closed(void *arg)
{
    release(arg);
}

static void on_timer_closed(uv_handle_t *handle)
{
    release(handle->data);
}

static void drop_transport(wsg_redis_sentinel_query_t *q)
{
    if (q->transport != NULL) {
        wsg_transport_close(q->transport, on_transport_closed, q);
        q->transport = NULL;
    }
    if (q->reader != NULL) {
        redisReaderFree(q->reader);
        q->reader = NULL;
    }
}

static void finish(wsg_redis_sentinel_query_t *q, const char *host, uint16_t port)
{
    if (q->is_done)
        return;
    q->is_done = true;
    drop_transport(q);
    uv_close((uv_handle_t *)&q->timer, on_timer_closed);
    if (q->cb != NULL)
        q->cb(q->arg, host, port, host == NULL ? q->why : NULL, q->index % q->addr.nsentinels);
}

static void ask_current(wsg_redis_sentinel_query_t *q);

static const struct wsg_redis_sentinel_addr *current(const wsg_redis_sentinel_query_t *q)
{
    return &q->addr.sentinels[q->index % q->addr.nsentinels];
}

/* This sentinel failed: the next one, or the end when every one was asked. */
static void sentinel_failed(wsg_redis_sentinel_query_t *q, const char *what, const char *detail)
{
    snprintf(q->why, sizeof q->why, "sentinel %s:%u: %s%s%s", current(q)->host, current(q)->port, what,
             detail != NULL ? ": " : "", detail != NULL ? detail : "");
    drop_transport(q);
    if (++q->tried >= q->addr.nsentinels) {
        finish(q, NULL, 0);
        return;
    }
    q->index++;
    ask_current(q);
}

static bool is_no_password_error(const redisReply *r)
{
    return strstr(r->str, "without any password configured") != NULL ||
           strstr(r->str, "no password is set") != NULL;
}

/* Handles one reply; returns false once the query moved on (the reader is gone). */
static bool on_reply(wsg_redis_sentinel_query_t *q, const redisReply *r)
{
    if (q->has_auth) {
        q->has_auth = false;
        if (r->type == REDIS_REPLY_ERROR && !(q->is_auth_optional && is_no_password_error(r))) {
            sentinel_failed(q, "AUTH", r->str);
            return false;
        }
        return true;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        sentinel_failed(q, "SENTINEL get-master-addr-by-name", r->str);
        return false;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
        r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof q->addr.host) {
        long port = strtol(r->element[1]->str, NULL, 10);
        if (port > 0 && port < 65536) {
            char host[sizeof q->addr.host];
            memcpy(host, r->element[0]->str, r->element[0]->len + 1);
            finish(q, host, (uint16_t)port);
            return false;
        }
    }
    char detail[200];
    snprintf(detail, sizeof detail, "does not know master %s", q->addr.master_name);
    sentinel_failed(q, detail, NULL);
    return false;
}

static void on_data(void *arg, const char *data, size_t len)
{
    wsg_redis_sentinel_query_t *q = arg;
    redisReader *reader = q->reader;
    if (reader == NULL || redisReaderFeed(reader, data, len) != REDIS_OK) {
        sentinel_failed(q, "out of memory", NULL);
        return;
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
            sentinel_failed(q, "protocol error", reader->errstr);
            return;
        }
        if (reply == NULL)
            return;
        bool is_going_on = on_reply(q, reply);
        freeReplyObject(reply);
        if (!is_going_on)
            return;
    }
}

static void on_error(void *arg, int err, const char *why)
{
    wsg_redis_sentinel_query_t *q = arg;
    sentinel_failed(q, why, NULL);
}

static void on_open(void *arg)
{
    wsg_redis_sentinel_query_t *q = arg;
    const wsg_redis_addr_t *a = &q->addr;
    /* The sentinels' own credentials, or else the URL's, which a sentinel without a password may refuse. */
    bool is_own = a->sentinel_password[0] != '\0';
    const char *user = is_own ? a->sentinel_username : a->username;
    const char *pass = is_own ? a->sentinel_password : a->password;
    q->is_auth_optional = !is_own;
    char *auth = NULL, *ask = NULL;
    int auth_len = 0;
    if (pass[0] != '\0')
        auth_len = user[0] != '\0' ? redisFormatCommand(&auth, "AUTH %s %s", user, pass)
                                   : redisFormatCommand(&auth, "AUTH %s", pass);
    int ask_len = redisFormatCommand(&ask, "SENTINEL get-master-addr-by-name %s", a->master_name);
    q->has_auth = auth_len > 0;
    int rc = auth_len < 0 || ask_len < 0 ? -ENOMEM : 0;
    if (rc == 0 && auth_len > 0)
        rc = wsg_transport_write(q->transport, auth, (size_t)auth_len);
    if (rc == 0)
        rc = wsg_transport_write(q->transport, ask, (size_t)ask_len);
    free(auth);
    free(ask);
    if (rc < 0)
        sentinel_failed(q, "write failed", NULL);
}

static const wsg_transport_handler_t handler = {.on_open = on_open, .on_data = on_data, .on_error = on_error};

static void on_timeout(uv_timer_t *timer)
{
    wsg_redis_sentinel_query_t *q = timer->data;
    if (q->addr.nsentinels == 0) {
        finish(q, NULL, 0);
        return;
    }
    if (q->open_error != 0) {
        int err = q->open_error;
        q->open_error = 0;
        sentinel_failed(q, "connect", uv_strerror(err));
        return;
    }
    sentinel_failed(q, "no answer in time", NULL);
}

static void ask_current(wsg_redis_sentinel_query_t *q)
{
    const struct wsg_redis_sentinel_addr *s = current(q);
    q->reader = redisReaderCreate();
    int rc = q->reader == NULL
                 ? -ENOMEM
                 : wsg_transport_open(q->loop, s->host, s->port, q->tls, q->tls_name[0] ? q->tls_name : NULL,
                                      &handler, q, &q->transport);
    if (rc < 0) {
        drop_transport(q);
        q->open_error = rc;
        uv_timer_start(&q->timer, on_timeout, 0, 0); /* reported from the loop */
        return;
    }
    q->refs++;
    uv_timer_start(&q->timer, on_timeout, q->timeout_ms, 0);
}

wsg_redis_sentinel_query_t *wsg_redis_sentinel_ask(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                                   unsigned first, uint64_t timeout_ms, wsg_tls_t *tls,
                                                   const char *tls_name, wsg_redis_master_cb cb, void *arg)
{
    wsg_redis_sentinel_query_t *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return NULL;
    q->loop = loop;
    q->addr = *addr;
    q->tls = tls;
    snprintf(q->tls_name, sizeof q->tls_name, "%s", tls_name != NULL ? tls_name : "");
    q->timeout_ms = timeout_ms;
    q->index = first;
    q->cb = cb;
    q->arg = arg;
    uv_timer_init(loop, &q->timer);
    q->timer.data = q;
    q->refs = 1; /* the timer */
    if (addr->nsentinels == 0) {
        snprintf(q->why, sizeof q->why, "no sentinel in the URL");
        uv_timer_start(&q->timer, on_timeout, 0, 0);
        return q;
    }
    ask_current(q);
    return q;
}

void wsg_redis_sentinel_cancel(wsg_redis_sentinel_query_t *q)
{
    q->cb = NULL;
    finish(q, NULL, 0);
}
