/* The authorization callback client: HTTP/1.1 GETs to WSGATE_AUTH_URL (http or https), one per upgrade, on
 * the worker's loop, each bounded by a timeout, over connections kept alive and reused; answers are parsed
 * with llhttp. One client per worker. */
#ifndef WSG_GATEWAY_AUTH_CLIENT_H
#define WSG_GATEWAY_AUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct wsg_auth_client wsg_auth_client_t;
typedef struct wsg_auth_request wsg_auth_request_t;

/** Where and how to ask. */
typedef struct wsg_auth_target {
    const char *host; /**< numeric address or name, looked up anew for every new connection */
    uint16_t port;
    bool is_tls;         /**< https: the certificate chain and name are verified */
    const char *ca_file; /**< PEM CAs trusted for https; NULL or "" = the system's store */
    uint64_t timeout_ms; /**< a request's whole time, connection included */
    uint64_t
        keepalive_ms; /**< how long an idle connection is kept for the next request; 0 = one per request */
} wsg_auth_target_t;

/** The outcome: `status` is the service's HTTP status, or 0 when it could not be had (the host does not
 *  resolve, connection refused or reset, TLS failure, timeout, malformed or oversized answer); then `why`
 *  says which. `body` (borrowed for the call) is the response body, framed by Content-Length, chunked, or
 *  by the service closing the connection. */
typedef void (*wsg_auth_done_cb)(void *arg, int status, const char *body, size_t len, const char *why);

/** A client for `target` (copied). Returns 0 and `*out`, or a negative errno with a message in `err` (a CA
 *  file that cannot be loaded). Borrows `loop`. */
int wsg_auth_client_new(uv_loop_t *loop, const wsg_auth_target_t *target, wsg_auth_client_t **out, char *err,
                        size_t err_cap);

/** Closes every connection; requests still running are abandoned without their callbacks. `cb` runs once
 *  the client's memory is gone. */
void wsg_auth_client_close(wsg_auth_client_t *client, void (*cb)(void *cb_arg), void *cb_arg);

/** Sends `request` (`len` bytes, a whole HTTP request; copied) on an idle kept-alive connection, or a new
 * one, and calls `cb` once with the answer, never synchronously, unless the request is cancelled first. A
 * request that fails on a reused connection before any answer (the service closed it while idle) is sent once
 * more on a new connection. Returns the request, or NULL when out of memory or closing (then `cb` is not
 * called). */
wsg_auth_request_t *wsg_auth_request_start(wsg_auth_client_t *client, const char *request, size_t len,
                                           wsg_auth_done_cb cb, void *arg);

/** Abandons `req`: its callback will not run. Its connection reads the answer to the end (within the
 *  timeout) to be reused. */
void wsg_auth_request_cancel(wsg_auth_request_t *req);

#endif
