/* Subscriber link: SUBSCRIBE/UNSUBSCRIBE on one pub/sub connection, messages handed on as bytes. */
#include "subscriber.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "sharded.h"

struct wsg_redis_sub {
    wsg_redis_link_t *link;       /* one server, Sentinel's master, or any node of a cluster (classic) */
    wsg_redis_sharded_t *sharded; /* or a cluster in sharded mode */
    wsg_redis_cluster_t *cluster; /* borrowed, with a cluster */
    uv_loop_t *loop;
    const wsg_redis_sub_handler_t *handler;
    void *arg;
    bool is_closing;
    uint32_t holds; /* reads held at the handler's request (wsg_redis_sub_holds) */
    void (*close_cb)(void *);
    void *close_arg;
};

static bool is_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING;
}

/* A message or a confirmation; the link has checked that it is an array whose first element is a string. */
static void on_link_push(wsg_redis_link_t *link, void *arg, const redisReply *reply)
{
    wsg_redis_sub_t *sub = arg;
    if (sub->is_closing || reply->elements < 3 || !is_str(reply->element[1]))
        return;
    const redisReply *kind = reply->element[0];
    const redisReply *chan = reply->element[1];
    if (kind->len == 7 && memcmp(kind->str, "message", 7) == 0) {
        const redisReply *payload = reply->element[2];
        if (!is_str(payload))
            return;
        sub->handler->on_message(sub->arg, chan->str, chan->len, (const uint8_t *)payload->str, payload->len);
    } else if (kind->len == 9 && memcmp(kind->str, "subscribe", 9) == 0) {
        sub->handler->on_subscribed(sub->arg, chan->str, chan->len);
    } else if (kind->len == 11 && memcmp(kind->str, "unsubscribe", 11) == 0) {
        sub->handler->on_unsubscribed(sub->arg, chan->str, chan->len);
    }
}

static void on_link_ready(wsg_redis_link_t *link, void *arg)
{
    wsg_redis_sub_t *sub = arg;
    sub->handler->on_ready(sub->arg);
}

static void on_link_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    wsg_redis_sub_t *sub = arg;
    if (!sub->is_closing)
        sub->handler->on_down(sub->arg, why, retry_ms);
}

static void on_link_read_done(wsg_redis_link_t *link, void *arg)
{
    wsg_redis_sub_t *sub = arg;
    if (!sub->is_closing && sub->handler->on_read_done != NULL)
        sub->handler->on_read_done(sub->arg);
}

static uint64_t on_link_read_hold(wsg_redis_link_t *link, void *arg)
{
    wsg_redis_sub_t *sub = arg;
    if (sub->is_closing || sub->handler->read_hold_ms == NULL)
        return 0;
    uint64_t hold_ms = sub->handler->read_hold_ms(sub->arg);
    sub->holds += hold_ms > 0;
    return hold_ms;
}

static const wsg_redis_link_handler_t link_handler = {
    .on_ready = on_link_ready,
    .on_down = on_link_down,
    .on_read_done = on_link_read_done,
    .read_hold_ms = on_link_read_hold,
    .on_push = on_link_push,
};

wsg_redis_sub_t *wsg_redis_sub_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                   const wsg_redis_link_options_t *opts,
                                   const wsg_redis_sub_handler_t *handler, void *arg)
{
    wsg_redis_sub_t *sub = calloc(1, sizeof(*sub));
    if (sub == NULL)
        return NULL;
    sub->loop = loop;
    sub->handler = handler;
    sub->arg = arg;
    wsg_redis_link_options_t link_opts = *opts;
    link_opts.select_db = false; /* pub/sub ignores the database */
    link_opts.is_pubsub = true;
    sub->link = wsg_redis_link_new(loop, addr, &link_opts, &link_handler, sub);
    if (sub->link == NULL) {
        free(sub);
        return NULL;
    }
    return sub;
}

static int send_argv(wsg_redis_sub_t *sub, const char *verb, size_t verb_len, const char *const *channels,
                     const size_t *lens, size_t n)
{
    if (!wsg_redis_link_is_ready(sub->link))
        return -ENOTCONN;
    if (n == 0)
        return -EINVAL;
    const char *stack_argv[33];
    size_t stack_lens[33];
    const char **argv = stack_argv;
    size_t *argvlen = stack_lens;
    if (n + 1 > 33) {
        argv = malloc((n + 1) * sizeof(*argv));
        argvlen = malloc((n + 1) * sizeof(*argvlen));
        if (argv == NULL || argvlen == NULL) {
            free(argv);
            free(argvlen);
            return -ENOMEM;
        }
    }
    argv[0] = verb;
    argvlen[0] = verb_len;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = channels[i];
        argvlen[i + 1] = lens[i];
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, (int)(n + 1), argv, argvlen);
    if (argv != stack_argv) {
        free(argv);
        free(argvlen);
    }
    if (len < 0)
        return -ENOMEM;
    /* An error answer (an ACL that forbids the channel) leaves it unconfirmed: the router's barrier keeps
     * waiting and the probe finds the link wedged. */
    int rc = wsg_redis_link_send_pubsub(sub->link, cmd, (size_t)len, (unsigned)n, NULL, NULL);
    free(cmd);
    return rc;
}

static void on_link_closed(void *arg);

/* Classic pub/sub on a cluster: a message published on any node reaches every node, so the subscriber
 * connects to any of them, taking the next one on each attempt. */
static void next_cluster_node(void *arg, char *host, size_t host_cap, uint16_t *port)
{
    wsg_redis_sub_t *sub = arg;
    wsg_redis_cluster_next_node(sub->cluster, host, host_cap, port);
}

static void on_sharded_closed(void *arg)
{
    on_link_closed(arg);
}

wsg_redis_sub_t *wsg_redis_sub_new_cluster(uv_loop_t *loop, wsg_redis_cluster_t *cluster, bool is_sharded,
                                           const wsg_redis_link_options_t *opts,
                                           const wsg_redis_sub_handler_t *handler, void *arg)
{
    wsg_redis_sub_t *sub = calloc(1, sizeof(*sub));
    if (sub == NULL)
        return NULL;
    sub->loop = loop;
    sub->handler = handler;
    sub->arg = arg;
    sub->cluster = cluster;
    if (is_sharded) {
        sub->sharded = wsg_redis_sharded_new(loop, cluster, opts, handler, arg);
    } else {
        wsg_redis_link_options_t link_opts = *opts;
        link_opts.select_db = false;
        link_opts.is_pubsub = true;
        link_opts.next_target = next_cluster_node;
        link_opts.target_arg = sub;
        sub->link = wsg_redis_link_new(loop, wsg_redis_cluster_addr(cluster), &link_opts, &link_handler, sub);
    }
    if (sub->link == NULL && sub->sharded == NULL) {
        free(sub);
        return NULL;
    }
    return sub;
}

int wsg_redis_sub_subscribe(wsg_redis_sub_t *sub, const char *const *channels, const size_t *lens, size_t n)
{
    if (sub->sharded != NULL)
        return n == 0 ? -EINVAL : wsg_redis_sharded_subscribe(sub->sharded, channels, lens, n);
    return send_argv(sub, "SUBSCRIBE", 9, channels, lens, n);
}

int wsg_redis_sub_unsubscribe(wsg_redis_sub_t *sub, const char *channel, size_t len)
{
    if (sub->sharded != NULL)
        return wsg_redis_sharded_unsubscribe(sub->sharded, channel, len);
    return send_argv(sub, "UNSUBSCRIBE", 11, &channel, &len, 1);
}

uint32_t wsg_redis_sub_holds(const wsg_redis_sub_t *sub)
{
    return sub->sharded != NULL ? wsg_redis_sharded_holds(sub->sharded) : sub->holds;
}

bool wsg_redis_sub_is_ready(const wsg_redis_sub_t *sub)
{
    if (sub->sharded != NULL)
        return wsg_redis_sharded_is_ready(sub->sharded);
    return wsg_redis_link_is_ready(sub->link);
}

bool wsg_redis_sub_was_closed_by_server(const wsg_redis_sub_t *sub)
{
    if (sub->sharded != NULL)
        return false; /* losses there are per master, reported channel by channel */
    return wsg_redis_link_was_closed_by_server(sub->link);
}

void wsg_redis_sub_reset(wsg_redis_sub_t *sub, const char *why)
{
    if (sub->sharded != NULL) {
        wsg_redis_sharded_reset(sub->sharded, why);
        return;
    }
    wsg_redis_link_reset(sub->link, why);
}

static void on_link_closed(void *arg)
{
    wsg_redis_sub_t *sub = arg;
    void (*cb)(void *) = sub->close_cb;
    void *cb_arg = sub->close_arg;
    free(sub);
    if (cb != NULL)
        cb(cb_arg);
}

void wsg_redis_sub_close(wsg_redis_sub_t *sub, void (*cb)(void *cb_arg), void *cb_arg)
{
    sub->is_closing = true;
    sub->close_cb = cb;
    sub->close_arg = cb_arg;
    if (sub->sharded != NULL)
        wsg_redis_sharded_close(sub->sharded, on_sharded_closed, sub);
    else
        wsg_redis_link_close(sub->link, on_link_closed, sub);
}
