/* Strict UTF-8 validation after the well-formed byte sequences table (Unicode 15, table 3-7). */
#include "utf8.h"

bool wsg_utf8_is_valid(const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = data[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        /* The lead byte fixes the length and the allowed range of the first continuation byte; that
         * range is what excludes overlongs (C0, C1, E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and
         * values above U+10FFFF (F4 90..BF, F5..FF). */
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) {
            n = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        if (data[i + 1] < lo || data[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= n; k++)
            if ((data[i + k] & 0xc0) != 0x80)
                return false;
        i += n + 1;
    }
    return true;
}

size_t wsg_utf8_cut(const uint8_t *data, size_t len, size_t max)
{
    if (len <= max)
        return len;
    /* data[max] is the first byte left out; while it continues a character, that character straddles
     * the cut and goes too. Valid UTF-8 needs at most three steps back; stop there for anything else. */
    size_t cut = max;
    for (int steps = 0; cut > 0 && steps < 3 && (data[cut] & 0xc0) == 0x80; steps++)
        cut--;
    return cut;
}
