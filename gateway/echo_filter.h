/* A client's own publications awaited back through its own subscription (ws4redis without "echo": a client
 * does not get back what it sent). Each is remembered by channel and payload hash; the first copy of it that
 * comes back from Redis is recognised and forgotten. Redis keeps one channel's messages in publish order, so
 * only the oldest entry of a channel can match. */
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

/** True when a message of `channel` with this hash and length is the oldest publication awaited on that
 *  channel; it is forgotten then. */
bool wsg_echo_filter_take(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len);

/** True while nothing is awaited. */
static inline bool wsg_echo_filter_is_empty(const wsg_echo_filter_t *f)
{
    return f->count == 0;
}

/** Forgets every awaited publication (their echoes may never come), keeping the memory. */
void wsg_echo_filter_clear(wsg_echo_filter_t *f);

/** Frees the ring. */
void wsg_echo_filter_dispose(wsg_echo_filter_t *f);

#endif
