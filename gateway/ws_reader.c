/* Inbound frames through wslay, with the context taken only while input is mid-frame or mid-message. */
#include "ws_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

/* The longest close frame a client may send: 2-byte header, 4-byte mask, 125 bytes of payload. */
#define CLOSE_FRAME_MAX (2 + 4 + 125)

typedef struct ws_reader_active {
    wslay_event_context_ptr ctx;
    /* A close frame whose end has not arrived yet. wslay validates a close reason's UTF-8 per received chunk
     * starting at offset 2 of every chunk, so a close frame split across reads could be judged wrongly: it is
     * held here and handed over whole. */
    uint8_t held[CLOSE_FRAME_MAX];
    size_t held_len;
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

/* How many leading bytes of `data` may go to wslay now: all but a trailing close frame that is not complete.
 * Scans a copy of the tracker, which stands where wslay's input ends. */
static size_t complete_prefix(const wsg_frame_tracker_t *tracker, const uint8_t *data, size_t len)
{
    wsg_frame_tracker_t scan = *tracker;
    size_t frame_start = 0;
    size_t pos = 0;
    while (pos < len) {
        if (wsg_frame_tracker_at_frame_start(&scan))
            frame_start = pos;
        /* Payload goes in one step; header bytes one at a time, to see where each frame begins. */
        size_t step = (scan.header_len == 0 && scan.payload_left > 0)
                          ? (scan.payload_left < len - pos ? (size_t)scan.payload_left : len - pos)
                          : 1;
        if (wsg_frame_tracker_feed(&scan, data + pos, step) < 0)
            return len; /* a bad header: let wslay see it and decide the close code */
        pos += step;
    }
    return wsg_frame_tracker_in_close_frame(&scan) ? frame_start : len;
}

/* Hands `len` bytes to wslay and the tracker. Returns 0 or the close code for an error. */
static uint16_t process(wsg_ws_reader_t *r, ws_reader_active_t *a, const uint8_t *data, size_t len,
                        uint64_t max_message)
{
    /* The tracker sees the same bytes as wslay; it only learns where frames and messages end. A header it
     * rejects is one wslay rejects too, but wslay decides the close code, so its verdict is taken first. */
    int tracker_rc = wsg_frame_tracker_feed(&r->tracker, data, len);
    a->in = data;
    a->in_len = len;
    a->error_code = 0;
    int rc = wslay_event_recv(a->ctx);
    wslay_event_send(a->ctx); /* drains wslay's own replies through the discarding callback */
    a->in = NULL;
    a->in_len = 0;
    uint16_t code = a->error_code;
    if (code == 0 && rc == WSLAY_ERR_NOMEM)
        code = WSG_CLOSE_INTERNAL_ERROR;
    else if (code == 0 && rc != 0)
        code = WSG_CLOSE_PROTOCOL_ERROR; /* frame-level error (bad length, fragmented control frame...) */
    else if (code == 0 && !r->is_done && wslay_event_get_close_sent(a->ctx))
        code = wslay_event_get_status_code_sent(a->ctx); /* wslay found 1002, 1007 or 1009 */
    if (code == 0 && !r->is_done && tracker_rc < 0)
        code = WSG_CLOSE_PROTOCOL_ERROR;
    /* wslay checks the size only once payload bytes arrive; a header announcing more than allowed is
     * answered at once rather than after the client has sent (part of) it. */
    if (code == 0 && !r->is_done && r->tracker.header_len == 0 && r->tracker.payload_left > max_message)
        code = WSG_CLOSE_TOO_BIG;
    if (code == WSG_CLOSE_NO_STATUS)
        code = WSG_CLOSE_PROTOCOL_ERROR;
    return code;
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
    a->handler = handler;
    a->arg = arg;
    uint8_t joined[CLOSE_FRAME_MAX];
    uint16_t code = 0;
    if (a->held_len > 0) {
        /* Complete the held close frame first, from as few new bytes as it needs. */
        size_t room = sizeof joined - a->held_len;
        size_t take = len < room ? len : room;
        memcpy(joined, a->held, a->held_len);
        memcpy(joined + a->held_len, data, take);
        size_t joined_len = a->held_len + take;
        size_t ready = complete_prefix(&r->tracker, joined, joined_len);
        if (ready == 0 && take == len) {
            memcpy(a->held, joined, joined_len); /* still incomplete */
            a->held_len = joined_len;
            return 0;
        }
        size_t from_data = ready > a->held_len ? ready - a->held_len : 0;
        if (ready == 0) {
            ready = joined_len; /* cannot be a valid close frame: let wslay reject it */
            from_data = take;
        }
        a->held_len = 0;
        code = process(r, a, joined, ready, max_message);
        data += from_data;
        len -= from_data;
    }
    if (code == 0 && !r->is_done && len > 0) {
        size_t ready = complete_prefix(&r->tracker, data, len);
        if (ready < len) {
            memcpy(a->held, data + ready, len - ready);
            a->held_len = len - ready;
        }
        if (ready > 0)
            code = process(r, a, data, ready, max_message);
    }
    if (code != 0) {
        r->is_done = true;
        *close_code = code;
        wsg_ws_reader_dispose(r);
        return -EPROTO;
    }
    if (r->is_done || (a->held_len == 0 && wsg_frame_tracker_is_idle(&r->tracker)))
        wsg_ws_reader_dispose(r);
    return 0;
}

bool wsg_ws_reader_is_active(const wsg_ws_reader_t *r)
{
    return r->active != NULL;
}
