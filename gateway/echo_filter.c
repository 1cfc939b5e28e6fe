/* The echo filter: a ring of (channel, hash, length, lost) entries in publication order. */
#include "echo_filter.h"

#include <stdlib.h>

struct own_pub {
    const void *channel;
    uint64_t hash;
    size_t len;
    bool is_lost; /* noted before the channel's subscription was lost */
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
    *entry(f, f->count) = (struct own_pub){channel, hash, len, false};
    f->count++;
}

/* Removes entry `i`, keeping the order of the others. */
static void remove_at(wsg_echo_filter_t *f, uint16_t i)
{
    for (uint16_t j = i; j > 0; j--)
        *entry(f, j) = *entry(f, (uint16_t)(j - 1));
    f->head = (uint16_t)((f->head + 1) % f->cap);
    f->count--;
}

static bool matches(const struct own_pub *p, uint64_t hash, size_t len)
{
    return p->hash == hash && p->len == len;
}

bool wsg_echo_filter_take(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len)
{
    /* The oldest entry of the channel noted since the loss, and the oldest noted before it: publications of
     * one client go to Redis in order, so only these two can be the next to come back. */
    bool seen_kept = false, seen_lost = false;
    for (uint16_t i = 0; i < f->count && !(seen_kept && seen_lost); i++) {
        const struct own_pub *p = entry(f, i);
        if (p->channel != channel)
            continue;
        bool *seen = p->is_lost ? &seen_lost : &seen_kept;
        if (*seen)
            continue;
        *seen = true;
        if (matches(p, hash, len)) {
            remove_at(f, i);
            return true;
        }
    }
    return false;
}

void wsg_echo_filter_lose(wsg_echo_filter_t *f, const void *channel)
{
    for (uint16_t i = 0; i < f->count; i++) {
        struct own_pub *p = entry(f, i);
        if (p->channel == channel)
            p->is_lost = true;
    }
}

bool wsg_echo_filter_take_lost(wsg_echo_filter_t *f, const void *channel, uint64_t hash, size_t len)
{
    for (uint16_t i = 0; i < f->count; i++) {
        const struct own_pub *p = entry(f, i);
        if (p->channel == channel && p->is_lost && matches(p, hash, len)) {
            remove_at(f, i);
            return true;
        }
    }
    return false;
}

void wsg_echo_filter_forget_lost(wsg_echo_filter_t *f, const void *channel)
{
    uint16_t kept = 0;
    for (uint16_t i = 0; i < f->count; i++) {
        const struct own_pub *p = entry(f, i);
        if (p->channel != channel || !p->is_lost)
            *entry(f, kept++) = *p;
    }
    f->count = kept;
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
