/* Tests for protocol/handshake.c: the checks in order, the accept key, subprotocols, response bytes. */
#include <errno.h>

#include "handshake.h"

#include "test.h"

static wsg_str_t S(const char *s)
{
    return wsg_str_c(s);
}

/* A request that passes every check. */
static wsg_upgrade_req_t good_req(void)
{
    return (wsg_upgrade_req_t){
        .method = S("GET"),
        .http_major = 1,
        .http_minor = 1,
        .upgrade = S("websocket"),
        .connection = S("Upgrade"),
        .ws_version = S("13"),
        .ws_key = S("dGhlIHNhbXBsZSBub25jZQ=="),
        .ws_protocol = WSG_STR_NULL,
    };
}

#define ASSERT_VERDICT(req, want_status, want_body)                                                          \
    do {                                                                                                     \
        wsg_upgrade_req_t r_ = (req);                                                                        \
        wsg_handshake_verdict_t v_ = wsg_handshake_check(&r_);                                               \
        ASSERT_INT_EQ(v_.status, want_status);                                                               \
        ASSERT_STR_EQ(v_.body, want_body);                                                                   \
    } while (0)

static const char *const BAD_METHOD = "HTTP method must be a GET";
static const char *const BAD_PROTO = "HTTP server protocol must be 1.1";
static const char *const BAD_UPGRADE = "Client does not wish to upgrade to a websocket";
static const char *const BAD_CONNECTION = "Connection header must include Upgrade";
static const char *const BAD_VERSION = "Unsupported WebSocket Version";
static const char *const BAD_KEY = "Invalid key";

static void test_check_ok(void)
{
    ASSERT_VERDICT(good_req(), 0, "");
    wsg_upgrade_req_t r = good_req();
    r.upgrade = S("WebSocket");
    r.connection = S("keep-alive, Upgrade");
    ASSERT_VERDICT(r, 0, "");
    r.upgrade = S("h2c, WEBSOCKET");
    r.connection = S("upgrade,keep-alive");
    ASSERT_VERDICT(r, 0, "");
    r.http_minor = 2; /* a later HTTP/1.x */
    ASSERT_VERDICT(r, 0, "");
    r = good_req();
    r.ws_version = S(" 13 ");
    r.ws_key = S("  dGhlIHNhbXBsZSBub25jZQ==\t");
    ASSERT_VERDICT(r, 0, "");
    r.ws_protocol = S("chat");
    ASSERT_VERDICT(r, 0, "");
}

static void test_check_method(void)
{
    static const char *const bad[] = {"POST", "get", "Get", "HEAD", "GET ", "", "GETX"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wsg_upgrade_req_t r = good_req();
        r.method = S(bad[i]);
        ASSERT_VERDICT(r, 400, BAD_METHOD);
    }
    wsg_upgrade_req_t r = good_req();
    r.method = WSG_STR_NULL;
    ASSERT_VERDICT(r, 400, BAD_METHOD);
}

static void test_check_http_version(void)
{
    static const int versions[][3] = {{1, 1, 0},   {1, 2, 0},   {1, 9, 0},   {1, 0, 400}, {0, 9, 400},
                                      {2, 0, 400}, {2, 1, 400}, {3, 0, 400}, {0, 0, 400}, {-1, 1, 400}};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        wsg_upgrade_req_t r = good_req();
        r.http_major = versions[i][0];
        r.http_minor = versions[i][1];
        wsg_handshake_verdict_t v = wsg_handshake_check(&r);
        if (v.status != versions[i][2])
            TEST_FAIL_AT("HTTP/%d.%d: status %d, want %d", versions[i][0], versions[i][1], v.status,
                         versions[i][2]);
        if (v.status == 400)
            ASSERT_STR_EQ(v.body, BAD_PROTO);
    }
}

static void test_check_upgrade(void)
{
    static const char *const bad[] = {"", "websockets", "web socket", "h2c", "websocket2", "keep-alive"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wsg_upgrade_req_t r = good_req();
        r.upgrade = S(bad[i]);
        ASSERT_VERDICT(r, 400, BAD_UPGRADE);
    }
    wsg_upgrade_req_t r = good_req();
    r.upgrade = WSG_STR_NULL;
    ASSERT_VERDICT(r, 400, BAD_UPGRADE);
}

static void test_check_connection(void)
{
    static const char *const bad[] = {"", "keep-alive", "close", "upgraded", "up grade"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wsg_upgrade_req_t r = good_req();
        r.connection = S(bad[i]);
        ASSERT_VERDICT(r, 400, BAD_CONNECTION);
    }
    wsg_upgrade_req_t r = good_req();
    r.connection = WSG_STR_NULL;
    ASSERT_VERDICT(r, 400, BAD_CONNECTION);
}

static void test_check_ws_version(void)
{
    wsg_upgrade_req_t r = good_req();
    r.ws_version = WSG_STR_NULL;
    ASSERT_VERDICT(r, 426, "");
    /* Present but empty is not missing. */
    static const char *const bad[] = {"", "8", "7", "12", "14", "130", "13, 8", "0x0d", "1 3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = good_req();
        r.ws_version = S(bad[i]);
        ASSERT_VERDICT(r, 400, BAD_VERSION);
    }
}

static void test_check_key(void)
{
    static const char *const bad[] = {
        "",
        "dGhlIHNhbXBsZSBub25jZQ",       /* padding missing */
        "dGhlIHNhbXBsZSBub25jZQ=",      /* padding short */
        "dGhlIHNhbXBsZSBub25j",         /* 15 bytes */
        "dGhlIHNhbXBsZSBub25jZTE=",     /* 17 bytes */
        "dGhlIHNhbXBsZSBub25jZTEy",     /* 18 bytes */
        "dGhlIHNhbXBsZSBub25jZR==",     /* non-zero trailing bits */
        "dGhlIHNhbXBs ZSBub25jZQ==",    /* inner space */
        "dGhlIHNhbXBsZSBub25jZQ==dGhl", /* trailing data */
        "dGhlIHNhbXBsZSBub25jZQ-_",     /* URL-safe alphabet */
        "the sample nonce",             /* not encoded at all */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wsg_upgrade_req_t r = good_req();
        r.ws_key = S(bad[i]);
        wsg_handshake_verdict_t v = wsg_handshake_check(&r);
        if (v.status != 400 || strcmp(v.body, BAD_KEY) != 0)
            TEST_FAIL_AT("key \"%s\": %d \"%s\"", bad[i], v.status, v.body);
    }
    wsg_upgrade_req_t r = good_req();
    r.ws_key = WSG_STR_NULL;
    ASSERT_VERDICT(r, 400, BAD_KEY);
    /* Any 16 bytes will do, including the '+' and '/' characters. */
    r.ws_key = S("+/+/+/+/+/+/+/+/+/+/+w==");
    ASSERT_VERDICT(r, 0, "");
    r.ws_key = S("AAAAAAAAAAAAAAAAAAAAAA==");
    ASSERT_VERDICT(r, 0, "");
}

static void test_check_order(void)
{
    /* Every check fails: the first one in the documented order wins, then the next, and so on. */
    wsg_upgrade_req_t r = {
        .method = S("POST"),
        .http_major = 1,
        .http_minor = 0,
        .upgrade = S("h2c"),
        .connection = S("close"),
        .ws_version = WSG_STR_NULL,
        .ws_key = S("short"),
    };
    ASSERT_VERDICT(r, 400, BAD_METHOD);
    r.method = S("GET");
    ASSERT_VERDICT(r, 400, BAD_PROTO);
    r.http_minor = 1;
    ASSERT_VERDICT(r, 400, BAD_UPGRADE);
    r.upgrade = S("websocket");
    ASSERT_VERDICT(r, 400, BAD_CONNECTION);
    r.connection = S("Upgrade");
    ASSERT_VERDICT(r, 426, "");
    r.ws_version = S("8");
    ASSERT_VERDICT(r, 400, BAD_VERSION);
    r.ws_version = S("13");
    ASSERT_VERDICT(r, 400, BAD_KEY);
    r.ws_key = S("dGhlIHNhbXBsZSBub25jZQ==");
    ASSERT_VERDICT(r, 0, "");
}

static void test_accept_key(void)
{
    char out[WSG_ACCEPT_KEY_LEN + 1];
    memset(out, 'X', sizeof out);
    wsg_handshake_accept_key(S("dGhlIHNhbXBsZSBub25jZQ=="), out); /* RFC 6455 1.3 */
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    ASSERT_UINT_EQ(strlen(out), WSG_ACCEPT_KEY_LEN);
    memset(out, 'X', sizeof out);
    wsg_handshake_accept_key(S(" \tdGhlIHNhbXBsZSBub25jZQ==\r\n "), out);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* The key is a view: the bytes after it do not count. */
    wsg_handshake_accept_key((wsg_str_t){"dGhlIHNhbXBsZSBub25jZQ==garbage", 24}, out);
    ASSERT_STR_EQ(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    /* Expected values from Python: base64(sha1(key + GUID)). */
    wsg_handshake_accept_key(WSG_STR_NULL, out);
    ASSERT_STR_EQ(out, "Kfh9QIsMVZcl6xEPYxPHzW8SZ8w=");
    char long_key[301];
    memset(long_key, 'x', 65);
    long_key[65] = '\0';
    wsg_handshake_accept_key(S(long_key + 1), out); /* 64 bytes: the stack-buffer path */
    ASSERT_STR_EQ(out, "4FGVtn97aCcao3xzZ5Y1zkEgvLc=");
    wsg_handshake_accept_key(S(long_key), out); /* 65 bytes: the streaming path */
    ASSERT_STR_EQ(out, "Kdy1RNRXbQUIgIu1UaLUyYfGT8E=");
    memset(long_key, 'A', 300);
    long_key[300] = '\0';
    wsg_handshake_accept_key(S(long_key), out);
    ASSERT_STR_EQ(out, "1szRWwPIjahTL1oI0cZjbE2Eppg=");
}

static void check_pick(const char *offered, const char *want, int line)
{
    wsg_str_t off = offered ? S(offered) : WSG_STR_NULL;
    wsg_str_t got = wsg_handshake_pick_subprotocol(off);
    if (!wsg_str_eq(got, S(want)))
        TEST_FAIL_AT("line %d: pick(\"%s\") = \"%.*s\", want \"%s\"", line, offered ? offered : "(null)",
                     (int)got.len, got.ptr ? got.ptr : "", want);
    if (got.len > 0 && (got.ptr < off.ptr || got.ptr + got.len > off.ptr + off.len))
        TEST_FAIL_AT("line %d: result does not borrow the input", line);
}
#define PICK(offered, want) check_pick(offered, want, __LINE__)

static void test_pick_subprotocol(void)
{
    PICK("chat", "chat");
    PICK("chat, superchat", "chat");
    PICK("chat,superchat", "chat");
    PICK("  chat  , superchat", "chat");
    PICK(", ,\t, v2.wsgate , v1", "v2.wsgate");
    PICK("", "");
    PICK(" ", "");
    PICK(",,,", "");
    PICK(" , \t ", "");
    PICK(NULL, "");
    /* Only RFC 7230 tokens are echoed: anything else is skipped, never reflected. */
    PICK("a b, c", "c");
    PICK("chat\r\n Set-Cookie: a=b", "");
    PICK("chat\r\n Set-Cookie: a=b, v1", "v1");
    PICK("\"quoted\", x/y, (c), ok", "ok");
    PICK("caf\xc3\xa9, plain", "plain");
    PICK("v1;q=1, v2", "v2");
    PICK("!#$%&'*+-.^_`|~09azAZ", "!#$%&'*+-.^_`|~09azAZ");
}

static void test_is_token(void)
{
    ASSERT_TRUE(wsg_http_is_token(S("websocket")));
    ASSERT_TRUE(wsg_http_is_token(S("wsgate.v1")));
    ASSERT_TRUE(wsg_http_is_token(S("x-!#$%&'*+.^_`|~")));
    ASSERT_FALSE(wsg_http_is_token(S("")));
    ASSERT_FALSE(wsg_http_is_token(WSG_STR_NULL));
    const char *bad[] = {"a b", "a\tb", "a,b", "a;b", "a=b", "\"a\"", "(a)", "a/b", "a:b", "a@b", "a[b]",
                         "a{b}", "a?b", "a<b>", "a\\b", "caf\xc3\xa9", "a\x7f", "a\r\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wsg_http_is_token(S(bad[i])))
            TEST_FAIL_AT("\"%s\" taken for a token", bad[i]);
    ASSERT_FALSE(wsg_http_is_token((wsg_str_t){"a\0b", 3})); /* an embedded NUL */
}

static void check_head(const char *head, size_t len, int want, int line)
{
    int got = wsg_http_check_head_lines(head, len);
    if (got != want)
        TEST_FAIL_AT("line %d: check_head_lines(\"%.*s\") = %d, want %d", line, (int)len, head, got, want);
}
#define HEAD_OK(text) check_head(text, sizeof text - 1, 0, __LINE__)
#define HEAD_BAD(text) check_head(text, sizeof text - 1, -EBADMSG, __LINE__)

static void test_check_head_lines(void)
{
    HEAD_OK("GET /ws/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    HEAD_OK("GET /ws/x HTTP/1.1\nHost: h\n\n"); /* bare LF line ends are tolerated (RFC 7230 3.5) */
    HEAD_OK("GET / HTTP/1.1\r\nX-Tab: a\tb\r\nX-Utf8: caf\xc3\xa9\r\n\r\n");
    HEAD_BAD("GET / HTTP/1.1\r\nSec-WebSocket-Protocol: chat\r\n Set-Cookie: a=b\r\n\r\n"); /* obs-fold */
    HEAD_BAD("GET / HTTP/1.1\r\nCookie: a=b\r\n\tsessionid=x\r\n\r\n");
    HEAD_BAD("GET / HTTP/1.1\nX: a\n b\n\n");
    HEAD_BAD("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n");      /* a bare CR */
    HEAD_BAD("GET / HTTP/1.1\r\nX: a\r\r\n\r\n");
    HEAD_BAD("GET / HTTP/1.1\r\nX: a\r");
    HEAD_BAD("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n");    /* control characters */
    HEAD_BAD("GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n");
    HEAD_BAD("GET /\x1b HTTP/1.1\r\n\r\n");
    check_head("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 27, -EBADMSG, __LINE__);
    HEAD_OK("");
}

static void test_write_101(void)
{
    const char *want = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                       "\r\n";
    char buf[512];
    ssize_t n = wsg_handshake_write_101(buf, sizeof buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WSG_STR_NULL);
    ASSERT_INT_EQ(n, strlen(want));
    ASSERT_MEM_EQ(buf, want, strlen(want));
    n = wsg_handshake_write_101(buf, sizeof buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", S(""));
    ASSERT_INT_EQ(n, strlen(want));

    const char *want_proto = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                             "Sec-WebSocket-Protocol: chat\r\n"
                             "\r\n";
    n = wsg_handshake_write_101(buf, sizeof buf, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", (wsg_str_t){"chatX", 4});
    ASSERT_INT_EQ(n, strlen(want_proto));
    ASSERT_MEM_EQ(buf, want_proto, strlen(want_proto));

    /* Every capacity below the length fails without writing past it; the exact length succeeds. */
    size_t len = strlen(want_proto);
    for (size_t cap = 0; cap < len; cap++) {
        memset(buf, '#', sizeof buf);
        n = wsg_handshake_write_101(buf, cap, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", S("chat"));
        if (n != -ENOSPC)
            TEST_FAIL_AT("cap %zu: %zd, want -ENOSPC", cap, n);
        if (buf[cap] != '#')
            TEST_FAIL_AT("cap %zu: wrote past the capacity", cap);
    }
    n = wsg_handshake_write_101(buf, len, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", S("chat"));
    ASSERT_INT_EQ(n, len);
    ASSERT_MEM_EQ(buf, want_proto, len);
}

static void test_write_response(void)
{
    char buf[512];
    const char *want = "HTTP/1.1 400 Bad Request\r\n"
                       "Content-Type: text/plain; charset=utf-8\r\n"
                       "Content-Length: 11\r\n"
                       "Connection: close\r\n"
                       "\r\n"
                       "Invalid key";
    ssize_t n = wsg_http_write_response(buf, sizeof buf, 400, NULL, S("Invalid key"));
    ASSERT_INT_EQ(n, strlen(want));
    ASSERT_MEM_EQ(buf, want, strlen(want));

    const char *want426 = "HTTP/1.1 426 Upgrade Required\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: 0\r\n"
                          "Connection: close\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "\r\n";
    n = wsg_http_write_response(buf, sizeof buf, 426, NULL, WSG_STR_NULL);
    ASSERT_INT_EQ(n, strlen(want426));
    ASSERT_MEM_EQ(buf, want426, strlen(want426));

    const char *want_extra = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "Content-Length: 8\r\n"
                             "Connection: close\r\n"
                             "Retry-After: 5\r\n"
                             "X-A: b\r\n"
                             "\r\n"
                             "too busy";
    n = wsg_http_write_response(buf, sizeof buf, 503, "Retry-After: 5\r\nX-A: b\r\n", S("too busy"));
    ASSERT_INT_EQ(n, strlen(want_extra));
    ASSERT_MEM_EQ(buf, want_extra, strlen(want_extra));

    /* The body is a view: binary bytes and its exact length. */
    n = wsg_http_write_response(buf, sizeof buf, 403, "", (wsg_str_t){"a\0b!", 3});
    const char *want403 = "HTTP/1.1 403 Forbidden\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Length: 3\r\n"
                          "Connection: close\r\n"
                          "\r\n"
                          "a\0b";
    ASSERT_INT_EQ(n, strlen(want403) + 2);
    ASSERT_MEM_EQ(buf, want403, strlen(want403) + 2);

    /* Unknown status: reason "Error". */
    n = wsg_http_write_response(buf, sizeof buf, 599, NULL, S(""));
    ASSERT_TRUE(n > 0);
    ASSERT_TRUE(strncmp(buf, "HTTP/1.1 599 Error\r\n", 20) == 0);

    size_t len = strlen(want_extra);
    for (size_t cap = 0; cap < len; cap++) {
        memset(buf, '#', sizeof buf);
        n = wsg_http_write_response(buf, cap, 503, "Retry-After: 5\r\nX-A: b\r\n", S("too busy"));
        if (n != -ENOSPC)
            TEST_FAIL_AT("cap %zu: %zd, want -ENOSPC", cap, n);
        if (buf[cap] != '#')
            TEST_FAIL_AT("cap %zu: wrote past the capacity", cap);
    }
    n = wsg_http_write_response(buf, len, 503, "Retry-After: 5\r\nX-A: b\r\n", S("too busy"));
    ASSERT_INT_EQ(n, len);
}

static void test_reason_phrase(void)
{
    static const struct {
        int status;
        const char *phrase;
    } table[] = {
        {101, "Switching Protocols"},
        {200, "OK"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Payload Too Large"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {0, "Error"},
        {-1, "Error"},
        {418, "Error"},
        {999, "Error"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        ASSERT_STR_EQ(wsg_http_reason_phrase(table[i].status), table[i].phrase);
}

TEST_MAIN("handshake", TEST_CASE(test_check_ok), TEST_CASE(test_check_method),
          TEST_CASE(test_check_http_version), TEST_CASE(test_check_upgrade), TEST_CASE(test_check_connection),
          TEST_CASE(test_check_ws_version), TEST_CASE(test_check_key), TEST_CASE(test_check_order),
          TEST_CASE(test_accept_key), TEST_CASE(test_pick_subprotocol), TEST_CASE(test_is_token),
          TEST_CASE(test_check_head_lines), TEST_CASE(test_write_101),
          TEST_CASE(test_write_response), TEST_CASE(test_reason_phrase))
