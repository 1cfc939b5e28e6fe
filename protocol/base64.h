/* Base64 (RFC 4648) in its standard and URL-safe alphabets. */
#ifndef WSG_PROTOCOL_BASE64_H
#define WSG_PROTOCOL_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Bytes needed to encode `len` bytes with padding, without a NUL. */
#define WSG_BASE64_ENCODED_LEN(len) ((((len) + 2) / 3) * 4)

/** Encodes `len` bytes of `in` in the standard alphabet with padding into `out` (WSG_BASE64_ENCODED_LEN(len)
 *  + 1 bytes, NUL-terminated). Returns the encoded length. Borrows `in`. */
size_t wsg_base64_encode(const uint8_t *in, size_t len, char *out);

/** Decodes `len` characters of `in` into `out` (capacity `cap`). With `url_safe` false: standard alphabet,
 *  padding required to a multiple of 4. With `url_safe` true: '-' and '_' alphabet, padding optional.
 *  Returns the decoded length, -EINVAL for a character outside the alphabet, misplaced padding, non-zero
 *  trailing bits or a bad length, or -ENOSPC when `cap` is too small. Borrows `in`. */
ssize_t wsg_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, bool url_safe);

#endif
