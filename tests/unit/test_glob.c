/* Tests for protocol/glob.c: Redis-style glob matching, pattern lists and their configuration check. */
#include <errno.h>
#include <stdbool.h>

#include "glob_match.h"

#include "test.h"

static void check_match(const char *pattern, const char *s, bool want, int line)
{
    bool got = wsg_glob_match(pattern, strlen(pattern), s, strlen(s));
    if (got != want)
        TEST_FAIL_AT("line %d: match(\"%s\", \"%s\") = %d, want %d", line, pattern, s, got, want);
}
#define YES(p, s) check_match(p, s, true, __LINE__)
#define NO(p, s) check_match(p, s, false, __LINE__)

static void test_literal(void)
{
    YES("", "");
    NO("", "a");
    NO("a", "");
    YES("abc", "abc");
    NO("abc", "abd");
    NO("abc", "ab");
    NO("abc", "abcd");
    NO("abc", "ABC"); /* case matters, as in Redis */
    YES("broadcast:news", "broadcast:news");
}

static void test_star(void)
{
    YES("*", "");
    YES("*", "anything at all");
    YES("**", "");
    YES("***x", "x");
    YES("a*", "a");
    YES("a*", "abc");
    NO("a*", "ba");
    YES("*c", "abc");
    YES("*c", "c");
    NO("*c", "cb");
    YES("a*c", "ac");
    YES("a*c", "abbbc");
    NO("a*c", "abbbd");
    YES("a*b*c", "aXbYc");
    YES("a*b*c", "abc");
    NO("a*b*c", "acb");
    YES("*:news", "broadcast:news");
    YES("broadcast:*", "broadcast:");
    YES("*a*", "banana");
    YES("*ana", "banana"); /* the first "ana" is not the end: the star must take more */
    YES("b*na", "banana");
    NO("*x*", "banana");
}

static void test_question(void)
{
    YES("?", "a");
    NO("?", "");
    NO("?", "ab");
    YES("a?c", "abc");
    YES("???", "xyz");
    NO("???", "xy");
    YES("*?", "a");
    NO("*?", "");
    YES("?*?", "ab");
    YES("?", "\xff"); /* bytes, not characters */
    NO("?", "\xc3\xa9");
}

static void test_sets(void)
{
    YES("[abc]", "a");
    YES("[abc]", "c");
    NO("[abc]", "d");
    NO("[abc]", "");
    NO("[abc]", "ab");
    YES("[^abc]", "d");
    NO("[^abc]", "a");
    NO("[^abc]", "");
    YES("[a-z]", "m");
    YES("[a-z]", "a");
    YES("[a-z]", "z");
    NO("[a-z]", "A");
    NO("[a-z]", "-");
    YES("[^a-z]", "A");
    NO("[^a-z]", "q");
    YES("[a-cx-z]", "y");
    NO("[a-cx-z]", "d");
    YES("[0-9][0-9]", "42");
    YES("h[ae]llo", "hello");
    YES("h[ae]llo", "hallo");
    NO("h[ae]llo", "hillo");
    /* A reversed range reads as the right way round, as in Redis. */
    YES("[z-a]", "m");
    /* ']' right after '[' or '[^' is a member. */
    YES("[]]", "]");
    NO("[]]", "a");
    YES("[]a]", "a");
    YES("[^]]", "a");
    NO("[^]]", "]");
    YES("[]-a]", "^"); /* the range ']'..'a' */
    /* '-' first or last is a member. */
    YES("[-a]", "-");
    YES("[a-]", "-");
    YES("[a-]", "a");
    NO("[a-]", "b");
    YES("[^-]", "a");
    NO("[^-]", "-");
    /* '\' escapes inside a set. */
    YES("[\\]]", "]");
    YES("[\\^a]", "^");
    YES("[a\\-z]", "-");
    NO("[a\\-z]", "m");
    YES("[\\\\]", "\\");
    /* '*', '?' and '[' inside a set are members. */
    YES("[*?[]", "*");
    YES("[*?[]", "?");
    YES("[*?[]", "[");
    NO("[*?[]", "a");
    /* Bytes above 0x7f compare as unsigned. */
    YES("[\x80-\xff]", "\xc3");
    NO("[\x80-\xff]", "a");
    YES("[a-c]*[x-z]", "b---y");
}

static void test_escape(void)
{
    YES("\\*", "*");
    NO("\\*", "a");
    YES("\\?", "?");
    NO("\\?", "a");
    YES("\\[a]", "[a]");
    NO("\\[a]", "a");
    YES("\\\\", "\\");
    YES("\\a", "a");
    YES("a\\*b*", "a*bcd");
    NO("a\\*b*", "axbcd");
}

static void test_malformed(void)
{
    /* An unterminated '[' or a trailing '\' matches nothing, not even the literal text. */
    NO("[abc", "a");
    NO("[abc", "[abc");
    NO("[", "[");
    NO("[^", "^");
    NO("[]", "]");
    NO("[]", "");
    NO("[\\]", "]");
    NO("*[", "x[");
    NO("a\\", "a");
    NO("a\\", "a\\");
    NO("\\", "\\");
    NO("*\\", "");
}

static void test_pathological(void)
{
    /* Exponential in a naive recursive matcher; quadratic at worst here. */
    enum { N = 20000 };
    static char s[N + 1];
    memset(s, 'a', N);
    s[N] = '\0';
    NO("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s);
    YES("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a", s);
    NO("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*?b", s);
    NO("*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*c", s);
    NO("**************************************************b", s);
    s[N - 1] = 'b';
    YES("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s);
    YES("*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*[ab]*b", s);
}

static void test_views(void)
{
    /* Neither side needs a NUL, and nothing past the lengths is read. */
    ASSERT_TRUE(wsg_glob_match("ab*", 2, "abc", 2));
    ASSERT_FALSE(wsg_glob_match("ab*", 2, "abc", 3));
    ASSERT_TRUE(wsg_glob_match("a\0b", 3, "a\0b", 3));
    ASSERT_FALSE(wsg_glob_match("a\0b", 3, "a\0c", 3));
    ASSERT_TRUE(wsg_glob_match("?", 1, "\0", 1));
    ASSERT_FALSE(wsg_glob_match("[a]", 2, "a", 1)); /* "[a" */
    ASSERT_TRUE(wsg_glob_match(NULL, 0, NULL, 0));
    ASSERT_TRUE(wsg_glob_match("*", 1, NULL, 0));
}

static void check_list(const char *list, const char *s, bool want, int line)
{
    bool got = wsg_glob_list_match(list, strlen(list), s, strlen(s));
    if (got != want)
        TEST_FAIL_AT("line %d: list_match(\"%s\", \"%s\") = %d, want %d", line, list, s, got, want);
}

static void test_list_match(void)
{
    check_list("", "", false, __LINE__);
    check_list("", "a", false, __LINE__);
    check_list(",, ,\t,", "", false, __LINE__); /* empty entries are not patterns matching "" */
    check_list("a", "a", true, __LINE__);
    check_list("a,b", "b", true, __LINE__);
    check_list("a,b", "c", false, __LINE__);
    check_list(" a , \tb\t ", "b", true, __LINE__);
    check_list(" a , \tb\t ", " b", false, __LINE__);
    check_list("news:*, chat:?", "chat:1", true, __LINE__);
    check_list("news:*, chat:?", "chat:12", false, __LINE__);
    check_list("news:*, chat:?", "news:", true, __LINE__);
    check_list(",,x*,,", "xy", true, __LINE__);
    check_list("a b", "a b", true, __LINE__); /* inner spaces belong to the pattern */
    /* A ',' always splits: "[,]" is the two malformed patterns "[" and "]". */
    check_list("[,]", ",", false, __LINE__);
    check_list("[,]", "]", true, __LINE__);
    check_list("a\\,b", "a,b", false, __LINE__);
    /* A malformed entry matches nothing but the others still count. */
    check_list("[oops, ok*", "okay", true, __LINE__);
    check_list("[oops, ok*", "[oops", false, __LINE__);
    ASSERT_FALSE(wsg_glob_list_match(NULL, 0, "a", 1));
    ASSERT_TRUE(wsg_glob_list_match("a,b", 1, "a", 1));
    ASSERT_FALSE(wsg_glob_list_match("a,b", 1, "b", 1));
}

static void check_check(const char *list, int want_rc, size_t want_at, int line)
{
    size_t at = 999;
    int rc = wsg_glob_list_check(list, strlen(list), &at);
    if (rc != want_rc || (rc != 0 && at != want_at) || (rc == 0 && at != 999))
        TEST_FAIL_AT("line %d: list_check(\"%s\") = %d at %zu, want %d at %zu", line, list, rc, at, want_rc,
                     want_at);
}
#define CHECK_OK(list) check_check(list, 0, 0, __LINE__)
#define CHECK_BAD(list, at) check_check(list, -EINVAL, at, __LINE__)

static void test_list_check(void)
{
    CHECK_OK("");
    CHECK_OK(",,, ,");
    CHECK_OK("a,b*,[xy],[^x-z],\\*,[]],[\\]]");
    CHECK_OK("  spaced  ,\tok\t");
    CHECK_BAD("[", 0);
    CHECK_BAD("ok,[abc", 3);
    CHECK_BAD("ok,  [abc", 5); /* the pattern's start, after its spaces */
    CHECK_BAD("ok,\t\t[abc ,x", 5);
    CHECK_BAD("a\\", 0);
    CHECK_BAD("a, b, c\\", 6);
    CHECK_BAD("[]", 0);
    CHECK_BAD("[^]", 0);
    CHECK_BAD("[\\]", 0);
    CHECK_BAD("x,[a\\", 2);
    CHECK_BAD("[x,y]", 0);          /* the ',' splits the set */
    CHECK_BAD("ok,[bad,[worse", 3); /* the first bad one */
    /* A trailing '\' before trimmed blanks is still trailing in the pattern. */
    CHECK_BAD("a\\ ", 0);
    ASSERT_INT_EQ(wsg_glob_list_check("[", 1, NULL), -EINVAL);
    ASSERT_INT_EQ(wsg_glob_list_check(NULL, 0, NULL), 0);
    ASSERT_INT_EQ(wsg_glob_list_check("ab[", 2, NULL), 0);
}

TEST_MAIN("glob", TEST_CASE(test_literal), TEST_CASE(test_star), TEST_CASE(test_question),
          TEST_CASE(test_sets), TEST_CASE(test_escape), TEST_CASE(test_malformed),
          TEST_CASE(test_pathological), TEST_CASE(test_views), TEST_CASE(test_list_match),
          TEST_CASE(test_list_check))
