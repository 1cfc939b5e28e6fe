/* The benchmark payload: a CLOCK_MONOTONIC send time and a sequence number in ASCII, padded to a fixed size.
 */
#ifndef WSG_TESTS_BENCH_PAYLOAD_H
#define WSG_TESTS_BENCH_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Layout: "TTTTTTTTTTTTTTTT:SSSSSSSS:xxxx..." = 16 hex digits of the send time in ns, ':', 8 hex digits of
 * the sequence number, ':', then 'x' up to the payload size. Plain ASCII, so every gateway sends it as a text
 * frame; CLOCK_MONOTONIC is one clock for every process of the machine, so a receiver in another process
 * subtracts it from its own reading. */

/** Bytes of the payload that carry the time and the sequence number (the rest is padding). */
#define BENCH_PAYLOAD_HEAD 26
/** The smallest payload size the publisher accepts. */
#define BENCH_PAYLOAD_MIN 32

/** CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_put_hex(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = hex[v & 15];
        v >>= 4;
    }
}

static inline bool bench_get_hex(const char *in, int digits, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        char c = in[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return false;
        v = (v << 4) | d;
    }
    *out = v;
    return true;
}

/** Writes a payload of `size` bytes (>= BENCH_PAYLOAD_MIN) into `out`: time `ns`, sequence number `seq`. */
static inline void bench_payload_write(char *out, size_t size, uint64_t ns, uint32_t seq)
{
    bench_put_hex(out, ns, 16);
    out[16] = ':';
    bench_put_hex(out + 17, seq, 8);
    out[25] = ':';
    for (size_t i = BENCH_PAYLOAD_HEAD; i < size; i++)
        out[i] = 'x';
}

/** Reads the time and the sequence number from the first `len` bytes of a payload; false when they are not
 *  a benchmark payload (a heartbeat, say). */
static inline bool bench_payload_read(const char *in, size_t len, uint64_t *ns, uint32_t *seq)
{
    uint64_t s;
    if (len < BENCH_PAYLOAD_HEAD || in[16] != ':' || in[25] != ':')
        return false;
    if (!bench_get_hex(in, 16, ns) || !bench_get_hex(in + 17, 8, &s))
        return false;
    *seq = (uint32_t)s;
    return true;
}

#endif
