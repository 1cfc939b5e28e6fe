/* Stream commands over the command link, their replies turned into entries and ids. */
#include "stream_cmds.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_reader.h"

typedef struct stream_call {
    union {
        wsg_stream_entries_cb entries;
        wsg_stream_info_cb info;
        wsg_stream_added_cb added;
    } cb;
    void *arg;
} stream_call_t;

static stream_call_t *call_new(void *arg)
{
    stream_call_t *c = malloc(sizeof(*c));
    if (c != NULL)
        c->arg = arg;
    return c;
}

static const char *error_text(int status, const redisReply *reply)
{
    if (status == -EIO && reply != NULL && reply->type == REDIS_REPLY_ERROR)
        return reply->str;
    return NULL;
}

bool wsg_stream_entry_parse(const redisReply *e, wsg_stream_entry_t *out)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        wsg_stream_id_parse(e->element[0]->str, e->element[0]->len, &out->id) < 0)
        return false;
    out->payload = NULL;
    out->len = 0;
    const redisReply *fields = e->element[1];
    if (fields->type != REDIS_REPLY_ARRAY)
        return true;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && k->len == sizeof WSG_STREAM_FIELD - 1 &&
            memcmp(k->str, WSG_STREAM_FIELD, k->len) == 0 && v->type == REDIS_REPLY_STRING) {
            out->payload = (const uint8_t *)v->str;
            out->len = v->len;
            break;
        }
    }
    return true;
}

/* XRANGE and XREVRANGE replies: an array of entries; XREVRANGE's are turned oldest first. */
static void on_entries(void *arg, int status, const redisReply *reply, bool is_reversed)
{
    stream_call_t *c = arg;
    wsg_stream_entries_cb cb = c->cb.entries;
    void *cb_arg = c->arg;
    free(c);
    if (status < 0 || reply == NULL) {
        cb(cb_arg, status < 0 ? status : -EPROTO, error_text(status, reply), NULL, 0);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        cb(cb_arg, -EPROTO, "unexpected reply", NULL, 0);
        return;
    }
    size_t n = reply->elements;
    wsg_stream_entry_t *entries = n ? malloc(n * sizeof(*entries)) : NULL;
    if (n && entries == NULL) {
        cb(cb_arg, -ENOMEM, NULL, NULL, 0);
        return;
    }
    size_t got = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[is_reversed ? n - 1 - i : i];
        if (wsg_stream_entry_parse(e, &entries[got]))
            got++;
    }
    cb(cb_arg, 0, NULL, entries, got);
    free(entries);
}

static void on_range(void *arg, int status, const redisReply *reply)
{
    on_entries(arg, status, reply, false);
}

static void on_last(void *arg, int status, const redisReply *reply)
{
    on_entries(arg, status, reply, true);
}

static int send_entries(wsg_redis_cmd_t *cmd, int argc, const char **argv, const size_t *lens,
                        wsg_redis_reply_done_cb on_reply, wsg_stream_entries_cb cb, void *arg)
{
    stream_call_t *c = call_new(arg);
    if (c == NULL)
        return -ENOMEM;
    c->cb.entries = cb;
    int rc = wsg_redis_cmd_argv(cmd, argc, argv, lens, 1, false, on_reply, c);
    if (rc < 0)
        free(c);
    return rc;
}

int wsg_redis_stream_last(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_entries_cb cb,
                          void *arg)
{
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    size_t lens[] = {9, len, 1, 1, 5, 1};
    return send_entries(cmd, 6, argv, lens, on_last, cb, arg);
}

int wsg_redis_stream_range(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_id_t after,
                           uint32_t count, wsg_stream_entries_cb cb, void *arg)
{
    char start[WSG_STREAM_ID_MAX_LEN + 2], n[16];
    start[0] = '('; /* exclusive (Redis 6.2 and later) */
    size_t start_len = 1 + wsg_stream_id_format(after, start + 1);
    size_t n_len = (size_t)snprintf(n, sizeof n, "%" PRIu32, count);
    const char *argv[] = {"XRANGE", key, start, "+", "COUNT", n};
    size_t lens[] = {6, len, start_len, 1, 5, n_len};
    return send_entries(cmd, 6, argv, lens, on_range, cb, arg);
}

/* ---- XINFO STREAM ------------------------------------------------------------------------------------ */

static const redisReply *info_field(const redisReply *map, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i + 1 < map->elements; i += 2) {
        const redisReply *k = map->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == name_len && memcmp(k->str, name, name_len) == 0)
            return map->element[i + 1];
    }
    return NULL;
}

static bool id_field(const redisReply *map, const char *name, wsg_stream_id_t *out)
{
    const redisReply *v = info_field(map, name);
    return v != NULL && v->type == REDIS_REPLY_STRING && wsg_stream_id_parse(v->str, v->len, out) == 0;
}

static void on_info(void *arg, int status, const redisReply *reply)
{
    stream_call_t *c = arg;
    wsg_stream_info_cb cb = c->cb.info;
    void *cb_arg = c->arg;
    free(c);
    wsg_stream_info_t info = {0};
    if (status == -EIO && reply != NULL && strstr(reply->str, "no such key") != NULL) {
        cb(cb_arg, 0, NULL, &info); /* a stream that does not exist (yet) has lost nothing */
        return;
    }
    if (status < 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        cb(cb_arg, status < 0 ? status : -EPROTO, error_text(status, reply), NULL);
        return;
    }
    info.exists = true;
    const redisReply *length = info_field(reply, "length");
    const redisReply *added = info_field(reply, "entries-added");
    if (length != NULL && length->type == REDIS_REPLY_INTEGER)
        info.length = (uint64_t)length->integer;
    if (!id_field(reply, "recorded-first-entry-id", &info.first_id)) {
        /* Before Redis 7: the first entry itself. */
        wsg_stream_entry_t first;
        if (wsg_stream_entry_parse(info_field(reply, "first-entry"), &first))
            info.first_id = first.id;
    }
    id_field(reply, "max-deleted-entry-id", &info.max_deleted);
    /* Without entries-added (before Redis 7) a stream is assumed to have lost its oldest entries. */
    info.has_removals =
        added == NULL || added->type != REDIS_REPLY_INTEGER || (uint64_t)added->integer > info.length;
    cb(cb_arg, 0, NULL, &info);
}

int wsg_redis_stream_info(wsg_redis_cmd_t *cmd, const char *key, size_t len, wsg_stream_info_cb cb, void *arg)
{
    stream_call_t *c = call_new(arg);
    if (c == NULL)
        return -ENOMEM;
    c->cb.info = cb;
    const char *argv[] = {"XINFO", "STREAM", key};
    size_t lens[] = {5, 6, len};
    int rc = wsg_redis_cmd_argv(cmd, 3, argv, lens, 2, false, on_info, c);
    if (rc < 0)
        free(c);
    return rc;
}

/* ---- XADD -------------------------------------------------------------------------------------------- */

static void on_added(void *arg, int status, const redisReply *reply)
{
    stream_call_t *c = arg;
    wsg_stream_added_cb cb = c->cb.added;
    void *cb_arg = c->arg;
    free(c);
    wsg_stream_id_t id = {0, 0};
    if (status == 0 && (reply == NULL || reply->type != REDIS_REPLY_STRING ||
                        wsg_stream_id_parse(reply->str, reply->len, &id) < 0))
        status = -EPROTO;
    cb(cb_arg, status, error_text(status, reply), id);
}

int wsg_redis_stream_add(wsg_redis_cmd_t *cmd, const char *key, size_t len, uint64_t maxlen,
                         const void *payload, size_t payload_len, wsg_stream_added_cb cb, void *arg)
{
    stream_call_t *c = call_new(arg);
    if (c == NULL)
        return -ENOMEM;
    c->cb.added = cb;
    char max[24];
    size_t max_len = (size_t)snprintf(max, sizeof max, "%" PRIu64, maxlen);
    const char *with_max[] = {"XADD", key, "MAXLEN", "~", max, "*", WSG_STREAM_FIELD, payload};
    size_t with_max_lens[] = {4, len, 6, 1, max_len, 1, sizeof WSG_STREAM_FIELD - 1, payload_len};
    const char *plain[] = {"XADD", key, "*", WSG_STREAM_FIELD, payload};
    size_t plain_lens[] = {4, len, 1, sizeof WSG_STREAM_FIELD - 1, payload_len};
    int rc = maxlen > 0 ? wsg_redis_cmd_argv(cmd, 8, with_max, with_max_lens, 1, true, on_added, c)
                        : wsg_redis_cmd_argv(cmd, 5, plain, plain_lens, 1, true, on_added, c);
    if (rc < 0)
        free(c);
    return rc;
}
