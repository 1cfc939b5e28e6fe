/* Synchronous hiredis publishing for the command line: connect with a timeout, AUTH, SELECT, PUBLISH + SETEX.
 */
#include "publisher.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wsg_publisher {
    redisContext *ctx;
};

static struct timeval ms_to_tv(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

/* Describes where `addr` points, for error messages. */
static void describe(const wsg_redis_addr_t *addr, char *out, size_t cap)
{
    if (addr->is_unix)
        snprintf(out, cap, "unix:%s", addr->path);
    else if (strchr(addr->host, ':') != NULL)
        snprintf(out, cap, "[%s]:%u", addr->host, (unsigned)addr->port);
    else
        snprintf(out, cap, "%s:%u", addr->host, (unsigned)addr->port);
}

/* Runs one setup command (AUTH or SELECT) and checks that it was not refused. Returns 0 or -1 with `err`
 * written; `what` names the command without its secret arguments. */
static int expect_ok(redisContext *ctx, redisReply *reply, const char *what, char *err, size_t cap)
{
    if (reply == NULL) {
        snprintf(err, cap, "%s: %s", what, ctx->errstr[0] ? ctx->errstr : "connection lost");
        return -1;
    }
    int rc = 0;
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, cap, "%s: %.*s", what, (int)reply->len, reply->str);
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

wsg_publisher_t *wsg_publisher_connect(const wsg_redis_addr_t *addr, uint64_t timeout_ms, char *err,
                                       size_t cap)
{
    char where[400];
    describe(addr, where, sizeof where);
    if (addr->is_tls) {
        /* Never in the clear what was meant to be encrypted (the password among it). */
        snprintf(err, cap, "connect to %s: rediss:// is not supported by wsgate publish", where);
        return NULL;
    }
    redisContext *ctx = addr->is_unix ? redisConnectUnixWithTimeout(addr->path, ms_to_tv(timeout_ms))
                                      : redisConnectWithTimeout(addr->host, addr->port, ms_to_tv(timeout_ms));
    if (ctx == NULL) {
        snprintf(err, cap, "connect to %s: out of memory", where);
        return NULL;
    }
    if (ctx->err) {
        snprintf(err, cap, "connect to %s: %s", where, ctx->errstr);
        goto Error;
    }
    if (redisSetTimeout(ctx, ms_to_tv(WSG_PUBLISHER_IO_TIMEOUT_MS)) != REDIS_OK) {
        snprintf(err, cap, "connect to %s: cannot set the socket timeout", where);
        goto Error;
    }
    if (addr->password[0] != '\0') {
        /* %s arguments are sent as one bulk string each, whatever bytes the password holds. */
        redisReply *r = addr->username[0] != '\0'
                            ? redisCommand(ctx, "AUTH %s %s", addr->username, addr->password)
                            : redisCommand(ctx, "AUTH %s", addr->password);
        if (expect_ok(ctx, r, "AUTH", err, cap) < 0)
            goto Error;
    }
    if (addr->db != 0) {
        char what[40];
        snprintf(what, sizeof what, "SELECT %d", addr->db);
        if (expect_ok(ctx, redisCommand(ctx, "SELECT %d", addr->db), what, err, cap) < 0)
            goto Error;
    }
    wsg_publisher_t *pub = malloc(sizeof *pub);
    if (pub == NULL) {
        snprintf(err, cap, "out of memory");
        goto Error;
    }
    pub->ctx = ctx;
    return pub;

Error:
    redisFree(ctx);
    return NULL;
}

int wsg_publisher_publish(wsg_publisher_t *pub, const char *channel, size_t channel_len, const void *payload,
                          size_t payload_len, uint64_t expire_s, long long *receivers, char *err, size_t cap)
{
    redisContext *ctx = pub->ctx;
    redisReply *r = redisCommand(ctx, "PUBLISH %b %b", channel, channel_len, payload, payload_len);
    if (r == NULL) {
        snprintf(err, cap, "PUBLISH: %s", ctx->errstr[0] ? ctx->errstr : "connection lost");
        return -EIO;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, cap, "PUBLISH: %.*s", (int)r->len, r->str);
        rc = -EPROTO;
    } else if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, cap, "PUBLISH: unexpected reply type %d", r->type);
        rc = -EPROTO;
    } else {
        *receivers = r->integer;
    }
    freeReplyObject(r);
    if (rc < 0 || expire_s == 0)
        return rc;

    r = redisCommand(ctx, "SETEX %b %llu %b", channel, channel_len, (unsigned long long)expire_s, payload,
                     payload_len);
    if (r == NULL) {
        snprintf(err, cap, "SETEX: %s", ctx->errstr[0] ? ctx->errstr : "connection lost");
        return -EIO;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, cap, "SETEX: %.*s", (int)r->len, r->str);
        rc = -EPROTO;
    } else if (r->type != REDIS_REPLY_STATUS) {
        snprintf(err, cap, "SETEX: unexpected reply type %d", r->type);
        rc = -EPROTO;
    }
    freeReplyObject(r);
    return rc;
}

void wsg_publisher_free(wsg_publisher_t *pub)
{
    if (pub == NULL)
        return;
    redisFree(pub->ctx);
    free(pub);
}
