/* Heartbeat dialects: inbound classification (cJSON only for small objects) and JSON frame text. */
#include "heartbeat.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static bool starts_like_object(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')
            continue;
        return data[i] == '{';
    }
    return false;
}

wsg_inbound_kind_t wsg_heartbeat_classify(const wsg_heartbeat_rules_t *rules, const uint8_t *data, size_t len)
{
    if (rules->magic.len > 0 && len == rules->magic.len && memcmp(data, rules->magic.ptr, len) == 0)
        return WSG_INBOUND_MAGIC_HEARTBEAT;
    if (!(rules->json_heartbeat || rules->json_ping) || len > WSG_HEARTBEAT_JSON_MAX ||
        !starts_like_object(data, len))
        return WSG_INBOUND_DATA;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, len, NULL, false);
    if (root == NULL)
        return WSG_INBOUND_DATA;
    wsg_inbound_kind_t kind = WSG_INBOUND_DATA;
    const cJSON *type = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "type") : NULL;
    if (cJSON_IsString(type) && type->valuestring != NULL) {
        if (rules->json_heartbeat && strcmp(type->valuestring, "heartbeat_response") == 0)
            kind = WSG_INBOUND_HEARTBEAT_RESPONSE;
        else if (rules->json_ping && strcmp(type->valuestring, "ping") == 0)
            kind = WSG_INBOUND_JSON_PING;
    }
    cJSON_Delete(root);
    return kind;
}

ssize_t wsg_heartbeat_write_json(char *out, size_t cap, uint64_t unix_ms, uint64_t timeout_ms)
{
    int n = snprintf(out, cap, "{\"type\":\"heartbeat\",\"timestamp\":%" PRIu64 ",\"timeout\":%" PRIu64 "}", unix_ms,
                     timeout_ms);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    return n;
}
