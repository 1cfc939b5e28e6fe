/* Tests for redis/redis_url.c: every accepted form (one server, Sentinel, Cluster), defaults, and each
 * refusal with its explanation. */
#include <errno.h>

#include "redis_url.h"

#include "test.h"

typedef struct want {
    bool is_unix;
    bool is_tls;
    const char *host;
    int port;
    const char *path;
    const char *username;
    const char *password;
    int db;
} want_t;

static void check_ok(const char *url, want_t w, int line)
{
    wsg_redis_addr_t a;
    memset(&a, 0x5a, sizeof a);
    const char *why = "untouched";
    int rc = wsg_redis_url_parse(url, &a, &why);
    if (rc != 0) {
        TEST_FAIL_AT("line %d: \"%s\": rc %d (%s)", line, url, rc, why);
        return;
    }
    if (a.is_unix != w.is_unix || a.is_tls != w.is_tls || strcmp(a.host, w.host ? w.host : "") != 0 ||
        a.port != w.port || strcmp(a.path, w.path ? w.path : "") != 0 ||
        strcmp(a.username, w.username ? w.username : "") != 0 ||
        strcmp(a.password, w.password ? w.password : "") != 0 || a.db != w.db)
        TEST_FAIL_AT(
            "line %d: \"%s\": tls %d unix %d host \"%s\" port %u path \"%s\" user \"%s\" pass \"%s\" db %d",
            line, url, a.is_tls, a.is_unix, a.host, a.port, a.path, a.username, a.password, a.db);
    if (a.is_cluster || a.nseeds != 0 || a.is_sentinel)
        TEST_FAIL_AT("line %d: \"%s\": read as a cluster or sentinel URL", line, url);
    if (strcmp(why, "untouched") != 0)
        TEST_FAIL_AT("line %d: why set on success", line);
}
#define OK(url, ...) check_ok(url, (want_t){__VA_ARGS__}, __LINE__)

static void check_bad(const char *url, const char *why_part, int line)
{
    wsg_redis_addr_t a;
    memset(&a, 0x5a, sizeof a);
    const char *why = NULL;
    int rc = wsg_redis_url_parse(url, &a, &why);
    if (rc != -EINVAL) {
        TEST_FAIL_AT("line %d: \"%s\": rc %d, want -EINVAL", line, url ? url : "(null)", rc);
        return;
    }
    if (why == NULL || strstr(why, why_part) == NULL)
        TEST_FAIL_AT("line %d: \"%s\": why \"%s\" lacks \"%s\"", line, url ? url : "(null)",
                     why ? why : "(null)", why_part);
    /* No half-parsed address survives: defaults and empty strings. */
    if (a.is_unix || a.is_tls || a.host[0] || a.path[0] || a.username[0] || a.password[0] || a.db != 0 ||
        a.port != 6379 || a.is_sentinel || a.nsentinels != 0 || a.is_cluster || a.nseeds != 0)
        TEST_FAIL_AT("line %d: \"%s\": output not reset on error", line, url ? url : "(null)");
}
#define BAD(url, why) check_bad(url, why, __LINE__)

static void test_tcp_forms(void)
{
    OK("redis://localhost", .host = "localhost", .port = 6379);
    OK("redis://localhost:6380", .host = "localhost", .port = 6380);
    OK("redis://redis.example.com:1/15", .host = "redis.example.com", .port = 1, .db = 15);
    OK("redis://10.0.0.5:65535/0", .host = "10.0.0.5", .port = 65535);
    OK("redis://:secret@localhost:6379/2", .host = "localhost", .port = 6379, .password = "secret", .db = 2);
    OK("redis://alice:secret@localhost/3", .host = "localhost", .port = 6379, .username = "alice",
       .password = "secret", .db = 3);
    OK("redis://alice@localhost", .host = "localhost", .port = 6379, .username = "alice");
    OK("redis://alice:@localhost", .host = "localhost", .port = 6379, .username = "alice");
    OK("redis://:@localhost", .host = "localhost", .port = 6379);
    OK("redis://my_host-1.internal", .host = "my_host-1.internal", .port = 6379);
    OK("REDIS://Host:6379", .host = "Host", .port = 6379);
    OK("redis://localhost/", .host = "localhost", .port = 6379);
    OK("redis://localhost:6379/", .host = "localhost", .port = 6379);
    OK("redis://localhost/007", .host = "localhost", .port = 6379, .db = 7);
    OK("redis://localhost:06379", .host = "localhost", .port = 6379);
    OK("redis://localhost/2147483647", .host = "localhost", .port = 6379, .db = 2147483647);
    OK("redis://localhost?db=4", .host = "localhost", .port = 6379, .db = 4);
    OK("redis://localhost/?db=4", .host = "localhost", .port = 6379, .db = 4);
    OK("redis://localhost:7000?&db=5&", .host = "localhost", .port = 7000, .db = 5);
}

static void test_defaults(void)
{
    OK("redis://", .host = "127.0.0.1", .port = 6379);
    OK("redis://:6380", .host = "127.0.0.1", .port = 6380);
    OK("redis:///3", .host = "127.0.0.1", .port = 6379, .db = 3);
    OK("redis://:pw@", .host = "127.0.0.1", .port = 6379, .password = "pw");
    OK("redis://:pw@/1", .host = "127.0.0.1", .port = 6379, .password = "pw", .db = 1);
}

static void test_ipv6(void)
{
    OK("redis://[::1]", .host = "::1", .port = 6379);
    OK("redis://[::1]:6380", .host = "::1", .port = 6380);
    OK("redis://[fe80::1:2]:6380/4", .host = "fe80::1:2", .port = 6380, .db = 4);
    OK("redis://:pw@[2001:DB8::7]:1/1", .host = "2001:DB8::7", .port = 1, .password = "pw", .db = 1);
    OK("redis://[::ffff:10.0.0.1]", .host = "::ffff:10.0.0.1", .port = 6379);
    OK("[::1]:7000", .host = "::1", .port = 7000);
    BAD("redis://::1", "brackets");
    BAD("redis://::1:6379", "brackets");
    BAD("redis://[::1", "']'");
    BAD("redis://[::1]6379", "after ']'");
    BAD("redis://[]", "IPv6");
    BAD("redis://[localhost]", "IPv6");
    BAD("redis://[::1]:", "bad port");
    BAD("redis://[::1]:0", "bad port");
    BAD("redis://[::g]", "IPv6");
}

static void test_passwords(void)
{
    /* Percent-decoded; a raw '@' is fine (the last '@' ends the user info); a lone '%' stays. */
    OK("redis://:p%40ss%3Aw%2Fd@h", .host = "h", .port = 6379, .password = "p@ss:w/d");
    OK("redis://:p@ss@h:1", .host = "h", .port = 1, .password = "p@ss");
    OK("redis://:a:b@h", .host = "h", .port = 6379, .password = "a:b");
    OK("redis://:100%@h", .host = "h", .port = 6379, .password = "100%");
    OK("redis://:%zz%4@h", .host = "h", .port = 6379, .password = "%zz%4");
    OK("redis://:%C3%A9@h", .host = "h", .port = 6379, .password = "\xc3\xa9");
    OK("redis://us%65r:x@h", .host = "h", .port = 6379, .username = "user", .password = "x");
    OK("redis://:a+b@h", .host = "h", .port = 6379, .password = "a+b"); /* '+' is not a space here */
    BAD("redis://:a%00b@h", "password");
    BAD("redis://a%00:b@h", "user name");
    /* 255 bytes fit, 256 do not. */
    char url[1200], want[300];
    memset(want, 'p', 255);
    want[255] = '\0';
    snprintf(url, sizeof url, "redis://:%s@h", want);
    OK(url, .host = "h", .port = 6379, .password = want);
    snprintf(url, sizeof url, "redis://:%sp@h", want);
    BAD(url, "password");
    /* The limit applies after decoding: 255 "%41" are 255 bytes. */
    strcpy(url, "redis://:");
    for (int i = 0; i < 255; i++)
        strcat(url, "%41");
    strcat(url, "@h");
    memset(want, 'A', 255);
    OK(url, .host = "h", .port = 6379, .password = want);
    memset(want, 'u', 127);
    want[127] = '\0';
    snprintf(url, sizeof url, "redis://%s:x@h", want);
    OK(url, .host = "h", .port = 6379, .username = want, .password = "x");
    snprintf(url, sizeof url, "redis://%su:x@h", want);
    BAD(url, "user name");
}

static void test_bare_host_port(void)
{
    OK("localhost:6379", .host = "localhost", .port = 6379);
    OK("redis:6379", .host = "redis", .port = 6379); /* a container named "redis" */
    OK("10.1.2.3:7001", .host = "10.1.2.3", .port = 7001);
    OK("localhost", .host = "localhost", .port = 6379);
    OK("localhost:6379/2", .host = "localhost", .port = 6379, .db = 2);
    OK(":pw@localhost:6379", .host = "localhost", .port = 6379, .password = "pw");
    BAD("localhost:", "bad port");
    BAD("localhost:abc", "bad port");
    BAD("unix:/tmp/x", "bad port");
    BAD("/run/redis.sock", "unix:///");
}

static void test_unix(void)
{
    OK("unix:///run/redis.sock", .is_unix = true, .path = "/run/redis.sock", .port = 6379);
    OK("unix:///run/redis.sock?db=2", .is_unix = true, .path = "/run/redis.sock", .port = 6379, .db = 2);
    OK("redis+unix:///tmp/r.sock", .is_unix = true, .path = "/tmp/r.sock", .port = 6379);
    OK("redis-socket:///tmp/r.sock?db=15", .is_unix = true, .path = "/tmp/r.sock", .port = 6379, .db = 15);
    OK("UNIX:///x", .is_unix = true, .path = "/x", .port = 6379);
    OK("unix://:pw@/run/r.sock", .is_unix = true, .path = "/run/r.sock", .port = 6379, .password = "pw");
    OK("unix://u:pw@/run/r.sock?db=1", .is_unix = true, .path = "/run/r.sock", .port = 6379, .username = "u",
       .password = "pw", .db = 1);
    OK("unix:///tmp/my%20redis.sock", .is_unix = true, .path = "/tmp/my redis.sock", .port = 6379);
    BAD("unix://", "path");
    BAD("unix:///", "path");
    BAD("unix://run/redis.sock", "unix:///");
    BAD("unix://localhost/run/redis.sock", "unix:///");
    BAD("unix:///run/r.sock?db=x", "database");
    BAD("unix:///run/r.sock?db=", "database");
    BAD("unix:///run/r.sock?db", "database");
    BAD("unix:///run/r.sock?db=1&db=2", "twice");
    BAD("unix:///run/r.sock?timeout=1", "parameter");
    BAD("unix:///run/%00.sock", "path");
    /* sun_path holds 107 bytes and the NUL. */
    char url[300], path[200];
    path[0] = '/';
    memset(path + 1, 'p', 106);
    path[107] = '\0';
    snprintf(url, sizeof url, "unix://%s", path);
    OK(url, .is_unix = true, .path = path, .port = 6379);
    snprintf(url, sizeof url, "unix://%sp", path);
    BAD(url, "too long");
}

static void test_tls_forms(void)
{
    OK("rediss://localhost", .is_tls = true, .host = "localhost", .port = 6379);
    OK("REDISS://:pw@cache.example.com:6380/2", .is_tls = true, .host = "cache.example.com", .port = 6380,
       .password = "pw", .db = 2);
    OK("redis://localhost", .host = "localhost", .port = 6379); /* and without, none */
    wsg_redis_addr_t a;
    ASSERT_INT_EQ(wsg_redis_url_parse("rediss-sentinel://s1:26380,s2/mymaster", &a, NULL), 0);
    ASSERT_TRUE(a.is_tls && a.is_sentinel);
    ASSERT_UINT_EQ(a.nsentinels, 2);
    ASSERT_STR_EQ(a.master_name, "mymaster");
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://s1/mymaster", &a, NULL), 0);
    ASSERT_FALSE(a.is_tls);
    BAD("rediss://localhost:99999", "bad port");
}

static void test_bad_scheme(void)
{
    BAD("http://localhost", "unsupported scheme");
    BAD("rediss+unix:///run/redis.sock", "unsupported scheme");
    BAD("://localhost", "unsupported scheme");
    BAD("redis:/localhost", "bad port");
    BAD("tcp://localhost:6379", "unsupported scheme");
}

static void test_bad_port(void)
{
    static const char *const bad[] = {
        "redis://h:",    "redis://h:0",    "redis://h:65536", "redis://h:99999999999",
        "redis://h:-1",  "redis://h:+1",   "redis://h:1x",    "redis://h:6379:1",
        "redis://h:%36", "redis://h:0x10", "redis://h:00000", "redis://h:1 ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wsg_redis_addr_t a;
        const char *why = NULL;
        if (wsg_redis_url_parse(bad[i], &a, &why) != -EINVAL)
            TEST_FAIL_AT("\"%s\" accepted", bad[i]);
    }
    BAD("redis://h:", "bad port");
    BAD("redis://h:0", "bad port");
    BAD("redis://h:65536", "bad port");
    BAD("redis://h:1x", "bad port");
    BAD("redis://h:%36", "bad port");
}

static void test_bad_db(void)
{
    BAD("redis://h/x", "bad database number");
    BAD("redis://h/-1", "bad database number");
    BAD("redis://h/+1", "bad database number");
    BAD("redis://h/1/2", "bad database number");
    BAD("redis://h/1.0", "bad database number");
    BAD("redis://h/2147483648", "bad database number");
    BAD("redis://h/99999999999999999999", "bad database number");
    BAD("redis://h/1?db=2", "twice");
    BAD("redis://h?db=a", "bad database number");
    BAD("redis://h?password=x", "parameter");
    BAD("redis://h?dbx=1", "parameter");
}

static void test_bad_host_and_chars(void)
{
    BAD(NULL, "empty");
    BAD("", "empty");
    BAD("redis://host name", "bad character");
    BAD(" redis://h", "bad character");
    BAD("redis://h\n", "bad character");
    BAD("redis://h\t:1", "bad character");
    BAD("redis://h\x7f", "bad character");
    BAD("redis://:pa#ss@h", "%23");
    BAD("redis://h#frag", "%23");
    BAD("redis://h!st", "bad host");
    BAD("redis://h%41st", "bad host");
    BAD("redis://h\xc3\xa9", "bad host");
    char url[600];
    strcpy(url, "redis://");
    memset(url + 8, 'h', 255);
    url[8 + 255] = '\0';
    wsg_redis_addr_t a;
    ASSERT_INT_EQ(wsg_redis_url_parse(url, &a, NULL), 0);
    ASSERT_UINT_EQ(strlen(a.host), 255);
    strcat(url, "h");
    BAD(url, "too long");
    /* `why` may be NULL. */
    ASSERT_INT_EQ(wsg_redis_url_parse("rediss://x:0", &a, NULL), -EINVAL);
}

static void test_overwrites(void)
{
    /* A second parse leaves nothing of the first. */
    wsg_redis_addr_t a;
    ASSERT_INT_EQ(wsg_redis_url_parse("redis://u:p@h:1/5", &a, NULL), 0);
    ASSERT_INT_EQ(wsg_redis_url_parse("unix:///s", &a, NULL), 0);
    ASSERT_TRUE(a.is_unix);
    ASSERT_STR_EQ(a.path, "/s");
    ASSERT_STR_EQ(a.host, "");
    ASSERT_STR_EQ(a.username, "");
    ASSERT_STR_EQ(a.password, "");
    ASSERT_INT_EQ(a.db, 0);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis://h", &a, NULL), 0);
    ASSERT_FALSE(a.is_unix);
    ASSERT_STR_EQ(a.path, "");
    ASSERT_UINT_EQ(a.port, 6379);
    ASSERT_INT_EQ(wsg_redis_url_parse("rediss-cluster://u:p@a:7000,b:7001", &a, NULL), 0);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis://h", &a, NULL), 0);
    ASSERT_FALSE(a.is_cluster || a.is_tls);
    ASSERT_UINT_EQ(a.nseeds, 0);
    ASSERT_STR_EQ(a.seeds[0].host, "");
    ASSERT_STR_EQ(a.username, "");
}

static void test_sentinel(void)
{
    wsg_redis_addr_t a;
    const char *why = NULL;
    ASSERT_INT_EQ(
        wsg_redis_url_parse("redis-sentinel://10.0.0.1:26379,sentinel-b,[::1]:26380/mymaster/2", &a, &why),
        0);
    ASSERT_TRUE(a.is_sentinel);
    ASSERT_UINT_EQ(a.nsentinels, 3);
    ASSERT_STR_EQ(a.sentinels[0].host, "10.0.0.1");
    ASSERT_UINT_EQ(a.sentinels[0].port, 26379);
    ASSERT_STR_EQ(a.sentinels[1].host, "sentinel-b");
    ASSERT_UINT_EQ(a.sentinels[1].port, 26379);
    ASSERT_STR_EQ(a.sentinels[2].host, "::1");
    ASSERT_UINT_EQ(a.sentinels[2].port, 26380);
    ASSERT_STR_EQ(a.master_name, "mymaster");
    ASSERT_INT_EQ(a.db, 2);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://:pw@s1/m", &a, &why), 0);
    ASSERT_STR_EQ(a.password, "pw");
    ASSERT_INT_EQ(a.db, 0);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://s1", &a, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel:///m", &a, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://s1,,s2/m", &a, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://s1/", &a, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://s1:0/m", &a, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://a,b,c,d,e,f,g,h,i/m", &a, &why), -EINVAL);
    ASSERT_FALSE(a.is_sentinel); /* nothing half-parsed survives */
}

/* A cluster URL: the seeds as "host:port" joined by ',', with TLS, user and password. */
typedef struct want_cluster {
    const char *seeds;
    bool is_tls;
    const char *username;
    const char *password;
} want_cluster_t;

static void check_cluster(const char *url, want_cluster_t w, int line)
{
    wsg_redis_addr_t a;
    memset(&a, 0x5a, sizeof a);
    const char *why = "untouched";
    int rc = wsg_redis_url_parse(url, &a, &why);
    if (rc != 0) {
        TEST_FAIL_AT("line %d: \"%s\": rc %d (%s)", line, url, rc, why);
        return;
    }
    char seeds[WSG_REDIS_SEEDS_MAX * 300] = "";
    for (size_t i = 0; i < a.nseeds && i < WSG_REDIS_SEEDS_MAX; i++) {
        size_t n = strlen(seeds);
        bool v6 = strchr(a.seeds[i].host, ':') != NULL;
        snprintf(seeds + n, sizeof seeds - n, "%s%s%s%s:%u", i ? "," : "", v6 ? "[" : "", a.seeds[i].host,
                 v6 ? "]" : "", a.seeds[i].port);
    }
    if (!a.is_cluster || a.is_sentinel || a.is_unix || a.is_tls != w.is_tls || strcmp(seeds, w.seeds) != 0 ||
        a.host[0] || a.path[0] || a.db != 0 || strcmp(a.username, w.username ? w.username : "") != 0 ||
        strcmp(a.password, w.password ? w.password : "") != 0)
        TEST_FAIL_AT(
            "line %d: \"%s\": cluster %d tls %d seeds \"%s\" host \"%s\" db %d user \"%s\" pass \"%s\"", line,
            url, a.is_cluster, a.is_tls, seeds, a.host, a.db, a.username, a.password);
    if (strcmp(why, "untouched") != 0)
        TEST_FAIL_AT("line %d: why set on success", line);
}
#define CLUSTER_OK(url, ...) check_cluster(url, (want_cluster_t){__VA_ARGS__}, __LINE__)

static void test_cluster(void)
{
    CLUSTER_OK("redis-cluster://127.0.0.1:7000,127.0.0.1:7001", .seeds = "127.0.0.1:7000,127.0.0.1:7001");
    CLUSTER_OK("redis-cluster://node-a", .seeds = "node-a:6379");
    CLUSTER_OK("redis-cluster://node-a,node-b:7001,node-c", .seeds = "node-a:6379,node-b:7001,node-c:6379");
    CLUSTER_OK("REDIS-CLUSTER://Node-A:1", .seeds = "Node-A:1");
    CLUSTER_OK("redis-cluster://:7000,:7001", .seeds = "127.0.0.1:7000,127.0.0.1:7001");
    /* Database 0 may be written, in the path or the query; nothing else. */
    CLUSTER_OK("redis-cluster://a:7000/", .seeds = "a:7000");
    CLUSTER_OK("redis-cluster://a:7000/0", .seeds = "a:7000");
    CLUSTER_OK("redis-cluster://a:7000,b/00", .seeds = "a:7000,b:6379");
    CLUSTER_OK("redis-cluster://a:7000?db=0", .seeds = "a:7000");
    CLUSTER_OK("redis-cluster://a:7000/?db=0", .seeds = "a:7000");
    /* User and password, for every node; a ',' or '@' in the password is not a separator. */
    CLUSTER_OK("redis-cluster://:s3cret@a:7000,b:7001", .seeds = "a:7000,b:7001", .password = "s3cret");
    CLUSTER_OK("redis-cluster://alice:p@,ss@a,b", .seeds = "a:6379,b:6379", .username = "alice",
               .password = "p@,ss");
    CLUSTER_OK("redis-cluster://alice:p%2Css@a", .seeds = "a:6379", .username = "alice", .password = "p,ss");
    CLUSTER_OK("redis-cluster://alice@a", .seeds = "a:6379", .username = "alice");
    /* IPv6 in brackets. */
    CLUSTER_OK("redis-cluster://[::1]:7000,[fe80::1:2],10.0.0.1:7002",
               .seeds = "[::1]:7000,[fe80::1:2]:6379,10.0.0.1:7002");
    /* TLS. */
    CLUSTER_OK("rediss-cluster://a:7000,b:7001", .seeds = "a:7000,b:7001", .is_tls = true);
    CLUSTER_OK("REDISS-CLUSTER://:pw@a/0", .seeds = "a:6379", .is_tls = true, .password = "pw");
    /* Up to 8 nodes. */
    CLUSTER_OK("redis-cluster://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8", .seeds = "a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8");
    BAD("redis-cluster://a:1,b:2,c:3,d:4,e:5,f:6,g:7,h:8,i:9", "more than 8 nodes");

    /* Refusals, each with its reason. */
    BAD("redis-cluster://a:7000/1", "Redis Cluster has only database 0");
    BAD("redis-cluster://a:7000,b:7001/15", "Redis Cluster has only database 0");
    BAD("redis-cluster://a?db=2", "Redis Cluster has only database 0");
    BAD("rediss-cluster://a/3", "Redis Cluster has only database 0");
    BAD("redis-cluster://a/x", "bad database number");
    BAD("redis-cluster://a/mymaster", "bad database number"); /* a sentinel-style path */
    BAD("redis-cluster://a/0/1", "bad database number");
    BAD("redis-cluster://a/-1", "bad database number");
    BAD("redis-cluster://a/0?db=0", "twice");
    BAD("redis-cluster://a?timeout=1", "parameter");
    BAD("redis-cluster://", "expected redis-cluster://host:6379,host:6380");
    BAD("redis-cluster:///0", "expected redis-cluster://host:6379,host:6380");
    BAD("redis-cluster://:pw@", "expected redis-cluster://host:6379,host:6380");
    BAD("rediss-cluster://", "expected redis-cluster://");
    BAD("redis-cluster://a,,b", "empty entry");
    BAD("redis-cluster://a,", "empty entry");
    BAD("redis-cluster://,a", "empty entry");
    BAD("redis-cluster://a,/0", "empty entry");
    BAD("redis-cluster://a:0,b", "bad port");
    BAD("redis-cluster://a,b:65536", "bad port");
    BAD("redis-cluster://a:x", "bad port");
    BAD("redis-cluster://::1,b", "brackets");
    BAD("redis-cluster://[::1,b", "']'");
    BAD("redis-cluster://h!st", "bad host");
    BAD("redis-cluster://a b", "bad character");
    BAD("redis-cluster://:a%00b@h", "password");
    BAD("redis-cluster+tls://a", "unsupported scheme");
    BAD("cluster://a", "unsupported scheme");
    /* A node's host name has the same 255-byte limit as any other. */
    char url[700];
    strcpy(url, "redis-cluster://a,");
    memset(url + strlen(url), 'h', 256);
    url[18 + 256] = '\0';
    BAD(url, "too long");
    url[18 + 255] = '\0';
    CLUSTER_OK("redis-cluster://a", .seeds = "a:6379");
    wsg_redis_addr_t a;
    ASSERT_INT_EQ(wsg_redis_url_parse(url, &a, NULL), 0);
    ASSERT_UINT_EQ(a.nseeds, 2);
    ASSERT_UINT_EQ(strlen(a.seeds[1].host), 255);
    ASSERT_UINT_EQ(a.seeds[1].port, 6379);
    /* The other forms are not cluster URLs. */
    ASSERT_INT_EQ(wsg_redis_url_parse("redis://a:7000,b:7001", &a, NULL), -EINVAL);
    ASSERT_INT_EQ(wsg_redis_url_parse("redis-sentinel://a,b/m", &a, NULL), 0);
    ASSERT_FALSE(a.is_cluster);
    ASSERT_UINT_EQ(a.nseeds, 0);
}

TEST_MAIN("redis_url", TEST_CASE(test_sentinel), TEST_CASE(test_cluster), TEST_CASE(test_tcp_forms),
          TEST_CASE(test_defaults), TEST_CASE(test_ipv6), TEST_CASE(test_passwords),
          TEST_CASE(test_bare_host_port), TEST_CASE(test_unix), TEST_CASE(test_tls_forms),
          TEST_CASE(test_bad_scheme), TEST_CASE(test_bad_port), TEST_CASE(test_bad_db),
          TEST_CASE(test_bad_host_and_chars), TEST_CASE(test_overwrites))
