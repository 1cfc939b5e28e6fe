/* Tests for protocol/frame.c: outbound headers and control frames, close codes, the inbound tracker. */
#include <errno.h>

#include "frame.h"

#include "test.h"

/* ---- outbound ---- */

static void test_header_size(void)
{
    ASSERT_UINT_EQ(wsg_frame_header_size(0), 2);
    ASSERT_UINT_EQ(wsg_frame_header_size(1), 2);
    ASSERT_UINT_EQ(wsg_frame_header_size(125), 2);
    ASSERT_UINT_EQ(wsg_frame_header_size(126), 4);
    ASSERT_UINT_EQ(wsg_frame_header_size(127), 4);
    ASSERT_UINT_EQ(wsg_frame_header_size(65535), 4);
    ASSERT_UINT_EQ(wsg_frame_header_size(65536), 10);
    ASSERT_UINT_EQ(wsg_frame_header_size(UINT32_MAX), 10);
    ASSERT_UINT_EQ(wsg_frame_header_size(UINT64_MAX), 10);
}

static void check_header(enum wsg_opcode op, bool fin, uint64_t len, const uint8_t *want, size_t want_len,
                         int line)
{
    uint8_t out[WSG_FRAME_HEADER_MAX + 4];
    memset(out, 0xee, sizeof out);
    size_t n = wsg_frame_write_header(out, op, fin, len);
    if (n != want_len || memcmp(out, want, want_len) != 0) {
        TEST_FAIL_AT("line %d: header(op %d, fin %d, len %llu) wrong (%zu bytes)", line, op, fin,
                     (unsigned long long)len, n);
        test_dump_bytes("    got ", out, n);
    }
    if (n != wsg_frame_header_size(len))
        TEST_FAIL_AT("line %d: length disagrees with wsg_frame_header_size()", line);
    if (out[n] != 0xee)
        TEST_FAIL_AT("line %d: wrote past the header", line);
}
#define HEADER(op, fin, len, ...)                                                                            \
    do {                                                                                                     \
        static const uint8_t w_[] = {__VA_ARGS__};                                                           \
        check_header(op, fin, len, w_, sizeof w_, __LINE__);                                                 \
    } while (0)

static void test_write_header(void)
{
    HEADER(WSG_OP_TEXT, true, 0, 0x81, 0x00);
    HEADER(WSG_OP_TEXT, true, 5, 0x81, 0x05);
    HEADER(WSG_OP_BINARY, true, 125, 0x82, 0x7d);
    HEADER(WSG_OP_BINARY, false, 126, 0x02, 0x7e, 0x00, 0x7e);
    HEADER(WSG_OP_TEXT, true, 256, 0x81, 0x7e, 0x01, 0x00);
    HEADER(WSG_OP_TEXT, true, 65535, 0x81, 0x7e, 0xff, 0xff);
    HEADER(WSG_OP_TEXT, true, 65536, 0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00);
    HEADER(WSG_OP_BINARY, true, 0x0102030405060708ull, 0x82, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8);
    HEADER(WSG_OP_BINARY, true, UINT64_MAX, 0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    HEADER(WSG_OP_CONTINUATION, true, 3, 0x80, 0x03);
    HEADER(WSG_OP_CONTINUATION, false, 3, 0x00, 0x03);
    HEADER(WSG_OP_PING, true, 0, 0x89, 0x00);
    HEADER(WSG_OP_PONG, true, 125, 0x8a, 0x7d);
    HEADER(WSG_OP_CLOSE, true, 2, 0x88, 0x02);
}

static void test_write_control(void)
{
    uint8_t out[WSG_FRAME_CONTROL_MAX + 8];
    memset(out, 0xee, sizeof out);
    ASSERT_INT_EQ(wsg_frame_write_control(out, WSG_OP_PING, (const uint8_t *)"hi", 2), 4);
    ASSERT_MEM_EQ(out, "\x89\x02hi", 4);
    ASSERT_UINT_EQ(out[4], 0xee);
    ASSERT_INT_EQ(wsg_frame_write_control(out, WSG_OP_PONG, NULL, 0), 2);
    ASSERT_MEM_EQ(out, "\x8a\x00", 2);
    ASSERT_INT_EQ(wsg_frame_write_control(out, WSG_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2), 4);
    ASSERT_MEM_EQ(out, "\x88\x02\x03\xe8", 4);

    uint8_t payload[126];
    for (int i = 0; i < 126; i++)
        payload[i] = (uint8_t)i;
    memset(out, 0xee, sizeof out);
    ASSERT_INT_EQ(wsg_frame_write_control(out, WSG_OP_PONG, payload, 125), WSG_FRAME_CONTROL_MAX);
    ASSERT_MEM_EQ(out, "\x8a\x7d", 2);
    ASSERT_MEM_EQ(out + 2, payload, 125);
    ASSERT_UINT_EQ(out[WSG_FRAME_CONTROL_MAX], 0xee);
    memset(out, 0xee, sizeof out);
    ASSERT_INT_EQ(wsg_frame_write_control(out, WSG_OP_PING, payload, 126), -EMSGSIZE);
    ASSERT_INT_EQ(wsg_frame_write_control(out, WSG_OP_PING, payload, 100000), -EMSGSIZE);
    ASSERT_UINT_EQ(out[0], 0xee); /* nothing written on error */
}

static void test_prepend_data_header(void)
{
    uint8_t buf[WSG_FRAME_HEADER_MAX + 70000];
    memset(buf, 0xee, WSG_FRAME_HEADER_MAX);
    uint8_t *payload = buf + WSG_FRAME_HEADER_MAX;
    memcpy(payload, "hi", 2);
    ASSERT_UINT_EQ(wsg_frame_prepend_data_header(payload, 2), 2);
    ASSERT_MEM_EQ(payload - 2, "\x81\x02hi", 4);
    ASSERT_UINT_EQ(buf[WSG_FRAME_HEADER_MAX - 3], 0xee); /* nothing written before the header */
    memcpy(payload, "\xff\xfe", 2); /* not UTF-8: binary */
    ASSERT_UINT_EQ(wsg_frame_prepend_data_header(payload, 2), 2);
    ASSERT_MEM_EQ(payload - 2, "\x82\x02", 2);
    ASSERT_UINT_EQ(wsg_frame_prepend_data_header(payload, 0), 2);
    ASSERT_MEM_EQ(payload - 2, "\x81\x00", 2);
    memset(payload, 'a', 70000);
    ASSERT_UINT_EQ(wsg_frame_prepend_data_header(payload, 300), 4);
    ASSERT_MEM_EQ(payload - 4, "\x81\x7e\x01\x2c", 4);
    memset(buf, 0xee, WSG_FRAME_HEADER_MAX);
    ASSERT_UINT_EQ(wsg_frame_prepend_data_header(payload, 70000), 10);
    ASSERT_MEM_EQ(buf, "\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10);
    payload[69999] = 0xc3; /* a cut UTF-8 sequence at the very end */
    ASSERT_UINT_EQ(wsg_frame_prepend_data_header(payload, 70000), 10);
    ASSERT_UINT_EQ(buf[0], 0x82);
}

static void test_write_close(void)
{
    uint8_t out[WSG_FRAME_CONTROL_MAX + 8];
    memset(out, 0xee, sizeof out);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 0, NULL, 0), 2);
    ASSERT_MEM_EQ(out, "\x88\x00", 2);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 0, "ignored", 7), 2);
    ASSERT_MEM_EQ(out, "\x88\x00", 2);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1000, NULL, 0), 4);
    ASSERT_MEM_EQ(out, "\x88\x02\x03\xe8", 4);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, WSG_CLOSE_PROTOCOL_ERROR, "bye", 3), 7);
    ASSERT_MEM_EQ(out,
                  "\x88\x05\x03\xea"
                  "bye",
                  7);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, WSG_CLOSE_STALE, "", 0), 4);
    ASSERT_MEM_EQ(out, "\x88\x02\x0f\xa0", 4);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 0xabcd, "x", 1), 5);
    ASSERT_MEM_EQ(out,
                  "\x88\x03\xab\xcd"
                  "x",
                  5);

    char reason[300];
    memset(reason, 'r', sizeof reason);
    /* 123 bytes fit exactly: a 127-byte frame. */
    memset(out, 0xee, sizeof out);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1001, reason, 123), WSG_FRAME_CONTROL_MAX);
    ASSERT_MEM_EQ(out, "\x88\x7d\x03\xe9", 4);
    ASSERT_MEM_EQ(out + 4, reason, 123);
    ASSERT_UINT_EQ(out[WSG_FRAME_CONTROL_MAX], 0xee);
    /* Longer reasons are cut to 123. */
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1001, reason, 124), WSG_FRAME_CONTROL_MAX);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1001, reason, 300), WSG_FRAME_CONTROL_MAX);
    ASSERT_UINT_EQ(out[1], 125);
    ASSERT_UINT_EQ(out[WSG_FRAME_CONTROL_MAX], 0xee);
    /* ... at a character boundary: 122 ASCII bytes then a 2-byte character keep 122. */
    memcpy(reason + 122, "\xc3\xa9", 2);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1000, reason, 124), 2 + 2 + 122);
    ASSERT_UINT_EQ(out[1], 124);
    /* 121 ASCII bytes then a 4-byte character keep 121. */
    memset(reason, 'r', sizeof reason);
    memcpy(reason + 121, "\xf0\x9f\x98\x80", 4);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1000, reason, 125), 2 + 2 + 121);
    ASSERT_MEM_EQ(out + 4, reason, 121);
    /* ... unless the character ends at 123. */
    memset(reason, 'r', sizeof reason);
    memcpy(reason + 119, "\xf0\x9f\x98\x80", 4);
    ASSERT_UINT_EQ(wsg_frame_write_close(out, 1000, reason, 130), WSG_FRAME_CONTROL_MAX);
    ASSERT_MEM_EQ(out + 4 + 119, "\xf0\x9f\x98\x80", 4);
}

static void test_close_code_is_valid(void)
{
    for (uint32_t c = 0; c <= 0xffff; c++) {
        bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
        if (wsg_close_code_is_valid((uint16_t)c) != want)
            TEST_FAIL_AT("close code %u: %d, want %d", c, !want, want);
    }
    ASSERT_TRUE(wsg_close_code_is_valid(WSG_CLOSE_NORMAL));
    ASSERT_TRUE(wsg_close_code_is_valid(WSG_CLOSE_STALE));
    ASSERT_FALSE(wsg_close_code_is_valid(WSG_CLOSE_NO_STATUS));
    ASSERT_FALSE(wsg_close_code_is_valid(WSG_CLOSE_ABNORMAL));
    ASSERT_FALSE(wsg_close_code_is_valid(1004));
    ASSERT_FALSE(wsg_close_code_is_valid(1015));
    ASSERT_FALSE(wsg_close_code_is_valid(2999));
    ASSERT_FALSE(wsg_close_code_is_valid(5000));
}

/* ---- inbound tracker ---- */

/* Appends a client frame to `buf` at `*n`: header with the given first byte, mask bit and length encoding
 * (0: shortest, 16 or 64: forced), a mask key, and `len` payload bytes. */
static void put_frame_ex(uint8_t *buf, size_t *n, uint8_t b0, bool masked, uint64_t len, int ext)
{
    uint8_t m = masked ? 0x80 : 0;
    if (ext == 0)
        ext = len <= 125 ? 7 : len <= 0xffff ? 16 : 64;
    if (ext == 7) {
        buf[(*n)++] = b0;
        buf[(*n)++] = (uint8_t)(m | len);
    } else if (ext == 16) {
        buf[(*n)++] = b0;
        buf[(*n)++] = m | 126;
        buf[(*n)++] = (uint8_t)(len >> 8);
        buf[(*n)++] = (uint8_t)len;
    } else {
        buf[(*n)++] = b0;
        buf[(*n)++] = m | 127;
        for (int i = 0; i < 8; i++)
            buf[(*n)++] = (uint8_t)(len >> (56 - 8 * i));
    }
    if (masked) {
        memcpy(buf + *n, "\x12\x34\x56\x78", 4);
        *n += 4;
    }
    for (uint64_t i = 0; i < len; i++)
        buf[(*n)++] = (uint8_t)(i * 31 + 7);
}

static void put_frame(uint8_t *buf, size_t *n, bool fin, enum wsg_opcode op, uint64_t len)
{
    put_frame_ex(buf, n, (uint8_t)((fin ? 0x80 : 0) | op), true, len, 0);
}

typedef struct outcome {
    int rc;
    size_t err_at; /* byte index whose feeding failed, fed byte by byte; SIZE_MAX when no error */
    bool idle, in_frag, saw_close;
} outcome_t;

static bool same_state(const wsg_frame_tracker_t *a, const wsg_frame_tracker_t *b)
{
    return a->payload_left == b->payload_left && a->header_len == b->header_len &&
           memcmp(a->header, b->header, a->header_len) == 0 && a->in_fragmented_msg == b->in_fragmented_msg &&
           a->saw_close == b->saw_close;
}

/* Feeds `data` in every way: whole, split in two at every byte, byte by byte, and in chunks of 1..7 bytes;
 * checks that all agree with `want`. */
static void check_stream(const uint8_t *data, size_t len, outcome_t want, int line)
{
    wsg_frame_tracker_t whole, t;
    wsg_frame_tracker_init(&whole);
    int rc = wsg_frame_tracker_feed(&whole, data, len);
    if (rc != want.rc) {
        TEST_FAIL_AT("line %d: whole feed: rc %d, want %d", line, rc, want.rc);
        return;
    }
    if (rc == 0) {
        if (wsg_frame_tracker_is_idle(&whole) != want.idle || whole.in_fragmented_msg != want.in_frag ||
            whole.saw_close != want.saw_close)
            TEST_FAIL_AT("line %d: whole feed: idle %d frag %d close %d, want %d %d %d", line,
                         wsg_frame_tracker_is_idle(&whole), whole.in_fragmented_msg, whole.saw_close,
                         want.idle, want.in_frag, want.saw_close);
    }
    /* Byte by byte: the error surfaces exactly at the offending byte. */
    wsg_frame_tracker_init(&t);
    size_t err_at = SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        rc = wsg_frame_tracker_feed(&t, data + i, 1);
        if (rc < 0) {
            err_at = i;
            break;
        }
    }
    if (rc != want.rc || err_at != want.err_at)
        TEST_FAIL_AT("line %d: byte by byte: rc %d at %zu, want %d at %zu", line, rc, err_at, want.rc,
                     want.err_at);
    else if (rc == 0 && !same_state(&t, &whole))
        TEST_FAIL_AT("line %d: byte by byte: state differs from the whole feed", line);
    /* Two pieces, split at every byte (including the empty pieces). */
    for (size_t k = 0; k <= len; k++) {
        wsg_frame_tracker_init(&t);
        rc = wsg_frame_tracker_feed(&t, data, k);
        if (rc == 0)
            rc = wsg_frame_tracker_feed(&t, data + k, len - k);
        if (rc != want.rc) {
            TEST_FAIL_AT("line %d: split at %zu: rc %d, want %d", line, k, rc, want.rc);
            break;
        }
        if (rc == 0 && !same_state(&t, &whole)) {
            TEST_FAIL_AT("line %d: split at %zu: state differs from the whole feed", line, k);
            break;
        }
    }
    /* Uneven chunks. */
    for (size_t step = 2; step <= 7; step++) {
        wsg_frame_tracker_init(&t);
        rc = 0;
        for (size_t i = 0; i < len && rc == 0; i += step)
            rc = wsg_frame_tracker_feed(&t, data + i, len - i < step ? len - i : step);
        if (rc != want.rc || (rc == 0 && !same_state(&t, &whole)))
            TEST_FAIL_AT("line %d: chunks of %zu disagree", line, step);
    }
}

#define OK_STREAM(buf, n, idle, frag, close)                                                                 \
    check_stream(buf, n, (outcome_t){0, SIZE_MAX, idle, frag, close}, __LINE__)
#define BAD_STREAM(buf, n, at) check_stream(buf, n, (outcome_t){-EPROTO, at, false, false, false}, __LINE__)

static uint8_t big[2 * 70000 + 4096];

static void test_tracker_init(void)
{
    wsg_frame_tracker_t t;
    memset(&t, 0xff, sizeof t);
    wsg_frame_tracker_init(&t);
    ASSERT_TRUE(wsg_frame_tracker_is_idle(&t));
    ASSERT_FALSE(t.saw_close);
    ASSERT_FALSE(t.in_fragmented_msg);
    ASSERT_UINT_EQ(t.header_len, 0);
    ASSERT_UINT_EQ(t.payload_left, 0);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, NULL, 0), 0);
    ASSERT_TRUE(wsg_frame_tracker_is_idle(&t));
    /* Small enough to live in every connection. */
    ASSERT_TRUE(sizeof t <= 32);
}

static void test_tracker_single_frames(void)
{
    size_t n = 0;
    put_frame(big, &n, true, WSG_OP_TEXT, 5);
    ASSERT_UINT_EQ(n, 2 + 4 + 5);
    OK_STREAM(big, n, true, false, false);
    n = 0;
    put_frame(big, &n, true, WSG_OP_BINARY, 0);
    OK_STREAM(big, n, true, false, false);
    /* Length boundaries: 7-bit, 16-bit and 64-bit encodings. */
    static const uint64_t lens[] = {125, 126, 127, 65535, 65536, 65537};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        n = 0;
        put_frame(big, &n, true, WSG_OP_BINARY, lens[i]);
        ASSERT_UINT_EQ(n, (lens[i] <= 125 ? 2 : lens[i] <= 65535 ? 4 : 10) + 4 + lens[i]);
        if (lens[i] < 1000)
            OK_STREAM(big, n, true, false, false);
        wsg_frame_tracker_t t;
        wsg_frame_tracker_init(&t);
        ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, big, n - 1), 0);
        ASSERT_FALSE(wsg_frame_tracker_is_idle(&t));
        ASSERT_UINT_EQ(t.payload_left, 1);
        ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, big + n - 1, 1), 0);
        ASSERT_TRUE(wsg_frame_tracker_is_idle(&t));
    }
    /* Longer-than-needed length encodings are tolerated for data frames (control frames: see errors). */
    n = 0;
    put_frame_ex(big, &n, 0x81, true, 5, 16);
    put_frame_ex(big, &n, 0x82, true, 3, 64);
    put_frame_ex(big, &n, 0x01, true, 0, 64);
    put_frame_ex(big, &n, 0x80, true, 200, 64);
    OK_STREAM(big, n, true, false, false);
}

static void test_tracker_progress(void)
{
    /* Header bytes, then payload bytes, then the boundary. */
    uint8_t buf[64];
    size_t n = 0;
    put_frame(buf, &n, true, WSG_OP_TEXT, 10);
    wsg_frame_tracker_t t;
    wsg_frame_tracker_init(&t);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf, 1), 0);
    ASSERT_UINT_EQ(t.header_len, 1);
    ASSERT_FALSE(wsg_frame_tracker_is_idle(&t));
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf + 1, 4), 0);
    ASSERT_UINT_EQ(t.header_len, 5);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf + 5, 1), 0);
    ASSERT_UINT_EQ(t.header_len, 0);
    ASSERT_UINT_EQ(t.payload_left, 10);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf + 6, 9), 0);
    ASSERT_UINT_EQ(t.payload_left, 1);
    ASSERT_FALSE(wsg_frame_tracker_is_idle(&t));
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf + 15, 1), 0);
    ASSERT_TRUE(wsg_frame_tracker_is_idle(&t));
    /* A 64-bit length far beyond memory is only counted. */
    n = 0;
    put_frame_ex(buf, &n, 0x82, true, 0, 64);
    buf[2] = 0x7f; /* 0x7f00000000000000 bytes */
    wsg_frame_tracker_init(&t);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf, n), 0);
    ASSERT_UINT_EQ(t.payload_left, 0x7f00000000000000ull);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, big, sizeof big), 0);
    ASSERT_UINT_EQ(t.payload_left, 0x7f00000000000000ull - sizeof big);
}

static void test_tracker_sequences(void)
{
    size_t n = 0;
    /* Several whole messages back to back. */
    put_frame(big, &n, true, WSG_OP_TEXT, 3);
    put_frame(big, &n, true, WSG_OP_PING, 4);
    put_frame(big, &n, true, WSG_OP_BINARY, 200);
    put_frame(big, &n, true, WSG_OP_PONG, 0);
    OK_STREAM(big, n, true, false, false);
    /* A fragmented message with control frames in between. */
    n = 0;
    put_frame(big, &n, false, WSG_OP_TEXT, 2);
    OK_STREAM(big, n, false, true, false);
    put_frame(big, &n, true, WSG_OP_PING, 1);
    OK_STREAM(big, n, false, true, false);
    put_frame(big, &n, false, WSG_OP_CONTINUATION, 130);
    put_frame(big, &n, true, WSG_OP_PONG, 125);
    put_frame(big, &n, false, WSG_OP_CONTINUATION, 0);
    OK_STREAM(big, n, false, true, false);
    put_frame(big, &n, true, WSG_OP_CONTINUATION, 4);
    OK_STREAM(big, n, true, false, false);
    /* A new message may start after the fragmented one ends. */
    put_frame(big, &n, false, WSG_OP_BINARY, 1);
    put_frame(big, &n, true, WSG_OP_CONTINUATION, 1);
    put_frame(big, &n, true, WSG_OP_TEXT, 1);
    OK_STREAM(big, n, true, false, false);
    /* A close frame, inside a fragmented message too. */
    n = 0;
    put_frame(big, &n, true, WSG_OP_CLOSE, 2);
    OK_STREAM(big, n, true, false, true);
    n = 0;
    put_frame(big, &n, true, WSG_OP_CLOSE, 0);
    OK_STREAM(big, n, true, false, true);
    n = 0;
    put_frame(big, &n, false, WSG_OP_TEXT, 2);
    put_frame(big, &n, true, WSG_OP_CLOSE, 125);
    OK_STREAM(big, n, false, true, true);
    /* The close header counts as soon as it is whole, before its payload. */
    n = 0;
    put_frame(big, &n, true, WSG_OP_CLOSE, 10);
    wsg_frame_tracker_t t;
    wsg_frame_tracker_init(&t);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, big, 5), 0);
    ASSERT_FALSE(t.saw_close);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, big + 5, 1), 0);
    ASSERT_TRUE(t.saw_close);
    ASSERT_FALSE(wsg_frame_tracker_is_idle(&t));
    /* Whatever follows a close is still tracked. */
    put_frame(big, &n, true, WSG_OP_TEXT, 1);
    OK_STREAM(big, n, true, false, true);
}

static void test_tracker_errors(void)
{
    uint8_t buf[64];
    size_t n;
    /* Reserved bits, each alone. */
    for (int rsv = 0x10; rsv <= 0x40; rsv <<= 1) {
        n = 0;
        put_frame_ex(buf, &n, (uint8_t)(0x81 | rsv), true, 1, 0);
        BAD_STREAM(buf, n, 1);
    }
    /* Reserved opcodes. */
    static const uint8_t bad_ops[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof bad_ops; i++) {
        n = 0;
        put_frame_ex(buf, &n, (uint8_t)(0x80 | bad_ops[i]), true, 1, 0);
        BAD_STREAM(buf, n, 1);
    }
    /* Unmasked frames, data and control. */
    n = 0;
    put_frame_ex(buf, &n, 0x81, false, 3, 0);
    BAD_STREAM(buf, n, 1);
    n = 0;
    put_frame_ex(buf, &n, 0x89, false, 0, 0);
    BAD_STREAM(buf, n, 1);
    /* Control frames over 125 bytes, or fragmented; an extended length field counts as over 125 even when
     * it holds a small number (as in wslay), since the 7-bit field alone must carry a control length. */
    n = 0;
    put_frame_ex(buf, &n, 0x89, true, 0, 16);
    BAD_STREAM(buf, n, 1);
    n = 0;
    put_frame_ex(buf, &n, 0x8a, true, 0, 64);
    BAD_STREAM(buf, n, 1);
    n = 0;
    put_frame_ex(buf, &n, 0x08, true, 2, 0);
    BAD_STREAM(buf, n, 1);
    n = 0;
    put_frame_ex(buf, &n, 0x09, true, 0, 0);
    BAD_STREAM(buf, n, 1);
    /* A continuation without an open message. */
    n = 0;
    put_frame(buf, &n, true, WSG_OP_CONTINUATION, 1);
    BAD_STREAM(buf, n, 1);
    n = 0;
    put_frame(buf, &n, false, WSG_OP_CONTINUATION, 1);
    BAD_STREAM(buf, n, 1);
    n = 0;
    put_frame(buf, &n, true, WSG_OP_TEXT, 1);
    size_t at = n + 1;
    put_frame(buf, &n, true, WSG_OP_CONTINUATION, 1);
    BAD_STREAM(buf, n, at);
    /* A data frame inside an open message. */
    n = 0;
    put_frame(buf, &n, false, WSG_OP_TEXT, 1);
    put_frame(buf, &n, true, WSG_OP_PING, 0);
    at = n + 1;
    put_frame(buf, &n, true, WSG_OP_BINARY, 1);
    BAD_STREAM(buf, n, at);
    n = 0;
    put_frame(buf, &n, false, WSG_OP_BINARY, 1);
    at = n + 1;
    put_frame(buf, &n, false, WSG_OP_TEXT, 1);
    BAD_STREAM(buf, n, at);
    /* A 64-bit length with its top bit set fails at that byte; the next-highest bit is fine. */
    n = 0;
    put_frame_ex(buf, &n, 0x82, true, 0, 64);
    buf[2] = 0x80;
    BAD_STREAM(buf, n, 2);
    buf[2] = 0x40;
    wsg_frame_tracker_t t;
    wsg_frame_tracker_init(&t);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf, n), 0);
    ASSERT_UINT_EQ(t.payload_left, 0x4000000000000000ull);
    /* An error after good frames, in the middle of a stream. */
    n = 0;
    put_frame(big, &n, true, WSG_OP_TEXT, 300);
    put_frame(big, &n, true, WSG_OP_PING, 3);
    at = n;
    put_frame_ex(big, &n, 0xc1, true, 2, 0);
    BAD_STREAM(big, n, at + 1);
}

static void test_tracker_reset(void)
{
    uint8_t buf[32];
    size_t n = 0;
    put_frame_ex(buf, &n, 0xf1, true, 1, 0);
    wsg_frame_tracker_t t;
    wsg_frame_tracker_init(&t);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf, n), -EPROTO);
    wsg_frame_tracker_init(&t);
    ASSERT_TRUE(wsg_frame_tracker_is_idle(&t));
    n = 0;
    put_frame(buf, &n, true, WSG_OP_TEXT, 1);
    ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf, n), 0);
    ASSERT_TRUE(wsg_frame_tracker_is_idle(&t));
}

/* in_close_frame / at_frame_start follow the stream byte by byte through text, close and text frames. */
static void test_tracker_close_position(void)
{
    uint8_t buf[512];
    size_t n = 0;
    put_frame(buf, &n, true, WSG_OP_TEXT, 3);
    size_t close_start = n;
    put_frame(buf, &n, true, WSG_OP_CLOSE, 7);
    size_t close_end = n;
    put_frame(buf, &n, true, WSG_OP_TEXT, 2);
    wsg_frame_tracker_t t;
    wsg_frame_tracker_init(&t);
    ASSERT_TRUE(wsg_frame_tracker_at_frame_start(&t));
    ASSERT_FALSE(wsg_frame_tracker_in_close_frame(&t));
    for (size_t i = 0; i < n; i++) {
        ASSERT_INT_EQ(wsg_frame_tracker_feed(&t, buf + i, 1), 0);
        size_t fed = i + 1;
        bool inside_close = fed > close_start && fed < close_end;
        if (wsg_frame_tracker_in_close_frame(&t) != inside_close)
            TEST_FAIL_AT("after %zu bytes: in_close_frame %d, expected %d", fed,
                         wsg_frame_tracker_in_close_frame(&t), inside_close);
        bool boundary = fed == close_start || fed == close_end || fed == n;
        if (wsg_frame_tracker_at_frame_start(&t) != boundary)
            TEST_FAIL_AT("after %zu bytes: at_frame_start %d, expected %d", fed,
                         wsg_frame_tracker_at_frame_start(&t), boundary);
    }
}

TEST_MAIN("frame", TEST_CASE(test_header_size), TEST_CASE(test_write_header), TEST_CASE(test_write_control),
          TEST_CASE(test_prepend_data_header),
          TEST_CASE(test_write_close), TEST_CASE(test_close_code_is_valid), TEST_CASE(test_tracker_init),
          TEST_CASE(test_tracker_single_frames), TEST_CASE(test_tracker_progress),
          TEST_CASE(test_tracker_sequences), TEST_CASE(test_tracker_errors), TEST_CASE(test_tracker_reset),
          TEST_CASE(test_tracker_close_position))
