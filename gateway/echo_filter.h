/* A client's own publications awaited back through its own subscription (ws4redis without "echo": a client
 * does not get back what it sent). Each is remembered by channel and payload hash; the first copy of it that
 * comes back from Redis is recognised and forgotten. Redis keeps one channel's messages in publish order, so
 * only the oldest entry of a channel can match.
 *
 * When a channel's subscription is lost, the publications awaited on it are marked lost: their echoes can
 * no longer come live (unless Redis ran the PUBLISH after the new subscription), but the last of them may be
 * found in the channel's key when it is read again. Publications noted after the loss are awaited as usual.
 */
#ifndef WSG_GATEWAY_ECHO_FILTER_H
#define WSG_GATEWAY_ECHO_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Entries remembered at most; older ones are forgotten first (their echo then reaches the client). */
#define WSG_ECHO_FILTER_MAX 4096

struct own_pub;

/** Embedded in a client; empty and allocation-free until its first publication. */
typedef struct wsg_echo_filter {
    struct own_pub *entries; /* ring */
    uint16_t head, count, cap;
} wsg_echo_filter_t;

/** Remembers a publication of `len` bytes with payload hash `hash` on `channel` (compared by address). */
void wsg_echo_filter_note(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len);

/** True when a live message of `channel` with this hash and length is the oldest publication awaited on that
 *  channel (the oldest marked lost, or the oldest noted since); it is forgotten then. */
bool wsg_echo_filter_take(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len);

/** True while nothing is awaited. */
static inline bool wsg_echo_filter_is_empty(const wsg_echo_filter_t *f)
{
    return f->count == 0;
}

/** Marks every publication awaited on `channel` as lost with its subscription. */
void wsg_echo_filter_lose(wsg_echo_filter_t *f, const void *channel);

/** True when a message of `channel` read from its key after the loss is one of the publications marked lost;
 *  that one is forgotten then. */
bool wsg_echo_filter_take_lost(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len);

/** Forgets the publications marked lost on `channel` (the key has been read again, or cannot be). */
void wsg_echo_filter_forget_lost(wsg_echo_filter_t *f, const void *channel);

/** Forgets every awaited publication (their echoes may never come), keeping the memory. */
void wsg_echo_filter_clear(wsg_echo_filter_t *f);

/** Frees the ring. */
void wsg_echo_filter_dispose(wsg_echo_filter_t *f);

#endif
