/* Fuzzes the handshake path as the gateway runs it: head accumulation across arbitrary read splits, llhttp
 * parsing (folded lines, bare CRs and control characters refused first), the compat-table checks, facility and
 * query parsing, and the 101 / error responses. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "forwarded.h"
#include "handshake.h"
#include "http_request.h"
#include "url.h"

static int feed_in_pieces(wsg_http_request_t *req, const uint8_t *data, size_t size, uint64_t seed)
{
    size_t off = 0;
    int rc = 0;
    while (off < size) {
        size_t n = 1 + (size_t)(fuzz_next(&seed) % 700);
        if (n > size - off)
            n = size - off;
        rc = wsg_http_request_feed(req, data + off, n);
        off += n;
        if (rc != 0)
            break;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static wsg_http_request_t whole, split;
    wsg_http_request_init(&whole);
    wsg_http_request_init(&split);
    int rc = wsg_http_request_feed(&whole, data, size);
    int rc_split = feed_in_pieces(&split, data, size, fuzz_seed(data, size));
    /* Where the head ends does not depend on how the bytes arrived. */
    if (rc == 1 && rc_split == 1)
        FUZZ_ASSERT(whole.head_len == split.head_len);
    FUZZ_ASSERT(rc == 1 || rc == 0 || rc == -E2BIG || rc == -EPROTO || rc == -EBADMSG);
    if (rc != 1)
        return 0;
    /* A head that was accepted holds no folded line, bare CR or control character: no header value read from
     * it can break a line of anything it is copied into. */
    wsg_str_t values[8 + WSG_HTTP_FORWARDED_MAX] = {whole.upgrade.ws_protocol, whole.cookie, whole.authorization,
                                                    whole.origin, whole.host, whole.real_ip, whole.target};
    size_t nvalues = 7;
    FUZZ_ASSERT(whole.nforwarded_for <= WSG_HTTP_FORWARDED_MAX);
    for (uint8_t f = 0; f < whole.nforwarded_for; f++)
        values[nvalues++] = whole.forwarded_for[f];
    for (size_t v = 0; v < nvalues; v++)
        for (size_t i = 0; values[v].ptr != NULL && i < values[v].len; i++)
            FUZZ_ASSERT(values[v].ptr[i] != '\r' && values[v].ptr[i] != '\n' && values[v].ptr[i] != '\0');
    /* The client behind trusted proxies is the peer or one of the addresses the headers name. */
    static wsg_cidr_list_t trusted;
    const char *why;
    if (trusted.n == 0)
        FUZZ_ASSERT(wsg_cidr_list_parse("127.0.0.0/8, 10.0.0.0/8, ::1", &trusted, &why) == 0);
    wsg_ip_t peer = {0};
    FUZZ_ASSERT(wsg_ip_parse(wsg_str_c("127.0.0.1"), &peer));
    wsg_ip_t client = wsg_forwarded_client(&peer, whole.forwarded_for, whole.nforwarded_for, whole.real_ip, &trusted);
    FUZZ_ASSERT(client.family == 4 || client.family == 6);
    FUZZ_ASSERT(whole.head_len <= whole.len && whole.len <= WSG_HTTP_HEAD_MAX);
    FUZZ_ASSERT(whole.target.ptr >= whole.buf && whole.target.ptr + whole.target.len <= whole.buf + whole.len);

    wsg_handshake_verdict_t verdict = wsg_handshake_check(&whole.upgrade);
    char response[1024];
    if (verdict.status != 0) {
        ssize_t n = wsg_http_write_response(response, sizeof response, verdict.status, NULL,
                                            wsg_str_c(verdict.body));
        FUZZ_ASSERT(n > 0);
        return 0;
    }
    wsg_str_t path, query;
    wsg_url_split(whole.target, &path, &query);
    char facility[WSG_FACILITY_MAX];
    size_t facility_len = 0;
    (void)wsg_url_facility(path, wsg_str_c("/ws/"), facility, &facility_len);
    (void)wsg_query_flags(query);
    char accept[WSG_ACCEPT_KEY_LEN + 1];
    wsg_handshake_accept_key(whole.upgrade.ws_key, accept);
    FUZZ_ASSERT(strlen(accept) == WSG_ACCEPT_KEY_LEN);
    wsg_str_t subprotocol = wsg_handshake_pick_subprotocol(whole.upgrade.ws_protocol);
    FUZZ_ASSERT(subprotocol.len == 0 || wsg_http_is_token(subprotocol)); /* only tokens are reflected */
    (void)wsg_handshake_write_101(response, sizeof response, accept, subprotocol);
    return 0;
}
