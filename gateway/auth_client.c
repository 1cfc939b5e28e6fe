/* The authorization callback client (see auth_client.h). A connection to the service carries one request at
 * a time; between requests it waits in the idle list for the next, for at most keepalive_ms. */
#include "auth_client.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

/* An identity document is small; anything larger is treated as a broken service. */
#define AUTH_BODY_MAX (16 * 1024)
/* Idle connections kept per worker; more are closed as they become idle. */
#define MAX_IDLE 16

struct wsg_auth_client {
    uv_loop_t *loop;
    wsg_tls_t *tls;            /* NULL for http:// */
    uv_timer_t sweep_timer;    /* closes connections idle for keepalive_ms */
    wsg_auth_request_t *conns; /* every connection, busy or idle */
    wsg_auth_request_t *idle;  /* idle ones, most recently used first */
    unsigned nidle;
    unsigned nconns; /* connections whose memory is not freed yet */
    bool is_closing;
    bool is_sweep_closed;
    void (*on_closed)(void *arg);
    void *closed_arg;
    uint16_t port;
    uint64_t timeout_ms, keepalive_ms;
    char host[256];
};

/* A connection to the service and the request it carries. The caller's handle is the connection: after the
 * callback or a cancel the caller forgets it, and it may carry someone else's request next. */
struct wsg_auth_request {
    wsg_auth_client_t *client;
    wsg_auth_request_t *prev, *next; /* in client->conns */
    wsg_auth_request_t *next_idle;
    wsg_transport_t *transport; /* NULL between connections */
    uv_timer_t timer;           /* the request's timeout, or a failure reported from the loop */
    llhttp_t parser;
    char *request;
    size_t request_len;
    char *body;
    size_t body_len;
    wsg_auth_done_cb cb;
    void *arg;
    uint64_t idle_since_ms;
    int refs;           /* the timer handle and the transport, until each is closed */
    unsigned answered;  /* answers read on the current transport */
    bool is_failing;    /* the timer reports a failure found while starting */
    bool is_busy;       /* a request is under way */
    bool is_idle;       /* in the idle list */
    bool is_destroying; /* closing for good */
    bool is_complete;   /* llhttp saw the whole answer */
    bool has_answer_bytes;
    bool is_too_big;
    bool is_retried;
    char why[320];
};

/* ---- freeing --------------------------------------------------------------------------------------------
 */

static void maybe_client_closed(wsg_auth_client_t *client)
{
    if (!client->is_closing || client->nconns > 0 || !client->is_sweep_closed)
        return;
    void (*cb)(void *) = client->on_closed;
    void *cb_arg = client->closed_arg;
    wsg_tls_free(client->tls);
    free(client);
    if (cb != NULL)
        cb(cb_arg);
}

static void release(wsg_auth_request_t *c)
{
    if (--c->refs > 0)
        return;
    wsg_auth_client_t *client = c->client;
    free(c->request);
    free(c->body);
    free(c);
    client->nconns--;
    maybe_client_closed(client);
}

static void on_transport_closed(void *arg)
{
    release(arg);
}

static void on_timer_closed(uv_handle_t *handle)
{
    release(handle->data);
}

static void unlink_idle(wsg_auth_request_t *c)
{
    if (!c->is_idle)
        return;
    wsg_auth_client_t *client = c->client;
    for (wsg_auth_request_t **p = &client->idle; *p != NULL; p = &(*p)->next_idle) {
        if (*p == c) {
            *p = c->next_idle;
            break;
        }
    }
    c->is_idle = false;
    c->next_idle = NULL;
    client->nidle--;
}

static void drop_transport(wsg_auth_request_t *c)
{
    if (c->transport == NULL)
        return;
    wsg_transport_close(c->transport, on_transport_closed, c);
    c->transport = NULL;
}

/* Closes the connection for good; its memory goes once its handles are closed. */
static void destroy(wsg_auth_request_t *c)
{
    if (c->is_destroying)
        return;
    c->is_destroying = true;
    c->cb = NULL;
    unlink_idle(c);
    wsg_auth_client_t *client = c->client;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        client->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    drop_transport(c);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* ---- outcome --------------------------------------------------------------------------------------------
 */

static void on_sweep(uv_timer_t *timer);

static void make_idle(wsg_auth_request_t *c)
{
    wsg_auth_client_t *client = c->client;
    if (client->is_closing || client->nidle >= MAX_IDLE) {
        destroy(c);
        return;
    }
    c->is_idle = true;
    c->idle_since_ms = uv_now(client->loop);
    c->next_idle = client->idle;
    client->idle = c;
    client->nidle++;
    if (!uv_is_active((uv_handle_t *)&client->sweep_timer)) {
        uint64_t every = client->keepalive_ms < 1000 ? client->keepalive_ms : 1000;
        uv_timer_start(&client->sweep_timer, on_sweep, every, every);
    }
}

/* The request is over: the caller hears it, then the connection is kept for the next request when the answer
 * was complete, nothing followed it and the service did not ask to close. */
static void finish(wsg_auth_request_t *c, int status)
{
    if (!c->is_busy)
        return;
    c->is_busy = false;
    uv_timer_stop(&c->timer);
    bool is_reusable = status != 0 && c->transport != NULL && wsg_transport_is_open(c->transport) &&
                       llhttp_should_keep_alive(&c->parser) && c->client->keepalive_ms > 0;
    if (status != 0)
        c->answered++;
    wsg_auth_done_cb cb = c->cb;
    c->cb = NULL;
    if (cb != NULL)
        cb(c->arg, status, c->body != NULL ? c->body : "", c->body_len, status == 0 ? c->why : "");
    free(c->request);
    c->request = NULL;
    if (c->is_destroying)
        return;
    if (is_reusable)
        make_idle(c);
    else
        destroy(c);
}

static void fail_request(wsg_auth_request_t *c, const char *why)
{
    snprintf(c->why, sizeof c->why, "%s", why);
    finish(c, 0);
}

static void on_timer(uv_timer_t *timer)
{
    wsg_auth_request_t *c = timer->data;
    if (c->is_failing) {
        finish(c, 0); /* c->why says it */
        return;
    }
    char why[64];
    snprintf(why, sizeof why, "no answer within %llu ms", (unsigned long long)c->client->timeout_ms);
    drop_transport(c);
    fail_request(c, why);
}

/* A failure found while starting is reported from the loop, never from inside wsg_auth_request_start. */
static void fail_soon(wsg_auth_request_t *c, const char *what, int err)
{
    snprintf(c->why, sizeof c->why, "%s: %s", what, uv_strerror(err));
    c->is_failing = true;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* ---- the answer -----------------------------------------------------------------------------------------
 */

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    wsg_auth_request_t *c = parser->data;
    if (c->body_len + len > AUTH_BODY_MAX) {
        c->is_too_big = true;
        return -1;
    }
    char *body = realloc(c->body, c->body_len + len + 1);
    if (body == NULL)
        return -1;
    memcpy(body + c->body_len, at, len);
    c->body = body;
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    wsg_auth_request_t *c = parser->data;
    c->is_complete = true;
    return HPE_PAUSED;
}

static void on_data(void *arg, const char *data, size_t len)
{
    wsg_auth_request_t *c = arg;
    if (!c->is_busy) {
        /* An idle connection has nothing to say: whatever comes, it cannot be trusted with a request. */
        destroy(c);
        return;
    }
    c->has_answer_bytes = true;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
    if (c->is_complete) {
        /* Bytes after the answer would be read as the next one's: such a connection is not reused. */
        if (err == HPE_PAUSED && llhttp_get_error_pos(&c->parser) != data + len)
            drop_transport(c);
        finish(c, c->parser.status_code);
        return;
    }
    if (err != HPE_OK) {
        char why[160];
        snprintf(why, sizeof why, "%s",
                 c->is_too_big ? "answer larger than 16 KiB" : "malformed HTTP answer");
        drop_transport(c);
        fail_request(c, why);
    }
}

static const llhttp_settings_t parser_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int connect_transport(wsg_auth_request_t *c);

static void on_error(void *arg, int err, const char *why)
{
    wsg_auth_request_t *c = arg;
    if (!c->is_busy) {
        destroy(c);
        return;
    }
    /* The service may close a kept-alive connection just as a request goes out on it: the request was not
     * seen, so it is sent once more on a new connection. */
    if (c->answered > 0 && !c->has_answer_bytes && !c->is_retried) {
        c->is_retried = true;
        drop_transport(c);
        c->answered = 0;
        int rc = connect_transport(c);
        if (rc < 0) {
            snprintf(c->why, sizeof c->why, "connect: %s", uv_strerror(rc));
            finish(c, 0);
        }
        return;
    }
    /* An answer without Content-Length or chunking ends with the connection: llhttp_finish completes it (and
     * reports the pause on_message_complete asks for). */
    if (err == UV_EOF && c->has_answer_bytes)
        llhttp_finish(&c->parser);
    drop_transport(c);
    if (c->is_complete) {
        finish(c, c->parser.status_code);
        return;
    }
    fail_request(c, why);
}

static void on_open(void *arg)
{
    wsg_auth_request_t *c = arg;
    int rc = wsg_transport_write(c->transport, c->request, c->request_len);
    if (rc < 0) {
        char why[96];
        snprintf(why, sizeof why, "write: %s", uv_strerror(rc));
        drop_transport(c);
        fail_request(c, why);
    }
}

static const wsg_transport_handler_t transport_handler = {
    .on_open = on_open, .on_data = on_data, .on_error = on_error};

static int connect_transport(wsg_auth_request_t *c)
{
    wsg_auth_client_t *client = c->client;
    int rc = wsg_transport_open(client->loop, client->host, client->port, client->tls, NULL,
                                &transport_handler, c, &c->transport);
    if (rc == 0) {
        c->refs++;
        c->answered = 0;
    }
    return rc;
}

/* ---- the client -----------------------------------------------------------------------------------------
 */

static void on_sweep(uv_timer_t *timer)
{
    wsg_auth_client_t *client = timer->data;
    uint64_t now = uv_now(client->loop);
    wsg_auth_request_t *c = client->idle;
    while (c != NULL) {
        wsg_auth_request_t *next = c->next_idle;
        if (now - c->idle_since_ms >= client->keepalive_ms)
            destroy(c);
        c = next;
    }
    if (client->nidle == 0)
        uv_timer_stop(timer);
}

int wsg_auth_client_new(uv_loop_t *loop, const wsg_auth_target_t *target, wsg_auth_client_t **out, char *err,
                        size_t err_cap)
{
    *out = NULL;
    if (strlen(target->host) >= sizeof((wsg_auth_client_t *)0)->host) {
        snprintf(err, err_cap, "authorization service host name too long");
        return -ENAMETOOLONG;
    }
    wsg_auth_client_t *client = calloc(1, sizeof(*client));
    if (client == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -ENOMEM;
    }
    if (target->is_tls) {
        wsg_tls_options_t opts = {.ca_file = target->ca_file};
        int rc = wsg_tls_new(&opts, &client->tls, err, err_cap);
        if (rc < 0) {
            free(client);
            return rc;
        }
    }
    client->loop = loop;
    client->port = target->port;
    client->timeout_ms = target->timeout_ms;
    client->keepalive_ms = target->keepalive_ms;
    snprintf(client->host, sizeof client->host, "%s", target->host);
    uv_timer_init(loop, &client->sweep_timer);
    client->sweep_timer.data = client;
    *out = client;
    return 0;
}

static void on_sweep_closed(uv_handle_t *handle)
{
    wsg_auth_client_t *client = handle->data;
    client->is_sweep_closed = true;
    maybe_client_closed(client);
}

void wsg_auth_client_close(wsg_auth_client_t *client, void (*cb)(void *cb_arg), void *cb_arg)
{
    if (client->is_closing)
        return;
    client->is_closing = true;
    client->on_closed = cb;
    client->closed_arg = cb_arg;
    while (client->conns != NULL)
        destroy(client->conns);
    uv_close((uv_handle_t *)&client->sweep_timer, on_sweep_closed);
}

static wsg_auth_request_t *new_conn(wsg_auth_client_t *client)
{
    wsg_auth_request_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->client = client;
    uv_timer_init(client->loop, &c->timer);
    c->timer.data = c;
    c->refs = 1; /* the timer */
    c->next = client->conns;
    if (client->conns != NULL)
        client->conns->prev = c;
    client->conns = c;
    client->nconns++;
    return c;
}

wsg_auth_request_t *wsg_auth_request_start(wsg_auth_client_t *client, const char *request, size_t len,
                                           wsg_auth_done_cb cb, void *arg)
{
    if (client->is_closing)
        return NULL;
    char *copy = malloc(len);
    if (copy == NULL)
        return NULL;
    memcpy(copy, request, len);
    wsg_auth_request_t *c = client->idle;
    if (c != NULL)
        unlink_idle(c);
    else if ((c = new_conn(client)) == NULL) {
        free(copy);
        return NULL;
    }
    c->request = copy;
    c->request_len = len;
    c->cb = cb;
    c->arg = arg;
    c->is_busy = true;
    c->is_complete = c->has_answer_bytes = c->is_too_big = c->is_retried = c->is_failing = false;
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_timer, client->timeout_ms, 0);
    if (c->transport != NULL) {
        int rc = wsg_transport_write(c->transport, c->request, c->request_len);
        if (rc < 0) {
            drop_transport(c);
            fail_soon(c, "write", rc);
        }
        return c;
    }
    int rc = connect_transport(c);
    if (rc < 0)
        fail_soon(c, "connect", rc);
    return c;
}

void wsg_auth_request_cancel(wsg_auth_request_t *req)
{
    req->cb = NULL;
}
