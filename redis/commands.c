/* Command link: formatted commands, a bounded backlog for outages, resend of commands lost in flight. */
#include "commands.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_slot.h"

enum req_kind { REQ_PUBLISH, REQ_GET, REQ_ARGV };

/* One logical request: one or two Redis commands formatted back to back in `wire`. The bytes are kept until
 * the last reply so that a request lost with the connection can be sent again. */
typedef struct cmd_req {
    struct cmd_req *next;
    wsg_redis_cmd_t *owner;
    enum req_kind kind;
    uint8_t n_commands;  /* 1 or 2 */
    uint8_t replies_got; /* replies received so far on the current connection */
    uint8_t sent_from;   /* index of the first command sent on the current connection */
    uint16_t slot;       /* Redis Cluster: the key's slot */
    bool is_once;        /* not sent again after a loss: completes with -ECONNRESET instead */
    int status;
    char err[96];
    union {
        wsg_redis_done_cb done;
        wsg_redis_get_cb get;
        wsg_redis_reply_done_cb reply;
    } cb;
    void *arg;
    size_t split; /* byte offset of the second command in `wire` (after the first's NUL) */
    size_t wire_len;
    char *wire;
} cmd_req_t;

typedef struct req_fifo {
    cmd_req_t *head, *tail;
    size_t count;
} req_fifo_t;

struct wsg_redis_cmd {
    wsg_redis_link_t *link;       /* one server (or Sentinel's master), or NULL with a cluster */
    wsg_redis_cluster_t *cluster; /* borrowed: Redis Cluster, commands routed by slot */
    bool is_sharded;              /* cluster: client messages go out with SPUBLISH */
    uv_timer_t close_timer;       /* cluster: the close completes from the loop */
    const wsg_redis_cmd_handler_t *handler;
    void *arg;
    size_t max_backlog;
    req_fifo_t backlog; /* waiting for a connection */
    req_fifo_t lost;    /* in flight when the connection dropped, in order, to send first */
    size_t in_flight;   /* requests sent whose last reply has not arrived */
    bool is_closing;
    void (*close_cb)(void *);
    void *close_arg;
};

static void fifo_push(req_fifo_t *f, cmd_req_t *r)
{
    r->next = NULL;
    if (f->tail != NULL)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
    f->count++;
}

static cmd_req_t *fifo_pop(req_fifo_t *f)
{
    cmd_req_t *r = f->head;
    if (r != NULL) {
        f->head = r->next;
        if (f->head == NULL)
            f->tail = NULL;
        f->count--;
    }
    return r;
}

/* Moves every element of `front` before those of `back`, leaving `front` empty. */
static void fifo_prepend(req_fifo_t *back, req_fifo_t *front)
{
    if (front->head == NULL)
        return;
    front->tail->next = back->head;
    if (back->tail == NULL)
        back->tail = front->tail;
    back->head = front->head;
    back->count += front->count;
    *front = (req_fifo_t){0};
}

static void complete(cmd_req_t *r, const redisReply *last)
{
    if (r->kind == REQ_ARGV) {
        r->cb.reply(r->arg, r->status, last);
    } else if (r->kind == REQ_GET) {
        if (r->status == 0 && last != NULL && last->type == REDIS_REPLY_STRING)
            r->cb.get(r->arg, 0, last->str, last->len);
        else
            r->cb.get(r->arg, r->status, NULL, 0);
    } else {
        r->cb.done(r->arg, r->status, r->status == -EIO ? r->err : NULL);
    }
    free(r->wire);
    free(r);
}

static int send_req(wsg_redis_cmd_t *cmd, cmd_req_t *r);
static void maybe_closed(wsg_redis_cmd_t *cmd);

static void on_reply(void *privdata, const redisReply *reply)
{
    cmd_req_t *r = privdata;
    wsg_redis_cmd_t *cmd = r->owner;
    if (reply == NULL) {
        /* The connection is gone. Only the first callback of a request acts: the request goes to the lost
         * list to be sent again from the first command that has no reply yet. */
        if (r->replies_got == 0xff)
            return;
        r->sent_from = (uint8_t)(r->sent_from + r->replies_got);
        r->replies_got = 0xff; /* marks "already moved"; reset when sent again */
        cmd->in_flight--;
        if (cmd->is_closing || r->is_once) {
            r->status = cmd->is_closing ? -ECANCELED : -ECONNRESET;
            complete(r, NULL);
            maybe_closed(cmd);
        } else {
            fifo_push(&cmd->lost, r);
        }
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && r->status == 0) {
        r->status = -EIO;
        snprintf(r->err, sizeof r->err, "%s", reply->str);
    }
    r->replies_got++;
    if (r->sent_from + r->replies_got < r->n_commands)
        return;
    cmd->in_flight--;
    complete(r, reply);
    maybe_closed(cmd);
}

/* Sends a command through the cluster (which waits for the slot owner's connection itself). */
static int cluster_send(wsg_redis_cmd_t *cmd, cmd_req_t *r, const char *bytes, size_t len)
{
    return wsg_redis_cluster_send(cmd->cluster, r->slot, bytes, len, on_reply, r);
}

static int send_req_cluster(wsg_redis_cmd_t *cmd, cmd_req_t *r)
{
    r->replies_got = 0;
    int rc;
    if (r->sent_from == 0 && r->n_commands == 2) {
        if ((rc = cluster_send(cmd, r, r->wire, r->split - 1)) < 0)
            return rc;
        if (cluster_send(cmd, r, r->wire + r->split, r->wire_len - r->split) < 0) {
            /* Out of memory or full: the first reply completes the request as far as it went. */
            r->n_commands = 1;
        }
    } else {
        size_t off = r->sent_from == 0 ? 0 : r->split;
        if ((rc = cluster_send(cmd, r, r->wire + off, r->wire_len - off)) < 0)
            return rc;
    }
    cmd->in_flight++;
    return 0;
}

static int send_req(wsg_redis_cmd_t *cmd, cmd_req_t *r)
{
    if (cmd->cluster != NULL)
        return send_req_cluster(cmd, r);
    if (!wsg_redis_link_is_ready(cmd->link))
        return -ENOTCONN;
    r->replies_got = 0;
    if (r->sent_from == 0 && r->n_commands == 2) {
        if (wsg_redis_link_send(cmd->link, r->wire, r->split - 1, on_reply, r) < 0)
            return -ENOTCONN;
        if (wsg_redis_link_send(cmd->link, r->wire + r->split, r->wire_len - r->split, on_reply, r) < 0) {
            /* Out of memory: the connection is dropped, so that the request is sent again whole. */
            wsg_redis_link_reset(cmd->link, "out of memory");
        }
    } else {
        size_t off = r->sent_from == 0 ? 0 : r->split;
        if (wsg_redis_link_send(cmd->link, r->wire + off, r->wire_len - off, on_reply, r) < 0)
            return -ENOTCONN;
    }
    cmd->in_flight++;
    return 0;
}

static void flush_waiting(wsg_redis_cmd_t *cmd)
{
    fifo_prepend(&cmd->backlog, &cmd->lost);
    while (cmd->backlog.head != NULL) {
        cmd_req_t *r = cmd->backlog.head;
        if (send_req(cmd, r) < 0)
            return;
        fifo_pop(&cmd->backlog);
    }
}

static void on_link_ready(wsg_redis_link_t *link, void *arg)
{
    wsg_redis_cmd_t *cmd = arg;
    flush_waiting(cmd);
    if (cmd->handler->on_ready != NULL)
        cmd->handler->on_ready(cmd->arg);
}

static void on_link_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    wsg_redis_cmd_t *cmd = arg;
    if (!cmd->is_closing && cmd->handler->on_down != NULL)
        cmd->handler->on_down(cmd->arg, why, retry_ms);
}

static const wsg_redis_link_handler_t link_handler = {
    .on_ready = on_link_ready,
    .on_down = on_link_down,
};

wsg_redis_cmd_t *wsg_redis_cmd_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                   const wsg_redis_link_options_t *opts,
                                   const wsg_redis_cmd_handler_t *handler, void *arg, size_t max_backlog)
{
    wsg_redis_cmd_t *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return NULL;
    cmd->handler = handler;
    cmd->arg = arg;
    cmd->max_backlog = max_backlog;
    wsg_redis_link_options_t link_opts = *opts;
    link_opts.select_db = true;
    cmd->link = wsg_redis_link_new(loop, addr, &link_opts, &link_handler, cmd);
    if (cmd->link == NULL) {
        free(cmd);
        return NULL;
    }
    return cmd;
}

static void on_cluster_ready(void *arg)
{
    wsg_redis_cmd_t *cmd = arg;
    flush_waiting(cmd);
    if (cmd->handler->on_ready != NULL)
        cmd->handler->on_ready(cmd->arg);
}

static void on_cluster_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_redis_cmd_t *cmd = arg;
    if (!cmd->is_closing && cmd->handler->on_down != NULL)
        cmd->handler->on_down(cmd->arg, why, retry_ms);
}

/* A new map: requests waiting for one can go (to the connections the cluster waits for). */
static void on_cluster_map(void *arg)
{
    flush_waiting(arg);
}

static const wsg_redis_cluster_handler_t cluster_handler = {
    .on_ready = on_cluster_ready,
    .on_down = on_cluster_down,
    .on_map = on_cluster_map,
};

wsg_redis_cmd_t *wsg_redis_cmd_new_cluster(uv_loop_t *loop, wsg_redis_cluster_t *cluster, bool is_sharded,
                                           const wsg_redis_cmd_handler_t *handler, void *arg,
                                           size_t max_backlog)
{
    wsg_redis_cmd_t *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return NULL;
    cmd->cluster = cluster;
    cmd->is_sharded = is_sharded;
    cmd->handler = handler;
    cmd->arg = arg;
    cmd->max_backlog = max_backlog;
    if (wsg_redis_cluster_observe(cluster, &cluster_handler, cmd) < 0) {
        free(cmd);
        return NULL;
    }
    wsg_redis_cluster_set_max_waiting(cluster, max_backlog);
    uv_timer_init(loop, &cmd->close_timer);
    cmd->close_timer.data = cmd;
    return cmd;
}

static int submit(wsg_redis_cmd_t *cmd, cmd_req_t *r)
{
    /* Keep order: while anything waits, new requests queue behind it. */
    if (cmd->backlog.head == NULL && cmd->lost.head == NULL && send_req(cmd, r) == 0)
        return 0;
    if (cmd->backlog.count + cmd->lost.count >= cmd->max_backlog) {
        free(r->wire);
        free(r);
        return -ENOBUFS;
    }
    fifo_push(&cmd->backlog, r);
    return 0;
}

static cmd_req_t *req_new(wsg_redis_cmd_t *cmd, enum req_kind kind, void *arg)
{
    cmd_req_t *r = calloc(1, sizeof(*r));
    if (r != NULL) {
        r->owner = cmd;
        r->kind = kind;
        r->arg = arg;
    }
    return r;
}

/* Submits `r`, a request of one command formatted into r->wire (`len` bytes, or < 0: out of memory). */
static int submit_one(wsg_redis_cmd_t *cmd, cmd_req_t *r, int len)
{
    if (len < 0) {
        free(r);
        return -ENOMEM;
    }
    r->n_commands = 1;
    r->wire_len = (size_t)len;
    r->split = (size_t)len + 1;
    return submit(cmd, r);
}

int wsg_redis_cmd_publish(wsg_redis_cmd_t *cmd, const char *channel, size_t channel_len, const void *payload,
                          size_t payload_len, uint32_t expire_s, wsg_redis_done_cb cb, void *arg)
{
    if (cmd->is_closing)
        return -ECANCELED;
    cmd_req_t *r = req_new(cmd, REQ_PUBLISH, arg);
    if (r == NULL)
        return -ENOMEM;
    r->cb.done = cb;
    char *publish = NULL, *setex = NULL;
    /* Sharded pub/sub: the message goes to the channel's shard, where its subscribers are. */
    int publish_len = redisFormatCommand(&publish, cmd->is_sharded ? "SPUBLISH %b %b" : "PUBLISH %b %b",
                                         channel, channel_len, payload, payload_len);
    r->slot = wsg_cluster_key_slot(channel, channel_len);
    int setex_len = 0;
    if (expire_s > 0)
        setex_len = redisFormatCommand(&setex, "SETEX %b %u %b", channel, channel_len, (unsigned)expire_s,
                                       payload, payload_len);
    if (publish_len < 0 || setex_len < 0) {
        free(publish);
        free(setex);
        free(r);
        return -ENOMEM;
    }
    if (setex != NULL) {
        /* Both commands in one buffer; the second starts after the first's NUL terminator. */
        char *both = realloc(publish, (size_t)publish_len + 1 + (size_t)setex_len + 1);
        if (both == NULL) {
            free(publish);
            free(setex);
            free(r);
            return -ENOMEM;
        }
        memcpy(both + publish_len + 1, setex, (size_t)setex_len + 1);
        free(setex);
        publish = both;
        r->n_commands = 2;
    } else {
        r->n_commands = 1;
    }
    r->wire = publish;
    r->split = (size_t)publish_len + 1;
    r->wire_len = setex_len > 0 ? r->split + (size_t)setex_len : (size_t)publish_len;
    return submit(cmd, r);
}

int wsg_redis_cmd_get(wsg_redis_cmd_t *cmd, const char *key, size_t key_len, wsg_redis_get_cb cb, void *arg)
{
    if (cmd->is_closing)
        return -ECANCELED;
    cmd_req_t *r = req_new(cmd, REQ_GET, arg);
    if (r == NULL)
        return -ENOMEM;
    r->cb.get = cb;
    r->slot = wsg_cluster_key_slot(key, key_len);
    return submit_one(cmd, r, redisFormatCommand(&r->wire, "GET %b", key, key_len));
}

int wsg_redis_cmd_argv(wsg_redis_cmd_t *cmd, int argc, const char **argv, const size_t *argvlen,
                       int key_index, bool is_once, wsg_redis_reply_done_cb cb, void *arg)
{
    if (cmd->is_closing)
        return -ECANCELED;
    cmd_req_t *r = req_new(cmd, REQ_ARGV, arg);
    if (r == NULL)
        return -ENOMEM;
    r->cb.reply = cb;
    r->is_once = is_once;
    if (key_index >= 0 && key_index < argc)
        r->slot = wsg_cluster_key_slot(argv[key_index], argvlen[key_index]);
    return submit_one(cmd, r, redisFormatCommandArgv(&r->wire, argc, argv, argvlen));
}

size_t wsg_redis_cmd_pending(const wsg_redis_cmd_t *cmd)
{
    return cmd->in_flight + cmd->backlog.count + cmd->lost.count;
}

bool wsg_redis_cmd_is_ready(const wsg_redis_cmd_t *cmd)
{
    return cmd->cluster != NULL ? wsg_redis_cluster_is_ready(cmd->cluster)
                                : wsg_redis_link_is_ready(cmd->link);
}

void wsg_redis_cmd_reset(wsg_redis_cmd_t *cmd, const char *why)
{
    if (cmd->cluster != NULL)
        wsg_redis_cluster_reset_all(cmd->cluster, why);
    else
        wsg_redis_link_reset(cmd->link, why);
}

static void on_close_timer_closed(uv_handle_t *handle)
{
    wsg_redis_cmd_t *cmd = handle->data;
    void (*cb)(void *) = cmd->close_cb;
    void *cb_arg = cmd->close_arg;
    free(cmd);
    if (cb != NULL)
        cb(cb_arg);
}

/* Cluster: the close is over once no request is in the cluster's hands. */
static void maybe_closed(wsg_redis_cmd_t *cmd)
{
    if (cmd->cluster != NULL && cmd->is_closing && cmd->in_flight == 0 &&
        !uv_is_closing((uv_handle_t *)&cmd->close_timer))
        uv_close((uv_handle_t *)&cmd->close_timer, on_close_timer_closed);
}

static void on_link_closed(void *arg)
{
    wsg_redis_cmd_t *cmd = arg;
    void (*cb)(void *) = cmd->close_cb;
    void *cb_arg = cmd->close_arg;
    /* Requests lost with the final connection were completed in on_reply (is_closing). */
    free(cmd);
    if (cb != NULL)
        cb(cb_arg);
}

void wsg_redis_cmd_close(wsg_redis_cmd_t *cmd, void (*cb)(void *cb_arg), void *cb_arg)
{
    cmd->is_closing = true;
    cmd->close_cb = cb;
    cmd->close_arg = cb_arg;
    fifo_prepend(&cmd->backlog, &cmd->lost);
    cmd_req_t *r;
    while ((r = fifo_pop(&cmd->backlog)) != NULL) {
        r->status = -ECANCELED;
        complete(r, NULL);
    }
    if (cmd->cluster != NULL) {
        maybe_closed(cmd); /* otherwise when the last reply (or the cluster's close) comes */
        return;
    }
    wsg_redis_link_close(cmd->link, on_link_closed, cmd);
}
