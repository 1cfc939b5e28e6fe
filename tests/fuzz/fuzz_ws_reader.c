/* Fuzzes the inbound frame path as the gateway wires it: wslay with the boundary tracker, the context taken
 * and released between frames, close codes and UTF-8 checks. The input is fed whole and in random pieces;
 * both runs must report the same messages and the same verdict. */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "utf8.h"
#include "ws_reader.h"

#define MAX_MESSAGE 4096

typedef struct record {
    uint64_t digest; /* order-sensitive digest of every event */
    unsigned events;
    bool closed;
} record_t;

static void mix(record_t *r, unsigned kind, const uint8_t *data, size_t len)
{
    uint64_t h = r->digest ^ (kind * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    r->digest = h ^ len;
    r->events++;
}

static void on_message(void *arg, bool is_text, const uint8_t *data, size_t len)
{
    record_t *r = arg;
    FUZZ_ASSERT(!r->closed);
    FUZZ_ASSERT(len <= MAX_MESSAGE);
    if (is_text)
        FUZZ_ASSERT(wsg_utf8_is_valid(data, len));
    mix(r, is_text ? 1 : 2, data, len);
}

static void on_ping(void *arg, const uint8_t *data, size_t len)
{
    FUZZ_ASSERT(len <= 125);
    mix(arg, 3, data, len);
}

static void on_pong(void *arg, const uint8_t *data, size_t len)
{
    FUZZ_ASSERT(len <= 125);
    mix(arg, 4, data, len);
}

static void on_close(void *arg, uint16_t code, const uint8_t *reason, size_t len)
{
    record_t *r = arg;
    FUZZ_ASSERT(code == WSG_CLOSE_NO_STATUS || wsg_close_code_is_valid(code));
    FUZZ_ASSERT(wsg_utf8_is_valid(reason, len));
    r->closed = true;
    uint8_t c[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    mix(r, 5, c, 2);
}

static const wsg_ws_reader_handler_t handler = {on_message, on_ping, on_pong, on_close};

static uint16_t run(const uint8_t *data, size_t size, uint64_t seed, bool split, record_t *rec)
{
    wsg_ws_reader_t reader;
    wsg_ws_reader_init(&reader);
    uint16_t code = 0;
    size_t off = 0;
    while (off < size) {
        size_t n = split ? 1 + (size_t)(fuzz_next(&seed) % 300) : size;
        if (n > size - off)
            n = size - off;
        if (wsg_ws_reader_feed(&reader, data + off, n, MAX_MESSAGE, &handler, rec, &code) < 0) {
            FUZZ_ASSERT(code == WSG_CLOSE_PROTOCOL_ERROR || code == WSG_CLOSE_INVALID_PAYLOAD ||
                        code == WSG_CLOSE_TOO_BIG || code == WSG_CLOSE_INTERNAL_ERROR);
            FUZZ_ASSERT(!wsg_ws_reader_is_active(&reader));
            break;
        }
        off += n;
    }
    /* When the input ends between messages, the wslay context has been given back. */
    wsg_frame_tracker_t whole;
    wsg_frame_tracker_init(&whole);
    if (code == 0 && !reader.is_done && wsg_frame_tracker_feed(&whole, data, size) == 0 &&
        wsg_frame_tracker_is_idle(&whole))
        FUZZ_ASSERT(!wsg_ws_reader_is_active(&reader));
    wsg_ws_reader_dispose(&reader);
    return code;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    record_t whole = {0}, pieces = {0};
    uint16_t code_whole = run(data, size, 0, false, &whole);
    uint16_t code_pieces = run(data, size, fuzz_seed(data, size), true, &pieces);
    /* UTF-8 errors are found as bytes arrive, so a message split differently may fail at another byte, but
     * the verdict and every event before it must agree. */
    FUZZ_ASSERT(code_whole == code_pieces);
    FUZZ_ASSERT(whole.digest == pieces.digest && whole.events == pieces.events);
    return 0;
}
