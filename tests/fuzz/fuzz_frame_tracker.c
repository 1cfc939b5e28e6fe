/* Fuzzes the inbound frame tracker: the input is a client byte stream, fed whole, byte by byte and in
 * chunks of sizes derived from the input; every way must agree. Also round-trips outbound headers and close
 * frames built from the input. */
#include <errno.h>
#include <string.h>

#include "frame.h"
#include "utf8.h"

#include "fuzz.h"

static bool same_state(const wsg_frame_tracker_t *a, const wsg_frame_tracker_t *b)
{
    return a->payload_left == b->payload_left && a->header_len == b->header_len &&
           memcmp(a->header, b->header, a->header_len) == 0 && a->in_fragmented_msg == b->in_fragmented_msg &&
           a->saw_close == b->saw_close;
}

static void check_invariants(const wsg_frame_tracker_t *t)
{
    FUZZ_ASSERT(t->header_len < sizeof t->header);
    FUZZ_ASSERT(t->header_len == 0 || t->payload_left == 0);
    FUZZ_ASSERT(wsg_frame_tracker_is_idle(t) ==
                (t->header_len == 0 && t->payload_left == 0 && !t->in_fragmented_msg));
}

/* Feeds `data` in chunks chosen by `rng` (a state of 0 means byte by byte). Returns the first error or 0. */
static int feed_chunks(wsg_frame_tracker_t *t, const uint8_t *data, size_t size, uint64_t rng)
{
    wsg_frame_tracker_init(t);
    size_t i = 0;
    while (i < size) {
        size_t n = 1;
        if (rng != 0) {
            uint64_t r = fuzz_next(&rng);
            /* Mostly short chunks (header-sized), sometimes long ones, sometimes empty. */
            n = (r & 3) == 0 ? (size_t)(r >> 8) % (size - i + 1) : (size_t)(r >> 8) % 16;
        }
        if (n > size - i)
            n = size - i;
        int rc = wsg_frame_tracker_feed(t, data + i, n);
        if (rc != 0)
            return rc;
        check_invariants(t);
        i += n;
    }
    return 0;
}

static void check_outbound(const uint8_t *data, size_t size)
{
    if (size < 10)
        return;
    uint64_t len = 0;
    for (int i = 0; i < 8; i++)
        len = len << 8 | data[i];
    len >>= (data[8] & 63); /* spread lengths over all magnitudes */
    uint8_t hdr[WSG_FRAME_HEADER_MAX];
    enum wsg_opcode op = (enum wsg_opcode)(data[9] & 0x0f);
    bool fin = data[9] & 0x80;
    size_t h = wsg_frame_write_header(hdr, op, fin, len);
    FUZZ_ASSERT(h == wsg_frame_header_size(len));
    FUZZ_ASSERT(hdr[0] == ((fin ? 0x80 : 0) | op));
    FUZZ_ASSERT((hdr[1] & 0x80) == 0);
    uint64_t back = hdr[1] & 0x7f;
    if (back == 126)
        back = (uint64_t)hdr[2] << 8 | hdr[3];
    else if (back == 127)
        for (int i = 0; i < 8; i++)
            back = (i == 0 ? 0 : back << 8) | hdr[2 + i];
    FUZZ_ASSERT(back == len);

    /* Close frames: code from two bytes, reason from the rest. */
    uint8_t frame[WSG_FRAME_CONTROL_MAX];
    uint16_t code = (uint16_t)(data[0] << 8 | data[1]);
    const char *reason = (const char *)data + 2;
    size_t reason_len = size - 2;
    size_t n = wsg_frame_write_close(frame, code, reason, reason_len);
    FUZZ_ASSERT(n <= WSG_FRAME_CONTROL_MAX);
    FUZZ_ASSERT(frame[0] == 0x88 && frame[1] == n - 2);
    if (code == 0) {
        FUZZ_ASSERT(n == 2);
    } else {
        FUZZ_ASSERT(n >= 4 && frame[2] == data[0] && frame[3] == data[1]);
        FUZZ_ASSERT(memcmp(frame + 4, reason, n - 4) == 0);
        if (wsg_utf8_is_valid((const uint8_t *)reason, reason_len))
            FUZZ_ASSERT(wsg_utf8_is_valid(frame + 4, n - 4));
        if (reason_len <= 123)
            FUZZ_ASSERT(n - 4 == reason_len);
        else
            FUZZ_ASSERT(n - 4 >= 120);
    }
    /* Control frames carry at most 125 bytes. */
    ssize_t c = wsg_frame_write_control(frame, WSG_OP_PING, data, size);
    FUZZ_ASSERT(size > 125 ? c == -EMSGSIZE : (c == (ssize_t)size + 2 && memcmp(frame + 2, data, size) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wsg_frame_tracker_t whole, t;
    wsg_frame_tracker_init(&whole);
    int rc = wsg_frame_tracker_feed(&whole, data, size);
    FUZZ_ASSERT(rc == 0 || rc == -EPROTO);
    if (rc == 0)
        check_invariants(&whole);

    /* Byte by byte, and three chunkings seeded from the input. */
    uint64_t seed = fuzz_seed(data, size);
    for (int k = 0; k < 4; k++) {
        int rc2 = feed_chunks(&t, data, size, k == 0 ? 0 : seed + (uint64_t)k * 0x9e3779b97f4a7c15ull);
        FUZZ_ASSERT(rc2 == rc);
        if (rc == 0)
            FUZZ_ASSERT(same_state(&t, &whole));
    }

    /* A prefix of a good stream is good too, and resuming from it gives the same end state. */
    if (rc == 0 && size > 0) {
        size_t cut = (size_t)(seed % size);
        wsg_frame_tracker_init(&t);
        FUZZ_ASSERT(wsg_frame_tracker_feed(&t, data, cut) == 0);
        FUZZ_ASSERT(wsg_frame_tracker_feed(&t, data + cut, size - cut) == 0);
        FUZZ_ASSERT(same_state(&t, &whole));
    }

    check_outbound(data, size);
    return 0;
}
