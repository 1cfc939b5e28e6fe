/* Fuzzes UTF-8 validation against a decoder written the other way round, and checks the cut contract. */
#include <string.h>

#include "utf8.h"

#include "fuzz.h"

static bool reference_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n;
        if (s[i] < 0x80) {
            i++;
            continue;
        } else if ((s[i] & 0xe0) == 0xc0) {
            cp = s[i] & 0x1f;
            n = 1;
        } else if ((s[i] & 0xf0) == 0xe0) {
            cp = s[i] & 0x0f;
            n = 2;
        } else if ((s[i] & 0xf8) == 0xf0) {
            cp = s[i] & 0x07;
            n = 3;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool valid = wsg_utf8_is_valid(data, size);
    FUZZ_ASSERT(valid == reference_valid(data, size));
    for (size_t max = 0; max <= size + 1 && max < 200; max++) {
        size_t cut = wsg_utf8_cut(data, size, max);
        FUZZ_ASSERT(cut <= max && cut <= size);
        FUZZ_ASSERT(max >= size ? cut == size : cut + 3 >= max);
        if (valid) {
            /* A cut of valid text is valid, and the longest such prefix within max. */
            FUZZ_ASSERT(wsg_utf8_is_valid(data, cut));
            for (size_t k = cut + 1; k <= max && k <= size; k++)
                FUZZ_ASSERT(!wsg_utf8_is_valid(data, k));
        }
    }
    return 0;
}
