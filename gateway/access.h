/* Authorization at the upgrade: who the client is (an HS256 token, or nobody), whether its Origin may connect,
 * and which channels it may subscribe and publish to. No I/O: the decision depends only on its inputs. */
#ifndef WSG_GATEWAY_ACCESS_H
#define WSG_GATEWAY_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "http_request.h"
#include "str.h"
#include "token.h"

/** Broadcast, up to 64 groups, user, session. */
#define WSG_ACCESS_MAX_CHANNELS (3 + WSG_TOKEN_GROUPS_MAX)

typedef struct wsg_access {
    char user[WSG_TOKEN_NAME_MAX + 1]; /**< the token's "sub" ("" when anonymous), for logs */
    bool is_authenticated;
    bool is_echo;
    uint8_t nsubs, npubs;
    wsg_str_t subs[WSG_ACCESS_MAX_CHANNELS]; /**< channel names, ws4redis order; views into `names` */
    wsg_str_t pubs[WSG_ACCESS_MAX_CHANNELS];
    char *names;                             /**< owned: the channel names */
} wsg_access_t;

/** Decides what the upgrade request `http` (borrowed) for `facility` may do, at time `now_s` (seconds since
 *  the epoch). On success returns 0 and fills `*out` (dispose it with wsg_access_dispose). Otherwise returns
 *  the HTTP status to refuse with (401 bad token, 403 not allowed, 400 channel name too long, 500 out of
 *  memory) and points `*why` at a static reason; `*out` then needs no disposal. */
int wsg_access_decide(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility, int64_t now_s,
                      wsg_access_t *out, const char **why);

/** As wsg_access_decide, for a client the authorization callback admitted with `identity` (borrowed): no
 *  token is looked at, the Origin is checked, and `identity` decides like a token's claims. */
int wsg_access_decide_for(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility,
                          const wsg_token_claims_t *identity, wsg_access_t *out, const char **why);

/** False when the request's Origin is not on WSGATE_ALLOWED_ORIGINS (requests without Origin pass). */
bool wsg_access_origin_allowed(const wsg_config_t *cfg, const wsg_http_request_t *http);

/** Writes the authorization callback's request for `http` into `out` (capacity `cap`): a GET of
 *  WSGATE_AUTH_URL with `facility` and the requested switches (`channels`, comma-separated) as query
 *  parameters, carrying the client's Cookie, Authorization and Origin headers, an X-Forwarded-For of every
 *  X-Forwarded-For line the request had followed by `peer_ip` (the TCP peer), and X-Real-IP: `client_ip` (the
 *  client, behind trusted proxies). Returns the length or -ENOSPC. Borrows everything. */
ssize_t wsg_access_callback_request(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility,
                                    const char *peer_ip, const char *client_ip, char *out, size_t cap);

/** Frees what wsg_access_decide allocated. */
void wsg_access_dispose(wsg_access_t *access);

#endif
