/* Tests for protocol/base64.c: RFC 4648 vectors, strictness, both alphabets, capacity. */
#include <errno.h>

#include "base64.h"

#include "test.h"

static const struct {
    const char *raw, *enc, *url_nopad;
} vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static ssize_t dec(const char *in, bool url_safe, uint8_t *out, size_t cap)
{
    return wsg_base64_decode(in, strlen(in), out, cap, url_safe);
}

static void test_encoded_len(void)
{
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(0), 0);
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(1), 4);
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(2), 4);
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(3), 4);
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(4), 8);
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(16), 24);
    ASSERT_UINT_EQ(WSG_BASE64_ENCODED_LEN(20), 28);
}

static void test_rfc4648_vectors(void)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char out[32];
        memset(out, 'X', sizeof out);
        size_t n = wsg_base64_encode((const uint8_t *)vectors[i].raw, strlen(vectors[i].raw), out);
        ASSERT_UINT_EQ(n, strlen(vectors[i].enc));
        ASSERT_UINT_EQ(n, WSG_BASE64_ENCODED_LEN(strlen(vectors[i].raw)));
        ASSERT_STR_EQ(out, vectors[i].enc);

        uint8_t raw[32];
        ssize_t d = dec(vectors[i].enc, false, raw, sizeof raw);
        ASSERT_INT_EQ(d, strlen(vectors[i].raw));
        ASSERT_MEM_EQ(raw, vectors[i].raw, strlen(vectors[i].raw));
        /* URL-safe decoding accepts both padded and unpadded forms. */
        d = dec(vectors[i].enc, true, raw, sizeof raw);
        ASSERT_INT_EQ(d, strlen(vectors[i].raw));
        d = dec(vectors[i].url_nopad, true, raw, sizeof raw);
        ASSERT_INT_EQ(d, strlen(vectors[i].raw));
        ASSERT_MEM_EQ(raw, vectors[i].raw, strlen(vectors[i].raw));
    }
}

static void test_websocket_key(void)
{
    uint8_t raw[16];
    ASSERT_INT_EQ(dec("dGhlIHNhbXBsZSBub25jZQ==", false, raw, sizeof raw), 16);
    ASSERT_MEM_EQ(raw, "the sample nonce", 16);
}

static void test_all_bytes_roundtrip(void)
{
    /* Every byte value in every position of a 3-byte group, and all lengths up to 64. */
    uint8_t in[256 + 2];
    for (int i = 0; i < 256 + 2; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    for (size_t len = 0; len <= sizeof in; len++) {
        char enc[WSG_BASE64_ENCODED_LEN(sizeof in) + 1];
        size_t n = wsg_base64_encode(in, len, enc);
        ASSERT_UINT_EQ(n, WSG_BASE64_ENCODED_LEN(len));
        ASSERT_UINT_EQ(strlen(enc), n);
        uint8_t out[sizeof in];
        ssize_t d = wsg_base64_decode(enc, n, out, sizeof out, false);
        ASSERT_INT_EQ(d, len);
        if (d == (ssize_t)len)
            ASSERT_MEM_EQ(out, in, len);
    }
}

static void test_standard_alphabet(void)
{
    uint8_t raw[8];
    /* 0xfb 0xff 0xbf encodes to "+/+/" in the standard alphabet, "-_-_" in the URL-safe one. */
    uint8_t bytes[] = {0xfb, 0xef, 0xbe, 0xfb, 0xff, 0xbf};
    char enc[16];
    wsg_base64_encode(bytes, 3, enc);
    ASSERT_STR_EQ(enc, "++++");
    wsg_base64_encode(bytes + 3, 3, enc);
    ASSERT_STR_EQ(enc, "+/+/");
    ASSERT_INT_EQ(dec("+/+/", false, raw, sizeof raw), 3);
    ASSERT_MEM_EQ(raw, bytes + 3, 3);
    ASSERT_INT_EQ(dec("-_-_", true, raw, sizeof raw), 3);
    ASSERT_MEM_EQ(raw, bytes + 3, 3);
    /* Each alphabet refuses the other's two characters. */
    ASSERT_INT_EQ(dec("-_-_", false, raw, sizeof raw), -EINVAL);
    ASSERT_INT_EQ(dec("+/+/", true, raw, sizeof raw), -EINVAL);
    ASSERT_INT_EQ(dec("AA+A", true, raw, sizeof raw), -EINVAL);
    ASSERT_INT_EQ(dec("AA_A", false, raw, sizeof raw), -EINVAL);
}

static void test_bad_input(void)
{
    uint8_t raw[32];
    const char *bad_std[] = {
        "Zg",       /* padding required */
        "Zm8",      /* padding required */
        "Zg=",      /* incomplete padding */
        "Z===",     /* a single character carries no byte */
        "====",     /* padding only */
        "=",        /* padding only */
        "Zg==Zg==", /* padding in the middle */
        "Z=g=",     /* padding inside a group */
        "Zm9v=",    /* extra padding */
        "Zm9v====", /* a whole group of padding */
        "Zh==",     /* non-zero trailing bits ('h' leaves 0001 after the byte) */
        "Zm9=",     /* non-zero trailing bits */
        "Zm8 ",     /* space */
        " Zm8=",    /* leading space */
        "Zm8=\n",   /* newline */
        "Zm\x80v",  /* non-ASCII */
        "Zm.v",     /* outside the alphabet */
        "Zm9vY",    /* bad length */
    };
    for (size_t i = 0; i < sizeof bad_std / sizeof bad_std[0]; i++) {
        ssize_t rc = dec(bad_std[i], false, raw, sizeof raw);
        if (rc != -EINVAL)
            TEST_FAIL_AT("std decode of \"%s\" gave %zd, want -EINVAL", bad_std[i], rc);
    }
    const char *bad_url[] = {"Z", "Zm9vY", "Zg=", "Zh", "Zh==", "Zm9", "Z===", "Zg==Zg", "Zm9v=", "Zm 9"};
    for (size_t i = 0; i < sizeof bad_url / sizeof bad_url[0]; i++) {
        ssize_t rc = dec(bad_url[i], true, raw, sizeof raw);
        if (rc != -EINVAL)
            TEST_FAIL_AT("url decode of \"%s\" gave %zd, want -EINVAL", bad_url[i], rc);
    }
    /* An embedded NUL is just a bad character. */
    ASSERT_INT_EQ(wsg_base64_decode("Zm\0v", 4, raw, sizeof raw, false), -EINVAL);
    /* The length argument rules, not the NUL terminator. */
    ASSERT_INT_EQ(wsg_base64_decode("Zm9vYmFy", 4, raw, sizeof raw, false), 3);
    ASSERT_MEM_EQ(raw, "foo", 3);
}

static void test_capacity(void)
{
    uint8_t raw[8];
    memset(raw, 0xaa, sizeof raw);
    ASSERT_INT_EQ(dec("Zm9vYmFy", false, raw, 5), -ENOSPC);
    ASSERT_INT_EQ(dec("Zm9vYmFy", false, raw, 6), 6);
    ASSERT_INT_EQ(dec("Zm9vYmE=", false, raw, 4), -ENOSPC);
    ASSERT_INT_EQ(dec("Zm9vYmE=", false, raw, 5), 5);
    ASSERT_INT_EQ(dec("Zm9vYmE", true, raw, 4), -ENOSPC);
    ASSERT_INT_EQ(dec("", false, NULL, 0), 0);
    ASSERT_INT_EQ(dec("Zg==", false, raw, 0), -ENOSPC);
    /* A bad character wins over a small buffer, and nothing is written past the capacity. */
    memset(raw, 0xaa, sizeof raw);
    ASSERT_INT_EQ(dec("Zm9v!mFy", false, raw, 2), -EINVAL);
    ASSERT_INT_EQ(dec("Zm9vYmFy", false, raw, 2), -ENOSPC);
    ASSERT_UINT_EQ(raw[2], 0xaa);
}

TEST_MAIN("base64", TEST_CASE(test_encoded_len), TEST_CASE(test_rfc4648_vectors),
          TEST_CASE(test_websocket_key), TEST_CASE(test_all_bytes_roundtrip),
          TEST_CASE(test_standard_alphabet), TEST_CASE(test_bad_input), TEST_CASE(test_capacity))
