/* Token, Origin and permission checks for one upgrade request, and the channel names that follow. */
#include "access.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "origin.h"
#include "url.h"
#include "writer.h"

#define IDENTITY_FLAGS                                                                                       \
    (WSG_Q_SUBSCRIBE_USER | WSG_Q_SUBSCRIBE_GROUP | WSG_Q_SUBSCRIBE_SESSION | WSG_Q_PUBLISH_USER |           \
     WSG_Q_PUBLISH_GROUP | WSG_Q_PUBLISH_SESSION)

static const char identity_refusal[] =
    "subscribe-user, subscribe-group, subscribe-session and the matching publish-* channels need an "
    "authenticated identity (a token)";

/* The token, from the first place that has one: ?token=, Authorization: Bearer, the token cookie.
 * `buf` receives the percent-decoded query value. */
static bool find_token(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t query, char *buf,
                       size_t cap, wsg_str_t *token)
{
    ssize_t n = wsg_query_value(query, "token", buf, cap);
    if (n > 0) {
        *token = (wsg_str_t){buf, (size_t)n};
        return true;
    }
    if (n == -ENOSPC) {
        *token = (wsg_str_t){buf, cap}; /* too long: fails verification with a clear reason */
        return true;
    }
    wsg_str_t auth = wsg_str_trim(http->authorization);
    if (auth.len > 7 && wsg_str_eq_nocase((wsg_str_t){auth.ptr, 7}, wsg_str_c("Bearer "))) {
        *token = wsg_str_trim((wsg_str_t){auth.ptr + 7, auth.len - 7});
        return true;
    }
    if (cfg->token_cookie[0] != '\0' && http->cookie.ptr != NULL &&
        wsg_cookie_value(http->cookie, cfg->token_cookie, token) && token->len > 0)
        return true;
    return false;
}

/* Appends one channel name to the arena and to `list`. */
static int add_channel(const wsg_config_t *cfg, char **cursor, const char *end, wsg_str_t *list, uint8_t *n,
                       wsg_audience_t audience, wsg_str_t ident, wsg_str_t facility)
{
    ssize_t len =
        wsg_channel_name(*cursor, (size_t)(end - *cursor), wsg_str_c(cfg->prefix), audience, ident, facility);
    if (len < 0)
        return -ENOSPC;
    list[(*n)++] = (wsg_str_t){*cursor, (size_t)len};
    *cursor += len + 1;
    return 0;
}

/* Names for the audiences in `flags` (one kind: subscribe or publish bits), in ws4redis order. */
static int add_audiences(const wsg_config_t *cfg, const wsg_token_claims_t *claims, uint32_t flags,
                         uint32_t broadcast, uint32_t group, uint32_t user, uint32_t session, char **cursor,
                         const char *end, wsg_str_t *list, uint8_t *n, wsg_str_t facility)
{
    int rc = 0;
    if (flags & broadcast)
        rc |= add_channel(cfg, cursor, end, list, n, WSG_AUDIENCE_BROADCAST, WSG_STR_NULL, facility);
    if (flags & group)
        for (size_t i = 0; i < claims->ngroups; i++)
            rc |= add_channel(cfg, cursor, end, list, n, WSG_AUDIENCE_GROUP,
                              wsg_str_c(wsg_token_group(claims, i)), facility);
    if (flags & user)
        rc |= add_channel(cfg, cursor, end, list, n, WSG_AUDIENCE_USER, wsg_str_c(claims->sub), facility);
    if (flags & session)
        rc |= add_channel(cfg, cursor, end, list, n, WSG_AUDIENCE_SESSION, wsg_str_c(claims->sid), facility);
    return rc;
}

bool wsg_access_origin_allowed(const wsg_config_t *cfg, const wsg_http_request_t *http)
{
    /* Cross-site WebSocket hijacking: a browser always sends Origin; other clients need not. */
    return cfg->allowed_origins[0] == '\0' || http->origin.ptr == NULL ||
           wsg_origin_list_allows(&cfg->origins, http->origin);
}

/* Refusal texts name what decided: a token's claims, or the authorization service's answer. */
typedef struct refusal_texts {
    const char *facility, *user, *group, *session, *publish, *subscribe;
} refusal_texts_t;

static const refusal_texts_t by_token = {
    "this token does not allow the facility",      "user channels need a token with \"sub\"",
    "group channels need a token with \"groups\"", "session channels need a token with \"sid\"",
    "this token does not allow publishing there",  "this token does not allow subscribing there",
};

static const refusal_texts_t by_service = {
    "the authorization service does not allow the facility",
    "user channels need an identity with \"user\"",
    "group channels need an identity with \"groups\"",
    "session channels need an identity with \"session\"",
    "the authorization service does not allow publishing there",
    "the authorization service does not allow subscribing there",
};

static int grant(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility,
                 const wsg_token_claims_t *claims, const refusal_texts_t *texts, wsg_access_t *out,
                 const char **why);

int wsg_access_decide_for(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility,
                          const wsg_token_claims_t *identity, wsg_access_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (!wsg_access_origin_allowed(cfg, http)) {
        *why = "Origin not allowed";
        return 403;
    }
    out->is_authenticated = true;
    snprintf(out->user, sizeof out->user, "%s", identity->sub);
    return grant(cfg, http, facility, identity, &by_service, out, why);
}

int wsg_access_decide(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility,
                      int64_t now_s, wsg_access_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    wsg_str_t path, query;
    wsg_url_split(http->target, &path, &query);
    if (!wsg_access_origin_allowed(cfg, http)) {
        *why = "Origin not allowed";
        return 403;
    }
    static const wsg_token_claims_t anonymous;
    const wsg_token_claims_t *claims = &anonymous;
    wsg_token_claims_t *verified = NULL;
    char *token_buf = NULL;
    int status = 0;
    if (cfg->jwt_secret_len > 0) {
        size_t cap = WSG_HTTP_HEAD_MAX;
        token_buf = malloc(cap);
        verified = malloc(sizeof(*verified));
        if (token_buf == NULL || verified == NULL) {
            *why = "out of memory";
            status = 500;
            goto Done;
        }
        wsg_str_t token;
        if (find_token(cfg, http, query, token_buf, cap, &token)) {
            int rc = wsg_token_verify(token, (const uint8_t *)cfg->jwt_secret, cfg->jwt_secret_len, now_s,
                                      (int64_t)(cfg->jwt_leeway_ms / 1000), cfg->max_groups, verified, why);
            if (rc < 0) {
                status = 401;
                goto Done;
            }
            claims = verified;
            out->is_authenticated = true;
            snprintf(out->user, sizeof out->user, "%s", verified->sub);
        }
    }
    status = grant(cfg, http, facility, claims, &by_token, out, why);
Done:
    free(token_buf);
    free(verified);
    return status;
}

/* Permissions and channel names for an identity (`out->is_authenticated` says whether there is one). */
static int grant(const wsg_config_t *cfg, const wsg_http_request_t *http, wsg_str_t facility,
                 const wsg_token_claims_t *claims, const refusal_texts_t *texts, wsg_access_t *out,
                 const char **why)
{
    wsg_str_t path, query;
    wsg_url_split(http->target, &path, &query);
    uint32_t flags = wsg_query_flags(query);
    out->is_echo = (flags & WSG_Q_ECHO) != 0;
    int status = 0;
    uint32_t allowed;
    if (out->is_authenticated) {
        allowed = claims->has_allow ? claims->allow : ~0u;
        if (!wsg_token_allows_facility(claims, facility)) {
            *why = texts->facility;
            status = 403;
            goto Done;
        }
        if ((flags & (WSG_Q_SUBSCRIBE_USER | WSG_Q_PUBLISH_USER)) && claims->sub[0] == '\0') {
            *why = texts->user;
            status = 403;
            goto Done;
        }
        if ((flags & (WSG_Q_SUBSCRIBE_GROUP | WSG_Q_PUBLISH_GROUP)) && claims->ngroups == 0) {
            *why = texts->group;
            status = 403;
            goto Done;
        }
        if ((flags & (WSG_Q_SUBSCRIBE_SESSION | WSG_Q_PUBLISH_SESSION)) && claims->sid[0] == '\0') {
            *why = texts->session;
            status = 403;
            goto Done;
        }
    } else {
        if (flags & IDENTITY_FLAGS) {
            *why = identity_refusal;
            status = 403;
            goto Done;
        }
        allowed = WSG_Q_SUBSCRIBE_BROADCAST | (cfg->anonymous_publish ? WSG_Q_PUBLISH_BROADCAST : 0);
    }
    uint32_t denied = flags & ~allowed & ~(uint32_t)WSG_Q_ECHO;
    if (denied != 0) {
        *why = (denied & WSG_Q_PUBLISH_ANY) && !out->is_authenticated ? "publishing is disabled"
               : (denied & WSG_Q_PUBLISH_ANY)                         ? texts->publish
                                                                      : texts->subscribe;
        status = 403;
        goto Done;
    }

    /* Every name is at most prefix + audience + identity + facility with separators. */
    size_t per_name = sizeof cfg->prefix + 16 + WSG_TOKEN_NAME_MAX + WSG_FACILITY_MAX + 4;
    size_t arena = 2 * (3 + claims->ngroups) * per_name;
    out->names = malloc(arena);
    if (out->names == NULL) {
        *why = "out of memory";
        status = 500;
        goto Done;
    }
    char *cursor = out->names;
    const char *end = out->names + arena;
    int rc = add_audiences(cfg, claims, flags, WSG_Q_SUBSCRIBE_BROADCAST, WSG_Q_SUBSCRIBE_GROUP,
                           WSG_Q_SUBSCRIBE_USER, WSG_Q_SUBSCRIBE_SESSION, &cursor, end, out->subs,
                           &out->nsubs, facility);
    rc |= add_audiences(cfg, claims, flags, WSG_Q_PUBLISH_BROADCAST, WSG_Q_PUBLISH_GROUP, WSG_Q_PUBLISH_USER,
                        WSG_Q_PUBLISH_SESSION, &cursor, end, out->pubs, &out->npubs, facility);
    if (rc != 0) {
        *why = "Channel name is too long";
        status = 400;
    }
Done:
    if (status != 0) {
        free(out->names);
        out->names = NULL;
    }
    return status;
}

void wsg_access_dispose(wsg_access_t *access)
{
    free(access->names);
    access->names = NULL;
}

/* Percent-encodes `in` for a query value. */
static size_t put_encoded(char *out, size_t cap, wsg_str_t in)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '_' || c == '.' || c == '~';
        if (n + 4 > cap)
            return cap;
        if (plain) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    return n;
}

static void put_header(wsg_writer_t *w, const char *name, wsg_str_t value)
{
    if (value.ptr == NULL)
        return;
    wsg_writer_puts(w, name);
    wsg_writer_puts(w, ": ");
    wsg_writer_put(w, value.ptr, value.len);
    wsg_writer_puts(w, "\r\n");
}

ssize_t wsg_access_callback_request(const wsg_config_t *cfg, const wsg_http_request_t *http,
                                    wsg_str_t facility, const char *peer_ip, const char *client_ip, char *out,
                                    size_t cap)
{
    /* One byte is kept spare, as the request buffer's callers expect. */
    wsg_writer_t w = wsg_writer_init(out, cap > 0 ? cap - 1 : 0);
    wsg_writer_puts(&w, "GET ");
    wsg_writer_puts(&w, cfg->auth_path);
    wsg_writer_puts(&w, strchr(cfg->auth_path, '?') ? "&facility=" : "?facility=");
    char enc[3 * WSG_FACILITY_MAX + 4];
    wsg_writer_put(&w, enc, put_encoded(enc, sizeof enc, facility));
    wsg_writer_puts(&w, "&channels=");
    wsg_str_t path, query;
    wsg_url_split(http->target, &path, &query);
    uint32_t flags = wsg_query_flags(query);
    static const char *const names[] = {"subscribe-broadcast", "subscribe-user",    "subscribe-group",
                                        "subscribe-session",   "publish-broadcast", "publish-user",
                                        "publish-group",       "publish-session",   "echo"};
    bool first = true;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & wsg_query_flag_by_name(names[i])))
            continue;
        if (!first)
            wsg_writer_puts(&w, "%2C");
        wsg_writer_puts(&w, names[i]);
        first = false;
    }
    wsg_writer_puts(&w, " HTTP/1.1\r\nHost: ");
    char host[300];
    int hn = snprintf(host, sizeof host, strchr(cfg->auth_host, ':') ? "[%s]:%u" : "%s:%u", cfg->auth_host,
                      cfg->auth_port);
    wsg_writer_put(&w, host, (size_t)hn);
    wsg_writer_puts(&w, "\r\n");
    put_header(&w, "Cookie", http->cookie);
    put_header(&w, "Authorization", http->authorization);
    put_header(&w, "Origin", http->origin);
    wsg_writer_puts(&w, "X-Forwarded-For: ");
    for (uint8_t i = 0; i < http->nforwarded_for; i++) {
        wsg_str_t hops = wsg_str_trim(http->forwarded_for[i]);
        if (hops.len == 0)
            continue;
        wsg_writer_put(&w, hops.ptr, hops.len);
        wsg_writer_puts(&w, ", ");
    }
    wsg_writer_puts(&w, peer_ip);
    wsg_writer_puts(&w, "\r\nX-Real-IP: ");
    wsg_writer_puts(&w, client_ip);
    /* HTTP/1.1 keeps the connection by default; without keep-alive the service is told to close it. */
    wsg_writer_puts(&w, cfg->auth_keepalive_ms > 0 ? "\r\nAccept: application/json\r\n\r\n"
                                                  : "\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    return w.overflow ? -ENOSPC : (ssize_t)w.len;
}
