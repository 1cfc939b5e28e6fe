/* The output of one connection: a ring of shared messages, written with writev (uv_try_write, then at most
 * one uv_write), its pong and close frames, and the end-of-turn flush. The policy is in outq_policy.c. */
#include "outq.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq_internal.h"

/* How many queued messages one write call gathers: a burst of Redis messages leaves many frames per
 * connection, and one writev of them all is the point of queueing. */
#define MAX_IOV 256
/* Write requests and control blocks kept for reuse per loop: enough for every connection that has a write
 * running at once in ordinary bursts; beyond it they are freed. */
#define MAX_SPARE_REQS 1024
#define MAX_SPARE_CTLS 256

/* Pong and close frames of one connection, taken from the loop's spares while one is queued: a control frame
 * never needs an allocation of its own, and an idle connection holds none. */
struct outq_ctl {
    wsg_msg_t pong[2]; /* one may be on its way while the other waits */
    wsg_msg_t close;
    struct outq_ctl *next_spare;
    bool is_pong_started[2]; /* its bytes are in the running write or partly written */
    uint8_t pong_frame[2][WSG_FRAME_CONTROL_MAX];
    uint8_t close_frame[WSG_FRAME_CONTROL_MAX];
};

static void on_write_done(uv_write_t *req, int status);

/* ---- helpers ------------------------------------------------------------------------------------- */

/* Loop time in milliseconds, 32 bits (differences stay right across the wrap); never 0, which means "unset".
 */
uint32_t outq_now(const wsg_outq_t *q)
{
    uint32_t t = (uint32_t)uv_now(q->ctx->loop);
    return t != 0 ? t : 1;
}

/* A data message too large for the soft limit: it travels alone and only to a drained client. */
bool outq_is_oversize(const wsg_outq_t *q, const wsg_msg_t *msg)
{
    return msg->kind == WSG_MSG_DATA && msg->frame_len > q->ctx->policy.soft;
}

static int pong_slot(const wsg_outq_t *q, const wsg_msg_t *msg)
{
    if (q->ctl == NULL)
        return -1;
    if (msg == &q->ctl->pong[0])
        return 0;
    return msg == &q->ctl->pong[1] ? 1 : -1;
}

void outq_schedule_flush(wsg_outq_t *q)
{
    if (q->is_flush_queued)
        return;
    q->is_flush_queued = true;
    q->flush_next = q->ctx->flush_head;
    q->ctx->flush_head = q;
}

static void backlog_link(wsg_outq_t *q)
{
    if (q->is_backlogged)
        return;
    q->is_backlogged = true;
    q->ctx->nbacklogged++;
    q->backlog_prev = NULL;
    q->backlog_next = q->ctx->backlog_head;
    if (q->backlog_next != NULL)
        q->backlog_next->backlog_prev = q;
    q->ctx->backlog_head = q;
}

void outq_backlog_unlink(wsg_outq_t *q)
{
    if (!q->is_backlogged)
        return;
    q->is_backlogged = false;
    q->ctx->nbacklogged--;
    if (q->backlog_prev != NULL)
        q->backlog_prev->backlog_next = q->backlog_next;
    else
        q->ctx->backlog_head = q->backlog_next;
    if (q->backlog_next != NULL)
        q->backlog_next->backlog_prev = q->backlog_prev;
    q->backlog_prev = q->backlog_next = NULL;
}

/* ---- spares -------------------------------------------------------------------------------------- */

static uv_write_t *take_req(wsg_outq_ctx_t *ctx)
{
    uv_write_t *req = ctx->spare_reqs;
    if (req == NULL)
        return malloc(sizeof(*req));
    ctx->spare_reqs = req->data;
    ctx->nspare_reqs--;
    return req;
}

static void give_req(wsg_outq_ctx_t *ctx, uv_write_t *req)
{
    if (ctx->nspare_reqs >= MAX_SPARE_REQS) {
        free(req);
        return;
    }
    req->data = ctx->spare_reqs;
    ctx->spare_reqs = req;
    ctx->nspare_reqs++;
}

static struct outq_ctl *take_ctl(wsg_outq_t *q)
{
    if (q->ctl != NULL)
        return q->ctl;
    wsg_outq_ctx_t *ctx = q->ctx;
    struct outq_ctl *ctl = ctx->spare_ctls;
    if (ctl != NULL) {
        ctx->spare_ctls = ctl->next_spare;
        ctx->nspare_ctls--;
    } else if ((ctl = malloc(sizeof(*ctl))) == NULL) {
        return NULL;
    }
    for (int s = 0; s < 2; s++) {
        wsg_msg_init_borrowed(&ctl->pong[s], WSG_MSG_CONTROL, ctl->pong_frame[s], 0);
        ctl->is_pong_started[s] = false;
    }
    wsg_msg_init_borrowed(&ctl->close, WSG_MSG_CONTROL, ctl->close_frame, 0);
    q->ctl = ctl;
    return ctl;
}

static void give_ctl(wsg_outq_t *q)
{
    wsg_outq_ctx_t *ctx = q->ctx;
    struct outq_ctl *ctl = q->ctl;
    q->ctl = NULL;
    if (ctx->nspare_ctls >= MAX_SPARE_CTLS) {
        free(ctl);
        return;
    }
    ctl->next_spare = ctx->spare_ctls;
    ctx->spare_ctls = ctl;
    ctx->nspare_ctls++;
}

/* Gives the control block back once none of its frames is queued (each holds only its own reference). */
static void release_ctl_if_idle(wsg_outq_t *q)
{
    struct outq_ctl *ctl = q->ctl;
    if (ctl != NULL && ctl->pong[0].refcount == 1 && ctl->pong[1].refcount == 1 && ctl->close.refcount == 1)
        give_ctl(q);
}

/* ---- the ring ------------------------------------------------------------------------------------- */

/* Queues a reference to `msg` at position `pos` (count = the tail) and schedules the write. */
static int insert(wsg_outq_t *q, uint32_t pos, wsg_msg_t *msg)
{
    if (wsg_msgq_insert(&q->ring, pos, msg) < 0)
        return -ENOMEM;
    if (q->ring.count == 1)
        q->progress_ms = outq_now(q); /* output starts waiting now */
    q->queued += msg->frame_len;
    outq_schedule_flush(q);
    return 0;
}

/* Removes `n` fully written items from the front; Redis messages among them count toward the latency
 * histogram when `stats` is given (one clock read per call). */
static void pop_front(wsg_outq_t *q, uint32_t n, wsg_stats_t *stats)
{
    /* Messages written together mostly arrived together: count runs of one bucket, not each message. */
    uint64_t now = 0, run_count = 0, run_sum_us = 0;
    unsigned run_bucket = 0;
    for (uint32_t i = 0; i < n; i++) {
        const wsg_msg_t *msg = wsg_msgq_at(&q->ring, i);
        if (outq_is_oversize(q, msg))
            q->has_oversize = false;
        if (stats == NULL || msg->recv_ns == 0)
            continue;
        if (now == 0)
            now = uv_hrtime();
        uint64_t us = (now > msg->recv_ns ? now - msg->recv_ns : 0) / 1000;
        unsigned bucket = wsg_stats_latency_bucket(us);
        if (run_count > 0 && bucket != run_bucket) {
            wsg_stats_add_latency(stats, run_bucket, run_count, run_sum_us);
            run_count = run_sum_us = 0;
        }
        run_bucket = bucket;
        run_count += msg->nmsgs;
        run_sum_us += us * msg->nmsgs;
    }
    if (run_count > 0)
        wsg_stats_add_latency(stats, run_bucket, run_count, run_sum_us);
    wsg_msgq_pop(&q->ring, n);
    release_ctl_if_idle(q);
}

/* ---- accounting ----------------------------------------------------------------------------------- */

size_t wsg_outq_pending(const wsg_outq_t *q)
{
    size_t pending = q->queued - q->in_flight_bytes;
    if (q->in_flight > 0)
        pending += uv_stream_get_write_queue_size(q->stream);
    return pending;
}

/* ---- writing -------------------------------------------------------------------------------------- */

/* Fills `iov` from the front of the queue; returns how many entries and their bytes in `*bytes`. An oversize
 * message goes alone, so that the running write's unsent bytes are exactly its own. */
static uint32_t gather(const wsg_outq_t *q, uv_buf_t *iov, size_t *bytes)
{
    uint32_t n = q->ring.count < MAX_IOV ? q->ring.count : MAX_IOV;
    uint32_t i = 0;
    *bytes = 0;
    for (; i < n; i++) {
        const wsg_msg_t *msg = wsg_msgq_at(&q->ring, i);
        bool alone = outq_is_oversize(q, msg);
        if (alone && i > 0)
            break;
        size_t off = i == 0 ? q->first_offset : 0;
        iov[i] = uv_buf_init((char *)msg->frame + off, (unsigned)(msg->frame_len - off));
        *bytes += msg->frame_len - off;
        if (alone) {
            i++;
            break;
        }
    }
    return i;
}

/* Accounts `written` bytes taken by the kernel from the front. */
static void consume(wsg_outq_t *q, size_t written)
{
    if (written == 0)
        return;
    q->queued -= written;
    q->progress_ms = outq_now(q);
    WSG_STAT_ADD(q->ctx->stats, bytes_sent, written);
    uint32_t done = 0;
    while (done < q->ring.count && written > 0) {
        const wsg_msg_t *msg = wsg_msgq_at(&q->ring, done);
        size_t left = msg->frame_len - q->first_offset;
        if (written < left) {
            q->first_offset += (uint32_t)written;
            int s = pong_slot(q, msg);
            if (s >= 0)
                q->ctl->is_pong_started[s] = true;
            break;
        }
        written -= left;
        q->first_offset = 0;
        done++;
    }
    pop_front(q, done, q->ctx->stats);
}

/* Offers the queue to the socket: writes what the kernel takes at once. Returns 0 or a libuv error. */
int outq_write_some(wsg_outq_t *q)
{
    uv_buf_t iov[MAX_IOV];
    while (q->in_flight == 0 && q->ring.count > 0) {
        size_t asked;
        uint32_t n = gather(q, iov, &asked);
        int rc = uv_try_write(q->stream, iov, n);
        if (rc == UV_EAGAIN || rc == UV_ENOSYS)
            return 0;
        if (rc < 0)
            return rc;
        consume(q, (size_t)rc);
        if ((size_t)rc < asked)
            return 0; /* the socket buffer is full */
    }
    return 0;
}

/* Hands what is left to one uv_write (libuv writes it as the socket drains). Returns 0 or a libuv error. */
static int start_write(wsg_outq_t *q)
{
    if (q->in_flight > 0 || q->ring.count == 0)
        return 0;
    uv_buf_t iov[MAX_IOV];
    size_t bytes;
    uint32_t n = gather(q, iov, &bytes);
    uv_write_t *req = take_req(q->ctx);
    if (req == NULL)
        return UV_ENOMEM;
    req->data = q;
    int rc = uv_write(req, q->stream, iov, n, on_write_done);
    if (rc < 0) {
        give_req(q->ctx, req);
        return rc;
    }
    q->req = req;
    q->in_flight = n;
    q->in_flight_bytes = bytes;
    q->seen_wqs = (uint32_t)uv_stream_get_write_queue_size(q->stream);
    for (uint32_t i = 0; q->ctl != NULL && i < n; i++) {
        int s = pong_slot(q, wsg_msgq_at(&q->ring, i));
        if (s >= 0)
            q->ctl->is_pong_started[s] = true;
    }
    return 0;
}

static void on_write_done(uv_write_t *req, int status)
{
    wsg_outq_t *q = req->data;
    wsg_outq_ctx_t *ctx = q->ctx;
    give_req(ctx, req);
    q->req = NULL;
    uint32_t n = q->in_flight;
    q->queued -= q->in_flight_bytes;
    if (status == 0) {
        WSG_STAT_ADD(ctx->stats, bytes_sent, q->in_flight_bytes);
        q->progress_ms = outq_now(q);
    }
    q->in_flight = 0;
    q->in_flight_bytes = 0;
    q->first_offset = 0;
    pop_front(q, n, status == 0 ? ctx->stats : NULL);
    if (status == UV_ECANCELED || q->is_stopped)
        return; /* the connection is going away */
    if (status < 0) {
        ctx->owner->on_error(q, status);
        return;
    }
    outq_schedule_flush(q);
}

static void flush(wsg_outq_t *q)
{
    wsg_outq_ctx_t *ctx = q->ctx;
    q->is_flush_queued = false;
    if (q->is_stopped)
        return;
    if (q->error != 0) {
        int err = q->error;
        q->error = 0;
        ctx->owner->on_error(q, err);
        return;
    }
    if (q->verdict != WSG_OUTQ_FINE) {
        outq_give_up(q);
        if (q->is_stopped)
            return;
    }
    int rc = outq_write_some(q);
    if (rc == 0)
        rc = start_write(q);
    if (rc < 0) {
        ctx->owner->on_error(q, rc);
        return;
    }
    if (wsg_outq_pending(q) == 0) {
        outq_backlog_unlink(q);
        q->over_soft_since = 0;
    } else {
        backlog_link(q); /* the sweep watches it until the kernel has taken everything */
        outq_judge_backlog(q);
    }
    if (q->wants_drained && q->ring.count == 0) {
        q->wants_drained = false;
        ctx->owner->on_drained(q);
    }
}

/* ---- the way in ----------------------------------------------------------------------------------- */

wsg_outq_result_t wsg_outq_send(wsg_outq_t *q, wsg_msg_t *msg)
{
    if (q->is_closed || q->is_given_up || q->is_stopped || q->verdict != WSG_OUTQ_FINE || q->error != 0)
        return WSG_OUTQ_REFUSED;
    bool is_data = msg->kind == WSG_MSG_DATA;
    if (is_data) {
        wsg_outq_result_t admitted = outq_admit(q, msg);
        if (admitted != WSG_OUTQ_QUEUED)
            return admitted;
    }
    if (insert(q, q->ring.count, msg) < 0) {
        wsg_outq_fail(q, -ENOMEM);
        return WSG_OUTQ_REFUSED;
    }
    if (is_data) {
        WSG_STAT_ADD(q->ctx->stats, deliveries, msg->nmsgs);
        if (outq_is_oversize(q, msg))
            q->has_oversize = true;
    }
    return WSG_OUTQ_QUEUED;
}

void wsg_outq_pong(wsg_outq_t *q, const uint8_t *payload, size_t len)
{
    if (q->is_closed || q->is_stopped || len > 125)
        return;
    struct outq_ctl *ctl = take_ctl(q);
    if (ctl == NULL) {
        wsg_outq_fail(q, -ENOMEM);
        return;
    }
    /* A pong still waiting answers the latest ping instead (RFC 6455 5.5.3 allows answering only it). */
    for (int s = 0; s < 2; s++) {
        wsg_msg_t *pong = &ctl->pong[s];
        if (pong->refcount > 1 && !ctl->is_pong_started[s]) {
            q->queued -= pong->frame_len;
            pong->frame_len = (size_t)wsg_frame_write_control(ctl->pong_frame[s], WSG_OP_PONG, payload, len);
            q->queued += pong->frame_len;
            return;
        }
    }
    for (int s = 0; s < 2; s++) {
        wsg_msg_t *pong = &ctl->pong[s];
        if (pong->refcount != 1)
            continue;
        pong->frame_len = (size_t)wsg_frame_write_control(ctl->pong_frame[s], WSG_OP_PONG, payload, len);
        ctl->is_pong_started[s] = false;
        /* Ahead of the data that has not started to go out: a pong is answered as soon as practical. */
        uint32_t pos = q->in_flight > 0 ? q->in_flight : (q->first_offset > 0 ? 1 : 0);
        if (insert(q, pos, pong) < 0)
            wsg_outq_fail(q, -ENOMEM);
        return;
    }
    /* Both pongs are already on their way; a later ping will be answered. */
    release_ctl_if_idle(q);
}

void wsg_outq_close(wsg_outq_t *q, uint16_t code, const char *reason)
{
    if (q->is_stopped || q->is_closed)
        return;
    struct outq_ctl *ctl = take_ctl(q);
    if (ctl == NULL) {
        wsg_outq_fail(q, -ENOMEM);
        return;
    }
    ctl->close.frame_len = wsg_frame_write_close(ctl->close_frame, code, reason, reason ? strlen(reason) : 0);
    q->is_closed = true;
    if (insert(q, q->ring.count, &ctl->close) < 0)
        wsg_outq_fail(q, -ENOMEM);
}

typedef struct drop_tally {
    wsg_outq_t *q;
    uint32_t messages;
} drop_tally_t;

/* Drops a data message that has not started to go out, accounting for it. */
static bool drop_data(const wsg_msg_t *msg, void *arg)
{
    drop_tally_t *tally = arg;
    if (msg->kind != WSG_MSG_DATA)
        return false; /* control frames and HTTP responses stay */
    if (outq_is_oversize(tally->q, msg))
        tally->q->has_oversize = false;
    tally->q->queued -= msg->frame_len;
    tally->messages += msg->nmsgs;
    return true;
}

uint32_t wsg_outq_drop_unsent(wsg_outq_t *q)
{
    uint32_t started = q->in_flight;
    if (started == 0 && q->first_offset > 0)
        started = 1;
    drop_tally_t tally = {q, 0};
    wsg_msgq_remove_if(&q->ring, started, drop_data, &tally);
    return tally.messages;
}

void wsg_outq_notify_drained(wsg_outq_t *q)
{
    q->wants_drained = true;
    outq_schedule_flush(q);
}

void wsg_outq_fail(wsg_outq_t *q, int err)
{
    if (q->error == 0)
        q->error = (int16_t)(err < INT16_MIN ? -ENOMEM : err);
    outq_schedule_flush(q);
}

void wsg_outq_stop(wsg_outq_t *q)
{
    q->is_stopped = true;
    outq_backlog_unlink(q);
}

/* ---- lifecycle and loop hooks ---------------------------------------------------------------------- */

void wsg_outq_ctx_init(wsg_outq_ctx_t *ctx, uv_loop_t *loop, const wsg_outq_policy_t *policy,
                       const wsg_outq_owner_t *owner, wsg_stats_t *stats)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->loop = loop;
    ctx->policy = *policy;
    ctx->owner = owner;
    ctx->stats = stats;
}

void wsg_outq_ctx_dispose(wsg_outq_ctx_t *ctx)
{
    while (ctx->spare_reqs != NULL) {
        uv_write_t *req = ctx->spare_reqs;
        ctx->spare_reqs = req->data;
        free(req);
    }
    while (ctx->spare_ctls != NULL) {
        struct outq_ctl *ctl = ctx->spare_ctls;
        ctx->spare_ctls = ctl->next_spare;
        free(ctl);
    }
    ctx->nspare_reqs = ctx->nspare_ctls = 0;
}

void wsg_outq_init(wsg_outq_t *q, wsg_outq_ctx_t *ctx, uv_stream_t *stream, uint64_t id)
{
    memset(q, 0, sizeof *q);
    q->ctx = ctx;
    q->stream = stream;
    q->id = id;
    ctx->noutputs++;
}

void wsg_outq_dispose(wsg_outq_t *q)
{
    assert(q->req == NULL); /* the stream's close ran every write callback first */
    wsg_outq_stop(q);
    q->ctx->noutputs--;
    if (q->is_flush_queued) {
        wsg_outq_t **pp = &q->ctx->flush_head;
        while (*pp != NULL && *pp != q)
            pp = &(*pp)->flush_next;
        if (*pp == q)
            *pp = q->flush_next;
        q->is_flush_queued = false;
    }
    wsg_msgq_dispose(&q->ring);
    if (q->ctl != NULL)
        give_ctl(q);
}

void wsg_outq_flush_all(wsg_outq_ctx_t *ctx)
{
    /* A flush may schedule more (a close frame after a verdict): loop until the list is empty. */
    while (ctx->flush_head != NULL) {
        wsg_outq_t *q = ctx->flush_head;
        ctx->flush_head = q->flush_next;
        q->flush_next = NULL;
        flush(q);
    }
}
