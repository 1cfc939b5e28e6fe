/* Inbound frames through wslay, with the context taken only while input is mid-frame or mid-message. */
#include "ws_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

typedef struct ws_reader_active {
    wslay_event_context_ptr ctx;
    /* Valid only during one wsg_ws_reader_feed call. */
    const uint8_t *in;
    size_t in_len;
    const wsg_ws_reader_handler_t *handler;
    void *arg;
    wsg_ws_reader_t *reader;
    uint16_t error_code;
} ws_reader_active_t;

static ssize_t on_wslay_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user_data)
{
    ws_reader_active_t *a = user_data;
    if (a->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = a->in_len < len ? a->in_len : len;
    memcpy(buf, a->in, n);
    a->in += n;
    a->in_len -= n;
    return (ssize_t)n;
}

/* wslay queues its own replies (pong, close echo); the connection writes its own instead, so whatever wslay
 * "sends" is discarded. Running wslay_event_send keeps its close bookkeeping and frees its queue. */
static ssize_t on_wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                             void *user_data)
{
    return (ssize_t)len;
}

static void on_wslay_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m,
                         void *user_data)
{
    ws_reader_active_t *a = user_data;
    if (a->reader->is_done)
        return;
    switch (m->opcode) {
    case WSLAY_TEXT_FRAME:
    case WSLAY_BINARY_FRAME:
        a->handler->on_message(a->arg, m->opcode == WSLAY_TEXT_FRAME, m->msg, m->msg_length);
        break;
    case WSLAY_PING:
        a->handler->on_ping(a->arg, m->msg, m->msg_length);
        break;
    case WSLAY_PONG:
        a->handler->on_pong(a->arg, m->msg, m->msg_length);
        break;
    case WSLAY_CONNECTION_CLOSE:
        a->reader->is_done = true;
        if (m->msg_length == 1) {
            /* A close payload must be empty or hold a 2-byte code; wslay reads one byte as "no code". */
            a->error_code = WSG_CLOSE_PROTOCOL_ERROR;
            break;
        }
        a->handler->on_close(a->arg, m->msg_length >= 2 ? m->status_code : WSG_CLOSE_NO_STATUS,
                             m->msg_length >= 2 ? m->msg + 2 : NULL, m->msg_length >= 2 ? m->msg_length - 2 : 0);
        break;
    default:
        break;
    }
}

static const struct wslay_event_callbacks wslay_callbacks = {
    .recv_callback = on_wslay_recv,
    .send_callback = on_wslay_send,
    .on_msg_recv_callback = on_wslay_msg,
};

void wsg_ws_reader_init(wsg_ws_reader_t *r)
{
    r->active = NULL;
    r->is_done = false;
    wsg_frame_tracker_init(&r->tracker);
}

static ws_reader_active_t *take_active(wsg_ws_reader_t *r, uint64_t max_message)
{
    ws_reader_active_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    if (wslay_event_context_server_init(&a->ctx, &wslay_callbacks, a) != 0) {
        free(a);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(a->ctx, max_message);
    a->reader = r;
    r->active = a;
    return a;
}

void wsg_ws_reader_dispose(wsg_ws_reader_t *r)
{
    if (r->active != NULL) {
        wslay_event_context_free(r->active->ctx);
        free(r->active);
        r->active = NULL;
    }
}

int wsg_ws_reader_feed(wsg_ws_reader_t *r, const uint8_t *data, size_t len, uint64_t max_message,
                       const wsg_ws_reader_handler_t *handler, void *arg, uint16_t *close_code)
{
    if (r->is_done || len == 0)
        return 0;
    ws_reader_active_t *a = r->active;
    if (a == NULL && (a = take_active(r, max_message)) == NULL) {
        r->is_done = true;
        *close_code = WSG_CLOSE_INTERNAL_ERROR;
        return -ENOMEM;
    }
    /* The tracker sees the same bytes as wslay; it only learns where frames and messages end. A header it
     * rejects is one wslay rejects too, but wslay decides the close code, so its verdict is taken first. */
    int tracker_rc = wsg_frame_tracker_feed(&r->tracker, data, len);
    a->in = data;
    a->in_len = len;
    a->handler = handler;
    a->arg = arg;
    a->error_code = 0;
    int rc = wslay_event_recv(a->ctx);
    wslay_event_send(a->ctx); /* drains wslay's own replies through the discarding callback */
    uint16_t code = a->error_code;
    if (code == 0 && rc == WSLAY_ERR_NOMEM)
        code = WSG_CLOSE_INTERNAL_ERROR;
    else if (code == 0 && rc != 0)
        code = WSG_CLOSE_PROTOCOL_ERROR; /* frame-level error (bad length, fragmented control frame...) */
    else if (code == 0 && !r->is_done && wslay_event_get_close_sent(a->ctx))
        code = wslay_event_get_status_code_sent(a->ctx); /* wslay found 1002, 1007 or 1009 */
    if (code == 0 && !r->is_done && tracker_rc < 0)
        code = WSG_CLOSE_PROTOCOL_ERROR;
    if (code == WSG_CLOSE_NO_STATUS)
        code = WSG_CLOSE_PROTOCOL_ERROR;
    a->in = NULL;
    a->in_len = 0;
    if (code != 0) {
        r->is_done = true;
        *close_code = code;
        wsg_ws_reader_dispose(r);
        return -EPROTO;
    }
    if (r->is_done || wsg_frame_tracker_is_idle(&r->tracker))
        wsg_ws_reader_dispose(r);
    return 0;
}

bool wsg_ws_reader_is_active(const wsg_ws_reader_t *r)
{
    return r->active != NULL;
}
