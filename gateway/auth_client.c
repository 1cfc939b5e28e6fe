/* One outgoing HTTP GET with a deadline: connect, write, read and parse the answer, close. */
#include "auth_client.h"

#include <llhttp.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* An identity document is small; anything larger is treated as a broken service. */
#define AUTH_BODY_MAX (16 * 1024)
/* Addresses of a name tried in turn (localhost is often ::1 first, while the service listens on 127.0.0.1).
 */
#define MAX_ADDRS 4

struct wsg_auth_request {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_write_t write_req;
    llhttp_t parser;
    llhttp_settings_t settings;
    wsg_auth_done_cb cb;
    void *arg;
    char *request;
    size_t request_len;
    char *body;
    size_t body_len;
    int status;
    int open_handles; /* handles not closed yet, and the name lookup while it runs */
    uint16_t port;
    uint8_t naddrs, next_addr;
    bool is_tcp_closing; /* the handle of a failed attempt is closing before the next address is tried */
    struct sockaddr_storage addrs[MAX_ADDRS];
    bool is_done;     /* the outcome is decided (callback ran or was cancelled) */
    bool is_complete; /* llhttp saw the whole response */
    bool is_too_big;
};

static void on_handle_closed(uv_handle_t *handle)
{
    wsg_auth_request_t *req = handle->data;
    if (--req->open_handles > 0)
        return;
    free(req->request);
    free(req->body);
    free(req);
}

static void finish(wsg_auth_request_t *req, int status)
{
    if (req->is_done)
        return;
    req->is_done = true;
    if (req->cb != NULL)
        req->cb(req->arg, status, req->body ? req->body : "", req->body_len);
    if (!req->is_tcp_closing) /* otherwise on_attempt_closed releases it */
        uv_close((uv_handle_t *)&req->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&req->timer, on_handle_closed);
}

static int on_body(llhttp_t *parser, const char *at, size_t len)
{
    wsg_auth_request_t *req = parser->data;
    if (req->body_len + len > AUTH_BODY_MAX) {
        req->is_too_big = true;
        return -1;
    }
    char *body = realloc(req->body, req->body_len + len + 1);
    if (body == NULL)
        return -1;
    memcpy(body + req->body_len, at, len);
    req->body = body;
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static int on_message_complete(llhttp_t *parser)
{
    wsg_auth_request_t *req = parser->data;
    req->is_complete = true;
    req->status = parser->status_code;
    return HPE_PAUSED;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    static __thread char scratch[16 * 1024]; /* copied out by llhttp's callbacks within on_read */
    buf->base = scratch;
    buf->len = sizeof scratch;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    wsg_auth_request_t *req = stream->data;
    if (req->is_done)
        return;
    if (nread < 0) {
        /* A response without Content-Length or chunking ends with the connection: llhttp_finish completes it
         * (and then reports the pause on_message_complete asks for). */
        if (nread == UV_EOF)
            llhttp_finish(&req->parser);
        finish(req, req->is_complete ? req->status : 0);
        return;
    }
    llhttp_errno_t err = llhttp_execute(&req->parser, buf->base, (size_t)nread);
    if (req->is_complete)
        finish(req, req->status);
    else if (err != HPE_OK)
        finish(req, 0);
}

static void on_written(uv_write_t *write_req, int status)
{
    wsg_auth_request_t *req = write_req->data;
    if (status < 0)
        finish(req, 0);
}

static void try_next_address(wsg_auth_request_t *req);

/* The handle of a failed attempt is closed: a fresh one tries the next address (or the request is over). */
static void on_attempt_closed(uv_handle_t *handle)
{
    wsg_auth_request_t *req = handle->data;
    req->is_tcp_closing = false;
    if (req->is_done) {
        on_handle_closed(handle);
        return;
    }
    uv_tcp_init(handle->loop, &req->tcp);
    req->tcp.data = req;
    try_next_address(req);
}

static void on_connected(uv_connect_t *connect_req, int status)
{
    wsg_auth_request_t *req = connect_req->data;
    if (req->is_done)
        return;
    if (status < 0) {
        if (req->next_addr < req->naddrs) {
            req->is_tcp_closing = true;
            uv_close((uv_handle_t *)&req->tcp, on_attempt_closed);
        } else {
            finish(req, 0);
        }
        return;
    }
    uv_buf_t buf = uv_buf_init(req->request, (unsigned)req->request_len);
    req->write_req.data = req;
    if (uv_write(&req->write_req, (uv_stream_t *)&req->tcp, &buf, 1, on_written) < 0 ||
        uv_read_start((uv_stream_t *)&req->tcp, on_alloc, on_read) < 0)
        finish(req, 0);
}

static void on_timeout(uv_timer_t *timer)
{
    finish(timer->data, 0);
}

/* A failure found while starting is reported from the loop, never from inside wsg_auth_request_start. */
static void fail_soon(wsg_auth_request_t *req)
{
    uv_timer_start(&req->timer, on_timeout, 0, 0);
}

static void try_next_address(wsg_auth_request_t *req)
{
    while (req->next_addr < req->naddrs) {
        const struct sockaddr *addr = (const struct sockaddr *)&req->addrs[req->next_addr++];
        if (uv_tcp_connect(&req->connect_req, &req->tcp, addr, on_connected) == 0)
            return;
    }
    fail_soon(req);
}

static void on_resolved(uv_getaddrinfo_t *resolve_req, int status, struct addrinfo *res)
{
    wsg_auth_request_t *req = resolve_req->data;
    if (!req->is_done) {
        for (struct addrinfo *ai = status == 0 ? res : NULL; ai != NULL && req->naddrs < MAX_ADDRS;
             ai = ai->ai_next) {
            struct sockaddr_storage *a = &req->addrs[req->naddrs];
            if (ai->ai_addrlen > sizeof *a || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
                continue;
            memcpy(a, ai->ai_addr, ai->ai_addrlen);
            if (ai->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)a)->sin6_port = htons(req->port);
            else
                ((struct sockaddr_in *)a)->sin_port = htons(req->port);
            req->naddrs++;
        }
        if (req->naddrs > 0) {
            try_next_address(req);
        } else {
            finish(req, 0); /* does not resolve (yet): the client gets 503 and may try again */
        }
    }
    uv_freeaddrinfo(res);
    on_handle_closed((uv_handle_t *)&req->tcp); /* the lookup no longer holds the request */
}

wsg_auth_request_t *wsg_auth_request_start(uv_loop_t *loop, const char *host, uint16_t port,
                                           uint64_t timeout_ms, const char *request, size_t len,
                                           wsg_auth_done_cb cb, void *arg)
{
    wsg_auth_request_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->request = malloc(len);
    if (req->request == NULL) {
        free(req);
        return NULL;
    }
    memcpy(req->request, request, len);
    req->request_len = len;
    req->cb = cb;
    req->arg = arg;
    req->port = port;
    llhttp_settings_init(&req->settings);
    req->settings.on_body = on_body;
    req->settings.on_message_complete = on_message_complete;
    llhttp_init(&req->parser, HTTP_RESPONSE, &req->settings);
    req->parser.data = req;
    uv_tcp_init(loop, &req->tcp);
    uv_timer_init(loop, &req->timer);
    req->tcp.data = req->timer.data = req->connect_req.data = req->resolve_req.data = req;
    req->open_handles = 2;
    uv_timer_start(&req->timer, on_timeout, timeout_ms, 0);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&req->addrs[0]) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&req->addrs[0]) == 0) {
        req->naddrs = 1;
        try_next_address(req);
        return req;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    req->open_handles++; /* the lookup: released in on_resolved, also when cancelled */
    if (uv_getaddrinfo(loop, &req->resolve_req, on_resolved, host, NULL, &hints) < 0) {
        req->open_handles--;
        fail_soon(req);
    }
    return req;
}

void wsg_auth_request_cancel(wsg_auth_request_t *req)
{
    req->cb = NULL;
    finish(req, 0);
}
