/* Outbound messages: reference-counted buffers holding bytes ready for the socket (a framed data message, a
 * run of one channel's messages framed back to back, a control frame or an HTTP response). A message is
 * framed once and the same buffer sits in the output of every connection that sends it. */
#ifndef WSG_GATEWAY_MSG_H
#define WSG_GATEWAY_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "str.h"
#include "stream_id.h"

/** What a message is to the output policy (see outq.h). */
typedef enum wsg_msg_kind {
    WSG_MSG_DATA, /**< data frames (Redis messages, heartbeats, notices): subject to the slow-consumer policy
                   */
    WSG_MSG_CONTROL, /**< a control frame (ping, pong, close): never dropped */
    WSG_MSG_HTTP,    /**< an HTTP response before the upgrade: never dropped */
} wsg_msg_kind_t;

typedef struct wsg_msg {
    uint32_t refcount;
    uint32_t nmsgs; /**< messages the bytes carry: 1, or n for a run of n messages framed back to back */
    const uint8_t *frame; /**< the bytes to write (inside the message's own allocation, or borrowed) */
    size_t frame_len;
    size_t payload_len; /**< of a single data message: its payload is the last payload_len bytes of frame */
    uint64_t recv_ns;   /**< uv_hrtime() when it arrived from Redis (latency metrics); 0 otherwise */
    uint64_t hash;      /**< wsg_hash_bytes of the payload of a Redis message (echo filter); 0 otherwise */
    uint8_t kind;       /**< wsg_msg_kind_t */
    bool has_id;        /**< a stream entry: `id` is its id */
    wsg_stream_id_t id;
    struct wsg_msg *alt; /**< owned: the same message as a wsgate.v1 envelope, made once when first needed */
} wsg_msg_t;

/** A data message (refcount 1) framed from a copy of `payload`: text when it is valid UTF-8, binary
 *  otherwise. NULL when out of memory. Borrows `payload`. */
wsg_msg_t *wsg_msg_new_data(const void *payload, size_t len);

/** A data message (refcount 1) whose text frame is the wsgate.v1 envelope of `payload` on the channel
 * labelled `label`: {"ch":..,"id":..,"data":..} (see protocol/envelope.h), `id` NULL for a pub/sub message.
 * NULL when out of memory. Borrows all. */
wsg_msg_t *wsg_msg_new_envelope(wsg_str_t label, const wsg_stream_id_t *id, const void *payload, size_t len);

/** A data message holding a wsgate.v1 gap notice (see wsg_envelope_gap). NULL when out of memory. */
wsg_msg_t *wsg_msg_new_gap(wsg_str_t label, wsg_stream_id_t after, const char *reason);

/** One data message holding the frames of `n` >= 1 framed data messages back to back (a run), with `nmsgs`
 *  n and the receive time of the first. NULL when out of memory. Borrows the messages. */
wsg_msg_t *wsg_msg_new_run(wsg_msg_t *const *msgs, uint32_t n);

/** A control frame (`opcode` PING or PONG, payload of at most 125 bytes) in a message of its own, for frames
 *  made once and shared (the worker's PING). NULL when out of memory or `len` > 125. Borrows `payload`. */
wsg_msg_t *wsg_msg_new_control(enum wsg_opcode opcode, const uint8_t *payload, size_t len);

/** An HTTP response: `head` then `body` (may be NULL when `body_len` is 0). NULL when out of memory. Borrows
 *  both. */
wsg_msg_t *wsg_msg_new_http(const void *head, size_t head_len, const void *body, size_t body_len);

/** Sets up a message header over `len` bytes at `frame` that its owner keeps (a connection's pong or close
 *  frame): the refcount starts at 1, held by the owner, so the queues' references never free it. */
void wsg_msg_init_borrowed(wsg_msg_t *msg, wsg_msg_kind_t kind, const uint8_t *frame, size_t len);

/** The payload of a single data message (inside its frame). */
static inline const uint8_t *wsg_msg_payload(const wsg_msg_t *msg)
{
    return msg->frame + msg->frame_len - msg->payload_len;
}

/** Takes one more reference; returns `msg`. */
static inline wsg_msg_t *wsg_msg_ref(wsg_msg_t *msg)
{
    msg->refcount++;
    return msg;
}

/** Drops one reference; frees the message (and its `alt`) when it was the last. NULL is ignored. */
void wsg_msg_unref(wsg_msg_t *msg);

#endif
