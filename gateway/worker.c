/* A worker: one libuv loop with its own listener, timers and Redis links, wired to its router, connections
 * and outputs. */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth_client.h"
#include "cluster.h"
#include "commands.h"
#include "conn.h"
#include "ctx.h"
#include "heartbeat.h"
#include "log.h"
#include "outq.h"
#include "redis_watch.h"
#include "router.h"
#include "subscriber.h"
#include "upgrade.h"

/* Accepts per readiness event of the listener, and the pause after running out of descriptors. */
#define ACCEPTS_PER_EVENT 64
#define ACCEPT_PAUSE_MS 250

struct wsg_worker {
    wsg_ctx_t ctx; /* what connections share; its read buffer makes the worker large */
    uv_loop_t loop;
    const wsg_config_t *cfg;
    unsigned index;
    wsg_router_t router;
    wsg_redis_sub_t *sub;
    wsg_redis_cmd_t *cmd;
    wsg_redis_streams_t *streams; /* the stream reader; NULL without stream channels */
    wsg_redis_cluster_t
        *cluster; /* Redis Cluster: the slot map and the masters' connections sub and cmd share */
    wsg_redis_watch_t watch;
    wsg_tls_t *redis_tls;    /* rediss: the links' TLS settings, freed once the loop has ended */
    uv_poll_t listener;      /* readiness of listen_fd: we accept ourselves */
    uv_timer_t accept_timer; /* resumes accepting after running out of descriptors */
    int listen_fd;
    bool has_listener;
    uv_timer_t heartbeat_timer;
    uv_timer_t ping_timer;
    uv_timer_t sweep_timer;
    uv_prepare_t prepare;      /* flush before the loop blocks (output made by timers and write callbacks) */
    uv_check_t check;          /* flush after I/O callbacks (output made by reads and Redis replies) */
    uv_async_t shutdown_async; /* another thread asks for a graceful shutdown */
    wsg_msg_t *heartbeat_msg;  /* the magic string, framed once at start */
    wsg_msg_t *ping_msg;       /* a protocol PING, framed once at start */
    bool is_finishing;         /* Redis links and timers are closing; the loop ends when they are closed */
    unsigned closing_links;
    wsg_log_limit_t accept_log_limit;
    wsg_stats_t stats;
};

static void maybe_finish(wsg_worker_t *w);

/* ---- end-of-turn flush -------------------------------------------------------------------------------- */

static void on_prepare(uv_prepare_t *handle)
{
    wsg_worker_t *w = handle->data;
    wsg_outq_flush_all(&w->ctx.out);
}

static void on_check(uv_check_t *handle)
{
    wsg_worker_t *w = handle->data;
    wsg_outq_flush_all(&w->ctx.out);
}

/* ---- timers ------------------------------------------------------------------------------------------- */

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
        msg = n > 0 ? wsg_msg_new_data(text, (size_t)n) : NULL;
    }
    if (msg == NULL)
        return;
    WSG_STAT_ADD(&w->stats, heartbeats_sent, w->ctx.open.count);
    wsg_conn_send_to_all(&w->ctx, msg);
    wsg_msg_unref(msg);
}

static void on_ping(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    WSG_STAT_ADD(&w->stats, pings_sent, w->ctx.open.count);
    wsg_conn_send_to_all(&w->ctx, w->ping_msg);
}

/* Gauges for the metrics endpoint, refreshed by the sweep (scrapes are far coarser than a sweep). */
static void publish_gauges(wsg_worker_t *w)
{
    WSG_STAT_SET(&w->stats, connections_open, w->ctx.open.count);
    WSG_STAT_SET(&w->stats, connections_handshaking, w->ctx.handshaking.count);
    WSG_STAT_SET(&w->stats, connections_closing, w->ctx.closing.count);
    WSG_STAT_SET(&w->stats, channels, wsg_router_channel_count(&w->router));
}

/* One coarse sweep for every deadline: connection timeouts and the outputs the kernel refused. */
static void on_sweep(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    wsg_conn_sweep(&w->ctx, uv_now(&w->loop));
    wsg_outq_sweep(&w->ctx.out);
    publish_gauges(w);
    maybe_finish(w);
}

/* The sweep runs four times per shortest deadline (the slow-consumer grace included), between 10 ms and 1 s.
 */
static uint64_t sweep_interval(const wsg_config_t *cfg)
{
    uint64_t sweep =
        cfg->handshake_timeout_ms < cfg->close_timeout_ms ? cfg->handshake_timeout_ms : cfg->close_timeout_ms;
    if (cfg->idle_timeout_ms > 0 && cfg->idle_timeout_ms < sweep)
        sweep = cfg->idle_timeout_ms;
    if (cfg->slow_grace_ms > 0 && cfg->slow_grace_ms < sweep)
        sweep = cfg->slow_grace_ms;
    sweep /= 4;
    return sweep < 10 ? 10 : sweep > 1000 ? 1000 : sweep;
}

/* ---- Redis wiring ----------------------------------------------------------------------------------------
 */

static void on_sub_up(void *arg)
{
    wsg_worker_t *w = arg;
    wsg_redis_watch_sub_up(&w->watch);
}

static void on_sub_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_worker_t *w = arg;
    wsg_redis_watch_sub_down(&w->watch, why, retry_ms);
}

static void on_other_message(void *arg, const char *channel, size_t channel_len, const uint8_t *payload,
                             size_t len)
{
    wsg_worker_t *w = arg;
    wsg_redis_watch_message(&w->watch, channel, channel_len, payload, len);
}

static const wsg_router_observer_t router_observer = {
    .on_link_up = on_sub_up,
    .on_link_down = on_sub_down,
    .on_other_message = on_other_message,
};

static void on_cmd_up(void *arg)
{
    wsg_worker_t *w = arg;
    wsg_redis_watch_cmd_up(&w->watch);
}

static void on_cmd_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_worker_t *w = arg;
    wsg_redis_watch_cmd_down(&w->watch, why, retry_ms);
}

static const wsg_redis_cmd_handler_t cmd_handler = {
    .on_ready = on_cmd_up,
    .on_down = on_cmd_down,
};

/* ---- listener ------------------------------------------------------------------------------------------
 * Our own accept loop on a uv_poll, rather than uv_listen: when the process runs out of descriptors, libuv
 * would silently accept and drop pending connections; here accepting pauses instead (the kernel keeps them in
 * the backlog), one warning is logged, and a timer resumes accepting shortly after. */

static void on_listen_ready(uv_poll_t *poll, int status, int events);

static void on_accept_resume(uv_timer_t *timer)
{
    wsg_worker_t *w = timer->data;
    if (!w->ctx.is_shutting_down)
        uv_poll_start(&w->listener, UV_READABLE, on_listen_ready);
}

static void on_listen_ready(uv_poll_t *poll, int status, int events)
{
    wsg_worker_t *w = poll->data;
    for (int i = 0; i < ACCEPTS_PER_EVENT && !w->ctx.is_shutting_down; i++) {
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
                    WSG_WARN("accept_paused", WSG_F_STR("err", strerror(err)),
                             WSG_F_UINT("open", w->ctx.open.count), WSG_F_UINT("resume_ms", ACCEPT_PAUSE_MS));
                return;
            }
            if (wsg_log_limit_allow(&w->accept_log_limit, uv_now(&w->loop), 1000))
                WSG_WARN("accept_failed", WSG_F_STR("err", strerror(err)));
            return;
        }
        int rc = wsg_upgrade_accept(&w->ctx, fd);
        if (rc < 0 && wsg_log_limit_allow(&w->accept_log_limit, uv_now(&w->loop), 1000))
            WSG_WARN("accept_failed", WSG_F_STR("err", uv_strerror(rc)));
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
        WSG_ERROR("listen_failed", WSG_F_UINT("worker", w->index), WSG_F_STR("addr", w->cfg->listen),
                  WSG_F_STR("err", uv_strerror(rc)));
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

/* ---- shutdown ------------------------------------------------------------------------------------------ */

static void shutdown_worker(wsg_worker_t *w)
{
    if (w->ctx.is_shutting_down)
        return;
    w->ctx.is_shutting_down = true;
    w->ctx.shutdown_deadline_ms = uv_now(&w->loop) + w->cfg->shutdown_timeout_ms;
    if (w->has_listener) {
        uv_close((uv_handle_t *)&w->listener, on_listener_closed);
        uv_close((uv_handle_t *)&w->accept_timer, NULL);
        w->has_listener = false;
    }
    uv_timer_stop(&w->heartbeat_timer);
    uv_timer_stop(&w->ping_timer);
    if (w->watch.probe != NULL)
        wsg_redis_probe_pause(w->watch.probe); /* no new probe while the clients' commands drain */
    wsg_msg_t *notice = NULL;
    if (w->cfg->shutdown_notice_len > 0)
        notice = wsg_msg_new_data(w->cfg->shutdown_notice, w->cfg->shutdown_notice_len);
    wsg_conn_shutdown_all(&w->ctx, notice);
    wsg_msg_unref(notice);
    maybe_finish(w);
}

static void on_shutdown_request(uv_async_t *handle)
{
    shutdown_worker(handle->data);
}

void wsg_worker_request_shutdown(wsg_worker_t *w)
{
    uv_async_send(&w->shutdown_async);
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
    if (!w->ctx.is_shutting_down || w->is_finishing)
        return;
    if (w->ctx.handshaking.count + w->ctx.open.count + w->ctx.closing.count > 0)
        return;
    /* A probe waiting for Redis is not worth waiting for. */
    size_t probe = wsg_redis_watch_is_probe_queued(&w->watch) ? 1u : 0u;
    if (wsg_redis_cmd_pending(w->cmd) > probe && uv_now(&w->loop) < w->ctx.shutdown_deadline_ms)
        return;
    w->is_finishing = true;
    size_t pending = wsg_redis_cmd_pending(w->cmd) - probe;
    if (pending > 0)
        WSG_ERROR("shutdown_unsent", WSG_F_UINT("commands", pending),
                  WSG_F_STR("why", "Redis unreachable until the shutdown timeout"));
    WSG_INFO("shutdown_complete", WSG_F_UINT("worker", w->index),
             WSG_F_UINT("connections_total", WSG_STAT_GET(&w->stats, connections_total)));
    w->closing_links = 2;
    if (w->streams != NULL) {
        w->closing_links++;
        wsg_redis_streams_close(w->streams, on_link_closed,
                                w); /* before cmd: it sends CLIENT UNBLOCK there */
        w->streams = NULL;
    }
    wsg_redis_sub_close(w->sub, on_link_closed, w);
    wsg_redis_cmd_close(w->cmd, on_link_closed, w);
    if (w->cluster != NULL) {
        w->closing_links++;
        wsg_redis_cluster_close(w->cluster, on_link_closed, w); /* the answers still due come to cmd first */
        w->cluster = NULL;
    }
    if (w->ctx.auth != NULL) {
        w->closing_links++;
        wsg_auth_client_close(w->ctx.auth, on_link_closed, w);
        w->ctx.auth = NULL;
    }
    wsg_redis_watch_stop(&w->watch, &w->closing_links, on_link_closed, w);
    close_handle((uv_handle_t *)&w->heartbeat_timer);
    close_handle((uv_handle_t *)&w->ping_timer);
    close_handle((uv_handle_t *)&w->sweep_timer);
    close_handle((uv_handle_t *)&w->prepare);
    close_handle((uv_handle_t *)&w->check);
    close_handle((uv_handle_t *)&w->shutdown_async);
}

static void on_conn_freed(void *arg)
{
    wsg_worker_t *w = arg;
    WSG_STAT_ADD(&w->stats, connections_freed, 1);
    if (w->ctx.is_shutting_down)
        maybe_finish(w);
}

/* ---- lifecycle -------------------------------------------------------------------------------------------
 */

wsg_worker_t *wsg_worker_new(unsigned index)
{
    wsg_worker_t *w = calloc(1, sizeof(*w));
    if (w != NULL)
        w->index = index;
    return w;
}

wsg_stats_t *wsg_worker_stats(wsg_worker_t *w)
{
    return &w->stats;
}

unsigned wsg_worker_index(const wsg_worker_t *w)
{
    return w->index;
}

void wsg_worker_free(wsg_worker_t *w)
{
    free(w);
}

/* The output policy from the settings (see outq.h). */
static wsg_outq_policy_t output_policy(const wsg_config_t *cfg)
{
    return (wsg_outq_policy_t){
        .soft = cfg->max_pending,
        .hard = cfg->max_pending_hard,
        .grace_ms = cfg->slow_grace_ms,
        .stall_ms = cfg->idle_timeout_ms,
        .is_drop = cfg->is_slow_drop,
    };
}

static int start_redis(wsg_worker_t *w)
{
    const wsg_config_t *cfg = w->cfg;
    /* What one Redis event reads is fanned out before the next flush: keep it well below the hard limit, so
     * that one event cannot overflow a client that keeps up. */
    size_t read_bound = cfg->max_pending_hard / 8;
    wsg_redis_link_options_t opts = {
        .connect_timeout_ms = cfg->redis_timeout_ms,
        .retry_min_ms = 100,
        .retry_max_ms = cfg->redis_retry_max_ms,
        .read_bytes_per_event = read_bound < 16384    ? 16384
                                : read_bound > 262144 ? 262144
                                                      : read_bound,
    };
    if (cfg->redis.is_tls) {
        char why[400];
        if (wsg_tls_new(&(wsg_tls_options_t){WSG_REDIS_TLS_OPTIONS(cfg)}, &w->redis_tls, why, sizeof why) <
            0) {
            WSG_ERROR("start_failed", WSG_F_STR("err", why));
            return -EINVAL;
        }
        opts.tls = w->redis_tls;
        opts.tls_name = cfg->redis_tls_sni[0] != '\0' ? cfg->redis_tls_sni : NULL;
    }
    if (cfg->redis.is_cluster) {
        if ((w->cluster = wsg_redis_cluster_new(&w->loop, &cfg->redis, &opts)) == NULL)
            return -ENOMEM;
        opts.name = "wsgate-sub";
        w->sub = wsg_redis_sub_new_cluster(&w->loop, w->cluster, cfg->redis_sharded, &opts,
                                           &wsg_router_sub_handler, &w->router);
        w->cmd = wsg_redis_cmd_new_cluster(&w->loop, w->cluster, cfg->redis_sharded, &cmd_handler, w,
                                           cfg->publish_queue);
    } else {
        opts.name = "wsgate-sub";
        w->sub = wsg_redis_sub_new(&w->loop, &cfg->redis, &opts, &wsg_router_sub_handler, &w->router);
        opts.name = "wsgate-cmd";
        w->cmd = wsg_redis_cmd_new(&w->loop, &cfg->redis, &opts, &cmd_handler, w, cfg->publish_queue);
    }
    if (w->sub == NULL || w->cmd == NULL)
        return -ENOMEM;
    if (cfg->streams[0] != '\0') {
        opts.name = "wsgate-stream";
        w->streams = w->cluster != NULL
                         ? wsg_redis_streams_new_cluster(&w->loop, w->cluster, cfg->stream_poll_ms,
                                                         &wsg_router_streams_handler, &w->router)
                         : wsg_redis_streams_new(&w->loop, &cfg->redis, &opts, w->cmd, 0,
                                                 &wsg_router_streams_handler, &w->router);
        if (w->streams == NULL)
            return -ENOMEM;
        WSG_STAT_SET(&w->stats, redis_streams_down, 1); /* until it has connected */
    }
    wsg_router_set_streams(&w->router, &w->loop, &w->ctx.out, wsg_str_c(cfg->streams), w->streams,
                           (uint32_t)cfg->stream_replay_max, wsg_str_c(cfg->prefix));
    wsg_router_set_redis(&w->router, w->sub, w->cmd);
    return wsg_redis_watch_start(&w->watch, &w->loop, cfg, &w->stats, w->sub, w->cmd, w->streams, w->index,
                                 w->redis_tls);
}

int wsg_worker_init(wsg_worker_t *w, const wsg_config_t *cfg, int listen_fd)
{
    w->cfg = cfg;
    int rc = uv_loop_init(&w->loop);
    if (rc < 0) {
        WSG_ERROR("start_failed", WSG_F_STR("err", uv_strerror(rc)));
        return rc;
    }
    if (wsg_router_init(&w->router, cfg->max_pending, &w->stats, &router_observer, w) < 0)
        return -ENOMEM;
    wsg_ctx_t *ctx = &w->ctx;
    ctx->loop = &w->loop;
    ctx->cfg = cfg;
    ctx->stats = &w->stats;
    ctx->router = &w->router;
    wsg_outq_policy_t policy = output_policy(cfg);
    wsg_outq_ctx_init(&ctx->out, &w->loop, &policy, &wsg_conn_output_owner, &w->stats);
    ctx->heartbeat_rules = (wsg_heartbeat_rules_t){
        .magic = {cfg->heartbeat, cfg->heartbeat_len},
        .json_heartbeat = cfg->is_json_heartbeat,
        .json_ping = cfg->json_ping,
    };
    ctx->on_conn_freed = on_conn_freed;
    ctx->on_conn_freed_arg = w;
    if (cfg->heartbeat_len > 0 && !cfg->is_json_heartbeat &&
        (w->heartbeat_msg = wsg_msg_new_data(cfg->heartbeat, cfg->heartbeat_len)) == NULL)
        return -ENOMEM;
    if ((w->ping_msg = wsg_msg_new_control(WSG_OP_PING, NULL, 0)) == NULL)
        return -ENOMEM;
    rc = start_listener(w, listen_fd);
    if (rc < 0)
        return rc;
    rc = start_redis(w);
    if (rc < 0)
        return rc;
    ctx->cmd = w->cmd;
    if (cfg->auth_url[0] != '\0') {
        wsg_auth_target_t target = {
            .host = cfg->auth_host,
            .port = cfg->auth_port,
            .is_tls = cfg->auth_is_tls,
            .ca_file = cfg->auth_ca,
            .timeout_ms = cfg->auth_timeout_ms,
            .keepalive_ms = cfg->auth_keepalive_ms,
        };
        char why[400];
        rc = wsg_auth_client_new(&w->loop, &target, &ctx->auth, why, sizeof why);
        if (rc < 0) {
            WSG_ERROR("start_failed", WSG_F_STR("err", why));
            return rc;
        }
    }

    uv_timer_init(&w->loop, &w->heartbeat_timer);
    w->heartbeat_timer.data = w;
    if (w->heartbeat_msg != NULL || cfg->is_json_heartbeat)
        uv_timer_start(&w->heartbeat_timer, on_heartbeat, cfg->heartbeat_interval_ms,
                       cfg->heartbeat_interval_ms);
    uv_timer_init(&w->loop, &w->ping_timer);
    w->ping_timer.data = w;
    if (cfg->ping_interval_ms > 0)
        uv_timer_start(&w->ping_timer, on_ping, cfg->ping_interval_ms, cfg->ping_interval_ms);
    uv_timer_init(&w->loop, &w->sweep_timer);
    w->sweep_timer.data = w;
    uint64_t sweep = sweep_interval(cfg);
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
    wsg_outq_ctx_dispose(&w->ctx.out);
    wsg_msg_unref(w->heartbeat_msg);
    wsg_msg_unref(w->ping_msg);
    w->heartbeat_msg = NULL;
    w->ping_msg = NULL;
    int rc = uv_loop_close(&w->loop);
    if (rc == UV_EBUSY) {
        /* Should not happen; close stragglers rather than leak them, and report it. */
        WSG_ERROR("loop_busy", WSG_F_STR("msg", "handles left open at exit"));
        uv_walk(&w->loop, on_walk_close, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        rc = uv_loop_close(&w->loop);
    }
    wsg_tls_free(w->redis_tls);
    w->redis_tls = NULL;
    return rc;
}
