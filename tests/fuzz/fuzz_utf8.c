/* Fuzzes UTF-8 validation against a decoder written the other way round, and checks the cut contract. */
#include <string.h>

#include "utf8.h"

#include "fuzz.h"
#include "../unit/utf8_reference.h"


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
