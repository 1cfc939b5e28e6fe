/* The write path: shared frames, queued by reference, written with writev, at most one uv_write at a time. */
#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* How many queued frames one write call gathers: a burst of Redis messages leaves many small frames per
 * connection, and one writev of them all is the point of queueing. */
#define MAX_IOV 256

void wsg_msg_frame_data(wsg_msg_t *msg)
{
    if (msg->frame != NULL)
        return;
    uint8_t *payload = wsg_msg_payload(msg);
    enum wsg_opcode op = wsg_utf8_is_valid(payload, msg->payload_len) ? WSG_OP_TEXT : WSG_OP_BINARY;
    size_t hlen = wsg_frame_header_size(msg->payload_len);
    uint8_t *start = payload - hlen;
    wsg_frame_write_header(start, op, true, msg->payload_len);
    msg->frame = start;
    msg->frame_len = hlen + msg->payload_len;
}

wsg_msg_t *wsg_msg_new_control(enum wsg_opcode opcode, const uint8_t *payload, size_t len)
{
    if (len > 125)
        return NULL;
    wsg_msg_t *msg = wsg_msg_new(NULL, WSG_FRAME_CONTROL_MAX - WSG_MSG_HEADROOM, NULL, 0);
    if (msg == NULL)
        return NULL;
    ssize_t n = wsg_frame_write_control(msg->storage, opcode, payload, len);
    msg->frame = msg->storage;
    msg->frame_len = (size_t)n;
    return msg;
}

wsg_msg_t *wsg_msg_new_close(uint16_t code, const char *reason)
{
    wsg_msg_t *msg = wsg_msg_new(NULL, WSG_FRAME_CONTROL_MAX - WSG_MSG_HEADROOM, NULL, 0);
    if (msg == NULL)
        return NULL;
    msg->frame_len = wsg_frame_write_close(msg->storage, code, reason, reason ? strlen(reason) : 0);
    msg->frame = msg->storage;
    return msg;
}

wsg_msg_t *wsg_msg_new_raw(const void *bytes, size_t len)
{
    wsg_msg_t *msg = wsg_msg_new(bytes, len, NULL, 0);
    if (msg == NULL)
        return NULL;
    msg->frame = wsg_msg_payload(msg);
    msg->frame_len = len;
    return msg;
}

static wsg_msg_t *item_at(const wsg_outq_t *q, uint32_t i)
{
    return q->items[(q->head + i) & (q->cap - 1)];
}

int wsg_outq_push(wsg_outq_t *q, wsg_msg_t *msg)
{
    if (q->count == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 4;
        wsg_msg_t **items = malloc(cap * sizeof(*items));
        if (items == NULL)
            return -ENOMEM;
        for (uint32_t i = 0; i < q->count; i++)
            items[i] = item_at(q, i);
        free(q->items);
        q->items = items;
        q->cap = cap;
        q->head = 0;
    }
    q->items[(q->head + q->count) & (q->cap - 1)] = wsg_msg_ref(msg);
    q->count++;
    q->bytes += msg->frame_len;
    return 0;
}

/* Removes `n` fully written items from the front; Redis messages among them count toward the latency
 * histogram (one clock read per call). */
static void pop_front(wsg_outq_t *q, uint32_t n, wsg_stats_t *stats)
{
    /* Messages written together mostly arrived together: count runs of one bucket, not each message. */
    uint64_t now = 0, run_count = 0, run_sum_us = 0;
    unsigned run_bucket = 0;
    for (uint32_t i = 0; i < n; i++) {
        wsg_msg_t *msg = q->items[q->head];
        if (stats != NULL && msg->recv_ns != 0) {
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
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
        wsg_msg_unref(msg);
    }
    if (run_count > 0)
        wsg_stats_add_latency(stats, run_bucket, run_count, run_sum_us);
    if (q->count == 0 && q->cap > 64) {
        /* A burst grew the ring: give the memory back rather than keep it for an idle connection. */
        free(q->items);
        q->items = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

/* Fills `iov` from the queue front; returns how many entries. */
static uint32_t gather(const wsg_outq_t *q, uv_buf_t *iov)
{
    uint32_t n = q->count < MAX_IOV ? q->count : MAX_IOV;
    for (uint32_t i = 0; i < n; i++) {
        const wsg_msg_t *msg = item_at(q, i);
        size_t off = i == 0 ? q->first_offset : 0;
        iov[i] = uv_buf_init((char *)msg->frame + off, (unsigned)(msg->frame_len - off));
    }
    return n;
}

/* Accounts `written` bytes from the front. */
static void consume(wsg_outq_t *q, size_t written, wsg_stats_t *stats)
{
    q->bytes -= written;
    WSG_STAT_ADD(stats, bytes_sent, written);
    uint32_t done = 0;
    while (done < q->count && written > 0) {
        const wsg_msg_t *msg = item_at(q, done);
        size_t left = msg->frame_len - q->first_offset;
        if (written < left) {
            q->first_offset += written;
            break;
        }
        written -= left;
        q->first_offset = 0;
        done++;
    }
    pop_front(q, done, stats);
}

int wsg_outq_flush(wsg_outq_t *q, uv_stream_t *stream, uv_write_t *req, uv_write_cb cb, wsg_stats_t *stats)
{
    uv_buf_t iov[MAX_IOV];
    if (q->in_flight > 0)
        return 0;
    while (q->count > 0) {
        uint32_t n = gather(q, iov);
        int rc = uv_try_write(stream, iov, n);
        if (rc == UV_EAGAIN || rc == UV_ENOSYS)
            break;
        if (rc < 0)
            return rc;
        size_t asked = 0;
        for (uint32_t i = 0; i < n; i++)
            asked += iov[i].len;
        consume(q, (size_t)rc, stats);
        if ((size_t)rc < asked)
            break; /* the socket buffer is full: the rest goes through uv_write */
    }
    if (q->count == 0)
        return 0;
    uint32_t n = gather(q, iov);
    int rc = uv_write(req, stream, iov, n, cb);
    if (rc < 0)
        return rc;
    q->in_flight = n;
    return 1;
}

void wsg_outq_write_done(wsg_outq_t *q, wsg_stats_t *stats)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < q->in_flight; i++) {
        const wsg_msg_t *msg = item_at(q, i);
        bytes += msg->frame_len - (i == 0 ? q->first_offset : 0);
    }
    q->bytes -= bytes;
    if (stats != NULL)
        WSG_STAT_ADD(stats, bytes_sent, bytes);
    q->first_offset = 0;
    uint32_t n = q->in_flight;
    q->in_flight = 0;
    pop_front(q, n, stats);
}

uint32_t wsg_outq_drop_unsent(wsg_outq_t *q)
{
    uint32_t keep = q->in_flight;
    if (keep == 0 && q->first_offset > 0)
        keep = 1;
    uint32_t dropped = 0;
    while (q->count > keep) {
        uint32_t last = (q->head + q->count - 1) & (q->cap - 1);
        q->bytes -= q->items[last]->frame_len;
        dropped += q->items[last]->nmsgs;
        wsg_msg_unref(q->items[last]);
        q->count--;
    }
    return dropped;
}

void wsg_outq_dispose(wsg_outq_t *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        wsg_msg_unref(item_at(q, i));
    free(q->items);
    memset(q, 0, sizeof *q);
}
