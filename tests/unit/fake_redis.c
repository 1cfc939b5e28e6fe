/* Recording stand-ins for wsg_redis_sub_subscribe, wsg_redis_sub_unsubscribe and wsg_redis_cmd_get. */
#include "fake_redis.h"

#include <stdio.h>
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
