/* Redis Cluster key slots, from the definition of CRC16-CCITT (XMODEM) and the hash-tag rule. */
#include "cluster_slot.h"

#include <string.h>

#define CRC16_POLY 0x1021u

/* Bit by bit, most significant bit first: keys and channel names are short, and a table would be a second
 * thing to get right. */
uint16_t wsg_cluster_crc16(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ CRC16_POLY) : (uint16_t)(crc << 1);
    }
    return crc;
}

uint16_t wsg_cluster_key_slot(const void *key, size_t len)
{
    const uint8_t *k = key;
    const uint8_t *open = len > 0 ? memchr(k, '{', len) : NULL;
    if (open != NULL) {
        const uint8_t *tag = open + 1;
        size_t rest = len - (size_t)(tag - k);
        const uint8_t *close = rest > 0 ? memchr(tag, '}', rest) : NULL;
        /* "{}" is no tag: the whole key is hashed. Only the first '{' is considered, even when it has no '}'
         * and a later one would. */
        if (close != NULL && close > tag)
            return wsg_cluster_crc16(tag, (size_t)(close - tag)) & (WSG_CLUSTER_SLOTS - 1);
    }
    return wsg_cluster_crc16(k, len) & (WSG_CLUSTER_SLOTS - 1);
}
