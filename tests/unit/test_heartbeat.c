/* Unit tests of protocol/heartbeat.c: inbound classification per dialect and the JSON heartbeat text. */
#include <errno.h>
#include <string.h>

#include "heartbeat.h"
#include "test.h"

static wsg_inbound_kind_t classify(const wsg_heartbeat_rules_t *rules, const char *text)
{
    return wsg_heartbeat_classify(rules, (const uint8_t *)text, strlen(text));
}

static void test_magic_string(void)
{
    wsg_heartbeat_rules_t rules = {.magic = wsg_str_c("--heartbeat--")};
    ASSERT_INT_EQ(classify(&rules, "--heartbeat--"), WSG_INBOUND_MAGIC_HEARTBEAT);
    ASSERT_INT_EQ(classify(&rules, "--heartbeat-- "), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "--heartbeat-"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, ""), WSG_INBOUND_DATA);
    /* JSON dialects are off: JSON control messages are data. */
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"ping\"}"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"heartbeat_response\"}"), WSG_INBOUND_DATA);
    wsg_heartbeat_rules_t none = {0};
    ASSERT_INT_EQ(classify(&none, "--heartbeat--"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&none, ""), WSG_INBOUND_DATA);
}

static void test_json_heartbeat_response(void)
{
    wsg_heartbeat_rules_t rules = {.json_heartbeat = true};
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"heartbeat_response\"}"), WSG_INBOUND_HEARTBEAT_RESPONSE);
    ASSERT_INT_EQ(classify(&rules, "  \n{\"timestamp\": 17, \"type\": \"heartbeat_response\"}"),
                  WSG_INBOUND_HEARTBEAT_RESPONSE);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"Heartbeat_Response\"}"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"heartbeat\"}"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":1}"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "[\"heartbeat_response\"]"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"heartbeat_response\""), WSG_INBOUND_DATA); /* not JSON */
    ASSERT_INT_EQ(classify(&rules, "{\"kind\":\"heartbeat_response\"}"), WSG_INBOUND_DATA);
    /* Pings are recognised only when switched on. */
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"ping\"}"), WSG_INBOUND_DATA);
}

static void test_json_ping(void)
{
    wsg_heartbeat_rules_t rules = {.json_ping = true};
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"ping\"}"), WSG_INBOUND_JSON_PING);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"ping\",\"id\":3}"), WSG_INBOUND_JSON_PING);
    ASSERT_INT_EQ(classify(&rules, "{\"type\":\"heartbeat_response\"}"), WSG_INBOUND_DATA);
    ASSERT_INT_EQ(classify(&rules, "ping"), WSG_INBOUND_DATA);
}

static void test_large_messages_are_not_parsed(void)
{
    wsg_heartbeat_rules_t rules = {.json_heartbeat = true, .json_ping = true};
    char big[WSG_HEARTBEAT_JSON_MAX + 64];
    int n = snprintf(big, sizeof big, "{\"type\":\"ping\",\"pad\":\"");
    while ((size_t)n < WSG_HEARTBEAT_JSON_MAX)
        big[n++] = 'x';
    big[n++] = '"';
    big[n++] = '}';
    ASSERT_INT_EQ(wsg_heartbeat_classify(&rules, (const uint8_t *)big, (size_t)n), WSG_INBOUND_DATA);
    /* The same object within the bound is a ping. */
    const char *small = "{\"type\":\"ping\",\"pad\":\"xxxx\"}";
    ASSERT_INT_EQ(classify(&rules, small), WSG_INBOUND_JSON_PING);
}

static void test_write_json(void)
{
    char out[128];
    ssize_t n = wsg_heartbeat_write_json(out, sizeof out, 1795448059123ull, 60000);
    ASSERT_STR_EQ(out, "{\"type\":\"heartbeat\",\"timestamp\":1795448059123,\"timeout\":60000}");
    ASSERT_INT_EQ(n, (ssize_t)strlen(out));
    ASSERT_INT_EQ(wsg_heartbeat_write_json(out, 10, 1, 2), -ENOSPC);
}

TEST_MAIN("heartbeat", TEST_CASE(test_magic_string), TEST_CASE(test_json_heartbeat_response),
          TEST_CASE(test_json_ping), TEST_CASE(test_large_messages_are_not_parsed), TEST_CASE(test_write_json))
