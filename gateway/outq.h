/* A connection's output: a queue of shared, already-framed messages written with one writev per loop turn.
 * The same wsg_msg_t sits in the queues of every subscriber; each queue holds a reference. */
#ifndef WSG_GATEWAY_OUTQ_H
#define WSG_GATEWAY_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "frame.h"
#include "msg.h"
#include "stats.h"

/** Embedded in each connection; empty and allocation-free while idle. */
typedef struct wsg_outq {
    wsg_msg_t **items;     /**< ring buffer of references */
    uint32_t head, count, cap;
    uint32_t in_flight;    /**< items [head, head+in_flight) belong to the running uv_write */
    size_t first_offset;   /**< bytes of items[head] already written */
    size_t bytes;          /**< unwritten bytes queued */
} wsg_outq_t;

/** Frames `msg` as a data message, once: text when the payload is valid UTF-8, binary otherwise. Later calls
 *  (for the next subscriber) do nothing. */
void wsg_msg_frame_data(wsg_msg_t *msg);

/** A new message (refcount 1) holding a whole control frame (`opcode` PING, PONG), or NULL when out of
 *  memory or `len` > 125. Borrows `payload`. */
wsg_msg_t *wsg_msg_new_control(enum wsg_opcode opcode, const uint8_t *payload, size_t len);

/** A new message holding a close frame with `code` and `reason` (cut to fit), or NULL when out of memory. */
wsg_msg_t *wsg_msg_new_close(uint16_t code, const char *reason);

/** A new message whose frame is `len` raw bytes (an HTTP response), or NULL. Borrows `bytes`. */
wsg_msg_t *wsg_msg_new_raw(const void *bytes, size_t len);

/** Appends a framed `msg`, taking a new reference. Returns 0 or -ENOMEM. */
int wsg_outq_push(wsg_outq_t *q, wsg_msg_t *msg);

/** Writes as much as the socket takes now (uv_try_write) and hands the rest to one uv_write with `req`,
 *  unless a write is already running. Counts written bytes and the latency of written Redis messages in
 *  `stats`. Returns 0, 1 when a uv_write was started (its callback must call wsg_outq_write_done), or a
 *  negative libuv error. */
int wsg_outq_flush(wsg_outq_t *q, uv_stream_t *stream, uv_write_t *req, uv_write_cb cb, wsg_stats_t *stats);

/** Drops the references of the items the finished uv_write carried (counted in `stats`). */
void wsg_outq_write_done(wsg_outq_t *q, wsg_stats_t *stats);

/** True while a uv_write is running. */
static inline bool wsg_outq_is_writing(const wsg_outq_t *q)
{
    return q->in_flight > 0;
}

/** Drops every item that has not started to go out (keeps a partly written one and those in flight), so
 *  that a close frame can follow promptly. Returns how many messages were dropped (a batch counts each). */
uint32_t wsg_outq_drop_unsent(wsg_outq_t *q);

/** Drops every reference and frees the ring (the connection is gone). */
void wsg_outq_dispose(wsg_outq_t *q);

#endif
