/* The echo filter: a ring of (channel, hash, length) entries. */
#include "echo_filter.h"

#include <stdlib.h>

struct own_pub {
    const void *channel;
    uint64_t hash;
    size_t len;
};

static struct own_pub *entry(const wsg_echo_filter_t *f, uint16_t i)
{
    return &f->entries[(f->head + i) % f->cap];
}

void wsg_echo_filter_note(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len)
{
    if (f->count == f->cap) {
        if (f->cap >= WSG_ECHO_FILTER_MAX) {
            f->head = (uint16_t)((f->head + 1) % f->cap); /* forget the oldest */
            f->count--;
        } else {
            uint16_t cap = f->cap ? (uint16_t)(f->cap * 2) : 8;
            struct own_pub *entries = malloc(cap * sizeof(*entries));
            if (entries == NULL)
                return; /* the echo will reach the client: harmless */
            for (uint16_t i = 0; i < f->count; i++)
                entries[i] = *entry(f, i);
            free(f->entries);
            f->entries = entries;
            f->cap = cap;
            f->head = 0;
        }
    }
    *entry(f, f->count) = (struct own_pub){channel, hash, len};
    f->count++;
}

bool wsg_echo_filter_take(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len)
{
    for (uint16_t i = 0; i < f->count; i++) {
        const struct own_pub *p = entry(f, i);
        if (p->channel != channel)
            continue;
        if (p->len != len || p->hash != hash)
            return false;                /* only the oldest entry of a channel can match */
        for (uint16_t j = i; j > 0; j--) /* remove entry i, keeping order */
            *entry(f, j) = *entry(f, (uint16_t)(j - 1));
        f->head = (uint16_t)((f->head + 1) % f->cap);
        f->count--;
        return true;
    }
    return false;
}

void wsg_echo_filter_clear(wsg_echo_filter_t *f)
{
    f->count = 0;
}

void wsg_echo_filter_dispose(wsg_echo_filter_t *f)
{
    free(f->entries);
    f->entries = NULL;
    f->head = f->count = f->cap = 0;
}
