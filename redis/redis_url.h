/* REDIS_URL parsing: redis[s]://[[user]:password@]host[:port][/db], unix:///path[?db=N],
 * redis[s]-sentinel://host:port,.../master[/db], redis[s]-cluster://host:port,host:port,.... Pure code. */
#ifndef WSG_REDIS_REDIS_URL_H
#define WSG_REDIS_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Most sentinels one URL may name. */
#define WSG_REDIS_SENTINELS_MAX 8
/** Most cluster nodes one URL may name (as seeds: the others are learnt from them). */
#define WSG_REDIS_SEEDS_MAX 8

/** Where and how to reach Redis: one server, the sentinels that name it, or the nodes of a cluster. */
typedef struct wsg_redis_addr {
    bool is_unix;       /**< true: `path` is a unix socket; false: `host`:`port` */
    bool is_tls;        /**< rediss://, rediss-sentinel:// or rediss-cluster://: TLS to every server */
    char host[256];     /**< host name or address; IPv6 literals without brackets */
    uint16_t port;      /**< default 6379 */
    char path[108];     /**< unix socket path */
    char username[128]; /**< ACL user, empty for none */
    char password[256]; /**< empty for none; percent-decoded */
    int db;             /**< database number, default 0 */
    bool is_sentinel;   /**< the master is found through `sentinels` under `master_name` */
    char master_name[128];
    char sentinel_username[128]; /**< the sentinels' ACL user (not from the URL:
                                    WSGATE_REDIS_SENTINEL_USERNAME) */
    char sentinel_password[256]; /**< the sentinels' password (WSGATE_REDIS_SENTINEL_PASSWORD); "" = the URL's
                                      credentials are tried, and a sentinel without a password is fine */
    size_t nsentinels;
    struct wsg_redis_sentinel_addr {
        char host[256];
        uint16_t port; /**< default 26379 */
    } sentinels[WSG_REDIS_SENTINELS_MAX];
    bool is_cluster; /**< a Redis Cluster, first reached through `seeds`; `host` and `path` empty, `db` 0 */
    size_t nseeds;
    struct wsg_redis_seed_addr {
        char host[256];
        uint16_t port; /**< default 6379 */
    } seeds[WSG_REDIS_SEEDS_MAX];
} wsg_redis_addr_t;

/** Parses `url` into `*out` (fully overwritten). Accepted forms:
 * "redis-sentinel://[[user]:password@]host1[:port1], host2[:port2]/master_name[/db]" (sentinel ports default
 * to 26379; user and password are the master's),
 * "redis-cluster://[[user]:password@]host1[:port1],host2[:port2],...[/0]" (one to 8 nodes of the cluster,
 * ports default to 6379, IPv6 in brackets; user and password are every node's; a database other than 0 is
 * refused: "Redis Cluster has only database 0"), "redis://host", "redis://host:port", "rediss://...",
 * "rediss-sentinel://..." and "rediss-cluster://..." (the same over TLS), "redis://:password@host:port/db",
 * "redis://user:password@host/db", "redis://[::1]:6380", "unix:///run/redis.sock",
 * "unix:///run/redis.sock?db=2" (also "redis+unix://" / "redis-socket://"), and a bare "host:port". On error
 * returns -EINVAL and points `*why` (when not NULL) at a static explanation
 *  ("unsupported scheme (...)", "bad port", "bad database number", ...).
 *  Borrows `url`. */
int wsg_redis_url_parse(const char *url, wsg_redis_addr_t *out, const char **why);

#endif
