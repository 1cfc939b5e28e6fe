/* Fuzzes REDIS_URL parsing: the result obeys its contract, and a URL rebuilt from an accepted address (one
 * server, unix socket, Sentinel or Cluster) parses back to the same address. */
#include <errno.h>
#include <string.h>

#include "redis_url.h"

#include "fuzz.h"

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* Percent-encodes everything but unreserved characters. */
static void append_encoded(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '.' || c == '_' || c == '~';
        int w = plain ? snprintf(out + n, cap - n, "%c", c) : snprintf(out + n, cap - n, "%%%02X", c);
        FUZZ_ASSERT(w > 0 && (size_t)w < cap - n);
        n += (size_t)w;
    }
}

static void append(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out);
    FUZZ_ASSERT(strlen(s) < cap - n);
    strcpy(out + n, s);
}

static void append_host_port(char *url, size_t cap, const char *host, unsigned port)
{
    bool v6 = strchr(host, ':') != NULL;
    char tail[16];
    append(url, cap, v6 ? "[" : "");
    append(url, cap, host);
    append(url, cap, v6 ? "]" : "");
    snprintf(tail, sizeof tail, ":%u", port);
    append(url, cap, tail);
}

static void rebuild(const wsg_redis_addr_t *a, char *url, size_t cap)
{
    url[0] = '\0';
    const char *scheme = a->is_unix       ? "unix://"
                         : a->is_sentinel ? (a->is_tls ? "rediss-sentinel://" : "redis-sentinel://")
                         : a->is_cluster  ? (a->is_tls ? "rediss-cluster://" : "redis-cluster://")
                                          : (a->is_tls ? "rediss://" : "redis://");
    append(url, cap, scheme);
    if (a->username[0] || a->password[0]) {
        append_encoded(url, cap, a->username);
        append(url, cap, ":");
        append_encoded(url, cap, a->password);
        append(url, cap, "@");
    }
    char tail[64];
    if (a->is_unix) {
        append(url, cap, "/");
        append_encoded(url, cap, a->path + 1); /* "%2F" decodes back to '/' */
        snprintf(tail, sizeof tail, "?db=%d", a->db);
    } else if (a->is_sentinel) {
        for (size_t i = 0; i < a->nsentinels; i++) {
            append(url, cap, i ? "," : "");
            append_host_port(url, cap, a->sentinels[i].host, a->sentinels[i].port);
        }
        append(url, cap, "/");
        append(url, cap, a->master_name);
        snprintf(tail, sizeof tail, "/%d", a->db);
    } else if (a->is_cluster) {
        for (size_t i = 0; i < a->nseeds; i++) {
            append(url, cap, i ? "," : "");
            append_host_port(url, cap, a->seeds[i].host, a->seeds[i].port);
        }
        snprintf(tail, sizeof tail, "/%d", a->db);
    } else {
        append_host_port(url, cap, a->host, a->port);
        snprintf(tail, sizeof tail, "/%d", a->db);
    }
    append(url, cap, tail);
}

static bool same_address(const wsg_redis_addr_t *a, const wsg_redis_addr_t *b)
{
    if (a->is_unix != b->is_unix || a->is_tls != b->is_tls || a->is_sentinel != b->is_sentinel ||
        a->is_cluster != b->is_cluster || a->port != b->port || a->db != b->db ||
        a->nsentinels != b->nsentinels || a->nseeds != b->nseeds)
        return false;
    if (strcmp(a->host, b->host) != 0 || strcmp(a->path, b->path) != 0 ||
        strcmp(a->username, b->username) != 0 || strcmp(a->password, b->password) != 0 ||
        strcmp(a->master_name, b->master_name) != 0)
        return false;
    for (size_t i = 0; i < a->nsentinels; i++)
        if (strcmp(a->sentinels[i].host, b->sentinels[i].host) != 0 ||
            a->sentinels[i].port != b->sentinels[i].port)
            return false;
    for (size_t i = 0; i < a->nseeds; i++)
        if (strcmp(a->seeds[i].host, b->seeds[i].host) != 0 || a->seeds[i].port != b->seeds[i].port)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *url = malloc(size + 1);
    FUZZ_ASSERT(url != NULL);
    memcpy(url, data, size);
    url[size] = '\0';

    wsg_redis_addr_t a;
    const char *why = NULL;
    int rc = wsg_redis_url_parse(url, &a, &why);
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL);
    if (rc < 0) {
        FUZZ_ASSERT(why != NULL && why[0] != '\0');
        FUZZ_ASSERT(!a.is_unix && a.host[0] == '\0' && a.path[0] == '\0' && a.password[0] == '\0');
        FUZZ_ASSERT(!a.is_tls && !a.is_sentinel && a.nsentinels == 0 && !a.is_cluster && a.nseeds == 0);
        free(url);
        return 0;
    }
    FUZZ_ASSERT(terminated(a.host, sizeof a.host) && terminated(a.path, sizeof a.path));
    FUZZ_ASSERT(terminated(a.username, sizeof a.username) && terminated(a.password, sizeof a.password));
    FUZZ_ASSERT(a.db >= 0);
    FUZZ_ASSERT(a.port >= 1);
    FUZZ_ASSERT(a.is_unix + a.is_sentinel + a.is_cluster <= 1);
    FUZZ_ASSERT(a.nsentinels <= WSG_REDIS_SENTINELS_MAX && a.nseeds <= WSG_REDIS_SEEDS_MAX);
    FUZZ_ASSERT(a.is_sentinel == (a.nsentinels > 0) && a.is_cluster == (a.nseeds > 0));
    for (size_t i = 0; i < a.nsentinels; i++) {
        FUZZ_ASSERT(terminated(a.sentinels[i].host, sizeof a.sentinels[i].host));
        FUZZ_ASSERT(a.sentinels[i].host[0] != '\0' && a.sentinels[i].port >= 1);
    }
    for (size_t i = 0; i < a.nseeds; i++) {
        FUZZ_ASSERT(terminated(a.seeds[i].host, sizeof a.seeds[i].host));
        FUZZ_ASSERT(a.seeds[i].host[0] != '\0' && a.seeds[i].port >= 1);
    }
    if (a.is_unix) {
        FUZZ_ASSERT(a.path[0] == '/' && a.path[1] != '\0' && a.host[0] == '\0');
    } else if (a.is_sentinel) {
        FUZZ_ASSERT(a.host[0] == '\0' && a.path[0] == '\0' && a.master_name[0] != '\0');
        FUZZ_ASSERT(terminated(a.master_name, sizeof a.master_name));
    } else if (a.is_cluster) {
        FUZZ_ASSERT(a.host[0] == '\0' && a.path[0] == '\0' && a.db == 0); /* Redis Cluster has only db 0 */
    } else {
        FUZZ_ASSERT(a.host[0] != '\0' && a.path[0] == '\0');
    }

    /* Rebuild a canonical URL and parse it again. */
    char again[8192];
    rebuild(&a, again, sizeof again);
    wsg_redis_addr_t b;
    why = NULL;
    rc = wsg_redis_url_parse(again, &b, &why);
    if (rc != 0)
        fprintf(stderr, "rebuilt \"%s\" from \"%s\": %s\n", again, url, why);
    FUZZ_ASSERT(rc == 0);
    FUZZ_ASSERT(same_address(&a, &b));
    free(url);
    return 0;
}
