/* The output of one connection: the one sink everything a client is sent goes through (HTTP responses, data,
 * heartbeats, pings, pongs, close), its write path and its backpressure policy.
 *
 * Messages are queued by reference (the same wsg_msg_t sits in every subscriber's queue) and written at the
 * end of the loop turn: as much as the socket takes at once (uv_try_write), the rest with one uv_write.
 *
 * Backpressure is judged on what the kernel refused: "pending" is the bytes queued that the kernel has not
 * taken (not yet written, or the unsent part of the running uv_write). The policy, in the manner of Redis's
 * client-output-buffer-limit for pub/sub clients, lives in gateway/outq_policy.c (judge()):
 *  - pending above the hard limit at any moment, or above the soft limit without a break for the grace
 *    period: the client is a slow consumer. In close mode the output drops its unsent data messages and
 *    the owner closes the connection (1008); in drop mode each data message that would go over is skipped
 *    instead, whole, and counted.
 *  - a data message larger than the soft limit goes only to a client whose output is drained; while it is
 *    written, only what is queued behind it counts. A client with output pending skips it (counted).
 *  - output waiting with no byte taken by the kernel for the stall time (a client that never reads): the
 *    owner closes the connection as stale, whatever the client sends meanwhile.
 *  - while most clients are behind (wsg_outq_ctx_is_congested: Redis reads wait then), the soft limit does
 *    not single out one that still reads.
 * Control frames and HTTP responses are never dropped; pongs coalesce (at most one waits to be written). */
#ifndef WSG_GATEWAY_OUTQ_H
#define WSG_GATEWAY_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "log.h"
#include "msg.h"
#include "msgq.h"
#include "stats.h"

typedef struct wsg_outq wsg_outq_t;

/** Why the policy gave up on a client. */
typedef enum wsg_outq_verdict {
    WSG_OUTQ_FINE = 0,
    WSG_OUTQ_SLOW_HARD, /**< pending above the hard limit */
    WSG_OUTQ_SLOW_SOFT, /**< pending above the soft limit for the whole grace period */
    WSG_OUTQ_STALLED,   /**< output waiting and nothing taken by the kernel for the stall time */
} wsg_outq_verdict_t;

/** What wsg_outq_send did with a message. */
typedef enum wsg_outq_result {
    WSG_OUTQ_QUEUED = 0,
    WSG_OUTQ_DROPPED, /**< drop mode: over a limit, skipped and counted */
    WSG_OUTQ_SKIPPED, /**< larger than the soft limit while output was pending: skipped and counted */
    WSG_OUTQ_REFUSED, /**< the output is closed, given up on, or out of memory */
} wsg_outq_result_t;

/** The limits of the policy (see the top of this file). */
typedef struct wsg_outq_policy {
    size_t soft;       /**< WSGATE_MAX_PENDING */
    size_t hard;       /**< WSGATE_MAX_PENDING_HARD (>= soft) */
    uint64_t grace_ms; /**< WSGATE_SLOW_GRACE */
    uint64_t stall_ms; /**< WSGATE_IDLE_TIMEOUT; 0 = never */
    bool is_drop;      /**< WSGATE_SLOW_CONSUMER=drop */
} wsg_outq_policy_t;

/** What an output tells its owner (the connection). Called from wsg_outq_flush_all or a write callback,
 *  never from inside wsg_outq_send, wsg_outq_pong or wsg_outq_close. */
typedef struct wsg_outq_owner {
    /** The policy gave up on the client: the output has already dropped its unsent messages (counted) and
     *  logged why; it accepts only a close frame now. The owner closes the connection. */
    void (*on_verdict)(wsg_outq_t *q, wsg_outq_verdict_t verdict);
    /** Writing failed (libuv error `err`, or -ENOMEM): the owner drops the connection. */
    void (*on_error)(wsg_outq_t *q, int err);
    /** Everything queued was written, after wsg_outq_notify_drained. */
    void (*on_drained)(wsg_outq_t *q);
} wsg_outq_owner_t;

/** What every output of one loop shares; owned by the worker. */
typedef struct wsg_outq_ctx {
    uv_loop_t *loop;
    wsg_outq_policy_t policy;
    const wsg_outq_owner_t *owner;
    wsg_stats_t *stats;
    wsg_outq_t *flush_head;      /* outputs with something to do this loop turn (singly linked) */
    wsg_outq_t *backlog_head;    /* outputs holding bytes the kernel refused (checked by wsg_outq_sweep) */
    uv_write_t *spare_reqs;      /* write requests kept for reuse (linked through ->data) */
    struct outq_ctl *spare_ctls; /* control-frame blocks kept for reuse */
    unsigned nspare_reqs, nspare_ctls;
    uint32_t noutputs;    /* outputs initialised and not yet disposed */
    uint32_t nbacklogged; /* ... of which hold bytes the kernel refused at their last flush */
    uint32_t majority_ms; /* loop time most outputs were last seen behind (wsg_outq_ctx_is_congested) */
    bool has_majority;    /* ... ever */
    uint32_t nstuck; /* ... of which took nothing for twice the grace, or are closing (at the last sweep) */
    wsg_log_limit_t drop_log_limit;
    wsg_log_limit_t skip_log_limit;
} wsg_outq_ctx_t;

struct outq_ctl;

/** Embedded in each connection; allocation-free while idle (no write request, no control frames). */
struct wsg_outq {
    wsg_outq_ctx_t *ctx;
    uv_stream_t *stream;
    wsg_msgq_t ring;      /* what is queued, in order */
    struct outq_ctl *ctl; /* pong and close frames, only while one is queued */
    uv_write_t *req;      /* the running write, only while one runs */
    wsg_outq_t *flush_next;
    wsg_outq_t *backlog_prev, *backlog_next;
    uint64_t id;              /* the connection's id, for log lines */
    size_t queued;            /* bytes of the items not yet written (those of the running write included) */
    size_t in_flight_bytes;   /* bytes handed to the running uv_write */
    size_t verdict_pending;   /* the pending bytes the verdict was reached on (for its log line) */
    uint32_t in_flight;       /* items [0, in_flight) belong to the running uv_write */
    uint32_t first_offset;    /* bytes of the first item already written */
    uint32_t over_soft_since; /* loop time (ms, wrapping; 0 = not over) pending was first seen above soft */
    uint32_t progress_ms;     /* loop time the kernel last took bytes, or output started waiting */
    uint32_t seen_wqs;        /* the running write's unsent bytes at the last look */
    uint32_t seen_kernel;     /* bytes in the kernel's send queue at the last sweep (TIOCOUTQ) */
    int16_t error;            /* a write error to report at the next flush */
    uint8_t verdict;          /* wsg_outq_verdict_t to carry out at the next flush */
    bool is_flush_queued : 1;
    bool is_backlogged : 1;
    bool has_oversize : 1; /* a message larger than the soft limit is queued */
    bool is_closed : 1;    /* a close frame is queued: nothing follows it */
    bool is_given_up : 1;  /* a verdict was carried out: only the close frame may follow */
    bool is_stopped : 1;   /* the connection is being dropped: nothing more is written */
    bool wants_drained : 1;
};

/** True when most outputs hold bytes the kernel refused at their last flush while it still takes some: the
 * clients as a whole are falling behind (not a few slow ones, and not clients that stopped reading, which the
 * output policy deals with), and a source that can wait (Redis) should. Once that is so, a quarter of them
 * behind is enough for twice the grace more (clients that read in turn leave and join the backlog in
 * waves). */
bool wsg_outq_ctx_is_congested(wsg_outq_ctx_t *ctx);

/** Prepares the shared state. Borrows `loop`, `owner` and `stats`; copies `policy`. */
void wsg_outq_ctx_init(wsg_outq_ctx_t *ctx, uv_loop_t *loop, const wsg_outq_policy_t *policy,
                       const wsg_outq_owner_t *owner, wsg_stats_t *stats);

/** Frees the spares; every output must be disposed of first. */
void wsg_outq_ctx_dispose(wsg_outq_ctx_t *ctx);

/** Prepares an embedded output writing to `stream` (borrowed; it must outlive the output). */
void wsg_outq_init(wsg_outq_t *q, wsg_outq_ctx_t *ctx, uv_stream_t *stream, uint64_t id);

/** The one way in for a message (data, a shared ping, an HTTP response): applies the policy to data
 *  messages, takes a reference when it queues `msg` (borrowed), counts it, and schedules the write for the
 *  end of the loop turn. When a data message would take pending over a limit, the queue is first offered to
 *  the socket, so only bytes the kernel refused count. Never calls the owner. */
wsg_outq_result_t wsg_outq_send(wsg_outq_t *q, wsg_msg_t *msg);

/** Answers a ping: queues a pong with `payload` (at most 125 bytes, borrowed) ahead of the data not yet
 *  started, or rewrites the pong that still waits (the latest ping is the one answered). Never allocates per
 *  pong. */
void wsg_outq_pong(wsg_outq_t *q, const uint8_t *payload, size_t len);

/** Queues a close frame with `code` and `reason` (static text, cut to fit) after everything queued; nothing
 *  is accepted after it. Idempotent. */
void wsg_outq_close(wsg_outq_t *q, uint16_t code, const char *reason);

/** Drops the data messages that have not started to go out, so that a close frame can follow promptly.
 *  Returns how many messages were dropped (a run counts each). */
uint32_t wsg_outq_drop_unsent(wsg_outq_t *q);

/** Asks for on_drained once everything queued has been written (at the next flush if it already is). */
void wsg_outq_notify_drained(wsg_outq_t *q);

/** Bytes queued that the kernel has not taken. */
size_t wsg_outq_pending(const wsg_outq_t *q);

/** Reports `err` (e.g. -ENOMEM) through on_error at the next flush: the connection cannot be served. */
void wsg_outq_fail(wsg_outq_t *q, int err);

/** The connection is being dropped: nothing more is written or judged. Idempotent. */
void wsg_outq_stop(wsg_outq_t *q);

/** Drops every reference and gives back what the output holds. Call once the stream is closed (its write
 *  callbacks have run). */
void wsg_outq_dispose(wsg_outq_t *q);

/** Writes every output scheduled this loop turn and carries out verdicts; call from prepare/check. */
void wsg_outq_flush_all(wsg_outq_ctx_t *ctx);

/** Judges the outputs holding bytes the kernel refused, so that a stalled client is cut even when no more
 *  traffic comes; call at least every grace/4. */
void wsg_outq_sweep(wsg_outq_ctx_t *ctx);

#endif
