/* Base64 (RFC 4648 sections 4 and 5): strict decoding, so that one value has exactly one encoding. */
#include "base64.h"

#include <errno.h>

static const char std_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wsg_base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = std_alphabet[v >> 18];
        out[o++] = std_alphabet[(v >> 12) & 63];
        out[o++] = std_alphabet[(v >> 6) & 63];
        out[o++] = std_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = std_alphabet[v >> 18];
        out[o++] = std_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = std_alphabet[v >> 18];
        out[o++] = std_alphabet[(v >> 12) & 63];
        out[o++] = std_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* The 6-bit value of `c` in the chosen alphabet, or -1. */
static int sextet(char c, bool url_safe)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url_safe ? '-' : '+'))
        return 62;
    if (c == (url_safe ? '_' : '/'))
        return 63;
    return -1;
}

ssize_t wsg_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, bool url_safe)
{
    /* Padding: at most two '=', only at the end, and only where they complete a group of four. */
    size_t pad = 0;
    while (pad < len && pad < 3 && in[len - 1 - pad] == '=')
        pad++;
    size_t data = len - pad;
    if (pad > 0 && len % 4 != 0)
        return -EINVAL;
    if (pad == 0 && !url_safe && len % 4 != 0)
        return -EINVAL;
    /* A final group of one character cannot carry a whole byte. */
    if (data % 4 == 1)
        return -EINVAL;
    /* Padding must make up exactly the missing characters of the last group ("AA==", "AAA="). */
    if (pad > 0 && (4 - data % 4) % 4 != pad)
        return -EINVAL;

    /* Validate every character before writing, so that -EINVAL wins over -ENOSPC. */
    for (size_t i = 0; i < data; i++)
        if (sextet(in[i], url_safe) < 0)
            return -EINVAL;
    size_t rem = data % 4;
    if (rem == 2 && (sextet(in[data - 1], url_safe) & 0x0f) != 0)
        return -EINVAL;
    if (rem == 3 && (sextet(in[data - 1], url_safe) & 0x03) != 0)
        return -EINVAL;

    size_t n = data / 4 * 3 + (rem == 0 ? 0 : rem - 1);
    if (n > cap)
        return -ENOSPC;

    size_t o = 0, i = 0;
    for (; i + 4 <= data; i += 4) {
        uint32_t v = (uint32_t)sextet(in[i], url_safe) << 18 | (uint32_t)sextet(in[i + 1], url_safe) << 12 |
                     (uint32_t)sextet(in[i + 2], url_safe) << 6 | (uint32_t)sextet(in[i + 3], url_safe);
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem >= 2) {
        uint32_t v = (uint32_t)sextet(in[i], url_safe) << 18 | (uint32_t)sextet(in[i + 1], url_safe) << 12;
        if (rem == 3)
            v |= (uint32_t)sextet(in[i + 2], url_safe) << 6;
        out[o++] = (uint8_t)(v >> 16);
        if (rem == 3)
            out[o++] = (uint8_t)(v >> 8);
    }
    return (ssize_t)o;
}
