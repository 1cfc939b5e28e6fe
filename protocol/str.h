/* A borrowed byte range: the common currency of the pure protocol code. */
#ifndef WSG_PROTOCOL_STR_H
#define WSG_PROTOCOL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/** A view of `len` bytes at `ptr`; never owns them and is not NUL-terminated. */
typedef struct wsg_str {
    const char *ptr;
    size_t len;
} wsg_str_t;

#define WSG_STR_NULL ((wsg_str_t){NULL, 0})

/** A view of a NUL-terminated string (NULL gives the empty view). */
static inline wsg_str_t wsg_str_c(const char *s)
{
    return (wsg_str_t){s, s ? strlen(s) : 0};
}

/** True when both views hold the same bytes. */
static inline bool wsg_str_eq(wsg_str_t a, wsg_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/** True when the views are equal ignoring ASCII case. */
bool wsg_str_eq_nocase(wsg_str_t a, wsg_str_t b);

/** Takes the next `sep`-separated element off the front of `*rest` into `*elem` (borrowed from `*rest`). Every
 *  element comes once, empty ones included: "a,,b" gives "a", "", "b", and "" gives one empty element. Returns
 *  false once `*rest` is used up, or at once for WSG_STR_NULL. */
bool wsg_str_next_elem(wsg_str_t *rest, char sep, wsg_str_t *elem);

/** Splits `s` at its first `c`: returns true with the bytes before it in `*before` and after it in `*after`,
 *  or false (and touches neither) when `s` has no `c`. */
bool wsg_str_cut(wsg_str_t s, char c, wsg_str_t *before, wsg_str_t *after);

/** True when the comma-separated header value `list` has a token equal to `token`, ignoring ASCII case and
 *  the optional white space around each element. */
bool wsg_str_list_has_token(wsg_str_t list, wsg_str_t token);

/** A 64-bit FNV-1a hash of `len` bytes: cheap identity of a payload (not for hash tables facing peers). */
static inline uint64_t wsg_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/** The value of a hexadecimal digit (either case), or -1 when `c` is not one. */
static inline int wsg_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/** The view without leading and trailing ASCII white space (space, tab, CR, LF, VT, FF). */
wsg_str_t wsg_str_trim(wsg_str_t s);

#endif
