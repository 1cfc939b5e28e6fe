/* Tests for protocol/channel.c: ws4redis channel names and identity validation. */
#include <errno.h>

#include "channel.h"

#include "test.h"

static wsg_str_t S(const char *s)
{
    return wsg_str_c(s);
}

static void check_name(const char *prefix, wsg_audience_t aud, const char *ident, const char *facility,
                       const char *want, int line)
{
    char out[128];
    memset(out, '#', sizeof out);
    ssize_t n =
        wsg_channel_name(out, sizeof out, S(prefix), aud, ident ? S(ident) : WSG_STR_NULL, S(facility));
    if (n != (ssize_t)strlen(want) || strcmp(out, want) != 0)
        TEST_FAIL_AT("line %d: got %zd \"%s\", want \"%s\"", line, n, n >= 0 ? out : "", want);
}
#define NAME(p, a, i, f, want) check_name(p, a, i, f, want, __LINE__)

static void test_compat_examples(void)
{
    /* The examples of the compatibility notes, verbatim. */
    NAME("ws4redis", WSG_AUDIENCE_BROADCAST, NULL, "foobar", "ws4redis:broadcast:foobar");
    NAME("ws4redis", WSG_AUDIENCE_GROUP, "admins", "foobar", "ws4redis:group:admins:foobar");
    NAME("ws4redis", WSG_AUDIENCE_USER, "john", "foobar", "ws4redis:user:john:foobar");
    NAME("ws4redis", WSG_AUDIENCE_SESSION, "abc", "foobar", "ws4redis:session:abc:foobar");
}

static void test_no_prefix(void)
{
    NAME("", WSG_AUDIENCE_BROADCAST, NULL, "foobar", "broadcast:foobar");
    NAME("", WSG_AUDIENCE_GROUP, "admins", "foobar", "group:admins:foobar");
    NAME("", WSG_AUDIENCE_USER, "john", "foobar", "user:john:foobar");
    NAME("", WSG_AUDIENCE_SESSION, "abc", "foobar", "session:abc:foobar");
    char out[64];
    ASSERT_INT_EQ(
        wsg_channel_name(out, sizeof out, WSG_STR_NULL, WSG_AUDIENCE_BROADCAST, WSG_STR_NULL, S("f")), 11);
    ASSERT_STR_EQ(out, "broadcast:f");
}

static void test_verbatim(void)
{
    /* Nothing is escaped: the facility may be empty, hold '/', ':' or UTF-8. */
    NAME("ws4redis", WSG_AUDIENCE_BROADCAST, NULL, "", "ws4redis:broadcast:");
    NAME("", WSG_AUDIENCE_USER, "john", "", "user:john:");
    NAME("p", WSG_AUDIENCE_BROADCAST, NULL, "foo/", "p:broadcast:foo/");
    NAME("p", WSG_AUDIENCE_BROADCAST, NULL, "a:b", "p:broadcast:a:b");
    NAME("a:b", WSG_AUDIENCE_USER, "j\xc3\xb6rg", "\xc3\xa9t\xc3\xa9",
         "a:b:user:j\xc3\xb6rg:\xc3\xa9t\xc3\xa9");
    NAME("p", WSG_AUDIENCE_BROADCAST, "ignored", "f", "p:broadcast:f"); /* ident ignored for broadcast */
    NAME("p", WSG_AUDIENCE_SESSION, "", "f", "p:session::f");
}

static void test_capacity(void)
{
    /* "ws4redis:user:john:foobar" is 25 bytes: 26 with the NUL fits, 25 does not. */
    char out[64];
    for (size_t cap = 0; cap <= 26; cap++) {
        memset(out, '#', sizeof out);
        ssize_t n = wsg_channel_name(out, cap, S("ws4redis"), WSG_AUDIENCE_USER, S("john"), S("foobar"));
        if (cap < 26) {
            if (n != -ENOSPC)
                TEST_FAIL_AT("cap %zu: %zd, want -ENOSPC", cap, n);
            if (out[cap] != '#')
                TEST_FAIL_AT("cap %zu: wrote past the capacity", cap);
        } else {
            ASSERT_INT_EQ(n, 25);
            ASSERT_STR_EQ(out, "ws4redis:user:john:foobar");
        }
    }
    ASSERT_INT_EQ(wsg_channel_name(NULL, 0, S(""), WSG_AUDIENCE_BROADCAST, WSG_STR_NULL, S("")), -ENOSPC);
    /* Views are honoured: bytes past their lengths are not copied. */
    ASSERT_INT_EQ(wsg_channel_name(out, sizeof out, (wsg_str_t){"pXX", 1}, WSG_AUDIENCE_GROUP,
                                   (wsg_str_t){"gYY", 1}, (wsg_str_t){"fZZ", 1}),
                  11);
    ASSERT_STR_EQ(out, "p:group:g:f");
}

static void test_ident_is_valid(void)
{
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("john")));
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("john.doe@example.com")));
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("a b")));
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("j\xc3\xb6rg")));
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("\xf0\x9f\x98\x80")));
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("x")));
    ASSERT_TRUE(wsg_channel_ident_is_valid(S("0123456789abcdefghijklmnopqrstuv"))); /* a session key */

    ASSERT_FALSE(wsg_channel_ident_is_valid(S("")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(WSG_STR_NULL));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("a:b")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S(":")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("john:")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("a\tb")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("a\nb")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("\x1f")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("a\x7f")));
    ASSERT_FALSE(wsg_channel_ident_is_valid((wsg_str_t){"a\0b", 3}));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("\xc3")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("\xc0\xba"))); /* an overlong ':' */
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("\xed\xa0\x80")));
    ASSERT_FALSE(wsg_channel_ident_is_valid(S("\xff")));

    char buf[300];
    memset(buf, 'a', sizeof buf);
    ASSERT_TRUE(wsg_channel_ident_is_valid((wsg_str_t){buf, 256}));
    ASSERT_FALSE(wsg_channel_ident_is_valid((wsg_str_t){buf, 257}));
    /* The limit is in bytes: 128 two-byte characters fit, 129 do not. */
    for (int i = 0; i < 150; i++)
        memcpy(buf + 2 * i, "\xc3\xa9", 2);
    ASSERT_TRUE(wsg_channel_ident_is_valid((wsg_str_t){buf, 256}));
    ASSERT_FALSE(wsg_channel_ident_is_valid((wsg_str_t){buf, 258}));
    ASSERT_FALSE(wsg_channel_ident_is_valid((wsg_str_t){buf, 255})); /* cut inside a character */
}

static const char *redact(const char *name, char *out, size_t cap)
{
    wsg_channel_redact(name, strlen(name), out, cap);
    return out;
}

static void test_redact_hides_session_keys(void)
{
    char out[256], other[256];
    ASSERT_STR_EQ(redact("broadcast:foo", out, sizeof out), "broadcast:foo");
    ASSERT_STR_EQ(redact("ws4redis:user:john:foo", out, sizeof out), "ws4redis:user:john:foo");
    redact("session:abcdefghij0123456789:foo", out, sizeof out);
    ASSERT_TRUE(strncmp(out, "session:abcd~", 13) == 0);
    ASSERT_TRUE(strlen(out) == strlen("session:abcd~123456:foo"));
    ASSERT_TRUE(strstr(out, "efgh") == NULL); /* nothing of the key past its first 4 bytes */
    ASSERT_STR_EQ(out + 19, ":foo");
    redact("ws4redis:session:abcdefghij0123456789:foo", other, sizeof other);
    ASSERT_STR_EQ(other + 9, out); /* with a prefix: the same */
    redact("session:abcdXXXXXXXXXXXXXXXXX:foo", other, sizeof other);
    ASSERT_TRUE(strcmp(out, other) != 0); /* two keys with the same start still differ */
    ASSERT_TRUE(strncmp(redact("session:ab:foo", out, sizeof out), "session:ab~", 11) == 0);
    ASSERT_TRUE(strncmp(redact("session:\xc3\xa9\xc3\xa9\xc3\xa9:f", out, sizeof out), "session:\xc3\xa9\xc3\xa9~", 13) == 0);
    ASSERT_STR_EQ(redact("session:", out, sizeof out), "session:");
    ASSERT_STR_EQ(redact("session::x", out, sizeof out), "session::x");
    ASSERT_STR_EQ(redact("", out, sizeof out), "");
    /* every segment after a "session" one, wherever it stands (a prefix or facility may hold one too) */
    ASSERT_TRUE(strstr(redact("p:session:session:secretkey:f", out, sizeof out), "secretkey") == NULL);
    redact("session:abcdefghij0123456789:foo", out, 10); /* cut to fit, never past the key's first bytes */
    ASSERT_STR_EQ(out, "session:");
}

static void check_label(const char *name, const char *prefix, const char *want, int line)
{
    char out[128];
    memset(out, '#', sizeof out);
    ssize_t n = wsg_channel_label(name, strlen(name), S(prefix), out, sizeof out);
    if (n != (ssize_t)strlen(want) || strcmp(out, want) != 0) {
        TEST_FAIL_AT("line %d: label(\"%s\", \"%s\") = %zd \"%s\", want \"%s\"", line, name, prefix, n,
                     n >= 0 ? out : "", want);
        return;
    }
    /* Exactly enough room (the NUL included) works; one byte less does not. */
    if (wsg_channel_label(name, strlen(name), S(prefix), out, (size_t)n + 1) != n || out[n] != '\0')
        TEST_FAIL_AT("line %d: label does not fit its own length + 1", line);
    for (size_t cap = 0; cap <= (size_t)n; cap++)
        if (wsg_channel_label(name, strlen(name), S(prefix), out, cap) != -ENOSPC)
            TEST_FAIL_AT("line %d: cap %zu not refused", line, cap);
}
#define LABEL(name, prefix, want) check_label(name, prefix, want, __LINE__)

static void test_label(void)
{
    LABEL("ws4redis:broadcast:foobar", "ws4redis", "broadcast:foobar");
    LABEL("ws4redis:group:admins:foobar", "ws4redis", "group:admins:foobar");
    LABEL("ws4redis:user:john:foobar", "ws4redis", "user:john:foobar");
    LABEL("ws4redis:session:abc:foobar", "ws4redis", "session:foobar");
    LABEL("broadcast:foobar", "", "broadcast:foobar");
    LABEL("group:admins:foobar", "", "group:admins:foobar");
    LABEL("user:john:foobar", "", "user:john:foobar");
    LABEL("session:abc:foobar", "", "session:foobar");
    /* A facility may hold ':'; an ident never does, so the key ends at the first ':' after "session:". */
    LABEL("ws4redis:broadcast:a:b:c", "ws4redis", "broadcast:a:b:c");
    LABEL("ws4redis:session:k3y:chat:room:1", "ws4redis", "session:chat:room:1");
    LABEL("session:k3y:session:x", "", "session:session:x");
    LABEL("session:k3y:", "", "session:");
    LABEL("session::foo", "", "session:foo");
    /* No facility at all: the key goes all the same. */
    LABEL("session:k3y", "", "session:");
    LABEL("p:session:k3y", "p", "session:");
    LABEL("session:", "", "session:");
    /* A name without the prefix is kept (a session key is still dropped). */
    LABEL("other:broadcast:x", "ws4redis", "other:broadcast:x");
    LABEL("ws4redisbroadcast:x", "ws4redis", "ws4redisbroadcast:x");
    LABEL("ws4redis", "ws4redis", "ws4redis");
    LABEL("ws4redis:", "ws4redis", "");
    LABEL("session:k:f", "ws4redis", "session:f");
    /* The prefix goes once; a prefix that names an audience is only a prefix. */
    LABEL("p:p:broadcast:x", "p", "p:broadcast:x");
    LABEL("session:session:k:f", "session", "session:f");
    LABEL("a:b:broadcast:x", "a:b", "broadcast:x");
    /* Only the exact "session:" kind is rewritten. */
    LABEL("sessions:k:f", "", "sessions:k:f");
    LABEL("Session:k:f", "", "Session:k:f");
    LABEL("user:session:f", "", "user:session:f");
    LABEL("", "", "");
    LABEL("", "p", "");

    char out[8];
    ASSERT_INT_EQ(wsg_channel_label("broadcast:x", 11, WSG_STR_NULL, out, 0), -ENOSPC);
    ASSERT_INT_EQ(wsg_channel_label("broadcast:x", 9, WSG_STR_NULL, out, 0), -ENOSPC);
    char big[32];
    ASSERT_INT_EQ(wsg_channel_label("session:k:f", 11, WSG_STR_NULL, big, 10), 9);
    ASSERT_STR_EQ(big, "session:f");
    /* The name is a view: nothing past `len` is read. */
    ASSERT_INT_EQ(wsg_channel_label("p:broadcast:xyz", 13, S("p"), big, sizeof big), 11);
    ASSERT_STR_EQ(big, "broadcast:x");
}

TEST_MAIN("channel", TEST_CASE(test_redact_hides_session_keys), TEST_CASE(test_compat_examples),
          TEST_CASE(test_no_prefix), TEST_CASE(test_verbatim), TEST_CASE(test_capacity),
          TEST_CASE(test_ident_is_valid), TEST_CASE(test_label))
