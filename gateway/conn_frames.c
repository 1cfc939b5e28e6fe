/* What a client sends: reading while open or closing, frames through wslay, messages to publishing, pings
 * answered, and the peer's close frame. */
#include <stdlib.h>

#include "conn.h"
#include "conn_internal.h"
#include "log.h"

/* Reading follows the client's publishes in flight: past the bound it pauses until half are done. */
void conn_update_reading(wsg_conn_t *conn)
{
    uint32_t pending = conn->pub.pending;
    bool want = conn->state != WSG_CONN_CLOSED && (pending < WSG_PUBLISH_MAX_IN_FLIGHT / 2 ||
                                                   (conn->is_reading && pending < WSG_PUBLISH_MAX_IN_FLIGHT));
    if (want && !conn->is_reading)
        wsg_conn_read_start(conn, conn_on_read);
    else if (!want && conn->is_reading)
        wsg_conn_read_stop(conn);
}

void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    wsg_conn_t *conn = wsg_conn_of((uv_handle_t *)stream);
    if (!wsg_conn_take_read(conn, nread))
        return;
    if (conn->is_lingering)
        return; /* draining until the peer closes */
    if (conn->state == WSG_CONN_OPEN) {
        conn_touch(conn); /* any input, PONG included, proves the peer alive (see the stall rule in outq.h) */
        conn_feed_frames(conn, (const uint8_t *)buf->base, (size_t)nread);
    } else if (conn->state == WSG_CONN_CLOSING && conn->opened_ms != 0) {
        conn_feed_frames(conn, (const uint8_t *)buf->base, (size_t)nread);
    }
}

static void on_publish_done(void *arg, int status, const char *err);

static wsg_publisher_t publisher_of(wsg_conn_t *conn)
{
    return (wsg_publisher_t){
        .ctx = conn->ctx,
        .pub = &conn->pub,
        .client = &conn->client,
        .out = &conn->out,
        .conn_id = wsg_conn_id(conn),
        .done = on_publish_done,
        .done_arg = conn,
    };
}

static void on_publish_done(void *arg, int status, const char *err)
{
    wsg_conn_t *conn = arg;
    wsg_publisher_t p = publisher_of(conn);
    wsg_publish_done(&p, status, err);
    if (conn->state != WSG_CONN_CLOSED) {
        if (conn->close_reply_deferred && conn->pub.pending == 0) {
            conn->close_reply_deferred = false;
            wsg_outq_close(&conn->out, conn->close_code, NULL);
            conn_close_after_flush(conn);
        }
        conn_update_reading(conn);
    }
    conn_unref(conn);
}

/* Once the connection has decided to close, what the client sends is discarded (only the close handshake goes
 * on): a client closed for flooding, not reading or breaking the protocol gets nothing more done. The one
 * exception is a graceful shutdown (1001): a client may have sent messages before it saw our close frame, and
 * they are published, as on any other day, until its own close frame arrives. */
static bool is_sent_before_our_close_reached_it(const wsg_conn_t *conn)
{
    return conn->state == WSG_CONN_CLOSING && !conn->peer_closed && conn->opened_ms != 0 &&
           conn->close_code == WSG_CLOSE_GOING_AWAY;
}

static void on_ws_message(void *arg, bool is_text, const uint8_t *data, size_t len)
{
    wsg_conn_t *conn = arg;
    if (conn->state != WSG_CONN_OPEN && !is_sent_before_our_close_reached_it(conn))
        return; /* a close is final: not published, logged or counted */
    wsg_publisher_t p = publisher_of(conn);
    uint32_t before = conn->pub.pending;
    const char *reason = NULL;
    uint16_t code = wsg_publish_message(&p, data, len, &reason);
    for (uint32_t i = before; i < conn->pub.pending; i++)
        conn_ref(conn); /* each command's completion holds the connection */
    if (code != 0)
        wsg_conn_close(conn, code, reason);
    conn_update_reading(conn);
}

static void on_ws_ping(void *arg, const uint8_t *data, size_t len)
{
    wsg_conn_t *conn = arg;
    if (conn->state == WSG_CONN_OPEN)
        wsg_outq_pong(&conn->out, data, len);
}

static void on_ws_pong(void *arg, const uint8_t *data, size_t len) {}

static void on_ws_close(void *arg, uint16_t code, const uint8_t *reason, size_t reason_len)
{
    wsg_conn_t *conn = arg;
    conn->peer_closed = true;
    conn->peer_close_code = code;
    if (conn->state == WSG_CONN_OPEN) {
        uint16_t reply = code == WSG_CLOSE_NO_STATUS ? WSG_CLOSE_NORMAL : code;
        conn_begin_closing(conn, reply, "closed by the client");
        if (conn->pub.pending > 0) {
            /* The client must find what it sent in Redis once its close is answered. */
            conn->close_reply_deferred = true;
        } else {
            wsg_outq_close(&conn->out, reply, NULL);
            conn_close_after_flush(conn);
        }
    } else if (conn->state == WSG_CONN_CLOSING && !conn->close_reply_deferred) {
        conn_close_after_flush(conn); /* our close went first; the handshake is complete */
    }
}

static const wsg_ws_reader_handler_t reader_handler = {
    .on_message = on_ws_message,
    .on_ping = on_ws_ping,
    .on_pong = on_ws_pong,
    .on_close = on_ws_close,
};

static const char *close_reason_text(uint16_t code)
{
    switch (code) {
    case WSG_CLOSE_PROTOCOL_ERROR:
        return "protocol error";
    case WSG_CLOSE_INVALID_PAYLOAD:
        return "invalid UTF-8";
    case WSG_CLOSE_TOO_BIG:
        return "message too big";
    case WSG_CLOSE_TRY_AGAIN_LATER:
        return "try again later";
    default:
        return "internal error";
    }
}

void conn_feed_frames(wsg_conn_t *conn, const uint8_t *data, size_t len)
{
    uint16_t code = 0;
    int rc = wsg_ws_reader_feed(&conn->reader, data, len, conn->ctx->cfg->max_payload, &reader_handler, conn,
                                &code);
    if (rc < 0) {
        WSG_INFO("frame_error", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_UINT("code", code),
                 WSG_F_STR("why", close_reason_text(code)));
        if (conn->state == WSG_CONN_OPEN) {
            /* RFC 6455 7.1.7: after a protocol failure the connection is failed, not negotiated: send the
             * close frame and drop the socket without waiting for the peer's close. */
            wsg_conn_close(conn, code, close_reason_text(code));
            conn_close_after_flush(conn);
        } else {
            wsg_conn_abort(conn, "protocol error after close"); /* our close frame already went out */
        }
    }
}
