/* A blocking Redis connection for the `wsgate publish` command: ws4redis's RedisPublisher.publish_message,
 * over the gateway's own link (TCP, unix socket or TLS; Sentinel) run on a private loop. */
#ifndef WSG_REDIS_PUBLISHER_H
#define WSG_REDIS_PUBLISHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"
#include "transport.h"

typedef struct wsg_publisher wsg_publisher_t;

/** Connects within `timeout_ms` (name lookup, TLS handshake, AUTH and SELECT included; with a Sentinel URL,
 *  the master is asked for first; with a Cluster URL, the map, and each command then goes to its channel's
 *  master, as SPUBLISH when `is_sharded`), using `tls_opts` and `tls_name` (the name the certificate must
 * carry, NULL = the host) for a rediss URL. Blocks. Borrows everything. Returns the publisher (free it with
 *  wsg_publisher_free()), or NULL after writing a one-line reason ("connect to 127.0.0.1:6379: connection
 *  refused", "setup failed: AUTH: WRONGPASS ...") into `err` (capacity `cap`). */
wsg_publisher_t *wsg_publisher_connect(const wsg_redis_addr_t *addr, const wsg_tls_options_t *tls_opts,
                                       const char *tls_name, bool is_sharded, uint64_t timeout_ms, char *err,
                                       size_t cap);

/** PUBLISH `channel` `payload`, then SETEX `channel` `expire_s` `payload` when `expire_s` > 0, as ws4redis
 *  does. Binary-safe for both. Writes the PUBLISH reply (the number of subscribers that got the message) into
 *  `*receivers`. Borrows every buffer.
 *  Returns 0; -EPROTO when Redis answered with an error or an unexpected reply; -EIO when the connection
 *  failed (the publisher is then unusable). On error a one-line reason is written into `err` (capacity
 *  `cap`). */
int wsg_publisher_publish(wsg_publisher_t *pub, const char *channel, size_t channel_len, const void *payload,
                          size_t payload_len, uint64_t expire_s, long long *receivers, char *err, size_t cap);

/** A stream channel's message: XADD `stream` [MAXLEN ~ `maxlen`] * payload `payload` (`maxlen` 0: no
 *  trimming). Writes the new entry's id into `id` (capacity `id_cap`). Returns as wsg_publisher_publish. */
int wsg_publisher_xadd(wsg_publisher_t *pub, const char *stream, size_t stream_len, const void *payload,
                       size_t payload_len, uint64_t maxlen, char *id, size_t id_cap, char *err, size_t cap);

/** Closes the connection and frees `pub` (NULL is ignored). */
void wsg_publisher_free(wsg_publisher_t *pub);

#endif
