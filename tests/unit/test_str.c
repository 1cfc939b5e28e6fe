/* Tests for protocol/str.c: views, case-insensitive comparison, trimming, splitting, HTTP token lists. */
#include "str.h"

#include "test.h"

static wsg_str_t S(const char *s)
{
    return wsg_str_c(s);
}

static void test_str_c(void)
{
    wsg_str_t v = wsg_str_c("abc");
    ASSERT_UINT_EQ(v.len, 3);
    ASSERT_TRUE(v.ptr != NULL && memcmp(v.ptr, "abc", 3) == 0);
    v = wsg_str_c(NULL);
    ASSERT_TRUE(v.ptr == NULL);
    ASSERT_UINT_EQ(v.len, 0);
    v = wsg_str_c("");
    ASSERT_TRUE(v.ptr != NULL);
    ASSERT_UINT_EQ(v.len, 0);
}

static void test_eq(void)
{
    ASSERT_TRUE(wsg_str_eq(S("abc"), S("abc")));
    ASSERT_FALSE(wsg_str_eq(S("abc"), S("abd")));
    ASSERT_FALSE(wsg_str_eq(S("abc"), S("ab")));
    ASSERT_FALSE(wsg_str_eq(S("abc"), S("ABC")));
    ASSERT_TRUE(wsg_str_eq(WSG_STR_NULL, S("")));
    ASSERT_TRUE(wsg_str_eq(WSG_STR_NULL, WSG_STR_NULL));
    /* Views compare bytes, not C strings: embedded NULs count. */
    ASSERT_TRUE(wsg_str_eq((wsg_str_t){"a\0b", 3}, (wsg_str_t){"a\0b", 3}));
    ASSERT_FALSE(wsg_str_eq((wsg_str_t){"a\0b", 3}, (wsg_str_t){"a\0c", 3}));
}

static void test_eq_nocase(void)
{
    ASSERT_TRUE(wsg_str_eq_nocase(S("WebSocket"), S("websocket")));
    ASSERT_TRUE(wsg_str_eq_nocase(S("UPGRADE"), S("upgrade")));
    ASSERT_TRUE(wsg_str_eq_nocase(S(""), WSG_STR_NULL));
    ASSERT_FALSE(wsg_str_eq_nocase(S("websocket"), S("websockets")));
    ASSERT_FALSE(wsg_str_eq_nocase(S("a"), S("b")));
    /* Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ by 0x20 but are not letters. */
    ASSERT_FALSE(wsg_str_eq_nocase(S("@"), S("`")));
    ASSERT_FALSE(wsg_str_eq_nocase(S("["), S("{")));
    /* Non-ASCII bytes are compared as they are. */
    ASSERT_FALSE(wsg_str_eq_nocase(S("\xc3\xa9"), S("\xc3\x89")));
    ASSERT_TRUE(wsg_str_eq_nocase(S("\xc3\xa9"), S("\xc3\xa9")));
}

static void test_trim(void)
{
    wsg_str_t t = wsg_str_trim(S(" \t\r\n\v\fabc d\f\v\n\r\t "));
    ASSERT_UINT_EQ(t.len, 5);
    ASSERT_TRUE(memcmp(t.ptr, "abc d", 5) == 0);
    t = wsg_str_trim(S("   "));
    ASSERT_UINT_EQ(t.len, 0);
    t = wsg_str_trim(S(""));
    ASSERT_UINT_EQ(t.len, 0);
    t = wsg_str_trim(WSG_STR_NULL);
    ASSERT_TRUE(t.ptr == NULL);
    ASSERT_UINT_EQ(t.len, 0);
    t = wsg_str_trim(S("x"));
    ASSERT_TRUE(wsg_str_eq(t, S("x")));
    /* NUL and other control characters are not white space. */
    t = wsg_str_trim((wsg_str_t){"\0a\0", 3});
    ASSERT_UINT_EQ(t.len, 3);
    t = wsg_str_trim(S("\x1c"
                       "a"));
    ASSERT_UINT_EQ(t.len, 2);
    /* The result points into the input. */
    const char *src = "  mid  ";
    t = wsg_str_trim(S(src));
    ASSERT_TRUE(t.ptr == src + 2);
}

static void test_list_has_token(void)
{
    wsg_str_t up = S("upgrade");
    ASSERT_TRUE(wsg_str_list_has_token(S("Upgrade"), up));
    ASSERT_TRUE(wsg_str_list_has_token(S("keep-alive, Upgrade"), up));
    ASSERT_TRUE(wsg_str_list_has_token(S("keep-alive,Upgrade"), up));
    ASSERT_TRUE(wsg_str_list_has_token(S("UPGRADE , keep-alive"), up));
    ASSERT_TRUE(wsg_str_list_has_token(S("\tupgrade\t"), up));
    ASSERT_TRUE(wsg_str_list_has_token(S(",,upgrade,,"), up));
    ASSERT_FALSE(wsg_str_list_has_token(S("keep-alive"), up));
    ASSERT_FALSE(wsg_str_list_has_token(S("upgraded"), up));
    ASSERT_FALSE(wsg_str_list_has_token(S("upgrade-x"), up));
    ASSERT_FALSE(wsg_str_list_has_token(S("up grade"), up));
    ASSERT_FALSE(wsg_str_list_has_token(S("keep-alive upgrade"), up));
    ASSERT_FALSE(wsg_str_list_has_token(S(""), up));
    ASSERT_FALSE(wsg_str_list_has_token(WSG_STR_NULL, up));
    /* Empty elements carry nothing, not even the empty token. */
    ASSERT_FALSE(wsg_str_list_has_token(S(", ,"), S("")));
    ASSERT_FALSE(wsg_str_list_has_token(S("a"), S("")));
    /* The list is a view: bytes past its length do not count. */
    ASSERT_FALSE(wsg_str_list_has_token((wsg_str_t){"upgrade", 6}, up));
    ASSERT_TRUE(wsg_str_list_has_token((wsg_str_t){"upgrade, x", 7}, up));
}

/* Joins the elements `wsg_str_next_elem` produces as "[e1][e2]..." so that empty elements show. */
static const char *elems(wsg_str_t rest, char sep)
{
    static char out[256];
    size_t n = 0;
    wsg_str_t elem;
    out[0] = '\0';
    while (wsg_str_next_elem(&rest, sep, &elem))
        n += (size_t)snprintf(out + n, sizeof out - n, "[%.*s]", (int)elem.len, elem.ptr);
    return out;
}

static void test_next_elem(void)
{
    ASSERT_STR_EQ(elems(S("a,b,c"), ','), "[a][b][c]");
    ASSERT_STR_EQ(elems(S("a,,b"), ','), "[a][][b]");
    ASSERT_STR_EQ(elems(S(",a,"), ','), "[][a][]");
    ASSERT_STR_EQ(elems(S(","), ','), "[][]");
    ASSERT_STR_EQ(elems(S(""), ','), "[]");
    ASSERT_STR_EQ(elems(WSG_STR_NULL, ','), "");
    ASSERT_STR_EQ(elems(S(" a b ;c"), ';'), "[ a b ][c]");
    ASSERT_STR_EQ(elems(S("a,b"), '&'), "[a,b]");
    /* A view: bytes past its length are not looked at. */
    ASSERT_STR_EQ(elems((wsg_str_t){"a&b&c", 3}, '&'), "[a][b]");
    /* Elements point into the input. */
    const char *text = "xy&z";
    wsg_str_t rest = S(text), elem;
    ASSERT_TRUE(wsg_str_next_elem(&rest, '&', &elem));
    ASSERT_TRUE(elem.ptr == text && elem.len == 2);
    ASSERT_TRUE(wsg_str_next_elem(&rest, '&', &elem));
    ASSERT_TRUE(elem.ptr == text + 3 && elem.len == 1);
    ASSERT_FALSE(wsg_str_next_elem(&rest, '&', &elem));
    ASSERT_FALSE(wsg_str_next_elem(&rest, '&', &elem));
}

static void test_cut(void)
{
    wsg_str_t before = S("untouched"), after = S("untouched");
    ASSERT_FALSE(wsg_str_cut(S("key"), '=', &before, &after));
    ASSERT_FALSE(wsg_str_cut(WSG_STR_NULL, '=', &before, &after));
    ASSERT_TRUE(wsg_str_eq(before, S("untouched")) && wsg_str_eq(after, S("untouched")));
    ASSERT_TRUE(wsg_str_cut(S("k=v=w"), '=', &before, &after));
    ASSERT_TRUE(wsg_str_eq(before, S("k")) && wsg_str_eq(after, S("v=w")));
    ASSERT_TRUE(wsg_str_cut(S("=v"), '=', &before, &after));
    ASSERT_TRUE(before.len == 0 && wsg_str_eq(after, S("v")));
    ASSERT_TRUE(wsg_str_cut(S("k="), '=', &before, &after));
    ASSERT_TRUE(wsg_str_eq(before, S("k")) && after.len == 0 && after.ptr != NULL);
    ASSERT_FALSE(wsg_str_cut((wsg_str_t){"k=v", 1}, '=', &before, &after));
}

TEST_MAIN("str", TEST_CASE(test_str_c), TEST_CASE(test_eq), TEST_CASE(test_eq_nocase), TEST_CASE(test_trim),
          TEST_CASE(test_next_elem), TEST_CASE(test_cut), TEST_CASE(test_list_has_token))
