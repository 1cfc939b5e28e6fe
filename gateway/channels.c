/* A chained hash table of channels by name (FNV-1a), doubled when it gets as many channels as buckets. */
#include "channels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_name(const char *name, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}

int wsg_channels_init(wsg_channels_t *table)
{
    table->count = 0;
    table->nbuckets = 64;
    table->buckets = calloc(table->nbuckets, sizeof(*table->buckets));
    return table->buckets ? 0 : -ENOMEM;
}

void wsg_channels_dispose(wsg_channels_t *table)
{
    for (uint32_t i = 0; i < table->nbuckets; i++) {
        wsg_channel_t *ch = table->buckets[i];
        while (ch != NULL) {
            wsg_channel_t *next = ch->hash_next;
            free(ch);
            ch = next;
        }
    }
    free(table->buckets);
    table->buckets = NULL;
    table->nbuckets = table->count = 0;
}

wsg_channel_t *wsg_channels_find(const wsg_channels_t *table, const char *name, size_t len)
{
    if (table->buckets == NULL)
        return NULL;
    uint32_t hash = hash_name(name, len);
    for (wsg_channel_t *ch = table->buckets[hash & (table->nbuckets - 1)]; ch; ch = ch->hash_next)
        if (ch->hash == hash && ch->name_len == len && memcmp(ch->name, name, len) == 0)
            return ch;
    return NULL;
}

static void grow(wsg_channels_t *table)
{
    uint32_t n = table->nbuckets * 2;
    wsg_channel_t **buckets = calloc(n, sizeof(*buckets));
    if (buckets == NULL)
        return; /* longer chains, still correct */
    for (uint32_t i = 0; i < table->nbuckets; i++) {
        wsg_channel_t *ch = table->buckets[i];
        while (ch != NULL) {
            wsg_channel_t *next = ch->hash_next;
            ch->hash_next = buckets[ch->hash & (n - 1)];
            buckets[ch->hash & (n - 1)] = ch;
            ch = next;
        }
    }
    free(table->buckets);
    table->buckets = buckets;
    table->nbuckets = n;
}

wsg_channel_t *wsg_channels_get(wsg_channels_t *table, wsg_str_t name)
{
    wsg_channel_t *ch = wsg_channels_find(table, name.ptr, name.len);
    if (ch != NULL)
        return ch;
    if (name.len > WSG_CHANNEL_NAME_MAX)
        return NULL;
    ch = calloc(1, sizeof(*ch) + name.len + 1);
    if (ch == NULL)
        return NULL;
    ch->hash = hash_name(name.ptr, name.len);
    ch->name_len = (uint16_t)name.len;
    memcpy(ch->name, name.ptr, name.len);
    ch->name[name.len] = '\0';
    ch->state = WSG_CHANNEL_UNSUBSCRIBED;
    uint32_t b = ch->hash & (table->nbuckets - 1);
    ch->hash_next = table->buckets[b];
    table->buckets[b] = ch;
    if (++table->count > table->nbuckets)
        grow(table);
    return ch;
}

void wsg_channels_remove(wsg_channels_t *table, wsg_channel_t *channel)
{
    wsg_channel_t **pp = &table->buckets[channel->hash & (table->nbuckets - 1)];
    while (*pp != channel)
        pp = &(*pp)->hash_next;
    *pp = channel->hash_next;
    table->count--;
    free(channel);
}

void wsg_channels_each(wsg_channels_t *table, void (*fn)(wsg_channel_t *channel, void *arg), void *arg)
{
    for (uint32_t b = 0; b < table->nbuckets; b++) {
        wsg_channel_t *ch = table->buckets[b];
        while (ch != NULL) {
            wsg_channel_t *next = ch->hash_next;
            fn(ch, arg);
            ch = next;
        }
    }
}
