/* A blocking Redis connection for the `wsgate publish` command: ws4redis's RedisPublisher.publish_message. */
#ifndef WSG_REDIS_PUBLISHER_H
#define WSG_REDIS_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "redis_url.h"

/** How long one send or receive may stall once connected (SO_SNDTIMEO/SO_RCVTIMEO, per system call). */
#define WSG_PUBLISHER_IO_TIMEOUT_MS 10000

typedef struct wsg_publisher wsg_publisher_t;

/** Connects (TCP or unix socket) within `timeout_ms`, then sends AUTH [username] password when `addr` has a
 *  password and SELECT db when db != 0, waiting for each reply. Blocks; no event loop. Borrows `addr`.
 *  Returns the publisher (free it with wsg_publisher_free()), or NULL after writing a one-line reason
 *  ("connect to 127.0.0.1:6379: Connection refused", "AUTH: WRONGPASS ...") into `err` (capacity `cap`). */
wsg_publisher_t *wsg_publisher_connect(const wsg_redis_addr_t *addr, uint64_t timeout_ms, char *err,
                                       size_t cap);

/** PUBLISH `channel` `payload`, then SETEX `channel` `expire_s` `payload` when `expire_s` > 0, as ws4redis
 *  does. Binary-safe for both. Writes the PUBLISH reply (the number of subscribers that got the message) into
 *  `*receivers`. Borrows every buffer.
 *  Returns 0; -EPROTO when Redis answered with an error or an unexpected reply; -EIO when the connection
 *  failed (the publisher is then unusable). On error a one-line reason is written into `err` (capacity
 *  `cap`). */
int wsg_publisher_publish(wsg_publisher_t *pub, const char *channel, size_t channel_len, const void *payload,
                          size_t payload_len, uint64_t expire_s, long long *receivers, char *err, size_t cap);

/** Closes the connection and frees `pub` (NULL is ignored). */
void wsg_publisher_free(wsg_publisher_t *pub);

#endif
