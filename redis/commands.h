/* The command link of one event loop: PUBLISH + SETEX for client messages and GET for persisted messages,
 * on a connection of its own (hiredis 0.14 misroutes replies of commands sent on a subscribed context).
 * Commands made while Redis is unreachable wait in a bounded backlog and go out, in order, on reconnect;
 * commands whose replies were lost with the connection are sent again. */
#ifndef WSG_REDIS_COMMANDS_H
#define WSG_REDIS_COMMANDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "link.h"

typedef struct wsg_redis_cmd wsg_redis_cmd_t;

/** Completion of a publish: `status` 0 when Redis acknowledged every command, -EIO when Redis answered with
 *  an error (`err` then holds its text, borrowed for the call), -ECANCELED when the link closed first. */
typedef void (*wsg_redis_done_cb)(void *arg, int status, const char *err);

/** Completion of a GET: `status` as above; on success `value` is the value (NULL for a missing key),
 *  borrowed for the duration of the call only. */
typedef void (*wsg_redis_get_cb)(void *arg, int status, const char *value, size_t len);

struct redisReply;

/** Completion of a command sent with wsg_redis_cmd_argv: `status` 0 with its `reply` (borrowed for the call),
 *  -EIO with the error `reply`, -ECANCELED (link closed; `reply` NULL) or -ECONNRESET (a command sent once
 *  whose connection was lost before its reply: it may or may not have run; `reply` NULL). */
typedef void (*wsg_redis_reply_done_cb)(void *arg, int status, const struct redisReply *reply);

typedef struct wsg_redis_cmd_handler {
    void (*on_ready)(void *arg);
    void (*on_down)(void *arg, const char *why, uint64_t retry_ms);
} wsg_redis_cmd_handler_t;

/** Allocates the command link and starts connecting. `max_backlog` bounds the commands waiting while Redis
 *  is unreachable. Borrows `loop`, `handler`, `arg`; copies `addr`, `opts`. NULL when out of memory. */
wsg_redis_cmd_t *wsg_redis_cmd_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                   const wsg_redis_link_options_t *opts,
                                   const wsg_redis_cmd_handler_t *handler, void *arg, size_t max_backlog);

struct wsg_redis_cluster;

/** The command side for Redis Cluster: requests go to the master of their key's slot through `cluster`
 *  (borrowed; it must stay open until this is closed, and is shared with the subscriber). With `is_sharded`
 *  client messages are published with SPUBLISH. Otherwise as wsg_redis_cmd_new. */
wsg_redis_cmd_t *wsg_redis_cmd_new_cluster(uv_loop_t *loop, struct wsg_redis_cluster *cluster,
                                           bool is_sharded, const wsg_redis_cmd_handler_t *handler, void *arg,
                                           size_t max_backlog);

/** ws4redis's publish: PUBLISH `channel` `payload`, then SETEX `channel` `expire_s` `payload` when
 *  `expire_s` > 0. `cb` runs once, after the last reply (never synchronously). Borrows the bytes.
 *  Returns 0, -ENOBUFS when the backlog is full (Redis unreachable for long), -ENOMEM, or -ECANCELED when
 *  the link is closing. */
int wsg_redis_cmd_publish(wsg_redis_cmd_t *cmd, const char *channel, size_t channel_len, const void *payload,
                          size_t payload_len, uint32_t expire_s, wsg_redis_done_cb cb, void *arg);

/** GET `key`; `cb` runs once (never synchronously). Returns as wsg_redis_cmd_publish. */
int wsg_redis_cmd_get(wsg_redis_cmd_t *cmd, const char *key, size_t key_len, wsg_redis_get_cb cb, void *arg);

/** Any command, as `argc` arguments (copied); in a cluster it goes to the master of `argv[key_index]`'s slot
 *  (`key_index` -1: any node). A command lost with its connection is sent again on the next, unless
 *  `is_once` (for commands that must not run twice, such as XADD): then it completes with -ECONNRESET.
 *  `cb` runs once, never synchronously. Returns as wsg_redis_cmd_publish. */
int wsg_redis_cmd_argv(wsg_redis_cmd_t *cmd, int argc, const char **argv, const size_t *argvlen,
                       int key_index, bool is_once, wsg_redis_reply_done_cb cb, void *arg);

/** Commands whose completion has not run yet (sent or waiting). */
size_t wsg_redis_cmd_pending(const wsg_redis_cmd_t *cmd);

/** True while connected and authenticated. */
bool wsg_redis_cmd_is_ready(const wsg_redis_cmd_t *cmd);

/** Drops the connection and reconnects (see wsg_redis_link_reset); commands in flight are sent again. */
void wsg_redis_cmd_reset(wsg_redis_cmd_t *cmd, const char *why);

/** Closes the link: waiting commands complete with -ECANCELED at once, commands in flight when their reply
 *  arrives (bounded by the connect timeout). `cb` runs when everything is freed. */
void wsg_redis_cmd_close(wsg_redis_cmd_t *cmd, void (*cb)(void *cb_arg), void *cb_arg);

#endif
