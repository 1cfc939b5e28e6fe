/* Origin allowlists (RFC 6454 serialised origins): parsing a configured list and matching an Origin value. */
#ifndef WSG_PROTOCOL_ORIGIN_H
#define WSG_PROTOCOL_ORIGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

/** Most entries in one list. */
#define WSG_ORIGIN_LIST_MAX 64
/** Longest list specification, in bytes. */
#define WSG_ORIGIN_SPEC_MAX 4096
/** Longest host (a DNS name is at most 253 bytes; a bracketed IPv6 literal is shorter). */
#define WSG_ORIGIN_HOST_MAX 253
/** Longest scheme. */
#define WSG_ORIGIN_SCHEME_MAX 32

/** One "scheme://host[:port]" entry; its scheme and host are lower-cased copies in the list's `text`. */
typedef struct wsg_origin_rule {
    uint16_t scheme_off, host_off; /**< offsets into wsg_origin_list_t.text */
    uint16_t scheme_len, host_len;
    uint16_t port;      /**< the given port, else the scheme's default (80 http/ws, 443 https/wss), else 0 */
    bool is_subdomains; /**< written "*.host": any strict subdomain of host, not host itself */
} wsg_origin_rule_t;

/** A parsed allowlist: fixed size (about 5 KB), no heap, nothing to free, may be copied. */
typedef struct wsg_origin_list {
    size_t n;         /**< entries in `rules` */
    bool allows_any;  /**< the list has "*" */
    bool allows_null; /**< the list has "null" */
    wsg_origin_rule_t rules[WSG_ORIGIN_LIST_MAX];
    size_t err_pos;                 /**< after an error: byte offset in the spec it was found at */
    const char *err_reason;         /**< after an error: static English reason; "" otherwise */
    char text[WSG_ORIGIN_SPEC_MAX]; /**< private: lower-cased schemes and hosts */
} wsg_origin_list_t;

/** Parses `spec`, a comma-separated list of entries, each trimmed of ASCII white space:
 *    "*"                     any origin (every non-empty Origin value, "null" and malformed ones included);
 *    "null"                  the opaque origin "null" (sandboxed frames, file: pages), which nothing else
 *                            matches;
 *    "scheme://host[:port]"  that origin: scheme [A-Za-z][A-Za-z0-9+.-]* (at most 32 bytes); host a DNS-like
 *                            name of dot-separated labels of [A-Za-z0-9_-] (no empty label, no trailing dot)
 *                            or a bracketed IPv6 literal "[...]" of hex digits, ':' and '.' (compared as
 *                            text, not as addresses), at most 253 bytes; port 1-65535 without leading zeros.
 *                            No userinfo, path ("/" included), query or fragment.
 *    the same with the host written "*.host"
 *                            any strict subdomain of host: with "*.example.com" as the host of an https
 *                            entry, "https://a.example.com" and "https://a.b.example.com" match,
 *                            "https://example.com" does not.
 *  Every entry counts, up to WSG_ORIGIN_LIST_MAX (duplicates are kept). An empty or blank spec (or NULL)
 *  gives an empty list, which allows nothing; an empty entry inside a list ("a,,b", "a,") is an error.
 *
 *  Returns 0, -EINVAL for a malformed entry or -E2BIG for more than WSG_ORIGIN_LIST_MAX entries or a spec
 *  longer than WSG_ORIGIN_SPEC_MAX bytes; on error `out` is an empty list except for `err_pos` (offset of
 *  the offending byte, or of the entry) and `err_reason` ("port out of range", "path not allowed", ...).
 *  Borrows `spec`; `out` is caller storage, fully overwritten. */
int wsg_origin_list_parse(const char *spec, wsg_origin_list_t *out);

/** True when `origin`, the value of an Origin header (trimmed of ASCII white space), is allowed by `list`:
 *    - an empty value never is (what to do without an Origin header is the caller's policy);
 *    - "*" allows any other value;
 *    - "null" (ASCII case-insensitive) is allowed only by a "null" or "*" entry;
 *    - otherwise the value must be a well-formed "scheme://host[:port]" (the grammar above, no '*'),
 *      with the scheme and host of an entry, ignoring ASCII case (for a "*." entry: a host ending in "."
 *      and the entry's host, at least one label before it), and the same port, an absent port on either
 *      side standing for the scheme's default: "https://a.com" and "https://a.com:443" are one origin; a
 *      scheme without a default port matches only when both sides have no port or the same port.
 *  Borrows both. */
bool wsg_origin_list_allows(const wsg_origin_list_t *list, wsg_str_t origin);

#endif
