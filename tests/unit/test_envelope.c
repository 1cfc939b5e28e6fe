/* Tests for protocol/envelope.c: wsgate.v1 data envelopes and gap notices, read back with cJSON and a strict
 * reader. */
#include <errno.h>

#include <cjson/cJSON.h>

#include "base64.h"
#include "envelope.h"
#include "utf8.h"

#include "envelope_parse.h"
#include "test.h"

static wsg_str_t S(const char *s)
{
    return wsg_str_c(s);
}

static void check_data(const char *label, const wsg_stream_id_t *id, const char *payload, size_t len,
                       const char *want, int line)
{
    char out[512];
    memset(out, '#', sizeof out);
    ssize_t n = wsg_envelope_data(out, sizeof out, S(label), id, payload, len);
    if (n != (ssize_t)strlen(want) || memcmp(out, want, strlen(want)) != 0)
        TEST_FAIL_AT("line %d: got %zd '%.*s', want '%s'", line, n, n > 0 ? (int)n : 0, out, want);
}
#define DATA(label, id, payload, want) check_data(label, id, payload, sizeof(payload) - 1, want, __LINE__)

static void test_data_examples(void)
{
    wsg_stream_id_t id = {1526919030474ull, 55};
    DATA("broadcast:news", &id, "hello",
         "{\"ch\":\"broadcast:news\",\"id\":\"1526919030474-55\",\"data\":\"hello\"}");
    DATA("broadcast:news", NULL, "hello", "{\"ch\":\"broadcast:news\",\"id\":null,\"data\":\"hello\"}");
    DATA("", NULL, "", "{\"ch\":\"\",\"id\":null,\"data\":\"\"}");
    DATA("x", &id, "{\"a\":1}", "{\"ch\":\"x\",\"id\":\"1526919030474-55\",\"data\":\"{\\\"a\\\":1}\"}");
    DATA("x", NULL, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 a/b",
         "{\"ch\":\"x\",\"id\":null,\"data\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 a/b\"}");
    wsg_stream_id_t max = {UINT64_MAX, UINT64_MAX};
    DATA("x", &max, "", "{\"ch\":\"x\",\"id\":\"18446744073709551615-18446744073709551615\",\"data\":\"\"}");
}

static void test_data_escapes(void)
{
    DATA("x", NULL, "\"\\\b\f\n\r\t", "{\"ch\":\"x\",\"id\":null,\"data\":\"\\\"\\\\\\b\\f\\n\\r\\t\"}");
    DATA("x", NULL, "\x01\x1f\x7f", "{\"ch\":\"x\",\"id\":null,\"data\":\"\\u0001\\u001f\\u007f\"}");
    DATA("x", NULL, "a\x00z", "{\"ch\":\"x\",\"id\":null,\"data\":\"a\\u0000z\"}");
    DATA("x", NULL, "\xe2\x80\xa8|\xe2\x80\xa9|\xe2\x80\xaa",
         "{\"ch\":\"x\",\"id\":null,\"data\":\"\\u2028|\\u2029|\xe2\x80\xaa\"}");
    /* Every byte below 0x20 and 0x7f, one at a time. */
    for (int c = 0; c < 0x80; c++) {
        if (c >= 0x20 && c < 0x7f)
            continue;
        char payload[1] = {(char)c}, out[64], want[64];
        const char *named = c == '\b'   ? "\\b"
                            : c == '\f' ? "\\f"
                            : c == '\n' ? "\\n"
                            : c == '\r' ? "\\r"
                            : c == '\t' ? "\\t"
                                        : NULL;
        char esc[8];
        snprintf(esc, sizeof esc, "\\u%04x", c);
        snprintf(want, sizeof want, "{\"ch\":\"\",\"id\":null,\"data\":\"%s\"}", named ? named : esc);
        ssize_t n = wsg_envelope_data(out, sizeof out, S(""), NULL, payload, 1);
        ASSERT_INT_EQ(n, strlen(want));
        if (n > 0)
            ASSERT_MEM_EQ(out, want, (size_t)n);
    }
}

static void test_data_b64(void)
{
    DATA("x", NULL, "\xff", "{\"ch\":\"x\",\"id\":null,\"data_b64\":\"/w==\"}");
    DATA("x", NULL, "ab\xc3", "{\"ch\":\"x\",\"id\":null,\"data_b64\":\"YWLD\"}");
    DATA("x", NULL, "\xed\xa0\x80", "{\"ch\":\"x\",\"id\":null,\"data_b64\":\"7aCA\"}"); /* a surrogate */
    DATA("x", NULL, "\xc0\xaf", "{\"ch\":\"x\",\"id\":null,\"data_b64\":\"wK8=\"}");     /* an overlong '/' */
    DATA("x", NULL, "\x00\xfe", "{\"ch\":\"x\",\"id\":null,\"data_b64\":\"AP4=\"}");
}

static void test_label_escapes(void)
{
    DATA("a\"b\\c\n", NULL, "", "{\"ch\":\"a\\\"b\\\\c\\n\",\"id\":null,\"data\":\"\"}");
    /* Invalid UTF-8 in a label: one \ufffd per byte that does not start a character. */
    DATA("a\xff"
         "b",
         NULL, "", "{\"ch\":\"a\\ufffdb\",\"id\":null,\"data\":\"\"}");
    DATA("\xe2\x82", NULL, "", "{\"ch\":\"\\ufffd\\ufffd\",\"id\":null,\"data\":\"\"}");
    DATA("\xc3\xa9\xc3", NULL, "", "{\"ch\":\"\xc3\xa9\\ufffd\",\"id\":null,\"data\":\"\"}");
    DATA("\xe2\x80\xa8", NULL, "", "{\"ch\":\"\\u2028\",\"id\":null,\"data\":\"\"}");
}

/* Builds the envelope, checks it against cJSON and the strict reader, that every smaller capacity is refused
 * and that the bound holds. */
static void round_trip(const char *label, size_t label_len, const wsg_stream_id_t *id, const void *payload,
                       size_t len)
{
    size_t bound = wsg_envelope_data_bound(label_len, len);
    char *out = malloc(bound), *a = malloc(bound), *b = malloc(bound), *c = malloc(bound);
    wsg_str_t l = {label, label_len};
    ssize_t n = wsg_envelope_data(out, bound, l, id, payload, len);
    ASSERT_TRUE(n > 0 && (size_t)n <= bound);
    if (n <= 0)
        goto Exit;
    for (size_t cap = 0; cap < (size_t)n; cap++)
        ASSERT_INT_EQ(wsg_envelope_data(out, cap, l, id, payload, len), -ENOSPC);
    ASSERT_INT_EQ(wsg_envelope_data(out, (size_t)n, l, id, payload, len), n);

    const char *end = NULL;
    cJSON *json = cJSON_ParseWithLengthOpts(out, (size_t)n, &end, false);
    ASSERT_TRUE(json != NULL && end == out + n);
    ASSERT_TRUE(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(json, "ch")));
    cJSON *jid = cJSON_GetObjectItemCaseSensitive(json, "id");
    ASSERT_TRUE(id ? cJSON_IsString(jid) : cJSON_IsNull(jid));
    cJSON_Delete(json);

    parsed_envelope_t e = {.label = a, .id = b, .data = c};
    ASSERT_TRUE(envelope_parse(out, (size_t)n, &e));
    bool is_utf8 = wsg_utf8_is_valid(payload, len);
    ASSERT_TRUE(e.is_b64 == !is_utf8);
    if (is_utf8) {
        ASSERT_UINT_EQ(e.data_len, len);
        ASSERT_MEM_EQ(e.data, payload, len);
    } else {
        uint8_t *raw = malloc(len + 1);
        ASSERT_INT_EQ(wsg_base64_decode(e.data, e.data_len, raw, len + 1, false), len);
        ASSERT_MEM_EQ(raw, payload, len);
        free(raw);
    }
    if (wsg_utf8_is_valid((const uint8_t *)label, label_len)) {
        ASSERT_UINT_EQ(e.label_len, label_len);
        ASSERT_MEM_EQ(e.label, label, label_len);
    }
    ASSERT_TRUE(e.has_id == (id != NULL));
    if (id != NULL) {
        wsg_stream_id_t back;
        ASSERT_INT_EQ(wsg_stream_id_parse(e.id, e.id_len, &back), 0);
        ASSERT_INT_EQ(wsg_stream_id_cmp(back, *id), 0);
    }
Exit:
    free(out);
    free(a);
    free(b);
    free(c);
}

static void test_round_trip(void)
{
    wsg_stream_id_t id = {42, 7}, max = {UINT64_MAX, UINT64_MAX};
    static const char *const samples[] = {"",
                                          "plain",
                                          "\"quoted\" \\ back",
                                          "caf\xc3\xa9",
                                          "\xf0\x9f\x98\x80\xe2\x80\xa8\xe2\x80\xa9",
                                          "\xff\xfe",
                                          "ok then \x80",
                                          "\xe2\x80",
                                          "line\nbreak\r\n\ttab"};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        for (size_t j = 0; j < sizeof samples / sizeof samples[0]; j++) {
            round_trip(samples[i], strlen(samples[i]), &id, samples[j], strlen(samples[j]));
            round_trip(samples[i], strlen(samples[i]), NULL, samples[j], strlen(samples[j]));
            round_trip(samples[i], strlen(samples[i]), &max, samples[j], strlen(samples[j]));
        }
    }
    /* Every byte value, in a payload and in a label, alone and all together. */
    char all[256];
    for (int c = 0; c < 256; c++) {
        all[c] = (char)c;
        round_trip(all + c, 1, &id, all + c, 1);
    }
    round_trip(all, 128, &id, all, 128); /* ASCII: valid UTF-8 */
    round_trip(all, 256, &id, all, 256);
    /* Worst cases for the bound: all escapes, all invalid, all U+2028. */
    char ctl[300], bad[300], ls[300];
    memset(ctl, 1, sizeof ctl);
    memset(bad, 0xff, sizeof bad);
    for (size_t i = 0; i < sizeof ls; i += 3)
        memcpy(ls + i, "\xe2\x80\xa8", 3);
    round_trip(ctl, sizeof ctl, &max, ctl, sizeof ctl);
    round_trip(bad, sizeof bad, &max, bad, sizeof bad);
    round_trip(ls, sizeof ls, &max, ls, sizeof ls);
    round_trip(bad, 1, NULL, bad, 1);
    round_trip(bad, 2, NULL, bad, 2);
}

static void test_bound(void)
{
    ASSERT_TRUE(wsg_envelope_data_bound(0, 0) >= strlen("{\"ch\":\"\",\"id\":\"18446744073709551615-"
                                                        "18446744073709551615\",\"data_b64\":\"\"}"));
    ASSERT_UINT_EQ(wsg_envelope_data_bound(SIZE_MAX, 0), SIZE_MAX);
    ASSERT_UINT_EQ(wsg_envelope_data_bound(0, SIZE_MAX), SIZE_MAX);
    ASSERT_UINT_EQ(wsg_envelope_data_bound(SIZE_MAX / 2, SIZE_MAX / 2), SIZE_MAX);
    ASSERT_TRUE(wsg_envelope_data_bound(10, 20) < wsg_envelope_data_bound(10, 21));
    /* NULL views of length 0. */
    char out[128];
    ASSERT_INT_EQ(wsg_envelope_data(out, sizeof out, WSG_STR_NULL, NULL, NULL, 0),
                  strlen("{\"ch\":\"\",\"id\":null,\"data\":\"\"}"));
}

static void check_gap(const char *label, wsg_stream_id_t after, const char *reason, const char *want,
                      int line)
{
    char out[256];
    ssize_t n = wsg_envelope_gap(out, sizeof out, S(label), after, reason);
    if (n != (ssize_t)strlen(want) || memcmp(out, want, strlen(want)) != 0) {
        TEST_FAIL_AT("line %d: got %zd '%.*s', want '%s'", line, n, n > 0 ? (int)n : 0, out, want);
        return;
    }
    for (size_t cap = 0; cap < (size_t)n; cap++)
        if (wsg_envelope_gap(out, cap, S(label), after, reason) != -ENOSPC)
            TEST_FAIL_AT("line %d: cap %zu not refused", line, cap);
    cJSON *json = cJSON_ParseWithLength(out, (size_t)n);
    if (json == NULL || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(json, "gap")))
        TEST_FAIL_AT("line %d: not a gap notice to cJSON", line);
    cJSON_Delete(json);
}

static void test_gap(void)
{
    check_gap(
        "broadcast:news", (wsg_stream_id_t){1526919030474ull, 55}, "trimmed",
        "{\"ch\":\"broadcast:news\",\"gap\":true,\"after\":\"1526919030474-55\",\"reason\":\"trimmed\"}",
        __LINE__);
    check_gap("session:chat", (wsg_stream_id_t){0, 0}, "replay_max",
              "{\"ch\":\"session:chat\",\"gap\":true,\"after\":\"0-0\",\"reason\":\"replay_max\"}", __LINE__);
    check_gap("a\"\xff", (wsg_stream_id_t){1, 2}, "x\"",
              "{\"ch\":\"a\\\"\\ufffd\",\"gap\":true,\"after\":\"1-2\",\"reason\":\"x\\\"\"}", __LINE__);
}

TEST_MAIN("envelope", TEST_CASE(test_data_examples), TEST_CASE(test_data_escapes), TEST_CASE(test_data_b64),
          TEST_CASE(test_label_escapes), TEST_CASE(test_round_trip), TEST_CASE(test_bound),
          TEST_CASE(test_gap))
