/* Tests for protocol/token.c: known answers, the round trip, and each refusal with its code and reason. */
#include <errno.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "token.h"
#include "url.h"

#include "test.h"

#define NOW 1700000000
static const uint8_t KEY[] = "s3cret";
#define KEY_LEN 6
#define HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

/* Claims live here rather than on each test's stack (about 7 KB). */
static wsg_token_claims_t claims;

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

/* Any header and payload bytes, signed with `key` independently of the code under test. Returns a static
 * buffer, overwritten by the next call. */
static char *build_key(const char *header, size_t hlen, const char *payload, size_t plen, const uint8_t *key,
                       size_t klen)
{
    static char tok[4 * WSG_TOKEN_MAX_LEN];
    size_t n = b64url(header, hlen, tok);
    tok[n++] = '.';
    n += b64url(payload, plen, tok + n);
    uint8_t mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)tok, n, mac, &ml);
    tok[n++] = '.';
    b64url(mac, ml, tok + n);
    return tok;
}

static char *build(const char *header, const char *payload)
{
    return build_key(header, strlen(header), payload, strlen(payload), KEY, KEY_LEN);
}

static void clear_check(int line)
{
    static const wsg_token_claims_t zero;
    if (memcmp(&claims, &zero, sizeof claims) != 0)
        TEST_FAIL_AT("line %d: claims not reset after a failure", line);
}

static void check_err_at(const char *tok, int64_t now, int64_t leeway, size_t max_groups, int want_rc,
                         const char *want_why, int line)
{
    const char *why = NULL;
    memset(&claims, 0x5a, sizeof claims);
    int rc = wsg_token_verify(wsg_str_c(tok), KEY, KEY_LEN, now, leeway, max_groups, &claims, &why);
    if (rc != want_rc || why == NULL || strcmp(why, want_why) != 0)
        TEST_FAIL_AT("line %d: rc %d (%s), want %d (%s)", line, rc, why ? why : "(null)", want_rc, want_why);
    clear_check(line);
}
#define ERR(tok, rc, why) check_err_at(tok, NOW, 0, 64, rc, why, __LINE__)
#define ERR_P(payload, rc, why) ERR(build(HDR, payload), rc, why)
#define ERR_H(header, rc, why) ERR(build(header, "{}"), rc, why)

/* Verifies and leaves the claims in `claims`. */
static bool verify_ok_at(const char *tok, int64_t now, int64_t leeway, size_t max_groups, int line)
{
    const char *why = NULL;
    memset(&claims, 0x5a, sizeof claims);
    int rc = wsg_token_verify(wsg_str_c(tok), KEY, KEY_LEN, now, leeway, max_groups, &claims, &why);
    if (rc != 0 || why == NULL || strcmp(why, "") != 0) {
        TEST_FAIL_AT("line %d: rc %d (%s), want 0", line, rc, why ? why : "(null)");
        return false;
    }
    return true;
}
#define OK(tok) verify_ok_at(tok, NOW, 0, 64, __LINE__)
#define OK_P(payload) OK(build(HDR, payload))

/* ---- known answers ---- */

static void test_known_answer_mint_token_py(void)
{
    /* tests/unit/mint_token.py s3cret '<payload>' */
    static const char payload[] =
        "{\"sub\":\"john\",\"sid\":\"abc123\",\"groups\":[\"admins\",\"staff\"],\"channels\":[\"foobar\","
        "\"chat/room-1\"],\"allow\":[\"subscribe-broadcast\",\"publish-user\"],\"exp\":2000000000,"
        "\"nbf\":1600000000}";
    static const char want[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
                               "eyJzdWIiOiJqb2huIiwic2lkIjoiYWJjMTIzIiwiZ3JvdXBzIjpbImFkbWlucyIsInN0"
                               "YWZmIl0sImNoYW5uZWxzIjpbImZvb2JhciIsImNoYXQvcm9vbS0xIl0sImFsbG93IjpbInN1YnNjc"
                               "mliZS1icm9hZGNhc3QiLCJwdWJs"
                               "aXNoLXVzZXIiXSwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDAwMDAwMDB9.Qh4aMAQNRK0Fmr6-"
                               "oyPSX_vrqbKG5hid2s63Hht1J0Q";
    char tok[1024];
    ASSERT_INT_EQ(wsg_token_sign_hs256(payload, KEY, KEY_LEN, tok, sizeof tok), (ssize_t)strlen(want));
    ASSERT_STR_EQ(tok, want);
    ASSERT_STR_EQ(build(HDR, payload), want);
    if (!OK(want))
        return;
    ASSERT_STR_EQ(claims.sub, "john");
    ASSERT_STR_EQ(claims.sid, "abc123");
    ASSERT_UINT_EQ(claims.ngroups, 2);
    ASSERT_STR_EQ(wsg_token_group(&claims, 0), "admins");
    ASSERT_STR_EQ(wsg_token_group(&claims, 1), "staff");
    ASSERT_TRUE(wsg_token_group(&claims, 2) == NULL);
    ASSERT_TRUE(claims.has_channels);
    ASSERT_UINT_EQ(claims.nchannels, 2);
    ASSERT_STR_EQ(wsg_token_channel(&claims, 0), "foobar");
    ASSERT_STR_EQ(wsg_token_channel(&claims, 1), "chat/room-1");
    ASSERT_TRUE(wsg_token_channel(&claims, 2) == NULL);
    ASSERT_TRUE(claims.has_allow);
    ASSERT_UINT_EQ(claims.allow, WSG_Q_SUBSCRIBE_BROADCAST | WSG_Q_PUBLISH_USER);
    ASSERT_TRUE(claims.has_exp);
    ASSERT_INT_EQ(claims.exp, 2000000000);
    ASSERT_TRUE(claims.has_nbf);
    ASSERT_INT_EQ(claims.nbf, 1600000000);
}

static void test_known_answer_third_party(void)
{
    /* The example of jwt.io, made by another implementation; "name" and "iat" are ignored. */
    static const char jwt_io[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ikpva"
        "G4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    static const uint8_t jwt_io_key[] = "your-256-bit-secret";
    char tok[256];
    ASSERT_INT_EQ(wsg_token_sign_hs256("{\"sub\":\"1234567890\",\"name\":\"John Doe\",\"iat\":1516239022}",
                                       jwt_io_key, sizeof jwt_io_key - 1, tok, sizeof tok),
                  (ssize_t)strlen(jwt_io));
    ASSERT_STR_EQ(tok, jwt_io);
    const char *why = NULL;
    ASSERT_INT_EQ(
        wsg_token_verify(wsg_str_c(jwt_io), jwt_io_key, sizeof jwt_io_key - 1, NOW, 0, 64, &claims, &why), 0);
    ASSERT_STR_EQ(claims.sub, "1234567890");
    ASSERT_FALSE(claims.has_exp);

    /* RFC 7515 appendix A.1: "typ" first, CR LF inside both JSON texts, a binary key, "exp" 1300819380. */
    static const char rfc[] =
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTk"
        "zODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1"
        "r_wW1gFWFOEjXk";
    uint8_t key[64];
    static const char key64[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    ASSERT_INT_EQ(wsg_base64_decode(key64, strlen(key64), key, sizeof key, true), 64);
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(rfc), key, 64, 1300819380, 0, 64, &claims, &why), 0);
    ASSERT_TRUE(claims.has_exp);
    ASSERT_INT_EQ(claims.exp, 1300819380);
    ASSERT_STR_EQ(claims.sub, "");
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(rfc), key, 64, 1300819381, 0, 64, &claims, &why), -EKEYEXPIRED);
    ASSERT_STR_EQ(why, "token expired");
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(rfc), key, 63, 1300819380, 0, 64, &claims, &why), -EACCES);
}

/* ---- round trip ---- */

static void test_round_trip(void)
{
    char tok[WSG_TOKEN_MAX_LEN + 1];
    ASSERT_INT_EQ(wsg_token_sign_hs256("{}", KEY, KEY_LEN, tok, sizeof tok), 36 + 1 + 3 + 1 + 43);
    if (OK(tok)) {
        ASSERT_STR_EQ(claims.sub, "");
        ASSERT_STR_EQ(claims.sid, "");
        ASSERT_UINT_EQ(claims.ngroups, 0);
        ASSERT_FALSE(claims.has_channels || claims.has_allow || claims.has_exp || claims.has_nbf);
        ASSERT_UINT_EQ(claims.allow, 0);
    }
    /* Every claim, escapes decoded, white space anywhere JSON allows it, unknown claims of any type. */
    static const char payload[] =
        " {\n\t\"iss\" : {\"nested\": [1, 2, {\"sub\": \"x:y\"}]}, \"sub\": \"j\\u00f6rg\", \"sid\" : "
        "\"k3y\", \"groups\": [\"a\", \"b c\", \"\\u00e9\"], \"channels\": [\"\", \"x/y\"], \"allow\": "
        "[\"subscribe-broadcast\", \"subscribe-user\", \"subscribe-group\", \"subscribe-session\", "
        "\"publish-broadcast\", \"publish-user\", \"publish-group\", \"publish-session\", \"echo\", "
        "\"echo\"],"
        " \"exp\": 1e10, \"nbf\": 0, \"aud\": null, \"SUB\": 1, \"note\": \"\\\\u0000\"} \r\n";
    ASSERT_TRUE(wsg_token_sign_hs256(payload, KEY, KEY_LEN, tok, sizeof tok) > 0);
    if (!OK(tok))
        return;
    ASSERT_STR_EQ(claims.sub, "j\xc3\xb6rg");
    ASSERT_STR_EQ(claims.sid, "k3y");
    ASSERT_UINT_EQ(claims.ngroups, 3);
    ASSERT_STR_EQ(wsg_token_group(&claims, 1), "b c");
    ASSERT_STR_EQ(wsg_token_group(&claims, 2), "\xc3\xa9");
    ASSERT_UINT_EQ(claims.nchannels, 2);
    ASSERT_STR_EQ(wsg_token_channel(&claims, 0), "");
    ASSERT_UINT_EQ(claims.allow, WSG_Q_SUBSCRIBE_ANY | WSG_Q_PUBLISH_ANY | WSG_Q_ECHO);
    ASSERT_INT_EQ(claims.exp, 10000000000);
    ASSERT_TRUE(claims.has_nbf);
    ASSERT_INT_EQ(claims.nbf, 0);

    /* The signature input is the text, so a non-canonical header (no typ, other order, extra fields) works.
     */
    OK(build("{\"alg\":\"HS256\"}", "{\"sub\":\"a\"}"));
    OK(build("{ \"kid\" : \"k1\", \"typ\" : \"JWT\", \"alg\" : \"HS256\" }", "{}"));
    /* The secret is bytes: NULs and high bytes count. */
    static const uint8_t bin[] = {0, 1, 0xff, 0, 0x80};
    char *t = build_key(HDR, strlen(HDR), "{}", 2, bin, sizeof bin);
    const char *why;
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(t), bin, sizeof bin, NOW, 0, 64, &claims, &why), 0);
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(t), bin, sizeof bin - 1, NOW, 0, 64, &claims, &why), -EACCES);
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(t), bin, 1, NOW, 0, 64, &claims, &why), -EACCES);
    /* `why` may be NULL; the token is a view, not a C string. */
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(t), bin, sizeof bin, NOW, 0, 64, &claims, NULL), 0);
    char copy[256];
    size_t len = strlen(t);
    memcpy(copy, t, len);
    memcpy(copy + len, ".x", 2);
    ASSERT_INT_EQ(wsg_token_verify((wsg_str_t){copy, len}, bin, sizeof bin, NOW, 0, 64, &claims, NULL), 0);
}

static void test_sign_errors(void)
{
    char tok[128];
    ssize_t n = wsg_token_sign_hs256("{}", KEY, KEY_LEN, tok, sizeof tok);
    ASSERT_INT_EQ(n, 84);
    ASSERT_INT_EQ(wsg_token_sign_hs256("{}", KEY, KEY_LEN, tok, (size_t)n), -ENOSPC);
    ASSERT_INT_EQ(wsg_token_sign_hs256("{}", KEY, KEY_LEN, tok, (size_t)n + 1), n);
    ASSERT_INT_EQ(wsg_token_sign_hs256("{}", KEY, KEY_LEN, tok, 0), -ENOSPC);
    ASSERT_INT_EQ(wsg_token_sign_hs256(NULL, KEY, KEY_LEN, tok, sizeof tok), -EINVAL);
    ASSERT_INT_EQ(wsg_token_sign_hs256("{}", KEY, 0, tok, sizeof tok), -EINVAL);
    ASSERT_INT_EQ(wsg_token_sign_hs256("{}", NULL, 1, tok, sizeof tok), -EINVAL);
    /* Signed as given, not parsed. */
    ASSERT_TRUE(wsg_token_sign_hs256("not json", KEY, KEY_LEN, tok, sizeof tok) > 0);
    ERR(tok, -EINVAL, "payload is not a JSON object");
    /* Payload lengths 0-5 cover every base64 tail. */
    for (size_t len = 0; len < 6; len++) {
        char p[8] = "{}    ";
        p[len] = '\0';
        n = wsg_token_sign_hs256(p, KEY, KEY_LEN, tok, sizeof tok);
        ASSERT_STR_EQ(tok, build(HDR, p));
    }
}

/* ---- header ---- */

static void test_alg(void)
{
    /* Properly signed, so that only the header is wrong. */
    ERR_H("{\"alg\":\"none\",\"typ\":\"JWT\"}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":\"RS256\"}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":\"hs256\"}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":\"HS256 \"}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":\"\"}", -EINVAL, "alg must be HS256");
    ERR_H("{\"typ\":\"JWT\"}", -EINVAL, "alg must be HS256");
    ERR_H("{}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":256}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":null}", -EINVAL, "alg must be HS256");
    ERR_H("{\"alg\":[\"HS256\"]}", -EINVAL, "alg must be HS256");
    ERR_H("{\"ALG\":\"HS256\"}", -EINVAL, "alg must be HS256"); /* keys are case-sensitive */
    ERR_H("{\"alg\":\"HS256\\u0000x\"}", -EINVAL, "header is not a JSON object");
    ERR_H("{\"alg\":\"HS256\",\"alg\":\"none\"}", -EINVAL, "duplicate alg");
    ERR_H("{\"alg\":\"none\",\"alg\":\"HS256\"}", -EINVAL, "duplicate alg");
    /* The classic "alg":"none" token has no signature; an HS512 one has 64 bytes of it. */
    char none[128];
    size_t n = b64url("{\"alg\":\"none\"}", 14, none);
    memcpy(none + n, ".e30.", 6);
    ERR(none, -EINVAL, "empty segment");
    char hs512[256];
    n = b64url("{\"alg\":\"HS512\"}", 15, hs512);
    uint8_t mac[64];
    unsigned int ml = 0;
    memcpy(hs512 + n, ".e30", 4);
    n += 4;
    HMAC(EVP_sha512(), KEY, KEY_LEN, (const unsigned char *)hs512, n, mac, &ml);
    hs512[n++] = '.';
    b64url(mac, ml, hs512 + n);
    ERR(hs512, -EINVAL, "signature must be 32 bytes (HS256)");
}

static void test_typ_and_crit(void)
{
    OK(build("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{}"));
    ERR_H("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", -EINVAL, "typ must be JWT");
    ERR_H("{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", -EINVAL, "typ must be JWT");
    ERR_H("{\"alg\":\"HS256\",\"typ\":\"\"}", -EINVAL, "typ must be JWT");
    ERR_H("{\"alg\":\"HS256\",\"typ\":1}", -EINVAL, "typ must be JWT");
    ERR_H("{\"alg\":\"HS256\",\"typ\":null}", -EINVAL, "typ must be JWT");
    ERR_H("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", -EINVAL, "duplicate typ");
    ERR_H("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", -EINVAL, "crit header not supported");
    ERR_H("{\"alg\":\"HS256\",\"crit\":[]}", -EINVAL, "crit header not supported");
}

static void test_header_not_json(void)
{
    ERR_H("HS256", -EINVAL, "header is not a JSON object");
    ERR_H("[\"alg\",\"HS256\"]", -EINVAL, "header is not a JSON object");
    ERR_H("\"HS256\"", -EINVAL, "header is not a JSON object");
    ERR_H("{\"alg\":\"HS256\"", -EINVAL, "header is not a JSON object");
    ERR_H("{\"alg\":\"HS256\"}x", -EINVAL, "header is not a JSON object");
    ERR_H("{\"alg\":\"HS256\"}{}", -EINVAL, "header is not a JSON object");
    ERR(build_key("{\"alg\":\"HS256\"}\0", 16, "{}", 2, KEY, KEY_LEN), -EINVAL,
        "header is not a JSON object");
}

/* ---- shape and signature ---- */

static void test_shape(void)
{
    char tok[256];
    strcpy(tok, build(HDR, "{\"sub\":\"ab?\"}")); /* "?" makes a '/' in standard base64 */
    OK(tok);
    char *p = strchr(tok, '.') + 1;
    ASSERT_TRUE(strchr(tok, '_') != NULL);
    char bad[300];

    /* Padding, the standard alphabet, white space and other bytes anywhere. */
    snprintf(bad, sizeof bad, "%s=", tok);
    ERR(bad, -EINVAL, "token is not base64url");
    snprintf(bad, sizeof bad, "%.*s=%s", (int)(p - tok - 1), tok, p - 1);
    ERR(bad, -EINVAL, "token is not base64url");
    strcpy(bad, tok);
    *strchr(bad, '_') = '/';
    ERR(bad, -EINVAL, "token is not base64url");
    strcpy(bad, tok);
    bad[3] = '+';
    ERR(bad, -EINVAL, "token is not base64url");
    snprintf(bad, sizeof bad, " %s", tok);
    ERR(bad, -EINVAL, "token is not base64url");
    snprintf(bad, sizeof bad, "%s\n", tok);
    ERR(bad, -EINVAL, "token is not base64url");
    snprintf(bad, sizeof bad, "Bearer %s", tok);
    ERR(bad, -EINVAL, "token is not base64url");
    const char *why;
    ASSERT_INT_EQ(wsg_token_verify((wsg_str_t){"e30\0.e30.e30", 12}, KEY, KEY_LEN, NOW, 0, 64, &claims, &why),
                  -EINVAL);
    ASSERT_STR_EQ(why, "token is not base64url");

    /* Segments: exactly three, none empty. */
    snprintf(bad, sizeof bad, "%s.", tok);
    ERR(bad, -EINVAL, "token must have three segments");
    snprintf(bad, sizeof bad, "%s.e30", tok);
    ERR(bad, -EINVAL, "token must have three segments");
    snprintf(bad, sizeof bad, "%.*s", (int)(strrchr(tok, '.') - tok), tok);
    ERR(bad, -EINVAL, "token must have three segments");
    ERR("e30", -EINVAL, "token must have three segments");
    ERR("", -EINVAL, "empty token");
    ERR("..", -EINVAL, "empty segment");
    snprintf(bad, sizeof bad, ".%s", p);
    ERR(bad, -EINVAL, "empty segment");
    snprintf(bad, sizeof bad, "%.*s%s", (int)(p - tok), tok, strrchr(tok, '.'));
    ERR(bad, -EINVAL, "empty segment");
    ASSERT_INT_EQ(wsg_token_verify(WSG_STR_NULL, KEY, KEY_LEN, NOW, 0, 64, &claims, &why), -EINVAL);
    ASSERT_STR_EQ(why, "empty token");

    /* Base64 that no encoder makes: a one-character tail, or non-zero bits after the last byte. */
    snprintf(bad, sizeof bad, "%.*sA.%s", (int)(p - tok - 1), tok, p);
    ERR(bad, -EINVAL, "bad base64url");
    ERR("e30.e31.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -EINVAL, "bad base64url");
    ERR("e30.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB", -EINVAL, "bad base64url");
}

static void test_signature(void)
{
    char tok[256], bad[256];
    strcpy(tok, build(HDR, "{\"sub\":\"alice\"}"));
    OK(tok);
    const char *why;
    /* Wrong secret, empty secret. */
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(tok), (const uint8_t *)"s3creT", 6, NOW, 0, 64, &claims, &why),
                  -EACCES);
    ASSERT_STR_EQ(why, "bad signature");
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(tok), KEY, 0, NOW, 0, 64, &claims, &why), -EINVAL);
    ASSERT_STR_EQ(why, "empty secret");
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(tok), NULL, 6, NOW, 0, 64, &claims, &why), -EINVAL);

    /* Tampered payload: another payload with the old signature. */
    char other[256];
    strcpy(other, build(HDR, "{\"sub\":\"admin\"}"));
    snprintf(bad, sizeof bad, "%.*s%s", (int)(strrchr(other, '.') - other), other, strrchr(tok, '.'));
    ERR(bad, -EACCES, "bad signature");
    /* Tampered header: the same header with a space, the old signature. */
    char spaced[256];
    strcpy(spaced, build("{\"alg\":\"HS256\", \"typ\":\"JWT\"}", "{\"sub\":\"alice\"}"));
    snprintf(bad, sizeof bad, "%.*s%s", (int)(strrchr(spaced, '.') - spaced), spaced, strrchr(tok, '.'));
    ERR(bad, -EACCES, "bad signature");

    /* Truncated signatures: cut bytes (re-encoded), and cut characters (rarely canonical base64). */
    size_t len = strlen(tok);
    size_t signed_len = (size_t)(strrchr(tok, '.') - tok);
    uint8_t mac[33];
    ASSERT_INT_EQ(wsg_base64_decode(tok + signed_len + 1, len - signed_len - 1, mac, sizeof mac, true), 32);
    static const size_t cuts[] = {31, 16, 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        memcpy(bad, tok, signed_len + 1);
        b64url(mac, cuts[i], bad + signed_len + 1);
        ERR(bad, -EINVAL, "signature must be 32 bytes (HS256)");
    }
    mac[32] = 0;
    memcpy(bad, tok, signed_len + 1);
    b64url(mac, 33, bad + signed_len + 1);
    ERR(bad, -EINVAL, "signature must be 32 bytes (HS256)");
    for (size_t cut = 1; cut < 43; cut++) {
        int rc = wsg_token_verify((wsg_str_t){tok, len - cut}, KEY, KEY_LEN, NOW, 0, 64, &claims, &why);
        if (rc != -EINVAL)
            TEST_FAIL_AT("signature cut by %zu characters: rc %d (%s)", cut, rc, why);
    }
    memcpy(bad, tok, len);
    memcpy(bad + len, "A", 2);
    ERR(bad, -EINVAL, "signature must be 32 bytes (HS256)"); /* 44 characters: 33 bytes */
    memcpy(bad + len, "AA", 3);
    ERR(bad, -EINVAL, "bad base64url"); /* 45 characters: no such length */

    /* Every prefix and every one-character change fails. */
    for (size_t i = 0; i < len; i++) {
        int rc = wsg_token_verify((wsg_str_t){tok, i}, KEY, KEY_LEN, NOW, 0, 64, &claims, &why);
        if (rc == 0)
            TEST_FAIL_AT("prefix of %zu bytes accepted", i);
    }
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    for (size_t i = 0; i < len; i++) {
        for (const char *c = alphabet; *c; c++) {
            if (*c == tok[i])
                continue;
            strcpy(bad, tok);
            bad[i] = *c;
            int rc = wsg_token_verify(wsg_str_c(bad), KEY, KEY_LEN, NOW, 0, 64, &claims, &why);
            if (rc == 0)
                TEST_FAIL_AT("byte %zu changed to '%c' accepted", i, *c);
        }
    }
}

static void test_length_bound(void)
{
    /* A payload of 6083 bytes makes a token of exactly WSG_TOKEN_MAX_LEN characters. */
    static char payload[8000], tok[WSG_TOKEN_MAX_LEN + 64];
    size_t fill = 6083 - strlen("{\"pad\":\"\"}");
    memcpy(payload, "{\"pad\":\"", 8);
    memset(payload + 8, 'x', fill);
    memcpy(payload + 8 + fill, "\"}", 3);
    ASSERT_INT_EQ(wsg_token_sign_hs256(payload, KEY, KEY_LEN, tok, sizeof tok), WSG_TOKEN_MAX_LEN);
    OK(tok);
    memcpy(payload + 8 + fill, "x\"}", 4);
    ASSERT_INT_EQ(wsg_token_sign_hs256(payload, KEY, KEY_LEN, tok, sizeof tok), WSG_TOKEN_MAX_LEN + 1);
    ERR(tok, -E2BIG, "token too long");
    const char *why;
    ASSERT_INT_EQ(
        wsg_token_verify((wsg_str_t){tok, WSG_TOKEN_MAX_LEN + 1}, KEY, KEY_LEN, NOW, 0, 64, &claims, &why),
        -E2BIG);

    /* The most names a token of the maximum length can hold: 64 groups of 80 bytes. */
    static char big[8000];
    size_t n = (size_t)snprintf(big, sizeof big, "{\"groups\":[");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "%s\"%080d\"", i ? "," : "", i);
    snprintf(big + n, sizeof big - n, "]}");
    ASSERT_TRUE(wsg_token_sign_hs256(big, KEY, KEY_LEN, tok, sizeof tok) <= WSG_TOKEN_MAX_LEN);
    if (OK(tok)) {
        ASSERT_UINT_EQ(claims.ngroups, 64);
        ASSERT_INT_EQ(strlen(wsg_token_group(&claims, 63)), 80);
        ASSERT_INT_EQ(atoi(wsg_token_group(&claims, 63)), 63);
    }
}

/* ---- payload ---- */

static void test_payload_not_object(void)
{
    ERR_P("[]", -EINVAL, "payload is not a JSON object");
    ERR_P("[{\"sub\":\"a\"}]", -EINVAL, "payload is not a JSON object");
    ERR_P("1", -EINVAL, "payload is not a JSON object");
    ERR_P("\"sub\"", -EINVAL, "payload is not a JSON object");
    ERR_P("null", -EINVAL, "payload is not a JSON object");
    ERR_P("{", -EINVAL, "payload is not a JSON object");
    ERR_P("{\"sub\":\"a\",}", -EINVAL, "payload is not a JSON object");
    ERR_P("{'sub':'a'}", -EINVAL, "payload is not a JSON object");
    /* Trailing garbage, a second value, a NUL and whatever follows it. */
    ERR_P("{}x", -EINVAL, "payload is not a JSON object");
    ERR_P("{} {}", -EINVAL, "payload is not a JSON object");
    ERR_P("{}}", -EINVAL, "payload is not a JSON object");
    ERR(build_key(HDR, strlen(HDR), "{}\0", 3, KEY, KEY_LEN), -EINVAL, "payload is not a JSON object");
    ERR(build_key(HDR, strlen(HDR), "{}\0garbage", 10, KEY, KEY_LEN), -EINVAL,
        "payload is not a JSON object");
    ERR(build_key(HDR, strlen(HDR), "{\"sub\":\"a\0b\"}", 13, KEY, KEY_LEN), -EINVAL,
        "payload is not a JSON object");
    /* "\u0000" would cut the name short in cJSON; refused wherever it is, keys included. */
    ERR_P("{\"sub\":\"admin\\u0000x\"}", -EINVAL, "payload is not a JSON object");
    ERR_P("{\"sub\\u0000\":\"a:b\"}", -EINVAL, "payload is not a JSON object");
    ERR_P("{\"x\":\"\\\\\\u0000\"}", -EINVAL, "payload is not a JSON object");
    OK_P("{\"x\":\"\\\\u0000\"}"); /* an escaped backslash, then the text u0000 */
    OK_P("{\"x\":\"\\u0001\"}");   /* control characters are refused in names only */
    /* Trailing white space is not garbage. */
    OK_P("{} \t\r\n");
}

static void test_duplicates(void)
{
    ERR_P("{\"sub\":\"a\",\"sub\":\"b\"}", -EBADMSG, "duplicate claim");
    ERR_P("{\"exp\":1,\"exp\":2000000000}", -EBADMSG, "duplicate claim");
    ERR_P("{\"groups\":[],\"groups\":[\"admin\"]}", -EBADMSG, "duplicate claim");
    ERR_P("{\"allow\":[],\"allow\":[]}", -EBADMSG, "duplicate claim");
    OK_P("{\"iat\":1,\"iat\":2}"); /* unknown claims are not looked at */
}

/* ---- time ---- */

static void check_time(const char *payload, int64_t now, int64_t leeway, int want_rc, int line)
{
    const char *why = NULL;
    int rc = wsg_token_verify(wsg_str_c(build(HDR, payload)), KEY, KEY_LEN, now, leeway, 64, &claims, &why);
    if (rc != want_rc)
        TEST_FAIL_AT("line %d: %s at %lld leeway %lld: rc %d (%s), want %d", line, payload, (long long)now,
                     (long long)leeway, rc, why, want_rc);
    else if (want_rc == -EKEYEXPIRED)
        ASSERT_STR_EQ(why, "token expired");
    else if (want_rc == -EAGAIN)
        ASSERT_STR_EQ(why, "token not yet valid");
}
#define TIME(p, now, leeway, rc) check_time(p, now, leeway, rc, __LINE__)

static void test_exp_nbf(void)
{
    TIME("{\"exp\":1000}", 1000, 0, 0);
    TIME("{\"exp\":1000}", 1001, 0, -EKEYEXPIRED);
    TIME("{\"exp\":1000}", 1030, 30, 0); /* just inside the leeway */
    TIME("{\"exp\":1000}", 1031, 30, -EKEYEXPIRED);
    TIME("{\"exp\":1000}", 1001, -5, -EKEYEXPIRED); /* a negative leeway counts as 0 */
    TIME("{\"exp\":1000}", 1000, -5, 0);
    TIME("{\"exp\":1000}", INT64_MAX, INT64_MAX, 0); /* saturates */
    TIME("{\"exp\":1000}", INT64_MAX, 0, -EKEYEXPIRED);
    TIME("{\"exp\":0}", INT64_MIN, 0, 0);
    TIME("{\"exp\":0}", 1, 0, -EKEYEXPIRED);

    TIME("{\"nbf\":1000}", 1000, 0, 0);
    TIME("{\"nbf\":1000}", 999, 0, -EAGAIN);
    TIME("{\"nbf\":1000}", 970, 30, 0);
    TIME("{\"nbf\":1000}", 969, 30, -EAGAIN);
    TIME("{\"nbf\":1000}", 999, -1, -EAGAIN);
    TIME("{\"nbf\":9007199254740991}", INT64_MAX - 1, 10, 0);
    TIME("{\"nbf\":9007199254740991}", INT64_MIN, INT64_MAX, -EAGAIN);
    TIME("{\"nbf\":1000}", INT64_MIN, 0, -EAGAIN);

    /* Both: a window; outside it, "expired" is reported before "not yet valid". */
    TIME("{\"nbf\":100,\"exp\":200}", 150, 0, 0);
    TIME("{\"nbf\":100,\"exp\":200}", 99, 0, -EAGAIN);
    TIME("{\"nbf\":100,\"exp\":200}", 201, 0, -EKEYEXPIRED);
    TIME("{\"nbf\":300,\"exp\":200}", 250, 0, -EKEYEXPIRED);
    TIME("{}", INT64_MIN, 0, 0);
    TIME("{}", INT64_MAX, 0, 0);
}

static void test_dates(void)
{
    OK_P("{\"exp\":9007199254740991}");
    ASSERT_INT_EQ(claims.exp, 9007199254740991);
    OK_P("{\"exp\":2e9}");
    ASSERT_INT_EQ(claims.exp, 2000000000);
    OK_P("{\"exp\":2000000000.0}");
    ASSERT_INT_EQ(claims.exp, 2000000000);
    OK_P("{\"nbf\":-0}");
    ASSERT_INT_EQ(claims.nbf, 0);
    static const char *const bad[] = {
        "\"2000000000\"",
        "true",
        "null",
        "[1]",
        "{}",
        "1.5",
        "2000000000.000001",
        "-1",
        "-1e3",
        "9007199254740992",
        "1e300",
        "1e400",
        "-1e400",
        "18446744073709551616",
        "9223372036854775807",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "{\"exp\":%s}", bad[i]);
        ERR_P(p, -EBADMSG, "exp must be an integer date");
        snprintf(p, sizeof p, "{\"nbf\":%s}", bad[i]);
        ERR_P(p, -EBADMSG, "nbf must be an integer date");
    }
}

/* ---- names ---- */

static void test_sub_sid(void)
{
    OK_P("{\"sub\":\"john\",\"sid\":\"s-1\"}");
    ASSERT_STR_EQ(claims.sub, "john");
    ASSERT_STR_EQ(claims.sid, "s-1");
    char p[1200];
    char name[300];
    memset(name, 'n', 256);
    name[256] = '\0';
    snprintf(p, sizeof p, "{\"sub\":\"%s\",\"sid\":\"%s\"}", name, name);
    OK_P(p);
    ASSERT_INT_EQ(strlen(claims.sub), 256);
    ASSERT_INT_EQ(strlen(claims.sid), 256);
    /* 256 bytes of UTF-8 (128 two-byte characters) given as escapes. */
    char *w = p + sprintf(p, "{\"sub\":\"");
    for (int i = 0; i < 128; i++)
        w += sprintf(w, "\\u00e9");
    strcpy(w, "\"}");
    OK_P(p);
    ASSERT_INT_EQ(strlen(claims.sub), 256);

    static const char *const bad[] = {
        "\"a:b\"",     "\":\"", "\"\"", "\"a\\nb\"", "\"a\\u007f\"", "\"tab\\t\"",
        "\"\\u001f\"", "1",     "null", "[\"a\"]",   "true",         "\"\\udc00\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "{\"sub\":%s}", bad[i]);
        if (strstr(bad[i], "udc00"))
            ERR_P(p, -EINVAL, "payload is not a JSON object"); /* a lone surrogate is not JSON to cJSON */
        else
            ERR_P(p, -EBADMSG, "sub must be a valid name");
        snprintf(p, sizeof p, "{\"sid\":%s}", bad[i]);
        if (!strstr(bad[i], "udc00"))
            ERR_P(p, -EBADMSG, "sid must be a valid name");
    }
    /* Raw bytes: a control character, invalid UTF-8, 257 bytes. */
    ERR_P("{\"sub\":\"a\x01\"}", -EBADMSG, "sub must be a valid name");
    ERR_P("{\"sub\":\"\xc3\"}", -EBADMSG, "sub must be a valid name");
    ERR_P("{\"sub\":\"\xed\xa0\x80\"}", -EBADMSG, "sub must be a valid name");
    name[256] = 'n';
    name[257] = '\0';
    snprintf(p, sizeof p, "{\"sub\":\"%s\"}", name);
    ERR_P(p, -EBADMSG, "sub must be a valid name");
    snprintf(p, sizeof p, "{\"sid\":\"%s\"}", name);
    ERR_P(p, -EBADMSG, "sid must be a valid name");
}

static void test_groups(void)
{
    OK_P("{\"groups\":[]}");
    ASSERT_UINT_EQ(claims.ngroups, 0);
    OK_P("{\"groups\":[\"a\",\"a\"]}");
    ASSERT_UINT_EQ(claims.ngroups, 2); /* duplicates kept */
    ERR_P("{\"groups\":\"admins\"}", -EBADMSG, "groups must be an array of strings");
    ERR_P("{\"groups\":{\"a\":\"b\"}}", -EBADMSG, "groups must be an array of strings");
    ERR_P("{\"groups\":null}", -EBADMSG, "groups must be an array of strings");
    ERR_P("{\"groups\":[\"a\",1]}", -EBADMSG, "groups must be an array of strings");
    ERR_P("{\"groups\":[\"a\",[\"b\"]]}", -EBADMSG, "groups must be an array of strings");
    ERR_P("{\"groups\":[\"a\",null]}", -EBADMSG, "groups must be an array of strings");
    ERR_P("{\"groups\":[\"a:b\"]}", -EBADMSG, "bad group name");
    ERR_P("{\"groups\":[\"\"]}", -EBADMSG, "bad group name");
    ERR_P("{\"groups\":[\"ok\",\"a\\u0000\"]}", -EINVAL, "payload is not a JSON object");
    ERR_P("{\"groups\":[\"a\\r\"]}", -EBADMSG, "bad group name");

    /* max_groups, and its ceiling WSG_TOKEN_GROUPS_MAX. */
    const char *three = build(HDR, "{\"groups\":[\"a\",\"b\",\"c\"]}");
    char tok[256];
    strcpy(tok, three);
    ASSERT_TRUE(verify_ok_at(tok, NOW, 0, 3, __LINE__));
    check_err_at(tok, NOW, 0, 2, -EBADMSG, "too many groups", __LINE__);
    check_err_at(tok, NOW, 0, 0, -EBADMSG, "too many groups", __LINE__);
    ASSERT_TRUE(verify_ok_at(build(HDR, "{\"groups\":[]}"), NOW, 0, 0, __LINE__));
    ASSERT_TRUE(verify_ok_at(build(HDR, "{}"), NOW, 0, 0, __LINE__));
    char p[2048];
    size_t n = (size_t)sprintf(p, "{\"groups\":[");
    for (int i = 0; i < WSG_TOKEN_GROUPS_MAX; i++)
        n += (size_t)sprintf(p + n, "%s\"g%d\"", i ? "," : "", i);
    strcpy(p + n, "]}");
    ASSERT_TRUE(verify_ok_at(build(HDR, p), NOW, 0, SIZE_MAX, __LINE__));
    ASSERT_STR_EQ(wsg_token_group(&claims, WSG_TOKEN_GROUPS_MAX - 1), "g63");
    strcpy(p + n, ",\"g64\"]}");
    check_err_at(build(HDR, p), NOW, 0, SIZE_MAX, -EBADMSG, "too many groups", __LINE__);
}

static void test_channels(void)
{
    OK_P("{}");
    ASSERT_FALSE(claims.has_channels);
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("anything")));
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("")));

    OK_P("{\"channels\":[]}");
    ASSERT_TRUE(claims.has_channels);
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("foobar")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("")));

    OK_P("{\"channels\":[\"foobar\",\"chat/\",\"\\u00e9t\\u00e9\",\"a:b\"]}");
    ASSERT_UINT_EQ(claims.nchannels, 4);
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("foobar")));
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("chat/")));
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("\xc3\xa9t\xc3\xa9")));
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("a:b")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("Foobar")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("fooba")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("foobar/")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("chat")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("")));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, (wsg_str_t){"foobar\0", 7}));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, WSG_STR_NULL));

    OK_P("{\"channels\":[\"\"]}");
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("")));
    ASSERT_TRUE(wsg_token_allows_facility(&claims, WSG_STR_NULL));
    ASSERT_FALSE(wsg_token_allows_facility(&claims, wsg_str_c("x")));

    ERR_P("{\"channels\":\"foobar\"}", -EBADMSG, "channels must be an array of strings");
    ERR_P("{\"channels\":null}", -EBADMSG, "channels must be an array of strings");
    ERR_P("{\"channels\":[\"a\",2]}", -EBADMSG, "channels must be an array of strings");
    ERR_P("{\"channels\":[\"a\\u0007\"]}", -EBADMSG, "bad facility in channels");
    ERR_P("{\"channels\":[\"a\\u007f\"]}", -EBADMSG, "bad facility in channels");
    ERR_P("{\"channels\":[\"\xff\"]}", -EBADMSG, "bad facility in channels");
    char p[2048], name[300];
    memset(name, 'f', 256);
    name[256] = '\0';
    snprintf(p, sizeof p, "{\"channels\":[\"%s\"]}", name);
    OK_P(p);
    snprintf(p, sizeof p, "{\"channels\":[\"%sf\"]}", name);
    ERR_P(p, -EBADMSG, "bad facility in channels");
    size_t n = (size_t)sprintf(p, "{\"channels\":[");
    for (int i = 0; i < WSG_TOKEN_CHANNELS_MAX; i++)
        n += (size_t)sprintf(p + n, "%s\"c%d\"", i ? "," : "", i);
    strcpy(p + n, "]}");
    OK_P(p);
    ASSERT_TRUE(wsg_token_allows_facility(&claims, wsg_str_c("c63")));
    strcpy(p + n, ",\"c64\"]}");
    ERR_P(p, -EBADMSG, "too many channels");
}

static void test_allow(void)
{
    OK_P("{}");
    ASSERT_FALSE(claims.has_allow);
    ASSERT_UINT_EQ(claims.allow, 0);
    OK_P("{\"allow\":[]}");
    ASSERT_TRUE(claims.has_allow);
    ASSERT_UINT_EQ(claims.allow, 0);
    OK_P("{\"allow\":[\"subscribe-broadcast\"]}");
    ASSERT_UINT_EQ(claims.allow, WSG_Q_SUBSCRIBE_BROADCAST);
    OK_P("{\"allow\":[\"publish-group\",\"subscribe-session\",\"publish-group\"]}");
    ASSERT_UINT_EQ(claims.allow, WSG_Q_PUBLISH_GROUP | WSG_Q_SUBSCRIBE_SESSION);
    OK_P("{\"allow\":[\"subscribe-user\",\"subscribe-group\",\"publish-broadcast\",\"publish-session\"]}");
    ASSERT_UINT_EQ(claims.allow, WSG_Q_SUBSCRIBE_USER | WSG_Q_SUBSCRIBE_GROUP | WSG_Q_PUBLISH_BROADCAST |
                                     WSG_Q_PUBLISH_SESSION);
    OK_P("{\"allow\":[\"echo\"]}");
    ASSERT_UINT_EQ(claims.allow, WSG_Q_ECHO);

    ERR_P("{\"allow\":[\"subscribe-broadcasts\"]}", -EBADMSG, "unknown permission in allow");
    ERR_P("{\"allow\":[\"Subscribe-Broadcast\"]}", -EBADMSG, "unknown permission in allow");
    ERR_P("{\"allow\":[\" echo\"]}", -EBADMSG, "unknown permission in allow");
    ERR_P("{\"allow\":[\"*\"]}", -EBADMSG, "unknown permission in allow");
    ERR_P("{\"allow\":[\"\"]}", -EBADMSG, "unknown permission in allow");
    ERR_P("{\"allow\":\"echo\"}", -EBADMSG, "allow must be an array of strings");
    ERR_P("{\"allow\":[1]}", -EBADMSG, "allow must be an array of strings");
    ERR_P("{\"allow\":{}}", -EBADMSG, "allow must be an array of strings");
}

static void test_failure_resets_and_why(void)
{
    /* A failure late in the claims leaves nothing from the earlier ones. */
    ERR_P("{\"sub\":\"john\",\"groups\":[\"a\"],\"channels\":[\"c\"],\"allow\":[\"echo\"],\"exp\":1}",
          -EKEYEXPIRED, "token expired");
    ERR_P("{\"sub\":\"john\",\"groups\":[\"a\"],\"sid\":\"x:y\"}", -EBADMSG, "sid must be a valid name");
    /* Reasons are static texts that never quote the token. */
    char tok[256];
    strcpy(tok, build(HDR, "{\"sub\":\"secret-user\",\"exp\":1}"));
    const char *why = NULL;
    ASSERT_INT_EQ(wsg_token_verify(wsg_str_c(tok), KEY, KEY_LEN, NOW, 0, 64, &claims, &why), -EKEYEXPIRED);
    ASSERT_TRUE(why != NULL && strstr(why, "secret-user") == NULL && strstr(tok, why) == NULL);
}

TEST_MAIN("token", TEST_CASE(test_known_answer_mint_token_py), TEST_CASE(test_known_answer_third_party),
          TEST_CASE(test_round_trip), TEST_CASE(test_sign_errors), TEST_CASE(test_alg),
          TEST_CASE(test_typ_and_crit), TEST_CASE(test_header_not_json), TEST_CASE(test_shape),
          TEST_CASE(test_signature), TEST_CASE(test_length_bound), TEST_CASE(test_payload_not_object),
          TEST_CASE(test_duplicates), TEST_CASE(test_exp_nbf), TEST_CASE(test_dates), TEST_CASE(test_sub_sid),
          TEST_CASE(test_groups), TEST_CASE(test_channels), TEST_CASE(test_allow),
          TEST_CASE(test_failure_resets_and_why))
