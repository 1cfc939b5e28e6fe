/* One Redis connection driven by the libuv loop: our own socket I/O (redis/transport.c: TCP, unix socket or
 * TLS), hiredis only as the RESP reader; AUTH/SELECT/CLIENT SETNAME, loss detection and reconnect with
 * backoff and jitter, Sentinel discovery. Replies are matched to commands in order; on a pub/sub link,
 * messages and (un)subscribe confirmations go to on_push. */
#ifndef WSG_REDIS_LINK_H
#define WSG_REDIS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "redis_url.h"
#include "transport.h"

struct redisReply;
typedef struct wsg_redis_link wsg_redis_link_t;

/** A command's reply (borrowed for the call), or NULL when the connection was lost before it came: the
 *  command may or may not have run. */
typedef void (*wsg_redis_reply_cb)(void *privdata, const struct redisReply *reply);

/** Events of a link; called from the loop, never from inside wsg_redis_link_* calls. */
typedef struct wsg_redis_link_handler {
    /** The connection is up and authenticated: commands may be sent. */
    void (*on_ready)(wsg_redis_link_t *link, void *arg);
    /** The connection failed or was lost (callbacks of commands in flight have been called with a NULL
     *  reply). `why` is a short-lived text; `retry_ms` when the next attempt starts. */
    void (*on_down)(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms);
    /** Optional: the replies of one batch of reads (at most read_bytes_per_event bytes) have all been handed
     *  to their callbacks; lets the owner act once per batch instead of once per reply. */
    void (*on_read_done)(wsg_redis_link_t *link, void *arg);
    /** Optional: asked after a batch whether reading should wait (the owner cannot pass on what it reads
     *  fast enough); returns how many ms to wait before asking again, 0 to read on. Replies wait in the
     *  socket and in Redis meanwhile. */
    uint64_t (*read_hold_ms)(wsg_redis_link_t *link, void *arg);
    /** Pub/sub links: a message (message, pmessage, smessage) or a confirmation (subscribe, unsubscribe and
     *  their p and s forms), an array reply borrowed for the call. */
    void (*on_push)(wsg_redis_link_t *link, void *arg, const struct redisReply *reply);
} wsg_redis_link_handler_t;

typedef struct wsg_redis_link_options {
    const char *name; /**< CLIENT SETNAME value and log name, e.g. "wsgate-sub" (borrowed, static) */
    bool select_db;   /**< send SELECT when the address names a database other than 0 */
    bool is_pubsub;   /**< replies may be pushes (see on_push) */
    uint64_t
        connect_timeout_ms; /**< connect (TLS included) + AUTH/SELECT must finish within this; 0 = 2000 */
    uint64_t retry_min_ms;  /**< backoff after the first quick retry; 0 = 100 */
    uint64_t retry_max_ms;  /**< backoff ceiling; 0 = 5000 */
    size_t read_bytes_per_event; /**< most bytes read in one batch before the loop turns; 0 = 256 KiB */
    bool is_auth_optional; /**< AUTH refused because the server has no password set is fine (a sentinel asked
                                with the master's credentials) */
    wsg_tls_t *tls;        /**< TLS settings (borrowed), NULL in the clear; used unless addr is unix */
    const char *tls_name;  /**< name the certificate must carry (borrowed); NULL = the host connected to */
    /** Optional (not with Sentinel): picks the server of each attempt, instead of `addr`'s host and port
     *  (Redis Cluster: any node, in turn). Writes a host of at most host_cap - 1 bytes and the port. */
    void (*next_target)(void *target_arg, char *host, size_t host_cap, uint16_t *port);
    void *target_arg;
} wsg_redis_link_options_t;

/** Allocates a link and starts connecting at once. Borrows `loop`, `handler`, `arg` and the options' pointers
 *  for its life; copies `addr` and `opts`. Returns NULL when out of memory. */
wsg_redis_link_t *wsg_redis_link_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                     const wsg_redis_link_options_t *opts,
                                     const wsg_redis_link_handler_t *handler, void *arg);

/** Sends `cmd`, a whole RESP command of `len` bytes (copied), and calls `cb` (may be NULL) with its reply.
 *  Returns 0, or -ENOTCONN unless ready (then `cb` is not called), or -ENOMEM. */
int wsg_redis_link_send(wsg_redis_link_t *link, const char *cmd, size_t len, wsg_redis_reply_cb cb,
                        void *privdata);

/** Pub/sub links: sends a (P/S)SUBSCRIBE or (P/S)UNSUBSCRIBE naming `confirmations` channels, whose
 *  confirmations go to on_push; `on_error` (may be NULL) gets an error reply or the loss. Returns as
 *  wsg_redis_link_send. */
int wsg_redis_link_send_pubsub(wsg_redis_link_t *link, const char *cmd, size_t len, unsigned confirmations,
                               wsg_redis_reply_cb on_error, void *privdata);

/** True between on_ready and the next on_down. */
bool wsg_redis_link_is_ready(const wsg_redis_link_t *link);

/** True when the last loss of a ready connection was the server closing it (end of stream, no error): Redis
 *  does that to a client past its client-output-buffer-limit, or on CLIENT KILL, or when it shuts down. */
bool wsg_redis_link_was_closed_by_server(const wsg_redis_link_t *link);

/** Drops the current connection (as if lost) and reconnects after the minimum backoff; used when a probe
 *  finds the connection wedged. No-op unless ready. Callbacks of commands in flight run with NULL from the
 *  loop, not from inside this call. */
void wsg_redis_link_reset(wsg_redis_link_t *link, const char *why);

/** Disconnects for good: a ready connection is closed once the replies in flight have arrived (their
 *  callbacks run), anything else is abandoned (callbacks run with NULL). `cb` runs once all handles are
 *  closed and the link is freed; no handler event follows this call. */
void wsg_redis_link_close(wsg_redis_link_t *link, void (*cb)(void *cb_arg), void *cb_arg);

#endif
