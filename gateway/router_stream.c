/* Stream channels: a channel whose messages are entries of a Redis Stream named after it. Part of the router.
 *
 * A channel is followed once it has members: its newest id is read (XREVRANGE + - COUNT 1) and the worker's
 * stream reader reads on from there; `last_id` is the newest entry the reader delivered. A member that joins
 * catches up on its own, through the command link: from its `since` (a resume: entries after it, with a gap
 * notice first when some of them are no longer kept), or from the stream's newest entry. It reads pages of
 * entries after its cursor, sends those up to the channel's `last_id`, and goes live when a page reaches
 * past `last_id` or the end of the stream: from then on the reader's entries after its cursor are its. So it
 * gets every entry once, in order, whichever connection (reader or command link) brought it first. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "channel.h"
#include "glob_match.h"
#include "log.h"
#include "router.h"
#include "router_internal.h"
#include "stream_cmds.h"
#include "url.h"

/* Entries per page of a catch-up: the first page asks for one (its size is not known; an entry over the soft
 * limit may only go to a drained output), later ones as many as fit in half the client's soft output limit at
 * the size of the last page's entries (1 to PAGE_MAX). */
#define PAGE_FIRST 1
#define PAGE_MAX 100

/* A stream command in flight: for a channel being opened (`member` NULL; found again by name) or for a member
 * catching up (`member` cleared when it leaves first). */
struct stream_request {
    wsg_router_t *router;
    wsg_member_t *member;
    size_t name_len;
    char name[]; /* NUL-terminated */
};

void wsg_router_set_streams(wsg_router_t *router, uv_loop_t *loop, wsg_outq_ctx_t *out_ctx,
                            wsg_str_t patterns, wsg_redis_streams_t *reader, uint32_t replay_max,
                            wsg_str_t prefix)
{
    router->loop = loop;
    router->out_ctx = out_ctx;
    router->stream_patterns = patterns;
    router->streams = reader;
    router->stream_replay_max = replay_max;
    router->prefix = prefix;
}

bool wsg_router_is_stream(const wsg_router_t *router, wsg_str_t name)
{
    return router->stream_patterns.len > 0 &&
           wsg_glob_list_match(router->stream_patterns.ptr, router->stream_patterns.len, name.ptr, name.len);
}

static struct stream_request *request_new(wsg_router_t *router, wsg_member_t *m, const wsg_channel_t *ch)
{
    struct stream_request *req = malloc(sizeof(*req) + ch->name_len + 1);
    if (req == NULL)
        return NULL;
    req->router = router;
    req->member = m;
    req->name_len = ch->name_len;
    memcpy(req->name, ch->name, ch->name_len + 1);
    if (m != NULL)
        m->stream->sreq = req;
    return req;
}

/* Takes the member back from a finished request (NULL when it left meanwhile). */
static wsg_member_t *request_done(struct stream_request *req)
{
    wsg_member_t *m = req->member;
    if (m != NULL)
        m->stream->sreq = NULL;
    free(req);
    return m;
}

/* The member a catch-up reply is for (NULL when it left meanwhile), with the live entries read before the
 * reply delivered first, so that they go out in their order. */
static wsg_member_t *reply_member(void *arg, wsg_router_t **router)
{
    struct stream_request *req = arg;
    *router = req->router;
    wsg_member_t *m = request_done(req);
    if (m != NULL)
        wsg_router_end_run(*router);
    return m;
}

static void log_failure(const char *what, const wsg_channel_t *ch, const wsg_member_t *m, int status,
                        const char *err)
{
    WSG_WARN("stream_read_failed", WSG_F_STR("command", what),
             WSG_F_CHANNEL("channel", ch->name, ch->name_len),
             WSG_F_UINT("conn", m ? wsg_router_conn_id(m->client) : 0), WSG_F_INT("err", status),
             WSG_F_STR("why", err ? err : ""));
}

/* ---- a member catching up ------------------------------------------------------------------------------ */

static void catch_up(wsg_router_t *router, wsg_member_t *m);

static void go_live(wsg_member_t *m)
{
    const wsg_channel_t *ch = m->channel;
    if (wsg_stream_id_cmp(m->stream->cursor, ch->last_id) < 0)
        m->stream->cursor = ch->last_id;
    m->stream->state = WSG_MEMBER_LIVE;
}

/* A read for `m` failed (`req`, when given, could not be sent): what it missed cannot be read, so it logs
 * that and takes what comes from now on. */
static void give_up(wsg_member_t *m, struct stream_request *req, const char *command, int status,
                    const char *err)
{
    if (req != NULL)
        request_done(req);
    log_failure(command, m->channel, m, status, err);
    go_live(m);
}

static void send_entry(wsg_router_t *router, wsg_member_t *m, const wsg_stream_entry_t *e)
{
    m->stream->cursor = e->id;
    if (e->payload == NULL)
        return; /* not a message: nothing to send */
    wsg_msg_t *msg = wsg_msg_new_data(e->payload, e->len);
    if (msg == NULL) {
        wsg_outq_fail(m->client->out, -ENOMEM); /* a message would be lost: drop the client instead */
        return;
    }
    msg->has_id = true;
    msg->id = e->id;
    msg->hash = wsg_hash_bytes(e->payload, e->len);
    WSG_STAT_ADD(router->stats, stream_replayed, 1);
    wsg_router_deliver(router, m->client, m->channel, msg);
    wsg_msg_unref(msg);
}

static void send_gap(wsg_router_t *router, wsg_member_t *m, wsg_stream_id_t after, const char *reason)
{
    const wsg_channel_t *ch = m->channel;
    char label[WSG_CHANNEL_NAME_MAX + 1];
    char after_text[WSG_STREAM_ID_MAX_LEN + 1];
    wsg_stream_id_format(after, after_text);
    if (strcmp(reason, "trimmed") == 0)
        WSG_STAT_ADD(router->stats, stream_gaps_trimmed, 1);
    else
        WSG_STAT_ADD(router->stats, stream_gaps_replay, 1);
    WSG_INFO("stream_gap", WSG_F_UINT("conn", wsg_router_conn_id(m->client)),
             WSG_F_CHANNEL("channel", ch->name, ch->name_len), WSG_F_STR("after", after_text),
             WSG_F_STR("reason", reason));
    if (!m->client->is_v1)
        return; /* raw clients get payloads only: they cannot be told */
    ssize_t n = wsg_channel_label(ch->name, ch->name_len, router->prefix, label, sizeof label);
    wsg_msg_t *msg = n < 0 ? NULL : wsg_msg_new_gap((wsg_str_t){label, (size_t)n}, after, reason);
    if (msg == NULL) {
        wsg_outq_fail(m->client->out, -ENOMEM);
        return;
    }
    wsg_router_deliver(router, m->client, NULL, msg);
    wsg_msg_unref(msg);
}

static void on_page(void *arg, int status, const char *err, const wsg_stream_entry_t *entries, size_t n)
{
    wsg_router_t *router;
    wsg_member_t *m = reply_member(arg, &router);
    if (m == NULL)
        return; /* live entries read before this reply go out first */
    const wsg_channel_t *ch = m->channel;
    if (status < 0) {
        give_up(m, NULL, "XRANGE", status, err);
        return;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += entries[i].len + 64; /* with the frame and envelope around it */
    size_t fit = n > 0 ? router->soft_limit / 2 / (bytes / n) : PAGE_MAX;
    m->stream->page_entries = (uint8_t)(fit < 1 ? 1 : fit > PAGE_MAX ? PAGE_MAX : fit);
    for (size_t i = 0; i < n; i++) {
        if (wsg_stream_id_cmp(entries[i].id, ch->last_id) > 0) {
            go_live(m); /* the reader has not delivered this one yet: it will */
            return;
        }
        if (wsg_stream_id_cmp(entries[i].id, m->stream->cursor) <= 0)
            continue;
        if (m->stream->has_since && m->stream->replayed >= router->stream_replay_max) {
            send_gap(router, m, m->stream->cursor, "replay_max");
            go_live(m);
            return;
        }
        m->stream->replayed++;
        send_entry(router, m, &entries[i]);
    }
    /* An empty page: what lies between the cursor and last_id is gone (trimmed or deleted). */
    if (n == 0 || wsg_stream_id_cmp(m->stream->cursor, ch->last_id) >= 0)
        go_live(m);
    else
        catch_up(router, m);
}

/* Reads the next page after the member's cursor. */
static void read_page(wsg_router_t *router, wsg_member_t *m)
{
    const wsg_channel_t *ch = m->channel;
    struct stream_request *req = request_new(router, m, ch);
    int rc = req == NULL
                 ? -ENOMEM
                 : wsg_redis_stream_range(router->cmd, ch->name, ch->name_len, m->stream->cursor,
                                          m->stream->page_entries ? m->stream->page_entries : PAGE_FIRST,
                                          on_page, req);
    if (rc < 0)
        give_up(m, req, "XRANGE", rc, NULL);
}

/* Reads the next page, or goes live when there is nothing to read. A replay is paced by its client: the next
 * page is read once the output has taken the previous one, so a resume of large entries waits in Redis, not
 * in the gateway, and never trips the slow-consumer limits of a client that reads. */
static void catch_up(wsg_router_t *router, wsg_member_t *m)
{
    if (wsg_stream_id_cmp(m->stream->cursor, m->channel->last_id) >= 0) {
        go_live(m);
    } else if (wsg_outq_pending(m->client->out) > 0) {
        m->stream->is_paused = true;
        wsg_outq_notify_drained(m->client->out);
    } else {
        read_page(router, m);
    }
}

/* Without `since`: the newest entry is sent (the stored message of a stream channel), then what follows. */
static void on_last(void *arg, int status, const char *err, const wsg_stream_entry_t *entries, size_t n)
{
    wsg_router_t *router;
    wsg_member_t *m = reply_member(arg, &router);
    if (m == NULL)
        return;
    const wsg_channel_t *ch = m->channel;
    if (status < 0) {
        give_up(m, NULL, "XREVRANGE", status, err);
        return;
    }
    if (n == 1 && wsg_stream_id_cmp(entries[0].id, ch->last_id) <= 0)
        send_entry(router, m, &entries[0]);
    else
        m->stream->cursor =
            ch->last_id; /* empty, or newer than what the reader delivered: the reader sends it */
    catch_up(router, m);
}

/* With `since`: a gap notice first when entries after it are no longer kept. */
static void on_info(void *arg, int status, const char *err, const wsg_stream_info_t *info)
{
    wsg_router_t *router;
    wsg_member_t *m = reply_member(arg, &router);
    if (m == NULL)
        return;
    if (status < 0) {
        log_failure("XINFO", m->channel, m, status, err);
    } else {
        /* `since` older than the oldest entry kept: entries after it may be gone (trimmed, or the whole
         * stream lost with a Redis that kept no data), unless it is 0-0 and nothing was ever removed. A
         * stream that does not exist has lost what `since` came from. XDEL removes any entry: one after
         * `since` is a gap too. */
        bool is_zero = m->stream->since.ms == 0 && m->stream->since.seq == 0;
        bool is_older =
            !info->exists || info->length == 0 || wsg_stream_id_cmp(m->stream->since, info->first_id) < 0;
        bool is_trimmed = is_older && (!is_zero || info->has_removals);
        bool is_deleted = info->exists && wsg_stream_id_cmp(m->stream->since, info->max_deleted) < 0;
        if (is_trimmed || is_deleted)
            send_gap(router, m, m->stream->since, "trimmed");
    }
    catch_up(router, m);
}

static void start_catch_up(wsg_router_t *router, wsg_member_t *m)
{
    const wsg_channel_t *ch = m->channel;
    m->stream->state = WSG_MEMBER_CATCHING_UP;
    m->stream->cursor = m->stream->since;
    struct stream_request *req = request_new(router, m, ch);
    int rc = -ENOMEM;
    if (req != NULL)
        rc = m->stream->has_since ? wsg_redis_stream_info(router->cmd, ch->name, ch->name_len, on_info, req)
                                  : wsg_redis_stream_last(router->cmd, ch->name, ch->name_len, on_last, req);
    if (rc < 0)
        give_up(m, req, m->stream->has_since ? "XINFO" : "XREVRANGE", rc, NULL);
}

void wsg_router_stream_join(wsg_router_t *router, wsg_member_t *m, wsg_str_t query)
{
    wsg_channel_t *ch = m->channel;
    m->stream->state = WSG_MEMBER_WAITING;
    char label[WSG_CHANNEL_NAME_MAX + 1];
    ssize_t n = wsg_channel_label(ch->name, ch->name_len, router->prefix, label, sizeof label);
    m->stream->has_since = n >= 0 && query.len > 0 &&
                           wsg_query_since(query, (wsg_str_t){label, (size_t)n}, &m->stream->since) == 0;
    if (ch->state == WSG_CHANNEL_SUBSCRIBED)
        start_catch_up(router, m);
    else
        wsg_router_stream_sync(router, ch);
}

void wsg_router_output_drained(wsg_router_t *router, wsg_router_client_t *client)
{
    for (uint8_t i = 0; i < client->nsubs; i++) {
        wsg_member_t *m = &client->subs[i];
        if (m->stream == NULL || !m->stream->is_paused)
            continue;
        m->stream->is_paused = false;
        if (m->stream->state != WSG_MEMBER_CATCHING_UP)
            continue;
        if (wsg_stream_id_cmp(m->stream->cursor, m->channel->last_id) >= 0)
            go_live(m);
        else
            read_page(router, m); /* drained: read on, even if something was queued since */
    }
}

void wsg_router_stream_leave(wsg_member_t *m)
{
    if (m->stream == NULL)
        return; /* a pub/sub channel */
    if (m->stream->sreq != NULL)
        m->stream->sreq->member = NULL; /* its reply finds no member */
    free(m->stream);
    m->stream = NULL;
}

/* ---- following a channel ------------------------------------------------------------------------------- */

static void on_open(void *arg, int status, const char *err, const wsg_stream_entry_t *entries, size_t n)
{
    struct stream_request *req = arg;
    wsg_router_t *router = req->router;
    wsg_channel_t *ch = wsg_channels_find(&router->channels, req->name, req->name_len);
    free(req);
    if (ch == NULL || ch->state != WSG_CHANNEL_SUBSCRIBING)
        return;
    wsg_router_end_run(router);
    ch->state = WSG_CHANNEL_UNSUBSCRIBED;
    if (status < 0) {
        if (status != -ECANCELED)
            log_failure("XREVRANGE", ch, NULL, status,
                        err); /* e.g. WRONGTYPE: tried again on the next join */
        wsg_router_stream_sync(router, ch);
        return;
    }
    if (ch->nmembers == 0) {
        wsg_router_stream_sync(router, ch);
        return;
    }
    ch->last_id = n == 1 ? entries[0].id : (wsg_stream_id_t){0, 0};
    int rc = router->streams != NULL
                 ? wsg_redis_streams_add(router->streams, ch->name, ch->name_len, ch->last_id)
                 : -ENOTCONN;
    if (rc < 0 && rc != -EEXIST) {
        log_failure("XREAD", ch, NULL, rc, "cannot follow the stream");
        return;
    }
    ch->state = WSG_CHANNEL_SUBSCRIBED;
    WSG_DEBUG("stream_followed", WSG_F_CHANNEL("channel", ch->name, ch->name_len));
    for (wsg_member_t *m = ch->members; m; m = m->next)
        if (m->stream->state == WSG_MEMBER_WAITING)
            start_catch_up(router, m);
}

void wsg_router_stream_sync(wsg_router_t *router, wsg_channel_t *ch)
{
    bool want = ch->nmembers > 0;
    if (ch->state == WSG_CHANNEL_UNSUBSCRIBED) {
        if (want) {
            struct stream_request *req = router->cmd ? request_new(router, NULL, ch) : NULL;
            if (req != NULL && wsg_redis_stream_last(router->cmd, ch->name, ch->name_len, on_open, req) == 0)
                ch->state = WSG_CHANNEL_SUBSCRIBING;
            else
                free(req);
        } else if (ch->npublishers == 0) {
            wsg_channels_remove(&router->channels, ch);
        }
    } else if (ch->state == WSG_CHANNEL_SUBSCRIBED && !want) {
        if (router->streams != NULL)
            wsg_redis_streams_remove(router->streams, ch->name, ch->name_len);
        ch->state = WSG_CHANNEL_UNSUBSCRIBED;
        WSG_DEBUG("stream_unfollowed", WSG_F_CHANNEL("channel", ch->name, ch->name_len));
        if (ch->npublishers == 0)
            wsg_channels_remove(&router->channels, ch);
    }
}

/* ---- the stream reader ------------------------------------------------------------------------------ */

static void on_reader_ready(void *arg)
{
    wsg_router_t *router = arg;
    WSG_STAT_SET(router->stats, redis_streams_down, 0);
    if (router->stream_down_since_ms == 0) {
        WSG_INFO("redis_up", WSG_F_STR("role", "streams"));
        return;
    }
    WSG_INFO("redis_up", WSG_F_STR("role", "streams"),
             WSG_F_UINT("outage_ms", uv_now(router->loop) - router->stream_down_since_ms),
             WSG_F_STR("msg", "streams are read on from the last entry delivered"));
    router->stream_down_since_ms = 0;
}

static void on_reader_down(void *arg, const char *why, uint64_t retry_ms)
{
    wsg_router_t *router = arg;
    WSG_STAT_SET(router->stats, redis_streams_down, 1);
    if (router->stream_down_since_ms != 0) {
        WSG_DEBUG("redis_retry", WSG_F_STR("role", "streams"), WSG_F_STR("why", why),
                  WSG_F_UINT("retry_ms", retry_ms));
        return;
    }
    router->stream_down_since_ms = uv_now(router->loop) | 1; /* never 0 */
    WSG_WARN("redis_down", WSG_F_STR("role", "streams"), WSG_F_STR("why", why),
             WSG_F_UINT("retry_ms", retry_ms));
}

static void on_reader_entry(void *arg, const char *key, size_t key_len, wsg_stream_id_t id,
                            const uint8_t *payload, size_t len)
{
    wsg_router_t *router = arg;
    wsg_channel_t *ch = wsg_channels_find(&router->channels, key, key_len);
    if (ch == NULL || !ch->is_stream || ch->state != WSG_CHANNEL_SUBSCRIBED ||
        wsg_stream_id_cmp(id, ch->last_id) <= 0)
        return;
    ch->last_id = id;
    if (payload == NULL) {
        WSG_DEBUG("stream_entry_skipped", WSG_F_CHANNEL("channel", key, key_len),
                  WSG_F_STR("why", "no " WSG_STREAM_FIELD " field"));
        return;
    }
    WSG_STAT_ADD(router->stats, messages_from_redis, 1);
    wsg_msg_t *msg = wsg_msg_new_data(payload, len);
    if (msg == NULL) {
        WSG_WARN("message_lost", WSG_F_CHANNEL("channel", key, key_len), WSG_F_UINT("len", len),
                 WSG_F_STR("why", "out of memory"));
        return;
    }
    msg->recv_ns = uv_hrtime();
    msg->hash = wsg_hash_bytes(payload, len);
    msg->has_id = true;
    msg->id = id;
    wsg_router_add_to_run(router, ch, msg);
    wsg_msg_unref(msg);
}

static uint64_t on_reader_batch_done(void *arg)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router);
    return wsg_router_read_hold_ms(router);
}

static uint64_t on_reader_read_hold(void *arg)
{
    return wsg_router_read_hold_ms(arg);
}

static void on_reader_error(void *arg, const char *err)
{
    wsg_router_t *router = arg;
    if (wsg_log_limit_allow(&router->stream_error_limit, uv_now(router->loop), 10000))
        WSG_ERROR("redis_stream_read_refused", WSG_F_STR("why", err), WSG_F_STR("msg", "read again shortly"));
}

/* A followed key was turned into another type (SET over a stream): that channel alone stops, loudly; a later
 * client of it tries to open it again. */
static void on_reader_wrong_type(void *arg, const char *key, size_t key_len, const char *type)
{
    wsg_router_t *router = arg;
    wsg_router_end_run(router);
    WSG_ERROR("stream_key_wrong_type", WSG_F_CHANNEL("channel", key, key_len), WSG_F_STR("type", type),
              WSG_F_STR("msg", "not a stream any more: its clients get nothing from it"));
    wsg_channel_t *ch = wsg_channels_find(&router->channels, key, key_len);
    if (ch != NULL && ch->is_stream && ch->state == WSG_CHANNEL_SUBSCRIBED)
        ch->state = WSG_CHANNEL_UNSUBSCRIBED;
}

const wsg_redis_streams_handler_t wsg_router_streams_handler = {
    .on_ready = on_reader_ready,
    .on_down = on_reader_down,
    .on_entry = on_reader_entry,
    .on_batch_done = on_reader_batch_done,
    .read_hold_ms = on_reader_read_hold,
    .on_error = on_reader_error,
    .on_wrong_type = on_reader_wrong_type,
};
