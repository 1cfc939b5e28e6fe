/* Client addresses behind trusted proxies: IP addresses, CIDR lists, and the X-Forwarded-For / X-Real-IP
 * walk that finds the client a chain of trusted proxies speaks for. Pure: parsing and comparison only. */
#ifndef WSG_PROTOCOL_FORWARDED_H
#define WSG_PROTOCOL_FORWARDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

/** An IPv4 or IPv6 address (IPv4 also as its IPv4-mapped IPv6 form for comparisons). */
typedef struct wsg_ip {
    uint8_t family; /**< 4 or 6; 0 for none */
    uint8_t addr[16];
} wsg_ip_t;

/** Longest text of an address from wsg_ip_format, with its NUL. */
#define WSG_IP_TEXT_MAX 48

/** A network: the first `bits` bits of `addr`. */
typedef struct wsg_cidr {
    wsg_ip_t net;
    uint8_t bits;
} wsg_cidr_t;

/** Most networks in one list. */
#define WSG_CIDR_LIST_MAX 32

typedef struct wsg_cidr_list {
    wsg_cidr_t items[WSG_CIDR_LIST_MAX];
    uint8_t n;
} wsg_cidr_list_t;

/** Parses an address as X-Forwarded-For entries and X-Real-IP carry them: "1.2.3.4", "2001:db8::1",
 *  "[2001:db8::1]", and with a port "1.2.3.4:5678" or "[2001:db8::1]:5678" (the port is dropped); white space
 *  around it is ignored. Returns true and fills `*out`, or false. Borrows `text`. */
bool wsg_ip_parse(wsg_str_t text, wsg_ip_t *out);

/** Writes `ip` as text ("1.2.3.4", "2001:db8::1") into `out` (capacity >= WSG_IP_TEXT_MAX). Returns `out`. */
const char *wsg_ip_format(const wsg_ip_t *ip, char *out);

/** Parses a comma-separated list of networks ("10.0.0.0/8, 127.0.0.1, ::1, fd00::/8"; an address without
 *  "/bits" is one host). An empty or all-blank `spec` gives an empty list. Returns 0, or -EINVAL with `*why`
 *  pointing at a static reason (a bad address, bad bits, more than WSG_CIDR_LIST_MAX networks). Borrows
 *  `spec`. */
int wsg_cidr_list_parse(const char *spec, wsg_cidr_list_t *out, const char **why);

/** True when `ip` lies in one of the networks (an IPv4 address and an IPv4-mapped IPv6 one are the same). */
bool wsg_cidr_list_contains(const wsg_cidr_list_t *list, const wsg_ip_t *ip);

/** The client a connection from `peer` speaks for. Unless `peer` is trusted, that is `peer` itself, whatever
 * the headers say. From a trusted peer, the X-Forwarded-For entries (`xff`: the header's occurrences in
 * order, `nxff` of them) are walked from the right, past trusted proxies, to the first address that is not
 * trusted: that is the client. Every entry may be a trusted proxy: then the leftmost is. An entry that is not
 * an address stops the walk at the last good one. Without X-Forwarded-For, a valid `real_ip` (X-Real-IP) from
 * a trusted peer is the client. Borrows everything. */
wsg_ip_t wsg_forwarded_client(const wsg_ip_t *peer, const wsg_str_t *xff, size_t nxff, wsg_str_t real_ip,
                              const wsg_cidr_list_t *trusted);

#endif
