/* Tests for protocol/stream_id.c: Redis stream id parsing, formatting, ordering and the incremental reader.
 */
#include <errno.h>

#include "stream_id.h"

#include "test.h"

static void check_parse(const char *s, int want_rc, uint64_t ms, uint64_t seq, int line)
{
    wsg_stream_id_t id = {12345, 67890};
    int rc = wsg_stream_id_parse(s, strlen(s), &id);
    if (rc != want_rc)
        TEST_FAIL_AT("line %d: parse(\"%s\") = %d, want %d", line, s, rc, want_rc);
    else if (rc == 0 && (id.ms != ms || id.seq != seq))
        TEST_FAIL_AT("line %d: parse(\"%s\") = %" PRIu64 "-%" PRIu64 ", want %" PRIu64 "-%" PRIu64, line, s,
                     id.ms, id.seq, ms, seq);
    else if (rc != 0 && (id.ms != 12345 || id.seq != 67890))
        TEST_FAIL_AT("line %d: parse(\"%s\") failed but wrote its output", line, s);
    /* The incremental reader agrees byte by byte. */
    wsg_stream_id_reader_t r = wsg_stream_id_reader_init();
    for (size_t i = 0; s[i] != '\0'; i++)
        wsg_stream_id_reader_feed(&r, s[i]);
    wsg_stream_id_t id2 = {0, 0};
    if (wsg_stream_id_reader_finish(&r, &id2) != want_rc ||
        (want_rc == 0 && (id2.ms != ms || id2.seq != seq)))
        TEST_FAIL_AT("line %d: reader disagrees on \"%s\"", line, s);
}
#define OK(s, ms, seq) check_parse(s, 0, ms, seq, __LINE__)
#define BAD(s) check_parse(s, -EINVAL, 0, 0, __LINE__)

static void test_parse_valid(void)
{
    OK("0-0", 0, 0);
    OK("0", 0, 0);
    OK("1-1", 1, 1);
    OK("1526919030474-55", 1526919030474ull, 55);
    OK("1526919030474", 1526919030474ull, 0);
    OK("18446744073709551615-18446744073709551615", UINT64_MAX, UINT64_MAX);
    OK("18446744073709551615", UINT64_MAX, 0);
    /* Leading zeros are accepted, as Redis accepts them, whatever their number. */
    OK("01-02", 1, 2);
    OK("00000000000000000000000000000000000000000018446744073709551615-0007", UINT64_MAX, 7);
    OK("000", 0, 0);
}

static void test_parse_invalid(void)
{
    BAD("");
    BAD("-");
    BAD("1-");
    BAD("-1");
    BAD("--1");
    BAD("1--1");
    BAD("1-2-3");
    BAD("+1-2");
    BAD("1-+2");
    BAD(" 1-2");
    BAD("1-2 ");
    BAD("1 -2");
    BAD("1-*");
    BAD("*");
    BAD("$");
    BAD(">");
    BAD("0x10-1");
    BAD("1.5-1");
    BAD("a-b");
    BAD("1-2\n");
    /* One past UINT64_MAX in either part, and far past it. */
    BAD("18446744073709551616-0");
    BAD("0-18446744073709551616");
    BAD("18446744073709551616");
    BAD("99999999999999999999-0");
    BAD("184467440737095516150-0");
    BAD("1-100000000000000000000");
}

static void test_parse_view(void)
{
    /* The whole `len` bytes are the id: no NUL needed, nothing past `len` read, an embedded NUL refused. */
    wsg_stream_id_t id = {0, 0};
    ASSERT_INT_EQ(wsg_stream_id_parse("12-34xyz", 5, &id), 0);
    ASSERT_UINT_EQ(id.ms, 12);
    ASSERT_UINT_EQ(id.seq, 34);
    ASSERT_INT_EQ(wsg_stream_id_parse("12-34xyz", 2, &id), 0);
    ASSERT_UINT_EQ(id.ms, 12);
    ASSERT_UINT_EQ(id.seq, 0);
    ASSERT_INT_EQ(wsg_stream_id_parse("12-34xyz", 3, &id), -EINVAL);
    ASSERT_INT_EQ(wsg_stream_id_parse("1\0-2", 4, &id), -EINVAL);
    ASSERT_INT_EQ(wsg_stream_id_parse(NULL, 0, &id), -EINVAL);
    /* Every split of the input into prefix + rest: the prefix alone parses as its own text says. */
    const char *s = "1526919030474-55";
    for (size_t k = 0; k <= strlen(s); k++) {
        int rc = wsg_stream_id_parse(s, k, &id);
        bool want_ok = k > 0 && k != 14; /* "" and "1526919030474-" */
        ASSERT_INT_EQ(rc, want_ok ? 0 : -EINVAL);
    }
}

static void check_format(uint64_t ms, uint64_t seq, const char *want, int line)
{
    char out[WSG_STREAM_ID_MAX_LEN + 1];
    memset(out, '#', sizeof out);
    size_t n = wsg_stream_id_format((wsg_stream_id_t){ms, seq}, out);
    if (n != strlen(want) || strcmp(out, want) != 0)
        TEST_FAIL_AT("line %d: format = %zu \"%.*s\", want \"%s\"", line, n, (int)sizeof out, out, want);
}
#define FORMAT(ms, seq, want) check_format(ms, seq, want, __LINE__)

static void test_format(void)
{
    FORMAT(0, 0, "0-0");
    FORMAT(1, 0, "1-0");
    FORMAT(10, 9, "10-9");
    FORMAT(1526919030474ull, 55, "1526919030474-55");
    FORMAT(UINT64_MAX, 0, "18446744073709551615-0");
    FORMAT(UINT64_MAX, UINT64_MAX, "18446744073709551615-18446744073709551615");
    ASSERT_UINT_EQ(strlen("18446744073709551615-18446744073709551615"), WSG_STREAM_ID_MAX_LEN);
}

static void test_round_trip(void)
{
    static const uint64_t values[] = {
        0, 1, 9, 10, 99, 100, 4294967295, 4294967296, UINT64_MAX, UINT64_MAX - 1, 1ull << 63};
    size_t n = sizeof values / sizeof values[0];
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            wsg_stream_id_t id = {values[i], values[j]}, back = {0, 0};
            char out[WSG_STREAM_ID_MAX_LEN + 1];
            size_t len = wsg_stream_id_format(id, out);
            ASSERT_TRUE(len <= WSG_STREAM_ID_MAX_LEN);
            ASSERT_INT_EQ(wsg_stream_id_parse(out, len, &back), 0);
            ASSERT_INT_EQ(wsg_stream_id_cmp(id, back), 0);
        }
    }
}

static void test_cmp(void)
{
    wsg_stream_id_t a = {1, 5}, b = {1, 6}, c = {2, 0}, max = {UINT64_MAX, UINT64_MAX}, zero = {0, 0};
    ASSERT_INT_EQ(wsg_stream_id_cmp(a, a), 0);
    ASSERT_INT_EQ(wsg_stream_id_cmp(a, b), -1);
    ASSERT_INT_EQ(wsg_stream_id_cmp(b, a), 1);
    ASSERT_INT_EQ(wsg_stream_id_cmp(b, c), -1); /* ms first, whatever the seq */
    ASSERT_INT_EQ(wsg_stream_id_cmp(c, b), 1);
    ASSERT_INT_EQ(wsg_stream_id_cmp(zero, max), -1);
    ASSERT_INT_EQ(wsg_stream_id_cmp(max, zero), 1);
    ASSERT_INT_EQ(wsg_stream_id_cmp(max, max), 0);
    /* Differences that overflow a subtraction. */
    ASSERT_INT_EQ(wsg_stream_id_cmp((wsg_stream_id_t){0, UINT64_MAX}, (wsg_stream_id_t){0, 0}), 1);
    ASSERT_INT_EQ(wsg_stream_id_cmp((wsg_stream_id_t){1ull << 63, 0}, (wsg_stream_id_t){0, 0}), 1);
}

static void test_reader(void)
{
    wsg_stream_id_reader_t r = wsg_stream_id_reader_init();
    wsg_stream_id_t id = {7, 7};
    ASSERT_INT_EQ(wsg_stream_id_reader_finish(&r, &id), -EINVAL); /* nothing fed */
    ASSERT_UINT_EQ(id.ms, 7);
    ASSERT_TRUE(wsg_stream_id_reader_feed(&r, '4'));
    ASSERT_TRUE(wsg_stream_id_reader_feed(&r, '-'));
    ASSERT_INT_EQ(wsg_stream_id_reader_finish(&r, &id), -EINVAL); /* "4-" */
    ASSERT_TRUE(wsg_stream_id_reader_feed(&r, '2'));
    ASSERT_INT_EQ(wsg_stream_id_reader_finish(&r, &id), 0);
    ASSERT_UINT_EQ(id.ms, 4);
    ASSERT_UINT_EQ(id.seq, 2);
    /* A bad byte sticks: what follows cannot repair it. */
    ASSERT_FALSE(wsg_stream_id_reader_feed(&r, 'x'));
    ASSERT_FALSE(wsg_stream_id_reader_feed(&r, '1'));
    ASSERT_INT_EQ(wsg_stream_id_reader_finish(&r, &id), -EINVAL);
}

TEST_MAIN("stream_id", TEST_CASE(test_parse_valid), TEST_CASE(test_parse_invalid), TEST_CASE(test_parse_view),
          TEST_CASE(test_format), TEST_CASE(test_round_trip), TEST_CASE(test_cmp), TEST_CASE(test_reader))
