/* Origin allowlists: one grammar for configured entries and for Origin values, so both sides agree. */
#include "origin.h"

#include <errno.h>
#include <string.h>

_Static_assert(WSG_ORIGIN_SPEC_MAX <= UINT16_MAX, "text offsets are 16-bit");

/* One "scheme://host[:port]" split and checked; views borrow the input. */
typedef struct parsed {
    wsg_str_t scheme;
    wsg_str_t host; /* without the "*." of a wildcard */
    uint16_t port;  /* effective: given, else the scheme's default, else 0 */
    bool is_subdomains;
    size_t err_off; /* relative to the input */
    const char *err;
} parsed_t;

static bool is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_label_char(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '_';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static uint16_t default_port(wsg_str_t scheme)
{
    if (wsg_str_eq_nocase(scheme, wsg_str_c("http")) || wsg_str_eq_nocase(scheme, wsg_str_c("ws")))
        return 80;
    if (wsg_str_eq_nocase(scheme, wsg_str_c("https")) || wsg_str_eq_nocase(scheme, wsg_str_c("wss")))
        return 443;
    return 0;
}

static bool fail(parsed_t *p, size_t off, const char *err)
{
    p->err_off = off;
    p->err = err;
    return false;
}

/* Dot-separated non-empty labels of [A-Za-z0-9_-]; returns the length consumed, stopping at ':' or the end.
 */
static bool scan_name(const char *s, size_t n, size_t off, size_t *end, parsed_t *p)
{
    size_t i = off, label = 0;
    for (; i < n && s[i] != ':'; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return fail(p, i, "empty label in host");
            label = 0;
        } else if (is_label_char(s[i])) {
            label++;
        } else {
            return fail(p, i, s[i] == '*' ? "'*' only as \"*.\" before the host" : "bad character in host");
        }
    }
    if (i == off)
        return fail(p, i, "empty host");
    if (label == 0)
        return fail(p, i - 1, "empty label in host");
    *end = i;
    return true;
}

/* "[" hex digits, ':' and '.' "]"; `*end` is just past the ']'. */
static bool scan_ip_literal(const char *s, size_t n, size_t off, size_t *end, parsed_t *p)
{
    size_t i = off + 1;
    while (i < n && (is_hex(s[i]) || s[i] == ':' || s[i] == '.'))
        i++;
    if (i == n || s[i] != ']')
        return fail(p, i, "bad IPv6 literal");
    if (i == off + 1)
        return fail(p, i, "empty IPv6 literal");
    *end = i + 1;
    return true;
}

/* 1-65535, decimal, no sign and no leading zero. */
static bool scan_port(const char *s, size_t n, size_t off, uint16_t *port, parsed_t *p)
{
    if (off == n)
        return fail(p, off, "empty port");
    if (s[off] == '0')
        return fail(p, off, "bad port");
    uint32_t v = 0;
    for (size_t i = off; i < n; i++) {
        if (!is_digit(s[i]))
            return fail(p, i, "bad port");
        v = v * 10 + (uint32_t)(s[i] - '0');
        if (v > 65535)
            return fail(p, off, "port out of range");
    }
    *port = (uint16_t)v;
    return true;
}

static bool parse_origin(wsg_str_t in, bool allow_wildcard, parsed_t *p)
{
    const char *s = in.ptr;
    size_t n = in.len, i = 0;
    memset(p, 0, sizeof *p);

    /* RFC 3986 3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
    if (n == 0 || !is_alpha(s[0]))
        return fail(p, 0, "bad scheme");
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i > WSG_ORIGIN_SCHEME_MAX)
        return fail(p, 0, "scheme too long");
    if (n - i < 3 || memcmp(s + i, "://", 3) != 0)
        return fail(p, i, "expected scheme://host");
    p->scheme = (wsg_str_t){s, i};
    i += 3;

    /* Named before the host grammar complains about them, since they are the likely mistakes. */
    for (size_t k = i; k < n; k++) {
        if (s[k] == '/' || s[k] == '?' || s[k] == '#')
            return fail(p, k, "path not allowed");
        if (s[k] == '@')
            return fail(p, k, "userinfo not allowed");
    }

    if (allow_wildcard && n - i >= 2 && s[i] == '*' && s[i + 1] == '.') {
        p->is_subdomains = true;
        i += 2;
        if (i < n && s[i] == '[')
            return fail(p, i, "'*.' needs a host name");
    }
    size_t host_start = i, host_end;
    if (i < n && s[i] == '[') {
        if (!scan_ip_literal(s, n, i, &host_end, p))
            return false;
    } else if (!scan_name(s, n, i, &host_end, p)) {
        return false;
    }
    if (host_end - host_start > WSG_ORIGIN_HOST_MAX)
        return fail(p, host_start, "host too long");
    p->host = (wsg_str_t){s + host_start, host_end - host_start};

    p->port = default_port(p->scheme);
    if (host_end < n) {
        if (s[host_end] != ':')
            return fail(p, host_end, "bad character after host");
        if (!scan_port(s, n, host_end + 1, &p->port, p))
            return false;
    }
    return true;
}

static size_t store_lower(wsg_origin_list_t *list, size_t used, wsg_str_t s, uint16_t *off, uint16_t *len)
{
    for (size_t k = 0; k < s.len; k++)
        list->text[used + k] = lower(s.ptr[k]);
    *off = (uint16_t)used;
    *len = (uint16_t)s.len;
    return used + s.len;
}

static int parse_error(wsg_origin_list_t *out, int rc, size_t pos, const char *reason)
{
    memset(out, 0, sizeof *out);
    out->err_pos = pos;
    out->err_reason = reason;
    return rc;
}

int wsg_origin_list_parse(const char *spec, wsg_origin_list_t *out)
{
    memset(out, 0, sizeof *out);
    out->err_reason = "";
    if (spec == NULL)
        return 0;
    size_t len = strnlen(spec, WSG_ORIGIN_SPEC_MAX + 1);
    if (len > WSG_ORIGIN_SPEC_MAX)
        return parse_error(out, -E2BIG, WSG_ORIGIN_SPEC_MAX, "list too long");
    if (wsg_str_trim((wsg_str_t){spec, len}).len == 0)
        return 0;

    wsg_str_t rest = {spec, len}, elem;
    size_t entries = 0, used = 0;
    while (wsg_str_next_elem(&rest, ',', &elem)) {
        wsg_str_t e = wsg_str_trim(elem);
        size_t pos = (size_t)((e.len > 0 ? e.ptr : elem.ptr) - spec);
        if (e.len == 0)
            return parse_error(out, -EINVAL, pos, "empty entry");
        if (++entries > WSG_ORIGIN_LIST_MAX)
            return parse_error(out, -E2BIG, pos, "too many entries");
        if (wsg_str_eq(e, wsg_str_c("*"))) {
            out->allows_any = true;
            continue;
        }
        if (wsg_str_eq_nocase(e, wsg_str_c("null"))) {
            out->allows_null = true;
            continue;
        }
        parsed_t p;
        if (!parse_origin(e, true, &p))
            return parse_error(out, -EINVAL, pos + p.err_off, p.err);
        wsg_origin_rule_t *r = &out->rules[out->n++];
        /* Scheme and host are disjoint parts of the spec, so `text` (as long as the spec) has room. */
        used = store_lower(out, used, p.scheme, &r->scheme_off, &r->scheme_len);
        used = store_lower(out, used, p.host, &r->host_off, &r->host_len);
        r->port = p.port;
        r->is_subdomains = p.is_subdomains;
    }
    return 0;
}

static bool host_matches(const wsg_origin_list_t *list, const wsg_origin_rule_t *r, wsg_str_t host)
{
    wsg_str_t want = {list->text + r->host_off, r->host_len};
    if (!r->is_subdomains)
        return wsg_str_eq_nocase(host, want);
    /* The origin's host has only non-empty labels, so anything before ".host" is at least one label. */
    if (host.len < want.len + 2 || host.ptr[host.len - want.len - 1] != '.')
        return false;
    return wsg_str_eq_nocase((wsg_str_t){host.ptr + host.len - want.len, want.len}, want);
}

bool wsg_origin_list_allows(const wsg_origin_list_t *list, wsg_str_t origin)
{
    origin = wsg_str_trim(origin);
    if (origin.len == 0 || origin.ptr == NULL)
        return false;
    if (list->allows_any)
        return true;
    if (wsg_str_eq_nocase(origin, wsg_str_c("null")))
        return list->allows_null;
    parsed_t p;
    if (!parse_origin(origin, false, &p))
        return false;
    for (size_t i = 0; i < list->n; i++) {
        const wsg_origin_rule_t *r = &list->rules[i];
        if (r->port == p.port &&
            wsg_str_eq_nocase(p.scheme, (wsg_str_t){list->text + r->scheme_off, r->scheme_len}) &&
            host_matches(list, r, p.host))
            return true;
    }
    return false;
}
