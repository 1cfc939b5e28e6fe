/* RFC 6455 section 4.2 on the server side: request checks, the accept key, and the response bytes. */
#include "handshake.h"
#include "writer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "base64.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool is_present(wsg_str_t s)
{
    return s.ptr != NULL;
}

/* The key is the base64 of 16 random bytes: 24 characters with "==" padding. */
static bool key_is_valid(wsg_str_t key)
{
    uint8_t raw[18];
    key = wsg_str_trim(key);
    ssize_t n = wsg_base64_decode(key.ptr, key.len, raw, sizeof raw, false);
    return n == 16;
}

wsg_handshake_verdict_t wsg_handshake_check(const wsg_upgrade_req_t *req)
{
    /* HTTP methods are case-sensitive (RFC 9110 9.1): "get" is not GET. */
    if (!wsg_str_eq(req->method, wsg_str_c("GET")))
        return (wsg_handshake_verdict_t){400, "HTTP method must be a GET"};
    /* HTTP/1.1 or a later 1.x; HTTP/2 and later cannot upgrade this way (RFC 8441 is a different thing). */
    if (req->http_major != 1 || req->http_minor < 1)
        return (wsg_handshake_verdict_t){400, "HTTP server protocol must be 1.1"};
    if (!wsg_str_list_has_token(req->upgrade, wsg_str_c("websocket")))
        return (wsg_handshake_verdict_t){400, "Client does not wish to upgrade to a websocket"};
    if (!wsg_str_list_has_token(req->connection, wsg_str_c("upgrade")))
        return (wsg_handshake_verdict_t){400, "Connection header must include Upgrade"};
    if (!is_present(req->ws_version))
        return (wsg_handshake_verdict_t){426, ""};
    if (!wsg_str_eq(wsg_str_trim(req->ws_version), wsg_str_c("13")))
        return (wsg_handshake_verdict_t){400, "Unsupported WebSocket Version"};
    if (!is_present(req->ws_key) || !key_is_valid(req->ws_key))
        return (wsg_handshake_verdict_t){400, "Invalid key"};
    return (wsg_handshake_verdict_t){0, ""};
}

void wsg_handshake_accept_key(wsg_str_t key, char out[WSG_ACCEPT_KEY_LEN + 1])
{
    key = wsg_str_trim(key);
    /* A valid key is 24 characters: hash it from a stack buffer with the one-shot SHA1() (SHA1_Init and
     * friends are deprecated in OpenSSL 3). Any other length streams through EVP, which allocates. */
    uint8_t digest[SHA_DIGEST_LENGTH];
    char joined[64 + sizeof WS_GUID];
    if (key.len <= 64) {
        if (key.len > 0)
            memcpy(joined, key.ptr, key.len);
        memcpy(joined + key.len, WS_GUID, sizeof WS_GUID - 1);
        SHA1((const unsigned char *)joined, key.len + sizeof WS_GUID - 1, digest);
    } else {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned int n = 0;
        if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, key.ptr, key.len) != 1 ||
            EVP_DigestUpdate(ctx, WS_GUID, sizeof WS_GUID - 1) != 1 ||
            EVP_DigestFinal_ex(ctx, digest, &n) != 1 || n != sizeof digest)
            abort(); /* out of memory in a fixed-size allocation */
        EVP_MD_CTX_free(ctx);
    }
    wsg_base64_encode(digest, sizeof digest, out);
}

wsg_str_t wsg_handshake_pick_subprotocol(wsg_str_t offered)
{
    wsg_str_t elem;
    while (wsg_str_next_elem(&offered, ',', &elem)) {
        elem = wsg_str_trim(elem);
        if (wsg_http_is_token(elem))
            return elem;
    }
    return WSG_STR_NULL;
}

bool wsg_handshake_offers(wsg_str_t offered, wsg_str_t name)
{
    wsg_str_t elem;
    while (wsg_str_next_elem(&offered, ',', &elem)) {
        elem = wsg_str_trim(elem);
        if (elem.len == name.len && memcmp(elem.ptr, name.ptr, name.len) == 0)
            return true;
    }
    return false;
}

bool wsg_http_is_token(wsg_str_t s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        bool is_alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!is_alnum && (c == '\0' || strchr("!#$%&'*+-.^_`|~", c) == NULL))
            return false;
    }
    return true;
}

int wsg_http_check_head_lines(const char *head, size_t len)
{
    bool at_line_start = false; /* the request line itself may not be folded into anything */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)head[i];
        if (at_line_start && (c == ' ' || c == '\t'))
            return -EBADMSG; /* obs-fold: a header continued on the next line */
        at_line_start = false;
        if (c == '\r') {
            if (i + 1 >= len || head[i + 1] != '\n')
                return -EBADMSG; /* a bare CR */
            continue;
        }
        if (c == '\n') {
            at_line_start = true;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return -EBADMSG;
    }
    return 0;
}

__attribute__((format(printf, 2, 3))) static void put_fmt(wsg_writer_t *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        w->overflow = true;
        return;
    }
    wsg_writer_put(w, tmp, (size_t)n);
}

static ssize_t finish(wsg_writer_t *w)
{
    return w->overflow ? -ENOSPC : (ssize_t)w->len;
}

ssize_t wsg_handshake_write_101(char *buf, size_t cap, const char *accept_key, wsg_str_t subprotocol)
{
    wsg_writer_t w = wsg_writer_init(buf, cap);
    wsg_writer_puts(&w, "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: ");
    wsg_writer_puts(&w, accept_key);
    wsg_writer_puts(&w, "\r\n");
    if (subprotocol.len > 0) {
        wsg_writer_puts(&w, "Sec-WebSocket-Protocol: ");
        wsg_writer_put(&w, subprotocol.ptr, subprotocol.len);
        wsg_writer_puts(&w, "\r\n");
    }
    wsg_writer_puts(&w, "\r\n");
    return finish(&w);
}

ssize_t wsg_http_write_response(char *buf, size_t cap, int status, const char *extra_headers, wsg_str_t body)
{
    wsg_writer_t w = wsg_writer_init(buf, cap);
    put_fmt(&w, "HTTP/1.1 %d ", status);
    wsg_writer_puts(&w, wsg_http_reason_phrase(status));
    wsg_writer_puts(&w, "\r\nContent-Type: text/plain; charset=utf-8\r\n");
    put_fmt(&w, "Content-Length: %zu\r\n", body.len);
    wsg_writer_puts(&w, "Connection: close\r\n");
    if (status == 426)
        wsg_writer_puts(&w, "Sec-WebSocket-Version: 13\r\n");
    if (extra_headers != NULL)
        wsg_writer_puts(&w, extra_headers);
    wsg_writer_puts(&w, "\r\n");
    wsg_writer_put(&w, body.ptr, body.len);
    return finish(&w);
}

const char *wsg_http_reason_phrase(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}
