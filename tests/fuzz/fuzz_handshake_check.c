/* Fuzzes the pure handshake code: checks, accept key, subprotocol choice and response writers, with the
 * request fields cut from the input. (Parsing whole HTTP requests is the gateway's, fuzzed there.) */
#include <errno.h>
#include <string.h>

#include "base64.h"
#include "handshake.h"

#include "fuzz.h"

/* Splits the input at '\n' into up to `max` fields; a field that is exactly "-" is an absent header. */
static size_t fields(const uint8_t *data, size_t size, wsg_str_t *out, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i <= size && n < max; i++) {
        if (i < size && data[i] != '\n')
            continue;
        out[n] = (wsg_str_t){(const char *)data + start, i - start};
        if (out[n].len == 1 && out[n].ptr[0] == '-')
            out[n] = WSG_STR_NULL;
        n++;
        start = i + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 8192)
        return 0;
    wsg_str_t f[7] = {{0}};
    fields(data + 2, size - 2, f, 7);
    wsg_upgrade_req_t req = {
        .method = f[0],
        .http_major = data[0] % 4,
        .http_minor = data[1] % 4,
        .upgrade = f[1],
        .connection = f[2],
        .ws_version = f[3],
        .ws_key = f[4],
        .ws_protocol = f[5],
    };
    wsg_handshake_verdict_t v = wsg_handshake_check(&req);
    static const int allowed[] = {0, 400, 426};
    bool known = false;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        known |= v.status == allowed[i];
    FUZZ_ASSERT(known && v.body != NULL);
    FUZZ_ASSERT((v.status == 426) == (v.body[0] == '\0' && v.status != 0));
    if (v.status == 0) {
        FUZZ_ASSERT(req.http_major == 1 && req.http_minor >= 1);
        FUZZ_ASSERT(req.method.len == 3 && memcmp(req.method.ptr, "GET", 3) == 0);
        wsg_str_t key = wsg_str_trim(req.ws_key);
        uint8_t raw[32];
        FUZZ_ASSERT(wsg_base64_decode(key.ptr, key.len, raw, sizeof raw, false) == 16);
    }

    char accept[WSG_ACCEPT_KEY_LEN + 1];
    memset(accept, 0, sizeof accept);
    wsg_handshake_accept_key(f[4], accept);
    FUZZ_ASSERT(strlen(accept) == WSG_ACCEPT_KEY_LEN);
    uint8_t digest[21];
    FUZZ_ASSERT(wsg_base64_decode(accept, WSG_ACCEPT_KEY_LEN, digest, sizeof digest, false) == 20);

    wsg_str_t proto = wsg_handshake_pick_subprotocol(f[5]);
    if (proto.len > 0) {
        FUZZ_ASSERT(proto.ptr >= f[5].ptr && proto.ptr + proto.len <= f[5].ptr + f[5].len);
        FUZZ_ASSERT(memchr(proto.ptr, ',', proto.len) == NULL);
        FUZZ_ASSERT(wsg_str_eq(wsg_str_trim(proto), proto));
    }

    char buf[1024];
    ssize_t n = wsg_handshake_write_101(buf, sizeof buf, accept, proto);
    size_t want = 101 + WSG_ACCEPT_KEY_LEN + (proto.len ? 26 + proto.len : 0);
    FUZZ_ASSERT(want > sizeof buf ? n == -ENOSPC : n == (ssize_t)want);
    if (n > 0) {
        FUZZ_ASSERT(memcmp(buf, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
        FUZZ_ASSERT(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
        FUZZ_ASSERT(wsg_handshake_write_101(buf, (size_t)n - 1, accept, proto) == -ENOSPC);
    }

    int status = 100 + (int)(data[0] | data[1] << 8) % 500;
    n = wsg_http_write_response(buf, sizeof buf, status, NULL, f[6]);
    if (n > 0) {
        FUZZ_ASSERT(memcmp(buf, "HTTP/1.1 ", 9) == 0);
        FUZZ_ASSERT(f[6].len == 0 || memcmp(buf + n - f[6].len, f[6].ptr, f[6].len) == 0);
        FUZZ_ASSERT(wsg_http_write_response(buf, (size_t)n - 1, status, NULL, f[6]) == -ENOSPC);
    } else {
        FUZZ_ASSERT(n == -ENOSPC && f[6].len > 800);
    }
    return 0;
}
