/* One client connection: its lifecycle (handshake -> open -> closing -> closed, one function per transition),
 * its inbound frames, and its one output. The HTTP upgrade (upgrade.h) drives the handshake state; client
 * publishing (publish.h) handles the messages it sends; the router delivers to its output. */
#ifndef WSG_GATEWAY_CONN_H
#define WSG_GATEWAY_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "access.h"
#include "forwarded.h"
#include "ctx.h"
#include "http_request.h"
#include "msg.h"
#include "outq.h"
#include "publish.h"
#include "router.h"
#include "ws_reader.h"

typedef enum wsg_conn_state {
    WSG_CONN_HANDSHAKE, /**< reading the HTTP upgrade request */
    WSG_CONN_OPEN,      /**< upgraded: frames flow both ways */
    WSG_CONN_CLOSING,   /**< a close frame or an HTTP error was queued; waiting for the peer or the flush */
    WSG_CONN_CLOSED,    /**< uv_close called; memory goes when the last reference does */
} wsg_conn_state_t;

typedef struct wsg_conn {
    uv_tcp_t tcp; /* first: the handle's address is the connection's */
    wsg_ctx_t *ctx;
    struct wsg_conn *prev, *next; /* in the context's list for `state` */
    uint64_t since_ms;            /* when the current state began, or the last input while open (lists are
                                     ordered by it) */
    uint64_t opened_ms;
    wsg_http_request_t *http;      /* only during the handshake */
    struct wsg_auth_request *auth; /* the authorization callback in flight, if any */
    wsg_ws_reader_t reader;
    wsg_outq_t out; /* everything the client is sent goes through it */
    wsg_router_client_t client;
    wsg_client_pub_t pub;
    wsg_ip_t forwarded_ip; /* the client a trusted proxy spoke for (is_forwarded) */
    uint32_t refcount;   /* the socket's + one per Redis command in flight */
    uint16_t close_code; /* the code we sent (or 1006 when dropped) */
    uint16_t peer_close_code;
    uint8_t state; /* wsg_conn_state_t */
    bool is_reading : 1;
    bool peer_closed : 1;          /* the peer's close frame arrived */
    bool close_reply_deferred : 1; /* answer the peer's close once its publishes are done */
    bool close_after_flush : 1;    /* drop TCP once the output is written (HTTP errors, close replies) */
    bool is_lingering : 1;         /* shut down our side; draining input until EOF */
    bool is_close_logged : 1;
    bool has_slot : 1; /* holds one of the WSGATE_MAX_CONNECTIONS slots */
    bool is_forwarded : 1; /* the client is forwarded_ip, behind the TCP peer (a trusted proxy) */
} wsg_conn_t;

/** Takes over the accepted socket `fd` (closed on failure) as a new connection in the handshake state, with
 *  its request buffer; reading is not started. Its `has_slot` tells whether it got one of the process-wide
 *  WSGATE_MAX_CONNECTIONS slots. Returns the connection, or NULL with `*err` set to a libuv error. */
wsg_conn_t *wsg_conn_new(wsg_ctx_t *ctx, int fd, int *err);

/** The connection whose TCP handle is `handle` (the handle is its first member). */
static inline wsg_conn_t *wsg_conn_of(uv_handle_t *handle)
{
    return (wsg_conn_t *)handle;
}

/** The connection's id (process-wide, for logs). */
static inline uint64_t wsg_conn_id(const wsg_conn_t *conn)
{
    return conn->out.id;
}

/** The common start of a read callback: counts what was read and drops the connection on end of stream or an
 *  error. Returns true when there are bytes to handle. */
bool wsg_conn_take_read(wsg_conn_t *conn, ssize_t nread);

/** Starts reading into the shared read buffer with `cb` (the handshake's reader or the connection's own). */
void wsg_conn_read_start(wsg_conn_t *conn, uv_read_cb cb);

/** Stops reading. */
void wsg_conn_read_stop(wsg_conn_t *conn);

/** Writes the TCP peer's address ("1.2.3.4:5", "[::1]:5" or "unknown") into `out` (capacity >= 80). */
const char *wsg_conn_peer_name(wsg_conn_t *conn, char *out, size_t cap);

/** The TCP peer's address without its port; false when it cannot be had. */
bool wsg_conn_peer_ip(wsg_conn_t *conn, wsg_ip_t *out);

/** Writes the client's address for logs into `out` (capacity >= 80): the one a trusted proxy forwarded
 *  (WSGATE_TRUSTED_PROXIES), or the TCP peer's with its port. */
const char *wsg_conn_client_name(wsg_conn_t *conn, char *out, size_t cap);

/** Ends the handshake with `response` (an HTTP error or a static file; taken over, NULL when it could not be
 *  made): moves to closing and drops TCP once it is written. */
void wsg_conn_respond_and_close(wsg_conn_t *conn, wsg_msg_t *response);

/** Completes the upgrade: queues `response` (the 101; taken over), joins the router with `access`
 *  (borrowed), logs the open, handles the frames in `early` (bytes the client sent behind its request,
 *  inside the connection's request buffer, which is freed here) and starts reading frames. */
void wsg_conn_open(wsg_conn_t *conn, wsg_msg_t *response, const wsg_access_t *access, wsg_str_t facility,
                   const uint8_t *early, size_t early_len);

/** Starts the closing handshake with `code` and `reason` (static text): stops deliveries, queues the close
 *  frame and waits for the peer's. Only from the open state; idempotent. */
void wsg_conn_close(wsg_conn_t *conn, uint16_t code, const char *reason);

/** Drops the connection at once (socket error, peer gone). Idempotent. */
void wsg_conn_abort(wsg_conn_t *conn, const char *why);

/** Queues `msg` (borrowed) to every open connection (heartbeats, pings). */
void wsg_conn_send_to_all(wsg_ctx_t *ctx, wsg_msg_t *msg);

/** The timeouts of every connection: handshake, idle (stale), close handshake and shutdown. */
void wsg_conn_sweep(wsg_ctx_t *ctx, uint64_t now_ms);

/** Graceful shutdown of the connections: handshakes are dropped, open clients get `notice` (borrowed; may be
 *  NULL) and close 1001. */
void wsg_conn_shutdown_all(wsg_ctx_t *ctx, wsg_msg_t *notice);

/** The owner callbacks of connection outputs (for wsg_outq_ctx_init). */
extern const wsg_outq_owner_t wsg_conn_output_owner;

#endif
