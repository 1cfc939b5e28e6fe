/* The Redis links' health for logs and gauges: up and down, subscriber overflows, and the reports of the
 * probe and of Sentinel's failover watch (both in redis/). */
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
    if (watch->probe != NULL)
        wsg_redis_probe_sub_up(watch->probe);
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

/* ---- what redis/ reports ---------------------------------------------------------------------------- */

static void on_probe_failed(void *arg, const char *role, uint64_t waited_ms, const char *action)
{
    wsg_redis_watch_t *watch = arg;
    WSG_STAT_ADD(watch->stats, redis_probe_failures, 1);
    WSG_WARN("redis_probe_failed", WSG_F_STR("role", role), WSG_F_UINT("waited_ms", waited_ms),
             WSG_F_STR("msg", action));
}

static const wsg_redis_probe_handler_t probe_handler = {.on_failed = on_probe_failed};

void wsg_redis_watch_message(wsg_redis_watch_t *watch, const char *channel, size_t channel_len,
                             const uint8_t *payload, size_t len)
{
    /* Otherwise a channel all of whose clients left while the message was on its way. */
    if (watch->probe != NULL)
        wsg_redis_probe_take(watch->probe, channel, channel_len, payload, len);
}

static void on_sentinel_up(void *arg)
{
    wsg_redis_watch_t *watch = arg;
    WSG_INFO("sentinel_watch_up", WSG_F_STR("master", watch->cfg->redis.master_name));
}

static void on_sentinel_switch(void *arg, const char *detail, size_t len)
{
    wsg_redis_watch_t *watch = arg;
    WSG_INFO("sentinel_switch_master", WSG_F_BYTES("detail", detail, len));
    if (watch->streams != NULL) /* the watch resets the subscriber and the command link itself */
        wsg_redis_streams_reset(watch->streams, "the sentinels named a new master");
}

static const wsg_redis_sentinel_watch_handler_t sentinel_handler = {.on_up = on_sentinel_up,
                                                                    .on_switch = on_sentinel_switch};

/* ---- lifecycle ---------------------------------------------------------------------------------------- */

int wsg_redis_watch_start(wsg_redis_watch_t *watch, uv_loop_t *loop, const wsg_config_t *cfg,
                          wsg_stats_t *stats, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd,
                          wsg_redis_streams_t *streams, unsigned index, wsg_tls_t *tls)
{
    memset(watch, 0, sizeof *watch);
    watch->streams = streams;
    watch->loop = loop;
    watch->cfg = cfg;
    watch->stats = stats;
    watch->sub = sub;
    watch->cmd = cmd;
    char channel[96];
    snprintf(channel, sizeof channel, "wsgate:probe:%d:%u", (int)getpid(), index);
    watch->probe =
        wsg_redis_probe_start(loop, sub, cmd, channel, cfg->redis_timeout_ms, &probe_handler, watch);
    if (watch->probe == NULL)
        return -ENOMEM;
    if (cfg->redis.is_sentinel) {
        wsg_redis_link_options_t opts = {
            .connect_timeout_ms = cfg->redis_timeout_ms,
            .retry_min_ms = 100,
            .retry_max_ms = cfg->redis_retry_max_ms,
            .tls = tls,
            .tls_name = cfg->redis_tls_sni[0] != '\0' ? cfg->redis_tls_sni : NULL,
        };
        watch->sentinel_watch =
            wsg_redis_sentinel_watch_new(loop, &cfg->redis, &opts, sub, cmd, &sentinel_handler, watch);
        if (watch->sentinel_watch == NULL)
            return -ENOMEM;
    }
    return 0;
}

void wsg_redis_watch_stop(wsg_redis_watch_t *watch, unsigned *closing, void (*cb)(void *arg), void *arg)
{
    if (watch->probe != NULL) {
        wsg_redis_probe_stop(watch->probe);
        watch->probe = NULL;
    }
    if (watch->sentinel_watch != NULL) {
        (*closing)++;
        wsg_redis_sentinel_watch_close(watch->sentinel_watch, cb, arg);
        watch->sentinel_watch = NULL;
    }
}
