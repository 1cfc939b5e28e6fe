/* One client connection: handshake -> open -> closing -> closed, one function per transition. */
#ifndef WSG_GATEWAY_CONN_H
#define WSG_GATEWAY_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "msg.h"
#include "outq.h"
#include "ws_reader.h"

typedef struct wsg_worker wsg_worker_t;
typedef struct wsg_channel wsg_channel_t;
typedef struct wsg_member wsg_member_t;
typedef struct wsg_http_request wsg_http_request_t;

typedef enum wsg_conn_state {
    WSG_CONN_HANDSHAKE, /**< reading the HTTP upgrade request */
    WSG_CONN_OPEN,      /**< upgraded: frames flow both ways */
    WSG_CONN_CLOSING,   /**< a close frame or an HTTP error was queued; waiting for the peer or the flush */
    WSG_CONN_CLOSED,    /**< uv_close called; memory goes when the last reference does */
} wsg_conn_state_t;

/** A publication of this connection that will come back through its own subscription (echo filter). */
typedef struct wsg_own_pub {
    const wsg_channel_t *channel;
    uint64_t hash;
    size_t len;
} wsg_own_pub_t;

typedef struct wsg_conn {
    uv_tcp_t tcp;            /* first: the handle's address is the connection's */
    uv_write_t write_req;    /* the one write in flight */
    wsg_worker_t *worker;
    struct wsg_conn *prev, *next; /* in the worker's list for `state` */
    struct wsg_conn *flush_next;  /* in the worker's list of connections with output or work pending */
    uint64_t id;
    uint64_t since_ms;       /* when the current state began (lists are ordered by it) */
    uint64_t opened_ms;
    wsg_http_request_t *http; /* only during the handshake */
    struct wsg_auth_request *auth; /* the authorization callback in flight, if any */
    wsg_ws_reader_t reader;
    wsg_outq_t out;
    wsg_member_t *subs;      /* one per subscribed channel, in ws4redis order */
    wsg_channel_t **pubs;    /* channels this connection publishes to */
    wsg_msg_t **held;        /* live messages held back until every persisted message was sent */
    wsg_own_pub_t *own;      /* own publications awaited back (ring) */
    uint32_t held_count, held_cap;
    uint16_t own_head, own_count, own_cap;
    uint8_t nsubs, npubs;
    uint16_t gets_pending;   /* persisted-message GETs not answered yet */
    uint32_t publishes_pending;
    uint32_t publish_tokens_milli; /* token bucket of WSGATE_PUBLISH_RATE, in thousandths of a message */
    uint64_t publish_refill_ms;
    uint32_t refcount;       /* the socket's + one per Redis callback in flight */
    uint16_t close_code;     /* the code we sent (or 1006 when dropped) */
    uint16_t peer_close_code;
    uint8_t state;           /* wsg_conn_state_t */
    bool is_flush_queued : 1;
    bool is_echo : 1;
    bool is_reading : 1;
    bool peer_closed : 1;          /* the peer's close frame arrived */
    bool close_reply_deferred : 1; /* answer the peer's close once publishes_pending reaches 0 */
    bool close_after_flush : 1;    /* drop TCP once the queue is written (HTTP errors, close replies) */
    bool is_slow : 1;              /* output cap hit: close 1008 at the next flush */
    bool is_lingering : 1;         /* shut down our side; draining input until EOF */
    bool is_close_logged : 1;
    bool has_slot : 1;             /* holds one of the WSGATE_MAX_CONNECTIONS slots */
} wsg_conn_t;

/** Takes over the accepted socket `fd` (closed on failure) and starts its handshake. Returns 0 or a libuv
 *  error. */
int wsg_conn_accept_fd(wsg_worker_t *worker, int fd);

/** Queues a framed `msg` (takes a new reference) for the client and schedules a flush this loop turn.
 *  Never closes the connection synchronously: past the output cap the connection is marked slow and closed
 *  at the flush. No-op unless open. */
void wsg_conn_send(wsg_conn_t *conn, wsg_msg_t *msg);

/** Delivers a channel message to a subscriber: applies the echo filter and holds it back while persisted
 *  messages are still being read. `msg` must be framed and its `hash` set; borrowed. */
void wsg_conn_deliver(wsg_conn_t *conn, const wsg_member_t *member, wsg_msg_t *msg);

/** Delivers `n` consecutive messages of one channel (borrowed, framed, hashed). `batch` (may be NULL) holds
 *  the same frames back to back and is queued as one entry when the connection takes every message as it
 *  is; a connection that filters its own echoes or holds messages back gets them one by one. */
void wsg_conn_deliver_run(wsg_conn_t *conn, const wsg_member_t *member, wsg_msg_t *batch, wsg_msg_t *const *msgs,
                          uint32_t n);

/** Starts the closing handshake with `code` and `reason` (static text): unsubscribes, queues the close frame
 *  and waits for the peer's. Idempotent. */
void wsg_conn_close(wsg_conn_t *conn, uint16_t code, const char *reason);

/** Drops the connection at once (socket error, timeout, shutdown). Idempotent. */
void wsg_conn_abort(wsg_conn_t *conn, const char *why);

/** Runs the work deferred to the end of the loop turn: slow-consumer closes and the write. */
void wsg_conn_flush(wsg_conn_t *conn);

/** Issues the persisted-message GET of subscription `index` (its channel is now subscribed in Redis). */
void wsg_conn_fetch_persisted(wsg_conn_t *conn, uint8_t index);

/** The persisted message of subscription `index` (borrowed; NULL when none) may now be sent: it goes out
 *  unless a held live message already is it, and once every subscription is done the held messages follow. */
void wsg_conn_persisted_ready(wsg_conn_t *conn, uint8_t index, wsg_msg_t *value);

/** Forgets every awaited own publication (their echoes can no longer arrive). */
void wsg_conn_forget_own_publications(wsg_conn_t *conn);

#endif
