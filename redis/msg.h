/* A reference-counted message: payload bytes with room for a WebSocket frame header in front, so that a
 * message read from Redis is framed once, in place, and the same buffer is written to every subscriber. */
#ifndef WSG_REDIS_MSG_H
#define WSG_REDIS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Bytes reserved in front of every payload: the longest unmasked frame header. */
#define WSG_MSG_HEADROOM 10

typedef struct wsg_msg {
    uint32_t refcount;
    uint32_t channel_len;   /**< 0 when the message belongs to no channel */
    uint32_t nmsgs;         /**< messages the frame bytes carry: 1, or more for a batch of one channel's
                                 consecutive messages framed back to back (see the router) */
    size_t payload_len;
    const uint8_t *frame;   /**< NULL until framed; then the first byte of the frame (inside the headroom) */
    size_t frame_len;       /**< header + payload once framed */
    uint64_t recv_ns;       /**< uv_hrtime() when the message arrived from Redis (latency metrics); 0 otherwise */
    uint64_t hash;          /**< wsg_hash_bytes of the payload, set once by whoever first needs it (router) */
    const char *channel;    /**< NUL-terminated, inside `storage`, after the payload */
    uint8_t storage[];      /**< [WSG_MSG_HEADROOM][payload][channel\0] */
} wsg_msg_t;

/** The payload of `msg` (inside its storage). */
static inline uint8_t *wsg_msg_payload(wsg_msg_t *msg)
{
    return msg->storage + WSG_MSG_HEADROOM;
}

/** Allocates a message with refcount 1 holding a copy of `payload` (NULL: `payload_len` bytes of room left
 *  uninitialised for the caller to fill) and of `channel` (which may be NULL when `channel_len` is 0).
 *  Returns NULL when out of memory. Borrows both pointers. */
wsg_msg_t *wsg_msg_new(const void *payload, size_t payload_len, const char *channel, size_t channel_len);

/** Takes one more reference; returns `msg`. */
static inline wsg_msg_t *wsg_msg_ref(wsg_msg_t *msg)
{
    msg->refcount++;
    return msg;
}

/** Drops one reference; frees the message when it was the last. NULL is ignored. */
void wsg_msg_unref(wsg_msg_t *msg);

#endif
