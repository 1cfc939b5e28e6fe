/* The liveness probe of one loop's Redis connections. A Redis that stops answering without closing the
 * connection (a frozen process, a black-holed network, a proxy that lost its server) would leave replies
 * awaited forever: every half timeout a numbered PUBLISH goes to a channel only this loop subscribes; the
 * command side must answer it and the subscriber deliver it within the timeout, or that side is reset. */
#ifndef WSG_REDIS_PROBE_H
#define WSG_REDIS_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "commands.h"
#include "subscriber.h"

typedef struct wsg_redis_probe wsg_redis_probe_t;

typedef struct wsg_redis_probe_handler {
    /** The probe failed on `role` ("commands": not answered, "subscriber": not delivered) after `waited_ms`;
     *  that side has been reset (`action` says how, for a log line). */
    void (*on_failed)(void *arg, const char *role, uint64_t waited_ms, const char *action);
} wsg_redis_probe_handler_t;

/** Starts probing `sub` and `cmd` (borrowed until stopped) on `channel` (copied; it must be this loop's
 *  alone) within `timeout_ms`. Borrows `loop`, `handler` and `arg`. Returns NULL when out of memory. */
wsg_redis_probe_t *wsg_redis_probe_start(uv_loop_t *loop, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd,
                                         const char *channel, uint64_t timeout_ms,
                                         const wsg_redis_probe_handler_t *handler, void *arg);

/** The subscriber is (again) ready: the probe's channel is subscribed on it. */
void wsg_redis_probe_sub_up(wsg_redis_probe_t *probe);

/** A message on a channel no client uses: true when it was the probe's (then it is taken). Borrows the bytes.
 */
bool wsg_redis_probe_take(wsg_redis_probe_t *probe, const char *channel, size_t channel_len,
                          const uint8_t *payload, size_t len);

/** True while the probe's PUBLISH waits in the command side (a shutdown does not wait for it). */
bool wsg_redis_probe_is_queued(const wsg_redis_probe_t *probe);

/** Sends no more probes (a shutdown under way); the one out is still awaited. */
void wsg_redis_probe_pause(wsg_redis_probe_t *probe);

/** Stops probing; the memory goes once its timer is closed (and its PUBLISH, if out, answered). */
void wsg_redis_probe_stop(wsg_redis_probe_t *probe);

#endif
