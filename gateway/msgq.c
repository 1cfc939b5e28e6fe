/* The ring behind an output: references in order, grown by doubling, shrunk when a burst is over. */
#include "msgq.h"

#include <errno.h>
#include <stdlib.h>

/* A ring larger than this is freed once empty: bursts should not cost an idle connection memory. */
#define KEEP_CAP 64

static void set_at(wsg_msgq_t *q, uint32_t i, wsg_msg_t *msg)
{
    q->items[(q->head + i) & (q->cap - 1)] = msg;
}

static int grow(wsg_msgq_t *q)
{
    uint32_t cap = q->cap ? q->cap * 2 : 4;
    wsg_msg_t **items = malloc(cap * sizeof(*items));
    if (items == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i < q->count; i++)
        items[i] = wsg_msgq_at(q, i);
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int wsg_msgq_insert(wsg_msgq_t *q, uint32_t pos, wsg_msg_t *msg)
{
    if (q->count == q->cap && grow(q) < 0)
        return -ENOMEM;
    for (uint32_t i = q->count; i > pos; i--)
        set_at(q, i, wsg_msgq_at(q, i - 1));
    set_at(q, pos, wsg_msg_ref(msg));
    q->count++;
    return 0;
}

static void shrink_if_empty(wsg_msgq_t *q)
{
    if (q->count == 0 && q->cap > KEEP_CAP) {
        free(q->items);
        q->items = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

void wsg_msgq_pop(wsg_msgq_t *q, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        wsg_msg_unref(q->items[q->head]);
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
    shrink_if_empty(q);
}

uint32_t wsg_msgq_remove_if(wsg_msgq_t *q, uint32_t from, bool (*drop)(const wsg_msg_t *msg, void *arg),
                            void *arg)
{
    uint32_t kept = from;
    for (uint32_t i = from; i < q->count; i++) {
        wsg_msg_t *msg = wsg_msgq_at(q, i);
        if (drop(msg, arg))
            wsg_msg_unref(msg);
        else
            set_at(q, kept++, msg);
    }
    uint32_t removed = q->count - kept;
    q->count = kept;
    shrink_if_empty(q);
    return removed;
}

void wsg_msgq_dispose(wsg_msgq_t *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        wsg_msg_unref(wsg_msgq_at(q, i));
    free(q->items);
    q->items = NULL;
    q->count = q->cap = q->head = 0;
}
