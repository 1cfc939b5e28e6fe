/* Fuzzes Redis Cluster key slots: every slot is in range, a hash tag alone decides the slot, and the CRC
 * keeps the algebra of a CRC without initial value or final XOR. */
#include <string.h>

#include "cluster_slot.h"

#include "fuzz.h"

#define MAX_INPUT 4096

/* The slot Redis's rule gives, written once more without shortcuts: the first '{', then the first '}' after
 * it. */
static uint16_t reference_slot(const uint8_t *k, size_t len)
{
    for (size_t open = 0; open < len; open++) {
        if (k[open] != '{')
            continue;
        for (size_t close = open + 1; close < len; close++) {
            if (k[close] != '}')
                continue;
            if (close > open + 1)
                return wsg_cluster_crc16(k + open + 1, close - open - 1) % WSG_CLUSTER_SLOTS;
            break;
        }
        break;
    }
    return wsg_cluster_crc16(k, len) % WSG_CLUSTER_SLOTS;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    static uint8_t key[MAX_INPUT + 4];

    uint16_t slot = wsg_cluster_key_slot(data, size);
    FUZZ_ASSERT(slot < WSG_CLUSTER_SLOTS);
    FUZZ_ASSERT(slot == reference_slot(data, size));
    uint16_t crc = wsg_cluster_crc16(data, size);

    /* The input as a tag: "{t}x" and "{t}y" share the slot of t. */
    if (size > 0 && memchr(data, '}', size) == NULL) {
        uint16_t want = crc % WSG_CLUSTER_SLOTS;
        FUZZ_ASSERT(wsg_cluster_key_slot(data, size) == want); /* no '}': t has no tag of its own */
        key[0] = '{';
        memcpy(key + 1, data, size);
        key[size + 1] = '}';
        key[size + 2] = 'x';
        FUZZ_ASSERT(wsg_cluster_key_slot(key, size + 3) == want);
        key[size + 2] = 'y';
        FUZZ_ASSERT(wsg_cluster_key_slot(key, size + 3) == want);
        FUZZ_ASSERT(wsg_cluster_key_slot(key, size + 2) == want); /* "{t}" */
        /* Whatever follows the tag, braces included, does not matter. */
        key[size + 2] = '{';
        key[size + 3] = '}';
        FUZZ_ASSERT(wsg_cluster_key_slot(key, size + 4) == want);
    }

    /* The message followed by its CRC (most significant byte first) divides evenly: remainder 0. */
    memcpy(key, data, size);
    key[size] = (uint8_t)(crc >> 8);
    key[size + 1] = (uint8_t)crc;
    FUZZ_ASSERT(wsg_cluster_crc16(key, size + 2) == 0);

    /* Linear: crc(a ^ b) == crc(a) ^ crc(b) for the two halves of the input. */
    size_t half = size / 2;
    for (size_t i = 0; i < half; i++)
        key[i] = data[i] ^ data[half + i];
    FUZZ_ASSERT(wsg_cluster_crc16(key, half) ==
                (wsg_cluster_crc16(data, half) ^ wsg_cluster_crc16(data + half, half)));
    return 0;
}
