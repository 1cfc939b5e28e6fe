/* Unit tests for gateway/router.c without Redis or sockets: the Redis link calls are recorded fakes
 * (fake_redis.c), link events are driven through wsg_router_sub_handler, and each client's output writes into
 * a kernel pipe that the test reads back. */
#include "router.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_redis.h"
#include "test.h"

#define MAX_CLIENTS 4

typedef struct client {
    uv_pipe_t pipe;
    int read_fd;
    wsg_outq_t out;
    wsg_router_client_t rc;
} client_t;

typedef struct world {
    uv_loop_t loop;
    wsg_stats_t stats;
    wsg_outq_ctx_t out_ctx;
    wsg_router_t router;
    client_t clients[MAX_CLIENTS];
    int nclients;
    int other_messages;
} world_t;

static void on_verdict(wsg_outq_t *q, wsg_outq_verdict_t verdict)
{
    abort(); /* these tests never overflow */
}

static void on_error(wsg_outq_t *q, int err)
{
    abort();
}

static world_t *current_world; /* the world of the running test, for on_drained */

/* A paced stream replay goes on once the client's output is drained, as the connection makes it. */
static void on_drained(wsg_outq_t *q)
{
    world_t *w = current_world;
    for (int i = 0; i < w->nclients; i++)
        if (&w->clients[i].out == q)
            wsg_router_output_drained(&w->router, &w->clients[i].rc);
}

static const wsg_outq_owner_t owner = {on_verdict, on_error, on_drained};

static void on_up(void *arg) {}

static void on_down(void *arg, const char *why, uint64_t retry_ms) {}

static void on_other(void *arg, const char *channel, size_t channel_len, const uint8_t *payload, size_t len)
{
    ((world_t *)arg)->other_messages++;
}

static const wsg_router_observer_t observer = {on_up, on_down, on_other};

/* Dummy link handles: the fakes never look at them. */
static int dummy_sub, dummy_cmd;

static void setup(world_t *w)
{
    memset(w, 0, sizeof *w);
    current_world = w;
    fake_redis_reset();
    uv_loop_init(&w->loop);
    wsg_outq_policy_t policy = {.soft = 1 << 20, .hard = 4 << 20, .grace_ms = 1000};
    wsg_outq_ctx_init(&w->out_ctx, &w->loop, &policy, &owner, &w->stats);
    if (wsg_router_init(&w->router, policy.soft, &w->stats, &observer, w) != 0)
        abort();
    wsg_router_set_redis(&w->router, (wsg_redis_sub_t *)&dummy_sub, (wsg_redis_cmd_t *)&dummy_cmd);
    wsg_router_sub_handler.on_ready(&w->router);
}

static client_t *add_client(world_t *w, bool is_echo)
{
    client_t *c = &w->clients[w->nclients++];
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        abort();
    c->read_fd = fds[0];
    uv_pipe_init(&w->loop, &c->pipe, 0);
    uv_pipe_open(&c->pipe, fds[1]);
    wsg_outq_init(&c->out, &w->out_ctx, (uv_stream_t *)&c->pipe, (uint64_t)w->nclients);
    c->rc.out = &c->out;
    c->rc.is_echo = is_echo;
    return c;
}

static int join(world_t *w, client_t *c, const char *a, const char *b)
{
    wsg_str_t subs[2] = {wsg_str_c(a), wsg_str_c(b ? b : "")};
    return wsg_router_join(&w->router, &c->rc, subs, b ? 2 : 1, NULL, 0, WSG_STR_NULL);
}

static void on_client_closed(uv_handle_t *handle)
{
    client_t *c = (client_t *)handle;
    wsg_outq_dispose(&c->out);
}

static void teardown(world_t *w)
{
    for (int i = 0; i < w->nclients; i++) {
        client_t *c = &w->clients[i];
        wsg_router_leave(&w->router, &c->rc);
        wsg_outq_stop(&c->out);
        uv_close((uv_handle_t *)&c->pipe, on_client_closed);
        close(c->read_fd);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    wsg_router_dispose(&w->router);
    wsg_outq_ctx_dispose(&w->out_ctx);
    ASSERT_INT_EQ(uv_loop_close(&w->loop), 0);
}

/* A Redis message on `channel`, as the subscriber link reports it. */
static void message(world_t *w, const char *channel, const char *payload)
{
    wsg_router_sub_handler.on_message(&w->router, channel, strlen(channel), (const uint8_t *)payload,
                                      strlen(payload));
}

static void read_done(world_t *w)
{
    wsg_router_sub_handler.on_read_done(&w->router);
}

static void subscribed(world_t *w, const char *channel)
{
    wsg_router_sub_handler.on_subscribed(&w->router, channel, strlen(channel));
}

/* Brings `channel` to where its members take live messages: confirms its SUBSCRIBE, answers every GET of it
 * with no stored value and confirms the ordering barriers that follow. */
static void settle(world_t *w, const char *channel)
{
    char get[300];
    snprintf(get, sizeof get, "GET %s", channel);
    subscribed(w, channel);
    for (int i = fake_redis_find(0, get); i >= 0; i = fake_redis_find(i + 1, get))
        fake_redis_answer_get(i, 0, NULL);
    const wsg_channel_t *ch = wsg_channels_find(&w->router.channels, channel, strlen(channel));
    while (ch != NULL && ch->is_barrier_in_flight)
        subscribed(w, channel);
}

/* Flushes the outputs and reads what client `c` got: text payloads joined with '|' into `out`. */
static const char *received(world_t *w, client_t *c, char *out, size_t cap)
{
    wsg_outq_flush_all(&w->out_ctx);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    uint8_t buf[65536];
    ssize_t n = read(c->read_fd, buf, sizeof buf);
    size_t len = n > 0 ? (size_t)n : 0, at = 0, used = 0;
    out[0] = '\0';
    while (at + 2 <= len) {
        size_t plen = buf[at + 1] & 0x7f, h = 2;
        if (plen == 126) {
            plen = ((size_t)buf[at + 2] << 8) | buf[at + 3];
            h = 4;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s", used ? "|" : "", (int)plen,
                                 (const char *)buf + at + h);
        at += h + plen;
    }
    return out;
}

static void test_stored_message_comes_before_live_ones(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, true);
    ASSERT_INT_EQ(join(&w, a, "broadcast:x", NULL), 0);
    ASSERT_INT_EQ(fake_redis_find(0, "SUBSCRIBE broadcast:x"), 0);
    subscribed(&w, "broadcast:x");
    int get = fake_redis_find(0, "GET broadcast:x");
    ASSERT_TRUE(get > 0);
    message(&w, "broadcast:x", "live1"); /* published before the GET ran: held */
    read_done(&w);
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    fake_redis_answer_get(get, 0, "stored");
    int barrier = fake_redis_find(get, "SUBSCRIBE broadcast:x");
    ASSERT_TRUE(barrier > get); /* the ordering barrier */
    message(&w, "broadcast:x", "live2");
    read_done(&w);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    subscribed(&w, "broadcast:x"); /* the barrier's confirmation */
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "stored|live1|live2");
    message(&w, "broadcast:x", "live3");
    read_done(&w);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "live3");
    teardown(&w);
}

/* Live messages with other payloads arriving while the GET is out must not overtake the stored value, on
 * any of the client's channels. */
static void test_live_messages_of_other_channels_wait_for_every_stored_message(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, true);
    join(&w, a, "broadcast:x", "broadcast:y");
    subscribed(&w, "broadcast:x");
    subscribed(&w, "broadcast:y");
    int gx = fake_redis_find(0, "GET broadcast:x"), gy = fake_redis_find(0, "GET broadcast:y");
    ASSERT_TRUE(gx >= 0 && gy >= 0);
    fake_redis_answer_get(gx, 0, "sx");
    subscribed(&w, "broadcast:x");
    message(&w, "broadcast:y", "y1");
    message(&w, "broadcast:x", "x1");
    read_done(&w);
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "sx"); /* y's stored value is still out */
    fake_redis_answer_get(gy, 0, NULL);
    subscribed(&w, "broadcast:y");
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "y1|x1");
    teardown(&w);
}

static void test_a_stored_value_already_held_is_not_sent_twice(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, true);
    join(&w, a, "broadcast:x", NULL);
    subscribed(&w, "broadcast:x");
    int get = fake_redis_find(0, "GET broadcast:x");
    message(&w, "broadcast:x", "v"); /* published (and stored) before the GET ran */
    read_done(&w);
    fake_redis_answer_get(get, 0, "v");
    subscribed(&w, "broadcast:x");
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "v");
    teardown(&w);
}

static void test_own_publications_are_filtered_without_echo(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, false), *b = add_client(&w, true);
    join(&w, a, "broadcast:x", NULL);
    join(&w, b, "broadcast:x", NULL);
    settle(&w, "broadcast:x"); /* two barriers: the second GET may have run after the first was sent */
    wsg_channel_t *ch = a->rc.subs[0].channel;
    wsg_router_note_publication(&w.router, &a->rc, ch, "mine", 4);
    message(&w, "broadcast:x", "mine");
    message(&w, "broadcast:x", "other");
    read_done(&w);
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "other");
    ASSERT_STR_EQ(received(&w, b, got, sizeof got), "mine|other");
    teardown(&w);
}

static void test_runs_keep_redis_order_across_channels(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, true);
    join(&w, a, "broadcast:x", "broadcast:y");
    settle(&w, "broadcast:x");
    settle(&w, "broadcast:y");
    message(&w, "broadcast:x", "a");
    message(&w, "broadcast:x", "b");
    message(&w, "broadcast:y", "c");
    message(&w, "broadcast:x", "d");
    read_done(&w);
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "a|b|c|d");
    ASSERT_UINT_EQ(WSG_STAT_GET(&w.stats, deliveries), 4); /* a run counts each message */
    teardown(&w);
}

static void test_a_client_that_leaves_with_its_get_out_is_forgotten(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, true);
    join(&w, a, "broadcast:x", NULL);
    subscribed(&w, "broadcast:x");
    int get = fake_redis_find(0, "GET broadcast:x");
    wsg_router_leave(&w.router, &a->rc);
    ASSERT_TRUE(fake_redis_find(0, "UNSUBSCRIBE broadcast:x") > get);
    fake_redis_answer_get(get, 0, "late"); /* must touch nothing of the client (ASan watches) */
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    wsg_router_sub_handler.on_unsubscribed(&w.router, "broadcast:x", 11);
    ASSERT_UINT_EQ(wsg_router_channel_count(&w.router), 0);
    teardown(&w);
}

static void test_after_a_lost_subscription_the_key_is_read_again(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, true);
    join(&w, a, "broadcast:x", NULL);
    subscribed(&w, "broadcast:x");
    fake_redis_answer_get(fake_redis_find(0, "GET broadcast:x"), 0, "first");
    subscribed(&w, "broadcast:x");
    message(&w, "broadcast:x", "live");
    read_done(&w);
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "first|live");
    wsg_router_sub_handler.on_down(&w.router, "connection lost", 100);
    int mark = fake_ncalls;
    wsg_router_sub_handler.on_ready(&w.router);
    ASSERT_TRUE(fake_redis_find(mark, "SUBSCRIBE broadcast:x") >= mark);
    subscribed(&w, "broadcast:x");
    int reread = fake_redis_find(mark, "GET broadcast:x");
    ASSERT_TRUE(reread > mark);
    fake_redis_answer_get(reread, 0, "missed"); /* stored during the outage */
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "missed");
    wsg_router_sub_handler.on_down(&w.router, "connection lost", 100);
    mark = fake_ncalls;
    wsg_router_sub_handler.on_ready(&w.router);
    subscribed(&w, "broadcast:x");
    fake_redis_answer_get(fake_redis_find(mark, "GET broadcast:x"), 0, "missed"); /* already seen */
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    teardown(&w);
}

/* `a`, a member of broadcast:x, publishes `text`; the subscription is lost before its echo comes, and is made
 * again. Returns the fake call count from before the new subscription (its GET of the key follows it). */
static int publish_then_lose_the_subscription(world_t *w, client_t *a, const char *text,
                                              const wsg_channel_t **ch)
{
    *ch = wsg_channels_find(&w->router.channels, "broadcast:x", 11);
    wsg_router_note_publication(&w->router, &a->rc, *ch, text, strlen(text));
    wsg_router_sub_handler.on_down(&w->router, "connection lost", 100);
    int mark = fake_ncalls;
    wsg_router_sub_handler.on_ready(&w->router);
    subscribed(w, "broadcast:x");
    return mark;
}

/* A client's own message found in the key after an outage (published before the subscription was lost) is
 * not sent back to it without echo; others get it, and the same text from someone else later reaches it. */
static void test_own_message_found_after_an_outage_is_not_echoed(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, false), *b = add_client(&w, true);
    join(&w, a, "broadcast:x", NULL);
    join(&w, b, "broadcast:x", NULL);
    settle(&w, "broadcast:x");
    const wsg_channel_t *ch;
    int mark = publish_then_lose_the_subscription(&w, a, "mine", &ch);
    fake_redis_answer_get(fake_redis_find(mark, "GET broadcast:x"), 0, "mine");
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    ASSERT_STR_EQ(received(&w, b, got, sizeof got), "mine");
    ASSERT_TRUE(wsg_echo_filter_is_empty(&a->rc.echo));
    message(&w, "broadcast:x", "mine");
    read_done(&w);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "mine");
    teardown(&w);
}

/* A publication made after the resubscription is awaited as usual, whether its echo comes before or after
 * the key's answer; a publication lost with the subscription is forgotten after that answer, so a later equal
 * text from someone else reaches the client. */
static void test_echoes_awaited_since_an_outage_are_kept(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, false);
    join(&w, a, "broadcast:x", NULL);
    settle(&w, "broadcast:x");
    const wsg_channel_t *ch;
    int mark = publish_then_lose_the_subscription(&w, a, "lost", &ch);
    wsg_router_note_publication(&w.router, &a->rc, ch, "fresh1", 6);
    wsg_router_note_publication(&w.router, &a->rc, ch, "fresh2", 6);
    message(&w, "broadcast:x", "fresh1"); /* its echo before the key's answer */
    read_done(&w);
    fake_redis_answer_get(fake_redis_find(mark, "GET broadcast:x"), 0, "other"); /* someone else's */
    message(&w, "broadcast:x", "fresh2");                                        /* and after it */
    message(&w, "broadcast:x", "lost"); /* someone else's, equal to the lost one */
    read_done(&w);
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "other|lost");
    ASSERT_TRUE(wsg_echo_filter_is_empty(&a->rc.echo));
    teardown(&w);
}

/* A PUBLISH that Redis ran only after the new subscription (the command connection outlived the subscriber's)
 * comes back live: it is still recognised, without hiding publications noted since. */
static void test_a_publication_made_before_an_outage_may_come_back_live(void)
{
    world_t w;
    setup(&w);
    client_t *a = add_client(&w, false);
    join(&w, a, "broadcast:x", NULL);
    settle(&w, "broadcast:x");
    const wsg_channel_t *ch;
    int mark = publish_then_lose_the_subscription(&w, a, "late", &ch);
    wsg_router_note_publication(&w.router, &a->rc, ch, "next", 4);
    message(&w, "broadcast:x", "late");
    message(&w, "broadcast:x", "next");
    read_done(&w);
    fake_redis_answer_get(fake_redis_find(mark, "GET broadcast:x"), 0, "next");
    char got[512];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    ASSERT_TRUE(wsg_echo_filter_is_empty(&a->rc.echo));
    teardown(&w);
}

static void test_messages_of_channels_without_members_go_to_the_observer(void)
{
    world_t w;
    setup(&w);
    message(&w, "wsgate:probe:1:0", "7");
    read_done(&w);
    ASSERT_INT_EQ(w.other_messages, 1);
    teardown(&w);
}

/* ---- stream channels ------------------------------------------------------------------------------------
 */

static int dummy_reader;

static void setup_streams(world_t *w, uint32_t replay_max)
{
    setup(w);
    wsg_router_set_streams(&w->router, &w->loop, &w->out_ctx, wsg_str_c("s:*"),
                           (wsg_redis_streams_t *)&dummy_reader, replay_max, WSG_STR_NULL);
}

static wsg_stream_id_t sid(uint64_t ms)
{
    return (wsg_stream_id_t){ms, 0};
}

/* The reader delivers entries `from`-0 .. `to`-0 of `key` (payloads "p<ms>-0") in one batch. */
static void entries(world_t *w, const char *key, uint64_t from, uint64_t to)
{
    for (uint64_t ms = from; ms <= to; ms++) {
        char payload[48];
        int n = snprintf(payload, sizeof payload, "p%llu-0", (unsigned long long)ms);
        wsg_router_streams_handler.on_entry(&w->router, key, strlen(key), sid(ms), (const uint8_t *)payload,
                                            (size_t)n);
    }
    wsg_router_streams_handler.on_batch_done(&w->router);
}

static void answer_range(int index, uint64_t from, uint64_t to)
{
    wsg_stream_id_t ids[64];
    size_t n = 0;
    for (uint64_t ms = from; ms <= to && n < 64; ms++)
        ids[n++] = sid(ms);
    fake_redis_answer_entries(index, 0, ids, n);
}

static int join_with(world_t *w, client_t *c, const char *channel, const char *query)
{
    wsg_str_t subs[1] = {wsg_str_c(channel)};
    return wsg_router_join(&w->router, &c->rc, subs, 1, NULL, 0, wsg_str_c(query));
}

/* A resume races the reader: entries the reader delivers while pages are read are neither lost nor sent
 * twice, whichever connection brings them first. */
static void test_a_resume_racing_the_reader_sends_each_entry_once(void)
{
    world_t w;
    setup_streams(&w, 1000);
    client_t *a = add_client(&w, true);
    ASSERT_INT_EQ(join_with(&w, a, "s:a", "since=1-0"), 0);
    int open = fake_redis_find(0, "XREVRANGE s:a");
    ASSERT_TRUE(open >= 0);
    answer_range(open, 3, 3); /* the newest entry when the channel is opened */
    ASSERT_TRUE(fake_redis_find(0, "FOLLOW s:a 3-0") >= 0);
    int info = fake_redis_find(0, "XINFO s:a");
    ASSERT_TRUE(info >= 0);
    fake_redis_answer_info(info, &(wsg_stream_info_t){.exists = true, .length = 3, .first_id = {1, 0}});
    int page = fake_redis_find(0, "XRANGE s:a (1-0");
    ASSERT_TRUE(page >= 0);
    entries(&w, "s:a", 4, 5); /* the reader is ahead of the page */
    char got[1024];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    answer_range(page, 2, 4); /* read before entry 5 was added */
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "p2-0|p3-0|p4-0");
    int next = fake_redis_find(page + 1, "XRANGE s:a (4-0");
    ASSERT_TRUE(next > page);
    answer_range(next, 5, 6); /* 6 is past what the reader delivered: the reader sends it */
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "p5-0");
    entries(&w, "s:a", 6, 7);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "p6-0|p7-0");
    teardown(&w);
}

/* Without since: the newest entry, then live ones, without repeating what the reader brought meanwhile. */
static void test_a_join_gets_the_newest_entry_then_live_ones(void)
{
    world_t w;
    setup_streams(&w, 1000);
    client_t *a = add_client(&w, true), *b = add_client(&w, true);
    ASSERT_INT_EQ(join(&w, a, "s:a", NULL), 0);
    answer_range(fake_redis_find(0, "XREVRANGE s:a"), 5, 5);
    int last = fake_redis_find(1, "XREVRANGE s:a");
    ASSERT_TRUE(last > 0);
    answer_range(last, 5, 5);
    char got[1024];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "p5-0");
    ASSERT_INT_EQ(join(&w, b, "s:a", NULL), 0);
    int last_b = fake_redis_find(last + 1, "XREVRANGE s:a");
    entries(&w, "s:a", 6, 6);
    answer_range(last_b, 6, 6); /* the newest is the one the reader just delivered to a */
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "p6-0");
    ASSERT_STR_EQ(received(&w, b, got, sizeof got), "p6-0");
    entries(&w, "s:a", 7, 7);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "p7-0");
    ASSERT_STR_EQ(received(&w, b, got, sizeof got), "p7-0");
    teardown(&w);
}

/* A resume stops at the replay limit: a wsgate.v1 client is told of the gap, then gets live entries. */
static void test_a_resume_stops_at_the_replay_limit_with_a_gap_notice(void)
{
    world_t w;
    setup_streams(&w, 3);
    client_t *a = add_client(&w, true);
    a->rc.is_v1 = true;
    ASSERT_INT_EQ(join_with(&w, a, "s:a", "since=1-0"), 0);
    answer_range(fake_redis_find(0, "XREVRANGE s:a"), 20, 20);
    fake_redis_answer_info(fake_redis_find(0, "XINFO s:a"),
                           &(wsg_stream_info_t){.exists = true, .length = 20, .first_id = {1, 0}});
    answer_range(fake_redis_find(0, "XRANGE s:a (1-0"), 2, 20);
    char got[2048];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got),
                  "{\"ch\":\"s:a\",\"id\":\"2-0\",\"data\":\"p2-0\"}|"
                  "{\"ch\":\"s:a\",\"id\":\"3-0\",\"data\":\"p3-0\"}|"
                  "{\"ch\":\"s:a\",\"id\":\"4-0\",\"data\":\"p4-0\"}|"
                  "{\"ch\":\"s:a\",\"gap\":true,\"after\":\"4-0\",\"reason\":\"replay_max\"}");
    entries(&w, "s:a", 21, 21);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "{\"ch\":\"s:a\",\"id\":\"21-0\",\"data\":\"p21-0\"}");
    teardown(&w);
}

/* A trimmed stream: a resume older than the oldest entry kept gets a gap notice first. */
static void test_a_resume_into_trimmed_entries_gets_a_gap_notice_first(void)
{
    world_t w;
    setup_streams(&w, 1000);
    client_t *a = add_client(&w, true);
    a->rc.is_v1 = true;
    ASSERT_INT_EQ(join_with(&w, a, "s:a", "since=1-0"), 0);
    answer_range(fake_redis_find(0, "XREVRANGE s:a"), 12, 12);
    fake_redis_answer_info(
        fake_redis_find(0, "XINFO s:a"),
        &(wsg_stream_info_t){.exists = true, .has_removals = true, .length = 3, .first_id = {10, 0}});
    char got[2048];
    /* The replay is paced: its first page is read once the notice has been written. */
    ASSERT_INT_EQ(fake_redis_find(0, "XRANGE s:a (1-0"), -1);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got),
                  "{\"ch\":\"s:a\",\"gap\":true,\"after\":\"1-0\",\"reason\":\"trimmed\"}");
    answer_range(fake_redis_find(0, "XRANGE s:a (1-0"), 10, 12);
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "{\"ch\":\"s:a\",\"id\":\"10-0\",\"data\":\"p10-0\"}|"
                                                    "{\"ch\":\"s:a\",\"id\":\"11-0\",\"data\":\"p11-0\"}|"
                                                    "{\"ch\":\"s:a\",\"id\":\"12-0\",\"data\":\"p12-0\"}");
    teardown(&w);
}

/* A member that leaves with a read in flight is forgotten; the last one out stops the reader's following. */
static void test_leaving_during_a_catch_up_and_unfollowing(void)
{
    world_t w;
    setup_streams(&w, 1000);
    client_t *a = add_client(&w, true);
    ASSERT_INT_EQ(join(&w, a, "s:a", NULL), 0);
    answer_range(fake_redis_find(0, "XREVRANGE s:a"), 5, 5);
    int last = fake_redis_find(1, "XREVRANGE s:a");
    wsg_router_leave(&w.router, &a->rc);
    ASSERT_TRUE(fake_redis_find(0, "UNFOLLOW s:a") >= 0);
    answer_range(last, 5, 5); /* finds no member */
    entries(&w, "s:a", 6, 6); /* no longer followed: ignored */
    char got[256];
    ASSERT_STR_EQ(received(&w, a, got, sizeof got), "");
    ASSERT_INT_EQ(wsg_router_channel_count(&w.router), 0);
    teardown(&w);
}

/* wsgate.v1 clients get pub/sub messages enveloped with a null id; raw clients get the payload. */
static void test_v1_clients_get_pubsub_envelopes(void)
{
    world_t w;
    setup(&w);
    client_t *raw = add_client(&w, true), *v1 = add_client(&w, true);
    v1->rc.is_v1 = true;
    ASSERT_INT_EQ(join(&w, raw, "broadcast:x", NULL), 0);
    ASSERT_INT_EQ(join(&w, v1, "broadcast:x", NULL), 0);
    settle(&w, "broadcast:x");
    message(&w, "broadcast:x", "one");
    message(&w, "broadcast:x", "two");
    read_done(&w);
    char got[1024];
    ASSERT_STR_EQ(received(&w, raw, got, sizeof got), "one|two");
    ASSERT_STR_EQ(received(&w, v1, got, sizeof got), "{\"ch\":\"broadcast:x\",\"id\":null,\"data\":\"one\"}|"
                                                     "{\"ch\":\"broadcast:x\",\"id\":null,\"data\":\"two\"}");
    teardown(&w);
}

/* The next stream read waits while most outputs are congested, 10 ms at a time (and, once so, while a quarter
 * are, for twice the grace); it does not wait for a minority of slow clients, nor for stuck ones. */
static void test_stream_reads_wait_while_most_outputs_are_congested(void)
{
    world_t w;
    setup_streams(&w, 1000);
    add_client(&w, true);
    add_client(&w, true);
    add_client(&w, true);
    ASSERT_INT_EQ(w.out_ctx.noutputs, 3);
    ASSERT_INT_EQ(wsg_router_streams_handler.on_batch_done(&w.router), 0);
    w.out_ctx.nbacklogged = 1; /* one slow client in three: its own business */
    ASSERT_INT_EQ(wsg_router_streams_handler.on_batch_done(&w.router), 0);
    w.out_ctx.nbacklogged = 2; /* most of them */
    for (int i = 0; i < 200; i++)
        ASSERT_INT_EQ(wsg_router_streams_handler.on_batch_done(&w.router), 10);
    w.out_ctx.nstuck =
        1; /* one of them stopped reading: one in three is behind, a quarter, just after most */
    ASSERT_INT_EQ(wsg_router_streams_handler.on_batch_done(&w.router), 10);
    w.out_ctx.nstuck = 2; /* both stopped reading */
    ASSERT_INT_EQ(wsg_router_streams_handler.on_batch_done(&w.router), 0);
    w.out_ctx.nstuck = 0;
    w.out_ctx.nbacklogged = 0;
    ASSERT_INT_EQ(wsg_router_streams_handler.on_batch_done(&w.router), 0);
    teardown(&w);
}

TEST_MAIN("router", TEST_CASE(test_stored_message_comes_before_live_ones),
          TEST_CASE(test_live_messages_of_other_channels_wait_for_every_stored_message),
          TEST_CASE(test_a_stored_value_already_held_is_not_sent_twice),
          TEST_CASE(test_own_publications_are_filtered_without_echo),
          TEST_CASE(test_runs_keep_redis_order_across_channels),
          TEST_CASE(test_a_client_that_leaves_with_its_get_out_is_forgotten),
          TEST_CASE(test_after_a_lost_subscription_the_key_is_read_again),
          TEST_CASE(test_own_message_found_after_an_outage_is_not_echoed),
          TEST_CASE(test_echoes_awaited_since_an_outage_are_kept),
          TEST_CASE(test_a_publication_made_before_an_outage_may_come_back_live),
          TEST_CASE(test_messages_of_channels_without_members_go_to_the_observer),
          TEST_CASE(test_a_resume_racing_the_reader_sends_each_entry_once),
          TEST_CASE(test_a_join_gets_the_newest_entry_then_live_ones),
          TEST_CASE(test_a_resume_stops_at_the_replay_limit_with_a_gap_notice),
          TEST_CASE(test_a_resume_into_trimmed_entries_gets_a_gap_notice_first),
          TEST_CASE(test_leaving_during_a_catch_up_and_unfollowing),
          TEST_CASE(test_v1_clients_get_pubsub_envelopes),
          TEST_CASE(test_stream_reads_wait_while_most_outputs_are_congested))
