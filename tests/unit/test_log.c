/* Unit tests for gateway/log.c: lines rendered from typed fields, as logfmt and as JSON, with every value
 * that could come from outside quoted and escaped: no value can add a field or end a line. */
#include "log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>

#include "logfmt_parse.h"
#include "test.h"

/* 2026-11-30T15:32:11.617Z */
#define TS 1796052731617ull

static char line[4096];

static const char *logfmt(const wsg_log_field_t *fields, size_t n)
{
    wsg_log_render(line, sizeof line, false, TS, WSG_LOG_INFO, "ev", fields, n);
    return line;
}

static const char *json(const wsg_log_field_t *fields, size_t n)
{
    wsg_log_render(line, sizeof line, true, TS, WSG_LOG_WARN, "ev", fields, n);
    return line;
}

#define LOGFMT(...)                                                                                          \
    logfmt((const wsg_log_field_t[]){__VA_ARGS__},                                                           \
           sizeof((const wsg_log_field_t[]){__VA_ARGS__}) / sizeof(wsg_log_field_t))
#define JSON(...)                                                                                            \
    json((const wsg_log_field_t[]){__VA_ARGS__},                                                             \
         sizeof((const wsg_log_field_t[]){__VA_ARGS__}) / sizeof(wsg_log_field_t))

static void test_logfmt_line(void)
{
    ASSERT_STR_EQ(LOGFMT(WSG_F_UINT("conn", 3), WSG_F_STR("why", "a b"), WSG_F_INT("err", -104),
                         WSG_F_STR("channels", "broadcast:foo,group:g:bar")),
                  "ts=2026-11-30T15:32:11.617Z lvl=info event=ev conn=3 why=\"a b\" err=-104 "
                  "channels=broadcast:foo,group:g:bar\n");
    ASSERT_STR_EQ(LOGFMT(WSG_F_STR("a", ""), WSG_F_STR("b", NULL), WSG_F_BYTES("c", "xyz", 2)),
                  "ts=2026-11-30T15:32:11.617Z lvl=info event=ev a=\"\" b=- c=xy\n");
}

static void test_logfmt_quotes_and_escapes_what_could_break_a_line(void)
{
    ASSERT_STR_EQ(LOGFMT(WSG_F_STR("v", "say \"hi\" a=b \\ x")),
                  "ts=2026-11-30T15:32:11.617Z lvl=info event=ev v=\"say \\\"hi\\\" a=b \\\\ x\"\n");
    ASSERT_STR_EQ(LOGFMT(WSG_F_STR("v", "l1\nl2\r\t\x01\x7f")),
                  "ts=2026-11-30T15:32:11.617Z lvl=info event=ev v=\"l1\\nl2\\r\\t\\x01\\x7f\"\n");
    ASSERT_STR_EQ(
        LOGFMT(WSG_F_STR("v", "caf\xc3\xa9 \xff\xc3")), /* valid UTF-8 kept, invalid bytes escaped */
        "ts=2026-11-30T15:32:11.617Z lvl=info event=ev v=\"caf\xc3\xa9 \\xff\\xc3\"\n");
    ASSERT_STR_EQ(LOGFMT(WSG_F_BYTES("v", "a\0b", 3)),
                  "ts=2026-11-30T15:32:11.617Z lvl=info event=ev v=\"a\\x00b\"\n");
}

/* A facility chosen to look like fields (the forgery the old text logs allowed) stays one field. */
static void test_forged_values_stay_one_field(void)
{
    const char *forged = "x level=error event=admin_login user=root\nts=0 lvl=error event=forged";
    pair_t pairs[32];
    int n = parse_logfmt(LOGFMT(WSG_F_UINT("conn", 7), WSG_F_STR("facility", forged), WSG_F_STR("user", "-")),
                         pairs, 32);
    ASSERT_INT_EQ(n, 6);
    ASSERT_STR_EQ(pairs[2].key, "event");
    ASSERT_STR_EQ(pairs[2].value, "ev");
    ASSERT_STR_EQ(pairs[4].key, "facility");
    ASSERT_UINT_EQ(pairs[4].value_len, strlen(forged));
    ASSERT_MEM_EQ(pairs[4].value, forged, strlen(forged));
    ASSERT_STR_EQ(pairs[5].key, "user");

    cJSON *j =
        cJSON_Parse(JSON(WSG_F_UINT("conn", 7), WSG_F_STR("facility", forged), WSG_F_STR("user", "-")));
    ASSERT_TRUE(j != NULL);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(j, "event")->valuestring, "ev");
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(j, "facility")->valuestring, forged);
    ASSERT_INT_EQ(cJSON_GetArraySize(j), 6);
    cJSON_Delete(j);
}

static void test_json_line(void)
{
    ASSERT_STR_EQ(JSON(WSG_F_UINT("conn", 3), WSG_F_STR("why", "a \"b\"\n"), WSG_F_INT("err", -5)),
                  "{\"ts\":\"2026-11-30T15:32:11.617Z\",\"level\":\"warn\",\"event\":\"ev\",\"conn\":3,"
                  "\"why\":\"a \\\"b\\\"\\n\",\"err\":-5}\n");
    const char *text = JSON(WSG_F_STR("v", "caf\xc3\xa9\x01\xff"));
    ASSERT_TRUE(strstr(text, "\"v\":\"caf\xc3\xa9\\u0001\\u00ff\"") != NULL);
    cJSON *j = cJSON_Parse(text);
    ASSERT_TRUE(j != NULL);
    cJSON_Delete(j);
}

static void test_each_key_once_and_only_code_keys(void)
{
    const char *text =
        LOGFMT(WSG_F_UINT("conn", 1), WSG_F_UINT("conn", 2), WSG_F_STR("event", "forged"),
               WSG_F_STR("ts", "x"), WSG_F_STR("lvl", "x"), WSG_F_STR("level", "x"),
               WSG_F_STR("Bad Key", "x"), WSG_F_STR("", "x"), WSG_F_STR("k=v", "x"), WSG_F_STR("ok_2", "y"));
    ASSERT_STR_EQ(text, "ts=2026-11-30T15:32:11.617Z lvl=info event=ev conn=1 ok_2=y\n");
}

static void test_long_values_are_cut_and_long_lines_say_so(void)
{
    static char big[3000];
    memset(big, 'a', sizeof big - 1);
    pair_t pairs[32];
    int n = parse_logfmt(LOGFMT(WSG_F_STR("v", big)), pairs, 32);
    ASSERT_INT_EQ(n, 4);
    ASSERT_UINT_EQ(pairs[3].value_len, WSG_LOG_VALUE_MAX + 3);
    ASSERT_MEM_EQ(pairs[3].value + WSG_LOG_VALUE_MAX, "...", 3);
    /* A cut never splits a character. */
    static char accents[600];
    for (int i = 0; i + 1 < (int)sizeof accents; i += 2)
        memcpy(accents + i, "\xc3\xa9", 2);
    n = parse_logfmt(LOGFMT(WSG_F_BYTES("v", accents, sizeof accents)), pairs, 32);
    ASSERT_INT_EQ(n, 4);
    ASSERT_UINT_EQ(pairs[3].value_len, WSG_LOG_VALUE_MAX + 3);
    /* Twenty big fields do not fit in one line: the line ends with truncated=true and stays well formed. */
    wsg_log_field_t many[20];
    const char *keys[20] = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9",
                            "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"};
    for (int k = 0; k < 20; k++)
        many[k] = WSG_F_BYTES(keys[k], big, 400);
    size_t len = wsg_log_render(line, sizeof line, false, TS, WSG_LOG_INFO, "ev", many, 20);
    ASSERT_TRUE(len < sizeof line);
    ASSERT_TRUE(strstr(line, " truncated=true\n") != NULL);
    ASSERT_TRUE(parse_logfmt(line, pairs, 32) > 3);
    len = wsg_log_render(line, sizeof line, true, TS, WSG_LOG_INFO, "ev", many, 20);
    ASSERT_TRUE(len < sizeof line);
    cJSON *j = cJSON_Parse(line);
    ASSERT_TRUE(j != NULL && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
    cJSON_Delete(j);
    /* Too small a buffer: nothing. */
    ASSERT_UINT_EQ(wsg_log_render(line, WSG_LOG_LINE_MIN - 1, false, TS, WSG_LOG_INFO, "ev", many, 1), 0);
    for (int is_json = 0; is_json < 2; is_json++) {
        ASSERT_TRUE(wsg_log_render(line, WSG_LOG_LINE_MIN, is_json, TS, WSG_LOG_ERROR, "ev", many, 1) > 0);
        ASSERT_TRUE(strlen(line) < WSG_LOG_LINE_MIN);
        ASSERT_TRUE(strstr(line, "truncated") != NULL);
    }
    cJSON *small = cJSON_Parse(line);
    ASSERT_TRUE(small != NULL);
    cJSON_Delete(small);
}

static void test_session_keys_are_redacted(void)
{
    const char *text = LOGFMT(WSG_F_CHANNEL("channel", "ws4redis:session:0123456789abcdef:foo", 37));
    ASSERT_TRUE(strstr(text, "0123456789") == NULL);
    ASSERT_TRUE(strstr(text, "channel=ws4redis:session:0123~") != NULL);
    ASSERT_TRUE(strstr(LOGFMT(WSG_F_CHANNEL("channel", "broadcast:foo", 13)), "channel=broadcast:foo\n") !=
                NULL);
}

static void test_level_names(void)
{
    wsg_log_level_t lvl;
    ASSERT_INT_EQ(wsg_log_parse_level("warning", &lvl), 0);
    ASSERT_INT_EQ(lvl, WSG_LOG_WARN);
    ASSERT_INT_EQ(wsg_log_parse_level("DEBUG", &lvl), 0);
    ASSERT_INT_EQ(lvl, WSG_LOG_DEBUG);
    ASSERT_INT_EQ(wsg_log_parse_level("loud", &lvl), -EINVAL);
    ASSERT_STR_EQ(wsg_log_level_name(WSG_LOG_ERROR), "error");
}

TEST_MAIN("log", TEST_CASE(test_logfmt_line),
          TEST_CASE(test_logfmt_quotes_and_escapes_what_could_break_a_line),
          TEST_CASE(test_forged_values_stay_one_field), TEST_CASE(test_json_line),
          TEST_CASE(test_each_key_once_and_only_code_keys),
          TEST_CASE(test_long_values_are_cut_and_long_lines_say_so),
          TEST_CASE(test_session_keys_are_redacted), TEST_CASE(test_level_names))
