/* Shared between outq.c (queue and write path) and outq_policy.c (the policy); nothing else includes it. */
#ifndef WSG_GATEWAY_OUTQ_INTERNAL_H
#define WSG_GATEWAY_OUTQ_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "outq.h"

/* outq.c */

/** Loop time in milliseconds, 32 bits (differences stay right across the wrap); never 0, which means "unset".
 */
uint32_t outq_now(const wsg_outq_t *q);

/** A data message larger than the soft limit: it travels alone and only to a drained client. */
bool outq_is_oversize(const wsg_outq_t *q, const wsg_msg_t *msg);

/** Puts `q` on the list wsg_outq_flush_all works through this loop turn (once). */
void outq_schedule_flush(wsg_outq_t *q);

/** Takes `q` off the list the sweep watches. */
void outq_backlog_unlink(wsg_outq_t *q);

/** Offers the queue to the socket: writes what the kernel takes at once. Returns 0 or a libuv error. */
int outq_write_some(wsg_outq_t *q);

/* outq_policy.c */

/** The policy's say on a data message about to be queued: WSG_OUTQ_QUEUED to go ahead, or what became of it
 *  (dropped or skipped and counted, or refused with a verdict recorded). */
wsg_outq_result_t outq_admit(wsg_outq_t *q, const wsg_msg_t *msg);

/** After a flush left bytes the kernel refused: starts or checks the soft limit's grace. */
void outq_judge_backlog(wsg_outq_t *q);

/** Carries out the recorded verdict: unsent data goes, the reason is logged and the owner is told. */
void outq_give_up(wsg_outq_t *q);

#endif
