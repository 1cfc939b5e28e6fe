/* Watching the sentinels for +switch-master (see sentinel_watch.h). */
#include "sentinel_watch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wsg_redis_sentinel_watch {
    wsg_redis_sub_t *watch; /* the pub/sub connection to a sentinel */
    wsg_redis_sub_t *sub;
    wsg_redis_cmd_t *cmd;
    const wsg_redis_sentinel_watch_handler_t *handler;
    void *arg;
    unsigned next; /* the sentinel connected to next */
    wsg_redis_addr_t addr;
    void (*close_cb)(void *);
    void *close_arg;
};

static void on_ready(void *arg)
{
    wsg_redis_sentinel_watch_t *w = arg;
    const char *channel = "+switch-master";
    size_t len = strlen(channel);
    wsg_redis_sub_subscribe(w->watch, &channel, &len, 1);
    if (w->handler->on_up != NULL)
        w->handler->on_up(w->arg);
}

static void on_down(void *arg, const char *why, uint64_t retry_ms) {}

static void on_confirm(void *arg, const char *channel, size_t len) {}

static void on_message(void *arg, const char *channel, size_t channel_len, const uint8_t *payload, size_t len)
{
    wsg_redis_sentinel_watch_t *w = arg;
    const char *name = w->addr.master_name;
    size_t name_len = strlen(name);
    /* "<master name> <old ip> <old port> <new ip> <new port>" */
    if (strcmp(channel, "+switch-master") != 0 || len <= name_len || memcmp(payload, name, name_len) != 0 ||
        payload[name_len] != ' ')
        return;
    wsg_redis_sub_reset(w->sub, "sentinel switched the master");
    wsg_redis_cmd_reset(w->cmd, "sentinel switched the master");
    if (w->handler->on_switch != NULL)
        w->handler->on_switch(w->arg, (const char *)payload, len);
}

static const wsg_redis_sub_handler_t watch_handler = {
    .on_ready = on_ready,
    .on_down = on_down,
    .on_subscribed = on_confirm,
    .on_unsubscribed = on_confirm,
    .on_message = on_message,
};

/* Each attempt goes to the next sentinel: a sentinel that is down does not blind the watch. */
static void next_sentinel(void *arg, char *host, size_t host_cap, uint16_t *port)
{
    wsg_redis_sentinel_watch_t *w = arg;
    const struct wsg_redis_sentinel_addr *s = &w->addr.sentinels[w->next++ % w->addr.nsentinels];
    snprintf(host, host_cap, "%s", s->host);
    *port = s->port;
}

wsg_redis_sentinel_watch_t *wsg_redis_sentinel_watch_new(uv_loop_t *loop, const wsg_redis_addr_t *addr,
                                                         const wsg_redis_link_options_t *opts,
                                                         wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd,
                                                         const wsg_redis_sentinel_watch_handler_t *handler,
                                                         void *arg)
{
    wsg_redis_sentinel_watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->addr = *addr;
    w->sub = sub;
    w->cmd = cmd;
    w->handler = handler;
    w->arg = arg;
    /* The sentinels' own credentials, or else the URL's, which a sentinel without a password may refuse. */
    wsg_redis_addr_t sentinel = {0};
    bool is_own = addr->sentinel_password[0] != '\0';
    snprintf(sentinel.username, sizeof sentinel.username, "%s",
             is_own ? addr->sentinel_username : addr->username);
    snprintf(sentinel.password, sizeof sentinel.password, "%s",
             is_own ? addr->sentinel_password : addr->password);
    sentinel.is_tls = addr->is_tls;
    wsg_redis_link_options_t link_opts = *opts;
    link_opts.name = "wsgate-sentinel-watch";
    link_opts.is_auth_optional = !is_own;
    link_opts.next_target = next_sentinel;
    link_opts.target_arg = w;
    w->watch = wsg_redis_sub_new(loop, &sentinel, &link_opts, &watch_handler, w);
    if (w->watch == NULL) {
        free(w);
        return NULL;
    }
    return w;
}

static void on_watch_closed(void *arg)
{
    wsg_redis_sentinel_watch_t *w = arg;
    void (*cb)(void *) = w->close_cb;
    void *cb_arg = w->close_arg;
    free(w);
    if (cb != NULL)
        cb(cb_arg);
}

void wsg_redis_sentinel_watch_close(wsg_redis_sentinel_watch_t *w, void (*cb)(void *cb_arg), void *cb_arg)
{
    w->close_cb = cb;
    w->close_arg = cb_arg;
    wsg_redis_sub_close(w->watch, on_watch_closed, w);
}
