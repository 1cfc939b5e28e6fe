/* Addresses, networks and the trusted-proxy walk over X-Forwarded-For. */
#include "forwarded.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* IPv4 is kept as its IPv4-mapped IPv6 address (::ffff:a.b.c.d), so that one comparison serves both. */
static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool parse_plain(const char *text, wsg_ip_t *out)
{
    uint8_t v4[4];
    if (inet_pton(AF_INET, text, v4) == 1) {
        out->family = 4;
        memcpy(out->addr, v4_mapped, 12);
        memcpy(out->addr + 12, v4, 4);
        return true;
    }
    if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = memcmp(out->addr, v4_mapped, 12) == 0 ? 4 : 6;
        return true;
    }
    return false;
}

/* A port after the address: 1 to 5 digits. */
static bool is_port(const char *p, size_t n)
{
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

bool wsg_ip_parse(wsg_str_t text, wsg_ip_t *out)
{
    text = wsg_str_trim(text);
    char buf[WSG_IP_TEXT_MAX];
    if (text.len == 0 || text.len >= sizeof buf)
        return false;
    if (text.ptr[0] == '[') { /* [v6] or [v6]:port */
        const char *close = memchr(text.ptr, ']', text.len);
        if (close == NULL)
            return false;
        size_t inner = (size_t)(close - text.ptr) - 1;
        size_t rest = text.len - inner - 2;
        if (rest != 0 && (close[1] != ':' || !is_port(close + 2, rest - 1)))
            return false;
        memcpy(buf, text.ptr + 1, inner);
        buf[inner] = '\0';
        wsg_ip_t ip;
        if (!parse_plain(buf, &ip) || ip.family != 6)
            return false;
        *out = ip;
        return true;
    }
    memcpy(buf, text.ptr, text.len);
    buf[text.len] = '\0';
    char *first_colon = strchr(buf, ':');
    if (first_colon != NULL && strchr(first_colon + 1, ':') == NULL) { /* a.b.c.d:port */
        if (!is_port(first_colon + 1, strlen(first_colon + 1)))
            return false;
        *first_colon = '\0';
    }
    return parse_plain(buf, out);
}

const char *wsg_ip_format(const wsg_ip_t *ip, char *out)
{
    if (ip->family == 4)
        inet_ntop(AF_INET, ip->addr + 12, out, WSG_IP_TEXT_MAX);
    else if (ip->family == 6)
        inet_ntop(AF_INET6, ip->addr, out, WSG_IP_TEXT_MAX);
    else
        snprintf(out, WSG_IP_TEXT_MAX, "unknown");
    return out;
}

int wsg_cidr_list_parse(const char *spec, wsg_cidr_list_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    wsg_str_t rest = wsg_str_c(spec ? spec : ""), elem;
    while (wsg_str_next_elem(&rest, ',', &elem)) {
        elem = wsg_str_trim(elem);
        if (elem.len == 0)
            continue;
        if (out->n == WSG_CIDR_LIST_MAX) {
            *why = "too many networks (at most 32)";
            return -EINVAL;
        }
        wsg_str_t addr = elem, bits_text = WSG_STR_NULL;
        bool has_bits = wsg_str_cut(elem, '/', &addr, &bits_text);
        wsg_cidr_t *c = &out->items[out->n];
        char text[WSG_IP_TEXT_MAX];
        addr = wsg_str_trim(addr);
        if (addr.len == 0 || addr.len >= sizeof text) {
            *why = "not an IP address";
            return -EINVAL;
        }
        memcpy(text, addr.ptr, addr.len);
        text[addr.len] = '\0';
        if (!parse_plain(text, &c->net)) { /* a plain address: no brackets, no port */
            *why = "not an IP address";
            return -EINVAL;
        }
        unsigned max = c->net.family == 4 ? 32 : 128, bits = max;
        if (has_bits) {
            bits = 0;
            if (bits_text.len == 0 || bits_text.len > 3) {
                *why = "bad prefix length";
                return -EINVAL;
            }
            for (size_t i = 0; i < bits_text.len; i++) {
                if (bits_text.ptr[i] < '0' || bits_text.ptr[i] > '9') {
                    *why = "bad prefix length";
                    return -EINVAL;
                }
                bits = bits * 10 + (unsigned)(bits_text.ptr[i] - '0');
            }
            if (bits > max) {
                *why = "prefix length too long for the address";
                return -EINVAL;
            }
        }
        c->bits = (uint8_t)(c->net.family == 4 ? bits + 96 : bits); /* over the mapped 128-bit form */
        out->n++;
    }
    return 0;
}

static bool in_network(const wsg_cidr_t *c, const wsg_ip_t *ip)
{
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.addr, ip->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->net.addr[full] & mask) == (ip->addr[full] & mask);
}

bool wsg_cidr_list_contains(const wsg_cidr_list_t *list, const wsg_ip_t *ip)
{
    if (ip->family == 0)
        return false;
    for (uint8_t i = 0; i < list->n; i++)
        if (in_network(&list->items[i], ip))
            return true;
    return false;
}

/* The last comma-separated element of `*list` (trimmed), removed from it; false when none is left. */
static bool pop_last(wsg_str_t *list, wsg_str_t *elem)
{
    while (list->len > 0) {
        size_t i = list->len;
        while (i > 0 && list->ptr[i - 1] != ',')
            i--;
        *elem = wsg_str_trim((wsg_str_t){list->ptr + i, list->len - i});
        list->len = i > 0 ? i - 1 : 0;
        if (elem->len > 0)
            return true;
    }
    return false;
}

wsg_ip_t wsg_forwarded_client(const wsg_ip_t *peer, const wsg_str_t *xff, size_t nxff, wsg_str_t real_ip,
                              const wsg_cidr_list_t *trusted)
{
    wsg_ip_t client = *peer;
    if (!wsg_cidr_list_contains(trusted, peer))
        return client;
    bool saw_entry = false;
    for (size_t h = nxff; h-- > 0;) {
        wsg_str_t list = xff[h], elem;
        while (pop_last(&list, &elem)) {
            saw_entry = true;
            wsg_ip_t hop;
            if (!wsg_ip_parse(elem, &hop))
                return client; /* a hop we cannot read: the last one we could speaks for it */
            client = hop;
            if (!wsg_cidr_list_contains(trusted, &hop))
                return client;
        }
    }
    wsg_ip_t real;
    if (!saw_entry && real_ip.ptr != NULL && wsg_ip_parse(real_ip, &real))
        return real;
    return client;
}
