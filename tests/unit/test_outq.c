/* Unit tests for gateway/outq.c: the output of one connection, written into a kernel pipe (no socket, no
 * gateway). The pipe's buffer is shrunk to one page, so "what the kernel refused" is exact and the tests can
 * read the bytes back frame by frame. */
#include "outq.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "test.h"

#define SOFT 8192
#define HARD 32768
#define GRACE_MS 100

typedef struct harness {
    uv_loop_t loop;
    uv_pipe_t pipe;
    int read_fd;
    wsg_stats_t stats;
    wsg_outq_ctx_t ctx;
    wsg_outq_t q;
    wsg_outq_t peer; /* another client, idle: q alone is a minority, never "most clients behind" */
    bool has_peer;
    int verdicts, errors, drained;
    wsg_outq_verdict_t last_verdict;
} harness_t;

static harness_t *current;

static void on_verdict(wsg_outq_t *q, wsg_outq_verdict_t verdict)
{
    current->verdicts++;
    current->last_verdict = verdict;
    wsg_outq_close(q, 1008, "slow consumer");
}

static void on_error(wsg_outq_t *q, int err)
{
    current->errors++;
    wsg_outq_stop(q);
}

static void on_drained(wsg_outq_t *q)
{
    current->drained++;
}

static const wsg_outq_owner_t owner = {on_verdict, on_error, on_drained};

static void setup(harness_t *h, bool is_drop, uint64_t stall_ms)
{
    memset(h, 0, sizeof *h);
    current = h;
    signal(SIGPIPE, SIG_IGN); /* as the gateway does: a closed reader is an error return, not a signal */
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0 || fcntl(fds[1], F_SETPIPE_SZ, 4096) < 0)
        abort();
    h->read_fd = fds[0];
    uv_loop_init(&h->loop);
    uv_pipe_init(&h->loop, &h->pipe, 0);
    uv_pipe_open(&h->pipe, fds[1]);
    wsg_outq_policy_t policy = {
        .soft = SOFT, .hard = HARD, .grace_ms = GRACE_MS, .stall_ms = stall_ms, .is_drop = is_drop};
    wsg_outq_ctx_init(&h->ctx, &h->loop, &policy, &owner, &h->stats);
    wsg_outq_init(&h->q, &h->ctx, (uv_stream_t *)&h->pipe, 7);
    wsg_outq_init(&h->peer, &h->ctx, (uv_stream_t *)&h->pipe, 8);
    h->has_peer = true;
}

/* Leaves q as the only client: behind alone, it is most clients. */
static void remove_peer(harness_t *h)
{
    wsg_outq_dispose(&h->peer);
    h->has_peer = false;
}

static void on_pipe_closed(uv_handle_t *handle)
{
    harness_t *h = handle->data;
    wsg_outq_dispose(&h->q);
    if (h->has_peer)
        wsg_outq_dispose(&h->peer);
}

static void teardown(harness_t *h)
{
    h->pipe.data = h;
    uv_close((uv_handle_t *)&h->pipe, on_pipe_closed);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    wsg_outq_ctx_dispose(&h->ctx);
    ASSERT_INT_EQ(uv_loop_close(&h->loop), 0);
    close(h->read_fd);
}

/* Bytes the pipe holds for the reader: what the kernel took. */
static size_t in_pipe(harness_t *h)
{
    int n = 0;
    ioctl(h->read_fd, FIONREAD, &n);
    return (size_t)n;
}

/* Reads everything the pipe holds into `buf` (capacity `cap`), running the loop so that a pending uv_write
 * can go on, until nothing more comes. */
static size_t drain(harness_t *h, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    for (int idle = 0; idle < 3;) {
        ssize_t n = read(h->read_fd, buf + got, cap - got);
        if (n > 0) {
            got += (size_t)n;
            idle = 0;
        } else {
            idle++;
        }
        uv_run(&h->loop, UV_RUN_NOWAIT);
        wsg_outq_flush_all(&h->ctx);
    }
    return got;
}

/* A data message of `len` bytes, all `fill`. */
static wsg_msg_t *data_msg(size_t len, char fill)
{
    char *payload = malloc(len ? len : 1);
    memset(payload, fill, len);
    wsg_msg_t *msg = wsg_msg_new_data(payload, len);
    free(payload);
    return msg;
}

static wsg_outq_result_t send_data(harness_t *h, size_t len, char fill)
{
    wsg_msg_t *msg = data_msg(len, fill);
    wsg_outq_result_t r = wsg_outq_send(&h->q, msg);
    wsg_msg_unref(msg);
    return r;
}

/* Parses server frames in `buf`; calls back with each frame's opcode and payload. Returns the frame count,
 * or -1 when the bytes do not end at a frame boundary. */
static int each_frame(const uint8_t *buf, size_t len, void (*fn)(void *, int, const uint8_t *, size_t),
                      void *arg)
{
    size_t at = 0;
    int frames = 0;
    while (at < len) {
        if (len - at < 2)
            return -1;
        int op = buf[at] & 0x0f;
        size_t plen = buf[at + 1] & 0x7f, h = 2;
        if (plen == 126) {
            plen = ((size_t)buf[at + 2] << 8) | buf[at + 3];
            h = 4;
        } else if (plen == 127) {
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | buf[at + 2 + i];
            h = 10;
        }
        if (len - at < h + plen)
            return -1;
        if (fn != NULL)
            fn(arg, op, buf + at + h, plen);
        at += h + plen;
        frames++;
    }
    return frames;
}

static void test_writes_at_once_when_the_kernel_takes_it(void)
{
    harness_t h;
    setup(&h, false, 0);
    ASSERT_INT_EQ(send_data(&h, 100, 'a'), WSG_OUTQ_QUEUED);
    ASSERT_INT_EQ(send_data(&h, 200, 'b'), WSG_OUTQ_QUEUED);
    ASSERT_UINT_EQ(wsg_outq_pending(&h.q), 302 + 4);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_UINT_EQ(wsg_outq_pending(&h.q), 0);
    ASSERT_UINT_EQ(in_pipe(&h), 306);
    ASSERT_UINT_EQ(WSG_STAT_GET(&h.stats, deliveries), 2);
    ASSERT_UINT_EQ(WSG_STAT_GET(&h.stats, bytes_sent), 306);
    ASSERT_UINT_EQ(h.q.ring.count, 0);
    teardown(&h);
}

/* Pending is what the kernel refused: with a one-page pipe, every byte is either in the pipe or pending. */
static void test_pending_counts_only_what_the_kernel_refused(void)
{
    harness_t h;
    setup(&h, false, 0);
    size_t total = 0;
    for (int i = 0; i < 5; i++) {
        ASSERT_INT_EQ(send_data(&h, 1000, 'x'), WSG_OUTQ_QUEUED);
        total += 1004;
    }
    wsg_outq_flush_all(&h.ctx);
    ASSERT_TRUE(in_pipe(&h) > 0);
    ASSERT_TRUE(wsg_outq_pending(&h.q) > 0);
    ASSERT_UINT_EQ(wsg_outq_pending(&h.q) + in_pipe(&h), total);
    ASSERT_TRUE(h.q.in_flight > 0); /* the rest waits in a uv_write */
    uint8_t buf[8192];
    size_t got = drain(&h, buf, sizeof buf);
    ASSERT_UINT_EQ(got, total);
    ASSERT_INT_EQ(each_frame(buf, got, NULL, NULL), 5);
    ASSERT_UINT_EQ(wsg_outq_pending(&h.q), 0);
    ASSERT_INT_EQ(h.verdicts, 0);
    teardown(&h);
}

/* A burst bigger than the soft limit, sent to a client that reads, is offered to the kernel before it is
 * judged: no verdict. */
static void test_a_burst_to_a_reading_client_is_not_judged_on_what_was_queued(void)
{
    harness_t h;
    setup(&h, false, 0);
    uint8_t buf[65536];
    size_t got = 0;
    for (int i = 0; i < 40; i++) { /* 40 x 1 KiB: five times the soft limit, read as it goes */
        ASSERT_INT_EQ(send_data(&h, 1020, 'r'), WSG_OUTQ_QUEUED);
        ssize_t n = read(h.read_fd, buf + got, sizeof buf - got);
        if (n > 0)
            got += (size_t)n;
    }
    got += drain(&h, buf + got, sizeof buf - got);
    ASSERT_INT_EQ(h.verdicts, 0);
    ASSERT_INT_EQ(each_frame(buf, got, NULL, NULL), 40);
    teardown(&h);
}

static void test_over_the_hard_limit_is_a_verdict_at_once(void)
{
    harness_t h;
    setup(&h, false, 0);
    wsg_outq_result_t r = WSG_OUTQ_QUEUED;
    int sent = 0;
    while (r == WSG_OUTQ_QUEUED && sent < 100) {
        r = send_data(&h, 2000, 'h');
        sent++;
    }
    ASSERT_INT_EQ(r, WSG_OUTQ_REFUSED);
    ASSERT_TRUE(wsg_outq_pending(&h.q) <= HARD);
    ASSERT_TRUE(wsg_outq_pending(&h.q) + 2004 > HARD);
    ASSERT_INT_EQ(h.verdicts, 0); /* carried out at the flush, never inside send */
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 1);
    ASSERT_INT_EQ(h.last_verdict, WSG_OUTQ_SLOW_HARD);
    ASSERT_UINT_EQ(WSG_STAT_GET(&h.stats, slow_consumer_closes), 1);
    uint64_t dropped = WSG_STAT_GET(&h.stats, slow_consumer_drops);
    ASSERT_TRUE(dropped > 0);
    ASSERT_INT_EQ(send_data(&h, 10, 'z'), WSG_OUTQ_REFUSED); /* nothing after the verdict */
    /* What reaches the reader: whole data frames that had started, then the close frame, nothing after. */
    uint8_t *buf = malloc(1 << 20);
    size_t got = drain(&h, buf, 1 << 20);
    int frames = each_frame(buf, got, NULL, NULL);
    ASSERT_TRUE(frames >= 2);
    ASSERT_UINT_EQ((uint64_t)frames - 1 + dropped,
                   (uint64_t)sent - 1);  /* every queued message: sent or dropped */
    ASSERT_UINT_EQ(buf[got - 17], 0x88); /* close frame: 0x88, length 15, 1008, "slow consumer" */
    ASSERT_MEM_EQ(buf + got - 15, "\x03\xf0slow consumer", 15);
    free(buf);
    teardown(&h);
}

static void test_over_the_soft_limit_for_the_grace_is_a_verdict(void)
{
    harness_t h;
    setup(&h, false, 0);
    for (int i = 0; i < 7; i++) /* about 14 KiB: over soft, under hard */
        ASSERT_INT_EQ(send_data(&h, 2000, 's'), WSG_OUTQ_QUEUED);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_TRUE(wsg_outq_pending(&h.q) > SOFT);
    wsg_outq_sweep(&h.ctx); /* within the grace */
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 0);
    usleep((GRACE_MS + 20) * 1000);
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx); /* no traffic: the sweep finds it */
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 1);
    ASSERT_INT_EQ(h.last_verdict, WSG_OUTQ_SLOW_SOFT);
    teardown(&h);
}

/* A client that dips below the soft limit has had a break: the grace starts again. */
static void test_a_break_below_the_soft_limit_restarts_the_grace(void)
{
    harness_t h;
    setup(&h, false, 0);
    for (int i = 0; i < 7; i++)
        send_data(&h, 2000, 's');
    wsg_outq_flush_all(&h.ctx);
    wsg_outq_sweep(&h.ctx);
    usleep((GRACE_MS / 2) * 1000);
    uint8_t buf[32768];
    drain(&h, buf, sizeof buf); /* the client reads everything */
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx);
    for (int i = 0; i < 7; i++)
        send_data(&h, 2000, 's');
    wsg_outq_flush_all(&h.ctx);
    usleep((GRACE_MS / 2 + 10) * 1000);
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 0);
    teardown(&h);
}

static void test_drop_mode_skips_whole_messages_and_counts_them(void)
{
    harness_t h;
    setup(&h, true, 0);
    int queued = 0, dropped = 0;
    for (int i = 0; i < 100; i++) {
        wsg_outq_result_t r = send_data(&h, 1000, (char)('a' + i % 26));
        queued += r == WSG_OUTQ_QUEUED;
        dropped += r == WSG_OUTQ_DROPPED;
        wsg_outq_flush_all(&h.ctx);
    }
    ASSERT_TRUE(dropped > 0);
    ASSERT_INT_EQ(queued + dropped, 100);
    ASSERT_UINT_EQ(WSG_STAT_GET(&h.stats, slow_consumer_drops), (uint64_t)dropped);
    ASSERT_INT_EQ(h.verdicts, 0);
    uint8_t *buf = malloc(1 << 20);
    size_t got = drain(&h, buf, 1 << 20);
    ASSERT_INT_EQ(each_frame(buf, got, NULL, NULL), queued); /* received + dropped = sent */
    free(buf);
    teardown(&h);
}

static void test_an_oversize_message_goes_to_a_drained_client_and_is_not_counted(void)
{
    harness_t h;
    setup(&h, false, 0);
    ASSERT_INT_EQ(send_data(&h, 3 * HARD, 'O'), WSG_OUTQ_QUEUED); /* larger than the hard limit */
    wsg_outq_flush_all(&h.ctx);
    ASSERT_TRUE(wsg_outq_pending(&h.q) > HARD);
    for (int i = 0; i < 3; i++) /* small messages behind it are judged on their own bytes */
        ASSERT_INT_EQ(send_data(&h, 1000, 'b'), WSG_OUTQ_QUEUED);
    ASSERT_INT_EQ(send_data(&h, SOFT + 1, 'X'), WSG_OUTQ_SKIPPED); /* another one while output is pending */
    ASSERT_UINT_EQ(WSG_STAT_GET(&h.stats, oversize_skips), 1);
    wsg_outq_flush_all(&h.ctx);
    wsg_outq_sweep(&h.ctx);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 0);
    uint8_t *buf = malloc(1 << 20);
    size_t got = drain(&h, buf, 1 << 20);
    ASSERT_INT_EQ(each_frame(buf, got, NULL, NULL), 4);
    ASSERT_INT_EQ(h.verdicts, 0);
    ASSERT_INT_EQ(send_data(&h, SOFT + 1, 'Y'), WSG_OUTQ_QUEUED); /* drained again: it goes */
    free(buf);
    teardown(&h);
}

/* Many pings from a client that does not read: at most two pongs wait, and the last one answers the latest.
 */
typedef struct pongs {
    int count;
    char last[8];
} pongs_t;

static void collect_pong(void *arg, int op, const uint8_t *payload, size_t len)
{
    pongs_t *p = arg;
    if (op != 0x0a || len >= sizeof p->last)
        return;
    p->count++;
    memcpy(p->last, payload, len);
    p->last[len] = '\0';
}

static void test_pongs_coalesce(void)
{
    harness_t h;
    setup(&h, false, 0);
    for (int i = 0; i < 6; i++) /* fill the pipe and leave some pending */
        send_data(&h, 1000, 'd');
    wsg_outq_flush_all(&h.ctx);
    size_t before = wsg_outq_pending(&h.q);
    for (int i = 0; i < 10000; i++) {
        char text[8];
        int n = snprintf(text, sizeof text, "%d", i);
        wsg_outq_pong(&h.q, (const uint8_t *)text, (size_t)n);
        wsg_outq_flush_all(&h.ctx);
    }
    ASSERT_TRUE(wsg_outq_pending(&h.q) <= before + 2 * WSG_FRAME_CONTROL_MAX);
    ASSERT_TRUE(h.q.ring.count <= 8);
    uint8_t buf[32768];
    size_t got = drain(&h, buf, sizeof buf);
    pongs_t p = {0};
    ASSERT_TRUE(each_frame(buf, got, collect_pong, &p) > 0);
    ASSERT_TRUE(p.count >= 1 && p.count <= 2);
    ASSERT_STR_EQ(p.last, "9999");
    ASSERT_TRUE(h.q.ctl == NULL); /* the control block went back once its frames were written */
    teardown(&h);
}

static void test_close_is_last_and_drained_is_reported(void)
{
    harness_t h;
    setup(&h, false, 0);
    send_data(&h, 10, 'a');
    wsg_outq_close(&h.q, 1000, NULL);
    ASSERT_INT_EQ(send_data(&h, 10, 'b'), WSG_OUTQ_REFUSED);
    wsg_outq_pong(&h.q, (const uint8_t *)"p", 1); /* no pong after a close frame */
    wsg_outq_notify_drained(&h.q);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.drained, 1);
    uint8_t buf[64];
    size_t got = drain(&h, buf, sizeof buf);
    ASSERT_UINT_EQ(got, 12 + 4);
    ASSERT_MEM_EQ(buf + 12, "\x88\x02\x03\xe8", 4);
    teardown(&h);
}

static void test_output_that_makes_no_progress_is_stalled(void)
{
    harness_t h;
    setup(&h, false, 100);
    for (int i = 0; i < 5; i++)
        send_data(&h, 1000, 'd');
    wsg_outq_flush_all(&h.ctx);
    wsg_outq_sweep(&h.ctx);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 0);
    usleep(130 * 1000);
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 1);
    ASSERT_INT_EQ(h.last_verdict, WSG_OUTQ_STALLED);
    teardown(&h);
}

/* Congestion (most outputs behind) counts outputs the kernel still takes bytes from: one that took nothing
 * for twice the grace is stuck, left to the policy, and holds no source back. */
static void test_congestion_counts_outputs_behind_not_stuck_ones(void)
{
    harness_t h;
    setup(&h, false, 0);
    remove_peer(&h);
    ASSERT_FALSE(wsg_outq_ctx_is_congested(&h.ctx));
    for (int i = 0; i < 3; i++) /* 6 KB into a 4 KiB pipe: behind, under the soft limit */
        send_data(&h, 2000, 'c');
    wsg_outq_flush_all(&h.ctx);
    ASSERT_TRUE(wsg_outq_pending(&h.q) > 0);
    ASSERT_TRUE(wsg_outq_ctx_is_congested(&h.ctx));
    wsg_outq_sweep(&h.ctx);
    ASSERT_TRUE(wsg_outq_ctx_is_congested(&h.ctx)); /* not stuck yet */
    usleep((2 * GRACE_MS + 30) * 1000);
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx);
    ASSERT_FALSE(wsg_outq_ctx_is_congested(&h.ctx)); /* took nothing for twice the grace */
    uint8_t buf[4096];
    ASSERT_TRUE(read(h.read_fd, buf, sizeof buf) > 0); /* the client reads what the pipe holds */
    uv_run(&h.loop, UV_RUN_NOWAIT);
    send_data(&h, 3000, 'c'); /* and more comes */
    wsg_outq_flush_all(&h.ctx);
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx);
    ASSERT_TRUE(wsg_outq_pending(&h.q) > 0);
    ASSERT_TRUE(wsg_outq_ctx_is_congested(&h.ctx)); /* behind, but moving */
    ASSERT_INT_EQ(h.verdicts, 0);
    teardown(&h);
}

/* While most clients are behind (the sources hold their reads), one that still reads is not cut by the soft
 * limit; its grace starts again when the congestion ends. One that reads nothing is cut as usual. */
static void test_the_soft_limit_waits_while_most_clients_are_behind(void)
{
    harness_t h;
    setup(&h, false, 0);
    remove_peer(&h);
    for (int i = 0; i < 7; i++) /* about 14 KiB: over soft, under hard */
        send_data(&h, 2000, 's');
    wsg_outq_flush_all(&h.ctx);
    ASSERT_TRUE(wsg_outq_ctx_is_congested(&h.ctx));
    wsg_outq_sweep(&h.ctx);
    usleep((GRACE_MS + 30) * 1000);
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx); /* over the soft limit for the grace, but behind with everyone, and not stuck */
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 0);
    usleep((GRACE_MS + 30) * 1000); /* 2 x grace + 60 ms without progress: stuck, its grace ran out */
    uv_update_time(&h.loop);
    wsg_outq_sweep(&h.ctx);
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.verdicts, 1);
    ASSERT_INT_EQ(h.last_verdict, WSG_OUTQ_SLOW_SOFT);
    teardown(&h);
}

static void test_a_write_error_reaches_the_owner(void)
{
    harness_t h;
    setup(&h, false, 0);
    close(h.read_fd);
    h.read_fd = open("/dev/null", O_RDONLY);
    send_data(&h, 10, 'e');
    wsg_outq_flush_all(&h.ctx);
    ASSERT_INT_EQ(h.errors, 1);
    teardown(&h);
}

TEST_MAIN("outq", TEST_CASE(test_writes_at_once_when_the_kernel_takes_it),
          TEST_CASE(test_pending_counts_only_what_the_kernel_refused),
          TEST_CASE(test_a_burst_to_a_reading_client_is_not_judged_on_what_was_queued),
          TEST_CASE(test_over_the_hard_limit_is_a_verdict_at_once),
          TEST_CASE(test_over_the_soft_limit_for_the_grace_is_a_verdict),
          TEST_CASE(test_a_break_below_the_soft_limit_restarts_the_grace),
          TEST_CASE(test_drop_mode_skips_whole_messages_and_counts_them),
          TEST_CASE(test_an_oversize_message_goes_to_a_drained_client_and_is_not_counted),
          TEST_CASE(test_pongs_coalesce), TEST_CASE(test_close_is_last_and_drained_is_reported),
          TEST_CASE(test_output_that_makes_no_progress_is_stalled),
          TEST_CASE(test_congestion_counts_outputs_behind_not_stuck_ones),
          TEST_CASE(test_the_soft_limit_waits_while_most_clients_are_behind),
          TEST_CASE(test_a_write_error_reaches_the_owner))
