/* Table-driven settings: one row per setting gives its variable, flag, kind, default and help. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "glob_match.h"
#include "heartbeat.h"
#include "transport.h"
#include "units.h"

typedef enum setting_kind {
    KIND_STRING,   /* copied into a char array */
    KIND_DURATION, /* uint64_t milliseconds */
    KIND_SIZE,     /* uint64_t bytes */
    KIND_UINT,     /* uint64_t */
    KIND_LEVEL,    /* wsg_log_level_t */
    KIND_BOOL,     /* bool */
} setting_kind_t;

typedef struct setting {
    const char *env;
    const char *flag;
    setting_kind_t kind;
    const char *default_value;
    size_t offset;
    size_t size;       /* capacity for strings */
    uint64_t min, max; /* bounds for numbers */
    const char *help;
} setting_t;

#define STR_FIELD(f) offsetof(wsg_config_t, f), sizeof(((wsg_config_t *)0)->f)
#define NUM_FIELD(f) offsetof(wsg_config_t, f), 0

static const setting_t settings[] = {
    {"WSGATE_LISTEN", "listen", KIND_STRING, "0.0.0.0:8080", STR_FIELD(listen), 0, 0,
     "address and port to serve WebSockets on"},
    {"REDIS_URL", "redis-url", KIND_STRING, "redis://127.0.0.1:6379/0", STR_FIELD(redis_url), 0, 0,
     "redis://[[user]:password@]host:port/db, rediss://... (TLS), unix:///path/to/redis.sock[?db=N],\n"
     "      redis-sentinel://host:26379,host:26379/mymaster[/db] (the master found through its sentinels;\n"
     "      rediss-sentinel:// over TLS), or redis-cluster://host:6379,host:6380 (rediss-cluster:// over "
     "TLS)"},
    {"WEBSOCKET_URL", "websocket-url", KIND_STRING, "/ws/", STR_FIELD(websocket_url), 0, 0,
     "URL prefix; the rest of the path is the facility"},
    {"WS4REDIS_PREFIX", "prefix", KIND_STRING, "", STR_FIELD(prefix), 0, 0,
     "channel and key prefix (channels become <prefix>:broadcast:<facility>)"},
    {"WS4REDIS_EXPIRE", "expire", KIND_UINT, "3600", NUM_FIELD(expire_s), 0, 0xffffffffu,
     "seconds a client-published message is also stored with SETEX; 0 = not stored"},
    {"WS4REDIS_HEARTBEAT", "heartbeat", KIND_STRING, "", STR_FIELD(heartbeat), 0, 0,
     "magic heartbeat string sent to every client and dropped from inbound traffic; empty = off"},
    {"WSGATE_HEARTBEAT_INTERVAL", "heartbeat-interval", KIND_DURATION, "4s", NUM_FIELD(heartbeat_interval_ms),
     10, 3600000, "how often the heartbeat string is sent"},
    {"WSGATE_HEARTBEAT_MODE", "heartbeat-mode", KIND_STRING, "ws4redis", STR_FIELD(heartbeat_mode), 0, 0,
     "ws4redis: send WS4REDIS_HEARTBEAT; json: send {\"type\":\"heartbeat\",...} and accept "
     "heartbeat_response"},
    {"WSGATE_JSON_PING", "json-ping", KIND_BOOL, "0", NUM_FIELD(json_ping), 0, 0,
     "answer an inbound {\"type\":\"ping\"} with {\"type\":\"pong\"} instead of publishing it"},
    {"WSGATE_PING_INTERVAL", "ping-interval", KIND_DURATION, "30s", NUM_FIELD(ping_interval_ms), 0, 3600000,
     "protocol PING to every client this often; 0 = off"},
    {"WSGATE_IDLE_TIMEOUT", "idle-timeout", KIND_DURATION, "60s", NUM_FIELD(idle_timeout_ms), 0, 86400000,
     "close a client that sent nothing (not even a PONG) this long with 4000 stale; 0 = off"},
    {"WSGATE_SHUTDOWN_NOTICE", "shutdown-notice", KIND_STRING, "", STR_FIELD(shutdown_notice), 0, 0,
     "text sent to every client before close 1001 on shutdown; default: none in ws4redis mode, "
     "{\"type\":\"server_shutdown\",...} in json mode; empty = none"},
    {"WSGATE_JWT_SECRET", "jwt-secret", KIND_STRING, "", STR_FIELD(jwt_secret), 0, 0,
     "HS256 secret of client tokens (?token=, Authorization: Bearer, or the token cookie); empty = no "
     "tokens"},
    {"WSGATE_JWT_SECRET_FILE", "jwt-secret-file", KIND_STRING, "", STR_FIELD(jwt_secret_file), 0, 0,
     "file holding the HS256 secret (a trailing newline is ignored); wins over WSGATE_JWT_SECRET"},
    {"WSGATE_JWT_LEEWAY", "jwt-leeway", KIND_DURATION, "30s", NUM_FIELD(jwt_leeway_ms), 0, 3600000,
     "clock skew allowed when checking exp and nbf"},
    {"WSGATE_TOKEN_COOKIE", "token-cookie", KIND_STRING, "", STR_FIELD(token_cookie), 0, 0,
     "name of a cookie that carries the token; empty = cookies are not read"},
    {"WSGATE_MAX_GROUPS", "max-groups", KIND_UINT, "64", NUM_FIELD(max_groups), 0, 64,
     "most groups a token may name"},
    {"WSGATE_ANONYMOUS_PUBLISH", "anonymous-publish", KIND_BOOL, "0", NUM_FIELD(anonymous_publish), 0, 0,
     "let clients without a token use publish-broadcast (ws4redis's permissive default is 1)"},
    {"WSGATE_AUTH_URL", "auth-url", KIND_STRING, "", STR_FIELD(auth_url), 0, 0,
     "http(s)://host:port/path asked to authorize every upgrade (it decides identity and permissions); "
     "empty = tokens or anonymous"},
    {"WSGATE_AUTH_TIMEOUT", "auth-timeout", KIND_DURATION, "3s", NUM_FIELD(auth_timeout_ms), 10, 60000,
     "time the authorization callback has to answer before the client gets 503"},
    {"WSGATE_AUTH_CA", "auth-ca", KIND_STRING, "", STR_FIELD(auth_ca), 0, 0,
     "PEM file of the CAs trusted for an https:// WSGATE_AUTH_URL; empty = the system's store"},
    {"WSGATE_AUTH_KEEPALIVE", "auth-keepalive", KIND_DURATION, "4s", NUM_FIELD(auth_keepalive_ms), 0, 300000,
     "how long a connection to the authorization service is kept idle for the next request; 0 = a new "
     "connection per request"},
    {"WSGATE_TRUSTED_PROXIES", "trusted-proxies", KIND_STRING, "", STR_FIELD(trusted_proxies), 0, 0,
     "networks of reverse proxies (10.0.0.0/8, 127.0.0.1, ::1) whose X-Forwarded-For or X-Real-IP names the "
     "client, for logs and the authorization callback; empty = the TCP peer is the client"},
    {"WSGATE_ALLOWED_ORIGINS", "allowed-origins", KIND_STRING, "", STR_FIELD(allowed_origins), 0, 0,
     "Origins allowed to connect, comma-separated (https://app.example.com, https://*.example.com); "
     "empty = any"},
    {"WSGATE_MAX_PAYLOAD", "max-payload", KIND_SIZE, "16KiB", NUM_FIELD(max_payload), 1, 64u << 20,
     "largest inbound message; larger ones close the connection with 1009"},
    {"WSGATE_MAX_PENDING", "max-pending", KIND_SIZE, "1MiB", NUM_FIELD(max_pending), 1024, 1ull << 32,
     "soft limit of a client's output the kernel has not taken: above it for WSGATE_SLOW_GRACE, the client "
     "is a slow consumer; larger messages go only to a client whose output is drained"},
    {"WSGATE_MAX_PENDING_HARD", "max-pending-hard", KIND_SIZE, "0", NUM_FIELD(max_pending_hard), 0,
     1ull << 34,
     "hard limit: above it at any moment, the client is a slow consumer; 0 = 4 x WSGATE_MAX_PENDING"},
    {"WSGATE_SLOW_GRACE", "slow-grace", KIND_DURATION, "1s", NUM_FIELD(slow_grace_ms), 0, 3600000,
     "how long a client's output may stay above WSGATE_MAX_PENDING"},
    {"WSGATE_SLOW_CONSUMER", "slow-consumer", KIND_STRING, "close", STR_FIELD(slow_consumer), 0, 0,
     "what a slow consumer gets: close (1008 slow consumer) or drop (whole messages skipped, counted)"},
    {"WSGATE_HANDSHAKE_TIMEOUT", "handshake-timeout", KIND_DURATION, "10s", NUM_FIELD(handshake_timeout_ms),
     10, 3600000, "time a client has to complete its HTTP upgrade"},
    {"WSGATE_CLOSE_TIMEOUT", "close-timeout", KIND_DURATION, "5s", NUM_FIELD(close_timeout_ms), 10, 3600000,
     "time to wait for the client's close frame before dropping the socket"},
    {"WSGATE_SHUTDOWN_TIMEOUT", "shutdown-timeout", KIND_DURATION, "10s", NUM_FIELD(shutdown_timeout_ms), 0,
     3600000, "time SIGTERM/SIGINT waits for clients and Redis commands before exiting"},
    {"WSGATE_MAX_CONNECTIONS", "max-connections", KIND_UINT, "0", NUM_FIELD(max_connections), 0, 100000000,
     "connections served at once by the process; more are answered with 503; 0 = no limit"},
    {"WSGATE_PUBLISH_RATE", "publish-rate", KIND_UINT, "0", NUM_FIELD(publish_rate), 0, 1000000,
     "messages per second one client may publish (token bucket); beyond it close 1008; 0 = unlimited"},
    {"WSGATE_PUBLISH_BURST", "publish-burst", KIND_UINT, "0", NUM_FIELD(publish_burst), 0, 1000000,
     "messages a client may publish in a burst above the rate; 0 = the rate (one second's worth)"},
    {"WSGATE_PUBLISH_QUEUE", "publish-queue", KIND_UINT, "10000", NUM_FIELD(publish_queue), 1, 10000000,
     "commands kept while Redis is unreachable"},
    {"WSGATE_REDIS_TIMEOUT", "redis-timeout", KIND_DURATION, "2s", NUM_FIELD(redis_timeout_ms), 10, 600000,
     "Redis connect timeout"},
    {"WSGATE_REDIS_RETRY_MAX", "redis-retry-max", KIND_DURATION, "500ms", NUM_FIELD(redis_retry_max_ms), 100,
     3600000,
     "longest wait between Redis reconnect attempts (the first comes at once, then 100 ms doubling)"},
    {"WSGATE_REDIS_SENTINEL_USERNAME", "redis-sentinel-username", KIND_STRING, "",
     STR_FIELD(redis_sentinel_username), 0, 0,
     "ACL user of the sentinels (with WSGATE_REDIS_SENTINEL_PASSWORD)"},
    {"WSGATE_REDIS_SENTINEL_PASSWORD", "redis-sentinel-password", KIND_STRING, "",
     STR_FIELD(redis_sentinel_password), 0, 0,
     "password of the sentinels when it is not the master's; empty = the URL's credentials are tried on the "
     "sentinels too (a sentinel without a password is fine)"},
    {"WSGATE_REDIS_SHARDED", "redis-sharded", KIND_BOOL, "0", NUM_FIELD(redis_sharded), 0, 0,
     "Redis Cluster: sharded pub/sub (SSUBSCRIBE on each channel's master, clients publish with SPUBLISH; "
     "backends must SPUBLISH too); 0 = classic (SUBSCRIBE on any node, PUBLISH reaches every node)"},
    {"WSGATE_STREAMS", "streams", KIND_STRING, "", STR_FIELD(streams), 0, 0,
     "stream channels: comma-separated glob patterns over full channel names (with the prefix), e.g. "
     "broadcast:orders*,user:*:inbox; their messages are entries of a Redis Stream named after the channel, "
     "kept and replayed on resume (since=<id>); empty = none (pure pub/sub)"},
    {"WSGATE_STREAM_MAXLEN", "stream-maxlen", KIND_UINT, "1000", NUM_FIELD(stream_maxlen), 0, 1000000000,
     "entries a stream keeps (XADD MAXLEN ~ N, so a few more may stay); 0 = no trimming"},
    {"WSGATE_STREAM_REPLAY_MAX", "stream-replay-max", KIND_UINT, "1000", NUM_FIELD(stream_replay_max), 1,
     1000000, "most entries one resume replays; beyond them the client gets a gap notice, then live entries"},
    {"WSGATE_STREAM_POLL", "stream-poll", KIND_DURATION, "20ms", NUM_FIELD(stream_poll_ms), 1, 10000,
     "Redis Cluster: how often stream channels are polled while they have nothing new (a blocking read may "
     "only name keys of one slot)"},
    {"WSGATE_REDIS_TLS_CA", "redis-tls-ca", KIND_STRING, "", STR_FIELD(redis_tls_ca), 0, 0,
     "PEM file of the CAs trusted for rediss:// (and rediss-sentinel://); empty = the system's store"},
    {"WSGATE_REDIS_TLS_CERT", "redis-tls-cert", KIND_STRING, "", STR_FIELD(redis_tls_cert), 0, 0,
     "PEM client certificate (chain) for servers that ask for one"},
    {"WSGATE_REDIS_TLS_KEY", "redis-tls-key", KIND_STRING, "", STR_FIELD(redis_tls_key), 0, 0,
     "PEM private key of WSGATE_REDIS_TLS_CERT; empty = in the certificate's file"},
    {"WSGATE_REDIS_TLS_SNI", "redis-tls-sni", KIND_STRING, "", STR_FIELD(redis_tls_sni), 0, 0,
     "name sent as SNI and required in the server's certificate, when it differs from the URL's host"},
    {"WSGATE_REDIS_TLS_VERIFY", "redis-tls-verify", KIND_BOOL, "1", NUM_FIELD(redis_tls_verify), 0, 0,
     "verify the server's certificate and name; 0 = accept any (warned at start: only for self-signed "
     "test servers)"},
    {"WSGATE_WORKERS", "workers", KIND_UINT, "0", NUM_FIELD(workers), 0, 64,
     "event-loop threads, each with its own listener and Redis connections; 0 = one per CPU"},
    {"WSGATE_LOG_LEVEL", "log-level", KIND_LEVEL, "info", NUM_FIELD(log_level), 0, 0,
     "debug, info, warn or error"},
    {"WSGATE_LOG_FORMAT", "log-format", KIND_STRING, "text", STR_FIELD(log_format), 0, 0,
     "text (key=value lines) or json (one object per line)"},
    {"WSGATE_ADMIN_LISTEN", "admin-listen", KIND_STRING, "127.0.0.1:9090", STR_FIELD(admin_listen), 0, 0,
     "address of GET /metrics, /healthz and /readyz; empty = off"},
    {"WSGATE_DEMO", "demo", KIND_BOOL, "0", NUM_FIELD(demo), 0, 0,
     "serve a demo page at / on the WebSocket port"},
};

#define N_SETTINGS (sizeof settings / sizeof settings[0])

static int apply(wsg_config_t *cfg, const setting_t *s, const char *value, const char *source, char *err,
                 size_t err_cap)
{
    char *field = (char *)cfg + s->offset;
    int rc = 0;
    uint64_t num = 0;
    switch (s->kind) {
    case KIND_STRING:
        if (strlen(value) >= s->size) {
            snprintf(err, err_cap, "%s: value too long (at most %zu bytes)", source, s->size - 1);
            return -EINVAL;
        }
        strcpy(field, value);
        return 0;
    case KIND_DURATION:
        rc = wsg_parse_duration_ms(value, &num);
        break;
    case KIND_SIZE:
        rc = wsg_parse_size(value, &num);
        break;
    case KIND_UINT:
        rc = wsg_parse_uint(value, 0, UINT64_MAX, &num);
        break;
    case KIND_BOOL: {
        bool b;
        if (wsg_parse_bool(value, &b) < 0) {
            snprintf(err, err_cap, "%s: bad value \"%s\" (expected 1/0, true/false, yes/no or on/off)",
                     source, value);
            return -EINVAL;
        }
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case KIND_LEVEL: {
        wsg_log_level_t level;
        if (wsg_log_parse_level(value, &level) < 0) {
            snprintf(err, err_cap, "%s: bad value \"%s\" (expected debug, info, warn or error)", source,
                     value);
            return -EINVAL;
        }
        memcpy(field, &level, sizeof level);
        return 0;
    }
    }
    if (rc < 0) {
        const char *expect = s->kind == KIND_DURATION ? "a duration such as 250ms, 4s or 1m"
                             : s->kind == KIND_SIZE   ? "a size such as 16KiB or 1048576"
                                                      : "a whole number";
        snprintf(err, err_cap, "%s: bad value \"%s\" (expected %s)", source, value, expect);
        return -EINVAL;
    }
    if (num < s->min || num > s->max) {
        snprintf(err, err_cap, "%s: value \"%s\" out of range [%llu, %llu]%s", source, value,
                 (unsigned long long)s->min, (unsigned long long)s->max,
                 s->kind == KIND_DURATION ? " ms" : (s->kind == KIND_SIZE ? " bytes" : ""));
        return -EINVAL;
    }
    memcpy(field, &num, sizeof num);
    return 0;
}

/* Splits "host:port", "[v6]:port" or ":port" (all interfaces) into `host` (capacity 256) and `*port`. */
static int parse_host_port(const char *s, const char *name, char *host_out, uint16_t *port_out, char *err,
                           size_t err_cap)
{
    const char *colon = strrchr(s, ':');
    const char *host = s;
    size_t host_len;
    uint64_t port;
    if (colon == NULL)
        goto Error;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close + 1 != colon)
            goto Error;
        host = s + 1;
        host_len = (size_t)(close - host);
    } else {
        host_len = (size_t)(colon - s);
    }
    if (host_len == 0) {
        host = "0.0.0.0";
        host_len = 7;
    }
    if (host_len >= 256 || wsg_parse_uint(colon + 1, 0, 65535, &port) < 0)
        goto Error;
    memcpy(host_out, host, host_len);
    host_out[host_len] = '\0';
    *port_out = (uint16_t)port;
    return 0;
Error:
    snprintf(err, err_cap, "%s: bad address \"%s\" (expected host:port, [v6]:port or :port)", name, s);
    return -EINVAL;
}

/* The WSGATE_REDIS_TLS_* settings: only with a rediss URL, and loaded now so that a bad file stops the start.
 */
static int check_redis_tls(const wsg_config_t *cfg, char *err, size_t err_cap)
{
    const char *set = cfg->redis_tls_ca[0]     ? "WSGATE_REDIS_TLS_CA"
                      : cfg->redis_tls_cert[0] ? "WSGATE_REDIS_TLS_CERT"
                      : cfg->redis_tls_key[0]  ? "WSGATE_REDIS_TLS_KEY"
                      : cfg->redis_tls_sni[0]  ? "WSGATE_REDIS_TLS_SNI"
                                               : NULL;
    if (!cfg->redis.is_tls) {
        if (set != NULL) {
            snprintf(err, err_cap, "%s is set but REDIS_URL is not rediss:// or rediss-sentinel://", set);
            return -EINVAL;
        }
        return 0;
    }
    wsg_tls_t *tls = NULL;
    char why[400];
    if (wsg_tls_new(&(wsg_tls_options_t){WSG_REDIS_TLS_OPTIONS(cfg)}, &tls, why, sizeof why) < 0) {
        snprintf(err, err_cap, "WSGATE_REDIS_TLS: %s", why);
        return -EINVAL;
    }
    wsg_tls_free(tls);
    return 0;
}

/* WSGATE_AUTH_URL: "http(s)://host[:port][/path]". The host is resolved for every request, without blocking
 * the loop (gateway/auth_client.c): the gateway starts before its backend and follows it when it moves. */
static int parse_auth_url(wsg_config_t *cfg, char *err, size_t err_cap)
{
    const char *url = cfg->auth_url;
    const char *host;
    if (strncmp(url, "http://", 7) == 0) {
        host = url + 7;
    } else if (strncmp(url, "https://", 8) == 0) {
        host = url + 8;
        cfg->auth_is_tls = true;
    } else {
        snprintf(err, err_cap, "WSGATE_AUTH_URL: must start with http:// or https:// (got \"%s\")", url);
        return -EINVAL;
    }
    const char *default_port = cfg->auth_is_tls ? ":443" : ":80";
    const char *slash = strchr(host, '/');
    size_t authority_len = slash ? (size_t)(slash - host) : strlen(host);
    char authority[300];
    if (authority_len == 0 || authority_len >= sizeof authority) {
        snprintf(err, err_cap, "WSGATE_AUTH_URL: bad host in \"%s\"", url);
        return -EINVAL;
    }
    memcpy(authority, host, authority_len);
    authority[authority_len] = '\0';
    if (strchr(authority, ':') == NULL || authority[0] == '[') {
        if (authority[0] == '[' && strstr(authority, "]:") == NULL && authority_len + 4 < sizeof authority)
            strcat(authority, default_port);
        else if (authority[0] != '[' && authority_len + 4 < sizeof authority)
            strcat(authority, default_port);
    }
    if (parse_host_port(authority, "WSGATE_AUTH_URL", cfg->auth_host, &cfg->auth_port, err, err_cap) < 0)
        return -EINVAL;
    snprintf(cfg->auth_path, sizeof cfg->auth_path, "%s", slash ? slash : "/");
    return 0;
}

static const setting_t *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (strlen(settings[i].flag) == len && strncmp(settings[i].flag, name, len) == 0)
            return &settings[i];
    return NULL;
}

int wsg_config_load(wsg_config_t *cfg, int argc, char **argv, int first_arg, wsg_config_action_t *action,
                    char *err, size_t err_cap)
{
    char source[128];
    bool has_shutdown_notice = false;
    memset(cfg, 0, sizeof *cfg);
    *action = WSG_CONFIG_RUN;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (apply(cfg, &settings[i], settings[i].default_value, settings[i].env, err, err_cap) < 0)
            return -EINVAL; /* a default that does not parse is a bug, but say so rather than crash */
        const char *value = getenv(settings[i].env);
        if (value != NULL && apply(cfg, &settings[i], value, settings[i].env, err, err_cap) < 0)
            return -EINVAL;
        if (value != NULL && settings[i].offset == offsetof(wsg_config_t, shutdown_notice))
            has_shutdown_notice = true;
    }
    for (int i = first_arg; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *action = WSG_CONFIG_HELP;
            return 0;
        }
        if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
            *action = WSG_CONFIG_VERSION;
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, err_cap, "unexpected argument \"%s\" (see --help)", arg);
            return -EINVAL;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const setting_t *s = find_flag(name, name_len);
        if (s == NULL) {
            snprintf(err, err_cap, "unknown option \"%.*s\" (see --help)", (int)(name_len + 2), arg);
            return -EINVAL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (value == NULL) {
            if (i + 1 >= argc) {
                snprintf(err, err_cap, "option --%s needs a value", s->flag);
                return -EINVAL;
            }
            value = argv[++i];
        }
        snprintf(source, sizeof source, "--%s", s->flag);
        if (apply(cfg, s, value, source, err, err_cap) < 0)
            return -EINVAL;
        if (s->offset == offsetof(wsg_config_t, shutdown_notice))
            has_shutdown_notice = true;
    }
    if (parse_host_port(cfg->listen, "WSGATE_LISTEN", cfg->listen_host, &cfg->listen_port, err, err_cap) < 0)
        return -EINVAL;
    if (cfg->admin_listen[0] != '\0' && parse_host_port(cfg->admin_listen, "WSGATE_ADMIN_LISTEN",
                                                        cfg->admin_host, &cfg->admin_port, err, err_cap) < 0)
        return -EINVAL;
    const char *why = NULL;
    if (wsg_redis_url_parse(cfg->redis_url, &cfg->redis, &why) < 0) {
        snprintf(err, err_cap, "REDIS_URL: %s", why ? why : "bad URL");
        return -EINVAL;
    }
    if (cfg->redis_sharded && !cfg->redis.is_cluster) {
        snprintf(err, err_cap,
                 "WSGATE_REDIS_SHARDED=1 needs a Redis Cluster URL (redis-cluster:// or rediss-cluster://)");
        return -EINVAL;
    }
    if (check_redis_tls(cfg, err, err_cap) < 0)
        return -EINVAL;
    size_t bad_at = 0;
    if (wsg_glob_list_check(cfg->streams, strlen(cfg->streams), &bad_at) < 0) {
        snprintf(err, err_cap,
                 "WSGATE_STREAMS: malformed pattern at \"%.60s\" (an unclosed '[' or a trailing '\\')",
                 cfg->streams + bad_at);
        return -EINVAL;
    }
    if ((cfg->redis_sentinel_password[0] != '\0' || cfg->redis_sentinel_username[0] != '\0') &&
        !cfg->redis.is_sentinel) {
        snprintf(err, err_cap, "WSGATE_REDIS_SENTINEL_%s is set but REDIS_URL is not redis-sentinel://",
                 cfg->redis_sentinel_password[0] != '\0' ? "PASSWORD" : "USERNAME");
        return -EINVAL;
    }
    snprintf(cfg->redis.sentinel_username, sizeof cfg->redis.sentinel_username, "%s",
             cfg->redis_sentinel_username);
    snprintf(cfg->redis.sentinel_password, sizeof cfg->redis.sentinel_password, "%s",
             cfg->redis_sentinel_password);
    if (cfg->websocket_url[0] != '/') {
        snprintf(err, err_cap, "WEBSOCKET_URL: must start with '/' (got \"%s\")", cfg->websocket_url);
        return -EINVAL;
    }
    cfg->heartbeat_len = strlen(cfg->heartbeat);
    if (cfg->max_pending_hard == 0) {
        cfg->max_pending_hard = cfg->max_pending * 4;
    } else if (cfg->max_pending_hard < cfg->max_pending) {
        snprintf(err, err_cap, "WSGATE_MAX_PENDING_HARD: %llu is below WSGATE_MAX_PENDING (%llu)",
                 (unsigned long long)cfg->max_pending_hard, (unsigned long long)cfg->max_pending);
        return -EINVAL;
    }
    if (strcmp(cfg->slow_consumer, "drop") == 0) {
        cfg->is_slow_drop = true;
    } else if (strcmp(cfg->slow_consumer, "close") != 0) {
        snprintf(err, err_cap, "WSGATE_SLOW_CONSUMER: bad value \"%s\" (expected close or drop)",
                 cfg->slow_consumer);
        return -EINVAL;
    }
    if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        snprintf(err, err_cap, "WSGATE_LOG_FORMAT: bad value \"%s\" (expected text or json)",
                 cfg->log_format);
        return -EINVAL;
    }
    if (cfg->jwt_secret_file[0] != '\0') {
        FILE *f = fopen(cfg->jwt_secret_file, "rb");
        if (f == NULL) {
            snprintf(err, err_cap, "WSGATE_JWT_SECRET_FILE: cannot open \"%s\": %s", cfg->jwt_secret_file,
                     strerror(errno));
            return -EINVAL;
        }
        size_t n = fread(cfg->jwt_secret, 1, sizeof cfg->jwt_secret - 1, f);
        bool too_long = n == sizeof cfg->jwt_secret - 1 && fgetc(f) != EOF;
        fclose(f);
        if (too_long) {
            snprintf(err, err_cap, "WSGATE_JWT_SECRET_FILE: secret longer than %zu bytes",
                     sizeof cfg->jwt_secret - 1);
            return -EINVAL;
        }
        while (n > 0 && (cfg->jwt_secret[n - 1] == '\n' || cfg->jwt_secret[n - 1] == '\r'))
            n--;
        cfg->jwt_secret[n] = '\0';
        cfg->jwt_secret_len = n;
        if (n == 0) {
            snprintf(err, err_cap, "WSGATE_JWT_SECRET_FILE: \"%s\" is empty", cfg->jwt_secret_file);
            return -EINVAL;
        }
    } else {
        cfg->jwt_secret_len = strlen(cfg->jwt_secret);
    }
    if (cfg->auth_url[0] != '\0' && parse_auth_url(cfg, err, err_cap) < 0)
        return -EINVAL;
    if (cfg->auth_ca[0] != '\0' && !cfg->auth_is_tls) {
        snprintf(err, err_cap, "WSGATE_AUTH_CA is set but WSGATE_AUTH_URL is not https://");
        return -EINVAL;
    }
    if (cfg->auth_is_tls) {
        /* Loaded now so that a bad file stops the start, not every client later. */
        wsg_tls_t *tls = NULL;
        wsg_tls_options_t tls_opts = {.ca_file = cfg->auth_ca};
        char tls_why[400];
        if (wsg_tls_new(&tls_opts, &tls, tls_why, sizeof tls_why) < 0) {
            snprintf(err, err_cap, "WSGATE_AUTH_CA: %s", tls_why);
            return -EINVAL;
        }
        wsg_tls_free(tls);
    }
    const char *proxies_why = NULL;
    if (wsg_cidr_list_parse(cfg->trusted_proxies, &cfg->proxies, &proxies_why) < 0) {
        snprintf(err, err_cap, "WSGATE_TRUSTED_PROXIES: %s (got \"%s\")", proxies_why, cfg->trusted_proxies);
        return -EINVAL;
    }
    if (cfg->allowed_origins[0] != '\0' && wsg_origin_list_parse(cfg->allowed_origins, &cfg->origins) < 0) {
        snprintf(err, err_cap, "WSGATE_ALLOWED_ORIGINS: %s at byte %zu", cfg->origins.err_reason,
                 cfg->origins.err_pos);
        return -EINVAL;
    }
    if (cfg->publish_burst == 0)
        cfg->publish_burst = cfg->publish_rate;
    if (cfg->workers == 0) {
        unsigned cpus = uv_available_parallelism();
        cfg->workers = cpus == 0 ? 1 : cpus > 64 ? 64 : cpus;
    }
    if (strcmp(cfg->heartbeat_mode, "json") == 0) {
        cfg->is_json_heartbeat = true;
    } else if (strcmp(cfg->heartbeat_mode, "ws4redis") != 0 && strcmp(cfg->heartbeat_mode, "magic") != 0) {
        snprintf(err, err_cap, "WSGATE_HEARTBEAT_MODE: bad value \"%s\" (expected ws4redis or json)",
                 cfg->heartbeat_mode);
        return -EINVAL;
    }
    /* ws4redis.js hands every message to the application, so its dialect gets no notice unless asked for. */
    if (!has_shutdown_notice && cfg->is_json_heartbeat)
        snprintf(cfg->shutdown_notice, sizeof cfg->shutdown_notice, "%s", WSG_HEARTBEAT_JSON_SHUTDOWN);
    cfg->shutdown_notice_len = strlen(cfg->shutdown_notice);
    return 0;
}

void wsg_config_print_usage(const char *program)
{
    printf("Usage: %s [--option value]...\n"
           "       %s --help | --version\n"
           "       %s publish --facility F [--broadcast] [--user U]... [--group G]... [--session S]... "
           "MESSAGE|-\n\n"
           "wsgate relays Redis pub/sub to WebSocket clients, ws4redis style:\n"
           "  ws://host:8080/ws/<facility>?subscribe-broadcast&publish-broadcast&echo\n\n"
           "Every setting is an environment variable; the matching flag wins over it.\n\n",
           program, program, program);
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const setting_t *s = &settings[i];
        printf("  --%-20s %-26s default: %s\n      %s\n", s->flag, s->env,
               s->default_value[0] ? s->default_value : "(empty)", s->help);
    }
    printf("\nDurations take ms, s, m or h (250ms, 4s, 1m); sizes take KiB, MiB or GiB (16KiB).\n");
}

void wsg_config_log(const wsg_config_t *cfg)
{
    if (cfg->token_cookie[0] != '\0' && cfg->allowed_origins[0] == '\0')
        WSG_WARN("insecure_config",
                 WSG_F_STR("msg",
                           "WSGATE_TOKEN_COOKIE is set without WSGATE_ALLOWED_ORIGINS: any web page a user "
                           "visits can open a WebSocket with the user's cookie (cross-site WebSocket "
                           "hijacking)"));
    if (cfg->redis.is_tls && !cfg->redis_tls_verify)
        WSG_WARN("insecure_config",
                 WSG_F_STR("msg",
                           "WSGATE_REDIS_TLS_VERIFY=0: any certificate is accepted from Redis, so anyone "
                           "on the path can read and forge every message"));
    char masked[1100];
    const char *url = cfg->redis_url;
    const char *at = strrchr(url, '@');
    const char *scheme_end = strstr(url, "://");
    if (at != NULL && scheme_end != NULL && scheme_end < at) {
        const char *user_end = memchr(scheme_end + 3, ':', (size_t)(at - scheme_end - 3));
        size_t keep = (size_t)((user_end ? user_end : scheme_end + 2) - url) + 1;
        snprintf(masked, sizeof masked, "%.*s***%s", (int)keep, url, at);
    } else {
        snprintf(masked, sizeof masked, "%s", url);
    }
    WSG_INFO(
        "config", WSG_F_STR("listen", cfg->listen), WSG_F_STR("redis_url", masked),
        WSG_F_STR("websocket_url", cfg->websocket_url),
        WSG_F_STR("prefix", cfg->prefix[0] ? cfg->prefix : "(none)"), WSG_F_UINT("expire", cfg->expire_s),
        cfg->heartbeat_len ? WSG_F_BYTES("heartbeat", cfg->heartbeat, cfg->heartbeat_len)
                           : WSG_F_STR("heartbeat", "(off)"),
        WSG_F_UINT("heartbeat_interval_ms", cfg->heartbeat_interval_ms),
        WSG_F_STR("heartbeat_mode", cfg->is_json_heartbeat ? "json" : "ws4redis"),
        WSG_F_INT("json_ping", cfg->json_ping), WSG_F_UINT("ping_interval_ms", cfg->ping_interval_ms),
        WSG_F_UINT("idle_timeout_ms", cfg->idle_timeout_ms), WSG_F_UINT("max_payload", cfg->max_payload),
        WSG_F_UINT("max_pending", cfg->max_pending), WSG_F_UINT("max_pending_hard", cfg->max_pending_hard),
        WSG_F_UINT("slow_grace_ms", cfg->slow_grace_ms), WSG_F_STR("slow_consumer", cfg->slow_consumer),
        WSG_F_UINT("handshake_timeout_ms", cfg->handshake_timeout_ms),
        WSG_F_UINT("close_timeout_ms", cfg->close_timeout_ms),
        WSG_F_UINT("shutdown_timeout_ms", cfg->shutdown_timeout_ms),
        WSG_F_UINT("publish_queue", cfg->publish_queue), WSG_F_UINT("max_connections", cfg->max_connections),
        WSG_F_UINT("publish_rate", cfg->publish_rate), WSG_F_UINT("publish_burst", cfg->publish_burst),
        WSG_F_UINT("redis_timeout_ms", cfg->redis_timeout_ms),
        WSG_F_UINT("redis_retry_max_ms", cfg->redis_retry_max_ms), WSG_F_UINT("workers", cfg->workers),
        WSG_F_STR("admin_listen", cfg->admin_listen[0] ? cfg->admin_listen : "(off)"),
        WSG_F_INT("demo", cfg->demo), WSG_F_STR("auth", cfg->jwt_secret_len ? "hs256" : "(none)"),
        WSG_F_STR("token_cookie", cfg->token_cookie[0] ? cfg->token_cookie : "(none)"),
        WSG_F_INT("anonymous_publish", cfg->anonymous_publish),
        WSG_F_STR("auth_url", cfg->auth_url[0] ? cfg->auth_url : "(none)"),
        WSG_F_STR("allowed_origins", cfg->allowed_origins[0] ? "(list)" : "(any)"),
        WSG_F_STR("trusted_proxies", cfg->trusted_proxies[0] ? cfg->trusted_proxies : "(none)"),
        WSG_F_STR("log_level", wsg_log_level_name(cfg->log_level)), WSG_F_STR("log_format", cfg->log_format));
}
