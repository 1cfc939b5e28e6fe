/* Shared by conn.c (lifecycle) and conn_frames.c (what the client sends); nothing else includes it. */
#ifndef WSG_GATEWAY_CONN_INTERNAL_H
#define WSG_GATEWAY_CONN_INTERNAL_H

#include <stdint.h>
#include <uv.h>

#include "conn.h"

/* conn.c */

/** One more reference: a Redis command in flight holds the connection until its completion. */
void conn_ref(wsg_conn_t *conn);

/** Drops a reference; the memory goes with the last one. */
void conn_unref(wsg_conn_t *conn);

/** Input from an open client proves it alive: it moves to the young end of the idle order. */
void conn_touch(wsg_conn_t *conn);

/** Stops deliveries (no data frame may follow a close frame), logs the close with `code` and moves to
 *  closing. Publish targets stay: what the client sends until its own close frame is still published. */
void conn_begin_closing(wsg_conn_t *conn, uint16_t code, const char *why);

/** Drops TCP (after our FIN and the peer's) once everything queued is written. */
void conn_close_after_flush(wsg_conn_t *conn);

/* conn_frames.c */

/** The read callback of an open or closing connection. */
void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/** Feeds inbound bytes to the frame reader; a protocol error fails the connection. */
void conn_feed_frames(wsg_conn_t *conn, const uint8_t *data, size_t len);

/** Reading follows the client's publishes in flight: past the bound it pauses until half are done. */
void conn_update_reading(wsg_conn_t *conn);

#endif
