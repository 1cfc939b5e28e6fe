/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
#ifndef WSG_PROTOCOL_UTF8_H
#define WSG_PROTOCOL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** True when the `len` bytes at `data` are valid UTF-8. Borrows `data`. */
bool wsg_utf8_is_valid(const uint8_t *data, size_t len);

/** The longest prefix of `data` (at most `max` bytes) that ends on a character boundary, for valid UTF-8. */
size_t wsg_utf8_cut(const uint8_t *data, size_t len, size_t max);

#endif
