/* Fuzzes token verification. The first byte picks a mode (as an ASCII digit in the seeds):
 *   '0' the rest is a token, verified as is;
 *   '1' the rest is a payload, signed with the fixed secret, so the JSON and claims code is reached;
 *   '2' the rest is header NUL payload, both signed, so the header checks are reached.
 * Invariants: a success re-computes (the signature is HMAC-SHA256 of the first two segments with the secret,
 * and with the canonical header the whole token equals wsg_token_sign_hs256() of the payload); every claim
 * obeys the contract; a failure leaves empty claims and a documented code with a reason. */
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "channel.h"
#include "token.h"
#include "url.h"
#include "utf8.h"

#include "fuzz.h"

#define ALL_FLAGS (WSG_Q_SUBSCRIBE_ANY | WSG_Q_PUBLISH_ANY | WSG_Q_ECHO)
#define HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define INPUT_MAX (2 * WSG_TOKEN_MAX_LEN)

static const uint8_t KEY[] = "s3cret"; /* the secret of the known-answer seeds */
#define KEY_LEN 6

static wsg_token_claims_t claims;
static char tok[4 * INPUT_MAX], scratch[4 * INPUT_MAX];

static size_t b64url(const void *in, size_t len, char *out)
{
    size_t n = wsg_base64_encode(in, len, out);
    while (n > 0 && out[n - 1] == '=')
        n--;
    for (size_t i = 0; i < n; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[n] = '\0';
    return n;
}

/* header.payload.signature from raw parts, signed here rather than by the code under test. */
static size_t build(const char *header, size_t hlen, const char *payload, size_t plen, char *out)
{
    size_t n = b64url(header, hlen, out);
    out[n++] = '.';
    n += b64url(payload, plen, out + n);
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    FUZZ_ASSERT(HMAC(EVP_sha256(), KEY, KEY_LEN, (const unsigned char *)out, n, mac, &ml) != NULL);
    out[n++] = '.';
    return n + b64url(mac, ml, out + n);
}

static bool is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static void check_claims(size_t max_groups, int64_t now, int64_t leeway)
{
    const wsg_token_claims_t *c = &claims;
    FUZZ_ASSERT(memchr(c->sub, '\0', sizeof c->sub) != NULL && memchr(c->sid, '\0', sizeof c->sid) != NULL);
    FUZZ_ASSERT(c->sub[0] == '\0' || wsg_channel_ident_is_valid(wsg_str_c(c->sub)));
    FUZZ_ASSERT(c->sid[0] == '\0' || wsg_channel_ident_is_valid(wsg_str_c(c->sid)));
    FUZZ_ASSERT(c->ngroups <= max_groups && c->ngroups <= WSG_TOKEN_GROUPS_MAX);
    FUZZ_ASSERT(c->names_len <= sizeof c->names);
    for (size_t i = 0; i < c->ngroups; i++) {
        const char *g = wsg_token_group(c, i);
        FUZZ_ASSERT(g != NULL && g >= c->names && g < c->names + c->names_len);
        FUZZ_ASSERT(wsg_channel_ident_is_valid(wsg_str_c(g)));
    }
    FUZZ_ASSERT(wsg_token_group(c, c->ngroups) == NULL);
    FUZZ_ASSERT(c->has_channels || c->nchannels == 0);
    FUZZ_ASSERT(c->nchannels <= WSG_TOKEN_CHANNELS_MAX);
    for (size_t i = 0; i < c->nchannels; i++) {
        const char *f = wsg_token_channel(c, i);
        FUZZ_ASSERT(f != NULL && f >= c->names && f < c->names + c->names_len);
        size_t n = strlen(f);
        FUZZ_ASSERT(n <= WSG_FACILITY_MAX && wsg_utf8_is_valid((const uint8_t *)f, n));
        for (size_t k = 0; k < n; k++)
            FUZZ_ASSERT((unsigned char)f[k] >= 0x20 && f[k] != 0x7f);
        FUZZ_ASSERT(wsg_token_allows_facility(c, (wsg_str_t){f, n}));
    }
    FUZZ_ASSERT(wsg_token_channel(c, c->nchannels) == NULL);
    if (!c->has_channels)
        FUZZ_ASSERT(wsg_token_allows_facility(c, wsg_str_c("any facility")));
    FUZZ_ASSERT(c->has_allow || c->allow == 0);
    FUZZ_ASSERT((c->allow & ~(uint32_t)ALL_FLAGS) == 0);
    /* Dates in range, and the verdict of the clock respected (in 128 bits: no overflow to reason about). */
    __int128 lw = leeway < 0 ? 0 : leeway;
    FUZZ_ASSERT(c->has_exp || c->exp == 0);
    FUZZ_ASSERT(c->has_nbf || c->nbf == 0);
    if (c->has_exp)
        FUZZ_ASSERT(c->exp >= 0 && c->exp <= 9007199254740991 && (__int128)now <= (__int128)c->exp + lw);
    if (c->has_nbf)
        FUZZ_ASSERT(c->nbf >= 0 && c->nbf <= 9007199254740991 && (__int128)now + lw >= (__int128)c->nbf);
}

static int check_verify(wsg_str_t t, int64_t now, int64_t leeway, size_t max_groups)
{
    const char *why = NULL;
    memset(&claims, 0xa5, sizeof claims);
    int rc = wsg_token_verify(t, KEY, KEY_LEN, now, leeway, max_groups, &claims, &why);
    FUZZ_ASSERT(why != NULL);
    FUZZ_ASSERT(rc == 0 || rc == -E2BIG || rc == -EINVAL || rc == -EACCES || rc == -EBADMSG ||
                rc == -EKEYEXPIRED || rc == -EAGAIN);
    FUZZ_ASSERT((rc == 0) == (why[0] == '\0'));
    FUZZ_ASSERT((rc == -E2BIG) == (t.len > WSG_TOKEN_MAX_LEN));
    if (rc != 0) {
        FUZZ_ASSERT(is_zero(&claims, sizeof claims));
        return rc;
    }

    /* Shape: three non-empty segments of the base64url alphabet. */
    const char *d1 = memchr(t.ptr, '.', t.len);
    FUZZ_ASSERT(d1 != NULL && d1 > t.ptr);
    const char *d2 = memchr(d1 + 1, '.', t.len - (size_t)(d1 + 1 - t.ptr));
    FUZZ_ASSERT(d2 != NULL && d2 > d1 + 1 && d2 < t.ptr + t.len - 1);
    FUZZ_ASSERT(memchr(d2 + 1, '.', t.len - (size_t)(d2 + 1 - t.ptr)) == NULL);
    for (size_t i = 0; i < t.len; i++)
        FUZZ_ASSERT(t.ptr[i] == '.' ||
                    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", t.ptr[i]) !=
                        NULL);

    /* The signature segment is exactly the canonical encoding of the HMAC of what precedes it. */
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    FUZZ_ASSERT(HMAC(EVP_sha256(), KEY, KEY_LEN, (const unsigned char *)t.ptr, (size_t)(d2 - t.ptr), mac,
                     &ml) != NULL);
    char sig[64];
    size_t sl = b64url(mac, ml, sig);
    FUZZ_ASSERT(sl == t.len - (size_t)(d2 + 1 - t.ptr) && memcmp(sig, d2 + 1, sl) == 0);

    /* With the canonical header, the token is what wsg_token_sign_hs256() makes of its payload. */
    char hdr64[64];
    size_t hl = b64url(HDR, strlen(HDR), hdr64);
    if ((size_t)(d1 - t.ptr) == hl && memcmp(t.ptr, hdr64, hl) == 0) {
        ssize_t pn =
            wsg_base64_decode(d1 + 1, (size_t)(d2 - d1 - 1), (uint8_t *)scratch, sizeof scratch - 1, true);
        FUZZ_ASSERT(pn > 0 && memchr(scratch, '\0', (size_t)pn) == NULL);
        scratch[pn] = '\0';
        static char again[2 * WSG_TOKEN_MAX_LEN];
        ssize_t n = wsg_token_sign_hs256(scratch, KEY, KEY_LEN, again, sizeof again);
        FUZZ_ASSERT(n == (ssize_t)t.len && memcmp(again, t.ptr, t.len) == 0);
    }
    check_claims(max_groups, now, leeway);

    /* Another key, even one byte longer, fails on the signature alone. */
    static const uint8_t other[] = "s3cret!";
    const char *why2 = NULL;
    FUZZ_ASSERT(wsg_token_verify(t, other, sizeof other - 1, now, leeway, max_groups, &claims, &why2) ==
                -EACCES);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > INPUT_MAX)
        return 0;
    uint64_t seed = fuzz_seed(data, size);
    static const int64_t nows[] = {1700000000, 0, INT64_MAX, INT64_MIN, 2000000000, 1600000000};
    static const int64_t leeways[] = {0, 60, -1, INT64_MAX};
    static const size_t maxes[] = {64, 0, 1, 3, SIZE_MAX};
    int64_t now = nows[fuzz_next(&seed) % (sizeof nows / sizeof nows[0])];
    int64_t leeway = leeways[fuzz_next(&seed) % (sizeof leeways / sizeof leeways[0])];
    size_t max_groups = maxes[fuzz_next(&seed) % (sizeof maxes / sizeof maxes[0])];
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;

    switch (data[0] % 3) {
    case 0:
        check_verify((wsg_str_t){rest, len}, now, leeway, max_groups);
        break;
    case 1: {
        /* The payload as a C string: signing stops at a NUL. */
        memcpy(scratch, rest, len);
        scratch[len] = '\0';
        ssize_t n = wsg_token_sign_hs256(scratch, KEY, KEY_LEN, tok, sizeof tok);
        FUZZ_ASSERT(n > 0 && (size_t)n == strlen(tok));
        int rc = check_verify((wsg_str_t){tok, (size_t)n}, now, leeway, max_groups);
        FUZZ_ASSERT(rc != -EACCES);
        if (rc == -EINVAL && scratch[0] != '\0') {
            const char *why = NULL;
            wsg_token_verify((wsg_str_t){tok, (size_t)n}, KEY, KEY_LEN, now, leeway, max_groups, &claims,
                             &why);
            FUZZ_ASSERT(strcmp(why, "payload is not a JSON object") == 0);
        }
        break;
    }
    case 2: {
        const char *nul = memchr(rest, '\0', len);
        size_t hl = nul ? (size_t)(nul - rest) : len / 2;
        const char *payload = nul ? nul + 1 : rest + hl;
        size_t n = build(rest, hl, payload, len - (size_t)(payload - rest), tok);
        int rc = check_verify((wsg_str_t){tok, n}, now, leeway, max_groups);
        FUZZ_ASSERT(rc != -EACCES);
        break;
    }
    }
    return 0;
}
