/* Tests for protocol/cluster_slot.c: CRC16 check values, and key slots as a Redis 7.0 cluster node's
 * CLUSTER KEYSLOT answers them (hash tags, binary keys). */
#include "cluster_slot.h"

#include "test.h"

#define MEM(lit) lit, sizeof lit - 1

static void test_crc16_check_values(void)
{
    /* XMODEM: poly 0x1021, init 0, no reflection, no final XOR. */
    ASSERT_UINT_EQ(wsg_cluster_crc16(MEM("123456789")), 0x31C3);
    ASSERT_UINT_EQ(wsg_cluster_crc16(MEM("A")), 0x58E5);
    ASSERT_UINT_EQ(wsg_cluster_crc16(MEM("The quick brown fox jumps over the lazy dog")), 0xF0C8);
    ASSERT_UINT_EQ(wsg_cluster_crc16(MEM("\xff\xff\xff\xff")), 0x99CF);
    ASSERT_UINT_EQ(wsg_cluster_crc16(MEM("\0\0\0\0")), 0);
    ASSERT_UINT_EQ(wsg_cluster_crc16(NULL, 0), 0);
    ASSERT_UINT_EQ(wsg_cluster_crc16("", 0), 0);
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    ASSERT_UINT_EQ(wsg_cluster_crc16(all, sizeof all), 0x7E55);
    /* Only `len` bytes count. */
    ASSERT_UINT_EQ(wsg_cluster_crc16("123456789abc", 9), 0x31C3);
}

static void test_plain_keys(void)
{
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo")), 12182);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("bar")), 5061);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("a")), 15495);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("b")), 3300);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("x")), 16287);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("123456789")), 12739);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("user1000")), 3443);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("broadcast:foobar")), 3830);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("prefix:user:john:chat")), 8006);
    /* CRC16 above 16383: only the low 14 bits make the slot. */
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("A")), 0x58E5 & 0x3FFF);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("A")), 6373);
    char longkey[1000];
    memset(longkey, 'x', sizeof longkey);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(longkey, sizeof longkey), 3195);
}

static void test_empty_key(void)
{
    ASSERT_UINT_EQ(wsg_cluster_key_slot(NULL, 0), 0);
    ASSERT_UINT_EQ(wsg_cluster_key_slot("", 0), 0);
    ASSERT_UINT_EQ(wsg_cluster_key_slot("foo", 0), 0);
}

static void test_hash_tags(void)
{
    /* The tag alone is hashed, so keys that share it share a slot. */
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{user1000}.following")), 3443);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{user1000}.followers")), 3443);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{broadcast:foobar}")), 3830);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{a}")), 15495);
    /* The first '}' after the first '{' closes the tag. */
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{bar}{zap}")), 5061);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("a{b}c{d}")), 3300);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{{bar}}zap")), 4015);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{bar")), 4015);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{{}}")), 4092);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("}{x}")), 16287); /* a '}' before the '{' does not count */
    /* No tag: an empty one, or a '{' without '}' after it; the whole key is hashed. */
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{}{bar}")), 8363);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{}{bar}")), wsg_cluster_crc16(MEM("foo{}{bar}")) & 0x3FFF);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{}")), 15257);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{}}")), 14790);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{}")), 5542);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{}foo")), 9500);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{")), 7673);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo}")), 15679);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("}{")), 12793);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("foo{bar")), 15278);
    /* Only `len` bytes are looked at: a '}' past the end closes nothing. */
    ASSERT_UINT_EQ(wsg_cluster_key_slot("foo{bar}", 7), 15278);
    ASSERT_UINT_EQ(wsg_cluster_key_slot("{bar}", 1), wsg_cluster_crc16("{", 1) & 0x3FFF);
}

static void test_binary_keys(void)
{
    /* NUL is an ordinary byte: nothing stops at it. */
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("a\0b")), 8383);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("\0")), 0);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("\0\0\0")), 0);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("\0a")),
                   15495); /* leading zero bytes leave a zero CRC as it is */
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("{\0}x")), 0);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("x{\0}")), 0);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("\xff\xfe{\0a}")), 15495);
    ASSERT_UINT_EQ(wsg_cluster_key_slot(MEM("\x80\x81\x82\xff")), 12888);
}

static void test_every_slot_in_range(void)
{
    /* Two-byte keys cover every slot, and none lands outside the range. */
    static uint8_t seen[WSG_CLUSTER_SLOTS];
    memset(seen, 0, sizeof seen);
    for (unsigned v = 0; v < 65536; v++) {
        uint8_t key[2] = {(uint8_t)(v >> 8), (uint8_t)v};
        uint16_t slot = wsg_cluster_key_slot(key, sizeof key);
        if (slot >= WSG_CLUSTER_SLOTS) {
            TEST_FAIL_AT("slot %u of key %04x out of range", slot, v);
            return;
        }
        seen[slot] = 1;
    }
    size_t covered = 0;
    for (size_t i = 0; i < WSG_CLUSTER_SLOTS; i++)
        covered += seen[i];
    ASSERT_UINT_EQ(covered, WSG_CLUSTER_SLOTS);
}

TEST_MAIN("cluster_slot", TEST_CASE(test_crc16_check_values), TEST_CASE(test_plain_keys),
          TEST_CASE(test_empty_key), TEST_CASE(test_hash_tags), TEST_CASE(test_binary_keys),
          TEST_CASE(test_every_slot_in_range))
