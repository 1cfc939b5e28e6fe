/* A UTF-8 decoder written the other way round from protocol/utf8.c (decode first, then judge the value),
 * shared by the unit test and the fuzz target as their reference. */
#ifndef WSG_TESTS_UNIT_UTF8_REFERENCE_H
#define WSG_TESTS_UNIT_UTF8_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool reference_valid(const uint8_t *s, size_t len)
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

#endif
