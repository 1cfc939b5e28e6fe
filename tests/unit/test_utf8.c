/* Tests for protocol/utf8.c: Markus Kuhn's decoder stress cases, boundaries, and cutting. */
#include "utf8.h"

#include "test.h"
#include "utf8_reference.h"

#define V(s) wsg_utf8_is_valid((const uint8_t *)(s), sizeof(s) - 1)

static void test_valid(void)
{
    ASSERT_TRUE(wsg_utf8_is_valid(NULL, 0));
    ASSERT_TRUE(V(""));
    ASSERT_TRUE(V("hello"));
    ASSERT_TRUE(V("\0")); /* U+0000 is a valid character */
    ASSERT_TRUE(V("\x7f"));
    ASSERT_TRUE(V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5")); /* "kosme" in Greek (Kuhn 1) */
    /* First and last sequences of each length (Kuhn 2.1, 2.2, within Unicode). */
    ASSERT_TRUE(V("\xc2\x80"));         /* U+0080 */
    ASSERT_TRUE(V("\xdf\xbf"));         /* U+07FF */
    ASSERT_TRUE(V("\xe0\xa0\x80"));     /* U+0800 */
    ASSERT_TRUE(V("\xef\xbf\xbf"));     /* U+FFFF (a noncharacter, still valid UTF-8) */
    ASSERT_TRUE(V("\xf0\x90\x80\x80")); /* U+10000 */
    ASSERT_TRUE(V("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    /* Around the surrogates (Kuhn 2.3). */
    ASSERT_TRUE(V("\xed\x9f\xbf")); /* U+D7FF */
    ASSERT_TRUE(V("\xee\x80\x80")); /* U+E000 */
    ASSERT_TRUE(V("\xef\xbf\xbd")); /* U+FFFD */
    ASSERT_TRUE(V("\xef\xbf\xbe")); /* U+FFFE */
    ASSERT_TRUE(V("a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!"));
}

static void test_unexpected_continuation(void)
{
    /* Kuhn 3.1: lone continuation bytes. */
    ASSERT_FALSE(V("\x80"));
    ASSERT_FALSE(V("\xbf"));
    ASSERT_FALSE(V("\x80\xbf"));
    ASSERT_FALSE(V("a\x80"
                   "b"));
    for (int c = 0x80; c <= 0xbf; c++) {
        uint8_t b = (uint8_t)c;
        if (wsg_utf8_is_valid(&b, 1))
            TEST_FAIL_AT("lone continuation 0x%02x accepted", c);
    }
}

static void test_lonely_start(void)
{
    /* Kuhn 3.2: every lead byte followed by a space, and 3.3/3.4: sequences missing their last byte. */
    for (int c = 0xc0; c <= 0xff; c++) {
        uint8_t b[2] = {(uint8_t)c, ' '};
        if (wsg_utf8_is_valid(b, 2))
            TEST_FAIL_AT("lead 0x%02x followed by a space accepted", c);
        if (wsg_utf8_is_valid(b, 1))
            TEST_FAIL_AT("lone lead 0x%02x accepted", c);
    }
    ASSERT_FALSE(V("\xc2"));
    ASSERT_FALSE(V("\xe0\xa0"));
    ASSERT_FALSE(V("\xf0\x90\x80"));
    ASSERT_FALSE(V("\xdf"));
    ASSERT_FALSE(V("\xef\xbf"));
    ASSERT_FALSE(V("\xf4\x8f\xbf"));
    ASSERT_FALSE(V("abc\xe2\x82"));
    /* Kuhn 3.5: concatenation of incomplete sequences. */
    ASSERT_FALSE(V("\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf"));
    /* A lead byte where a continuation byte is due. */
    ASSERT_FALSE(V("\xe2\x82\xe2\x82\xac"));
    ASSERT_FALSE(V("\xf0\x9f\x98\xc3\xa9"));
}

static void test_impossible_bytes(void)
{
    /* Kuhn 3.5: fe, ff; and 5/6-byte forms (Kuhn 2.1 beyond U+10FFFF). */
    ASSERT_FALSE(V("\xfe"));
    ASSERT_FALSE(V("\xff"));
    ASSERT_FALSE(V("\xfe\xfe\xff\xff"));
    ASSERT_FALSE(V("\xf8\x88\x80\x80\x80"));
    ASSERT_FALSE(V("\xfc\x84\x80\x80\x80\x80"));
    ASSERT_FALSE(V("\xf5\x80\x80\x80"));
    ASSERT_FALSE(V("\xf7\xbf\xbf\xbf")); /* U+1FFFFF */
    ASSERT_FALSE(V("\xf4\x90\x80\x80")); /* U+110000 */
    ASSERT_FALSE(V("\xf4\xbf\xbf\xbf"));
}

static void test_overlong(void)
{
    /* Kuhn 4.1-4.3: overlong forms of '/' and of the largest values for each length, and of NUL. */
    ASSERT_FALSE(V("\xc0\xaf"));
    ASSERT_FALSE(V("\xe0\x80\xaf"));
    ASSERT_FALSE(V("\xf0\x80\x80\xaf"));
    ASSERT_FALSE(V("\xf8\x80\x80\x80\xaf"));
    ASSERT_FALSE(V("\xc1\xbf"));
    ASSERT_FALSE(V("\xe0\x9f\xbf"));
    ASSERT_FALSE(V("\xf0\x8f\xbf\xbf"));
    ASSERT_FALSE(V("\xc0\x80"));
    ASSERT_FALSE(V("\xe0\x80\x80"));
    ASSERT_FALSE(V("\xf0\x80\x80\x80"));
}

static void test_surrogates(void)
{
    /* Kuhn 5.1, 5.2: single and paired UTF-16 surrogates. */
    ASSERT_FALSE(V("\xed\xa0\x80"));
    ASSERT_FALSE(V("\xed\xad\xbf"));
    ASSERT_FALSE(V("\xed\xae\x80"));
    ASSERT_FALSE(V("\xed\xaf\xbf"));
    ASSERT_FALSE(V("\xed\xb0\x80"));
    ASSERT_FALSE(V("\xed\xbe\x80"));
    ASSERT_FALSE(V("\xed\xbf\xbf"));
    ASSERT_FALSE(V("\xed\xa0\x80\xed\xb0\x80"));
    ASSERT_FALSE(V("\xed\xaf\xbf\xed\xbf\xbf"));
}

static void test_bad_continuation(void)
{
    ASSERT_FALSE(V("\xc2\x7f"));
    ASSERT_FALSE(V("\xc2\xc0"));
    ASSERT_FALSE(V("\xe1\x80\x7f"));
    ASSERT_FALSE(V("\xe1\xc0\x80"));
    ASSERT_FALSE(V("\xf1\x80\x80\x7f"));
    ASSERT_FALSE(V("\xf1\x80\xc0\x80"));
    /* The second byte's special ranges apply to E0, ED, F0 and F4 only. */
    ASSERT_TRUE(V("\xe1\x80\x80"));
    ASSERT_TRUE(V("\xec\xbf\xbf"));
    ASSERT_TRUE(V("\xee\xa0\x80"));
    ASSERT_TRUE(V("\xf1\x80\x80\x80"));
    ASSERT_TRUE(V("\xf3\xbf\xbf\xbf"));
    ASSERT_TRUE(V("\xf0\xbf\xbf\xbf"));
}

/* An exhaustive cross-check against the reference decoder. */

static void test_exhaustive_against_reference(void)
{
    /* All 1- and 2-byte strings, and all 3-byte strings with a lead byte >= 0xc0. */
    uint8_t b[4];
    int mismatches = 0;
    for (int x = 0; x < 256; x++) {
        b[0] = (uint8_t)x;
        if (wsg_utf8_is_valid(b, 1) != reference_valid(b, 1))
            mismatches++;
        for (int y = 0; y < 256; y++) {
            b[1] = (uint8_t)y;
            if (wsg_utf8_is_valid(b, 2) != reference_valid(b, 2))
                mismatches++;
            if (x < 0xc0)
                continue;
            for (int z = 0; z < 256; z++) {
                b[2] = (uint8_t)z;
                if (wsg_utf8_is_valid(b, 3) != reference_valid(b, 3))
                    mismatches++;
            }
        }
    }
    /* Every 4-byte sequence with lead F0..F7 and continuation-ish bytes 0x70..0xcf. */
    for (int w = 0xf0; w <= 0xf7; w++)
        for (int x = 0x70; x <= 0xcf; x++)
            for (int y = 0x70; y <= 0xcf; y++)
                for (int z = 0x70; z <= 0xcf; z += 3) {
                    uint8_t q[4] = {(uint8_t)w, (uint8_t)x, (uint8_t)y, (uint8_t)z};
                    if (wsg_utf8_is_valid(q, 4) != reference_valid(q, 4))
                        mismatches++;
                }
    ASSERT_INT_EQ(mismatches, 0);
}

static void test_cut(void)
{
    const uint8_t *s = (const uint8_t *)"a\xc3\xa9"
                                        "b\xe2\x82\xac"
                                        "c\xf0\x9f\x98\x80"; /* a é b € c 😀 */
    size_t len = 12;
    /* Expected cut for every max from 0 to len + 2. */
    static const size_t want[] = {0, 1, 1, 3, 4, 4, 4, 7, 8, 8, 8, 8, 12, 12, 12};
    for (size_t max = 0; max < sizeof want / sizeof want[0]; max++) {
        size_t got = wsg_utf8_cut(s, len, max);
        if (got != want[max])
            TEST_FAIL_AT("cut(max=%zu) = %zu, want %zu", max, got, want[max]);
        if (got <= len && !wsg_utf8_is_valid(s, got))
            TEST_FAIL_AT("cut(max=%zu) = %zu is not on a boundary", max, got);
    }
    ASSERT_UINT_EQ(wsg_utf8_cut(NULL, 0, 0), 0);
    ASSERT_UINT_EQ(wsg_utf8_cut(NULL, 0, 123), 0);
    ASSERT_UINT_EQ(wsg_utf8_cut((const uint8_t *)"abc", 3, 3), 3);
    ASSERT_UINT_EQ(wsg_utf8_cut((const uint8_t *)"abc", 3, 100), 3);
    /* A close reason: 122 ASCII bytes then "é" (2 bytes) must lose the é entirely at max 123. */
    uint8_t reason[124];
    memset(reason, 'x', 122);
    reason[122] = 0xc3;
    reason[123] = 0xa9;
    ASSERT_UINT_EQ(wsg_utf8_cut(reason, 124, 123), 122);
    ASSERT_UINT_EQ(wsg_utf8_cut(reason, 124, 124), 124);
    /* Invalid input: the cut stays within max and moves back at most three bytes. */
    uint8_t junk[10];
    memset(junk, 0x80, sizeof junk);
    size_t c = wsg_utf8_cut(junk, sizeof junk, 8);
    ASSERT_TRUE(c <= 8 && c >= 5);
}

TEST_MAIN("utf8", TEST_CASE(test_valid), TEST_CASE(test_unexpected_continuation),
          TEST_CASE(test_lonely_start), TEST_CASE(test_impossible_bytes), TEST_CASE(test_overlong),
          TEST_CASE(test_surrogates), TEST_CASE(test_bad_continuation),
          TEST_CASE(test_exhaustive_against_reference), TEST_CASE(test_cut))
