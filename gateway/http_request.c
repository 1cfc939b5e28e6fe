/* HTTP request head parsing: bytes are gathered until the blank line, then llhttp parses the whole head in
 * one call, so that every header view points into one stable buffer. */
#include "http_request.h"

#include <errno.h>
#include <llhttp.h>
#include <string.h>

enum header_id {
    H_NONE,
    H_UPGRADE,
    H_CONNECTION,
    H_WS_VERSION,
    H_WS_KEY,
    H_WS_PROTOCOL,
    H_HOST,
    H_ORIGIN,
    H_COOKIE,
    H_AUTHORIZATION,
    H_FORWARDED_FOR,
    H_REAL_IP,
    H_OTHER,
};

typedef struct parse_state {
    wsg_http_request_t *req;
    enum header_id current;
    bool value_started;
    bool is_duplicate;   /* the current header already had a value: repeated headers are refused */
    bool headers_done;
    const char *field_start;
    size_t field_len;
} parse_state_t;

static const struct {
    const char *name;
    enum header_id id;
} known_headers[] = {
    {"upgrade", H_UPGRADE},
    {"connection", H_CONNECTION},
    {"sec-websocket-version", H_WS_VERSION},
    {"sec-websocket-key", H_WS_KEY},
    {"sec-websocket-protocol", H_WS_PROTOCOL},
    {"host", H_HOST},
    {"origin", H_ORIGIN},
    {"cookie", H_COOKIE},
    {"authorization", H_AUTHORIZATION},
    {"x-forwarded-for", H_FORWARDED_FOR},
    {"x-real-ip", H_REAL_IP},
};

static wsg_str_t *slot_of(wsg_http_request_t *req, enum header_id id)
{
    switch (id) {
    case H_UPGRADE:
        return &req->upgrade.upgrade;
    case H_CONNECTION:
        return &req->upgrade.connection;
    case H_WS_VERSION:
        return &req->upgrade.ws_version;
    case H_WS_KEY:
        return &req->upgrade.ws_key;
    case H_WS_PROTOCOL:
        return &req->upgrade.ws_protocol;
    case H_HOST:
        return &req->host;
    case H_ORIGIN:
        return &req->origin;
    case H_COOKIE:
        return &req->cookie;
    case H_AUTHORIZATION:
        return &req->authorization;
    case H_FORWARDED_FOR: /* each line in its own slot; a line past the last slot has none */
        return req->nforwarded_for < WSG_HTTP_FORWARDED_MAX ? &req->forwarded_for[req->nforwarded_for] : NULL;
    case H_REAL_IP:
        return &req->real_ip;
    default:
        return NULL;
    }
}

static parse_state_t *state_of(llhttp_t *p)
{
    return p->data;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    wsg_http_request_t *req = state_of(p)->req;
    if (req->target.ptr == NULL)
        req->target.ptr = at;
    req->target.len = (size_t)(at + len - req->target.ptr); /* spans are contiguous in our buffer */
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t len)
{
    wsg_http_request_t *req = state_of(p)->req;
    if (req->upgrade.method.ptr == NULL)
        req->upgrade.method.ptr = at;
    req->upgrade.method.len = (size_t)(at + len - req->upgrade.method.ptr);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    parse_state_t *st = state_of(p);
    if (st->value_started || st->field_start == NULL) {
        st->field_start = at;
        st->field_len = 0;
        st->value_started = false;
        st->current = H_NONE;
    }
    st->field_len = (size_t)(at + len - st->field_start);
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    parse_state_t *st = state_of(p);
    wsg_str_t name = {st->field_start, st->field_len};
    st->current = H_OTHER;
    for (size_t i = 0; i < sizeof known_headers / sizeof known_headers[0]; i++) {
        if (wsg_str_eq_nocase(name, wsg_str_c(known_headers[i].name))) {
            st->current = known_headers[i].id;
            break;
        }
    }
    st->is_duplicate = false;
    wsg_str_t *slot = slot_of(st->req, st->current);
    if (slot != NULL && slot->ptr != NULL)
        st->is_duplicate = true;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    parse_state_t *st = state_of(p);
    wsg_str_t *slot = slot_of(st->req, st->current);
    if (!st->value_started) {
        st->value_started = true;
        if (slot != NULL && !st->is_duplicate)
            slot->ptr = at;
    }
    if (slot != NULL && !st->is_duplicate)
        slot->len = (size_t)(at + len - slot->ptr);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    parse_state_t *st = state_of(p);
    wsg_str_t *slot = slot_of(st->req, st->current);
    if (slot != NULL && !st->value_started && !st->is_duplicate) {
        slot->ptr = st->field_start + st->field_len; /* empty value: a non-NULL view of length 0 */
        slot->len = 0;
    }
    /* A repeated header is ambiguous for every header we read (two keys, two versions, two cookies
     * headers...). Sec-WebSocket-Protocol may legitimately repeat; the first occurrence is used. Each proxy
     * may add an X-Forwarded-For line of its own: every line is kept, up to a bound. */
    if (st->current == H_FORWARDED_FOR) {
        if (st->req->nforwarded_for == WSG_HTTP_FORWARDED_MAX)
            return -1;
        st->req->nforwarded_for++;
    }
    if (st->is_duplicate && st->current != H_WS_PROTOCOL && st->current != H_CONNECTION)
        return -1;
    st->value_started = true; /* the next field starts a new header */
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    parse_state_t *st = state_of(p);
    st->headers_done = true;
    st->req->upgrade.http_major = p->http_major;
    st->req->upgrade.http_minor = p->http_minor;
    return 0;
}

/* Finds the end of the head (after the blank line) in buf[0..len); `from` is where the search may start. */
static size_t find_head_end(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i >= 1 && buf[i - 1] == '\n')
            return i + 1;
        if (i >= 2 && buf[i - 1] == '\r' && buf[i - 2] == '\n')
            return i + 1;
    }
    return 0;
}

void wsg_http_request_init(wsg_http_request_t *req)
{
    memset(req, 0, offsetof(wsg_http_request_t, buf));
    req->buf[0] = '\0';
}

int wsg_http_request_feed(wsg_http_request_t *req, const uint8_t *data, size_t len)
{
    size_t old_len = req->len;
    size_t room = WSG_HTTP_HEAD_MAX - req->len;
    size_t take = len < room ? len : room;
    memcpy(req->buf + req->len, data, take);
    req->len += take;
    size_t end = find_head_end(req->buf, req->len, old_len > 3 ? old_len - 3 : 0);
    if (end == 0)
        return (take < len || req->len >= WSG_HTTP_HEAD_MAX) ? -E2BIG : 0;
    req->head_len = end;
    /* Bytes after the head that did not fit are not needed: a client may not send frames before the 101,
     * and anything it pipelines beyond 8 KiB is a protocol error we would refuse anyway. */
    if (take < len)
        return -EPROTO;

    /* Folded lines, bare CRs and control characters are refused before llhttp sees the head: a folded
     * Sec-WebSocket-Protocol would otherwise be reflected in the 101 with the line break in it, and a folded
     * Cookie or Authorization passed on to the authorization callback as it is. */
    if (wsg_http_check_head_lines(req->buf, req->head_len) < 0)
        return -EBADMSG;
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_method = on_method;
    settings.on_header_field = on_header_field;
    settings.on_header_field_complete = on_header_field_complete;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    parse_state_t st = {.req = req};
    parser.data = &st;
    llhttp_errno_t err = llhttp_execute(&parser, req->buf, req->head_len);
    if (err != HPE_OK && err != HPE_PAUSED_UPGRADE)
        return -EPROTO;
    if (!st.headers_done || req->target.ptr == NULL)
        return -EPROTO;
    return 1;
}
