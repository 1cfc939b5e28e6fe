/* The liveness probe (see probe.h). */
#include "probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wsg_redis_probe {
    uv_loop_t *loop;
    wsg_redis_sub_t *sub;
    wsg_redis_cmd_t *cmd;
    const wsg_redis_probe_handler_t *handler;
    void *arg;
    uv_timer_t timer;
    uint64_t timeout_ms;
    uint64_t seq; /* the probe in flight (0: none) */
    uint64_t counter;
    uint64_t sent_ms;
    uint32_t holds_at_send; /* the subscriber's holds when the probe was sent */
    bool is_answered;       /* the command side answered the probe's PUBLISH */
    bool is_delivered;      /* the subscriber delivered it */
    bool is_subscribed;
    bool is_queued;       /* the PUBLISH is still in the command side */
    bool is_timer_closed; /* stopped: the memory goes once the PUBLISH (if out) is answered too */
    char channel[96];
};

static void on_answered(void *arg, int status, const char *err)
{
    wsg_redis_probe_t *probe = arg;
    probe->is_queued = false;
    if (probe->is_timer_closed) {
        free(probe); /* stopped while its PUBLISH was out */
        return;
    }
    if (status == 0)
        probe->is_answered = true;
}

static void on_timer(uv_timer_t *timer)
{
    wsg_redis_probe_t *probe = timer->data;
    uint64_t now = uv_now(probe->loop);
    if (probe->seq != 0) {
        if (probe->is_answered && probe->is_delivered) {
            probe->seq = 0;
        } else if (now - probe->sent_ms >= probe->timeout_ms) {
            uint64_t waited = now - probe->sent_ms;
            probe->seq = 0;
            if (!probe->is_answered) {
                wsg_redis_cmd_reset(probe->cmd, "probe not answered");
                probe->handler->on_failed(probe->arg, "commands", waited, "no answer: reconnecting");
            } else if (wsg_redis_sub_holds(probe->sub) != probe->holds_at_send) {
                /* Its reads were held meanwhile (its clients were behind): the probe waits behind the
                 * messages in Redis, which is alive; a later probe checks again. */
            } else {
                wsg_redis_sub_reset(probe->sub, "probe not delivered");
                probe->handler->on_failed(probe->arg, "subscriber", waited, "not delivered: resubscribing");
            }
        }
        return;
    }
    if (!wsg_redis_sub_is_ready(probe->sub) || !wsg_redis_cmd_is_ready(probe->cmd) || !probe->is_subscribed)
        return;
    char payload[24];
    int n = snprintf(payload, sizeof payload, "%llu", (unsigned long long)++probe->counter);
    if (wsg_redis_cmd_publish(probe->cmd, probe->channel, strlen(probe->channel), payload, (size_t)n, 0,
                              on_answered, probe) < 0)
        return;
    probe->seq = probe->counter;
    probe->is_queued = true;
    probe->sent_ms = now;
    probe->holds_at_send = wsg_redis_sub_holds(probe->sub);
    probe->is_answered = probe->is_delivered = false;
}

wsg_redis_probe_t *wsg_redis_probe_start(uv_loop_t *loop, wsg_redis_sub_t *sub, wsg_redis_cmd_t *cmd,
                                         const char *channel, uint64_t timeout_ms,
                                         const wsg_redis_probe_handler_t *handler, void *arg)
{
    wsg_redis_probe_t *probe = calloc(1, sizeof(*probe));
    if (probe == NULL)
        return NULL;
    probe->loop = loop;
    probe->sub = sub;
    probe->cmd = cmd;
    probe->handler = handler;
    probe->arg = arg;
    probe->timeout_ms = timeout_ms;
    snprintf(probe->channel, sizeof probe->channel, "%s", channel);
    uv_timer_init(loop, &probe->timer);
    probe->timer.data = probe;
    /* Twice per timeout, so that a probe that fails is noticed within about one and a half timeouts. */
    uint64_t every = timeout_ms / 2 < 100 ? 100 : timeout_ms / 2;
    uv_timer_start(&probe->timer, on_timer, every, every);
    return probe;
}

void wsg_redis_probe_sub_up(wsg_redis_probe_t *probe)
{
    const char *channel = probe->channel;
    size_t len = strlen(channel);
    probe->is_subscribed = wsg_redis_sub_subscribe(probe->sub, &channel, &len, 1) == 0;
    probe->seq = 0;
}

bool wsg_redis_probe_take(wsg_redis_probe_t *probe, const char *channel, size_t channel_len,
                          const uint8_t *payload, size_t len)
{
    if (channel_len != strlen(probe->channel) || memcmp(channel, probe->channel, channel_len) != 0)
        return false;
    char text[24];
    size_t n = len < sizeof text - 1 ? len : sizeof text - 1;
    memcpy(text, payload, n);
    text[n] = '\0';
    if (probe->seq != 0 && strtoull(text, NULL, 10) == probe->seq)
        probe->is_delivered = true;
    return true;
}

bool wsg_redis_probe_is_queued(const wsg_redis_probe_t *probe)
{
    return probe->is_queued;
}

void wsg_redis_probe_pause(wsg_redis_probe_t *probe)
{
    uv_timer_stop(&probe->timer);
}

static void on_timer_closed(uv_handle_t *handle)
{
    wsg_redis_probe_t *probe = handle->data;
    probe->is_timer_closed = true;
    if (!probe->is_queued)
        free(probe);
}

void wsg_redis_probe_stop(wsg_redis_probe_t *probe)
{
    uv_close((uv_handle_t *)&probe->timer, on_timer_closed);
}
