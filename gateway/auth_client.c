/* One outgoing HTTP GET with a deadline: connect, write, read and parse the answer, close. */
#include "auth_client.h"

#include <llhttp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* An identity document is small; anything larger is treated as a broken service. */
#define AUTH_BODY_MAX (16 * 1024)

struct wsg_auth_request {
    uv_tcp_t tcp;
    uv_timer_t timer;
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
    int open_handles;
    bool is_done;      /* the outcome is decided (callback ran or was cancelled) */
    bool is_complete;  /* llhttp saw the whole response */
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
        /* A response without Content-Length ends with the connection. */
        if (nread == UV_EOF && llhttp_finish(&req->parser) == HPE_OK && req->is_complete)
            finish(req, req->status);
        else
            finish(req, 0);
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

static void on_connected(uv_connect_t *connect_req, int status)
{
    wsg_auth_request_t *req = connect_req->data;
    if (req->is_done)
        return;
    if (status < 0) {
        finish(req, 0);
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

wsg_auth_request_t *wsg_auth_request_start(uv_loop_t *loop, const struct sockaddr *addr, uint64_t timeout_ms,
                                           const char *request, size_t len, wsg_auth_done_cb cb, void *arg)
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
    llhttp_settings_init(&req->settings);
    req->settings.on_body = on_body;
    req->settings.on_message_complete = on_message_complete;
    llhttp_init(&req->parser, HTTP_RESPONSE, &req->settings);
    req->parser.data = req;
    uv_tcp_init(loop, &req->tcp);
    uv_timer_init(loop, &req->timer);
    req->tcp.data = req->timer.data = req->connect_req.data = req;
    req->open_handles = 2;
    if (uv_tcp_connect(&req->connect_req, &req->tcp, addr, on_connected) < 0) {
        req->is_done = true; /* no callback: the caller learns it from NULL */
        uv_close((uv_handle_t *)&req->tcp, on_handle_closed);
        uv_close((uv_handle_t *)&req->timer, on_handle_closed);
        return NULL;
    }
    uv_timer_start(&req->timer, on_timeout, timeout_ms, 0);
    return req;
}

void wsg_auth_request_cancel(wsg_auth_request_t *req)
{
    req->cb = NULL;
    finish(req, 0);
}
