/* The channels of one loop: each Redis channel a client subscribes or publishes to, with its subscription
 * state, in a hash table by name. The router owns the table and everything in a channel's fields. */
#ifndef WSG_GATEWAY_CHANNELS_H
#define WSG_GATEWAY_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"
#include "stream_id.h"

/** Longest channel name: prefix, audience, identity and facility with their separators. */
#define WSG_CHANNEL_NAME_MAX 1024

typedef enum wsg_channel_state {
    WSG_CHANNEL_UNSUBSCRIBED,
    WSG_CHANNEL_SUBSCRIBING,
    WSG_CHANNEL_SUBSCRIBED,
    WSG_CHANNEL_UNSUBSCRIBING,
} wsg_channel_state_t;

struct wsg_member;

typedef struct wsg_channel {
    struct wsg_channel *hash_next;
    struct wsg_member *members; /* doubly linked through the members (see router.h) */
    uint32_t hash;
    uint32_t nmembers;
    uint32_t npublishers;
    uint64_t last_live_hash; /* the latest message relayed from Redis */
    uint64_t stored_hash;    /* the latest value read from its key */
    uint32_t barriers_sent;  /* re-SUBSCRIBEs sent as ordering barriers (see the GET path in router.c) */
    uint32_t barriers_done;  /* ... and confirmed */
    uint16_t name_len;
    uint8_t state; /* wsg_channel_state_t */
    bool is_barrier_in_flight;
    bool has_live, has_stored;
    bool needs_reread;       /* the subscription was lost: re-read the key once it is back */
    bool is_stream;          /* a stream channel: SUBSCRIBED means followed by the stream reader */
    uint32_t nv1;            /* members that speak wsgate.v1 */
    wsg_stream_id_t last_id; /* stream channels: the last entry the reader delivered */
    char name[];             /* NUL-terminated */
} wsg_channel_t;

typedef struct wsg_channels {
    wsg_channel_t **buckets;
    uint32_t nbuckets; /* a power of two */
    uint32_t count;
} wsg_channels_t;

/** Prepares an empty table. Returns 0 or -ENOMEM. */
int wsg_channels_init(wsg_channels_t *table);

/** Frees every channel and the table. */
void wsg_channels_dispose(wsg_channels_t *table);

/** The channel called `name` (`len` bytes), or NULL. */
wsg_channel_t *wsg_channels_find(const wsg_channels_t *table, const char *name, size_t len);

/** The channel called `name`, created (unsubscribed, zeroed) when missing. NULL when out of memory or the
 * name is longer than WSG_CHANNEL_NAME_MAX. */
wsg_channel_t *wsg_channels_get(wsg_channels_t *table, wsg_str_t name);

/** Removes `channel` from the table and frees it. */
void wsg_channels_remove(wsg_channels_t *table, wsg_channel_t *channel);

/** Calls `fn` for every channel; `fn` may remove the channel it is given. */
void wsg_channels_each(wsg_channels_t *table, void (*fn)(wsg_channel_t *channel, void *arg), void *arg);

#endif
