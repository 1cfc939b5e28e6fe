/* Client publishing: heartbeat classification, the rate limiter, PUBLISH + SETEX per publish channel. */
#include "publish.h"

#include <errno.h>
#include <stdlib.h>

#include "frame.h"
#include "log.h"
#include "stream_cmds.h"

void wsg_publish_init(wsg_client_pub_t *pub, const wsg_config_t *cfg, uint64_t now_ms)
{
    uint64_t tokens = cfg->publish_burst * 1000;
    pub->pending = 0;
    pub->tokens_milli = (uint32_t)(tokens > UINT32_MAX ? UINT32_MAX : tokens);
    pub->refill_ms = now_ms;
}

/* Token bucket: `publish_rate` messages per second, up to `publish_burst` at once. */
static bool take_token(wsg_client_pub_t *pub, const wsg_config_t *cfg, uint64_t now)
{
    if (cfg->publish_rate == 0)
        return true;
    uint64_t cap = cfg->publish_burst * 1000;
    uint64_t tokens = pub->tokens_milli + (now - pub->refill_ms) * cfg->publish_rate;
    pub->refill_ms = now;
    if (tokens > cap)
        tokens = cap;
    if (tokens < 1000) {
        pub->tokens_milli = (uint32_t)tokens;
        return false;
    }
    pub->tokens_milli = (uint32_t)(tokens - 1000);
    return true;
}

/* Answers {"type":"ping"} with {"type":"pong"} through the client's output, like any data message. */
static void answer_json_ping(const wsg_publisher_t *p)
{
    wsg_msg_t *pong = wsg_msg_new_data(WSG_HEARTBEAT_JSON_PONG, sizeof WSG_HEARTBEAT_JSON_PONG - 1);
    if (pong == NULL)
        return;
    wsg_outq_send(p->out, pong);
    wsg_msg_unref(pong);
}

/* The completion of an XADD, passed on as a publish's. */
typedef struct stream_publish {
    wsg_redis_done_cb done;
    void *arg;
} stream_publish_t;

static void on_stream_added(void *arg, int status, const char *err, wsg_stream_id_t id)
{
    stream_publish_t *sp = arg;
    (void)id;
    if (status == -ECONNRESET)
        err = "connection to Redis lost before the reply: the entry may or may not have been added";
    sp->done(sp->arg, status, err);
    free(sp);
}

/* A stream channel's message is an entry of its stream: XADD, never sent twice. */
static int publish_to_stream(const wsg_publisher_t *p, const wsg_channel_t *ch, const uint8_t *data,
                             size_t len)
{
    stream_publish_t *sp = malloc(sizeof(*sp));
    if (sp == NULL)
        return -ENOMEM;
    *sp = (stream_publish_t){p->done, p->done_arg};
    int rc = wsg_redis_stream_add(p->ctx->cmd, ch->name, ch->name_len, p->ctx->cfg->stream_maxlen, data, len,
                                  on_stream_added, sp);
    if (rc < 0)
        free(sp);
    return rc;
}

uint16_t wsg_publish_message(const wsg_publisher_t *p, const uint8_t *data, size_t len, const char **reason)
{
    wsg_ctx_t *ctx = p->ctx;
    const wsg_config_t *cfg = ctx->cfg;
    WSG_STAT_ADD(ctx->stats, messages_from_clients, 1);
    switch (wsg_heartbeat_classify(&ctx->heartbeat_rules, data, len)) {
    case WSG_INBOUND_DATA:
        break;
    case WSG_INBOUND_JSON_PING:
        answer_json_ping(p);
        return 0;
    default:
        return 0; /* heartbeats (ws4redis's string, JSON heartbeat_response) are never published nor stored */
    }
    wsg_router_client_t *client = p->client;
    if (client->npubs == 0) {
        WSG_DEBUG("message_ignored", WSG_F_UINT("conn", p->conn_id), WSG_F_UINT("len", len),
                  WSG_F_STR("why", "no publish channel"));
        return 0;
    }
    if (!take_token(p->pub, cfg, uv_now(ctx->loop))) {
        WSG_WARN("publish_rate_exceeded", WSG_F_UINT("conn", p->conn_id),
                 WSG_F_UINT("rate", cfg->publish_rate), WSG_F_UINT("burst", cfg->publish_burst));
        WSG_STAT_ADD(ctx->stats, rate_limit_closes, 1);
        *reason = "publish rate exceeded";
        return WSG_CLOSE_POLICY;
    }
    for (uint8_t i = 0; i < client->npubs; i++) {
        const wsg_channel_t *ch = client->pubs[i];
        int rc = ch->is_stream ? publish_to_stream(p, ch, data, len)
                               : wsg_redis_cmd_publish(ctx->cmd, ch->name, ch->name_len, data, len,
                                                       (uint32_t)cfg->expire_s, p->done, p->done_arg);
        if (rc < 0) {
            WSG_STAT_ADD(ctx->stats, publishes_failed, 1);
            WSG_WARN("publish_refused", WSG_F_UINT("conn", p->conn_id),
                     WSG_F_CHANNEL("channel", ch->name, ch->name_len), WSG_F_INT("err", rc));
            *reason = rc == -ENOBUFS ? "try again later" : "internal error";
            return rc == -ENOBUFS ? WSG_CLOSE_TRY_AGAIN_LATER : WSG_CLOSE_INTERNAL_ERROR;
        }
        p->pub->pending++;
        wsg_router_note_publication(ctx->router, client, ch, data, len);
    }
    return 0;
}

void wsg_publish_done(const wsg_publisher_t *p, int status, const char *err)
{
    wsg_ctx_t *ctx = p->ctx;
    p->pub->pending--;
    if (status == 0)
        return;
    WSG_STAT_ADD(ctx->stats, publishes_failed, 1);
    if (wsg_log_limit_allow(&ctx->publish_log_limit, uv_now(ctx->loop), 5000))
        WSG_WARN("publish_failed", WSG_F_UINT("conn", p->conn_id), WSG_F_INT("err", status),
                 WSG_F_STR("redis_error", err ? err : ""));
    wsg_router_forget_publications(p->client); /* the message may never come back through the subscription */
}
