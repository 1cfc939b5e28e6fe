/* The authorization callback client: one HTTP/1.1 GET to WSGATE_AUTH_URL per upgrade, on the worker's loop,
 * with a timeout; the answer is parsed with llhttp. */
#ifndef WSG_GATEWAY_AUTH_CLIENT_H
#define WSG_GATEWAY_AUTH_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct wsg_auth_request wsg_auth_request_t;

/** The outcome: `status` is the service's HTTP status, or 0 when it could not be had (connection refused
 *  or reset, timeout, malformed or oversized answer). `body` (borrowed for the call) is the response body. */
typedef void (*wsg_auth_done_cb)(void *arg, int status, const char *body, size_t len);

/** Sends `request` (`len` bytes, a whole HTTP request; copied) to `addr` and calls `cb` once with the answer,
 *  never synchronously, unless the request is cancelled first. Returns the request, or NULL when out of
 *  memory or the connection cannot even be started (then `cb` is not called). */
wsg_auth_request_t *wsg_auth_request_start(uv_loop_t *loop, const struct sockaddr *addr, uint64_t timeout_ms,
                                           const char *request, size_t len, wsg_auth_done_cb cb, void *arg);

/** Abandons `req`: its callback will not run; its memory goes once its handles are closed. */
void wsg_auth_request_cancel(wsg_auth_request_t *req);

#endif
