/* A ring of message references in order: what an output has queued. Pure bookkeeping, no I/O. */
#ifndef WSG_GATEWAY_MSGQ_H
#define WSG_GATEWAY_MSGQ_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"

/** Embedded; empty and allocation-free until the first message. */
typedef struct wsg_msgq {
    wsg_msg_t **items; /* capacity a power of two */
    uint32_t head, count, cap;
} wsg_msgq_t;

/** The message at position `i` (< count); borrowed. */
static inline wsg_msg_t *wsg_msgq_at(const wsg_msgq_t *q, uint32_t i)
{
    return q->items[(q->head + i) & (q->cap - 1)];
}

/** Inserts `msg` at position `pos` (<= count; count appends), taking a new reference. Returns 0 or -ENOMEM.
 */
int wsg_msgq_insert(wsg_msgq_t *q, uint32_t pos, wsg_msg_t *msg);

/** Drops the references of the first `n` messages. A ring grown by a burst is freed once empty, so an idle
 *  connection holds none. */
void wsg_msgq_pop(wsg_msgq_t *q, uint32_t n);

/** Removes, keeping the order of the rest, every message at position `from` or later for which `drop(msg,
 *  arg)` is true, dropping its reference (after the call). Returns how many were removed. */
uint32_t wsg_msgq_remove_if(wsg_msgq_t *q, uint32_t from, bool (*drop)(const wsg_msg_t *msg, void *arg),
                            void *arg);

/** Drops every reference and frees the ring. */
void wsg_msgq_dispose(wsg_msgq_t *q);

#endif
