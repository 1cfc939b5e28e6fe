/* Tests for protocol/url.c: target splitting, percent-decoding, facility, query switches and values. */
#include <errno.h>

#include "url.h"

#include "test.h"

static wsg_str_t S(const char *s)
{
    return wsg_str_c(s);
}

/* ---- wsg_url_split ---- */

static void check_split(const char *target, const char *want_path, const char *want_query, int line)
{
    wsg_str_t path, query;
    wsg_url_split(S(target), &path, &query);
    if (!wsg_str_eq(path, S(want_path)) || !wsg_str_eq(query, S(want_query)))
        TEST_FAIL_AT("line %d: split(\"%s\") = \"%.*s\" + \"%.*s\", want \"%s\" + \"%s\"", line, target,
                     (int)path.len, path.ptr ? path.ptr : "", (int)query.len, query.ptr ? query.ptr : "",
                     want_path, want_query);
}
#define SPLIT(t, p, q) check_split(t, p, q, __LINE__)

static void test_split(void)
{
    SPLIT("/ws/foobar?subscribe-broadcast&echo", "/ws/foobar", "subscribe-broadcast&echo");
    SPLIT("/ws/foobar", "/ws/foobar", "");
    SPLIT("/ws/foobar?", "/ws/foobar", "");
    SPLIT("?", "", "");
    SPLIT("", "", "");
    SPLIT("/ws/a?b?c", "/ws/a", "b?c");
    SPLIT("/ws/a?echo#frag", "/ws/a", "echo");
    SPLIT("/ws/a?echo#frag?x", "/ws/a", "echo");
    SPLIT("/ws/a#frag?echo", "/ws/a", "");
    SPLIT("/ws/a#", "/ws/a", "");
    SPLIT("#?echo", "", "");
    SPLIT("/ws/%3Fx?y", "/ws/%3Fx", "y");

    wsg_str_t path, query;
    wsg_url_split(WSG_STR_NULL, &path, &query);
    ASSERT_UINT_EQ(path.len, 0);
    ASSERT_UINT_EQ(query.len, 0);
    /* Without a '?', the query is the empty view; with one, it borrows the target. */
    const char *t = "/ws/x?echo";
    wsg_url_split(S(t), &path, &query);
    ASSERT_TRUE(path.ptr == t);
    ASSERT_TRUE(query.ptr == t + 6);
    /* The target is a view: a '?' past its length is not seen. */
    wsg_url_split((wsg_str_t){t, 5}, &path, &query);
    ASSERT_UINT_EQ(path.len, 5);
    ASSERT_UINT_EQ(query.len, 0);
}

/* ---- wsg_url_decode ---- */

static void check_decode(const char *in, bool plus, const char *want, size_t want_len, int line)
{
    char out[64];
    memset(out, '#', sizeof out);
    ssize_t n = wsg_url_decode(S(in), out, sizeof out, plus);
    if (n != (ssize_t)want_len || memcmp(out, want, want_len) != 0)
        TEST_FAIL_AT("line %d: decode(\"%s\", %d) = %zd \"%.*s\", want \"%s\"", line, in, plus, n,
                     n > 0 ? (int)n : 0, out, want);
}
#define DECODE(in, plus, want) check_decode(in, plus, want, sizeof(want) - 1, __LINE__)

static void test_decode(void)
{
    DECODE("", false, "");
    DECODE("abc", false, "abc");
    DECODE("a%20b", false, "a b");
    DECODE("%41%42%43", false, "ABC");
    DECODE("%e2%82%ac", false, "\xe2\x82\xac");
    DECODE("%E2%82%AC", false, "\xe2\x82\xac");
    DECODE("%c3%A9", false, "\xc3\xa9");
    DECODE("a+b", false, "a+b");
    DECODE("a+b", true, "a b");
    DECODE("%2B", true, "+"); /* an encoded '+' stays a '+' */
    DECODE("%2b+", true, "+ ");
    DECODE("%00", false, "\0");
    DECODE("%", false, "%");
    DECODE("%4", false, "%4");
    DECODE("a%", false, "a%");
    DECODE("a%4", false, "a%4");
    DECODE("%zz", false, "%zz");
    DECODE("%4g", false, "%4g");
    DECODE("%g4", false, "%g4");
    DECODE("%%41", false, "%A");
    DECODE("%%", false, "%%");
    DECODE("%2541", false, "%41"); /* decoded once, not twice */
    DECODE("%+41", true, "% 41");
    DECODE("100%", true, "100%");
}

static void test_decode_capacity(void)
{
    char out[8];
    memset(out, '#', sizeof out);
    ASSERT_INT_EQ(wsg_url_decode(S("a%20b"), out, 3, false), 3);
    ASSERT_MEM_EQ(out, "a b", 3);
    ASSERT_INT_EQ(wsg_url_decode(S("a%20b"), out, 2, false), -ENOSPC);
    ASSERT_INT_EQ(wsg_url_decode(S("%41"), out, 0, false), -ENOSPC);
    ASSERT_INT_EQ(wsg_url_decode(S(""), NULL, 0, false), 0);
    ASSERT_INT_EQ(wsg_url_decode(WSG_STR_NULL, NULL, 0, true), 0);
    memset(out, '#', sizeof out);
    ASSERT_INT_EQ(wsg_url_decode(S("abcdef"), out, 4, false), -ENOSPC);
    ASSERT_UINT_EQ((unsigned char)out[4], '#');
}

/* ---- wsg_url_facility ---- */

static void check_facility(const char *path, const char *prefix, int want_rc, const char *want,
                           size_t want_len, int line)
{
    char out[WSG_FACILITY_MAX + 8];
    memset(out, '#', sizeof out);
    size_t len = 12345;
    int rc = wsg_url_facility(S(path), S(prefix), out, &len);
    if (rc != want_rc) {
        TEST_FAIL_AT("line %d: facility(\"%s\", \"%s\") = %d, want %d", line, path, prefix, rc, want_rc);
        return;
    }
    if (rc == 0 && (len != want_len || memcmp(out, want, want_len) != 0))
        TEST_FAIL_AT("line %d: facility(\"%s\") = \"%.*s\" (%zu), want \"%s\"", line, path, (int)len, out,
                     len, want);
    if ((unsigned char)out[WSG_FACILITY_MAX] != '#')
        TEST_FAIL_AT("line %d: wrote past WSG_FACILITY_MAX", line);
}
#define FAC(path, prefix, rc, want) check_facility(path, prefix, rc, want, sizeof(want) - 1, __LINE__)

static void test_facility(void)
{
    FAC("/ws/foobar", "/ws/", 0, "foobar");
    FAC("/ws/", "/ws/", 0, "");
    FAC("/ws/foo/", "/ws/", 0, "foo/");
    FAC("/ws/foo/bar", "/ws/", 0, "foo/bar");
    FAC("/ws//", "/ws/", 0, "/");
    FAC("/ws/a%20b", "/ws/", 0, "a b");
    FAC("/ws/a+b", "/ws/", 0, "a+b"); /* '+' is a space in queries only */
    FAC("/ws/%C3%A9t%C3%A9", "/ws/", 0, "\xc3\xa9t\xc3\xa9");
    FAC("/ws/\xc3\xa9", "/ws/", 0, "\xc3\xa9");
    FAC("/ws/%3Fx%23y", "/ws/", 0, "?x#y");
    FAC("/ws/%25", "/ws/", 0, "%");
    /* A '%' without two hex digits is kept. */
    FAC("/ws/%", "/ws/", 0, "%");
    FAC("/ws/%4", "/ws/", 0, "%4");
    FAC("/ws/%zz", "/ws/", 0, "%zz");
    /* The whole path is decoded before the prefix is matched. */
    FAC("/ws%2Ffoo", "/ws/", 0, "foo");
    FAC("%2Fws%2Ffoo%2F", "/ws/", 0, "foo/");
    FAC("/w%73/foo", "/ws/", 0, "foo");
    /* Only the first prefix goes. */
    FAC("/ws/ws/x", "/ws/", 0, "ws/x");
    /* Other prefixes, and none at all. */
    FAC("/app/socket/chat", "/app/socket/", 0, "chat");
    FAC("/ws/foo", "", 0, "/ws/foo");
    FAC("", "", 0, "");
    FAC("/wsfoo", "/ws", 0, "foo");
}

static void test_facility_errors(void)
{
    FAC("/wsx/foo", "/ws/", -ENOENT, "");
    FAC("/ws", "/ws/", -ENOENT, "");
    FAC("/w", "/ws/", -ENOENT, "");
    FAC("", "/ws/", -ENOENT, "");
    FAC("/WS/foo", "/ws/", -ENOENT, "");
    FAC("ws/foo", "/ws/", -ENOENT, "");
    FAC("/ws%2", "/ws/", -ENOENT, "");
    FAC("/x/ws/foo", "/ws/", -ENOENT, "");
    /* Control characters, raw or encoded. */
    FAC("/ws/%00", "/ws/", -EINVAL, "");
    FAC("/ws/a%0Ab", "/ws/", -EINVAL, "");
    FAC("/ws/a%0db", "/ws/", -EINVAL, "");
    FAC("/ws/%1F", "/ws/", -EINVAL, "");
    FAC("/ws/%7F", "/ws/", -EINVAL, "");
    FAC("/ws/a\tb", "/ws/", -EINVAL, "");
    FAC("/ws/\x01", "/ws/", -EINVAL, "");
    /* Invalid UTF-8. */
    FAC("/ws/%C3", "/ws/", -EINVAL, "");
    FAC("/ws/%C3(", "/ws/", -EINVAL, "");
    FAC("/ws/%FF", "/ws/", -EINVAL, "");
    FAC("/ws/%C0%AF", "/ws/", -EINVAL, "");
    FAC("/ws/%ED%A0%80", "/ws/", -EINVAL, "");
    FAC("/ws/\xc3", "/ws/", -EINVAL, "");
    /* Non-ASCII is fine: 0x80..0x9f are C1 controls only as code points, not as bytes. */
    FAC("/ws/%C2%85", "/ws/", 0, "\xc2\x85");
}

static void test_facility_length(void)
{
    char path[4 + 3 * (WSG_FACILITY_MAX + 1) + 1];
    char want[WSG_FACILITY_MAX + 1];
    /* Exactly WSG_FACILITY_MAX raw bytes fit; one more does not. */
    strcpy(path, "/ws/");
    memset(path + 4, 'a', WSG_FACILITY_MAX);
    path[4 + WSG_FACILITY_MAX] = '\0';
    memset(want, 'a', WSG_FACILITY_MAX);
    check_facility(path, "/ws/", 0, want, WSG_FACILITY_MAX, __LINE__);
    path[4 + WSG_FACILITY_MAX] = 'a';
    path[4 + WSG_FACILITY_MAX + 1] = '\0';
    check_facility(path, "/ws/", -E2BIG, "", 0, __LINE__);
    /* The limit counts decoded bytes: 256 "%41" make 256 bytes. */
    strcpy(path, "/ws/");
    for (int i = 0; i < WSG_FACILITY_MAX; i++)
        memcpy(path + 4 + 3 * i, "%41", 3);
    path[4 + 3 * WSG_FACILITY_MAX] = '\0';
    memset(want, 'A', WSG_FACILITY_MAX);
    check_facility(path, "/ws/", 0, want, WSG_FACILITY_MAX, __LINE__);
    strcat(path, "%41");
    check_facility(path, "/ws/", -E2BIG, "", 0, __LINE__);
    /* A multi-byte character that ends exactly at the limit. */
    strcpy(path, "/ws/");
    memset(path + 4, 'a', WSG_FACILITY_MAX - 2);
    strcpy(path + 4 + WSG_FACILITY_MAX - 2, "%C3%A9");
    memset(want, 'a', WSG_FACILITY_MAX - 2);
    memcpy(want + WSG_FACILITY_MAX - 2, "\xc3\xa9", 2);
    check_facility(path, "/ws/", 0, want, WSG_FACILITY_MAX, __LINE__);

    /* A very long path costs nothing but time. */
    static char huge[100000];
    memset(huge, 'x', sizeof huge - 1);
    memcpy(huge, "/ws/", 4);
    check_facility(huge, "/ws/", -E2BIG, "", 0, __LINE__);
    check_facility(huge, "/nope/", -ENOENT, "", 0, __LINE__);
}

/* ---- wsg_query_flags ---- */

static uint32_t flags_of_target(const char *target)
{
    wsg_str_t path, query;
    wsg_url_split(S(target), &path, &query);
    return wsg_query_flags(query);
}

#define FLAGS(target, want) ASSERT_UINT_EQ(flags_of_target(target), (want))

static void test_query_flags_names(void)
{
    FLAGS("/ws/x?subscribe-broadcast", WSG_Q_SUBSCRIBE_BROADCAST);
    FLAGS("/ws/x?subscribe-user", WSG_Q_SUBSCRIBE_USER);
    FLAGS("/ws/x?subscribe-group", WSG_Q_SUBSCRIBE_GROUP);
    FLAGS("/ws/x?subscribe-session", WSG_Q_SUBSCRIBE_SESSION);
    FLAGS("/ws/x?publish-broadcast", WSG_Q_PUBLISH_BROADCAST);
    FLAGS("/ws/x?publish-user", WSG_Q_PUBLISH_USER);
    FLAGS("/ws/x?publish-group", WSG_Q_PUBLISH_GROUP);
    FLAGS("/ws/x?publish-session", WSG_Q_PUBLISH_SESSION);
    FLAGS("/ws/x?echo", WSG_Q_ECHO);
    FLAGS("/ws/foobar?subscribe-broadcast&publish-broadcast&echo",
          WSG_Q_SUBSCRIBE_BROADCAST | WSG_Q_PUBLISH_BROADCAST | WSG_Q_ECHO);
    FLAGS("/ws/x?subscribe-broadcast&subscribe-user&subscribe-group&subscribe-session&publish-broadcast&"
          "publish-user&publish-group&publish-session&echo",
          WSG_Q_SUBSCRIBE_ANY | WSG_Q_PUBLISH_ANY | WSG_Q_ECHO);
    FLAGS("/ws/x?subscribe-user&subscribe-user", WSG_Q_SUBSCRIBE_USER);
    FLAGS("/ws/x", 0);
    FLAGS("/ws/x?", 0);
    ASSERT_UINT_EQ(wsg_query_flags(WSG_STR_NULL), 0);
}

static void test_query_flags_normalisation(void)
{
    /* Values are ignored; empty parts too. */
    FLAGS("/ws/x?&&echo=0&", WSG_Q_ECHO);
    FLAGS("/ws/x?echo=", WSG_Q_ECHO);
    FLAGS("/ws/x?echo=false&publish-user=no", WSG_Q_ECHO | WSG_Q_PUBLISH_USER);
    FLAGS("/ws/x?echo=subscribe-user", WSG_Q_ECHO);
    FLAGS("/ws/x?echo==", WSG_Q_ECHO);
    FLAGS("/ws/x?subscribe-broadcast=%zz", WSG_Q_SUBSCRIBE_BROADCAST);
    /* Keys are trimmed and lower-cased, after decoding. */
    FLAGS("/ws/x? Echo ", WSG_Q_ECHO);
    FLAGS("/ws/x?ECHO", WSG_Q_ECHO);
    FLAGS("/ws/x?Subscribe-Broadcast", WSG_Q_SUBSCRIBE_BROADCAST);
    FLAGS("/ws/x?subscribe%2Dbroadcast", WSG_Q_SUBSCRIBE_BROADCAST);
    FLAGS("/ws/x?%65%63%68%6F", WSG_Q_ECHO);
    FLAGS("/ws/x?%45CHO", WSG_Q_ECHO);
    FLAGS("/ws/x?+echo+", WSG_Q_ECHO);
    FLAGS("/ws/x?%20%09echo%0D%0A", WSG_Q_ECHO);
    FLAGS("/ws/x?%0B%0Cecho", WSG_Q_ECHO);
    FLAGS("/ws/x?%1Cecho%1F", WSG_Q_ECHO); /* Python's strip() removes 0x1c..0x1f as well */
    FLAGS("/ws/x?echo +=1", WSG_Q_ECHO);
    /* Not the same key. */
    FLAGS("/ws/x?ech", 0);
    FLAGS("/ws/x?echoo", 0);
    FLAGS("/ws/x?xecho", 0);
    FLAGS("/ws/x?e+cho", 0);
    FLAGS("/ws/x?e%20cho", 0);
    FLAGS("/ws/x?echo%00", 0);
    FLAGS("/ws/x?%00echo", 0);
    FLAGS("/ws/x?%A0echo", 0);
    FLAGS("/ws/x?subscribe_broadcast", 0);
    FLAGS("/ws/x?subscribe-broadcasts", 0);
    FLAGS("/ws/x?subscribe", 0);
    FLAGS("/ws/x?=echo", 0);
    FLAGS("/ws/x?echo%3D1", 0);            /* an encoded '=' belongs to the key */
    FLAGS("/ws/x?echo%26publish-user", 0); /* an encoded '&' does not split */
    /* Only '&' splits; ';' is an ordinary character (Django >= 3.2). */
    FLAGS("/ws/x?echo;publish-user", 0);
    FLAGS("/ws/x?publish-user;&echo", WSG_Q_ECHO);
    /* Stray percent signs. */
    FLAGS("/ws/x?%", 0);
    FLAGS("/ws/x?%4", 0);
    FLAGS("/ws/x?echo%", 0);
    FLAGS("/ws/x?%&echo", WSG_Q_ECHO);
    FLAGS("/ws/x?%4&echo&%", WSG_Q_ECHO);
    /* A fragment is not part of the query. */
    FLAGS("/ws/x?echo#publish-user", WSG_Q_ECHO);
    FLAGS("/ws/x#?echo", 0);
    FLAGS("/ws/x?echo#&publish-user", WSG_Q_ECHO);
}

static void test_query_flags_long_keys(void)
{
    static char q[20000];
    /* A key far longer than any switch name. */
    memset(q, 'e', sizeof q - 1);
    q[sizeof q - 1] = '\0';
    ASSERT_UINT_EQ(wsg_query_flags(S(q)), 0);
    /* A switch name padded with lots of white space is still that switch, as in Python. */
    memset(q, ' ', sizeof q - 1);
    memcpy(q + 9000, "ECHO", 4);
    ASSERT_UINT_EQ(wsg_query_flags(S(q)), WSG_Q_ECHO);
    memset(q, '+', sizeof q - 1);
    memcpy(q + 9000, "echo&publish-user", 17);
    ASSERT_UINT_EQ(wsg_query_flags(S(q)), WSG_Q_ECHO | WSG_Q_PUBLISH_USER);
    /* ... but not when something follows the padding. */
    memset(q, ' ', sizeof q - 1);
    memcpy(q + 9000, "echo", 4);
    q[sizeof q - 2] = 'x';
    ASSERT_UINT_EQ(wsg_query_flags(S(q)), 0);
    /* A long value does not matter. */
    memset(q, 'v', sizeof q - 1);
    memcpy(q, "echo=", 5);
    ASSERT_UINT_EQ(wsg_query_flags(S(q)), WSG_Q_ECHO);
    /* Many parts. */
    q[0] = '\0';
    for (int i = 0; i < 1000; i++)
        strcat(q, "x&");
    strcat(q, "publish-group");
    ASSERT_UINT_EQ(wsg_query_flags(S(q)), WSG_Q_PUBLISH_GROUP);
    /* The query is a view: a switch past its length does not count. */
    ASSERT_UINT_EQ(wsg_query_flags((wsg_str_t){"echo", 3}), 0);
    ASSERT_UINT_EQ(wsg_query_flags((wsg_str_t){"echo&publish-user", 5}), WSG_Q_ECHO);
}

/* ---- wsg_query_value ---- */

static void check_value(const char *query, const char *name, ssize_t want_rc, const char *want, int line)
{
    char out[32];
    memset(out, '#', sizeof out);
    ssize_t n = wsg_query_value(S(query), name, out, sizeof out);
    if (n != want_rc)
        TEST_FAIL_AT("line %d: value(\"%s\", \"%s\") = %zd, want %zd", line, query, name ? name : "(null)", n,
                     want_rc);
    else if (n > 0 && memcmp(out, want, (size_t)n) != 0)
        TEST_FAIL_AT("line %d: value(\"%s\", \"%s\") = \"%.*s\", want \"%s\"", line, query, name, (int)n, out,
                     want);
}
#define VALUE(q, name, want) check_value(q, name, (ssize_t)strlen(want), want, __LINE__)
#define VALUE_ERR(q, name, rc) check_value(q, name, rc, "", __LINE__)

static void test_query_value(void)
{
    VALUE("token=abc&echo", "token", "abc");
    VALUE("echo&token=abc", "token", "abc");
    VALUE("Token=abc", "token", "abc");
    VALUE("+TOKEN%20=abc", "token", "abc");
    VALUE("token=a+b%20c", "token", "a b c");
    VALUE("token=%2B%26%3D", "token", "+&=");
    VALUE("token=a=b", "token", "a=b");
    VALUE("token= a ", "token", " a "); /* values are not trimmed */
    VALUE("token=%zz%", "token", "%zz%");
    VALUE("token", "token", "");
    VALUE("token=", "token", "");
    VALUE("x=1&token=first&token=second", "token", "first");
    VALUE("&&token=1&&", "token", "1");
    VALUE("echo=0", "echo", "0");
    VALUE("=v", "", "v");
    VALUE("session id=x", "session id", "x");
    VALUE("token=x#y", "token", "x#y"); /* the caller splits the fragment off first */
    VALUE_ERR("tokens=abc", "token", -ENOENT);
    VALUE_ERR("tok=abc", "token", -ENOENT);
    VALUE_ERR("x=token", "token", -ENOENT);
    VALUE_ERR("", "token", -ENOENT);
    VALUE_ERR("token=1", "Token", -ENOENT); /* names are given in lower case */
    VALUE_ERR("token=1", " token", -ENOENT);
    VALUE_ERR("token=1", NULL, -ENOENT);
    VALUE_ERR("token=0123456789012345678901234567890123456789", "token", -ENOSPC);

    char out[4];
    ASSERT_INT_EQ(wsg_query_value(WSG_STR_NULL, "token", out, sizeof out), -ENOENT);
    ASSERT_INT_EQ(wsg_query_value(S("token=abcd"), "token", out, 4), 4);
    ASSERT_MEM_EQ(out, "abcd", 4);
    ASSERT_INT_EQ(wsg_query_value(S("token=abcde"), "token", out, 4), -ENOSPC);
    ASSERT_INT_EQ(wsg_query_value(S("token"), "token", NULL, 0), 0);

    /* A name longer than any fixed buffer still matches exactly. */
    static char q[3000], name[1500];
    memset(name, 'k', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(q, sizeof q, "%s=v", name);
    VALUE(q, name, "v");
    q[0] = 'K';
    VALUE(q, name, "v");
    q[10] = 'x';
    VALUE_ERR(q, name, -ENOENT);
}

/* ---- wsg_query_since, wsg_query_since_check ---- */

static void check_since(const char *query, const char *label, int want_rc, uint64_t ms, uint64_t seq,
                        int line)
{
    wsg_stream_id_t id = {777, 777};
    int rc = wsg_query_since(S(query), S(label), &id);
    if (rc != want_rc)
        TEST_FAIL_AT("line %d: since(\"%s\", \"%s\") = %d, want %d", line, query, label, rc, want_rc);
    else if (rc == 0 && (id.ms != ms || id.seq != seq))
        TEST_FAIL_AT("line %d: since(\"%s\", \"%s\") = %llu-%llu, want %llu-%llu", line, query, label,
                     (unsigned long long)id.ms, (unsigned long long)id.seq, (unsigned long long)ms,
                     (unsigned long long)seq);
}
#define SINCE(q, label, ms, seq) check_since(q, label, 0, ms, seq, __LINE__)
#define SINCE_ERR(q, label, rc) check_since(q, label, rc, 0, 0, __LINE__)

static void test_query_since(void)
{
    SINCE("since=5-1", "broadcast:foo", 5, 1);
    SINCE("since=5", "broadcast:foo", 5, 0);
    SINCE("subscribe-broadcast&since=1526919030474-55&echo", "broadcast:foo", 1526919030474ull, 55);
    /* The per-label key beats the plain one, wherever each stands. */
    SINCE("since=1-1&since.broadcast:foo=2-2", "broadcast:foo", 2, 2);
    SINCE("since.broadcast:foo=2-2&since=1-1", "broadcast:foo", 2, 2);
    SINCE("since.broadcast:bar=3-3&since=1-1", "broadcast:foo", 1, 1);
    SINCE("since.broadcast:bar=3-3&since.broadcast:foo=4-0", "broadcast:foo", 4, 0);
    /* The key is percent-decoded; "since." is matched without case, the label exactly. */
    SINCE("since.broadcast%3Afoo=2-2", "broadcast:foo", 2, 2);
    SINCE("%73ince%2Ebroadcast%3afoo=2-2", "broadcast:foo", 2, 2);
    SINCE("SINCE.broadcast:foo=2-2", "broadcast:foo", 2, 2);
    SINCE("Since.Broadcast:foo=2-2&since=1-1", "broadcast:foo", 1, 1);
    SINCE("SINCE=9-9", "x", 9, 9);
    SINCE(" since.session:chat =8-8", "session:chat", 8, 8); /* stripped like every key */
    SINCE("since.a+b=8-8", "a b", 8, 8);
    SINCE("since.a%2Bb=8-8&since.a+b=7-7", "a+b", 8, 8);
    SINCE("since.caf%C3%A9=6-6", "caf\xc3\xa9", 6, 6);
    SINCE("since.group:x:a:b=6-6", "group:x:a:b", 6, 6);
    SINCE("since.=6-6", "", 6, 6);
    /* The value is percent-decoded; leading zeros are fine. */
    SINCE("since=12%2D34", "x", 12, 34);
    SINCE("since=%31", "x", 1, 0);
    SINCE("since=0001-0002", "x", 1, 2);
    SINCE("since=18446744073709551615-18446744073709551615", "x", UINT64_MAX, UINT64_MAX);
    /* The first key of each kind counts. */
    SINCE("since=1-1&since=2-2", "x", 1, 1);
    SINCE("since.x=1-1&since.x=bad", "x", 1, 1);
    /* Absent. */
    SINCE_ERR("", "x", -ENOENT);
    SINCE_ERR("subscribe-broadcast&echo", "x", -ENOENT);
    SINCE_ERR("sinc=1-1&sincex=1-1&xsince=1-1&since.y=1-1&since-x=1-1", "x", -ENOENT);
    SINCE_ERR("since.X=1-1", "x", -ENOENT);
    SINCE_ERR("since.x =1-1", "x ", -ENOENT); /* a label ending in white space needs plain "since" */
    SINCE("since.x =1-1&since=2-2", "x ", 2, 2);
    SINCE_ERR("x=since", "x", -ENOENT);
    /* Malformed values: the one that applies decides. */
    SINCE_ERR("since", "x", -EINVAL);
    SINCE_ERR("since=", "x", -EINVAL);
    SINCE_ERR("since=abc", "x", -EINVAL);
    SINCE_ERR("since=1-", "x", -EINVAL);
    SINCE_ERR("since=-1", "x", -EINVAL);
    SINCE_ERR("since=1+2", "x", -EINVAL);
    SINCE_ERR("since=1-2%20", "x", -EINVAL);
    SINCE_ERR("since=%", "x", -EINVAL);
    SINCE_ERR("since=18446744073709551616-0", "x", -EINVAL);
    SINCE_ERR("since=$", "x", -EINVAL);
    SINCE_ERR("since.x=bad&since=1-1", "x", -EINVAL);
    SINCE_ERR("since=1-1&since.x=", "x", -EINVAL);
    SINCE("since.y=bad&since=1-1", "x", 1, 1); /* another label's value is not this one's business */
    ASSERT_INT_EQ(wsg_query_since(WSG_STR_NULL, S("x"), NULL), -ENOENT);
    /* A long value of leading zeros is still one id: no buffer cuts it. */
    static char q[4100];
    strcpy(q, "since=");
    memset(q + 6, '0', 4000);
    strcpy(q + 4006, "42-7");
    SINCE(q, "x", 42, 7);
    /* A long label matches exactly. */
    static char label[2000], q2[2100];
    memset(label, 'L', sizeof label - 1);
    label[sizeof label - 1] = '\0';
    snprintf(q2, sizeof q2, "since.%s=3-4", label);
    SINCE(q2, label, 3, 4);
    label[1000] = 'M';
    SINCE_ERR(q2, label, -ENOENT);
}

static void test_query_since_check(void)
{
    ASSERT_INT_EQ(wsg_query_since_check(WSG_STR_NULL), 0);
    ASSERT_INT_EQ(wsg_query_since_check(S("")), 0);
    ASSERT_INT_EQ(wsg_query_since_check(S("subscribe-broadcast&echo&token=x")), 0);
    ASSERT_INT_EQ(wsg_query_since_check(S("since=1-1")), 0);
    ASSERT_INT_EQ(wsg_query_since_check(S("since=1-1&since.a=2&since.b:c=0-0&SINCE.D=5&since.=7")), 0);
    ASSERT_INT_EQ(wsg_query_since_check(S("since=x")), -EINVAL);
    ASSERT_INT_EQ(wsg_query_since_check(S("since")), -EINVAL);
    ASSERT_INT_EQ(wsg_query_since_check(S("since.a")), -EINVAL);
    ASSERT_INT_EQ(wsg_query_since_check(S("since.=")), -EINVAL);
    ASSERT_INT_EQ(wsg_query_since_check(S("since=1-1&since=1-")), -EINVAL); /* repeated keys count too */
    ASSERT_INT_EQ(wsg_query_since_check(S("since.a=1&since.b=1&since.c=nope")), -EINVAL);
    ASSERT_INT_EQ(wsg_query_since_check(S("%53ince%2ex=oops")), -EINVAL);
    ASSERT_INT_EQ(wsg_query_since_check(S(" since =oops")), -EINVAL);
    /* Keys that only look like "since" are not checked. */
    ASSERT_INT_EQ(wsg_query_since_check(S("sinc=x&sincex=x&since-a=x&since_a=x&xsince.a=x&since%20.a=x")), 0);
    /* Many keys, one bad one at the end, past any fixed buffer. */
    static char q[40000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(q + n, sizeof q - n, "since.ch%d=%d-%d&", i, i, i);
    ASSERT_INT_EQ(wsg_query_since_check(S(q)), 0);
    wsg_stream_id_t id;
    ASSERT_INT_EQ(wsg_query_since(S(q), S("ch999"), &id), 0);
    ASSERT_UINT_EQ(id.ms, 999);
    ASSERT_INT_EQ(wsg_query_since(S(q), S("ch1000"), &id), -ENOENT);
    snprintf(q + n, sizeof q - n, "since.ch1000=9-");
    ASSERT_INT_EQ(wsg_query_since_check(S(q)), -EINVAL);
    /* A very long key. */
    static char longkey[5000];
    memcpy(longkey, "since.", 6);
    memset(longkey + 6, 'k', 4000);
    strcpy(longkey + 4006, "=1-x");
    ASSERT_INT_EQ(wsg_query_since_check(S(longkey)), -EINVAL);
    strcpy(longkey + 4006, "=1-2");
    ASSERT_INT_EQ(wsg_query_since_check(S(longkey)), 0);
}

static void test_since_leaves_flags_alone(void)
{
    /* "since" keys are not switches: the flags and values around them are unchanged. */
    ASSERT_UINT_EQ(wsg_query_flags(S("since=1-1&since.broadcast:x=2-2")), 0);
    ASSERT_UINT_EQ(wsg_query_flags(S("subscribe-broadcast&since=1-1&echo&since.user:x=bad")),
                   WSG_Q_SUBSCRIBE_BROADCAST | WSG_Q_ECHO);
    ASSERT_UINT_EQ(wsg_query_flags(S("since.subscribe-user=1&since=echo")), 0);
    check_value("since=1-1&token=t", "token", 1, "t", __LINE__);
    check_value("since.x=1-1&since=2-2", "since", 3, "2-2", __LINE__);
}

static void test_cookie_value(void)
{
    wsg_str_t v;
    ASSERT_TRUE(wsg_cookie_value(wsg_str_c("a=1; jwt=abc.def; b=2"), "jwt", &v));
    ASSERT_TRUE(wsg_str_eq(v, wsg_str_c("abc.def")));
    ASSERT_TRUE(wsg_cookie_value(wsg_str_c("jwt=\"q\""), "jwt", &v));
    ASSERT_TRUE(wsg_str_eq(v, wsg_str_c("q")));
    ASSERT_TRUE(wsg_cookie_value(wsg_str_c(" x = y ;jwt= t "), "jwt", &v));
    ASSERT_TRUE(wsg_str_eq(v, wsg_str_c("t")));
    ASSERT_FALSE(wsg_cookie_value(wsg_str_c("xjwt=1; jwtx=2"), "jwt", &v));
    ASSERT_FALSE(wsg_cookie_value(wsg_str_c(""), "jwt", &v));
    ASSERT_FALSE(wsg_cookie_value(wsg_str_c("jwt"), "jwt", &v));
    ASSERT_TRUE(wsg_cookie_value(wsg_str_c("jwt="), "jwt", &v));
    ASSERT_INT_EQ(v.len, 0);
}

TEST_MAIN("url", TEST_CASE(test_cookie_value), TEST_CASE(test_split), TEST_CASE(test_decode),
          TEST_CASE(test_decode_capacity), TEST_CASE(test_facility), TEST_CASE(test_facility_errors),
          TEST_CASE(test_facility_length), TEST_CASE(test_query_flags_names),
          TEST_CASE(test_query_flags_normalisation), TEST_CASE(test_query_flags_long_keys),
          TEST_CASE(test_query_value), TEST_CASE(test_query_since), TEST_CASE(test_query_since_check),
          TEST_CASE(test_since_leaves_flags_alone))
