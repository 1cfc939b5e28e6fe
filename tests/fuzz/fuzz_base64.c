/* Fuzzes base64: decoding is strict, so whatever decodes must re-encode to the very same text; and any
 * bytes must survive encode + decode. */
#include <errno.h>
#include <string.h>

#include "base64.h"

#include "fuzz.h"

/* The URL-safe spelling of a standard encoding, without padding. */
static size_t to_url_safe(char *s, size_t n)
{
    while (n > 0 && s[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        s[i] = s[i] == '+' ? '-' : s[i] == '/' ? '_' : s[i];
    return n;
}

static void check_decode(const char *in, size_t len, bool url_safe)
{
    size_t cap = len / 4 * 3 + 3;
    uint8_t *raw = malloc(cap);
    char *again = malloc(WSG_BASE64_ENCODED_LEN(cap) + 1);
    FUZZ_ASSERT(raw != NULL && again != NULL);
    ssize_t n = wsg_base64_decode(in, len, raw, cap, url_safe);
    FUZZ_ASSERT(n == -EINVAL || n >= 0);
    if (n >= 0) {
        FUZZ_ASSERT((size_t)n <= len * 3 / 4);
        size_t m = wsg_base64_encode(raw, (size_t)n, again);
        FUZZ_ASSERT(m == WSG_BASE64_ENCODED_LEN((size_t)n) && again[m] == '\0');
        if (!url_safe) {
            FUZZ_ASSERT(m == len && memcmp(again, in, len) == 0);
        } else {
            size_t u = to_url_safe(again, m);
            size_t in_len = len;
            while (in_len > 0 && in[in_len - 1] == '=')
                in_len--;
            FUZZ_ASSERT(u == in_len && memcmp(again, in, u) == 0);
        }
        /* One byte less room than needed is refused, and the exact room is enough. */
        if (n > 0)
            FUZZ_ASSERT(wsg_base64_decode(in, len, raw, (size_t)n - 1, url_safe) == -ENOSPC);
        FUZZ_ASSERT(wsg_base64_decode(in, len, raw, (size_t)n, url_safe) == n);
    }
    free(raw);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    check_decode((const char *)data, size, false);
    check_decode((const char *)data, size, true);

    /* Any bytes: encode, then decode in both alphabets. */
    char *enc = malloc(WSG_BASE64_ENCODED_LEN(size) + 1);
    uint8_t *dec = malloc(size + 1);
    FUZZ_ASSERT(enc != NULL && dec != NULL);
    size_t m = wsg_base64_encode(data, size, enc);
    FUZZ_ASSERT(m == WSG_BASE64_ENCODED_LEN(size) && strlen(enc) == m);
    FUZZ_ASSERT(wsg_base64_decode(enc, m, dec, size, false) == (ssize_t)size);
    FUZZ_ASSERT(size == 0 || memcmp(dec, data, size) == 0);
    size_t u = to_url_safe(enc, m);
    FUZZ_ASSERT(wsg_base64_decode(enc, u, dec, size, true) == (ssize_t)size);
    FUZZ_ASSERT(size == 0 || memcmp(dec, data, size) == 0);
    free(enc);
    free(dec);
    return 0;
}
