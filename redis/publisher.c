/* Publishing for the command line: one link (redis/link.c) on a private libuv loop, run until each step is
 * done, so the command reaches Redis the way the gateway does: TCP, unix socket or TLS, Sentinel, AUTH and
 * SELECT. */
#include "publisher.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_slot.h"
#include "link.h"

/* The answer to one command. */
typedef struct answer {
    bool has_come;
    bool is_lost;
    int type;
    long long integer;
    char text[256];
} answer_t;

/* How long one command may wait for its answer once connected. */
#define ANSWER_TIMEOUT_MS 10000

struct wsg_publisher {
    uv_loop_t loop;
    uv_timer_t timer;             /* bounds the wait for an answer */
    wsg_redis_link_t *link;       /* one server (or Sentinel's master) */
    wsg_redis_cluster_t *cluster; /* or a cluster: commands go to their channel's master */
    bool is_sharded;              /* SPUBLISH instead of PUBLISH */
    wsg_tls_t *tls;
    bool is_ready;
    bool is_down; /* the connection failed or was lost */
    bool is_closed;
    bool is_timed_out;
    answer_t answer; /* of the command in flight (its callback may come after a timeout: not on the stack) */
    char why[640];
};

static void on_ready(wsg_redis_link_t *link, void *arg)
{
    ((wsg_publisher_t *)arg)->is_ready = true;
}

static void on_down(wsg_redis_link_t *link, void *arg, const char *why, uint64_t retry_ms)
{
    wsg_publisher_t *pub = arg;
    pub->is_ready = false;
    pub->is_down = true;
    snprintf(pub->why, sizeof pub->why, "%s", why);
}

static const wsg_redis_link_handler_t handler = {.on_ready = on_ready, .on_down = on_down};

static void on_cluster_ready(void *arg)
{
    ((wsg_publisher_t *)arg)->is_ready = true;
}

static void on_cluster_down(void *arg, const char *why, uint64_t retry_ms)
{
    on_down(NULL, arg, why, retry_ms);
}

static const wsg_redis_cluster_handler_t cluster_handler = {.on_ready = on_cluster_ready,
                                                            .on_down = on_cluster_down};

static void on_closed(void *arg)
{
    ((wsg_publisher_t *)arg)->is_closed = true;
}

/* Runs the loop until `*flag` or the link is down. */
static void run_until(wsg_publisher_t *pub, const bool *flag)
{
    while (!*flag && !pub->is_down && uv_run(&pub->loop, UV_RUN_ONCE) != 0) {
    }
}

static void on_timeout(uv_timer_t *timer)
{
    ((wsg_publisher_t *)timer->data)->is_timed_out = true;
}

static void release(wsg_publisher_t *pub)
{
    uv_close((uv_handle_t *)&pub->timer, NULL);
    if (pub->link != NULL)
        wsg_redis_link_close(pub->link, on_closed, pub);
    if (pub->cluster != NULL)
        wsg_redis_cluster_close(pub->cluster, on_closed, pub);
    uv_run(&pub->loop, UV_RUN_DEFAULT); /* until the link's handles are closed */
    uv_loop_close(&pub->loop);
    wsg_tls_free(pub->tls);
    free(pub);
}

wsg_publisher_t *wsg_publisher_connect(const wsg_redis_addr_t *addr, const wsg_tls_options_t *tls_opts,
                                       const char *tls_name, bool is_sharded, uint64_t timeout_ms, char *err,
                                       size_t cap)
{
    wsg_publisher_t *pub = calloc(1, sizeof(*pub));
    if (pub == NULL || uv_loop_init(&pub->loop) < 0) {
        free(pub);
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    uv_timer_init(&pub->loop, &pub->timer);
    pub->timer.data = pub;
    if (addr->is_tls && wsg_tls_new(tls_opts, &pub->tls, err, cap) < 0) {
        release(pub);
        return NULL;
    }
    wsg_redis_link_options_t opts = {
        .name = NULL, /* one short connection: no CLIENT SETNAME round trip */
        .select_db = true,
        .connect_timeout_ms = timeout_ms,
        .tls = pub->tls,
        .tls_name = tls_name != NULL && tls_name[0] != '\0' ? tls_name : NULL,
    };
    if (addr->is_cluster) {
        pub->is_sharded = is_sharded;
        pub->cluster = wsg_redis_cluster_new(&pub->loop, addr, &opts);
        if (pub->cluster != NULL)
            wsg_redis_cluster_observe(pub->cluster, &cluster_handler, pub);
    } else {
        pub->link = wsg_redis_link_new(&pub->loop, addr, &opts, &handler, pub);
    }
    if (pub->link == NULL && pub->cluster == NULL) {
        snprintf(err, cap, "out of memory");
        release(pub);
        return NULL;
    }
    run_until(pub, &pub->is_ready);
    if (!pub->is_ready) {
        snprintf(err, cap, "%s", pub->why[0] ? pub->why : "connection failed");
        release(pub);
        return NULL;
    }
    return pub;
}

static void on_answer(void *privdata, const redisReply *reply)
{
    answer_t *a = privdata;
    a->has_come = true;
    if (reply == NULL) {
        a->is_lost = true;
        return;
    }
    a->type = reply->type;
    if (reply->type == REDIS_REPLY_INTEGER)
        a->integer = reply->integer;
    else if (reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STATUS ||
             reply->type == REDIS_REPLY_STRING)
        snprintf(a->text, sizeof a->text, "%.*s", (int)reply->len, reply->str);
}

/* Sends one formatted command (taking ownership of `cmd`) for the key of `slot` and waits for its answer;
 * returns 0, -EIO (connection) or -EPROTO (reply). */
static int command(wsg_publisher_t *pub, const char *what, uint16_t slot, char *cmd, int len, int want_type,
                   char *err, size_t cap)
{
    answer_t *a = &pub->answer;
    *a = (answer_t){0};
    if (len < 0) {
        snprintf(err, cap, "%s: out of memory", what);
        return -EIO;
    }
    int rc = pub->link != NULL ? wsg_redis_link_send(pub->link, cmd, (size_t)len, on_answer, a)
             : pub->cluster != NULL
                 ? wsg_redis_cluster_send(pub->cluster, slot, cmd, (size_t)len, on_answer, a)
                 : -ENOTCONN;
    if (rc < 0) {
        free(cmd);
        snprintf(err, cap, "%s: %s", what, pub->why[0] ? pub->why : "not connected");
        return -EIO;
    }
    /* The loss of the connection calls on_answer with NULL before on_down: wait for the answer only. */
    pub->is_timed_out = false;
    uv_timer_start(&pub->timer, on_timeout, ANSWER_TIMEOUT_MS, 0);
    while (!a->has_come && !pub->is_timed_out && uv_run(&pub->loop, UV_RUN_ONCE) != 0) {
    }
    uv_timer_stop(&pub->timer);
    if (!a->has_come) {
        snprintf(err, cap, "%s: no answer within %d s", what, ANSWER_TIMEOUT_MS / 1000);
        /* The answer would come to a command that is gone: drop the connection first (the cluster keeps the
         * bytes of a command until its answer, so they are freed only once it has let go of them). */
        if (pub->link != NULL)
            wsg_redis_link_close(pub->link, on_closed, pub);
        if (pub->cluster != NULL)
            wsg_redis_cluster_close(pub->cluster, on_closed, pub);
        pub->link = NULL;
        pub->cluster = NULL;
        uv_run(&pub->loop, UV_RUN_DEFAULT);
        free(cmd);
        return -EIO;
    }
    free(cmd);
    if (a->is_lost) {
        snprintf(err, cap, "%s: %s", what, pub->why[0] ? pub->why : "connection lost");
        return -EIO;
    }
    if (a->type == REDIS_REPLY_ERROR) {
        snprintf(err, cap, "%s: %s", what, a->text);
        return -EPROTO;
    }
    if (a->type != want_type) {
        snprintf(err, cap, "%s: unexpected reply type %d", what, a->type);
        return -EPROTO;
    }
    return 0;
}

int wsg_publisher_publish(wsg_publisher_t *pub, const char *channel, size_t channel_len, const void *payload,
                          size_t payload_len, uint64_t expire_s, long long *receivers, char *err, size_t cap)
{
    uint16_t slot = wsg_cluster_key_slot(channel, channel_len);
    char *cmd = NULL;
    int len = redisFormatCommand(&cmd, pub->is_sharded ? "SPUBLISH %b %b" : "PUBLISH %b %b", channel,
                                 channel_len, payload, payload_len);
    int rc =
        command(pub, pub->is_sharded ? "SPUBLISH" : "PUBLISH", slot, cmd, len, REDIS_REPLY_INTEGER, err, cap);
    if (rc < 0)
        return rc;
    *receivers = pub->answer.integer;
    if (expire_s == 0)
        return 0;
    cmd = NULL;
    len = redisFormatCommand(&cmd, "SETEX %b %llu %b", channel, channel_len, (unsigned long long)expire_s,
                             payload, payload_len);
    return command(pub, "SETEX", slot, cmd, len, REDIS_REPLY_STATUS, err, cap);
}

int wsg_publisher_xadd(wsg_publisher_t *pub, const char *stream, size_t stream_len, const void *payload,
                       size_t payload_len, uint64_t maxlen, char *id, size_t id_cap, char *err, size_t cap)
{
    char *cmd = NULL;
    int len = maxlen > 0 ? redisFormatCommand(&cmd, "XADD %b MAXLEN ~ %llu * payload %b", stream, stream_len,
                                              (unsigned long long)maxlen, payload, payload_len)
                         : redisFormatCommand(&cmd, "XADD %b * payload %b", stream, stream_len, payload,
                                              payload_len);
    int rc = command(pub, "XADD", wsg_cluster_key_slot(stream, stream_len), cmd, len, REDIS_REPLY_STRING, err,
                     cap);
    if (rc == 0)
        snprintf(id, id_cap, "%s", pub->answer.text);
    return rc;
}

void wsg_publisher_free(wsg_publisher_t *pub)
{
    if (pub != NULL)
        release(pub);
}
