/* HS256 JWT verification: shape and signature first, then the header and the claims, each under a bound. */
#include "token.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "channel.h"
#include "url.h"
#include "utf8.h"

#define SIG_LEN 32
/* 2^53 - 1: the largest integer a double holds exactly; past it, "has no fractional part" means nothing. */
#define NUMERIC_DATE_MAX 9007199254740991.0

_Static_assert(WSG_TOKEN_NAMES_CAP <= UINT16_MAX, "name offsets are 16-bit");
_Static_assert(WSG_TOKEN_NAME_MAX == 256, "the limit of wsg_channel_ident_is_valid()");
_Static_assert(WSG_FACILITY_MAX <= WSG_TOKEN_NAME_MAX, "facilities are bounded like names");

static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Characters of the unpadded base64url encoding of `n` bytes. */
static size_t b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes b64url_len(len) characters, no padding, no NUL. */
static void b64url_encode(const uint8_t *in, size_t len, char *out)
{
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64url_alphabet[v >> 18];
        *out++ = b64url_alphabet[(v >> 12) & 63];
        *out++ = b64url_alphabet[(v >> 6) & 63];
        *out++ = b64url_alphabet[v & 63];
    }
    if (len - i >= 1) {
        uint32_t v = (uint32_t)in[i] << 16 | (len - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = b64url_alphabet[v >> 18];
        *out++ = b64url_alphabet[(v >> 12) & 63];
        if (len - i == 2)
            *out++ = b64url_alphabet[(v >> 6) & 63];
    }
}

/* The one-shot HMAC() stays supported in OpenSSL 3 and needs no context. It fails only when OpenSSL cannot
 * allocate its fixed-size state, which the house rules treat as fatal. */
static void hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                        uint8_t out[SIG_LEN])
{
    unsigned int n = 0;
    if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) == NULL || n != SIG_LEN)
        abort();
}

/* cJSON turns "\u0000" into a NUL and then reads a shorter C string ("ab\u0000:x" would be "ab"), and a raw
 * NUL would pass its end-of-input check early. Both are refused. In valid JSON a backslash occurs only inside
 * strings, so one scan that skips each escaped character is exact. */
static bool has_nul(const char *s, size_t n)
{
    if (memchr(s, '\0', n) != NULL)
        return true;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] != '\\')
            continue;
        if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
        i++;
    }
    return false;
}

/* Parses `n` bytes at `text` (followed by a writable byte) as one JSON object and nothing after it. */
static cJSON *parse_object(char *text, size_t n)
{
    if (has_nul(text, n))
        return NULL;
    text[n] = '\0';
    /* With require_null_terminated, cJSON wants the NUL inside the given length: n + 1. */
    cJSON *json = cJSON_ParseWithLengthOpts(text, n + 1, NULL, true);
    if (json != NULL && !cJSON_IsObject(json)) {
        cJSON_Delete(json);
        json = NULL;
    }
    return json;
}

typedef struct verdict {
    int rc;
    const char *why;
} verdict_t;

static const verdict_t ok = {0, ""};

static verdict_t bad_claim(const char *why)
{
    return (verdict_t){-EBADMSG, why};
}

/* The key of an object member; cJSON always sets it, the check costs nothing. */
static bool key_is(const cJSON *item, const char *name)
{
    return item->string != NULL && strcmp(item->string, name) == 0;
}

static verdict_t check_header(const cJSON *header)
{
    const cJSON *alg = NULL, *typ = NULL;
    for (const cJSON *it = header->child; it != NULL; it = it->next) {
        if (key_is(it, "alg")) {
            if (alg != NULL)
                return (verdict_t){-EINVAL, "duplicate alg"};
            alg = it;
        } else if (key_is(it, "typ")) {
            if (typ != NULL)
                return (verdict_t){-EINVAL, "duplicate typ"};
            typ = it;
        } else if (key_is(it, "crit")) {
            /* RFC 7515 4.1.11: extensions we do not understand make the token unusable. */
            return (verdict_t){-EINVAL, "crit header not supported"};
        }
    }
    if (!cJSON_IsString(alg) || strcmp(alg->valuestring, "HS256") != 0)
        return (verdict_t){-EINVAL, "alg must be HS256"};
    if (typ != NULL && (!cJSON_IsString(typ) || strcmp(typ->valuestring, "JWT") != 0))
        return (verdict_t){-EINVAL, "typ must be JWT"};
    return ok;
}

static bool put_name(wsg_token_claims_t *c, const char *s, size_t n, uint16_t *off)
{
    if (n + 1 > sizeof c->names - c->names_len)
        return false;
    *off = (uint16_t)c->names_len;
    memcpy(c->names + c->names_len, s, n + 1);
    c->names_len += n + 1;
    return true;
}

static bool ident_is_valid(const char *s, size_t n)
{
    return n <= WSG_TOKEN_NAME_MAX && wsg_channel_ident_is_valid((wsg_str_t){s, n});
}

/* The rules of wsg_url_facility(): a facility may be empty. */
static bool facility_is_valid(const char *s, size_t n)
{
    if (n > WSG_FACILITY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return wsg_utf8_is_valid((const uint8_t *)s, n);
}

static verdict_t read_ident(const cJSON *v, char out[WSG_TOKEN_NAME_MAX + 1], const char *why)
{
    if (!cJSON_IsString(v))
        return bad_claim(why);
    size_t n = strlen(v->valuestring);
    if (!ident_is_valid(v->valuestring, n))
        return bad_claim(why);
    memcpy(out, v->valuestring, n + 1);
    return ok;
}

static verdict_t read_groups(const cJSON *v, size_t max, wsg_token_claims_t *c)
{
    if (!cJSON_IsArray(v))
        return bad_claim("groups must be an array of strings");
    for (const cJSON *it = v->child; it != NULL; it = it->next) {
        if (c->ngroups >= max)
            return bad_claim("too many groups");
        if (!cJSON_IsString(it))
            return bad_claim("groups must be an array of strings");
        size_t n = strlen(it->valuestring);
        if (!ident_is_valid(it->valuestring, n))
            return bad_claim("bad group name");
        if (!put_name(c, it->valuestring, n, &c->group_off[c->ngroups]))
            return bad_claim("claims too large");
        c->ngroups++;
    }
    return ok;
}

static verdict_t read_channels(const cJSON *v, wsg_token_claims_t *c)
{
    if (!cJSON_IsArray(v))
        return bad_claim("channels must be an array of strings");
    c->has_channels = true;
    for (const cJSON *it = v->child; it != NULL; it = it->next) {
        if (c->nchannels >= WSG_TOKEN_CHANNELS_MAX)
            return bad_claim("too many channels");
        if (!cJSON_IsString(it))
            return bad_claim("channels must be an array of strings");
        size_t n = strlen(it->valuestring);
        if (!facility_is_valid(it->valuestring, n))
            return bad_claim("bad facility in channels");
        if (!put_name(c, it->valuestring, n, &c->channel_off[c->nchannels]))
            return bad_claim("claims too large");
        c->nchannels++;
    }
    return ok;
}

static verdict_t read_allow(const cJSON *v, wsg_token_claims_t *c)
{
    if (!cJSON_IsArray(v))
        return bad_claim("allow must be an array of strings");
    c->has_allow = true;
    for (const cJSON *it = v->child; it != NULL; it = it->next) {
        if (!cJSON_IsString(it))
            return bad_claim("allow must be an array of strings");
        uint32_t flag = wsg_query_flag_by_name(it->valuestring);
        /* Refused rather than skipped: a misspelt permission would otherwise deny without a word. */
        if (flag == 0)
            return bad_claim("unknown permission in allow");
        c->allow |= flag;
    }
    return ok;
}

/* An integer NumericDate in [0, 2^53 - 1]; NaN fails the range test. */
static bool read_date(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= NUMERIC_DATE_MAX))
        return false;
    int64_t i = (int64_t)d;
    if ((double)i != d)
        return false;
    *out = i;
    return true;
}

enum claim { C_SUB, C_SID, C_GROUPS, C_CHANNELS, C_ALLOW, C_EXP, C_NBF, C_COUNT };

/* Member names of a token's claims. */
static const char *const token_names[C_COUNT] = {
    [C_SUB] = "sub",     [C_SID] = "sid", [C_GROUPS] = "groups", [C_CHANNELS] = "channels",
    [C_ALLOW] = "allow", [C_EXP] = "exp", [C_NBF] = "nbf",
};

/* Member names of an authorization callback's answer: the same claims under ws4redis-like names. */
static const char *const identity_names[C_COUNT] = {
    [C_SUB] = "user", [C_SID] = "session", [C_GROUPS] = "groups", [C_CHANNELS] = "channels", [C_ALLOW] = "allow",
};

static verdict_t read_claims(const cJSON *payload, size_t max_groups, wsg_token_claims_t *c,
                             const char *const names[C_COUNT])
{
    unsigned seen = 0;
    for (const cJSON *it = payload->child; it != NULL; it = it->next) {
        int k = 0;
        while (k < C_COUNT && (names[k] == NULL || !key_is(it, names[k])))
            k++;
        if (k == C_COUNT)
            continue; /* unknown claims are ignored */
        if (seen & (1u << k))
            return bad_claim("duplicate claim");
        seen |= 1u << k;
        verdict_t v = ok;
        switch ((enum claim)k) {
        case C_SUB:
            v = read_ident(it, c->sub, "sub must be a valid name");
            break;
        case C_SID:
            v = read_ident(it, c->sid, "sid must be a valid name");
            break;
        case C_GROUPS:
            v = read_groups(it, max_groups, c);
            break;
        case C_CHANNELS:
            v = read_channels(it, c);
            break;
        case C_ALLOW:
            v = read_allow(it, c);
            break;
        case C_EXP:
            c->has_exp = true;
            if (!read_date(it, &c->exp))
                v = bad_claim("exp must be an integer date");
            break;
        case C_NBF:
            c->has_nbf = true;
            if (!read_date(it, &c->nbf))
                v = bad_claim("nbf must be an integer date");
            break;
        case C_COUNT:
            break;
        }
        if (v.rc != 0)
            return v;
    }
    return ok;
}

static int64_t add_saturating(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* Everything but the bookkeeping of wsg_token_verify(); `*json` is left for the caller to free. */
static verdict_t verify(wsg_str_t token, const uint8_t *secret, size_t secret_len, int64_t now_s,
                        int64_t leeway_s, size_t max_groups, wsg_token_claims_t *out, cJSON **json)
{
    if (secret == NULL || secret_len == 0 || secret_len > INT_MAX)
        return (verdict_t){-EINVAL, "empty secret"};
    if (token.len > WSG_TOKEN_MAX_LEN)
        return (verdict_t){-E2BIG, "token too long"};
    if (token.len == 0 || token.ptr == NULL)
        return (verdict_t){-EINVAL, "empty token"};

    /* Shape: [A-Za-z0-9_-]+ '.' [A-Za-z0-9_-]+ '.' [A-Za-z0-9_-]+; so no '=', '+', '/' or space anywhere. */
    size_t dots[2] = {0, 0}, ndots = 0;
    for (size_t i = 0; i < token.len; i++) {
        if (token.ptr[i] == '.') {
            if (ndots == 2)
                return (verdict_t){-EINVAL, "token must have three segments"};
            dots[ndots++] = i;
        } else if (!is_b64url(token.ptr[i])) {
            return (verdict_t){-EINVAL, "token is not base64url"};
        }
    }
    if (ndots != 2)
        return (verdict_t){-EINVAL, "token must have three segments"};
    const char *h64 = token.ptr, *p64 = token.ptr + dots[0] + 1, *s64 = token.ptr + dots[1] + 1;
    size_t h64_len = dots[0], p64_len = dots[1] - dots[0] - 1, s64_len = token.len - dots[1] - 1;
    if (h64_len == 0 || p64_len == 0 || s64_len == 0)
        return (verdict_t){-EINVAL, "empty segment"};

    /* Header and payload decode side by side: together they are at most 3/4 of the token, and each keeps a
     * byte for the NUL that cJSON wants. */
    char text[WSG_TOKEN_MAX_LEN / 4 * 3 + 2];
    ssize_t hn = wsg_base64_decode(h64, h64_len, (uint8_t *)text, sizeof text - 2, true);
    if (hn < 0)
        return (verdict_t){-EINVAL, "bad base64url"};
    char *ptext = text + hn + 1;
    ssize_t pn = wsg_base64_decode(p64, p64_len, (uint8_t *)ptext, sizeof text - (size_t)hn - 2, true);
    if (pn < 0)
        return (verdict_t){-EINVAL, "bad base64url"};
    uint8_t sig[SIG_LEN + 1];
    ssize_t sn = wsg_base64_decode(s64, s64_len, sig, sizeof sig, true);
    if (sn == -EINVAL)
        return (verdict_t){-EINVAL, "bad base64url"};
    if (sn != SIG_LEN)
        return (verdict_t){-EINVAL, "signature must be 32 bytes (HS256)"};

    uint8_t want[SIG_LEN];
    hmac_sha256(secret, secret_len, token.ptr, dots[1], want);
    if (CRYPTO_memcmp(want, sig, SIG_LEN) != 0)
        return (verdict_t){-EACCES, "bad signature"};

    /* Authenticated from here on. */
    if ((*json = parse_object(text, (size_t)hn)) == NULL)
        return (verdict_t){-EINVAL, "header is not a JSON object"};
    verdict_t v = check_header(*json);
    cJSON_Delete(*json);
    *json = NULL;
    if (v.rc != 0)
        return v;

    if ((*json = parse_object(ptext, (size_t)pn)) == NULL)
        return (verdict_t){-EINVAL, "payload is not a JSON object"};
    v = read_claims(*json, max_groups < WSG_TOKEN_GROUPS_MAX ? max_groups : WSG_TOKEN_GROUPS_MAX, out, token_names);
    if (v.rc != 0)
        return v;

    int64_t leeway = leeway_s < 0 ? 0 : leeway_s;
    if (out->has_exp && now_s > add_saturating(out->exp, leeway))
        return (verdict_t){-EKEYEXPIRED, "token expired"};
    if (out->has_nbf && add_saturating(now_s, leeway) < out->nbf)
        return (verdict_t){-EAGAIN, "token not yet valid"};
    return ok;
}

int wsg_token_verify(wsg_str_t token, const uint8_t *secret, size_t secret_len, int64_t now_s,
                     int64_t leeway_s, size_t max_groups, wsg_token_claims_t *out, const char **why)
{
    cJSON *json = NULL;
    memset(out, 0, sizeof *out);
    verdict_t v = verify(token, secret, secret_len, now_s, leeway_s, max_groups, out, &json);
    cJSON_Delete(json);
    if (v.rc != 0)
        memset(out, 0, sizeof *out);
    if (why != NULL)
        *why = v.why;
    return v.rc;
}

int wsg_token_claims_from_identity(const char *json, size_t len, size_t max_groups, wsg_token_claims_t *out,
                                   const char **why)
{
    memset(out, 0, offsetof(wsg_token_claims_t, names));
    if (len > WSG_TOKEN_MAX_LEN) {
        *why = "identity document too long";
        return -E2BIG;
    }
    char *text = malloc(len + 1);
    if (text == NULL) {
        *why = "out of memory";
        return -ENOMEM;
    }
    memcpy(text, json, len);
    cJSON *doc = parse_object(text, len);
    size_t groups = max_groups < WSG_TOKEN_GROUPS_MAX ? max_groups : WSG_TOKEN_GROUPS_MAX;
    verdict_t v = doc ? read_claims(doc, groups, out, identity_names)
                      : (verdict_t){-EINVAL, "identity must be a JSON object"};
    cJSON_Delete(doc);
    free(text);
    *why = v.why;
    return v.rc;
}

const char *wsg_token_group(const wsg_token_claims_t *claims, size_t i)
{
    return i < claims->ngroups ? claims->names + claims->group_off[i] : NULL;
}

const char *wsg_token_channel(const wsg_token_claims_t *claims, size_t i)
{
    return i < claims->nchannels ? claims->names + claims->channel_off[i] : NULL;
}

bool wsg_token_allows_facility(const wsg_token_claims_t *claims, wsg_str_t facility)
{
    if (!claims->has_channels)
        return true;
    for (size_t i = 0; i < claims->nchannels; i++)
        if (wsg_str_eq(wsg_str_c(wsg_token_channel(claims, i)), facility))
            return true;
    return false;
}

ssize_t wsg_token_sign_hs256(const char *payload_json, const uint8_t *secret, size_t secret_len, char *out,
                             size_t cap)
{
    if (payload_json == NULL || secret == NULL || secret_len == 0 || secret_len > INT_MAX)
        return -EINVAL;
    size_t plen = strlen(payload_json);
    if (plen > SIZE_MAX / 2)
        return -ENOSPC;
    size_t hlen = b64url_len(sizeof header_json - 1);
    size_t signed_len = hlen + 1 + b64url_len(plen);
    size_t total = signed_len + 1 + b64url_len(SIG_LEN);
    if (cap == 0 || total > cap - 1)
        return -ENOSPC;
    b64url_encode((const uint8_t *)header_json, sizeof header_json - 1, out);
    out[hlen] = '.';
    b64url_encode((const uint8_t *)payload_json, plen, out + hlen + 1);
    uint8_t sig[SIG_LEN];
    hmac_sha256(secret, secret_len, out, signed_len, sig);
    out[signed_len] = '.';
    b64url_encode(sig, SIG_LEN, out + signed_len + 1);
    out[total] = '\0';
    return (ssize_t)total;
}
