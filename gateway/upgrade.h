/* The HTTP side of a new connection: reads the upgrade request, checks it (handshake, Origin, token or the
 * authorization callback, channel permissions), and either opens the WebSocket or answers with a status
 * (an error, or an embedded static file) and closes. */
#ifndef WSG_GATEWAY_UPGRADE_H
#define WSG_GATEWAY_UPGRADE_H

#include "ctx.h"

/** Takes over the accepted socket `fd` (closed on failure) and starts reading its upgrade request. Past the
 *  process-wide connection cap the client is answered 503 at once. Returns 0 or a libuv error. */
int wsg_upgrade_accept(wsg_ctx_t *ctx, int fd);

#endif
