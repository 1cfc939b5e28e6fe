/* Counters and the Prometheus text rendering of their sum over workers. */
#include "stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const uint64_t bucket_us[WSG_LATENCY_BUCKETS] = {100,     250,     500,     1000,    2500,   5000,
                                                        10000,   25000,   50000,   100000,  250000, 500000,
                                                        1000000, 2500000, 5000000, 10000000};

static const int refused_status[WSG_REFUSED_KINDS - 1] = {400, 401, 403, 404, 426, 431, 500, 503};

void wsg_stats_count_refusal(wsg_stats_t *stats, int status)
{
    int kind = WSG_REFUSED_KINDS - 1;
    for (int i = 0; i < WSG_REFUSED_KINDS - 1; i++)
        if (refused_status[i] == status)
            kind = i;
    WSG_STAT_ADD(stats, handshakes_refused[kind], 1);
}

unsigned wsg_stats_latency_bucket(uint64_t us)
{
    unsigned b = 0;
    while (b < WSG_LATENCY_BUCKETS && us > bucket_us[b])
        b++;
    return b;
}

void wsg_stats_add_latency(wsg_stats_t *stats, unsigned bucket, uint64_t count, uint64_t sum_us)
{
    WSG_STAT_ADD(stats, latency_buckets[bucket], count);
    WSG_STAT_ADD(stats, latency_sum_us, sum_us);
}

void wsg_stats_observe_latency(wsg_stats_t *stats, uint64_t latency_ns, uint64_t count)
{
    uint64_t us = latency_ns / 1000;
    wsg_stats_add_latency(stats, wsg_stats_latency_bucket(us), count, us * count);
}

typedef struct out {
    char *buf;
    size_t cap, len;
} out_t;

static void emit(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(out_t *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

#define SUM(field)                                                                                           \
    ({                                                                                                       \
        uint64_t sum_ = 0;                                                                                   \
        for (unsigned i_ = 0; i_ < n; i_++)                                                                  \
            sum_ += WSG_STAT_GET(stats[i_], field);                                                          \
        sum_;                                                                                                \
    })

static void metric(out_t *o, const char *name, const char *type, const char *help, uint64_t value)
{
    emit(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, (unsigned long long)value);
}

bool wsg_stats_redis_ready(wsg_stats_t *const *stats, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (!WSG_STAT_GET(stats[i], redis_sub_up) || !WSG_STAT_GET(stats[i], redis_cmd_up) ||
            WSG_STAT_GET(stats[i], redis_streams_down))
            return false;
    return true;
}

size_t wsg_stats_render(wsg_stats_t *const *stats, unsigned n, char *buf, size_t cap)
{
    out_t o = {buf, cap, 0};
    buf[0] = '\0';
    metric(&o, "wsgate_workers", "gauge", "Event-loop threads.", n);
    metric(&o, "wsgate_connections_open", "gauge", "WebSocket connections open.", SUM(connections_open));
    metric(&o, "wsgate_connections_handshaking", "gauge", "Connections still in their HTTP upgrade.",
           SUM(connections_handshaking));
    metric(&o, "wsgate_connections_closing", "gauge", "Connections in their closing handshake.",
           SUM(connections_closing));
    metric(&o, "wsgate_connections_total", "counter", "Connections accepted.", SUM(connections_total));
    emit(&o, "# HELP wsgate_handshakes_refused_total Upgrade requests answered with an HTTP error.\n"
             "# TYPE wsgate_handshakes_refused_total counter\n");
    for (int k = 0; k < WSG_REFUSED_KINDS; k++) {
        char label[8];
        if (k < WSG_REFUSED_KINDS - 1)
            snprintf(label, sizeof label, "%d", refused_status[k]);
        else
            snprintf(label, sizeof label, "other");
        emit(&o, "wsgate_handshakes_refused_total{status=\"%s\"} %llu\n", label,
             (unsigned long long)SUM(handshakes_refused[k]));
    }
    emit(&o,
         "# HELP wsgate_messages_received_total Messages received, by source.\n"
         "# TYPE wsgate_messages_received_total counter\n"
         "wsgate_messages_received_total{source=\"client\"} %llu\n"
         "wsgate_messages_received_total{source=\"redis\"} %llu\n",
         (unsigned long long)SUM(messages_from_clients), (unsigned long long)SUM(messages_from_redis));
    metric(&o, "wsgate_deliveries_total", "counter", "Messages queued to clients (fan-out deliveries).",
           SUM(deliveries));
    metric(&o, "wsgate_bytes_received_total", "counter", "Bytes read from clients.", SUM(bytes_received));
    metric(&o, "wsgate_bytes_sent_total", "counter", "Bytes written to clients.", SUM(bytes_sent));
    metric(&o, "wsgate_channels", "gauge", "Channels in use (subscribed or being subscribed).",
           SUM(channels));
    uint64_t sub_up = 1, cmd_up = 1, streams_up = 1;
    for (unsigned i = 0; i < n; i++) {
        sub_up &= WSG_STAT_GET(stats[i], redis_sub_up) ? 1 : 0;
        cmd_up &= WSG_STAT_GET(stats[i], redis_cmd_up) ? 1 : 0;
        streams_up &= WSG_STAT_GET(stats[i], redis_streams_down) ? 0 : 1;
    }
    emit(&o,
         "# HELP wsgate_redis_connected 1 when every worker's Redis connection of that role is up.\n"
         "# TYPE wsgate_redis_connected gauge\n"
         "wsgate_redis_connected{role=\"subscriber\"} %llu\n"
         "wsgate_redis_connected{role=\"commands\"} %llu\n"
         "wsgate_redis_connected{role=\"streams\"} %llu\n",
         (unsigned long long)sub_up, (unsigned long long)cmd_up, (unsigned long long)streams_up);
    metric(&o, "wsgate_redis_reconnects_total", "counter", "Redis connections re-established after a loss.",
           SUM(redis_reconnects));
    emit(&o,
         "# HELP wsgate_redis_outage_seconds_total Time Redis connections were down (summed over links).\n"
         "# TYPE wsgate_redis_outage_seconds_total counter\nwsgate_redis_outage_seconds_total %.3f\n",
         (double)SUM(redis_outage_ms) / 1000.0);
    emit(
        &o,
        "# HELP wsgate_redis_reads_held_seconds_total Time reads from Redis waited because most clients were "
        "behind, summed over the connections that read (the subscriber, the stream reader, each shard).\n"
        "# TYPE wsgate_redis_reads_held_seconds_total counter\nwsgate_redis_reads_held_seconds_total %.3f\n",
        (double)SUM(redis_read_held_ms) / 1000.0);
    metric(&o, "wsgate_redis_probe_failures_total", "counter",
           "Redis connections rebuilt because a probe was not answered or not delivered in time.",
           SUM(redis_probe_failures));
    metric(&o, "wsgate_publishes_failed_total", "counter", "Client messages Redis did not accept.",
           SUM(publishes_failed));
    metric(&o, "wsgate_stream_replayed_total", "counter",
           "Stream entries sent to clients catching up (a resume after since, or the newest on connect).",
           SUM(stream_replayed));
    emit(&o,
         "# HELP wsgate_stream_gaps_total Gap notices sent to resuming clients, by reason.\n"
         "# TYPE wsgate_stream_gaps_total counter\n"
         "wsgate_stream_gaps_total{reason=\"trimmed\"} %llu\n"
         "wsgate_stream_gaps_total{reason=\"replay_max\"} %llu\n",
         (unsigned long long)SUM(stream_gaps_trimmed), (unsigned long long)SUM(stream_gaps_replay));
    metric(&o, "wsgate_redis_subscriber_overflows_total", "counter",
           "Times Redis closed the subscriber connection because the gateway fell behind (pub/sub output "
           "limit).",
           SUM(redis_sub_overflows));
    metric(&o, "wsgate_slow_consumer_closes_total", "counter",
           "Clients closed with 1008 for output over WSGATE_MAX_PENDING_HARD, or over WSGATE_MAX_PENDING for "
           "WSGATE_SLOW_GRACE.",
           SUM(slow_consumer_closes));
    metric(&o, "wsgate_slow_consumer_dropped_messages_total", "counter",
           "Messages not sent to slow consumers: skipped in drop mode, or unsent when one was closed.",
           SUM(slow_consumer_drops));
    metric(&o, "wsgate_oversize_messages_skipped_total", "counter",
           "Messages larger than WSGATE_MAX_PENDING skipped for a client whose output was not drained.",
           SUM(oversize_skips));
    metric(&o, "wsgate_stale_closes_total", "counter",
           "Clients closed with 4000 after the idle timeout without input, or with output stalled as long.",
           SUM(stale_closes));
    metric(&o, "wsgate_rate_limit_closes_total", "counter",
           "Clients closed with 1008 for publishing too fast.", SUM(rate_limit_closes));
    metric(&o, "wsgate_connections_refused_limit_total", "counter",
           "Connections answered 503 because WSGATE_MAX_CONNECTIONS was reached.",
           SUM(connections_refused_limit));
    metric(&o, "wsgate_accept_pauses_total", "counter",
           "Times accepting paused because the process ran out of file descriptors.", SUM(accept_pauses));
    metric(&o, "wsgate_heartbeats_sent_total", "counter", "Heartbeat messages sent.", SUM(heartbeats_sent));
    metric(&o, "wsgate_pings_sent_total", "counter", "Protocol PING frames sent.", SUM(pings_sent));
    emit(&o, "# HELP wsgate_delivery_latency_seconds From reading a message from Redis to writing it to a "
             "client socket.\n# TYPE wsgate_delivery_latency_seconds histogram\n");
    uint64_t cumulative = 0;
    for (int b = 0; b <= WSG_LATENCY_BUCKETS; b++) {
        cumulative += SUM(latency_buckets[b]);
        if (b < WSG_LATENCY_BUCKETS)
            emit(&o, "wsgate_delivery_latency_seconds_bucket{le=\"%g\"} %llu\n", (double)bucket_us[b] / 1e6,
                 (unsigned long long)cumulative);
        else
            emit(&o, "wsgate_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                 (unsigned long long)cumulative);
    }
    emit(&o, "wsgate_delivery_latency_seconds_sum %.6f\nwsgate_delivery_latency_seconds_count %llu\n",
         (double)SUM(latency_sum_us) / 1e6, (unsigned long long)cumulative);
    return o.len;
}
