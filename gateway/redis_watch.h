/* Watching one worker's Redis links for the logs and gauges: up and down, Redis cutting the subscriber off
 * for falling behind (its client-output-buffer-limit for pub/sub clients), and what redis/ reports of the
 * liveness probe (redis/probe.c) and of Sentinel's failover notice (redis/sentinel_watch.c), which it starts.
 */
#ifndef WSG_GATEWAY_REDIS_WATCH_H
#define WSG_GATEWAY_REDIS_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "config.h"
#include "log.h"
#include "probe.h"
#include "sentinel_watch.h"
#include "stats.h"
#include "stream_reader.h"
#include "subscriber.h"

typedef struct wsg_redis_watch {
    uv_loop_t *loop;
    const wsg_config_t *cfg;
    wsg_stats_t *stats;
    wsg_redis_sub_t *sub;                       /* borrowed */
    wsg_redis_cmd_t *cmd;                       /* borrowed */
    wsg_redis_streams_t *streams;               /* borrowed; NULL without stream channels */
    wsg_redis_sentinel_watch_t *sentinel_watch; /* with a redis-sentinel:// URL */
    wsg_redis_probe_t *probe;
    bool sub_was_ready, cmd_was_ready;
    bool is_overflow_suspected; /* Redis closed the subscriber while the command link stayed up */
    uint64_t sub_down_since_ms, cmd_down_since_ms;
    uint64_t cmd_losses; /* command-link losses so far */
    uint64_t cmd_losses_at_sub_loss;
    wsg_log_limit_t log_limit; /* "Redis still down" */
} wsg_redis_watch_t;

/** Starts watching `sub` and `cmd` (borrowed) of worker `index`: the probe timer and, with Sentinel, the
 *  +switch-master subscription, which also resets `streams` (borrowed, may be NULL). Returns 0 or -ENOMEM. */
int wsg_redis_watch_start(wsg_redis_watch_t *watch, uv_loop_t *loop, const wsg_config_t *cfg,
                          wsg_stats_t *stats, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd,
                          wsg_redis_streams_t *streams, unsigned index, wsg_tls_t *tls);

/* Link events, from the worker's wiring. */
void wsg_redis_watch_sub_up(wsg_redis_watch_t *watch);
void wsg_redis_watch_sub_down(wsg_redis_watch_t *watch, const char *why, uint64_t retry_ms);
void wsg_redis_watch_cmd_up(wsg_redis_watch_t *watch);
void wsg_redis_watch_cmd_down(wsg_redis_watch_t *watch, const char *why, uint64_t retry_ms);

/** A message on a channel no client uses: the probe's, or nothing of ours. Borrows the bytes. */
void wsg_redis_watch_message(wsg_redis_watch_t *watch, const char *channel, size_t channel_len,
                             const uint8_t *payload, size_t len);

/** True while the probe's PUBLISH waits in the command link (shutdown does not wait for it). */
static inline bool wsg_redis_watch_is_probe_queued(const wsg_redis_watch_t *watch)
{
    return watch->probe != NULL && wsg_redis_probe_is_queued(watch->probe);
}

/** Stops the probe and the Sentinel watch; `cb` runs (once per thing that closes, each counted in `*closing`)
 *  when they are gone. */
void wsg_redis_watch_stop(wsg_redis_watch_t *watch, unsigned *closing, void (*cb)(void *arg), void *arg);

#endif
