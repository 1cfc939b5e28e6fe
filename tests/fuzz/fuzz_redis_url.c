/* Fuzzes REDIS_URL parsing: the result obeys its contract, and a URL rebuilt from an accepted address parses
 * back to the same address. */
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

static void rebuild(const wsg_redis_addr_t *a, char *url, size_t cap)
{
    url[0] = '\0';
    append(url, cap, a->is_unix ? "unix://" : "redis://");
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
    } else {
        bool v6 = strchr(a->host, ':') != NULL;
        append(url, cap, v6 ? "[" : "");
        append(url, cap, a->host);
        append(url, cap, v6 ? "]" : "");
        snprintf(tail, sizeof tail, ":%u/%d", a->port, a->db);
    }
    append(url, cap, tail);
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
        free(url);
        return 0;
    }
    FUZZ_ASSERT(terminated(a.host, sizeof a.host) && terminated(a.path, sizeof a.path));
    FUZZ_ASSERT(terminated(a.username, sizeof a.username) && terminated(a.password, sizeof a.password));
    FUZZ_ASSERT(a.db >= 0);
    FUZZ_ASSERT(a.port >= 1);
    if (a.is_unix) {
        FUZZ_ASSERT(a.path[0] == '/' && a.path[1] != '\0' && a.host[0] == '\0');
    } else {
        FUZZ_ASSERT(a.host[0] != '\0' && a.path[0] == '\0');
    }

    /* Rebuild a canonical URL and parse it again. */
    char again[2048];
    rebuild(&a, again, sizeof again);
    wsg_redis_addr_t b;
    why = NULL;
    rc = wsg_redis_url_parse(again, &b, &why);
    if (rc != 0)
        fprintf(stderr, "rebuilt \"%s\" from \"%s\": %s\n", again, url, why);
    FUZZ_ASSERT(rc == 0);
    FUZZ_ASSERT(a.is_unix == b.is_unix && a.port == b.port && a.db == b.db);
    FUZZ_ASSERT(strcmp(a.host, b.host) == 0 && strcmp(a.path, b.path) == 0);
    FUZZ_ASSERT(strcmp(a.username, b.username) == 0 && strcmp(a.password, b.password) == 0);
    free(url);
    return 0;
}
