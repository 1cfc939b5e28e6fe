/* The HTTP upgrade of a connection: request parsing, handshake checks, static files, the authorization
 * callback, refusals and the 101. */
#include "upgrade.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "access.h"
#include "auth_client.h"
#include "channel.h"
#include "conn.h"
#include "handshake.h"
#include "http_request.h"
#include "log.h"
#include "static_files.h"
#include "url.h"

static void complete_upgrade(wsg_conn_t *conn, wsg_str_t facility, const wsg_token_claims_t *identity);

static void refuse(wsg_conn_t *conn, int status, const char *body, const char *extra_headers)
{
    char response[1024];
    wsg_stats_count_refusal(conn->ctx->stats, status);
    char peer[80], via[80];
    WSG_INFO("handshake_refused", WSG_F_UINT("conn", wsg_conn_id(conn)),
             WSG_F_STR("peer", wsg_conn_client_name(conn, peer, sizeof peer)),
             WSG_F_STR(conn->is_forwarded ? "via" : NULL, wsg_conn_peer_name(conn, via, sizeof via)),
             WSG_F_INT("status", status), WSG_F_STR("why", body));
    ssize_t n = wsg_http_write_response(response, sizeof response, status, extra_headers, wsg_str_c(body));
    wsg_conn_respond_and_close(conn, n < 0 ? NULL : wsg_msg_new_http(response, (size_t)n, NULL, 0));
}

/* Answers GET /demo-settings.json: what the demo page must follow to match this gateway (where its broadcast
 * channels are, the WebSocket URL prefix, the heartbeat), so that its hint names the real channel. Only what
 * every client sees anyway: no Redis address, no secrets. */
static void serve_demo_settings(wsg_conn_t *conn)
{
    const wsg_config_t *cfg = conn->ctx->cfg;
    char channel[sizeof cfg->prefix + 16];
    ssize_t clen = wsg_channel_name(channel, sizeof channel, wsg_str_c(cfg->prefix), WSG_AUDIENCE_BROADCAST,
                                    wsg_str_c(NULL), wsg_str_c(""));
    cJSON *o = cJSON_CreateObject();
    bool is_built = o != NULL && clen >= 0;
    is_built = is_built && cJSON_AddStringToObject(o, "broadcast_channel_prefix", channel) != NULL;
    is_built = is_built && cJSON_AddStringToObject(o, "websocket_url", cfg->websocket_url) != NULL;
    if (cfg->heartbeat[0] != '\0')
        is_built = is_built && cJSON_AddStringToObject(o, "heartbeat", cfg->heartbeat) != NULL;
    else
        is_built = is_built && cJSON_AddNullToObject(o, "heartbeat") != NULL;
    is_built = is_built && cJSON_AddStringToObject(o, "heartbeat_mode", cfg->heartbeat_mode) != NULL;
    char *body = is_built ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (body == NULL) {
        refuse(conn, 503, "out of memory", NULL);
        return;
    }
    size_t len = strlen(body);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-cache\r\nConnection: close\r\n\r\n",
                     len);
    WSG_DEBUG("static_file", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_STR("file", "demo-settings.json"));
    wsg_conn_respond_and_close(conn, wsg_msg_new_http(head, (size_t)n, body, len));
    cJSON_free(body);
}

/* Answers a plain GET for an embedded file (the browser client, the demo page) or the demo's settings, and
 * closes. */
static bool serve_static(wsg_conn_t *conn, wsg_str_t path)
{
    if (!wsg_str_eq(conn->http->upgrade.method, wsg_str_c("GET")))
        return false;
    const char *name = NULL;
    if (wsg_str_eq(path, wsg_str_c("/wsgate.js")))
        name = "wsgate.js";
    else if (conn->ctx->cfg->demo && wsg_str_eq(path, wsg_str_c("/")))
        name = "demo.html";
    else if (conn->ctx->cfg->demo && wsg_str_eq(path, wsg_str_c("/demo-settings.json"))) {
        serve_demo_settings(conn);
        return true;
    }
    if (name == NULL)
        return false;
    const wsg_static_file_t *f = wsg_static_files;
    while (f->name != NULL && strcmp(f->name, name) != 0)
        f++;
    if (f->name == NULL)
        return false;
    char head[256];
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-cache\r\n"
                 "Connection: close\r\n\r\n",
                 f->content_type, f->len);
    WSG_DEBUG("static_file", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_STR("file", name));
    wsg_conn_respond_and_close(conn, wsg_msg_new_http(head, (size_t)n, f->data, f->len));
    return true;
}

/* The authorization callback answered (or failed): admit with its identity, pass on its refusal, or fail
 * closed with 503. */
static void on_authorized(void *arg, int status, const char *body, size_t len, const char *why_failed)
{
    wsg_conn_t *conn = arg;
    conn->auth = NULL;
    if (conn->state != WSG_CONN_HANDSHAKE)
        return;
    const wsg_config_t *cfg = conn->ctx->cfg;
    wsg_str_t path, query;
    wsg_url_split(conn->http->target, &path, &query);
    char facility[WSG_FACILITY_MAX];
    size_t facility_len = 0;
    wsg_url_facility(path, wsg_str_c(cfg->websocket_url), facility, &facility_len);
    if (status == 200) {
        wsg_token_claims_t *identity = malloc(sizeof(*identity));
        const char *why = "out of memory";
        if (identity == NULL ||
            wsg_token_claims_from_identity(body, len, cfg->max_groups, identity, &why) < 0) {
            WSG_WARN("auth_callback_invalid", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_STR("why", why));
            refuse(conn, 503, "authorization service answered an invalid identity", NULL);
        } else {
            complete_upgrade(conn, (wsg_str_t){facility, facility_len}, identity);
        }
        free(identity);
        return;
    }
    if (status == 401 || status == 403) {
        /* Passed on with the service's reason, cut and made printable. */
        char reason[201];
        size_t n = len < sizeof reason - 1 ? len : sizeof reason - 1;
        for (size_t i = 0; i < n; i++)
            reason[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
        reason[n] = '\0';
        refuse(conn, status, n > 0 ? reason : "refused by the authorization service", NULL);
        return;
    }
    WSG_WARN("auth_callback_failed", WSG_F_UINT("conn", wsg_conn_id(conn)), WSG_F_INT("status", status),
             WSG_F_STR("why", status == 0 ? why_failed : "unexpected status"));
    refuse(conn, 503, "authorization service unavailable", NULL);
}

static void ask_authorization(wsg_conn_t *conn, wsg_str_t facility)
{
    const wsg_config_t *cfg = conn->ctx->cfg;
    if (!wsg_access_origin_allowed(cfg, conn->http)) {
        refuse(conn, 403, "Origin not allowed", NULL);
        return;
    }
    wsg_ip_t peer = {0};
    char peer_ip[WSG_IP_TEXT_MAX], client_ip[WSG_IP_TEXT_MAX];
    wsg_conn_peer_ip(conn, &peer);
    wsg_ip_format(&peer, peer_ip);
    wsg_ip_format(conn->is_forwarded ? &conn->forwarded_ip : &peer, client_ip);
    char *request = malloc(WSG_HTTP_HEAD_MAX + 2048);
    ssize_t n = request ? wsg_access_callback_request(cfg, conn->http, facility, peer_ip, client_ip, request,
                                                      WSG_HTTP_HEAD_MAX + 2048)
                        : -ENOMEM;
    if (n > 0)
        conn->auth = wsg_auth_request_start(conn->ctx->auth, request, (size_t)n, on_authorized, conn);
    free(request);
    if (conn->auth == NULL) {
        refuse(conn, 503, "authorization service unavailable", NULL);
        return;
    }
    /* Nothing more is read until the answer: a client may not send frames before the 101. */
    wsg_conn_read_stop(conn);
}

static void upgrade(wsg_conn_t *conn)
{
    const wsg_config_t *cfg = conn->ctx->cfg;
    wsg_http_request_t *http = conn->http;
    wsg_str_t path, query;
    wsg_url_split(http->target, &path, &query);

    char facility[WSG_FACILITY_MAX];
    size_t facility_len = 0;
    int rc = wsg_url_facility(path, wsg_str_c(cfg->websocket_url), facility, &facility_len);
    if (rc == -ENOENT) {
        if (!serve_static(conn, path))
            refuse(conn, 404, "Not Found", NULL);
        return;
    }
    wsg_handshake_verdict_t verdict = wsg_handshake_check(&http->upgrade);
    if (verdict.status != 0) {
        refuse(conn, verdict.status, verdict.body, NULL);
        return;
    }
    if (rc < 0) {
        refuse(conn, 400,
               rc == -E2BIG ? "Facility name is too long (at most 256 bytes)"
                            : "Facility name must be UTF-8 without control characters",
               NULL);
        return;
    }
    if (wsg_query_since_check(query) < 0) {
        refuse(conn, 400, "since must be a stream id such as 1700000000000-0", NULL);
        return;
    }
    if (cfg->auth_url[0] != '\0') {
        ask_authorization(conn, (wsg_str_t){facility, facility_len});
        return;
    }
    complete_upgrade(conn, (wsg_str_t){facility, facility_len}, NULL);
}

/* The second half of the upgrade, once the identity is known (`identity` NULL: from a token or nobody). */
static void complete_upgrade(wsg_conn_t *conn, wsg_str_t facility, const wsg_token_claims_t *identity)
{
    const wsg_config_t *cfg = conn->ctx->cfg;
    wsg_http_request_t *http = conn->http;
    wsg_access_t access;
    const char *why = NULL;
    int status = identity != NULL
                     ? wsg_access_decide_for(cfg, http, facility, identity, &access, &why)
                     : wsg_access_decide(cfg, http, facility, (int64_t)time(NULL), &access, &why);
    if (status != 0) {
        refuse(conn, status, why, NULL);
        return;
    }
    char accept[WSG_ACCEPT_KEY_LEN + 1];
    wsg_handshake_accept_key(http->upgrade.ws_key, accept);
    char response[512];
    /* wsgate.v1 when the client offers it (then every data message is an envelope), else as before: the first
     * token offered is echoed. */
    bool is_v1 = wsg_handshake_offers(http->upgrade.ws_protocol, wsg_str_c(WSG_SUBPROTOCOL_V1));
    ssize_t n = wsg_handshake_write_101(response, sizeof response, accept,
                                        is_v1 ? wsg_str_c(WSG_SUBPROTOCOL_V1)
                                              : wsg_handshake_pick_subprotocol(http->upgrade.ws_protocol));
    if (n < 0) {
        wsg_access_dispose(&access);
        refuse(conn, 400, "Subprotocol name is too long", NULL);
        return;
    }
    const uint8_t *early = (const uint8_t *)http->buf + http->head_len;
    conn->client.is_v1 = is_v1;
    wsg_conn_open(conn, wsg_msg_new_http(response, (size_t)n, NULL, 0), &access, facility, early,
                  http->len - http->head_len);
    wsg_access_dispose(&access);
}

/* Behind a trusted proxy (WSGATE_TRUSTED_PROXIES), the client is the one its X-Forwarded-For or X-Real-IP
 * names; from anyone else those headers are the client's own words and change nothing. */
static void resolve_client(wsg_conn_t *conn)
{
    const wsg_cidr_list_t *trusted = &conn->ctx->cfg->proxies;
    wsg_ip_t peer;
    if (trusted->n == 0 || !wsg_conn_peer_ip(conn, &peer))
        return;
    const wsg_http_request_t *http = conn->http;
    wsg_ip_t client =
        wsg_forwarded_client(&peer, http->forwarded_for, http->nforwarded_for, http->real_ip, trusted);
    if (memcmp(&client, &peer, sizeof peer) != 0) {
        conn->forwarded_ip = client;
        conn->is_forwarded = true;
    }
}

static void on_handshake_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    wsg_conn_t *conn = wsg_conn_of((uv_handle_t *)stream);
    if (!wsg_conn_take_read(conn, nread))
        return;
    if (conn->state != WSG_CONN_HANDSHAKE)
        return; /* refused: the rest of the request is not read */
    int rc = wsg_http_request_feed(conn->http, (const uint8_t *)buf->base, (size_t)nread);
    if (rc == 0)
        return;
    if (rc == -E2BIG)
        refuse(conn, 431, "Request header fields too large", NULL);
    else if (rc == -EBADMSG)
        refuse(conn, 400, "Header lines must not be folded or hold control characters", NULL);
    else if (rc < 0)
        refuse(conn, 400, "Malformed HTTP request", NULL);
    else {
        resolve_client(conn);
        upgrade(conn);
    }
}

int wsg_upgrade_accept(wsg_ctx_t *ctx, int fd)
{
    int err = 0;
    wsg_conn_t *conn = wsg_conn_new(ctx, fd, &err);
    if (conn == NULL)
        return err;
    wsg_conn_read_start(conn, on_handshake_read);
    if (!conn->has_slot) {
        /* Answered before the request is read: the lingering close lets the client read it. */
        WSG_STAT_ADD(ctx->stats, connections_refused_limit, 1);
        refuse(conn, 503, "connection limit reached", "Retry-After: 5\r\n");
    }
    return 0;
}
