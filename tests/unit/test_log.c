/* Unit tests for gateway/log.c's pure parts: key=value text to JSON, quoting, level names. */
#include "log.h"

#include <errno.h>
#include <stdbool.h>

#include "test.h"

/* Converts NUL-terminated `kv` with a roomy buffer and compares with `want`. */
#define ASSERT_JSON(kv, want)                                                                                \
    do {                                                                                                     \
        char out_[1024];                                                                                     \
        size_t n_ = wsg_log_kv_to_json((kv), strlen(kv), out_, sizeof out_);                                 \
        ASSERT_STR_EQ(out_, (want));                                                                         \
        ASSERT_UINT_EQ(n_, strlen(want));                                                                    \
    } while (0)

/* A small structural JSON checker: true when `s` is exactly one object whose members are strings, integers
 * or `true`, with valid escapes, no raw control characters and valid UTF-8. Enough for this converter's
 * output; Python's json module checks the real lines in the manual test. */
static bool skip_string(const char **p)
{
    const unsigned char *s = (const unsigned char *)*p;
    if (*s++ != '"')
        return false;
    for (;;) {
        unsigned char c = *s;
        if (c == '\0' || c < 0x20)
            return false;
        if (c == '"') {
            *p = (const char *)s + 1;
            return true;
        }
        if (c == '\\') {
            c = s[1];
            if (c == 'u') {
                for (int i = 2; i < 6; i++) {
                    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
                }
                s += 6;
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                       c == 't') {
                s += 2;
            } else {
                return false;
            }
            continue;
        }
        size_t n = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        if (n == 0)
            return false;
        for (size_t i = 1; i < n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return false;
        }
        s += n;
    }
}

static bool is_valid_object(const char *s)
{
    if (*s++ != '{')
        return false;
    if (*s == '}')
        return s[1] == '\0';
    for (;;) {
        if (!skip_string(&s) || *s++ != ':')
            return false;
        if (*s == '"') {
            if (!skip_string(&s))
                return false;
        } else if (strncmp(s, "true", 4) == 0) {
            s += 4;
        } else {
            if (*s == '-')
                s++;
            if (!(*s >= '0' && *s <= '9'))
                return false;
            if (*s == '0' && s[1] >= '0' && s[1] <= '9')
                return false;
            while (*s >= '0' && *s <= '9')
                s++;
        }
        if (*s == '}')
            return s[1] == '\0';
        if (*s++ != ',')
            return false;
    }
}

static void test_numbers_and_strings(void)
{
    ASSERT_JSON("ts=2026-11-23T15:32:11.617Z level=info event=conn_open conn=3 peer=127.0.0.1:5555",
                "{\"ts\":\"2026-11-23T15:32:11.617Z\",\"level\":\"info\",\"event\":\"conn_open\",\"conn\":3,"
                "\"peer\":\"127.0.0.1:5555\"}");
    ASSERT_JSON("a=0 b=-12 c=007 d=1.5 e=12ab f=- g=-0 h=123456789012345678 i=1234567890123456789",
                "{\"a\":0,\"b\":-12,\"c\":\"007\",\"d\":\"1.5\",\"e\":\"12ab\",\"f\":\"-\",\"g\":-0,"
                "\"h\":123456789012345678,\"i\":\"1234567890123456789\"}");
    /* Quoted values stay strings even when they look like numbers. */
    ASSERT_JSON("n=\"42\"", "{\"n\":\"42\"}");
}

static void test_quoted_values(void)
{
    ASSERT_JSON("facility=\"foo bar\" x=1", "{\"facility\":\"foo bar\",\"x\":1}");
    ASSERT_JSON("q=\"say \\\"hi\\\" \\\\ ok\"", "{\"q\":\"say \\\"hi\\\" \\\\ ok\"}");
    ASSERT_JSON("c=\"a\\x0ab\\x7f\\x00\"", "{\"c\":\"a\\u000ab\\u007f\\u0000\"}");
    /* Unknown and cut escapes are kept as written. */
    ASSERT_JSON("u=\"a\\qb\\x4\"", "{\"u\":\"a\\\\qb\\\\x4\"}");
    /* An unterminated quote (a line cut by the log buffer) runs to the end. */
    ASSERT_JSON("a=1 r=\"cut here", "{\"a\":1,\"r\":\"cut here\"}");
    ASSERT_JSON("r=\"cut\\", "{\"r\":\"cut\\\\\"}");
}

static void test_round_trip_of_wsg_log_quote(void)
{
    const char raw[] = "he said \"hi\"\\\n\t\x01\x7f end";
    char quoted[128], kv[160], out[512];
    wsg_log_quote(quoted, sizeof quoted, raw, sizeof raw - 1);
    snprintf(kv, sizeof kv, "v=%s", quoted);
    wsg_log_kv_to_json(kv, strlen(kv), out, sizeof out);
    ASSERT_STR_EQ(out, "{\"v\":\"he said \\\"hi\\\"\\\\\\u000a\\u0009\\u0001\\u007f end\"}");
}

static void test_bare_values_are_escaped(void)
{
    ASSERT_JSON("k=a\"b\\c", "{\"k\":\"a\\\"b\\\\c\"}");
    ASSERT_JSON("k=\x01\x1f", "{\"k\":\"\\u0001\\u001f\"}");
    ASSERT_JSON("we\"ird=1", "{\"we\\\"ird\":1}");
}

static void test_utf8(void)
{
    /* Valid sequences pass through, in bare and quoted values. */
    ASSERT_JSON("f=w\xc3\xb6rld g=\"\xe2\x82\xac \xf0\x9f\x98\x80\"",
                "{\"f\":\"w\xc3\xb6rld\",\"g\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}");
    /* Invalid bytes are escaped one by one; decoding resumes right after each. */
    ASSERT_JSON("b=\xff\xc3", "{\"b\":\"\\u00ff\\u00c3\"}");
    ASSERT_JSON("b=\xc3\x41", "{\"b\":\"\\u00c3A\"}");
    ASSERT_JSON("b=\xe2\x82", "{\"b\":\"\\u00e2\\u0082\"}");
    ASSERT_JSON("b=\xc0\xaf", "{\"b\":\"\\u00c0\\u00af\"}");                       /* overlong */
    ASSERT_JSON("b=\xed\xa0\x80", "{\"b\":\"\\u00ed\\u00a0\\u0080\"}");            /* surrogate */
    ASSERT_JSON("b=\xf4\x90\x80\x80", "{\"b\":\"\\u00f4\\u0090\\u0080\\u0080\"}"); /* above U+10FFFF */
    /* A sequence may not borrow bytes of the next token. */
    ASSERT_JSON("b=\xc3 c=\xb6", "{\"b\":\"\\u00c3\",\"c\":\"\\u00b6\"}");
}

static void test_msg_tokens(void)
{
    ASSERT_JSON("conn=1 redis down x=2", "{\"conn\":1,\"msg\":\"redis down\",\"x\":2}");
    ASSERT_JSON("hello", "{\"msg\":\"hello\"}");
    ASSERT_JSON("a=1 \"quoted words\" tail", "{\"a\":1,\"msg\":\"quoted words tail\"}");
}

static void test_empty_fields_and_spacing(void)
{
    ASSERT_JSON("", "{}");
    ASSERT_JSON("   ", "{}");
    ASSERT_JSON("a= b=\"\" =c d=1", "{\"a\":\"\",\"b\":\"\",\"\":\"c\",\"d\":1}");
    ASSERT_JSON("  a=1   b=2  ", "{\"a\":1,\"b\":2}");
    ASSERT_JSON("a==b", "{\"a\":\"=b\"}");
    /* Text after a closing quote starts a new token. */
    ASSERT_JSON("a=\"x\"y", "{\"a\":\"x\",\"msg\":\"y\"}");
}

static void test_not_nul_terminated(void)
{
    const char kv[] = "a=1 b=2 c=3";
    char out[128];
    size_t n = wsg_log_kv_to_json(kv, 7, out, sizeof out);
    ASSERT_STR_EQ(out, "{\"a\":1,\"b\":2}");
    ASSERT_UINT_EQ(n, strlen(out));
}

static void test_small_capacity(void)
{
    char out[WSG_LOG_JSON_MIN_CAP];
    memset(out, 'x', sizeof out);
    ASSERT_UINT_EQ(wsg_log_kv_to_json("a=1", 3, out, WSG_LOG_JSON_MIN_CAP - 1), 0);
    ASSERT_STR_EQ(out, "");
    ASSERT_UINT_EQ(wsg_log_kv_to_json("a=1", 3, out, 0), 0);
    ASSERT_INT_EQ(out[0], '\0');
    ASSERT_UINT_EQ(wsg_log_kv_to_json("a=1", 3, out, sizeof out), 7);
    ASSERT_STR_EQ(out, "{\"a\":1}");
    ASSERT_UINT_EQ(wsg_log_kv_to_json("averylongkeyname=1", 18, out, sizeof out), 22); /* fits exactly */
    ASSERT_STR_EQ(out, "{\"averylongkeyname\":1}");
    wsg_log_kv_to_json("averylongkeyname=123", 20, out, sizeof out);
    ASSERT_STR_EQ(out, "{\"truncated\":true}");
}

/* Every capacity from the minimum up: the output fits, is one valid object, and is either the whole
 * conversion or marked truncated; a cut string value is a prefix of the whole one. */
static void check_all_caps(const char *kv)
{
    char full[4096];
    size_t full_len = wsg_log_kv_to_json(kv, strlen(kv), full, sizeof full);
    ASSERT_TRUE(is_valid_object(full));
    for (size_t cap = WSG_LOG_JSON_MIN_CAP; cap <= full_len + 1; cap++) {
        char *out = malloc(cap); /* exact size: ASan catches any write past cap */
        size_t n = wsg_log_kv_to_json(kv, strlen(kv), out, cap);
        ASSERT_TRUE(n < cap);
        ASSERT_UINT_EQ(strlen(out), n);
        if (!is_valid_object(out)) {
            TEST_FAIL_AT("cap %zu: not a valid object: %s", cap, out);
        } else if (cap == full_len + 1) {
            ASSERT_STR_EQ(out, full);
        } else if (strstr(out, "\"truncated\":true}") == NULL) {
            TEST_FAIL_AT("cap %zu: cut without the truncated marker: %s", cap, out);
        } else {
            /* Everything before the cut agrees with the whole conversion. */
            const char *mark = strstr(out, "\"truncated\":true}");
            size_t head = (size_t)(mark - out);
            if (head > 1)
                head -= 2; /* the comma and the closing quote (or last digit) may differ */
            if (memcmp(out, full, head) != 0)
                TEST_FAIL_AT("cap %zu: %s is not a prefix of %s", cap, out, full);
        }
        free(out);
    }
}

static void test_truncation_is_always_valid(void)
{
    check_all_caps("ts=2026-11-23T15:32:11.617Z level=info event=conn_open conn=3 peer=127.0.0.1:5555 "
                   "facility=\"f\\\"o\\\\o \\x01\" channels=broadcast:foo n=1234567 w\xc3\xb6rld \xe2\x82\xac"
                   " bad=\xff\xfe emoji=\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\" end=-5");
    check_all_caps("only some message words here");
    check_all_caps("a=1 b=2 c=3 d=4 e=5 f=6 g=7 h=8 i=9 j=10 k=11 l=12");
    check_all_caps("k=\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12");
}

/* Every byte pair at every position of a short line: valid output, never past the buffer. */
static void test_arbitrary_bytes(void)
{
    char kv[8];
    char out[64];
    for (int a = 0; a < 256; a++) {
        for (int b = 0; b < 256; b++) {
            memcpy(kv, "k=\"?? z", 7);
            kv[3] = (char)a;
            kv[4] = (char)b;
            wsg_log_kv_to_json(kv, 7, out, sizeof out);
            if (!is_valid_object(out)) {
                TEST_FAIL_AT("bytes %02x %02x: %s", a, b, out);
                return;
            }
            wsg_log_kv_to_json(kv + 2, 5, out, WSG_LOG_JSON_MIN_CAP);
            if (!is_valid_object(out)) {
                TEST_FAIL_AT("bytes %02x %02x, min cap: %s", a, b, out);
                return;
            }
        }
    }
}

static void test_quote_and_levels(void)
{
    char out[16];
    ASSERT_STR_EQ(wsg_log_quote(out, sizeof out, "a\"b", 3), "\"a\\\"b\"");
    ASSERT_STR_EQ(wsg_log_quote(out, sizeof out, "0123456789abcdef", 16), "\"0123456789...\"");
    wsg_log_level_t level;
    ASSERT_INT_EQ(wsg_log_parse_level("WARNING", &level), 0);
    ASSERT_INT_EQ(level, WSG_LOG_WARN);
    ASSERT_INT_EQ(wsg_log_parse_level("loud", &level), -EINVAL);
    ASSERT_STR_EQ(wsg_log_level_name(WSG_LOG_ERROR), "error");
    ASSERT_FALSE(wsg_log_json);
}

TEST_MAIN("log", TEST_CASE(test_numbers_and_strings), TEST_CASE(test_quoted_values),
          TEST_CASE(test_round_trip_of_wsg_log_quote), TEST_CASE(test_bare_values_are_escaped),
          TEST_CASE(test_utf8), TEST_CASE(test_msg_tokens), TEST_CASE(test_empty_fields_and_spacing),
          TEST_CASE(test_not_nul_terminated), TEST_CASE(test_small_capacity),
          TEST_CASE(test_truncation_is_always_valid), TEST_CASE(test_arbitrary_bytes),
          TEST_CASE(test_quote_and_levels))
