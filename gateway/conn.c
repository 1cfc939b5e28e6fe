/* Client connections: the HTTP upgrade, inbound frames, outbound queue, closing handshake and teardown. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access.h"
#include "auth_client.h"
#include "channel.h"
#include "handshake.h"
#include "http_request.h"
#include "log.h"
#include "static_files.h"
#include "stats.h"
#include "url.h"
#include "worker.h"

/* Past this many PUBLISH commands awaiting Redis, stop reading from the client until half are done: a
 * client cannot make the gateway buffer without bound. */
#define MAX_PUBLISHES_IN_FLIGHT 1024
/* Own publications remembered for the echo filter; older ones are forgotten first. */
#define MAX_OWN_PUBS 4096

typedef struct get_ctx {
    wsg_conn_t *conn;
    uint8_t index;
} get_ctx_t;

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void feed_frames(wsg_conn_t *conn, const uint8_t *data, size_t len);

static wsg_conn_t *conn_of(uv_handle_t *handle)
{
    return (wsg_conn_t *)handle; /* tcp is the first member */
}

static uint64_t now_ms(const wsg_conn_t *conn)
{
    return uv_now(&conn->worker->loop);
}

static const char *peer_name(wsg_conn_t *conn, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    out[0] = '\0';
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) != 0)
        return "unknown";
    char ip[64] = "";
    int port = 0;
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        port = ntohs(a->sin6_port);
        snprintf(out, cap, "[%s]:%d", ip, port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%d", ip, port);
    }
    return out;
}

/* "sub1,sub2" / "pub1" lists of channel names for the logs. */
static const char *channel_list(char *out, size_t cap, wsg_channel_t **chans, const wsg_member_t *members,
                                uint8_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint8_t i = 0; i < n && used + 4 < cap; i++) {
        const wsg_channel_t *ch = members ? members[i].channel : chans[i];
        int w = snprintf(out + used, cap - used, "%s%s", i ? "," : "", ch->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    if (used >= cap)
        strcpy(out + cap - 4, "...");
    return n ? out : "-";
}

static void move_to(wsg_conn_t *conn, wsg_conn_state_t state)
{
    wsg_worker_t *w = conn->worker;
    wsg_conn_list_t *lists[] = {&w->handshaking, &w->open, &w->closing, NULL};
    if (lists[conn->state] != NULL)
        wsg_conn_list_remove(lists[conn->state], conn);
    conn->state = (uint8_t)state;
    conn->since_ms = now_ms(conn);
    if (lists[state] != NULL)
        wsg_conn_list_push(lists[state], conn);
}

static void conn_ref(wsg_conn_t *conn)
{
    conn->refcount++;
}

static void conn_unref(wsg_conn_t *conn)
{
    if (--conn->refcount > 0)
        return;
    wsg_worker_t *w = conn->worker;
    wsg_outq_dispose(&conn->out);
    free(conn->own);
    if (conn->has_slot)
        wsg_connection_slot_give();
    free(conn);
    wsg_worker_on_conn_freed(w);
}

static void on_closed(uv_handle_t *handle)
{
    conn_unref(conn_of(handle));
}

static void drop_held(wsg_conn_t *conn)
{
    for (uint32_t i = 0; i < conn->held_count; i++)
        wsg_msg_unref(conn->held[i]);
    free(conn->held);
    conn->held = NULL;
    conn->held_count = conn->held_cap = 0;
}

/* Logs the end of a connection once, while its channels are still known. */
static void log_close(wsg_conn_t *conn, const char *why)
{
    if (conn->is_close_logged)
        return;
    conn->is_close_logged = true;
    if (conn->opened_ms == 0) {
        WSG_DEBUG("conn_drop", "conn=%llu phase=handshake why=\"%s\"", (unsigned long long)conn->id, why);
        return;
    }
    char peer[80], subs[512], pubs[512];
    WSG_INFO("conn_close",
             "conn=%llu peer=%s channels=%s publish=%s code=%u peer_code=%u duration_ms=%llu why=\"%s\"",
             (unsigned long long)conn->id, peer_name(conn, peer, sizeof peer),
             channel_list(subs, sizeof subs, NULL, conn->subs, conn->nsubs),
             channel_list(pubs, sizeof pubs, conn->pubs, NULL, conn->npubs), conn->close_code,
             conn->peer_close_code, (unsigned long long)(now_ms(conn) - conn->opened_ms), why);
}

/* Stops deliveries to the connection: no data frame may follow our close frame. Its publish targets stay:
 * what the client sends until its own close frame arrives is still published. Safe to repeat. */
static void stop_deliveries(wsg_conn_t *conn)
{
    wsg_router_unsubscribe(&conn->worker->router, conn);
    drop_held(conn);
    conn->own_count = 0;
}

/* Everything that stops a connection taking part in routing; safe to repeat. */
static void leave_routing(wsg_conn_t *conn)
{
    stop_deliveries(conn);
    wsg_router_leave(&conn->worker->router, conn);
}

void wsg_conn_abort(wsg_conn_t *conn, const char *why)
{
    if (conn->state == WSG_CONN_CLOSED)
        return;
    if (conn->close_code == 0)
        conn->close_code = WSG_CLOSE_ABNORMAL;
    if (conn->is_close_logged)
        WSG_DEBUG("conn_drop", "conn=%llu why=\"%s\"", (unsigned long long)conn->id, why);
    log_close(conn, why);
    leave_routing(conn);
    free(conn->http);
    conn->http = NULL;
    if (conn->auth != NULL) {
        wsg_auth_request_cancel(conn->auth);
        conn->auth = NULL;
    }
    wsg_ws_reader_dispose(&conn->reader);
    move_to(conn, WSG_CONN_CLOSED);
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

void wsg_conn_send(wsg_conn_t *conn, wsg_msg_t *msg)
{
    if (conn->state != WSG_CONN_OPEN || conn->is_slow)
        return;
    if (conn->out.bytes + msg->frame_len > conn->worker->cfg->max_pending) {
        wsg_worker_t *w = conn->worker;
        if (w->cfg->is_slow_drop) {
            /* Whole messages only: the stream stays well-formed, and control frames never come this way. */
            WSG_STAT_ADD(&w->stats, slow_consumer_drops, msg->nmsgs);
            if (wsg_log_limit_allow(&w->slow_log_limit, uv_now(&w->loop), 5000))
                WSG_WARN("slow_consumer_drop", "conn=%llu pending_bytes=%zu", (unsigned long long)conn->id,
                         conn->out.bytes);
            return;
        }
        conn->is_slow = true; /* closed at the flush: never while a channel's member list is being walked */
        wsg_worker_schedule_flush(conn->worker, conn);
        return;
    }
    if (wsg_outq_push(&conn->out, msg) < 0) {
        conn->is_slow = true;
        wsg_worker_schedule_flush(conn->worker, conn);
        return;
    }
    WSG_STAT_ADD(&conn->worker->stats, deliveries, msg->nmsgs);
    wsg_worker_schedule_flush(conn->worker, conn);
}

/* Queues a frame regardless of state (close frames, HTTP responses). */
static void push_private(wsg_conn_t *conn, wsg_msg_t *msg)
{
    if (msg == NULL || wsg_outq_push(&conn->out, msg) < 0) {
        wsg_msg_unref(msg);
        wsg_conn_abort(conn, "out of memory");
        return;
    }
    wsg_msg_unref(msg);
    wsg_worker_schedule_flush(conn->worker, conn);
}

/* True when `msg` is this connection's own publication coming back (and forgets it). */
static bool is_own_echo(wsg_conn_t *conn, const wsg_channel_t *channel, wsg_msg_t *msg)
{
    for (uint16_t i = 0; i < conn->own_count; i++) {
        wsg_own_pub_t *p = &conn->own[(conn->own_head + i) % conn->own_cap];
        if (p->channel != channel)
            continue;
        /* Redis delivers one channel's messages in publish order: only the oldest entry can match. */
        if (p->len != msg->payload_len || p->hash != msg->hash)
            return false;
        for (uint16_t j = i; j > 0; j--) /* remove entry i, keeping order */
            conn->own[(conn->own_head + j) % conn->own_cap] = conn->own[(conn->own_head + j - 1) % conn->own_cap];
        conn->own_head = (uint16_t)((conn->own_head + 1) % conn->own_cap);
        conn->own_count--;
        return true;
    }
    return false;
}

static void remember_own(wsg_conn_t *conn, const wsg_channel_t *channel, const uint8_t *data, size_t len)
{
    if (conn->own_count == conn->own_cap) {
        if (conn->own_cap >= MAX_OWN_PUBS) {
            conn->own_head = (uint16_t)((conn->own_head + 1) % conn->own_cap); /* forget the oldest */
            conn->own_count--;
        } else {
            uint16_t cap = conn->own_cap ? (uint16_t)(conn->own_cap * 2) : 8;
            wsg_own_pub_t *own = malloc(cap * sizeof(*own));
            if (own == NULL)
                return; /* the echo will reach the client: harmless */
            for (uint16_t i = 0; i < conn->own_count; i++)
                own[i] = conn->own[(conn->own_head + i) % conn->own_cap];
            free(conn->own);
            conn->own = own;
            conn->own_cap = cap;
            conn->own_head = 0;
        }
    }
    wsg_own_pub_t *p = &conn->own[(conn->own_head + conn->own_count) % conn->own_cap];
    p->channel = channel;
    p->len = len;
    p->hash = wsg_hash_bytes(data, len);
    conn->own_count++;
}

void wsg_conn_forget_own_publications(wsg_conn_t *conn)
{
    conn->own_count = 0;
}

static void hold(wsg_conn_t *conn, wsg_msg_t *msg)
{
    if (conn->held_count == conn->held_cap) {
        uint32_t cap = conn->held_cap ? conn->held_cap * 2 : 8;
        wsg_msg_t **held = realloc(conn->held, cap * sizeof(*held));
        if (held == NULL) {
            conn->is_slow = true;
            wsg_worker_schedule_flush(conn->worker, conn);
            return;
        }
        conn->held = held;
        conn->held_cap = cap;
    }
    conn->held[conn->held_count++] = wsg_msg_ref(msg);
}

void wsg_conn_deliver(wsg_conn_t *conn, const wsg_member_t *member, wsg_msg_t *msg)
{
    if (conn->state != WSG_CONN_OPEN)
        return;
    if (!conn->is_echo && conn->own_count > 0 && is_own_echo(conn, member->channel, msg))
        return;
    if (conn->gets_pending > 0)
        hold(conn, msg);
    else
        wsg_conn_send(conn, msg);
}

void wsg_conn_deliver_run(wsg_conn_t *conn, const wsg_member_t *member, wsg_msg_t *batch, wsg_msg_t *const *msgs,
                          uint32_t n)
{
    if (conn->state != WSG_CONN_OPEN)
        return;
    if (batch != NULL && conn->gets_pending == 0 && (conn->is_echo || conn->own_count == 0)) {
        wsg_conn_send(conn, batch);
        return;
    }
    for (uint32_t i = 0; i < n; i++)
        wsg_conn_deliver(conn, member, msgs[i]);
}

static void release_held(wsg_conn_t *conn)
{
    for (uint32_t i = 0; i < conn->held_count; i++) {
        wsg_conn_send(conn, conn->held[i]);
        wsg_msg_unref(conn->held[i]);
    }
    free(conn->held);
    conn->held = NULL;
    conn->held_count = conn->held_cap = 0;
}

/* True when a live message of `channel` with this payload is already held: then the stored value is that
 * very message, and sending both would duplicate it. */
static bool is_held(const wsg_conn_t *conn, const wsg_channel_t *channel, const char *value, size_t len)
{
    for (uint32_t i = 0; i < conn->held_count; i++) {
        const wsg_msg_t *m = conn->held[i];
        if (m->channel_len == channel->name_len && memcmp(m->channel, channel->name, channel->name_len) == 0 &&
            m->payload_len == len && memcmp(m->storage + WSG_MSG_HEADROOM, value, len) == 0)
            return true;
    }
    return false;
}

static void get_finished(wsg_conn_t *conn)
{
    if (conn->gets_pending > 0 && --conn->gets_pending == 0)
        release_held(conn);
}

void wsg_conn_persisted_ready(wsg_conn_t *conn, uint8_t index, wsg_msg_t *value)
{
    if (conn->state != WSG_CONN_OPEN)
        return;
    const wsg_channel_t *ch = conn->subs[index].channel;
    if (value != NULL && value->payload_len > 0 &&
        !is_held(conn, ch, (const char *)wsg_msg_payload(value), value->payload_len)) {
        wsg_msg_frame_data(value);
        wsg_conn_send(conn, value);
    }
    get_finished(conn);
}

static void on_get_done(void *arg, int status, const char *value, size_t len)
{
    get_ctx_t *ctx = arg;
    wsg_conn_t *conn = ctx->conn;
    uint8_t index = ctx->index;
    free(ctx);
    if (conn->state == WSG_CONN_OPEN && index < conn->nsubs) {
        wsg_msg_t *msg = NULL;
        if (status < 0)
            WSG_WARN("persisted_get_failed", "conn=%llu channel=%s err=%d", (unsigned long long)conn->id,
                     conn->subs[index].channel->name, status);
        else if (value != NULL && len > 0)
            msg = wsg_msg_new(value, len, NULL, 0); /* NULL when out of memory: sent without it */
        wsg_router_on_persisted(&conn->worker->router, conn, index, msg);
        wsg_msg_unref(msg);
    }
    conn_unref(conn);
}

void wsg_conn_fetch_persisted(wsg_conn_t *conn, uint8_t index)
{
    const wsg_channel_t *ch = conn->subs[index].channel;
    get_ctx_t *ctx = malloc(sizeof(*ctx));
    int rc = -ENOMEM;
    if (ctx != NULL) {
        ctx->conn = conn;
        ctx->index = index;
        rc = wsg_redis_cmd_get(conn->worker->cmd, ch->name, ch->name_len, on_get_done, ctx);
    }
    if (rc < 0) {
        free(ctx);
        WSG_WARN("persisted_get_failed", "conn=%llu channel=%s err=%d", (unsigned long long)conn->id, ch->name,
                 rc);
        get_finished(conn);
        return;
    }
    conn_ref(conn);
}

/* ---- closing ------------------------------------------------------------------------------------ */

/* Leaves routing (no data frame may follow a close frame) and logs the close with the code we send. */
static void begin_closing(wsg_conn_t *conn, uint16_t code, const char *why)
{
    conn->close_code = code;
    log_close(conn, why);
    stop_deliveries(conn);
    move_to(conn, WSG_CONN_CLOSING);
}

static void queue_close_frame(wsg_conn_t *conn, const char *reason)
{
    push_private(conn, wsg_msg_new_close(conn->close_code, reason));
}

void wsg_conn_close(wsg_conn_t *conn, uint16_t code, const char *reason)
{
    if (conn->state != WSG_CONN_OPEN)
        return;
    begin_closing(conn, code, reason);
    queue_close_frame(conn, reason);
    if (conn->peer_closed)
        conn->close_after_flush = true;
}

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

/* ---- inbound frames ------------------------------------------------------------------------------ */

static void update_reading(wsg_conn_t *conn);

static void on_publish_done(void *arg, int status, const char *err)
{
    wsg_conn_t *conn = arg;
    wsg_worker_t *w = conn->worker;
    conn->publishes_pending--;
    if (status < 0) {
        WSG_STAT_ADD(&w->stats, publishes_failed, 1);
        if (wsg_log_limit_allow(&w->publish_log_limit, uv_now(&w->loop), 5000))
            WSG_WARN("publish_failed", "conn=%llu err=%d redis_error=\"%s\"", (unsigned long long)conn->id,
                     status, err ? err : "");
        /* The message may never come back through the subscription. */
        wsg_conn_forget_own_publications(conn);
    }
    if (conn->state != WSG_CONN_CLOSED) {
        if (conn->close_reply_deferred && conn->publishes_pending == 0) {
            conn->close_reply_deferred = false;
            queue_close_frame(conn, NULL);
            conn->close_after_flush = true;
        }
        update_reading(conn);
    }
    conn_unref(conn);
}

static void publish(wsg_conn_t *conn, wsg_channel_t *ch, const uint8_t *data, size_t len)
{
    wsg_worker_t *w = conn->worker;
    int rc = wsg_redis_cmd_publish(w->cmd, ch->name, ch->name_len, data, len, (uint32_t)w->cfg->expire_s,
                                   on_publish_done, conn);
    if (rc < 0) {
        WSG_STAT_ADD(&w->stats, publishes_failed, 1);
        WSG_WARN("publish_refused", "conn=%llu channel=%s err=%d", (unsigned long long)conn->id, ch->name, rc);
        wsg_conn_close(conn, rc == -ENOBUFS ? WSG_CLOSE_TRY_AGAIN_LATER : WSG_CLOSE_INTERNAL_ERROR,
                       rc == -ENOBUFS ? "try again later" : "internal error");
        return;
    }
    conn_ref(conn);
    conn->publishes_pending++;
    if (!conn->is_echo && wsg_channel_is_live(ch)) {
        for (uint8_t i = 0; i < conn->nsubs; i++)
            if (conn->subs[i].channel == ch)
                remember_own(conn, ch, data, len);
    }
}

/* Token bucket: `publish_rate` messages per second, up to `publish_burst` at once. */
static bool take_publish_token(wsg_conn_t *conn)
{
    const wsg_config_t *cfg = conn->worker->cfg;
    if (cfg->publish_rate == 0)
        return true;
    uint64_t now = now_ms(conn);
    uint64_t cap = cfg->publish_burst * 1000;
    uint64_t tokens = conn->publish_tokens_milli + (now - conn->publish_refill_ms) * cfg->publish_rate;
    conn->publish_refill_ms = now;
    if (tokens > cap)
        tokens = cap;
    if (tokens < 1000) {
        conn->publish_tokens_milli = (uint32_t)tokens;
        return false;
    }
    conn->publish_tokens_milli = (uint32_t)(tokens - 1000);
    return true;
}

static void on_ws_message(void *arg, bool is_text, const uint8_t *data, size_t len)
{
    wsg_conn_t *conn = arg;
    wsg_worker_t *w = conn->worker;
    /* After our close frame the client may still send until it sees it: those messages are published too. */
    if (conn->state != WSG_CONN_OPEN && !(conn->state == WSG_CONN_CLOSING && !conn->peer_closed))
        return;
    WSG_STAT_ADD(&w->stats, messages_from_clients, 1);
    switch (wsg_heartbeat_classify(&w->heartbeat_rules, data, len)) {
    case WSG_INBOUND_DATA:
        break;
    case WSG_INBOUND_JSON_PING: {
        wsg_msg_t *pong = wsg_msg_new(WSG_HEARTBEAT_JSON_PONG, sizeof WSG_HEARTBEAT_JSON_PONG - 1, NULL, 0);
        if (pong != NULL) {
            wsg_msg_frame_data(pong);
            wsg_conn_send(conn, pong);
            wsg_msg_unref(pong);
        }
        return;
    }
    default:
        return; /* heartbeats (ws4redis's string, JSON heartbeat_response) are never published nor stored */
    }
    if (conn->npubs > 0 && !take_publish_token(conn)) {
        WSG_WARN("publish_rate_exceeded", "conn=%llu rate=%llu burst=%llu", (unsigned long long)conn->id,
                 (unsigned long long)w->cfg->publish_rate, (unsigned long long)w->cfg->publish_burst);
        WSG_STAT_ADD(&w->stats, rate_limit_closes, 1);
        wsg_conn_close(conn, WSG_CLOSE_POLICY, "publish rate exceeded");
        return;
    }
    if (conn->npubs == 0) {
        WSG_DEBUG("message_ignored", "conn=%llu len=%zu why=\"no publish channel\"", (unsigned long long)conn->id,
                  len);
        return;
    }
    for (uint8_t i = 0; i < conn->npubs && conn->state != WSG_CONN_CLOSED; i++)
        publish(conn, conn->pubs[i], data, len);
    update_reading(conn);
}

static void on_ws_ping(void *arg, const uint8_t *data, size_t len)
{
    wsg_conn_t *conn = arg;
    if (conn->state == WSG_CONN_OPEN)
        push_private(conn, wsg_msg_new_control(WSG_OP_PONG, data, len));
}

static void on_ws_pong(void *arg, const uint8_t *data, size_t len)
{
}

static void on_ws_close(void *arg, uint16_t code, const uint8_t *reason, size_t reason_len)
{
    wsg_conn_t *conn = arg;
    conn->peer_closed = true;
    conn->peer_close_code = code;
    if (conn->state == WSG_CONN_OPEN) {
        uint16_t reply = code == WSG_CLOSE_NO_STATUS ? WSG_CLOSE_NORMAL : code;
        begin_closing(conn, reply, "closed by the client");
        if (conn->publishes_pending > 0) {
            /* The client must find what it sent in Redis once its close is answered. */
            conn->close_reply_deferred = true;
        } else {
            queue_close_frame(conn, NULL);
            conn->close_after_flush = true;
        }
    } else if (conn->state == WSG_CONN_CLOSING && !conn->close_reply_deferred) {
        conn->close_after_flush = true; /* our close went first; the handshake is complete */
        wsg_worker_schedule_flush(conn->worker, conn);
    }
}

static const wsg_ws_reader_handler_t reader_handler = {
    .on_message = on_ws_message,
    .on_ping = on_ws_ping,
    .on_pong = on_ws_pong,
    .on_close = on_ws_close,
};

static void feed_frames(wsg_conn_t *conn, const uint8_t *data, size_t len)
{
    uint16_t code = 0;
    int rc = wsg_ws_reader_feed(&conn->reader, data, len, conn->worker->cfg->max_payload, &reader_handler, conn,
                                &code);
    if (rc < 0) {
        WSG_INFO("frame_error", "conn=%llu code=%u why=\"%s\"", (unsigned long long)conn->id, code,
                 close_reason_text(code));
        if (conn->state == WSG_CONN_OPEN) {
            /* RFC 6455 7.1.7: after a protocol failure the connection is failed, not negotiated: send the close
             * frame and drop the socket without waiting for the peer's close. */
            wsg_conn_close(conn, code, close_reason_text(code));
            conn->close_after_flush = true;
        } else
            wsg_conn_abort(conn, "protocol error after close"); /* our close frame already went out */
    }
}

/* ---- handshake ----------------------------------------------------------------------------------- */

static void refuse(wsg_conn_t *conn, int status, const char *body, const char *extra_headers)
{
    char response[1024];
    wsg_worker_t *w = conn->worker;
    wsg_stats_count_refusal(&w->stats, status);
    char peer[80];
    WSG_INFO("handshake_refused", "conn=%llu peer=%s status=%d why=\"%s\"", (unsigned long long)conn->id,
             peer_name(conn, peer, sizeof peer), status, body);
    ssize_t n = wsg_http_write_response(response, sizeof response, status, extra_headers, wsg_str_c(body));
    free(conn->http);
    conn->http = NULL;
    move_to(conn, WSG_CONN_CLOSING);
    if (n < 0) {
        wsg_conn_abort(conn, "response too large");
        return;
    }
    conn->close_after_flush = true;
    push_private(conn, wsg_msg_new_raw(response, (size_t)n));
}

/* Answers a plain GET for an embedded file (the browser client, the demo page) and closes. */
static bool serve_static(wsg_conn_t *conn, wsg_str_t path)
{
    const char *name = NULL;
    if (wsg_str_eq(path, wsg_str_c("/wsgate.js")))
        name = "wsgate.js";
    else if (conn->worker->cfg->demo && wsg_str_eq(path, wsg_str_c("/")))
        name = "demo.html";
    if (name == NULL || !wsg_str_eq(conn->http->upgrade.method, wsg_str_c("GET")))
        return false;
    const wsg_static_file_t *f = wsg_static_files;
    while (f->name != NULL && strcmp(f->name, name) != 0)
        f++;
    if (f->name == NULL)
        return false;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-cache\r\n"
                     "Connection: close\r\n\r\n",
                     f->content_type, f->len);
    wsg_msg_t *msg = wsg_msg_new(NULL, (size_t)n + f->len, NULL, 0);
    if (msg != NULL) {
        memcpy(wsg_msg_payload(msg), head, (size_t)n);
        memcpy(wsg_msg_payload(msg) + n, f->data, f->len);
        msg->frame = wsg_msg_payload(msg);
        msg->frame_len = (size_t)n + f->len;
    }
    WSG_DEBUG("static_file", "conn=%llu file=%s", (unsigned long long)conn->id, name);
    free(conn->http);
    conn->http = NULL;
    move_to(conn, WSG_CONN_CLOSING);
    conn->close_after_flush = true;
    push_private(conn, msg);
    return true;
}


static void complete_upgrade(wsg_conn_t *conn, wsg_str_t facility, const wsg_token_claims_t *identity);

/* The authorization callback answered (or failed): admit with its identity, pass on its refusal, or fail
 * closed with 503. */
static void on_authorized(void *arg, int status, const char *body, size_t len)
{
    wsg_conn_t *conn = arg;
    conn->auth = NULL;
    if (conn->state != WSG_CONN_HANDSHAKE)
        return;
    wsg_str_t path, query;
    wsg_url_split(conn->http->target, &path, &query);
    char facility[WSG_FACILITY_MAX];
    size_t facility_len = 0;
    wsg_url_facility(path, wsg_str_c(conn->worker->cfg->websocket_url), facility, &facility_len);
    if (status == 200) {
        wsg_token_claims_t *identity = malloc(sizeof(*identity));
        const char *why = "out of memory";
        if (identity == NULL ||
            wsg_token_claims_from_identity(body, len, conn->worker->cfg->max_groups, identity, &why) < 0) {
            WSG_WARN("auth_callback_invalid", "conn=%llu why=\"%s\"", (unsigned long long)conn->id, why);
            refuse(conn, 503, "authorization service answered an invalid identity", NULL);
        } else {
            complete_upgrade(conn, (wsg_str_t){facility, facility_len}, identity);
        }
        free(identity);
        return;
    }
    if (status == 401 || status == 403) {
        /* Passed on with the service's reason, cut and made printable. */
        char reason[201];
        size_t n = len < sizeof reason - 1 ? len : sizeof reason - 1;
        for (size_t i = 0; i < n; i++)
            reason[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
        reason[n] = '\0';
        refuse(conn, status, n > 0 ? reason : "refused by the authorization service", NULL);
        return;
    }
    WSG_WARN("auth_callback_failed", "conn=%llu status=%d", (unsigned long long)conn->id, status);
    refuse(conn, 503, "authorization service unavailable", NULL);
}

static void ask_authorization(wsg_conn_t *conn, wsg_str_t facility)
{
    const wsg_config_t *cfg = conn->worker->cfg;
    if (!wsg_access_origin_allowed(cfg, conn->http)) {
        refuse(conn, 403, "Origin not allowed", NULL);
        return;
    }
    char peer[80], ip[64];
    peer_name(conn, peer, sizeof peer);
    /* peer is "a.b.c.d:port" or "[v6]:port": keep the address */
    const char *colon = strrchr(peer, ':');
    size_t ip_len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (peer[0] == '[' && ip_len >= 2) {
        memcpy(ip, peer + 1, ip_len - 2);
        ip[ip_len - 2] = '\0';
    } else {
        snprintf(ip, sizeof ip, "%.*s", (int)ip_len, peer);
    }
    char *request = malloc(WSG_HTTP_HEAD_MAX + 2048);
    ssize_t n = request ? wsg_access_callback_request(cfg, conn->http, facility, ip, request, WSG_HTTP_HEAD_MAX + 2048)
                        : -ENOMEM;
    if (n > 0)
        conn->auth = wsg_auth_request_start(&conn->worker->loop, (const struct sockaddr *)&cfg->auth_addr,
                                            cfg->auth_timeout_ms, request, (size_t)n, on_authorized, conn);
    free(request);
    if (conn->auth == NULL) {
        refuse(conn, 503, "authorization service unavailable", NULL);
        return;
    }
    /* Nothing more is read until the answer: a client may not send frames before the 101. */
    if (conn->is_reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->is_reading = false;
    }
}

static void upgrade(wsg_conn_t *conn)
{
    wsg_worker_t *w = conn->worker;
    const wsg_config_t *cfg = w->cfg;
    wsg_http_request_t *http = conn->http;
    wsg_str_t path, query;
    wsg_url_split(http->target, &path, &query);

    char facility[WSG_FACILITY_MAX];
    size_t facility_len = 0;
    int rc = wsg_url_facility(path, wsg_str_c(cfg->websocket_url), facility, &facility_len);
    if (rc == -ENOENT) {
        if (!serve_static(conn, path))
            refuse(conn, 404, "Not Found", NULL);
        return;
    }
    wsg_handshake_verdict_t verdict = wsg_handshake_check(&http->upgrade);
    if (verdict.status != 0) {
        refuse(conn, verdict.status, verdict.body, NULL);
        return;
    }
    if (rc < 0) {
        refuse(conn, 400, rc == -E2BIG ? "Facility name is too long (at most 256 bytes)"
                                       : "Facility name must be UTF-8 without control characters",
               NULL);
        return;
    }
    if (cfg->auth_url[0] != '\0') {
        ask_authorization(conn, (wsg_str_t){facility, facility_len});
        return;
    }
    complete_upgrade(conn, (wsg_str_t){facility, facility_len}, NULL);
}

/* The second half of the upgrade, once the identity is known (`identity` NULL: from a token or nobody). */
static void complete_upgrade(wsg_conn_t *conn, wsg_str_t facility_view, const wsg_token_claims_t *identity)
{
    wsg_worker_t *w = conn->worker;
    const wsg_config_t *cfg = w->cfg;
    wsg_http_request_t *http = conn->http;
    char facility[WSG_FACILITY_MAX];
    size_t facility_len = facility_view.len;
    memcpy(facility, facility_view.ptr, facility_len);
    wsg_access_t access;
    const char *why = NULL;
    int status = identity != NULL
                     ? wsg_access_decide_for(cfg, http, facility_view, identity, &access, &why)
                     : wsg_access_decide(cfg, http, facility_view, (int64_t)time(NULL), &access, &why);
    if (status != 0) {
        refuse(conn, status, why, NULL);
        return;
    }

    char accept[WSG_ACCEPT_KEY_LEN + 1];
    wsg_handshake_accept_key(http->upgrade.ws_key, accept);
    char response[512];
    ssize_t n = wsg_handshake_write_101(response, sizeof response, accept,
                                        wsg_handshake_pick_subprotocol(http->upgrade.ws_protocol));
    if (n < 0) {
        wsg_access_dispose(&access);
        refuse(conn, 400, "Subprotocol name is too long", NULL);
        return;
    }
    push_private(conn, wsg_msg_new_raw(response, (size_t)n));
    if (conn->state == WSG_CONN_CLOSED) {
        wsg_access_dispose(&access);
        return;
    }
    move_to(conn, WSG_CONN_OPEN);
    conn->opened_ms = conn->since_ms;
    conn->is_echo = access.is_echo;
    conn->publish_tokens_milli = (uint32_t)(cfg->publish_burst * 1000 > UINT32_MAX ? UINT32_MAX
                                                                                  : cfg->publish_burst * 1000);
    conn->publish_refill_ms = conn->opened_ms;
    int joined = wsg_router_join(&w->router, conn, access.subs, access.nsubs, access.pubs, access.npubs);
    wsg_access_dispose(&access);
    if (joined < 0) {
        wsg_conn_close(conn, WSG_CLOSE_INTERNAL_ERROR, "internal error");
        return;
    }
    char peer[80], subs_text[512], pubs_text[512], fac[300];
    WSG_INFO("conn_open", "conn=%llu peer=%s user=%s facility=%s channels=%s publish=%s echo=%d",
             (unsigned long long)conn->id, peer_name(conn, peer, sizeof peer), access.user[0] ? access.user : "-",
             wsg_log_quote(fac, sizeof fac, facility, facility_len),
             channel_list(subs_text, sizeof subs_text, NULL, conn->subs, conn->nsubs),
             channel_list(pubs_text, sizeof pubs_text, conn->pubs, NULL, conn->npubs), conn->is_echo);

    /* A client may pipeline frames right behind its request. */
    size_t extra = http->len - http->head_len;
    uint8_t early[WSG_HTTP_HEAD_MAX];
    if (extra > 0)
        memcpy(early, http->buf + http->head_len, extra);
    free(conn->http);
    conn->http = NULL;
    if (extra > 0)
        feed_frames(conn, early, extra);
    if (conn->state != WSG_CONN_CLOSED)
        update_reading(conn); /* reading was paused while the authorization callback ran */
}

static void handle_handshake_bytes(wsg_conn_t *conn, const uint8_t *data, size_t len)
{
    int rc = wsg_http_request_feed(conn->http, data, len);
    if (rc == 0)
        return;
    if (rc == -E2BIG)
        refuse(conn, 431, "Request header fields too large", NULL);
    else if (rc < 0)
        refuse(conn, 400, "Malformed HTTP request", NULL);
    else
        upgrade(conn);
}

/* ---- socket I/O --------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    wsg_conn_t *conn = conn_of(handle);
    buf->base = (char *)conn->worker->read_buf;
    buf->len = sizeof conn->worker->read_buf;
}

static void update_reading(wsg_conn_t *conn)
{
    bool want = conn->state != WSG_CONN_CLOSED &&
                (conn->publishes_pending < MAX_PUBLISHES_IN_FLIGHT / 2 ||
                 (conn->is_reading && conn->publishes_pending < MAX_PUBLISHES_IN_FLIGHT));
    if (want && !conn->is_reading) {
        if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0)
            conn->is_reading = true;
    } else if (!want && conn->is_reading) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        conn->is_reading = false;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    wsg_conn_t *conn = conn_of((uv_handle_t *)stream);
    if (nread == 0)
        return;
    if (nread < 0) {
        wsg_conn_abort(conn, nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
        return;
    }
    const uint8_t *data = (const uint8_t *)buf->base;
    WSG_STAT_ADD(&conn->worker->stats, bytes_received, nread);
    if (conn->is_lingering)
        return; /* draining until the peer closes */
    switch (conn->state) {
    case WSG_CONN_HANDSHAKE:
        handle_handshake_bytes(conn, data, (size_t)nread);
        break;
    case WSG_CONN_OPEN:
        wsg_worker_touch(conn->worker, conn); /* any input, PONG included, proves the peer alive */
        feed_frames(conn, data, (size_t)nread);
        break;
    case WSG_CONN_CLOSING:
        if (conn->opened_ms != 0)
            feed_frames(conn, data, (size_t)nread);
        break;
    default:
        break;
    }
}

static void on_write_done(uv_write_t *req, int status)
{
    wsg_conn_t *conn = req->data;
    wsg_outq_write_done(&conn->out, status < 0 ? NULL : &conn->worker->stats);
    if (conn->state == WSG_CONN_CLOSED)
        return;
    if (status < 0) {
        wsg_conn_abort(conn, uv_strerror(status));
        return;
    }
    wsg_worker_schedule_flush(conn->worker, conn);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    free(req);
}

/* Our side is done: send FIN and wait for the peer's, so that it reads everything before the socket goes
 * (closing with unread input would reset the connection and could discard our last bytes). */
static void start_lingering(wsg_conn_t *conn)
{
    conn->close_after_flush = false;
    conn->is_lingering = true;
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&conn->tcp, on_shutdown) < 0) {
        free(req);
        wsg_conn_abort(conn, "shutdown failed");
        return;
    }
    if (!conn->is_reading && uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) == 0)
        conn->is_reading = true;
}

void wsg_conn_flush(wsg_conn_t *conn)
{
    conn->is_flush_queued = false;
    if (conn->state == WSG_CONN_CLOSED)
        return;
    if (conn->is_slow && conn->state == WSG_CONN_OPEN) {
        wsg_worker_t *w = conn->worker;
        uint32_t dropped = wsg_outq_drop_unsent(&conn->out);
        WSG_STAT_ADD(&w->stats, slow_consumer_closes, 1);
        WSG_STAT_ADD(&w->stats, slow_consumer_drops, dropped);
        WSG_WARN("slow_consumer", "conn=%llu pending_bytes=%zu dropped_messages=%u", (unsigned long long)conn->id,
                 conn->out.bytes, dropped);
        conn->is_slow = false;
        wsg_conn_close(conn, WSG_CLOSE_POLICY, "slow consumer");
        if (conn->state == WSG_CONN_CLOSED)
            return;
    }
    int rc = wsg_outq_flush(&conn->out, (uv_stream_t *)&conn->tcp, &conn->write_req, on_write_done,
                            &conn->worker->stats);
    if (rc < 0) {
        wsg_conn_abort(conn, uv_strerror(rc));
        return;
    }
    if (rc == 0 && conn->out.count == 0 && conn->close_after_flush && !conn->is_lingering)
        start_lingering(conn);
}

int wsg_conn_accept_fd(wsg_worker_t *worker, int fd)
{
    wsg_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        close(fd);
        return UV_ENOMEM;
    }
    conn->worker = worker;
    conn->refcount = 1;
    conn->write_req.data = conn;
    uv_tcp_init(&worker->loop, &conn->tcp);
    int rc = uv_tcp_open(&conn->tcp, fd);
    if (rc < 0) {
        close(fd);
        conn->state = WSG_CONN_CLOSED;
        uv_close((uv_handle_t *)&conn->tcp, on_closed);
        return rc;
    }
    conn->http = malloc(sizeof(*conn->http));
    if (conn->http == NULL) {
        conn->state = WSG_CONN_CLOSED;
        uv_close((uv_handle_t *)&conn->tcp, on_closed);
        return UV_ENOMEM;
    }
    wsg_http_request_init(conn->http);
    wsg_ws_reader_init(&conn->reader);
    uv_tcp_nodelay(&conn->tcp, 1);
    conn->id = wsg_next_conn_id();
    conn->state = WSG_CONN_CLOSED; /* not in any list yet */
    move_to(conn, WSG_CONN_HANDSHAKE);
    WSG_STAT_ADD(&worker->stats, connections_total, 1);
    update_reading(conn);
    conn->has_slot = wsg_connection_slot_take(worker->cfg->max_connections);
    if (!conn->has_slot) {
        /* Answered before the request is read: the lingering close lets the client read it. */
        WSG_STAT_ADD(&worker->stats, connections_refused_limit, 1);
        refuse(conn, 503, "connection limit reached", "Retry-After: 5\r\n");
    }
    return 0;
}
