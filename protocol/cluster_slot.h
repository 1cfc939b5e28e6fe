/* Redis Cluster key slots: CRC16 (XMODEM) of a key, or of its hash tag, modulo 16384. */
#ifndef WSG_PROTOCOL_CLUSTER_SLOT_H
#define WSG_PROTOCOL_CLUSTER_SLOT_H

#include <stddef.h>
#include <stdint.h>

/** Number of hash slots of a Redis Cluster; a slot is in [0, WSG_CLUSTER_SLOTS). */
#define WSG_CLUSTER_SLOTS 16384

/** CRC16 as Redis Cluster uses it (CCITT polynomial 0x1021, initial value 0, no reflection, no final XOR;
 *  also called XMODEM): "123456789" gives 0x31C3. Returns 0 for `len` 0. Borrows `data` (may be NULL when
 *  `len` is 0). */
uint16_t wsg_cluster_crc16(const void *data, size_t len);

/** The hash slot of `key` (`len` bytes, any bytes including NUL), in [0, WSG_CLUSTER_SLOTS): CRC16 of the
 *  key modulo 16384, or, when the key has a hash tag, of the tag only. The tag is what lies between the first
 *  '{' and the first '}' after it, when that is not empty ("{user1000}.following" hashes "user1000",
 *  "foo{{bar}}" hashes "{bar", "foo{}{bar}" hashes the whole key). Borrows `key` (may be NULL when `len`
 *  is 0). */
uint16_t wsg_cluster_key_slot(const void *key, size_t len);

#endif
