/* Server-side frames (RFC 6455 5.2): unmasked headers out, masked client headers tracked in. */
#include "frame.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "utf8.h"

size_t wsg_frame_header_size(uint64_t payload_len)
{
    if (payload_len <= 125)
        return 2;
    if (payload_len <= 0xffff)
        return 4;
    return 10;
}

size_t wsg_frame_write_header(uint8_t *out, enum wsg_opcode opcode, bool fin, uint64_t payload_len)
{
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    if (payload_len <= 125) {
        out[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
    return 10;
}

size_t wsg_frame_prepend_data_header(uint8_t *payload, size_t len)
{
    enum wsg_opcode op = wsg_utf8_is_valid(payload, len) ? WSG_OP_TEXT : WSG_OP_BINARY;
    size_t h = wsg_frame_header_size(len);
    return wsg_frame_write_header(payload - h, op, true, len);
}

static bool is_control(unsigned opcode)
{
    return (opcode & 0x08) != 0;
}

ssize_t wsg_frame_write_control(uint8_t *out, enum wsg_opcode opcode, const uint8_t *payload, size_t len)
{
    assert(opcode == WSG_OP_CLOSE || opcode == WSG_OP_PING || opcode == WSG_OP_PONG);
    if (len > 125)
        return -EMSGSIZE;
    size_t h = wsg_frame_write_header(out, opcode, true, len);
    if (len > 0)
        memcpy(out + h, payload, len);
    return (ssize_t)(h + len);
}

size_t wsg_frame_write_close(uint8_t *out, uint16_t code, const char *reason, size_t reason_len)
{
    if (code == 0)
        return wsg_frame_write_header(out, WSG_OP_CLOSE, true, 0);
    size_t n = wsg_utf8_cut((const uint8_t *)reason, reason_len, 123);
    size_t h = wsg_frame_write_header(out, WSG_OP_CLOSE, true, 2 + n);
    out[h] = (uint8_t)(code >> 8);
    out[h + 1] = (uint8_t)code;
    if (n > 0)
        memcpy(out + h + 2, reason, n);
    return h + 2 + n;
}

bool wsg_close_code_is_valid(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

void wsg_frame_tracker_init(wsg_frame_tracker_t *t)
{
    memset(t, 0, sizeof *t);
}

/* Checks the first two header bytes, which hold everything but the extended length and the mask key. */
static int check_first_bytes(const wsg_frame_tracker_t *t)
{
    uint8_t b0 = t->header[0], b1 = t->header[1];
    bool fin = (b0 & 0x80) != 0;
    unsigned opcode = b0 & 0x0f;
    unsigned len7 = b1 & 0x7f;
    if (b0 & 0x70)
        return -EPROTO; /* RSV1-3: no extension was negotiated */
    if (!(b1 & 0x80))
        return -EPROTO; /* a client masks every frame (RFC 6455 5.1) */
    switch (opcode) {
    case WSG_OP_CONTINUATION:
        if (!t->in_fragmented_msg)
            return -EPROTO;
        break;
    case WSG_OP_TEXT:
    case WSG_OP_BINARY:
        if (t->in_fragmented_msg)
            return -EPROTO;
        break;
    case WSG_OP_CLOSE:
    case WSG_OP_PING:
    case WSG_OP_PONG:
        if (!fin || len7 > 125)
            return -EPROTO;
        break;
    default:
        return -EPROTO;
    }
    return 0;
}

/* The whole header length (mask key included) once the first two bytes are known. */
static size_t full_header_len(const wsg_frame_tracker_t *t)
{
    unsigned len7 = t->header[1] & 0x7f;
    return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

static uint64_t payload_len(const wsg_frame_tracker_t *t)
{
    unsigned len7 = t->header[1] & 0x7f;
    if (len7 < 126)
        return len7;
    if (len7 == 126)
        return (uint64_t)t->header[2] << 8 | t->header[3];
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | t->header[2 + i];
    return v;
}

/* A whole header is in: account for the frame it starts. */
static void finish_header(wsg_frame_tracker_t *t)
{
    bool fin = (t->header[0] & 0x80) != 0;
    unsigned opcode = t->header[0] & 0x0f;
    if (opcode == WSG_OP_CLOSE)
        t->saw_close = true;
    else if (!is_control(opcode))
        t->in_fragmented_msg = !fin; /* TEXT/BINARY open a message unless FIN; a final CONTINUATION ends it */
    t->payload_left = payload_len(t);
    t->header_len = 0;
}

int wsg_frame_tracker_feed(wsg_frame_tracker_t *t, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (t->header_len == 0 && t->payload_left > 0) {
            uint64_t skip = len - i < t->payload_left ? len - i : t->payload_left;
            t->payload_left -= skip;
            i += (size_t)skip;
            continue;
        }
        t->header[t->header_len++] = data[i++];
        if (t->header_len < 2)
            continue;
        if (t->header_len == 2) {
            int rc = check_first_bytes(t);
            if (rc < 0)
                return rc;
        }
        if (t->header_len == 3 && (t->header[1] & 0x7f) == 127 && (t->header[2] & 0x80))
            return -EPROTO; /* RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0 */
        if (t->header_len == full_header_len(t))
            finish_header(t);
    }
    return 0;
}

bool wsg_frame_tracker_is_idle(const wsg_frame_tracker_t *t)
{
    return t->header_len == 0 && t->payload_left == 0 && !t->in_fragmented_msg;
}

bool wsg_frame_tracker_in_close_frame(const wsg_frame_tracker_t *t)
{
    /* header[0] keeps the first byte of the current frame after its header is complete. */
    bool in_frame = t->header_len > 0 || t->payload_left > 0;
    return in_frame && (t->header[0] & 0x0f) == WSG_OP_CLOSE;
}

bool wsg_frame_tracker_at_frame_start(const wsg_frame_tracker_t *t)
{
    return t->header_len == 0 && t->payload_left == 0;
}
