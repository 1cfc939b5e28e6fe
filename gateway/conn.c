/* Client connections: lifecycle and lists, the closing handshake and teardown, and what the connection does
 * with its output's verdicts. What the client sends is handled in conn_frames.c. */
#include "conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth_client.h"
#include "channel.h"
#include "conn_internal.h"
#include "log.h"
#include "url.h"

static _Atomic uint64_t conn_ids;
static _Atomic uint64_t live_connections;

static wsg_conn_t *conn_of_out(wsg_outq_t *q)
{
    return (wsg_conn_t *)((char *)q - offsetof(wsg_conn_t, out));
}

static uint64_t now_ms(const wsg_conn_t *conn)
{
    return uv_now(conn->ctx->loop);
}

/* Takes one of the process-wide connection slots (`max` 0 = unlimited); false when all are taken. */
static bool take_slot(uint64_t max)
{
    uint64_t before = atomic_fetch_add_explicit(&live_connections, 1, memory_order_relaxed);
    if (max == 0 || before < max)
        return true;
    atomic_fetch_sub_explicit(&live_connections, 1, memory_order_relaxed);
    return false;
}

static void give_slot(void)
{
    atomic_fetch_sub_explicit(&live_connections, 1, memory_order_relaxed);
}

/* ---- lists ------------------------------------------------------------------------------------------ */

static void list_push(wsg_conn_list_t *list, wsg_conn_t *conn)
{
    conn->next = NULL;
    conn->prev = list->tail;
    if (list->tail != NULL)
        list->tail->next = conn;
    else
        list->head = conn;
    list->tail = conn;
    list->count++;
}

static void list_remove(wsg_conn_list_t *list, wsg_conn_t *conn)
{
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        list->head = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    else
        list->tail = conn->prev;
    conn->prev = conn->next = NULL;
    list->count--;
}

static wsg_conn_list_t *list_of(wsg_ctx_t *ctx, uint8_t state)
{
    switch (state) {
    case WSG_CONN_HANDSHAKE:
        return &ctx->handshaking;
    case WSG_CONN_OPEN:
        return &ctx->open;
    case WSG_CONN_CLOSING:
        return &ctx->closing;
    default:
        return NULL;
    }
}

static void move_to(wsg_conn_t *conn, wsg_conn_state_t state)
{
    wsg_conn_list_t *from = list_of(conn->ctx, conn->state), *to = list_of(conn->ctx, (uint8_t)state);
    if (from != NULL)
        list_remove(from, conn);
    conn->state = (uint8_t)state;
    conn->since_ms = now_ms(conn);
    if (to != NULL)
        list_push(to, conn);
}

/* Input from an open client proves it alive: it moves to the young end of the idle order. */
void conn_touch(wsg_conn_t *conn)
{
    wsg_ctx_t *ctx = conn->ctx;
    conn->since_ms = now_ms(conn);
    if (ctx->open.tail != conn) {
        list_remove(&ctx->open, conn);
        list_push(&ctx->open, conn);
    }
}

/* ---- lifetime --------------------------------------------------------------------------------------- */

void conn_ref(wsg_conn_t *conn)
{
    conn->refcount++;
}

void conn_unref(wsg_conn_t *conn)
{
    if (--conn->refcount > 0)
        return;
    wsg_ctx_t *ctx = conn->ctx;
    wsg_outq_dispose(&conn->out);
    if (conn->has_slot)
        give_slot();
    free(conn);
    ctx->on_conn_freed(ctx->on_conn_freed_arg);
}

static void on_closed(uv_handle_t *handle)
{
    conn_unref(wsg_conn_of(handle));
}

const char *wsg_conn_peer_name(wsg_conn_t *conn, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(out, cap, "unknown");
        return out;
    }
    char ip[64] = "";
    if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, cap, "%s:%d", ip, ntohs(a->sin_port));
    }
    return out;
}

bool wsg_conn_peer_ip(wsg_conn_t *conn, wsg_ip_t *out)
{
    char name[80];
    wsg_conn_peer_name(conn, name, sizeof name);
    return wsg_ip_parse(wsg_str_c(name), out); /* "a.b.c.d:port" or "[v6]:port" */
}

const char *wsg_conn_client_name(wsg_conn_t *conn, char *out, size_t cap)
{
    if (!conn->is_forwarded)
        return wsg_conn_peer_name(conn, out, cap);
    char ip[WSG_IP_TEXT_MAX];
    snprintf(out, cap, "%s", wsg_ip_format(&conn->forwarded_ip, ip));
    return out;
}

/* "sub1,sub2" / "pub1" lists of channel names for the logs, session keys redacted (cut with "..." when long;
 * the log renderer quotes and escapes the whole). */
static const char *channel_list(char *out, size_t cap, wsg_channel_t *const *chans,
                                const wsg_member_t *members, uint8_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (uint8_t i = 0; i < n && used + 8 < cap; i++) {
        const wsg_channel_t *ch = members ? members[i].channel : chans[i];
        if (i > 0)
            out[used++] = ',';
        used += wsg_channel_redact(ch->name, ch->name_len, out + used, cap - used);
    }
    if (used + 8 >= cap && n > 0)
        strcpy(out + (used < cap - 4 ? used : cap - 4), "...");
    return n ? out : "-";
}

/* Logs the end of a connection once, while its channels are still known. */
static void log_close(wsg_conn_t *conn, const char *why)
{
    if (conn->is_close_logged)
        return;
    conn->is_close_logged = true;
    if (conn->opened_ms == 0) {
        WSG_DEBUG("conn_drop", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_STR("phase", "handshake"),
                  WSG_F_STR("why", why));
        return;
    }
    const wsg_router_client_t *c = &conn->client;
    char peer[80], via[80], subs[512], pubs[512];
    WSG_INFO("conn_close", WSG_F_UINT("conn", wsg_conn_id(conn)),
             WSG_F_STR("peer", wsg_conn_client_name(conn, peer, sizeof peer)),
             WSG_F_STR(conn->is_forwarded ? "via" : NULL, wsg_conn_peer_name(conn, via, sizeof via)),
             WSG_F_STR("channels", channel_list(subs, sizeof subs, NULL, c->subs, c->nsubs)),
             WSG_F_STR("publish", channel_list(pubs, sizeof pubs, c->pubs, NULL, c->npubs)),
             WSG_F_UINT("code", conn->close_code), WSG_F_UINT("peer_code", conn->peer_close_code),
             WSG_F_UINT("duration_ms", now_ms(conn) - conn->opened_ms), WSG_F_STR("why", why));
}

/* Drops the connection. With `reset`, output the kernel still holds is discarded with an RST (SO_LINGER 0)
 * instead of lingering in FIN-WAIT: for clients given up on at a timeout, which may never read it. */
static void drop(wsg_conn_t *conn, const char *why, bool reset)
{
    if (conn->state == WSG_CONN_CLOSED)
        return;
    wsg_ctx_t *ctx = conn->ctx;
    if (conn->close_code == 0)
        conn->close_code = WSG_CLOSE_ABNORMAL;
    if (conn->is_close_logged)
        WSG_DEBUG("conn_drop", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_STR("why", why));
    log_close(conn, why);
    wsg_router_leave(ctx->router, &conn->client);
    free(conn->http);
    conn->http = NULL;
    if (conn->auth != NULL) {
        wsg_auth_request_cancel(conn->auth);
        conn->auth = NULL;
    }
    wsg_ws_reader_dispose(&conn->reader);
    uv_os_fd_t fd;
    int unsent = 0;
    if (reset && uv_fileno((uv_handle_t *)&conn->tcp, &fd) == 0 &&
        (wsg_outq_pending(&conn->out) > 0 || (ioctl(fd, TIOCOUTQ, &unsent) == 0 && unsent > 0))) {
        struct linger hard = {.l_onoff = 1, .l_linger = 0};
        if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard) == 0)
            WSG_DEBUG("conn_reset", WSG_F_UINT("conn", wsg_conn_id(conn)),
                      WSG_F_UINT("pending_bytes", wsg_outq_pending(&conn->out)),
                      WSG_F_INT("kernel_bytes", unsent));
    }
    wsg_outq_stop(&conn->out);
    move_to(conn, WSG_CONN_CLOSED);
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

void wsg_conn_abort(wsg_conn_t *conn, const char *why)
{
    drop(conn, why, false);
}

wsg_conn_t *wsg_conn_new(wsg_ctx_t *ctx, int fd, int *err)
{
    wsg_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        close(fd);
        *err = UV_ENOMEM;
        return NULL;
    }
    conn->ctx = ctx;
    conn->refcount = 1;
    conn->state = WSG_CONN_CLOSED; /* not in any list yet */
    uv_tcp_init(ctx->loop, &conn->tcp);
    wsg_outq_init(&conn->out, &ctx->out, (uv_stream_t *)&conn->tcp, ++conn_ids);
    int rc = uv_tcp_open(&conn->tcp, fd);
    if (rc < 0)
        close(fd);
    else if ((conn->http = malloc(sizeof(*conn->http))) == NULL)
        rc = UV_ENOMEM;
    if (rc < 0) {
        uv_close((uv_handle_t *)&conn->tcp, on_closed);
        *err = rc;
        return NULL;
    }
    wsg_http_request_init(conn->http);
    wsg_ws_reader_init(&conn->reader);
    uv_tcp_nodelay(&conn->tcp, 1);
    /* Output the peer does not acknowledge (a peer gone, or one whose receive window stays shut because it
     * never reads) makes the kernel end the connection, even when our own queue is empty. The stall rule and
     * the close handshake come first (idle timeout, then close timeout); this is the backstop behind them. */
    const wsg_config_t *cfg = ctx->cfg;
    uint64_t unacked_ms = cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms + cfg->close_timeout_ms : 0;
    unsigned user_timeout_ms = (unsigned)(unacked_ms > UINT32_MAX ? UINT32_MAX : unacked_ms);
    if (user_timeout_ms > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
    move_to(conn, WSG_CONN_HANDSHAKE);
    WSG_STAT_ADD(ctx->stats, connections_total, 1);
    conn->has_slot = take_slot(cfg->max_connections);
    return conn;
}

/* ---- reading ---------------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    wsg_conn_t *conn = wsg_conn_of(handle);
    buf->base = (char *)conn->ctx->read_buf;
    buf->len = sizeof conn->ctx->read_buf;
}

bool wsg_conn_take_read(wsg_conn_t *conn, ssize_t nread)
{
    if (nread < 0)
        wsg_conn_abort(conn, nread == UV_EOF ? "peer closed the connection" : uv_strerror((int)nread));
    else if (nread > 0)
        WSG_STAT_ADD(conn->ctx->stats, bytes_received, nread);
    return nread > 0;
}

void wsg_conn_read_start(wsg_conn_t *conn, uv_read_cb cb)
{
    if (conn->is_reading)
        uv_read_stop((uv_stream_t *)&conn->tcp);
    conn->is_reading = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, cb) == 0;
}

void wsg_conn_read_stop(wsg_conn_t *conn)
{
    if (conn->is_reading)
        uv_read_stop((uv_stream_t *)&conn->tcp);
    conn->is_reading = false;
}

/* ---- closing ---------------------------------------------------------------------------------------- */

/* Our side is done: send FIN and wait for the peer's, so that it reads everything before the socket goes
 * (closing with unread input would reset the connection and could discard our last bytes). */
static void on_shutdown(uv_shutdown_t *req, int status)
{
    free(req);
}

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
    if (!conn->is_reading)
        wsg_conn_read_start(conn, conn_on_read);
}

/* Drops TCP once everything queued is written. */
void conn_close_after_flush(wsg_conn_t *conn)
{
    conn->close_after_flush = true;
    wsg_outq_notify_drained(&conn->out);
}

/* Stops deliveries (no data frame may follow a close frame) and logs the close with the code we send. Its
 * publish targets stay: what the client sends until its own close frame arrives is still published. */
void conn_begin_closing(wsg_conn_t *conn, uint16_t code, const char *why)
{
    conn->close_code = code;
    log_close(conn, why);
    wsg_router_unsubscribe(conn->ctx->router, &conn->client);
    move_to(conn, WSG_CONN_CLOSING);
}

void wsg_conn_close(wsg_conn_t *conn, uint16_t code, const char *reason)
{
    if (conn->state != WSG_CONN_OPEN)
        return;
    conn_begin_closing(conn, code, reason);
    wsg_outq_close(&conn->out, code, reason);
    if (conn->peer_closed)
        conn_close_after_flush(conn);
}

void wsg_conn_respond_and_close(wsg_conn_t *conn, wsg_msg_t *response)
{
    free(conn->http);
    conn->http = NULL;
    move_to(conn, WSG_CONN_CLOSING);
    if (response == NULL || wsg_outq_send(&conn->out, response) != WSG_OUTQ_QUEUED) {
        wsg_msg_unref(response);
        wsg_conn_abort(conn, "out of memory");
        return;
    }
    wsg_msg_unref(response);
    conn_close_after_flush(conn);
}

/* ---- the output's verdicts ---------------------------------------------------------------------------- */

static void on_output_verdict(wsg_outq_t *q, wsg_outq_verdict_t verdict)
{
    wsg_conn_t *conn = conn_of_out(q);
    if (verdict == WSG_OUTQ_STALLED) {
        WSG_STAT_ADD(conn->ctx->stats, stale_closes, 1);
        wsg_conn_close(conn, WSG_CLOSE_STALE, "stale");
    } else {
        wsg_conn_close(conn, WSG_CLOSE_POLICY, "slow consumer");
    }
}

static void on_output_error(wsg_outq_t *q, int err)
{
    wsg_conn_abort(conn_of_out(q), err == -ENOMEM ? "out of memory" : uv_strerror(err));
}

static void on_output_drained(wsg_outq_t *q)
{
    wsg_conn_t *conn = conn_of_out(q);
    if (conn->state == WSG_CONN_OPEN)
        wsg_router_output_drained(conn->ctx->router, &conn->client); /* a paced stream replay goes on */
    if (conn->close_after_flush && !conn->is_lingering && conn->state != WSG_CONN_CLOSED)
        start_lingering(conn);
}

const wsg_outq_owner_t wsg_conn_output_owner = {
    .on_verdict = on_output_verdict,
    .on_error = on_output_error,
    .on_drained = on_output_drained,
};

/* ---- opening ------------------------------------------------------------------------------------------ */

void wsg_conn_open(wsg_conn_t *conn, wsg_msg_t *response, const wsg_access_t *access, wsg_str_t facility,
                   const uint8_t *early, size_t early_len)
{
    wsg_ctx_t *ctx = conn->ctx;
    wsg_http_request_t *http = conn->http; /* holds `early`: freed once it is read */
    conn->http = NULL;
    if (response == NULL || wsg_outq_send(&conn->out, response) != WSG_OUTQ_QUEUED) {
        wsg_msg_unref(response);
        free(http);
        wsg_conn_abort(conn, "out of memory");
        return;
    }
    wsg_msg_unref(response);
    move_to(conn, WSG_CONN_OPEN);
    conn->opened_ms = conn->since_ms;
    wsg_publish_init(&conn->pub, ctx->cfg, conn->opened_ms);
    conn->client.out = &conn->out;
    conn->client.is_echo = access->is_echo;
    wsg_str_t path, query; /* stream channels resume after the query's since */
    wsg_url_split(http->target, &path, &query);
    if (wsg_router_join(ctx->router, &conn->client, access->subs, access->nsubs, access->pubs, access->npubs,
                        query) < 0) {
        free(http);
        wsg_conn_close(conn, WSG_CLOSE_INTERNAL_ERROR, "internal error");
        return;
    }
    const wsg_router_client_t *c = &conn->client;
    char peer[80], via[80], subs[512], pubs[512];
    WSG_INFO("conn_open", WSG_F_UINT("conn", wsg_conn_id(conn)),
             WSG_F_STR("peer", wsg_conn_client_name(conn, peer, sizeof peer)),
             WSG_F_STR(conn->is_forwarded ? "via" : NULL, wsg_conn_peer_name(conn, via, sizeof via)),
             WSG_F_STR("user", access->user[0] ? access->user : "-"),
             WSG_F_BYTES("facility", facility.ptr, facility.len),
             WSG_F_STR("channels", channel_list(subs, sizeof subs, NULL, c->subs, c->nsubs)),
             WSG_F_STR("publish", channel_list(pubs, sizeof pubs, c->pubs, NULL, c->npubs)),
             WSG_F_INT("echo", c->is_echo), WSG_F_INT("v1", c->is_v1));
    if (early_len > 0)
        conn_feed_frames(conn, early, early_len); /* a client may pipeline frames right behind its request */
    free(http);
    if (conn->state != WSG_CONN_CLOSED)
        wsg_conn_read_start(conn, conn_on_read);
}

/* ---- the loop's connections -----------------------------------------------------------------------------
 */

void wsg_conn_send_to_all(wsg_ctx_t *ctx, wsg_msg_t *msg)
{
    for (wsg_conn_t *conn = ctx->open.head; conn != NULL; conn = conn->next)
        wsg_outq_send(&conn->out, msg);
}

/* Lists are ordered by the time their state began, so expired connections are at the head and each walk
 * stops at the first one still in time. */
void wsg_conn_sweep(wsg_ctx_t *ctx, uint64_t now)
{
    const wsg_config_t *cfg = ctx->cfg;
    while (ctx->handshaking.head != NULL &&
           now - ctx->handshaking.head->since_ms >= cfg->handshake_timeout_ms) {
        wsg_conn_t *conn = ctx->handshaking.head;
        WSG_INFO("handshake_timeout", WSG_F_UINT("conn", wsg_conn_id(conn)),
                 WSG_F_UINT("waited_ms", now - conn->since_ms));
        drop(conn, "handshake timeout", true);
    }
    /* The open list is ordered by last input (touch), so the stale are at its head. */
    while (cfg->idle_timeout_ms > 0 && ctx->open.head != NULL &&
           now - ctx->open.head->since_ms >= cfg->idle_timeout_ms) {
        wsg_conn_t *conn = ctx->open.head;
        WSG_STAT_ADD(ctx->stats, stale_closes, 1);
        WSG_INFO("stale", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_UINT("idle_ms", now - conn->since_ms));
        wsg_conn_close(conn, WSG_CLOSE_STALE, "stale");
    }
    while (ctx->closing.head != NULL && now - ctx->closing.head->since_ms >= cfg->close_timeout_ms) {
        wsg_conn_t *conn = ctx->closing.head;
        WSG_DEBUG("close_timeout", WSG_F_UINT("conn", wsg_conn_id(conn)),
                  WSG_F_UINT("waited_ms", now - conn->since_ms));
        drop(conn, "close timeout", true);
    }
    if (ctx->is_shutting_down && now >= ctx->shutdown_deadline_ms) {
        while (ctx->open.head != NULL)
            drop(ctx->open.head, "shutdown timeout", true);
        while (ctx->closing.head != NULL)
            drop(ctx->closing.head, "shutdown timeout", true);
    }
}

void wsg_conn_shutdown_all(wsg_ctx_t *ctx, wsg_msg_t *notice)
{
    while (ctx->handshaking.head != NULL)
        wsg_conn_abort(ctx->handshaking.head, "shutdown");
    while (ctx->open.head != NULL) {
        if (notice != NULL)
            wsg_outq_send(&ctx->open.head->out, notice);
        wsg_conn_close(ctx->open.head, WSG_CLOSE_GOING_AWAY, "going away");
    }
}
