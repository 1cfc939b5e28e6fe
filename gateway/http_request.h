/* The HTTP upgrade request head, accumulated across reads and parsed once complete with llhttp. */
#ifndef WSG_GATEWAY_HTTP_REQUEST_H
#define WSG_GATEWAY_HTTP_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "handshake.h"
#include "str.h"

/** Largest request head accepted; a larger one is answered with 431. */
#define WSG_HTTP_HEAD_MAX 8192
/** Most X-Forwarded-For header lines a request may carry (one per proxy that adds its own line). */
#define WSG_HTTP_FORWARDED_MAX 8

/** A request head being received; every view points into `buf` and lives as long as the request. */
typedef struct wsg_http_request {
    wsg_upgrade_req_t upgrade; /**< fields for the handshake checks */
    wsg_str_t target;          /**< request target (path and query, raw) */
    wsg_str_t host, origin, cookie, authorization, real_ip;
    wsg_str_t forwarded_for[WSG_HTTP_FORWARDED_MAX]; /**< every X-Forwarded-For line, in order */
    uint8_t nforwarded_for;
    size_t head_len;           /**< bytes of `buf` that form the head, once complete */
    size_t len;                /**< bytes received so far (head and anything after it) */
    char buf[WSG_HTTP_HEAD_MAX + 1]; /**< +1 so a full head can be NUL-terminated */
} wsg_http_request_t;

/** Resets `req` to receive a new head. */
void wsg_http_request_init(wsg_http_request_t *req);

/** Appends `len` received bytes (borrowed) and parses the head once its blank line has arrived.
 *  Returns 1 when the head is complete and parsed (bytes after it are at buf[head_len..len)), 0 when more
 *  bytes are needed, -E2BIG when the head exceeds WSG_HTTP_HEAD_MAX (answer 431), -EBADMSG when a line is
 *  folded or holds a bare CR or a control character (answer 400, see wsg_http_check_head_lines), or -EPROTO
 *  when it is not valid HTTP/1.x otherwise (answer 400). Once it has returned 1 or an error, the request must not be fed again. */
int wsg_http_request_feed(wsg_http_request_t *req, const uint8_t *data, size_t len);

#endif
