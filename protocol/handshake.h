/* RFC 6455 opening-handshake checks and responses, with ws4redis's status codes and body texts. */
#ifndef WSG_PROTOCOL_HANDSHAKE_H
#define WSG_PROTOCOL_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

/** Length of a Sec-WebSocket-Accept value (base64 of a SHA-1 digest), without the NUL. */
#define WSG_ACCEPT_KEY_LEN 28

/** The fields of an upgrade request that the checks need; every view borrows the caller's request buffer.
 *  A header that was absent has `ptr == NULL`; repeated headers are joined by the caller with ", ". */
typedef struct wsg_upgrade_req {
    wsg_str_t method;      /**< e.g. "GET" */
    int http_major;        /**< 1 for HTTP/1.1 */
    int http_minor;        /**< 1 for HTTP/1.1 */
    wsg_str_t upgrade;     /**< Upgrade header */
    wsg_str_t connection;  /**< Connection header */
    wsg_str_t ws_version;  /**< Sec-WebSocket-Version header */
    wsg_str_t ws_key;      /**< Sec-WebSocket-Key header */
    wsg_str_t ws_protocol; /**< Sec-WebSocket-Protocol header (offered subprotocols) */
} wsg_upgrade_req_t;

/** The outcome of the checks: `status` 0 means the upgrade may proceed; otherwise it is the HTTP status to
 *  answer with and `body` a static text for the response body (may be "" for 426). */
typedef struct wsg_handshake_verdict {
    int status;
    const char *body;
} wsg_handshake_verdict_t;

/** Runs the compat-table checks in order: method GET (400 "HTTP method must be a GET"), HTTP/1.1 or a later
 *  1.x, i.e. major 1 and minor >= 1 (400 "HTTP server protocol must be 1.1"), Upgrade has token "websocket"
 *  case-insensitively (400 "Client does not wish to upgrade to a websocket"), Connection has token "upgrade"
 *  (400 "Connection header must include Upgrade"), Sec-WebSocket-Version present (426, empty body) and equal
 *  to "13" once trimmed (400 "Unsupported WebSocket Version"), Sec-WebSocket-Key present and, once trimmed,
 *  standard padded base64 of exactly 16 bytes (400 "Invalid key").
 *  Borrows `req`. Never fails otherwise. */
wsg_handshake_verdict_t wsg_handshake_check(const wsg_upgrade_req_t *req);

/** Writes the Sec-WebSocket-Accept value for `key` (trimmed of white space first) into `out`, which must hold
 *  WSG_ACCEPT_KEY_LEN + 1 bytes, NUL-terminated. Borrows `key`. */
void wsg_handshake_accept_key(wsg_str_t key, char out[WSG_ACCEPT_KEY_LEN + 1]);

/** The subprotocol to echo: the first element of the comma-separated `offered` list that, trimmed, is an
 *  RFC 7230 token (see wsg_http_is_token); other elements are ignored, so nothing that is not a token is ever
 *  reflected. The empty view when there is none. The result borrows `offered`. */
wsg_str_t wsg_handshake_pick_subprotocol(wsg_str_t offered);

/** The subprotocol of wsgate's enveloped messages (see protocol/envelope.h). */
#define WSG_SUBPROTOCOL_V1 "wsgate.v1"

/** True when the comma-separated `offered` list has an element that, trimmed, equals `name` exactly. Borrows
 *  both. */
bool wsg_handshake_offers(wsg_str_t offered, wsg_str_t name);

/** Writes a complete "101 Switching Protocols" response into `buf` (capacity `cap`): Upgrade, Connection,
 *  Sec-WebSocket-Accept and, when `subprotocol` is not empty, Sec-WebSocket-Protocol.
 *  Returns the length written, or -ENOSPC when `cap` is too small. Borrows every argument. */
ssize_t wsg_handshake_write_101(char *buf, size_t cap, const char *accept_key, wsg_str_t subprotocol);

/** Writes a complete HTTP/1.1 error response: status line with the standard reason phrase, Content-Type
 *  text/plain; charset=utf-8, Content-Length, Connection: close, `extra_headers` verbatim when not NULL (each
 *  line ending in "\r\n"; 426 adds "Sec-WebSocket-Version: 13" by itself), a blank line, then `body`.
 *  Returns the length written, or -ENOSPC when `cap` is too small. Borrows every argument. */
ssize_t wsg_http_write_response(char *buf, size_t cap, int status, const char *extra_headers, wsg_str_t body);

/** True when `s` is a non-empty RFC 7230 token: only ALPHA, DIGIT and !#$%&'*+-.^_`|~ . */
bool wsg_http_is_token(wsg_str_t s);

/** Checks the lines of a request head (`len` bytes of `head`, the request line and the header lines) for what
 *  RFC 7230 lets a server refuse with 400 and this server does: a folded header line (obs-fold, 3.2.4: a line
 *  that starts with a space or a tab), a CR that is not followed by LF (3.5), and control characters other
 * than the tab (NUL, DEL, ...). Returns 0, or -EBADMSG. Borrows `head`. */
int wsg_http_check_head_lines(const char *head, size_t len);

/** The standard reason phrase of an HTTP status ("Bad Request" for 400, ...); "Error" for unknown ones. */
const char *wsg_http_reason_phrase(int status);

#endif
