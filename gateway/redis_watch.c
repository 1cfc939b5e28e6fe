/* The Redis links' health: logs and gauges, the probe, Sentinel's failover notice, subscriber overflows. */
#include "redis_watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- up and down ---------------------------------------------------------------------------------- */

static void log_up(wsg_redis_watch_t *watch, const char *role, bool *was_ready, uint64_t *down_since)
{
    uint64_t now = uv_now(watch->loop);
    if (*down_since != 0) {
        WSG_STAT_ADD(watch->stats, redis_reconnects, 1);
        WSG_STAT_ADD(watch->stats, redis_outage_ms, now - *down_since);
        WSG_INFO("redis_up", WSG_F_STR("role", role), WSG_F_UINT("outage_ms", now - *down_since));
    } else {
        WSG_INFO("redis_up", WSG_F_STR("role", role));
    }
    *was_ready = true;
    *down_since = 0;
}

static void log_down(wsg_redis_watch_t *watch, const char *role, bool *was_ready, uint64_t *down_since,
                     const char *why, uint64_t retry_ms)
{
    uint64_t now = uv_now(watch->loop);
    if (*was_ready || *down_since == 0) {
        WSG_WARN("redis_down", WSG_F_STR("role", role), WSG_F_STR("why", why),
                 WSG_F_UINT("retry_ms", retry_ms));
        *was_ready = false;
        if (*down_since == 0)
            *down_since = now;
    } else if (wsg_log_limit_allow(&watch->log_limit, now, 10000)) {
        WSG_WARN("redis_still_down", WSG_F_STR("role", role), WSG_F_STR("why", why),
                 WSG_F_UINT("down_ms", now - *down_since), WSG_F_UINT("retry_ms", retry_ms));
    } else {
        WSG_DEBUG("redis_retry", WSG_F_STR("role", role), WSG_F_STR("why", why),
                  WSG_F_UINT("retry_ms", retry_ms));
    }
}

void wsg_redis_watch_sub_up(wsg_redis_watch_t *watch)
{
    const char *probe = watch->probe_channel;
    size_t probe_len = strlen(probe);
    watch->is_probe_subscribed = wsg_redis_sub_subscribe(watch->sub, &probe, &probe_len, 1) == 0;
    watch->probe_seq = 0;
    /* Redis closed the subscriber while the command connection stayed up, and took it back at once: not an
     * outage but Redis cutting off a client that fell behind (client-output-buffer-limit pubsub), or a
     * CLIENT KILL. Messages in between are lost to pub/sub; the router resubscribes and re-reads the keys. */
    if (watch->is_overflow_suspected && watch->cmd_losses == watch->cmd_losses_at_sub_loss &&
        wsg_redis_cmd_is_ready(watch->cmd)) {
        WSG_STAT_ADD(watch->stats, redis_sub_overflows, 1);
        WSG_WARN("redis_subscriber_overflow",
                 WSG_F_UINT("down_ms", uv_now(watch->loop) - watch->sub_down_since_ms),
                 WSG_F_STR("msg",
                           "Redis closed the subscriber connection while the command connection stayed up: "
                           "the gateway fell behind its pub/sub output limit (client-output-buffer-limit "
                           "pubsub) or it was killed; resubscribed, stored messages re-read"));
    }
    watch->is_overflow_suspected = false;
    log_up(watch, "subscriber", &watch->sub_was_ready, &watch->sub_down_since_ms);
    WSG_STAT_SET(watch->stats, redis_sub_up, 1);
}

void wsg_redis_watch_sub_down(wsg_redis_watch_t *watch, const char *why, uint64_t retry_ms)
{
    if (watch->sub_was_ready) {
        watch->is_overflow_suspected =
            wsg_redis_sub_was_closed_by_server(watch->sub) && wsg_redis_cmd_is_ready(watch->cmd);
        watch->cmd_losses_at_sub_loss = watch->cmd_losses;
    }
    log_down(watch, "subscriber", &watch->sub_was_ready, &watch->sub_down_since_ms, why, retry_ms);
    WSG_STAT_SET(watch->stats, redis_sub_up, 0);
}

void wsg_redis_watch_cmd_up(wsg_redis_watch_t *watch)
{
    log_up(watch, "commands", &watch->cmd_was_ready, &watch->cmd_down_since_ms);
    WSG_STAT_SET(watch->stats, redis_cmd_up, 1);
}

void wsg_redis_watch_cmd_down(wsg_redis_watch_t *watch, const char *why, uint64_t retry_ms)
{
    watch->cmd_losses++;
    log_down(watch, "commands", &watch->cmd_was_ready, &watch->cmd_down_since_ms, why, retry_ms);
    WSG_STAT_SET(watch->stats, redis_cmd_up, 0);
}

/* ---- the probe ---------------------------------------------------------------------------------------
 * A Redis that stops answering without closing the connection (a frozen process, a black-holed network, a
 * proxy that lost the server) leaves hiredis waiting forever. Every probe interval a numbered PUBLISH goes to
 * a channel only this worker subscribes: the command connection must answer it and the subscriber connection
 * must deliver it within WSGATE_REDIS_TIMEOUT, or that connection is rebuilt. */

static void on_probe_answered(void *arg, int status, const char *err)
{
    wsg_redis_watch_t *watch = arg;
    watch->is_probe_queued = false;
    if (status == 0)
        watch->probe_answered = true;
}

void wsg_redis_watch_message(wsg_redis_watch_t *watch, const char *channel, size_t channel_len,
                             const uint8_t *payload, size_t len)
{
    if (strcmp(channel, watch->probe_channel) != 0)
        return; /* a channel all of whose clients left while the message was on its way */
    char text[24];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, payload, n);
    text[n] = '\0';
    if (watch->probe_seq != 0 && strtoull(text, NULL, 10) == watch->probe_seq)
        watch->probe_delivered = true;
}

static void on_probe_timer(uv_timer_t *timer)
{
    wsg_redis_watch_t *watch = timer->data;
    uint64_t now = uv_now(watch->loop);
    if (watch->probe_seq != 0) {
        if (watch->probe_answered && watch->probe_delivered) {
            watch->probe_seq = 0;
        } else if (now - watch->probe_sent_ms >= watch->cfg->redis_timeout_ms) {
            WSG_STAT_ADD(watch->stats, redis_probe_failures, 1);
            if (!watch->probe_answered) {
                WSG_WARN("redis_probe_failed", WSG_F_STR("role", "commands"),
                         WSG_F_UINT("waited_ms", now - watch->probe_sent_ms),
                         WSG_F_STR("msg", "no answer: reconnecting"));
                wsg_redis_cmd_reset(watch->cmd, "probe not answered");
            } else {
                WSG_WARN("redis_probe_failed", WSG_F_STR("role", "subscriber"),
                         WSG_F_UINT("waited_ms", now - watch->probe_sent_ms),
                         WSG_F_STR("msg", "not delivered: resubscribing"));
                wsg_redis_sub_reset(watch->sub, "probe not delivered");
            }
            watch->probe_seq = 0;
        }
        return;
    }
    if (!wsg_redis_sub_is_ready(watch->sub) || !wsg_redis_cmd_is_ready(watch->cmd) ||
        !watch->is_probe_subscribed)
        return;
    char payload[24];
    int n = snprintf(payload, sizeof payload, "%llu", (unsigned long long)++watch->probe_counter);
    if (wsg_redis_cmd_publish(watch->cmd, watch->probe_channel, strlen(watch->probe_channel), payload,
                              (size_t)n, 0, on_probe_answered, watch) < 0)
        return;
    watch->probe_seq = watch->probe_counter;
    watch->is_probe_queued = true;
    watch->probe_sent_ms = now;
    watch->probe_answered = watch->probe_delivered = false;
}

/* ---- Sentinel ------------------------------------------------------------------------------------
 * With a redis-sentinel:// URL both connections find the master through the sentinels on every (re)connect
 * and check its ROLE. A failover that leaves the old master reachable (as a replica) would not drop them, so
 * a subscription to +switch-master on a sentinel rebuilds them at once. */

static void on_sentinel_ready(void *arg)
{
    wsg_redis_watch_t *watch = arg;
    const char *channel = "+switch-master";
    size_t len = strlen(channel);
    wsg_redis_sub_subscribe(watch->sentinel_watch, &channel, &len, 1);
    WSG_INFO("sentinel_watch_up", WSG_F_STR("master", watch->cfg->redis.master_name));
}

static void on_sentinel_down(void *arg, const char *why, uint64_t retry_ms)
{
    WSG_DEBUG("sentinel_watch_down", WSG_F_STR("why", why), WSG_F_UINT("retry_ms", retry_ms));
}

static void on_sentinel_confirm(void *arg, const char *channel, size_t len) {}

static void on_sentinel_message(void *arg, const char *channel, size_t channel_len, const uint8_t *payload,
                                size_t len)
{
    wsg_redis_watch_t *watch = arg;
    const char *name = watch->cfg->redis.master_name;
    size_t name_len = strlen(name);
    /* "<master name> <old ip> <old port> <new ip> <new port>" */
    if (strcmp(channel, "+switch-master") != 0 || len <= name_len || memcmp(payload, name, name_len) != 0 ||
        payload[name_len] != ' ')
        return;
    WSG_INFO("sentinel_switch_master", WSG_F_BYTES("detail", payload, len));
    wsg_redis_sub_reset(watch->sub, "sentinel switched the master");
    wsg_redis_cmd_reset(watch->cmd, "sentinel switched the master");
}

static const wsg_redis_sub_handler_t sentinel_handler = {
    .on_ready = on_sentinel_ready,
    .on_down = on_sentinel_down,
    .on_subscribed = on_sentinel_confirm,
    .on_unsubscribed = on_sentinel_confirm,
    .on_message = on_sentinel_message,
};

/* ---- lifecycle ---------------------------------------------------------------------------------------- */

int wsg_redis_watch_start(wsg_redis_watch_t *watch, uv_loop_t *loop, const wsg_config_t *cfg,
                          wsg_stats_t *stats, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd, unsigned index,
                          wsg_tls_t *tls)
{
    memset(watch, 0, sizeof *watch);
    watch->loop = loop;
    watch->cfg = cfg;
    watch->stats = stats;
    watch->sub = sub;
    watch->cmd = cmd;
    snprintf(watch->probe_channel, sizeof watch->probe_channel, "wsgate:probe:%d:%u", (int)getpid(), index);
    if (cfg->redis.is_sentinel) {
        wsg_redis_addr_t sentinel = {0};
        const wsg_redis_addr_t *a = &cfg->redis;
        snprintf(sentinel.host, sizeof sentinel.host, "%s", a->sentinels[0].host);
        sentinel.port = a->sentinels[0].port;
        bool is_own = a->sentinel_password[0] != '\0';
        snprintf(sentinel.username, sizeof sentinel.username, "%s",
                 is_own ? a->sentinel_username : a->username);
        snprintf(sentinel.password, sizeof sentinel.password, "%s",
                 is_own ? a->sentinel_password : a->password);
        wsg_redis_link_options_t opts = {
            .name = "wsgate-sentinel-watch",
            .connect_timeout_ms = cfg->redis_timeout_ms,
            .retry_min_ms = 100,
            .retry_max_ms = cfg->redis_retry_max_ms,
            .tls = tls,
            .is_auth_optional = !is_own,
            .tls_name = cfg->redis_tls_sni[0] != '\0' ? cfg->redis_tls_sni : NULL,
        };
        watch->sentinel_watch = wsg_redis_sub_new(loop, &sentinel, &opts, &sentinel_handler, watch);
        if (watch->sentinel_watch == NULL)
            return -ENOMEM;
    }
    uv_timer_init(loop, &watch->probe_timer);
    watch->probe_timer.data = watch;
    /* Twice per timeout, so that a probe that fails is noticed within about one and a half timeouts. */
    uint64_t every = cfg->redis_timeout_ms / 2 < 100 ? 100 : cfg->redis_timeout_ms / 2;
    uv_timer_start(&watch->probe_timer, on_probe_timer, every, every);
    return 0;
}

void wsg_redis_watch_stop(wsg_redis_watch_t *watch, unsigned *closing, void (*cb)(void *arg), void *arg)
{
    if (!uv_is_closing((uv_handle_t *)&watch->probe_timer))
        uv_close((uv_handle_t *)&watch->probe_timer, NULL);
    if (watch->sentinel_watch != NULL) {
        (*closing)++;
        wsg_redis_sub_close(watch->sentinel_watch, cb, arg);
        watch->sentinel_watch = NULL;
    }
}
