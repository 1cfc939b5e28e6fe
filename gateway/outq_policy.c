/* The slow-consumer policy of connection outputs, all of it: what a data message may do (queued, dropped or
 * skipped), when a client is given up on (hard limit, soft limit over the grace, stalled output), and how the
 * verdict is carried out and logged. See the top of outq.h. */
#include <errno.h>
#include <sys/ioctl.h>

#include "outq.h"
#include "outq_internal.h"

/* The unsent bytes of a message larger than the soft limit that is being written: they do not count toward
 * the limits (only what is queued behind it does). It was queued while the output was drained, so only
 * items already written can precede it. */
static size_t oversize_left(const wsg_outq_t *q)
{
    if (!q->has_oversize)
        return 0;
    for (uint32_t i = 0; i < q->ring.count; i++) {
        const wsg_msg_t *msg = wsg_msgq_at(&q->ring, i);
        if (!outq_is_oversize(q, msg))
            continue;
        if (i < q->in_flight) /* it travels alone: the running write is this message */
            return uv_stream_get_write_queue_size(q->stream);
        return msg->frame_len - (i == 0 ? q->first_offset : 0);
    }
    return 0;
}

bool wsg_outq_ctx_is_congested(wsg_outq_ctx_t *ctx)
{
    uint32_t stuck = ctx->nstuck < ctx->nbacklogged ? ctx->nstuck : ctx->nbacklogged;
    uint64_t behind = ctx->nbacklogged - stuck;
    if (behind == 0)
        return false;
    uint32_t now = (uint32_t)uv_now(ctx->loop);
    if (behind * 2 > ctx->noutputs) {
        ctx->majority_ms = now;
        ctx->has_majority = true;
        return true;
    }
    return ctx->has_majority && behind * 4 >= ctx->noutputs &&
           now - ctx->majority_ms < 2 * ctx->policy.grace_ms;
}

/* The kernel took nothing from `q` for this long: it is stuck, not behind (see wsg_outq_ctx_is_congested). */
static uint32_t stuck_ms(const wsg_outq_policy_t *p)
{
    /* Clients that read, however far behind, are read from more often than that (an overloaded load client
     * on a 2-CPU machine: every 0.2-1 s). The floor keeps a grace of 0 from making every client stuck. */
    return p->grace_ms > 100 ? (uint32_t)(2 * p->grace_ms) : 200;
}

/* The slow-consumer policy, all of it. `extra` bytes are about to be queued. Pending is what the kernel has
 * not taken (the caller offered it the queue first), less an oversize message being written; over the hard
 * limit at any moment, or over the soft limit without a break for the grace period, is a verdict. While most
 * clients are behind (the sources hold their reads: nothing more is queued), a client that still reads is
 * not singled out by the soft limit: its grace starts again when that ends. */
static wsg_outq_verdict_t judge(wsg_outq_t *q, size_t extra, size_t *judged)
{
    const wsg_outq_policy_t *p = &q->ctx->policy;
    size_t pending = wsg_outq_pending(q) - oversize_left(q) + extra;
    *judged = pending;
    if (pending > p->hard)
        return WSG_OUTQ_SLOW_HARD;
    if (pending <= p->soft) {
        q->over_soft_since = 0;
        return WSG_OUTQ_FINE;
    }
    uint32_t now = outq_now(q);
    if (q->over_soft_since == 0 || (wsg_outq_ctx_is_congested(q->ctx) && now - q->progress_ms < stuck_ms(p)))
        q->over_soft_since = now;
    return now - q->over_soft_since >= p->grace_ms ? WSG_OUTQ_SLOW_SOFT : WSG_OUTQ_FINE;
}

/* Records a verdict; the flush at the end of the loop turn carries it out (never while a caller, such as the
 * router walking a channel's members, is in the middle of something). */
static void set_verdict(wsg_outq_t *q, wsg_outq_verdict_t verdict, size_t pending)
{
    if (q->verdict != WSG_OUTQ_FINE)
        return;
    q->verdict = (uint8_t)verdict;
    q->verdict_pending = pending;
    outq_schedule_flush(q);
}

/* After a flush left bytes the kernel refused: starts or checks the soft limit's grace. */
void outq_judge_backlog(wsg_outq_t *q)
{
    if (q->is_closed || q->is_given_up)
        return;
    size_t judged;
    wsg_outq_verdict_t verdict = judge(q, 0, &judged);
    if (verdict != WSG_OUTQ_FINE && !q->ctx->policy.is_drop)
        set_verdict(q, verdict, judged);
}

/* Carries out a verdict: unsent data goes (the close frame should follow promptly), the reason is logged
 * with the pending bytes it was reached on, and the owner closes the connection. */
void outq_give_up(wsg_outq_t *q)
{
    wsg_outq_ctx_t *ctx = q->ctx;
    wsg_outq_verdict_t verdict = (wsg_outq_verdict_t)q->verdict;
    uint32_t over_ms = q->over_soft_since ? outq_now(q) - q->over_soft_since : 0;
    uint32_t dropped = wsg_outq_drop_unsent(q);
    WSG_STAT_ADD(ctx->stats, slow_consumer_drops, dropped);
    if (verdict == WSG_OUTQ_STALLED) {
        WSG_INFO("output_stalled", WSG_F_UINT("conn", q->id), WSG_F_UINT("pending_bytes", q->verdict_pending),
                 WSG_F_UINT("stalled_ms", outq_now(q) - q->progress_ms),
                 WSG_F_UINT("dropped_messages", dropped));
    } else {
        bool is_hard = verdict == WSG_OUTQ_SLOW_HARD;
        WSG_STAT_ADD(ctx->stats, slow_consumer_closes, 1);
        WSG_WARN("slow_consumer", WSG_F_UINT("conn", q->id), WSG_F_UINT("pending_bytes", q->verdict_pending),
                 WSG_F_STR("limit", is_hard ? "hard" : "soft"),
                 WSG_F_UINT("limit_bytes", is_hard ? ctx->policy.hard : ctx->policy.soft),
                 WSG_F_UINT("over_ms", is_hard ? 0 : over_ms), WSG_F_UINT("dropped_messages", dropped));
    }
    q->verdict = WSG_OUTQ_FINE;
    q->over_soft_since = 0;
    q->is_given_up = true; /* nothing but the owner's close frame from now on */
    ctx->owner->on_verdict(q, verdict);
}

/* The policy's say on a data message: QUEUED to go ahead, or what became of it. */
wsg_outq_result_t outq_admit(wsg_outq_t *q, const wsg_msg_t *msg)
{
    wsg_outq_ctx_t *ctx = q->ctx;
    const wsg_outq_policy_t *p = &ctx->policy;
    if (msg->frame_len > p->soft) {
        size_t pending = wsg_outq_pending(q);
        if (!q->has_oversize && pending == 0)
            return WSG_OUTQ_QUEUED;
        WSG_STAT_ADD(ctx->stats, oversize_skips, msg->nmsgs);
        if (wsg_log_limit_allow(&ctx->skip_log_limit, uv_now(ctx->loop), 5000))
            WSG_WARN("oversize_skip", WSG_F_UINT("conn", q->id), WSG_F_UINT("len", msg->frame_len),
                     WSG_F_UINT("pending_bytes", pending), WSG_F_UINT("limit_bytes", p->soft));
        return WSG_OUTQ_SKIPPED;
    }
    if (q->queued + msg->frame_len <= p->soft) { /* pending <= queued: far from any limit */
        q->over_soft_since = 0;
        return WSG_OUTQ_QUEUED;
    }
    /* Near a limit: let the kernel take what it will first, so that only what it refused counts. */
    int rc = outq_write_some(q);
    if (rc < 0) {
        wsg_outq_fail(q, rc);
        return WSG_OUTQ_REFUSED;
    }
    size_t judged;
    wsg_outq_verdict_t verdict = judge(q, msg->frame_len, &judged);
    if (verdict == WSG_OUTQ_FINE)
        return WSG_OUTQ_QUEUED;
    if (p->is_drop) {
        WSG_STAT_ADD(ctx->stats, slow_consumer_drops, msg->nmsgs);
        if (wsg_log_limit_allow(&ctx->drop_log_limit, uv_now(ctx->loop), 5000))
            WSG_WARN("slow_consumer_drop", WSG_F_UINT("conn", q->id), WSG_F_UINT("pending_bytes", judged),
                     WSG_F_STR("limit", verdict == WSG_OUTQ_SLOW_HARD ? "hard" : "soft"));
        return WSG_OUTQ_DROPPED;
    }
    set_verdict(q, verdict, judged);
    return WSG_OUTQ_REFUSED;
}

void wsg_outq_sweep(wsg_outq_ctx_t *ctx)
{
    const wsg_outq_policy_t *p = &ctx->policy;
    /* Outputs the kernel took nothing from for a while are stuck, not "behind": they do not hold sources back
     * (wsg_outq_ctx_is_congested); the policy cuts them. */
    uint32_t stuck_after = stuck_ms(p);
    uint32_t nstuck = 0;
    wsg_outq_t *next;
    for (wsg_outq_t *q = ctx->backlog_head; q != NULL; q = next) {
        next = q->backlog_next;
        size_t pending = wsg_outq_pending(q);
        if (pending == 0) {
            outq_backlog_unlink(q);
            q->over_soft_since = 0;
            continue;
        }
        uint32_t now = outq_now(q);
        if (q->in_flight > 0) {
            uint32_t wqs = (uint32_t)uv_stream_get_write_queue_size(q->stream);
            if (wqs < q->seen_wqs)
                q->progress_ms = now; /* libuv wrote part of the running write */
            q->seen_wqs = wqs;
        }
        /* The client takes bytes from the kernel's send queue long before the socket is writable again (TCP
         * signals that only once a third of a send buffer of several MB has drained): a shorter queue is
         * progress too. */
        uv_os_fd_t fd;
        int in_kernel = 0;
        if (uv_fileno((const uv_handle_t *)q->stream, &fd) == 0 && ioctl(fd, TIOCOUTQ, &in_kernel) == 0) {
            if ((uint32_t)in_kernel < q->seen_kernel)
                q->progress_ms = now;
            q->seen_kernel = (uint32_t)in_kernel;
        }
        bool is_leaving = q->is_closed || q->is_given_up || q->verdict != WSG_OUTQ_FINE;
        nstuck += is_leaving || now - q->progress_ms >= stuck_after;
        if (is_leaving)
            continue; /* the close timeout takes it from here */
        if (p->stall_ms > 0 && now - q->progress_ms >= p->stall_ms) {
            set_verdict(q, WSG_OUTQ_STALLED, pending);
            continue;
        }
        size_t judged;
        wsg_outq_verdict_t verdict = judge(q, 0, &judged);
        if (verdict != WSG_OUTQ_FINE && !p->is_drop)
            set_verdict(q, verdict, judged);
    }
    ctx->nstuck = nstuck;
}
