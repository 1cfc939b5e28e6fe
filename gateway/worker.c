/* A worker: one libuv loop serving its own listener, connections, Redis links and timers. */
#include "worker.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outq.h"

static void maybe_finish(wsg_worker_t *w);

static _Atomic uint64_t conn_ids;
static _Atomic uint64_t live_connections;

uint64_t wsg_next_conn_id(void)
{
    return ++conn_ids;
}

bool wsg_connection_slot_take(uint64_t max)
{
    uint64_t before = atomic_fetch_add_explicit(&live_connections, 1, memory_order_relaxed);
    if (max == 0 || before < max)
        return true;
    atomic_fetch_sub_explicit(&live_connections, 1, memory_order_relaxed);
    return false;
}

void wsg_connection_slot_give(void)
{
    atomic_fetch_sub_explicit(&live_connections, 1, memory_order_relaxed);
}

/* ---- connection lists ---------------------------------------------------------------------------- */

void wsg_conn_list_push(wsg_conn_list_t *list, wsg_conn_t *conn)
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

void wsg_conn_list_remove(wsg_conn_list_t *list, wsg_conn_t *conn)
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

/* ---- end-of-turn flush ---------------------------------------------------------------------------- */

void wsg_worker_schedule_flush(wsg_worker_t *w, wsg_conn_t *conn)
{
    if (conn->is_flush_queued)
        return;
    conn->is_flush_queued = true;
    conn->flush_next = w->flush_head;
    w->flush_head = conn;
}

static void flush_all(wsg_worker_t *w)
{
    /* A flush may schedule more work (a close frame after a slow-consumer verdict): loop until empty. */
    while (w->flush_head != NULL) {
        wsg_conn_t *conn = w->flush_head;
        w->flush_head = conn->flush_next;
        conn->flush_next = NULL;
        wsg_conn_flush(conn);
    }
}

static void on_prepare(uv_prepare_t *handle)
{
    flush_all(handle->data);
}

static void on_check(uv_check_t *handle)
{
    flush_all(handle->data);
}

/* ---- timers --------------------------------------------------------------------------------------- */

static void send_to_all_open(wsg_worker_t *w, wsg_msg_t *msg)
{
    for (wsg_conn_t *conn = w->open.head; conn != NULL; conn = conn->next)
        wsg_conn_send(conn, msg);
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One frame per tick, shared by every client. */
static void on_heartbeat(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    wsg_msg_t *msg = w->heartbeat_msg ? wsg_msg_ref(w->heartbeat_msg) : NULL;
    if (w->cfg->is_json_heartbeat) {
        char text[128];
        ssize_t n = wsg_heartbeat_write_json(text, sizeof text, unix_ms(), w->cfg->idle_timeout_ms);
        msg = n > 0 ? wsg_msg_new(text, (size_t)n, NULL, 0) : NULL;
        if (msg == NULL)
            return;
        wsg_msg_frame_data(msg);
    }
    if (msg == NULL)
        return;
    WSG_STAT_ADD(&w->stats, heartbeats_sent, w->open.count);
    send_to_all_open(w, msg);
    wsg_msg_unref(msg);
}

static void on_ping(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    WSG_STAT_ADD(&w->stats, pings_sent, w->open.count);
    send_to_all_open(w, w->ping_msg);
}

void wsg_worker_touch(wsg_worker_t *w, wsg_conn_t *conn)
{
    conn->since_ms = uv_now(&w->loop);
    if (w->open.tail != conn) {
        wsg_conn_list_remove(&w->open, conn);
        wsg_conn_list_push(&w->open, conn);
    }
}

/* Gauges for the metrics endpoint, refreshed by the sweep (scrapes are far coarser than a sweep). */
static void publish_gauges(wsg_worker_t *w)
{
    WSG_STAT_SET(&w->stats, connections_open, w->open.count);
    WSG_STAT_SET(&w->stats, connections_handshaking, w->handshaking.count);
    WSG_STAT_SET(&w->stats, connections_closing, w->closing.count);
    WSG_STAT_SET(&w->stats, channels, wsg_router_channel_count(&w->router));
}

/* One coarse sweep for every deadline: lists are ordered by the time their state began, so expired
 * connections are at the head and the walk stops at the first one still in time. */
static void on_sweep(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    const wsg_config_t *cfg = w->cfg;
    uint64_t now = uv_now(&w->loop);
    while (w->handshaking.head != NULL && now - w->handshaking.head->since_ms >= cfg->handshake_timeout_ms) {
        wsg_conn_t *conn = w->handshaking.head;
        WSG_INFO("handshake_timeout", "conn=%llu waited_ms=%llu", (unsigned long long)conn->id,
                 (unsigned long long)(now - conn->since_ms));
        wsg_conn_abort(conn, "handshake timeout");
    }
    /* The open list is ordered by last input (wsg_worker_touch), so the stale are at its head. */
    while (cfg->idle_timeout_ms > 0 && w->open.head != NULL &&
           now - w->open.head->since_ms >= cfg->idle_timeout_ms) {
        wsg_conn_t *conn = w->open.head;
        WSG_STAT_ADD(&w->stats, stale_closes, 1);
        WSG_INFO("stale", "conn=%llu idle_ms=%llu", (unsigned long long)conn->id,
                 (unsigned long long)(now - conn->since_ms));
        wsg_conn_close(conn, WSG_CLOSE_STALE, "stale");
    }
    while (w->closing.head != NULL && now - w->closing.head->since_ms >= cfg->close_timeout_ms) {
        wsg_conn_t *conn = w->closing.head;
        WSG_DEBUG("close_timeout", "conn=%llu waited_ms=%llu", (unsigned long long)conn->id,
                  (unsigned long long)(now - conn->since_ms));
        wsg_conn_abort(conn, "close timeout");
    }
    if (w->is_shutting_down && now >= w->shutdown_deadline_ms) {
        while (w->open.head != NULL)
            wsg_conn_abort(w->open.head, "shutdown timeout");
        while (w->closing.head != NULL)
            wsg_conn_abort(w->closing.head, "shutdown timeout");
    }
    publish_gauges(w);
    maybe_finish(w);
}

/* ---- Redis events --------------------------------------------------------------------------------- */

static void log_redis_up(wsg_worker_t *w, const char *role, bool *was_ready, uint64_t *down_since)
{
    uint64_t now = uv_now(&w->loop);
    if (*down_since != 0) {
        WSG_STAT_ADD(&w->stats, redis_reconnects, 1);
        WSG_STAT_ADD(&w->stats, redis_outage_ms, now - *down_since);
    }
    if (*down_since != 0)
        WSG_INFO("redis_up", "role=%s outage_ms=%llu", role, (unsigned long long)(now - *down_since));
    else
        WSG_INFO("redis_up", "role=%s", role);
    *was_ready = true;
    *down_since = 0;
}

static void log_redis_down(wsg_worker_t *w, const char *role, bool *was_ready, uint64_t *down_since,
                           const char *why, uint64_t retry_ms)
{
    uint64_t now = uv_now(&w->loop);
    if (*was_ready || *down_since == 0) {
        WSG_WARN("redis_down", "role=%s why=\"%s\" retry_ms=%llu", role, why, (unsigned long long)retry_ms);
        *was_ready = false;
        if (*down_since == 0)
            *down_since = now;
    } else if (wsg_log_limit_allow(&w->redis_log_limit, now, 10000)) {
        WSG_WARN("redis_still_down", "role=%s why=\"%s\" down_ms=%llu retry_ms=%llu", role, why,
                 (unsigned long long)(now - *down_since), (unsigned long long)retry_ms);
    } else {
        WSG_DEBUG("redis_retry", "role=%s why=\"%s\" retry_ms=%llu", role, why, (unsigned long long)retry_ms);
    }
}

/* ---- Redis probe -----------------------------------------------------------------------------------
 * A Redis that stops answering without closing the connection (a frozen process, a black-holed network, a
 * proxy that lost the server) leaves hiredis waiting forever. Every probe interval a numbered PUBLISH goes to a
 * channel only this worker subscribes: the command connection must answer it and the subscriber connection
 * must deliver it within WSGATE_REDIS_TIMEOUT, or that connection is rebuilt. */

static void on_probe_answered(void *arg, int status, const char *err)
{
    wsg_worker_t *w = arg;
    w->is_probe_queued = false;
    if (status == 0)
        w->probe_answered = true;
}

static void on_probe_delivered(wsg_worker_t *w, const wsg_msg_t *msg)
{
    char text[24];
    size_t n = msg->payload_len < sizeof text - 1 ? msg->payload_len : sizeof text - 1;
    memcpy(text, msg->storage + WSG_MSG_HEADROOM, n);
    text[n] = '\0';
    if (w->probe_seq != 0 && strtoull(text, NULL, 10) == w->probe_seq)
        w->probe_delivered = true;
}

static void on_probe_timer(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    uint64_t now = uv_now(&w->loop);
    if (w->probe_seq != 0) {
        if (w->probe_answered && w->probe_delivered) {
            w->probe_seq = 0;
        } else if (now - w->probe_sent_ms >= w->cfg->redis_timeout_ms) {
            WSG_STAT_ADD(&w->stats, redis_probe_failures, 1);
            if (!w->probe_answered) {
                WSG_WARN("redis_probe_failed", "role=commands waited_ms=%llu msg=\"no answer: reconnecting\"",
                         (unsigned long long)(now - w->probe_sent_ms));
                wsg_redis_cmd_reset(w->cmd, "probe not answered");
            } else {
                WSG_WARN("redis_probe_failed", "role=subscriber waited_ms=%llu msg=\"not delivered: resubscribing\"",
                         (unsigned long long)(now - w->probe_sent_ms));
                wsg_redis_sub_reset(w->sub, "probe not delivered");
            }
            w->probe_seq = 0;
        }
        return;
    }
    if (!wsg_redis_sub_is_ready(w->sub) || !wsg_redis_cmd_is_ready(w->cmd) || !w->is_probe_subscribed)
        return;
    char payload[24];
    int n = snprintf(payload, sizeof payload, "%llu", (unsigned long long)++w->probe_counter);
    if (wsg_redis_cmd_publish(w->cmd, w->probe_channel, strlen(w->probe_channel), payload, (size_t)n, 0,
                              on_probe_answered, w) < 0)
        return;
    w->probe_seq = w->probe_counter;
    w->is_probe_queued = true;
    w->probe_sent_ms = now;
    w->probe_answered = w->probe_delivered = false;
}

static void on_sub_ready(void *arg)
{
    wsg_worker_t *w = arg;
    const char *probe = w->probe_channel;
    size_t probe_len = strlen(probe);
    w->is_probe_subscribed = wsg_redis_sub_subscribe(w->sub, &probe, &probe_len, 1) == 0;
    w->probe_seq = 0;
    log_redis_up(w, "subscriber", &w->sub_was_ready, &w->sub_down_since_ms);
    WSG_STAT_SET(&w->stats, redis_sub_up, 1);
    wsg_router_on_redis_ready(&w->router);
}

static void on_sub_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_worker_t *w = arg;
    log_redis_down(w, "subscriber", &w->sub_was_ready, &w->sub_down_since_ms, why, retry_ms);
    WSG_STAT_SET(&w->stats, redis_sub_up, 0);
    wsg_router_on_redis_down(&w->router);
}

static void on_sub_subscribed(void *arg, const char *channel, size_t len)
{
    wsg_worker_t *w = arg;
    WSG_DEBUG("redis_subscribed", "channel=%s", channel);
    wsg_router_on_subscribed(&w->router, channel, len);
}

static void on_sub_unsubscribed(void *arg, const char *channel, size_t len)
{
    wsg_worker_t *w = arg;
    WSG_DEBUG("redis_unsubscribed", "channel=%s", channel);
    wsg_router_on_unsubscribed(&w->router, channel, len);
}

static void on_sub_message(void *arg, wsg_msg_t *msg)
{
    wsg_worker_t *w = arg;
    if (strcmp(msg->channel, w->probe_channel) == 0) {
        on_probe_delivered(w, msg);
        return;
    }
    WSG_STAT_ADD(&w->stats, messages_from_redis, 1);
    wsg_router_on_message(&w->router, msg);
}

static void on_sub_read_done(void *arg)
{
    wsg_worker_t *w = arg;
    wsg_router_end_run(&w->router);
}

static const wsg_redis_sub_handler_t sub_handler = {
    .on_ready = on_sub_ready,
    .on_down = on_sub_down,
    .on_subscribed = on_sub_subscribed,
    .on_unsubscribed = on_sub_unsubscribed,
    .on_message = on_sub_message,
    .on_read_done = on_sub_read_done,
};

/* ---- Sentinel ------------------------------------------------------------------------------------
 * With a redis-sentinel:// URL both connections find the master through the sentinels on every (re)connect
 * and check its ROLE. A failover that leaves the old master reachable (as a replica) would not drop them, so a
 * subscription to +switch-master on a sentinel rebuilds them at once. */

static void on_watch_ready(void *arg)
{
    wsg_worker_t *w = arg;
    const char *channel = "+switch-master";
    size_t len = strlen(channel);
    wsg_redis_sub_subscribe(w->sentinel_watch, &channel, &len, 1);
    WSG_INFO("sentinel_watch_up", "master=%s", w->cfg->redis.master_name);
}

static void on_watch_down(void *arg, const char *why, uint64_t retry_ms)
{
    WSG_DEBUG("sentinel_watch_down", "why=\"%s\" retry_ms=%llu", why, (unsigned long long)retry_ms);
}

static void on_watch_ignore(void *arg, const char *channel, size_t len)
{
}

static void on_watch_message(void *arg, wsg_msg_t *msg)
{
    wsg_worker_t *w = arg;
    const char *name = w->cfg->redis.master_name;
    size_t name_len = strlen(name);
    /* "<master name> <old ip> <old port> <new ip> <new port>" */
    if (strcmp(msg->channel, "+switch-master") != 0 || msg->payload_len <= name_len ||
        memcmp(wsg_msg_payload(msg), name, name_len) != 0 || wsg_msg_payload(msg)[name_len] != ' ')
        return;
    WSG_INFO("sentinel_switch_master", "detail=\"%.*s\"", (int)msg->payload_len, (const char *)wsg_msg_payload(msg));
    wsg_redis_sub_reset(w->sub, "sentinel switched the master");
    wsg_redis_cmd_reset(w->cmd, "sentinel switched the master");
}

static const wsg_redis_sub_handler_t watch_handler = {
    .on_ready = on_watch_ready,
    .on_down = on_watch_down,
    .on_subscribed = on_watch_ignore,
    .on_unsubscribed = on_watch_ignore,
    .on_message = on_watch_message,
};

static void on_cmd_ready(void *arg)
{
    wsg_worker_t *w = arg;
    log_redis_up(w, "commands", &w->cmd_was_ready, &w->cmd_down_since_ms);
    WSG_STAT_SET(&w->stats, redis_cmd_up, 1);
}

static void on_cmd_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_worker_t *w = arg;
    log_redis_down(w, "commands", &w->cmd_was_ready, &w->cmd_down_since_ms, why, retry_ms);
    WSG_STAT_SET(&w->stats, redis_cmd_up, 0);
}

static const wsg_redis_cmd_handler_t cmd_handler = {
    .on_ready = on_cmd_ready,
    .on_down = on_cmd_down,
};

/* ---- listener ------------------------------------------------------------------------------------- */

/* Our own accept loop on a uv_poll, rather than uv_listen: when the process runs out of descriptors, libuv
 * would silently accept and drop pending connections; here accepting pauses instead (the kernel keeps them in
 * the backlog), one warning is logged, and a timer resumes accepting shortly after. */
#define ACCEPTS_PER_EVENT 64
#define ACCEPT_PAUSE_MS 250

static void on_listen_ready(uv_poll_t *poll, int status, int events);

static void on_accept_resume(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    if (!w->is_shutting_down)
        uv_poll_start(&w->listener, UV_READABLE, on_listen_ready);
}

static void on_listen_ready(uv_poll_t *poll, int status, int events)
{
    wsg_worker_t *w = poll->data;
    for (int i = 0; i < ACCEPTS_PER_EVENT && !w->is_shutting_down; i++) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK)
                return;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
                uv_poll_stop(&w->listener);
                uv_timer_start(&w->accept_timer, on_accept_resume, ACCEPT_PAUSE_MS, 0);
                WSG_STAT_ADD(&w->stats, accept_pauses, 1);
                if (wsg_log_limit_allow(&w->accept_log_limit, uv_now(&w->loop), 10000))
                    WSG_WARN("accept_paused", "err=\"%s\" open=%u resume_ms=%d", strerror(err), w->open.count,
                             ACCEPT_PAUSE_MS);
                return;
            }
            if (wsg_log_limit_allow(&w->accept_log_limit, uv_now(&w->loop), 1000))
                WSG_WARN("accept_failed", "err=\"%s\"", strerror(err));
            return;
        }
        int rc = wsg_conn_accept_fd(w, fd);
        if (rc < 0 && wsg_log_limit_allow(&w->accept_log_limit, uv_now(&w->loop), 1000))
            WSG_WARN("accept_failed", "err=\"%s\"", uv_strerror(rc));
    }
}

static int start_listener(wsg_worker_t *w, int listen_fd)
{
    w->listen_fd = listen_fd;
    int rc = listen(listen_fd, 1024) == 0 ? 0 : -errno;
    if (rc == 0)
        rc = uv_poll_init(&w->loop, &w->listener, listen_fd);
    if (rc == 0) {
        w->listener.data = w;
        rc = uv_poll_start(&w->listener, UV_READABLE, on_listen_ready);
    }
    if (rc < 0) {
        WSG_ERROR("listen_failed", "worker=%u addr=%s err=\"%s\"", w->index, w->cfg->listen, uv_strerror(rc));
        return rc;
    }
    uv_timer_init(&w->loop, &w->accept_timer);
    w->accept_timer.data = w;
    w->has_listener = true;
    return 0;
}

static void on_listener_closed(uv_handle_t *handle)
{
    wsg_worker_t *w = handle->data;
    close(w->listen_fd); /* a poll handle does not own its descriptor */
    w->listen_fd = -1;
}

/* ---- signals and shutdown ------------------------------------------------------------------------- */

static void on_shutdown_request(uv_async_t *handle)
{
    wsg_worker_shutdown(handle->data);
}

void wsg_worker_request_shutdown(wsg_worker_t *w)
{
    uv_async_send(&w->shutdown_async);
}

void wsg_worker_shutdown(wsg_worker_t *w)
{
    if (w->is_shutting_down)
        return;
    w->is_shutting_down = true;
    w->shutdown_deadline_ms = uv_now(&w->loop) + w->cfg->shutdown_timeout_ms;
    if (w->has_listener) {
        uv_close((uv_handle_t *)&w->listener, on_listener_closed);
        uv_close((uv_handle_t *)&w->accept_timer, NULL);
        w->has_listener = false;
    }
    uv_timer_stop(&w->heartbeat_timer);
    uv_timer_stop(&w->ping_timer);
    uv_timer_stop(&w->probe_timer);
    while (w->handshaking.head != NULL)
        wsg_conn_abort(w->handshaking.head, "shutdown");
    wsg_msg_t *notice = NULL;
    if (w->cfg->shutdown_notice_len > 0) {
        notice = wsg_msg_new(w->cfg->shutdown_notice, w->cfg->shutdown_notice_len, NULL, 0);
        if (notice != NULL)
            wsg_msg_frame_data(notice);
    }
    while (w->open.head != NULL) {
        if (notice != NULL)
            wsg_conn_send(w->open.head, notice);
        wsg_conn_close(w->open.head, WSG_CLOSE_GOING_AWAY, "going away");
    }
    wsg_msg_unref(notice);
    maybe_finish(w);
}

static void on_link_closed(void *arg)
{
    wsg_worker_t *w = arg;
    w->closing_links--;
}

static void close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

/* Shutdown ends once no client is left and Redis has answered every command, or at the deadline. A
 * connection that is closed but not yet freed only waits for a Redis reply: closing the command link
 * completes it. */
static void maybe_finish(wsg_worker_t *w)
{
    if (!w->is_shutting_down || w->is_finishing)
        return;
    if (w->handshaking.count + w->open.count + w->closing.count > 0)
        return;
    /* A probe waiting for Redis is not worth waiting for. */
    if (wsg_redis_cmd_pending(w->cmd) > (w->is_probe_queued ? 1u : 0u) && uv_now(&w->loop) < w->shutdown_deadline_ms)
        return;
    w->is_finishing = true;
    size_t pending = wsg_redis_cmd_pending(w->cmd) - (w->is_probe_queued ? 1u : 0u);
    if (pending > 0)
        WSG_ERROR("shutdown_unsent", "commands=%zu why=\"Redis unreachable until the shutdown timeout\"", pending);
    WSG_INFO("shutdown_complete", "worker=%u connections_total=%llu", w->index,
             (unsigned long long)WSG_STAT_GET(&w->stats, connections_total));
    w->closing_links = 2;
    wsg_redis_sub_close(w->sub, on_link_closed, w);
    wsg_redis_cmd_close(w->cmd, on_link_closed, w);
    if (w->sentinel_watch != NULL) {
        w->closing_links++;
        wsg_redis_sub_close(w->sentinel_watch, on_link_closed, w);
    }
    close_handle((uv_handle_t *)&w->heartbeat_timer);
    close_handle((uv_handle_t *)&w->ping_timer);
    close_handle((uv_handle_t *)&w->probe_timer);
    close_handle((uv_handle_t *)&w->sweep_timer);
    close_handle((uv_handle_t *)&w->prepare);
    close_handle((uv_handle_t *)&w->check);
    close_handle((uv_handle_t *)&w->shutdown_async);
}

void wsg_worker_on_conn_freed(wsg_worker_t *w)
{
    WSG_STAT_ADD(&w->stats, connections_freed, 1);
    if (w->is_shutting_down)
        maybe_finish(w);
}

/* ---- lifecycle ------------------------------------------------------------------------------------ */

int wsg_worker_init(wsg_worker_t *w, const wsg_config_t *cfg, unsigned index, int listen_fd)
{
    memset(w, 0, offsetof(wsg_worker_t, read_buf));
    w->cfg = cfg;
    w->index = index;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0) {
        WSG_ERROR("start_failed", "err=\"%s\"", uv_strerror(rc));
        return rc;
    }
    if (wsg_router_init(&w->router, cfg->max_pending) < 0)
        return -ENOMEM;
    if (cfg->heartbeat_len > 0 && !cfg->is_json_heartbeat) {
        w->heartbeat_msg = wsg_msg_new(cfg->heartbeat, cfg->heartbeat_len, NULL, 0);
        if (w->heartbeat_msg == NULL)
            return -ENOMEM;
        wsg_msg_frame_data(w->heartbeat_msg);
    }
    w->ping_msg = wsg_msg_new_control(WSG_OP_PING, NULL, 0);
    if (w->ping_msg == NULL)
        return -ENOMEM;
    w->heartbeat_rules = (wsg_heartbeat_rules_t){
        .magic = {cfg->heartbeat, cfg->heartbeat_len},
        .json_heartbeat = cfg->is_json_heartbeat,
        .json_ping = cfg->json_ping,
    };
    rc = start_listener(w, listen_fd);
    if (rc < 0)
        return rc;

    wsg_redis_link_options_t opts = {
        .connect_timeout_ms = cfg->redis_timeout_ms,
        .retry_min_ms = 100,
        .retry_max_ms = cfg->redis_retry_max_ms,
    };
    opts.name = "wsgate-sub";
    w->sub = wsg_redis_sub_new(&w->loop, &cfg->redis, &opts, &sub_handler, w);
    opts.name = "wsgate-cmd";
    w->cmd = wsg_redis_cmd_new(&w->loop, &cfg->redis, &opts, &cmd_handler, w, cfg->publish_queue);
    if (w->sub == NULL || w->cmd == NULL)
        return -ENOMEM;
    if (cfg->redis.is_sentinel) {
        wsg_redis_addr_t sentinel = {0};
        snprintf(sentinel.host, sizeof sentinel.host, "%s", cfg->redis.sentinels[0].host);
        sentinel.port = cfg->redis.sentinels[0].port;
        opts.name = "wsgate-sentinel-watch";
        w->sentinel_watch = wsg_redis_sub_new(&w->loop, &sentinel, &opts, &watch_handler, w);
        if (w->sentinel_watch == NULL)
            return -ENOMEM;
    }
    wsg_router_set_redis(&w->router, w->sub, w->cmd);

    uv_timer_init(&w->loop, &w->heartbeat_timer);
    w->heartbeat_timer.data = w;
    if (w->heartbeat_msg != NULL || cfg->is_json_heartbeat)
        uv_timer_start(&w->heartbeat_timer, on_heartbeat, cfg->heartbeat_interval_ms, cfg->heartbeat_interval_ms);
    snprintf(w->probe_channel, sizeof w->probe_channel, "wsgate:probe:%d:%u", (int)getpid(), w->index);
    uv_timer_init(&w->loop, &w->probe_timer);
    w->probe_timer.data = w;
    /* Twice per timeout, so that a probe that fails is noticed within about one and a half timeouts. */
    uint64_t probe_every = cfg->redis_timeout_ms / 2 < 100 ? 100 : cfg->redis_timeout_ms / 2;
    uv_timer_start(&w->probe_timer, on_probe_timer, probe_every, probe_every);
    uv_timer_init(&w->loop, &w->ping_timer);
    w->ping_timer.data = w;
    if (cfg->ping_interval_ms > 0)
        uv_timer_start(&w->ping_timer, on_ping, cfg->ping_interval_ms, cfg->ping_interval_ms);
    /* The sweep runs four times per shortest deadline, between 10 ms and 1 s. */
    uint64_t sweep = cfg->handshake_timeout_ms < cfg->close_timeout_ms ? cfg->handshake_timeout_ms
                                                                       : cfg->close_timeout_ms;
    if (cfg->idle_timeout_ms > 0 && cfg->idle_timeout_ms < sweep)
        sweep = cfg->idle_timeout_ms;
    sweep /= 4;
    if (sweep < 10)
        sweep = 10;
    if (sweep > 1000)
        sweep = 1000;
    uv_timer_init(&w->loop, &w->sweep_timer);
    w->sweep_timer.data = w;
    uv_timer_start(&w->sweep_timer, on_sweep, sweep, sweep);

    uv_prepare_init(&w->loop, &w->prepare);
    w->prepare.data = w;
    uv_prepare_start(&w->prepare, on_prepare);
    uv_check_init(&w->loop, &w->check);
    w->check.data = w;
    uv_check_start(&w->check, on_check);
    /* Flush handles must not keep the loop alive on their own. */
    uv_unref((uv_handle_t *)&w->prepare);
    uv_unref((uv_handle_t *)&w->check);

    uv_async_init(&w->loop, &w->shutdown_async, on_shutdown_request);
    w->shutdown_async.data = w;
    return 0;
}

static void on_walk_close(uv_handle_t *handle, void *arg)
{
    if (!uv_is_closing(handle))
        uv_close(handle, NULL);
}

int wsg_worker_run(wsg_worker_t *w)
{
    uv_run(&w->loop, UV_RUN_DEFAULT);
    wsg_router_dispose(&w->router);
    wsg_msg_unref(w->heartbeat_msg);
    wsg_msg_unref(w->ping_msg);
    w->heartbeat_msg = NULL;
    w->ping_msg = NULL;
    int rc = uv_loop_close(&w->loop);
    if (rc == UV_EBUSY) {
        /* Should not happen; close stragglers rather than leak them, and report it. */
        WSG_ERROR("loop_busy", "msg=\"handles left open at exit\"");
        uv_walk(&w->loop, on_walk_close, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        rc = uv_loop_close(&w->loop);
    }
    return rc;
}
