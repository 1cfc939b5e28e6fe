/* Per-worker counters, written by the worker's thread only and read by the admin endpoint from another
 * thread: relaxed atomics without read-modify-write, so the hot path pays a plain add. */
#ifndef WSG_GATEWAY_STATS_H
#define WSG_GATEWAY_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Upper bounds of the delivery-latency histogram buckets, in microseconds (+Inf is implied). */
#define WSG_LATENCY_BUCKETS 16

/** Statuses of refused handshakes that get their own label; the rest count as "other". */
#define WSG_REFUSED_KINDS 9

typedef struct wsg_stats {
    _Atomic uint64_t connections_total;
    _Atomic uint64_t connections_open;        /* gauge */
    _Atomic uint64_t connections_handshaking; /* gauge */
    _Atomic uint64_t connections_closing;     /* gauge */
    _Atomic uint64_t handshakes_refused[WSG_REFUSED_KINDS];
    _Atomic uint64_t messages_from_clients;
    _Atomic uint64_t messages_from_redis;
    _Atomic uint64_t deliveries;
    _Atomic uint64_t bytes_received;
    _Atomic uint64_t bytes_sent;
    _Atomic uint64_t channels;           /* gauge */
    _Atomic uint64_t redis_sub_up;       /* gauge 0/1 */
    _Atomic uint64_t redis_cmd_up;       /* gauge 0/1 */
    _Atomic uint64_t redis_streams_down; /* gauge 0/1: the stream reader is not connected (0 without one) */
    _Atomic uint64_t redis_reconnects;
    _Atomic uint64_t redis_outage_ms;
    _Atomic uint64_t redis_read_held_ms; /* reads from Redis put off because the clients were behind */
    _Atomic uint64_t publishes_failed;
    _Atomic uint64_t slow_consumer_closes;
    _Atomic uint64_t slow_consumer_drops;
    _Atomic uint64_t oversize_skips;      /* messages over the soft limit skipped for a busy client */
    _Atomic uint64_t redis_sub_overflows; /* Redis cut the subscriber off for falling behind */
    _Atomic uint64_t stale_closes;
    _Atomic uint64_t rate_limit_closes;
    _Atomic uint64_t redis_probe_failures;
    _Atomic uint64_t accept_pauses;
    _Atomic uint64_t connections_refused_limit;
    _Atomic uint64_t heartbeats_sent;
    _Atomic uint64_t pings_sent;
    _Atomic uint64_t connections_freed;
    _Atomic uint64_t stream_replayed;     /* stream entries sent by catch-ups (resumes, newest on connect) */
    _Atomic uint64_t stream_gaps_trimmed; /* gap notices: entries after since no longer kept */
    _Atomic uint64_t stream_gaps_replay;  /* gap notices: more than WSGATE_STREAM_REPLAY_MAX to replay */
    _Atomic uint64_t latency_buckets[WSG_LATENCY_BUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t latency_sum_us;
} wsg_stats_t;

/** Adds `n` to a counter owned by the calling thread (single writer). */
#define WSG_STAT_ADD(stats, field, n)                                                                        \
    atomic_store_explicit(&(stats)->field,                                                                   \
                          atomic_load_explicit(&(stats)->field, memory_order_relaxed) + (uint64_t)(n),       \
                          memory_order_relaxed)

/** Sets a gauge owned by the calling thread. */
#define WSG_STAT_SET(stats, field, v)                                                                        \
    atomic_store_explicit(&(stats)->field, (uint64_t)(v), memory_order_relaxed)

/** Reads a counter or gauge from any thread. */
#define WSG_STAT_GET(stats, field) atomic_load_explicit(&(stats)->field, memory_order_relaxed)

/** Counts a refused handshake under its HTTP status. */
void wsg_stats_count_refusal(wsg_stats_t *stats, int status);

/** Records `count` deliveries whose message arrived from Redis `latency_ns` ago. */
void wsg_stats_observe_latency(wsg_stats_t *stats, uint64_t latency_ns, uint64_t count);

/** The histogram bucket of a latency in microseconds (WSG_LATENCY_BUCKETS for +Inf). */
unsigned wsg_stats_latency_bucket(uint64_t us);

/** Records `count` deliveries in `bucket` whose latencies add up to `sum_us` (a run of equal buckets). */
void wsg_stats_add_latency(wsg_stats_t *stats, unsigned bucket, uint64_t count, uint64_t sum_us);

/** Writes the Prometheus text exposition of the sum of `n` workers' stats (borrowed) into `out`.
 *  Returns the length written (cut at `cap` - 1; the caller sizes the buffer). */
size_t wsg_stats_render(wsg_stats_t *const *stats, unsigned n, char *out, size_t cap);

/** True when every worker has both Redis connections up. */
bool wsg_stats_redis_ready(wsg_stats_t *const *stats, unsigned n);

#endif
