/* The authorization callback client: one HTTP/1.1 GET to WSGATE_AUTH_URL per upgrade, on the worker's loop,
 * with a timeout; the answer is parsed with llhttp. */
#ifndef WSG_GATEWAY_AUTH_CLIENT_H
#define WSG_GATEWAY_AUTH_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

typedef struct wsg_auth_request wsg_auth_request_t;

/** The outcome: `status` is the service's HTTP status, or 0 when it could not be had (the host does not
 *  resolve, connection refused or reset, timeout, malformed or oversized answer). `body` (borrowed for the
 * call) is the response body, framed by Content-Length, chunked, or by the service closing the connection. */
typedef void (*wsg_auth_done_cb)(void *arg, int status, const char *body, size_t len);

/** Resolves `host` (without blocking the loop: a numeric address directly, a name with uv_getaddrinfo, anew
 *  for every request, so a service that starts later or moves is found), connects to it on `port`, sends
 *  `request` (`len` bytes, a whole HTTP request; copied) and calls `cb` once with the answer, never
 *  synchronously, unless the request is cancelled first; `timeout_ms` bounds all of it. Returns the request,
 *  or NULL when out of memory (then `cb` is not called). Borrows `host`. */
wsg_auth_request_t *wsg_auth_request_start(uv_loop_t *loop, const char *host, uint16_t port,
                                           uint64_t timeout_ms, const char *request, size_t len,
                                           wsg_auth_done_cb cb, void *arg);

/** Abandons `req`: its callback will not run; its memory goes once its handles are closed. */
void wsg_auth_request_cancel(wsg_auth_request_t *req);

#endif
