/* REDIS_URL parsing after redis-py's from_url(), minus TLS; self-contained so that it needs no hiredis. */
#include "redis_url.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "str.h"

typedef struct span {
    const char *ptr;
    size_t len;
} span_t;

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool span_eq_nocase(span_t s, const char *lit)
{
    size_t n = strlen(lit);
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (to_lower(s.ptr[i]) != to_lower(lit[i]))
            return false;
    return true;
}

/* The index of the first of `chars` in `s`, or s.len. */
static size_t span_find(span_t s, const char *chars)
{
    for (size_t i = 0; i < s.len; i++)
        if (strchr(chars, s.ptr[i]) != NULL)
            return i;
    return s.len;
}

/* Percent-decodes `s` into `out` (capacity `cap`, NUL-terminated). A '%' without two hex digits stays as it
 * is, like Python's unquote, so that passwords that worked with redis-py keep working. Returns false when
 * the result does not fit or holds a NUL (which a C string cannot carry). */
static bool decode_into(span_t s, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len;) {
        char c = s.ptr[i];
        if (c == '%' && s.len - i >= 3 && wsg_hex_value(s.ptr[i + 1]) >= 0 &&
            wsg_hex_value(s.ptr[i + 2]) >= 0) {
            c = (char)(wsg_hex_value(s.ptr[i + 1]) << 4 | wsg_hex_value(s.ptr[i + 2]));
            i += 3;
        } else {
            i++;
        }
        if (c == '\0' || n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

/* A whole decimal number in [min, max]; no sign, no spaces. */
static bool parse_number(span_t s, long long min, long long max, long long *out)
{
    if (s.len == 0)
        return false;
    while (s.len > 1 && s.ptr[0] == '0') {
        s.ptr++;
        s.len--;
    }
    if (s.len > 10) /* 10 digits fit in a long long; INT_MAX has 10 */
        return false;
    long long v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (s.ptr[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool is_ipv6_char(char c)
{
    return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' || c == '.';
}

/* "[user]:password" or "user" (redis-py reads a lone name as the ACL user). */
static const char *parse_userinfo(span_t s, wsg_redis_addr_t *out)
{
    size_t colon = span_find(s, ":");
    span_t user = {s.ptr, colon};
    if (!decode_into(user, out->username, sizeof out->username))
        return "bad user name (too long, or %00)";
    if (colon < s.len) {
        span_t pass = {s.ptr + colon + 1, s.len - colon - 1};
        if (!decode_into(pass, out->password, sizeof out->password))
            return "bad password (too long, or %00)";
    }
    return NULL;
}

/* "host", "host:port", "[v6]", "[v6]:port"; an empty host means the local one. */
static const char *parse_hostport(span_t s, wsg_redis_addr_t *out)
{
    span_t host = s, port = {NULL, 0};
    bool has_port = false;
    if (s.len > 0 && s.ptr[0] == '[') {
        size_t close = span_find(s, "]");
        if (close == s.len)
            return "bad host ('[' without ']')";
        host = (span_t){s.ptr + 1, close - 1};
        span_t rest = {s.ptr + close + 1, s.len - close - 1};
        if (rest.len > 0) {
            if (rest.ptr[0] != ':')
                return "bad host (text after ']')";
            port = (span_t){rest.ptr + 1, rest.len - 1};
            has_port = true;
        }
        if (host.len == 0 || span_find(host, ":") == host.len)
            return "bad host (not an IPv6 address in brackets)";
        for (size_t i = 0; i < host.len; i++)
            if (!is_ipv6_char(host.ptr[i]))
                return "bad host (not an IPv6 address in brackets)";
    } else {
        size_t colon = span_find(s, ":");
        if (colon < s.len) {
            host.len = colon;
            port = (span_t){s.ptr + colon + 1, s.len - colon - 1};
            has_port = true;
            if (span_find(port, ":") < port.len)
                return "bad host (IPv6 addresses need brackets: [::1]:6379)";
        }
        for (size_t i = 0; i < host.len; i++)
            if (!is_host_char(host.ptr[i]))
                return "bad host";
    }
    if (host.len >= sizeof out->host)
        return "bad host (too long)";
    if (host.len == 0)
        strcpy(out->host, "127.0.0.1");
    else {
        memcpy(out->host, host.ptr, host.len);
        out->host[host.len] = '\0';
    }
    if (has_port) {
        long long v;
        if (!parse_number(port, 1, 65535, &v))
            return "bad port";
        out->port = (uint16_t)v;
    }
    return NULL;
}

/* "?db=N[&...]": the only parameter understood; anything else is refused rather than silently ignored. */
static const char *parse_query(span_t q, bool *has_db, wsg_redis_addr_t *out)
{
    while (q.len > 0) {
        size_t amp = span_find(q, "&");
        span_t part = {q.ptr, amp};
        q = amp < q.len ? (span_t){q.ptr + amp + 1, q.len - amp - 1} : (span_t){q.ptr + q.len, 0};
        if (part.len == 0)
            continue;
        size_t eq = span_find(part, "=");
        span_t key = {part.ptr, eq};
        if (!span_eq_nocase(key, "db"))
            return "unsupported URL parameter (only db=N)";
        if (*has_db)
            return "bad database number (given twice)";
        long long v;
        if (eq == part.len || !parse_number((span_t){part.ptr + eq + 1, part.len - eq - 1}, 0, INT_MAX, &v))
            return "bad database number";
        out->db = (int)v;
        *has_db = true;
    }
    return NULL;
}

/* Parses the user info of "[userinfo@]hosts" and leaves `*auth` on the hosts. The last '@' ends the user
 * info: passwords may hold a raw '@', host names never do. */
static const char *take_userinfo(span_t *auth, wsg_redis_addr_t *out)
{
    for (size_t i = auth->len; i > 0; i--) {
        if (auth->ptr[i - 1] == '@') {
            const char *err = parse_userinfo((span_t){auth->ptr, i - 1}, out);
            *auth = (span_t){auth->ptr + i, auth->len - i};
            return err;
        }
    }
    return NULL;
}

/* After "redis://" (or the whole of a bare "host:port"): [userinfo@]hostport[/db][?db=N]. */
static const char *parse_tcp(span_t s, wsg_redis_addr_t *out)
{
    size_t auth_end = span_find(s, "/?");
    span_t auth = {s.ptr, auth_end};
    span_t rest = {s.ptr + auth_end, s.len - auth_end};
    const char *err;

    if ((err = take_userinfo(&auth, out)) != NULL)
        return err;
    if ((err = parse_hostport(auth, out)) != NULL)
        return err;

    size_t qmark = span_find(rest, "?");
    span_t path = {rest.ptr, qmark};
    bool has_db = false;
    if (path.len > 1) {
        long long v;
        if (!parse_number((span_t){path.ptr + 1, path.len - 1}, 0, INT_MAX, &v))
            return "bad database number";
        out->db = (int)v;
        has_db = true;
    }
    if (qmark < rest.len)
        return parse_query((span_t){rest.ptr + qmark + 1, rest.len - qmark - 1}, &has_db, out);
    return NULL;
}

/* One entry of a sentinel or cluster node list: "host[:port]" (or "[v6][:port]") into `host` (256 bytes). */
static const char *parse_list_entry(span_t one, uint16_t default_port, char host[256], uint16_t *port)
{
    wsg_redis_addr_t tmp = {.port = default_port};
    const char *err = parse_hostport(one, &tmp);
    if (err != NULL)
        return err;
    memcpy(host, tmp.host, sizeof tmp.host);
    *port = tmp.port;
    return NULL;
}

/* After "redis-sentinel://": [userinfo@]host[:port],host[:port]/master_name[/db]. */
static const char *parse_sentinel(span_t s, wsg_redis_addr_t *out)
{
    out->is_sentinel = true;
    size_t slash = span_find(s, "/");
    if (slash == s.len)
        return "bad sentinel URL (expected redis-sentinel://host:26379,host:26379/master_name)";
    span_t auth = {s.ptr, slash};
    span_t path = {s.ptr + slash + 1, s.len - slash - 1};
    const char *err = take_userinfo(&auth, out);
    if (err != NULL)
        return err;
    while (auth.len > 0) {
        size_t comma = span_find(auth, ",");
        span_t one = {auth.ptr, comma};
        auth =
            comma < auth.len ? (span_t){auth.ptr + comma + 1, auth.len - comma - 1} : (span_t){auth.ptr, 0};
        if (one.len == 0)
            return "bad sentinel list (empty entry)";
        if (out->nsentinels == WSG_REDIS_SENTINELS_MAX)
            return "bad sentinel list (more than 8 sentinels)";
        struct wsg_redis_sentinel_addr *sa = &out->sentinels[out->nsentinels++];
        if ((err = parse_list_entry(one, 26379, sa->host, &sa->port)) != NULL)
            return err;
    }
    if (out->nsentinels == 0)
        return "bad sentinel list (no sentinel)";
    size_t slash2 = span_find(path, "/");
    span_t name = {path.ptr, slash2};
    if (name.len == 0 || name.len >= sizeof out->master_name)
        return "bad master name";
    for (size_t i = 0; i < name.len; i++)
        if (!is_host_char(name.ptr[i]))
            return "bad master name";
    memcpy(out->master_name, name.ptr, name.len);
    out->master_name[name.len] = '\0';
    if (slash2 < path.len) {
        long long v;
        if (!parse_number((span_t){path.ptr + slash2 + 1, path.len - slash2 - 1}, 0, INT_MAX, &v))
            return "bad database number";
        out->db = (int)v;
    }
    return NULL;
}

/* After "redis-cluster://": [userinfo@]host[:port],host[:port],...[/0][?db=0]. The nodes are only where to
 * start: the cluster tells which node serves which slot. */
static const char *parse_cluster(span_t s, wsg_redis_addr_t *out)
{
    out->is_cluster = true;
    size_t auth_end = span_find(s, "/?");
    span_t auth = {s.ptr, auth_end};
    span_t rest = {s.ptr + auth_end, s.len - auth_end};
    const char *err = take_userinfo(&auth, out);
    if (err != NULL)
        return err;
    if (auth.len == 0)
        return "bad cluster URL (expected redis-cluster://host:6379,host:6380)";
    for (;;) {
        size_t comma = span_find(auth, ",");
        span_t one = {auth.ptr, comma};
        if (one.len == 0) /* also after a trailing comma */
            return "bad cluster node list (empty entry)";
        if (out->nseeds == WSG_REDIS_SEEDS_MAX)
            return "bad cluster node list (more than 8 nodes)";
        struct wsg_redis_seed_addr *seed = &out->seeds[out->nseeds++];
        if ((err = parse_list_entry(one, 6379, seed->host, &seed->port)) != NULL)
            return err;
        if (comma == auth.len)
            break;
        auth = (span_t){auth.ptr + comma + 1, auth.len - comma - 1};
    }

    size_t qmark = span_find(rest, "?");
    span_t path = {rest.ptr, qmark};
    bool has_db = false;
    if (path.len > 1) {
        long long v;
        if (!parse_number((span_t){path.ptr + 1, path.len - 1}, 0, INT_MAX, &v))
            return "bad database number";
        out->db = (int)v;
        has_db = true;
    }
    if (qmark < rest.len &&
        (err = parse_query((span_t){rest.ptr + qmark + 1, rest.len - qmark - 1}, &has_db, out)) != NULL)
        return err;
    if (out->db != 0)
        return "bad database number (Redis Cluster has only database 0)";
    return NULL;
}

/* After "unix://": [userinfo@]/absolute/path[?db=N]. */
static const char *parse_unix(span_t s, wsg_redis_addr_t *out)
{
    out->is_unix = true;
    size_t slash = span_find(s, "/");
    span_t auth = {s.ptr, slash};
    if (auth.len > 0) {
        /* Only user info may precede the path; a host name makes no sense for a local socket. */
        if (auth.ptr[auth.len - 1] != '@')
            return "bad unix socket URL (use unix:///path/to/socket)";
        const char *err = parse_userinfo((span_t){auth.ptr, auth.len - 1}, out);
        if (err != NULL)
            return err;
    }
    span_t rest = {s.ptr + slash, s.len - slash};
    size_t qmark = span_find(rest, "?");
    span_t path = {rest.ptr, qmark};
    if (path.len < 2)
        return "bad unix socket path";
    if (!decode_into(path, out->path, sizeof out->path))
        return "bad unix socket path (too long, or %00)";
    bool has_db = false;
    if (qmark < rest.len)
        return parse_query((span_t){rest.ptr + qmark + 1, rest.len - qmark - 1}, &has_db, out);
    return NULL;
}

static const char *parse(const char *url, wsg_redis_addr_t *out)
{
    if (url == NULL || url[0] == '\0')
        return "empty URL";
    span_t all = {url, strlen(url)};
    for (size_t i = 0; i < all.len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c == 0x7f)
            return "bad character in URL (spaces and control characters must be percent-encoded)";
        if (c == '#')
            return "bad character in URL ('#' must be percent-encoded as %23)";
    }
    if (url[0] == '/')
        return "bad URL (write a unix socket as unix:///path/to/socket)";
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return parse_tcp(all, out);
    span_t scheme = {url, (size_t)(sep - url)};
    span_t rest = {sep + 3, all.len - scheme.len - 3};
    if (span_eq_nocase(scheme, "redis"))
        return parse_tcp(rest, out);
    if (span_eq_nocase(scheme, "unix") || span_eq_nocase(scheme, "redis+unix") ||
        span_eq_nocase(scheme, "redis-socket"))
        return parse_unix(rest, out);
    if (span_eq_nocase(scheme, "redis-sentinel"))
        return parse_sentinel(rest, out);
    if (span_eq_nocase(scheme, "redis-cluster"))
        return parse_cluster(rest, out);
    /* TLS: to the server, to the sentinels and the master they name, or to every node of the cluster. */
    out->is_tls = true;
    if (span_eq_nocase(scheme, "rediss"))
        return parse_tcp(rest, out);
    if (span_eq_nocase(scheme, "rediss-sentinel"))
        return parse_sentinel(rest, out);
    if (span_eq_nocase(scheme, "rediss-cluster"))
        return parse_cluster(rest, out);
    return "unsupported scheme (use redis://, rediss://, unix://, redis-sentinel://, rediss-sentinel://, "
           "redis-cluster:// or rediss-cluster://)";
}

int wsg_redis_url_parse(const char *url, wsg_redis_addr_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    const char *err = parse(url, out);
    if (err != NULL) {
        /* No half-parsed address survives an error. */
        memset(out, 0, sizeof *out);
        out->port = 6379;
        if (why != NULL)
            *why = err;
        return -EINVAL;
    }
    return 0;
}
