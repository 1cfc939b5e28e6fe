/* Settings: environment variables with ws4redis's names where they exist, matching flags that win. */
#ifndef WSG_GATEWAY_CONFIG_H
#define WSG_GATEWAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"
#include "forwarded.h"
#include "origin.h"
#include "redis_url.h"

/** The TLS options of the Redis links, as an initializer of wsg_tls_options_t (redis/transport.h). */
#define WSG_REDIS_TLS_OPTIONS(cfg)                                                                           \
    .ca_file = (cfg)->redis_tls_ca, .cert_file = (cfg)->redis_tls_cert, .key_file = (cfg)->redis_tls_key,    \
    .skip_verify = !(cfg)->redis_tls_verify

typedef struct wsg_config {
    char listen[300];      /**< WSGATE_LISTEN, "host:port" */
    char listen_host[256]; /**< parsed from `listen` (IPv6 without brackets) */
    uint16_t listen_port;
    char redis_url[1024];    /**< REDIS_URL */
    wsg_redis_addr_t redis;  /**< parsed from `redis_url` */
    char websocket_url[256]; /**< WEBSOCKET_URL, e.g. "/ws/" */
    char prefix[256];        /**< WS4REDIS_PREFIX, "" when unset */
    uint64_t expire_s;       /**< WS4REDIS_EXPIRE, 0 = no SETEX */
    char heartbeat[1024];    /**< WS4REDIS_HEARTBEAT, "" when unset */
    size_t heartbeat_len;
    uint64_t heartbeat_interval_ms; /**< WSGATE_HEARTBEAT_INTERVAL */
    char heartbeat_mode[16];        /**< WSGATE_HEARTBEAT_MODE: "ws4redis" (magic string) or "json" */
    bool is_json_heartbeat;         /**< heartbeat_mode is "json" */
    bool json_ping;                 /**< WSGATE_JSON_PING: answer {"type":"ping"} with {"type":"pong"} */
    uint64_t ping_interval_ms;      /**< WSGATE_PING_INTERVAL: protocol PING to every client; 0 = off */
    uint64_t idle_timeout_ms;   /**< WSGATE_IDLE_TIMEOUT: close 4000 after this long without input; 0 = off */
    char shutdown_notice[1024]; /**< WSGATE_SHUTDOWN_NOTICE, resolved: "" = none */
    size_t shutdown_notice_len;
    uint64_t max_payload; /**< WSGATE_MAX_PAYLOAD, bytes of one inbound message */
    uint64_t max_pending; /**< WSGATE_MAX_PENDING: soft limit of a client's pending output (bytes) */
    uint64_t
        max_pending_hard; /**< WSGATE_MAX_PENDING_HARD: hard limit, resolved (0 in the variable = 4 x soft) */
    uint64_t slow_grace_ms;        /**< WSGATE_SLOW_GRACE: time over the soft limit before a client is slow */
    char slow_consumer[8];         /**< WSGATE_SLOW_CONSUMER: "close" (1008) or "drop" (whole messages) */
    bool is_slow_drop;             /**< slow_consumer is "drop" */
    uint64_t handshake_timeout_ms; /**< WSGATE_HANDSHAKE_TIMEOUT */
    uint64_t close_timeout_ms;     /**< WSGATE_CLOSE_TIMEOUT: wait for the peer's close frame */
    uint64_t shutdown_timeout_ms;  /**< WSGATE_SHUTDOWN_TIMEOUT */
    uint64_t publish_queue;        /**< WSGATE_PUBLISH_QUEUE: commands kept while Redis is unreachable */
    uint64_t max_connections;      /**< WSGATE_MAX_CONNECTIONS: process-wide cap, 503 beyond it; 0 = none */
    uint64_t publish_rate;         /**< WSGATE_PUBLISH_RATE: client messages per second; 0 = unlimited */
    uint64_t publish_burst;        /**< WSGATE_PUBLISH_BURST: messages a client may send at once */
    uint64_t redis_timeout_ms;     /**< WSGATE_REDIS_TIMEOUT: connect timeout */
    uint64_t redis_retry_max_ms;   /**< WSGATE_REDIS_RETRY_MAX: reconnect backoff ceiling */
    char redis_sentinel_username[128]; /**< WSGATE_REDIS_SENTINEL_USERNAME */
    char redis_sentinel_password[256]; /**< WSGATE_REDIS_SENTINEL_PASSWORD */
    bool redis_sharded;                /**< WSGATE_REDIS_SHARDED: cluster pub/sub with SSUBSCRIBE/SPUBLISH */
    char streams[4096];     /**< WSGATE_STREAMS: glob patterns of stream channels (full names); "" = none */
    uint64_t stream_maxlen; /**< WSGATE_STREAM_MAXLEN: XADD MAXLEN ~ of every stream; 0 = no trimming */
    uint64_t stream_replay_max; /**< WSGATE_STREAM_REPLAY_MAX: most entries one resume replays */
    uint64_t stream_poll_ms;    /**< WSGATE_STREAM_POLL: Redis Cluster, the wait between empty polls */
    char redis_tls_ca[1024];    /**< WSGATE_REDIS_TLS_CA: PEM CAs for rediss; "" = the system's store */
    char redis_tls_cert[1024];  /**< WSGATE_REDIS_TLS_CERT: client certificate; "" = none */
    char redis_tls_key[1024];   /**< WSGATE_REDIS_TLS_KEY: its key; "" = in the certificate's file */
    char redis_tls_sni[256];    /**< WSGATE_REDIS_TLS_SNI: name to send and verify; "" = the URL's host */
    bool redis_tls_verify;      /**< WSGATE_REDIS_TLS_VERIFY: false = any certificate (test servers) */
    wsg_log_level_t log_level;  /**< WSGATE_LOG_LEVEL */
    char log_format[8];         /**< WSGATE_LOG_FORMAT: "text" or "json" */
    char admin_listen[300];     /**< WSGATE_ADMIN_LISTEN: metrics and health endpoints; "" = off */
    char admin_host[256];       /**< parsed from `admin_listen` */
    uint16_t admin_port;
    bool demo;             /**< WSGATE_DEMO: serve the demo page at / */
    char jwt_secret[4096]; /**< WSGATE_JWT_SECRET or the contents of WSGATE_JWT_SECRET_FILE; "" = no auth */
    size_t jwt_secret_len;
    char jwt_secret_file[1024]; /**< WSGATE_JWT_SECRET_FILE */
    uint64_t jwt_leeway_ms;     /**< WSGATE_JWT_LEEWAY */
    char token_cookie[128];     /**< WSGATE_TOKEN_COOKIE: cookie carrying the token; "" = none */
    uint64_t max_groups;        /**< WSGATE_MAX_GROUPS */
    bool anonymous_publish;     /**< WSGATE_ANONYMOUS_PUBLISH: clients without identity may publish */
    char auth_url[1024]; /**< WSGATE_AUTH_URL: http(s)://host[:port]/path of the authorization callback */
    char auth_host[256]; /**< parsed from `auth_url` (for the Host header) */
    uint16_t auth_port;
    char auth_path[1024];       /**< path and query of `auth_url` */
    uint64_t auth_timeout_ms;   /**< WSGATE_AUTH_TIMEOUT */
    bool auth_is_tls;           /**< `auth_url` is https:// */
    char auth_ca[1024];         /**< WSGATE_AUTH_CA: PEM CAs for https; "" = the system's store */
    uint64_t auth_keepalive_ms; /**< WSGATE_AUTH_KEEPALIVE: idle connections kept this long; 0 = none */
    char allowed_origins[4096]; /**< WSGATE_ALLOWED_ORIGINS: comma list; "" = any */
    wsg_origin_list_t origins;  /**< parsed from `allowed_origins` */
    char trusted_proxies[1024]; /**< WSGATE_TRUSTED_PROXIES: networks whose X-Forwarded-For is believed */
    wsg_cidr_list_t proxies;    /**< parsed from `trusted_proxies` */
    uint64_t workers; /**< WSGATE_WORKERS, resolved: event-loop threads (0 in the variable = CPUs) */
} wsg_config_t;

/** What wsg_config_load() asks of the caller. */
typedef enum wsg_config_action {
    WSG_CONFIG_RUN,
    WSG_CONFIG_HELP,
    WSG_CONFIG_VERSION,
} wsg_config_action_t;

/** Fills `cfg` from defaults, then the environment (`envp`-style lookups through getenv), then the
 *  command-line flags `argv[first_arg..argc)`. On success returns 0 and the action. On a bad value returns
 *  -EINVAL after writing a message that names the setting into `err` (capacity `err_cap`). */
int wsg_config_load(wsg_config_t *cfg, int argc, char **argv, int first_arg, wsg_config_action_t *action,
                    char *err, size_t err_cap);

/** Prints the usage text, listing every flag, variable and default, to stdout. */
void wsg_config_print_usage(const char *program);

/** Logs the effective configuration, one line, with the Redis password masked. */
void wsg_config_log(const wsg_config_t *cfg);

#endif
