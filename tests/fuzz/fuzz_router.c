/* Fuzz target: the router driven by a sequence of events decoded from the input: clients joining, leaving and
 * closing, Redis messages and read ends, SUBSCRIBE/UNSUBSCRIBE confirmations (expected or not), answers to
 * the stored-message GETs (a value, none, an error), link losses and reconnects, and own publications; and on
 * the stream channel "s:a": entries added, delivered by the stream reader, and the answers to the catch-up
 * reads (XREVRANGE, XRANGE pages, XINFO) of joining clients, some resuming with since. Redis calls are
 * recorded fakes (tests/unit/fake_redis.c); client outputs only queue (no socket, never flushed), so what
 * each client was sent can be read back from its queue. Invariants: no sanitizer report or leak; a client's
 * pending GETs never exceed its channels, and nothing is held once they are done; every client gets each
 * channel's live messages (and each stream entry) in publish order, none twice. */
#include <stdio.h>
#include <string.h>

#include "fake_redis.h"
#include "fuzz.h"
#include "log.h"
#include "router.h"

#define NCLIENTS 4
#define NCHANNELS 4

static const char *const channel_names[NCHANNELS] = {"broadcast:a", "broadcast:b", "group:g:a", "s:a"};
#define STREAM_CHANNEL 3 /* "s:a" is a stream channel: its entry ids are n-0, its payloads L3<n> */
#define PAGE_MAX 64

typedef struct client {
    wsg_outq_t out;
    wsg_router_client_t rc;
    bool is_joined, is_closing;
} client_t;

static void on_verdict(wsg_outq_t *q, wsg_outq_verdict_t verdict) {}

static void on_error(wsg_outq_t *q, int err) {}

static void on_drained(wsg_outq_t *q) {}

static const wsg_outq_owner_t owner = {on_verdict, on_error, on_drained};

static void on_up(void *arg) {}

static void on_down(void *arg, const char *why, uint64_t retry_ms) {}

static void on_other(void *arg, const char *channel, size_t channel_len, const uint8_t *payload, size_t len)
{
}

static const wsg_router_observer_t observer = {on_up, on_down, on_other};
static int dummy_link;

/* Answers the oldest stream command still waiting, from a stream holding entries 1..written. */
static void answer_stream_command(unsigned written, uint8_t arg)
{
    for (int g = 0; g < fake_ncalls; g++) {
        fake_call_t *call = &fake_calls[g];
        wsg_stream_entries_cb entries_cb = call->entries_cb;
        wsg_stream_info_cb info_cb = call->info_cb;
        if (entries_cb == NULL && info_cb == NULL)
            continue;
        call->entries_cb = NULL;
        call->info_cb = NULL;
        if (arg % 11 == 0) { /* an error (the connection closing, WRONGTYPE) */
            if (entries_cb != NULL)
                entries_cb(call->get_arg, -5, "ERR fuzz", NULL, 0);
            else
                info_cb(call->get_arg, -5, "ERR fuzz", NULL);
            return;
        }
        if (info_cb != NULL) {
            wsg_stream_info_t info = {.exists = written > 0, .length = written, .first_id = {1, 0}};
            info_cb(call->get_arg, 0, NULL, &info);
            return;
        }
        unsigned from = 1, to = written;
        unsigned long long after = 0;
        if (sscanf(call->text, "XRANGE s:a (%llu-0", &after) == 1)
            from = (unsigned)after + 1;
        else
            from = written; /* XREVRANGE + - COUNT 1: the newest */
        if (to >= from + PAGE_MAX)
            to = from + PAGE_MAX - 1 - arg % 4; /* a full page, or a shorter one */
        wsg_stream_entry_t entries[PAGE_MAX];
        char payloads[PAGE_MAX][16];
        size_t n = 0;
        for (unsigned id = from; id >= 1 && id <= to && n < PAGE_MAX; id++, n++) {
            snprintf(payloads[n], sizeof payloads[n], "L%d%06u", STREAM_CHANNEL, id);
            entries[n] = (wsg_stream_entry_t){{id, 0}, (const uint8_t *)payloads[n], strlen(payloads[n])};
        }
        entries_cb(call->get_arg, 0, NULL, entries, n);
        return;
    }
}

/* Live payloads are "L<channel digit><6-digit sequence>"; stored values start with 'S'. */
static void live_payload(char out[16], int channel, unsigned seq)
{
    snprintf(out, 16, "L%d%06u", channel, seq);
}

/* Checks the frames queued for `c`: per channel, live sequence numbers strictly increase. */
static void check_order(const client_t *c)
{
    long last[NCHANNELS];
    for (int i = 0; i < NCHANNELS; i++)
        last[i] = -1;
    for (uint32_t i = 0; i < c->out.ring.count; i++) {
        const wsg_msg_t *m = wsg_msgq_at(&c->out.ring, i);
        if (m->kind != WSG_MSG_DATA)
            continue;
        size_t at = 0;
        while (at < m->frame_len) { /* a run holds several frames */
            const uint8_t *f = m->frame + at;
            size_t plen = f[1] & 0x7f, h = 2;
            if (plen == 126) {
                plen = ((size_t)f[2] << 8) | f[3];
                h = 4;
            }
            FUZZ_ASSERT(plen <= 125 || h == 4);
            const char *p = (const char *)f + h;
            if (plen == 8 && p[0] == 'L') {
                int ch = p[1] - '0';
                long seq = 0;
                for (int d = 2; d < 8; d++)
                    seq = seq * 10 + (p[d] - '0');
                FUZZ_ASSERT(ch >= 0 && ch < NCHANNELS);
                FUZZ_ASSERT(seq > last[ch]); /* in publish order, never twice */
                last[ch] = seq;
            }
            at += h + plen;
        }
    }
}

static void check_client(const client_t *c)
{
    FUZZ_ASSERT(c->rc.gets_pending <= c->rc.nsubs);
    if (c->rc.gets_pending == 0)
        FUZZ_ASSERT(c->rc.held_count == 0);
    check_order(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    wsg_stats_t stats;
    wsg_outq_ctx_t out_ctx;
    wsg_router_t router;
    client_t clients[NCLIENTS];
    unsigned seq[NCHANNELS] = {0};
    wsg_log_threshold = WSG_LOG_ERROR; /* the router's info lines are not under test */
    memset(&stats, 0, sizeof stats);
    memset(clients, 0, sizeof clients);
    fake_redis_reset();
    uv_loop_init(&loop);
    /* Limits no sequence reaches: the router, not the policy, is under test. */
    wsg_outq_policy_t policy = {.soft = 1u << 30, .hard = 1u << 30, .grace_ms = 1000};
    wsg_outq_ctx_init(&out_ctx, &loop, &policy, &owner, &stats);
    FUZZ_ASSERT(wsg_router_init(&router, policy.soft, &stats, &observer, NULL) == 0);
    wsg_router_set_redis(&router, (wsg_redis_sub_t *)&dummy_link, (wsg_redis_cmd_t *)&dummy_link);
    wsg_router_set_streams(&router, &loop, &out_ctx, wsg_str_c("s:*"), (wsg_redis_streams_t *)&dummy_link, 8,
                           WSG_STR_NULL);
    unsigned written = 0, read = 0; /* entries 1..written are in the stream; the reader delivered 1..read */
    char since[48];
    int follow_seen = -1; /* the last FOLLOW the fake reader has seen */
    for (int k = 0; k < NCLIENTS; k++)
        wsg_outq_init(&clients[k].out, &out_ctx, NULL, (uint64_t)k + 1);
    const wsg_redis_sub_handler_t *link = &wsg_router_sub_handler;
    link->on_ready(&router);

    for (size_t i = 0; i + 1 < size && i < 4096; i += 2) {
        uint8_t op = data[i] % 16, arg = data[i + 1];
        client_t *c = &clients[arg % NCLIENTS];
        int ch = (arg >> 2) % NCHANNELS;
        const char *name = channel_names[ch];
        char payload[16];
        switch (op) {
        case 0: /* a client joins the channels of a mask */
            if (!c->is_joined && !c->is_closing) {
                wsg_str_t subs[NCHANNELS], pubs[1] = {wsg_str_c(name)};
                uint8_t n = 0;
                for (int b = 0; b < NCHANNELS; b++)
                    if (arg & (0x10 << b))
                        subs[n++] = wsg_str_c(channel_names[b]);
                c->rc.out = &c->out;
                c->rc.is_echo = (arg & 2) != 0;
                c->rc.is_v1 = (arg & 0x81) == 0x81; /* envelopes: not read back by check_order */
                snprintf(since, sizeof since, "since=%u-0", written > 0 ? arg % (written + 1) : 0);
                c->is_joined = wsg_router_join(&router, &c->rc, subs, n, pubs, 1,
                                               (arg & 1) ? wsg_str_c(since) : WSG_STR_NULL) == 0;
            }
            break;
        case 1: /* its close begins: no more deliveries */
            if (c->is_joined) {
                wsg_router_unsubscribe(&router, &c->rc);
                c->is_closing = true;
            }
            break;
        case 2: /* it is gone; a later join is a new connection, with an empty output */
            wsg_router_leave(&router, &c->rc);
            c->is_joined = false;
            c->is_closing = false;
            wsg_outq_dispose(&c->out);
            memset(&c->rc, 0, sizeof c->rc);
            wsg_outq_init(&c->out, &out_ctx, NULL, (uint64_t)(c - clients) + 1);
            break;
        case 3: /* a live message (on the stream channel: an entry added) */
            if (ch == STREAM_CHANNEL) {
                written++;
                break;
            }
            live_payload(payload, ch, seq[ch]++);
            link->on_message(&router, name, strlen(name), (const uint8_t *)payload, strlen(payload));
            break;
        case 4:
            link->on_read_done(&router);
            break;
        case 5:
            link->on_subscribed(&router, name, strlen(name));
            break;
        case 6:
            link->on_unsubscribed(&router, name, strlen(name));
            break;
        case 7: /* the oldest GET still waiting is answered: a value, no value, or an error */
            for (int g = 0; g < fake_ncalls; g++) {
                if (fake_calls[g].get_cb == NULL)
                    continue;
                snprintf(payload, sizeof payload, "S%d", arg);
                fake_redis_answer_get(g, arg % 5 == 0 ? -5 : 0, arg % 3 == 0 ? NULL : payload);
                break;
            }
            break;
        case 8:
            link->on_down(&router, "lost", 100);
            break;
        case 9:
            link->on_ready(&router);
            break;
        case 10: /* the client publishes what will be the channel's next live message */
            if (c->is_joined && !c->is_closing) {
                live_payload(payload, ch, seq[ch]);
                const wsg_channel_t *target = wsg_channels_find(&router.channels, name, strlen(name));
                if (target != NULL)
                    wsg_router_note_publication(&router, &c->rc, target, payload, strlen(payload));
            }
            break;
        case 12: /* the stream reader delivers the next entries, after where it was told to start */
            for (int g = follow_seen + 1; g < fake_ncalls; g++) {
                unsigned long long from = 0;
                if (sscanf(fake_calls[g].text, "FOLLOW s:a %llu-0", &from) == 1) {
                    read = (unsigned)from;
                    follow_seen = g;
                }
            }
            for (unsigned k = 0; k <= arg % 3 && read < written; k++) {
                read++;
                live_payload(payload, STREAM_CHANNEL, read);
                wsg_router_streams_handler.on_entry(&router, "s:a", 3, (wsg_stream_id_t){read, 0},
                                                    (const uint8_t *)payload, strlen(payload));
            }
            if (arg & 1)
                wsg_router_streams_handler.on_batch_done(&router);
            break;
        case 13:
            answer_stream_command(written, arg);
            break;
        case 15: /* the client's output was drained (as its connection reports it): paced replays go on */
            if (c->is_joined)
                wsg_router_output_drained(&router, &c->rc);
            break;
        case 14: /* the stream reader's connection comes and goes: it keeps its place */
            if (arg & 1)
                wsg_router_streams_handler.on_down(&router, "lost", 100);
            else
                wsg_router_streams_handler.on_ready(&router);
            break;
        default: /* a message on a channel nobody uses */
            link->on_message(&router, "wsgate:probe:1:0", 16, (const uint8_t *)"1", 1);
            break;
        }
        if (fake_ncalls > FAKE_REDIS_MAX - 16)
            break; /* the recorder is nearly full: stop rather than lose GETs */
        for (int k = 0; k < NCLIENTS; k++)
            check_client(&clients[k]);
    }
    wsg_router_end_run(&router);
    for (int k = 0; k < NCLIENTS; k++) {
        check_client(&clients[k]);
        wsg_router_leave(&router, &clients[k].rc);
    }
    for (int g = 0; g < fake_ncalls; g++) { /* GETs and reads still out: their replies find nobody */
        fake_redis_answer_get(g, -125, NULL);
        if (fake_calls[g].entries_cb != NULL)
            fake_calls[g].entries_cb(fake_calls[g].get_arg, -125, NULL, NULL, 0);
        if (fake_calls[g].info_cb != NULL)
            fake_calls[g].info_cb(fake_calls[g].get_arg, -125, NULL, NULL);
    }
    for (int k = 0; k < NCLIENTS; k++)
        wsg_outq_dispose(&clients[k].out);
    wsg_router_dispose(&router);
    wsg_outq_ctx_dispose(&out_ctx);
    FUZZ_ASSERT(uv_loop_close(&loop) == 0);
    return 0;
}
