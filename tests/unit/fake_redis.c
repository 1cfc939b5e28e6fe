/* Recording stand-ins for wsg_redis_sub_subscribe, wsg_redis_sub_unsubscribe, wsg_redis_cmd_get, the stream
 * commands and the stream reader's add and remove. */
#include "fake_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fake_call_t fake_calls[FAKE_REDIS_MAX];
int fake_ncalls;

static fake_call_t *record(const char *verb, const char *key, size_t len)
{
    if (fake_ncalls == FAKE_REDIS_MAX)
        return NULL;
    fake_call_t *c = &fake_calls[fake_ncalls++];
    snprintf(c->text, sizeof c->text, "%s %.*s", verb, (int)len, key);
    c->get_cb = NULL;
    c->get_arg = NULL;
    c->entries_cb = NULL;
    c->info_cb = NULL;
    return c;
}

int wsg_redis_sub_subscribe(wsg_redis_sub_t *sub, const char *const *channels, const size_t *lens, size_t n)
{
    for (size_t i = 0; i < n; i++)
        record("SUBSCRIBE", channels[i], lens[i]);
    return 0;
}

int wsg_redis_sub_unsubscribe(wsg_redis_sub_t *sub, const char *channel, size_t len)
{
    record("UNSUBSCRIBE", channel, len);
    return 0;
}

int wsg_redis_cmd_get(wsg_redis_cmd_t *cmd, const char *key, size_t key_len, wsg_redis_get_cb cb, void *arg)
{
    fake_call_t *c = record("GET", key, key_len);
    if (c == NULL)
        return -1;
    c->get_cb = cb;
    c->get_arg = arg;
    return 0;
}

int wsg_redis_stream_last(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_entries_cb cb,
                          void *arg)
{
    fake_call_t *c = record("XREVRANGE", key, len);
    if (c == NULL)
        return -1;
    c->entries_cb = cb;
    c->get_arg = arg;
    return 0;
}

int wsg_redis_stream_range(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_id_t after,
                           uint32_t count, wsg_stream_entries_cb cb, void *arg)
{
    fake_call_t *c = record("XRANGE", key, len);
    if (c == NULL)
        return -1;
    char id[WSG_STREAM_ID_MAX_LEN + 1];
    wsg_stream_id_format(after, id);
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, " (%s", id);
    c->entries_cb = cb;
    c->get_arg = arg;
    return 0;
}

int wsg_redis_stream_info(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_info_cb cb, void *arg)
{
    fake_call_t *c = record("XINFO", key, len);
    if (c == NULL)
        return -1;
    c->info_cb = cb;
    c->get_arg = arg;
    return 0;
}

int wsg_redis_stream_add(wsg_redis_cmd_t *cmd, const char *key, size_t len, uint64_t maxlen,
                         const void *payload, size_t payload_len, wsg_stream_added_cb cb, void *arg)
{
    return record("XADD", key, len) ? 0 : -1;
}

int wsg_redis_streams_add(wsg_redis_streams_t *reader, const char *key, size_t len, wsg_stream_id_t after)
{
    fake_call_t *c = record("FOLLOW", key, len);
    if (c == NULL)
        return -1;
    char id[WSG_STREAM_ID_MAX_LEN + 1];
    wsg_stream_id_format(after, id);
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, " %s", id);
    return 0;
}

void wsg_redis_streams_remove(wsg_redis_streams_t *reader, const char *key, size_t len)
{
    record("UNFOLLOW", key, len);
}

void fake_redis_answer_entries(int index, int status, const wsg_stream_id_t *ids, size_t n)
{
    if (index < 0 || index >= fake_ncalls)
        abort(); /* the call to answer was never made: the test's expectation is wrong */
    fake_call_t *c = &fake_calls[index];
    wsg_stream_entries_cb cb = c->entries_cb;
    c->entries_cb = NULL;
    if (cb == NULL)
        return;
    wsg_stream_entry_t entries[64];
    char payloads[64][WSG_STREAM_ID_MAX_LEN + 2];
    for (size_t i = 0; i < n && i < 64; i++) {
        payloads[i][0] = 'p';
        entries[i].id = ids[i];
        entries[i].len = 1 + wsg_stream_id_format(ids[i], payloads[i] + 1);
        entries[i].payload = (const uint8_t *)payloads[i];
    }
    cb(c->get_arg, status, status < 0 ? "ERR fake" : NULL, entries, n < 64 ? n : 64);
}

void fake_redis_answer_info(int index, const wsg_stream_info_t *info)
{
    if (index < 0 || index >= fake_ncalls)
        abort();
    fake_call_t *c = &fake_calls[index];
    wsg_stream_info_cb cb = c->info_cb;
    c->info_cb = NULL;
    if (cb != NULL)
        cb(c->get_arg, 0, NULL, info);
}

void fake_redis_reset(void)
{
    fake_ncalls = 0;
}

int fake_redis_find(int from, const char *text)
{
    for (int i = from; i < fake_ncalls; i++)
        if (strcmp(fake_calls[i].text, text) == 0)
            return i;
    return -1;
}

void fake_redis_answer_get(int index, int status, const char *value)
{
    fake_call_t *c = &fake_calls[index];
    wsg_redis_get_cb cb = c->get_cb;
    c->get_cb = NULL;
    if (cb != NULL)
        cb(c->get_arg, status, value, value ? strlen(value) : 0);
}
