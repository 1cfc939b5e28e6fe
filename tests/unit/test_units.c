/* Tests for protocol/units.c: durations, sizes, bounded numbers and booleans. */
#include <errno.h>

#include "units.h"

#include "test.h"

static void check_duration(const char *text, int want_rc, uint64_t want_ms, int line)
{
    uint64_t ms = 0xdeadbeef;
    int rc = wsg_parse_duration_ms(text, &ms);
    if (rc != want_rc)
        TEST_FAIL_AT("line %d: duration \"%s\": rc %d, want %d", line, text, rc, want_rc);
    else if (rc == 0 && ms != want_ms)
        TEST_FAIL_AT("line %d: duration \"%s\": %llu ms, want %llu", line, text, (unsigned long long)ms,
                     (unsigned long long)want_ms);
    else if (rc != 0 && ms != 0xdeadbeef)
        TEST_FAIL_AT("line %d: duration \"%s\" wrote its output on error", line, text);
}
#define DUR(text, rc, ms) check_duration(text, rc, ms, __LINE__)

static void check_size(const char *text, int want_rc, uint64_t want, int line)
{
    uint64_t v = 0xdeadbeef;
    int rc = wsg_parse_size(text, &v);
    if (rc != want_rc)
        TEST_FAIL_AT("line %d: size \"%s\": rc %d, want %d", line, text, rc, want_rc);
    else if (rc == 0 && v != want)
        TEST_FAIL_AT("line %d: size \"%s\": %llu, want %llu", line, text, (unsigned long long)v,
                     (unsigned long long)want);
    else if (rc != 0 && v != 0xdeadbeef)
        TEST_FAIL_AT("line %d: size \"%s\" wrote its output on error", line, text);
}
#define SIZE(text, rc, v) check_size(text, rc, v, __LINE__)

static void test_duration(void)
{
    DUR("250ms", 0, 250);
    DUR("4s", 0, 4000);
    DUR("1m", 0, 60000);
    DUR("2h", 0, 7200000);
    DUR("4", 0, 4000);
    DUR("0", 0, 0);
    DUR("0ms", 0, 0);
    DUR("0s", 0, 0);
    DUR("007s", 0, 7000);
    DUR("1ms", 0, 1);
    DUR("15000ms", 0, 15000);
    DUR("18446744073709551615ms", 0, UINT64_MAX);
    DUR("18446744073709551s", 0, 18446744073709551000ull);
}

static void test_duration_errors(void)
{
    DUR("", -EINVAL, 0);
    DUR("-1", -EINVAL, 0);
    DUR("+1", -EINVAL, 0);
    DUR("1.5s", -EINVAL, 0);
    DUR("4 s", -EINVAL, 0);
    DUR(" 4s", -EINVAL, 0);
    DUR("4s ", -EINVAL, 0);
    DUR("10x", -EINVAL, 0);
    DUR("s", -EINVAL, 0);
    DUR("ms", -EINVAL, 0);
    DUR("4sec", -EINVAL, 0);
    DUR("4S", -EINVAL, 0);
    DUR("4MS", -EINVAL, 0);
    DUR("4d", -EINVAL, 0);
    DUR("4us", -EINVAL, 0);
    DUR("4ms5", -EINVAL, 0);
    DUR("0x10", -EINVAL, 0);
    DUR("1e3", -EINVAL, 0);
    /* Overflow, of the number itself or once scaled to milliseconds. */
    DUR("18446744073709551616ms", -ERANGE, 0);
    DUR("99999999999999999999999999", -ERANGE, 0);
    DUR("18446744073709552s", -ERANGE, 0);
    DUR("18446744073709552", -ERANGE, 0);
    DUR("5124095576031h", -ERANGE, 0);
    DUR("5124095576030h", 0, 5124095576030ull * 3600000);
    /* A bad unit is a syntax error even after a huge number. */
    DUR("99999999999999999999999999x", -EINVAL, 0);
    uint64_t ms;
    ASSERT_INT_EQ(wsg_parse_duration_ms(NULL, &ms), -EINVAL);
}

static void test_size(void)
{
    SIZE("2048", 0, 2048);
    SIZE("0", 0, 0);
    SIZE("16KiB", 0, 16384);
    SIZE("1MiB", 0, 1048576);
    SIZE("1GiB", 0, 1073741824);
    SIZE("3B", 0, 3);
    SIZE("3b", 0, 3);
    SIZE("1K", 0, 1024);
    SIZE("1k", 0, 1024);
    SIZE("1KB", 0, 1024);
    SIZE("1kb", 0, 1024);
    SIZE("1kib", 0, 1024);
    SIZE("1KIB", 0, 1024);
    SIZE("2M", 0, 2097152);
    SIZE("2mb", 0, 2097152);
    SIZE("32mib", 0, 33554432);
    SIZE("4G", 0, 4294967296ull);
    SIZE("4gb", 0, 4294967296ull);
    SIZE("17179869183GiB", 0, 17179869183ull << 30);
    SIZE("18446744073709551615", 0, UINT64_MAX);
}

static void test_size_errors(void)
{
    SIZE("", -EINVAL, 0);
    SIZE("-1", -EINVAL, 0);
    SIZE("1.5K", -EINVAL, 0);
    SIZE("16 KiB", -EINVAL, 0);
    SIZE("KiB", -EINVAL, 0);
    SIZE("16KiBs", -EINVAL, 0);
    SIZE("1T", -EINVAL, 0);
    SIZE("1TiB", -EINVAL, 0);
    SIZE("1iB", -EINVAL, 0);
    SIZE("1Ki", -EINVAL, 0);
    SIZE("1BB", -EINVAL, 0);
    SIZE("1 ", -EINVAL, 0);
    SIZE("18446744073709551616", -ERANGE, 0);
    SIZE("17179869184GiB", -ERANGE, 0);
    SIZE("18014398509481984K", -ERANGE, 0);
    uint64_t v;
    ASSERT_INT_EQ(wsg_parse_size(NULL, &v), -EINVAL);
}

static void test_uint(void)
{
    uint64_t v = 0;
    ASSERT_INT_EQ(wsg_parse_uint("6379", 1, 65535, &v), 0);
    ASSERT_UINT_EQ(v, 6379);
    ASSERT_INT_EQ(wsg_parse_uint("1", 1, 65535, &v), 0);
    ASSERT_UINT_EQ(v, 1);
    ASSERT_INT_EQ(wsg_parse_uint("65535", 1, 65535, &v), 0);
    ASSERT_UINT_EQ(v, 65535);
    ASSERT_INT_EQ(wsg_parse_uint("0", 0, 0, &v), 0);
    ASSERT_UINT_EQ(v, 0);
    ASSERT_INT_EQ(wsg_parse_uint("18446744073709551615", 0, UINT64_MAX, &v), 0);
    ASSERT_UINT_EQ(v, UINT64_MAX);

    v = 42;
    ASSERT_INT_EQ(wsg_parse_uint("0", 1, 65535, &v), -ERANGE);
    ASSERT_INT_EQ(wsg_parse_uint("65536", 1, 65535, &v), -ERANGE);
    ASSERT_INT_EQ(wsg_parse_uint("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
    ASSERT_UINT_EQ(v, 42);
    ASSERT_INT_EQ(wsg_parse_uint("", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint("-1", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint("+1", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint(" 1", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint("1 ", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint("1s", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint("0x1", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint("99999999999999999999x", 0, 10, &v), -EINVAL);
    ASSERT_INT_EQ(wsg_parse_uint(NULL, 0, 10, &v), -EINVAL);
    ASSERT_UINT_EQ(v, 42);
}

static void test_bool(void)
{
    static const char *const yes[] = {"1", "true", "TRUE", "True", "yes", "YES", "on", "On"};
    static const char *const no[] = {"0", "false", "FALSE", "no", "No", "off", "OFF"};
    static const char *const bad[] = {"",     "2",   "y",      "n",     "t",  "f",
                                      "yes ", " no", "enable", "truee", "of", "o"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        ASSERT_INT_EQ(wsg_parse_bool(yes[i], &b), 0);
        ASSERT_TRUE(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool b = true;
        ASSERT_INT_EQ(wsg_parse_bool(no[i], &b), 0);
        ASSERT_FALSE(b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = true;
        if (wsg_parse_bool(bad[i], &b) != -EINVAL)
            TEST_FAIL_AT("bool \"%s\" accepted", bad[i]);
        ASSERT_TRUE(b);
    }
    bool b;
    ASSERT_INT_EQ(wsg_parse_bool(NULL, &b), -EINVAL);
}

TEST_MAIN("units", TEST_CASE(test_duration), TEST_CASE(test_duration_errors), TEST_CASE(test_size),
          TEST_CASE(test_size_errors), TEST_CASE(test_uint), TEST_CASE(test_bool))
