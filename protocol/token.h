/* HS256 JSON Web Tokens (RFC 7519, JWS compact form): verification into claims, and minting for tests. */
#ifndef WSG_PROTOCOL_TOKEN_H
#define WSG_PROTOCOL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "str.h"

/** Longest token accepted, in bytes (three base64url segments and two dots). */
#define WSG_TOKEN_MAX_LEN 8192
/** Longest "sub", "sid" or group name, in bytes (the limit of wsg_channel_ident_is_valid()). */
#define WSG_TOKEN_NAME_MAX 256
/** Most groups a token may carry; a smaller `max_groups` can be asked of wsg_token_verify(). */
#define WSG_TOKEN_GROUPS_MAX 64
/** Most facilities a "channels" claim may list. */
#define WSG_TOKEN_CHANNELS_MAX 64
/** Room for every group and channel name with its NUL. A JSON string takes at least its decoded length + 2
 *  bytes (the quotes), and the decoded payload of a WSG_TOKEN_MAX_LEN token is at most 3/4 of it, so the
 *  names of a token that fits always fit. */
#define WSG_TOKEN_NAMES_CAP (WSG_TOKEN_MAX_LEN / 4 * 3)

/** What a verified token says. Self-contained (no pointers), so it may be copied; about 7 KB, so long-lived
 *  copies belong on the heap, and a caller that needs only a few fields copies those out.
 *
 *  Groups and channels sit packed, NUL-terminated and in token order (duplicates kept), in `names`; read them
 *  with wsg_token_group() and wsg_token_channel(). Every name was checked: "sub", "sid" and groups pass
 *  wsg_channel_ident_is_valid(); channels pass the facility rules of wsg_url_facility(). No name contains a
 *  NUL byte. */
typedef struct wsg_token_claims {
    char sub[WSG_TOKEN_NAME_MAX + 1]; /**< "sub": the user name; "" when absent (never "" when present) */
    char sid[WSG_TOKEN_NAME_MAX + 1]; /**< "sid": the session key; "" when absent */
    size_t ngroups;                   /**< entries of "groups"; 0 when absent */
    bool has_channels;                /**< a "channels" claim was present (it may be empty: no facility) */
    size_t nchannels;                 /**< entries of "channels" */
    bool has_allow;                   /**< an "allow" claim was present */
    uint32_t allow;                   /**< enum wsg_query_flag bits of "allow"; 0 when absent */
    bool has_exp, has_nbf;            /**< "exp" / "nbf" were present */
    int64_t exp, nbf;                 /**< seconds since the epoch; 0 when absent */
    uint16_t group_off[WSG_TOKEN_GROUPS_MAX];     /**< private: offsets into `names` */
    uint16_t channel_off[WSG_TOKEN_CHANNELS_MAX]; /**< private: offsets into `names` */
    size_t names_len;                             /**< private: bytes of `names` in use */
    char names[WSG_TOKEN_NAMES_CAP];              /**< private: packed group and channel names */
} wsg_token_claims_t;

/** Verifies `token`, a JWS compact serialisation "header.payload.signature", with the HS256 key `secret`
 *  (`secret_len` bytes, any values, at least one byte), and fills `*out` from its claims.
 *
 *  Order of checks: length; shape (exactly three non-empty base64url segments, alphabet [A-Za-z0-9_-] without
 *  '=' padding, canonical trailing bits); the signature (exactly 32 bytes, compared in constant time with
 *  HMAC-SHA256(secret, "header.payload")); only then is any JSON parsed, so that unauthenticated bytes never
 *  reach the JSON parser. As a result a token signed with another algorithm or key reports a signature error,
 *  not its "alg". Then the header: a JSON object with "alg" exactly "HS256", "typ" (if present) exactly
 *  "JWT", no "crit". Then the payload: a JSON object, without trailing bytes, NUL bytes or "\u0000" escapes
 *  (in either JSON), and the claims below; other claims ("iss", "aud", "iat", ...) are ignored. A known claim
 *  or header parameter given twice is refused (JSON parsers disagree on which copy wins).
 *    - "sub", "sid": strings passing wsg_channel_ident_is_valid() (non-empty, at most 256 bytes, UTF-8, no
 *      ':' nor control character).
 *    - "groups": an array of such strings, at most min(`max_groups`, WSG_TOKEN_GROUPS_MAX) of them.
 *    - "channels": an array of at most WSG_TOKEN_CHANNELS_MAX facility names (at most 256 bytes, UTF-8, no
 *      control character; may be empty strings), the facilities this token may use.
 *    - "allow": an array of permission names, each one of "subscribe-broadcast", "subscribe-user",
 *      "subscribe-group", "subscribe-session", "publish-broadcast", "publish-user", "publish-group",
 *      "publish-session", "echo" (exact, case-sensitive; anything else is refused), giving the matching
 *      enum wsg_query_flag bits of protocol/url.h. What the gateway does with them is its policy.
 *    - "exp", "nbf": integer NumericDates (JSON numbers with no fractional part) from 0 to 2^53 - 1.
 *      Expired when `now_s` > exp + `leeway_s`; not yet valid when `now_s` + `leeway_s` < nbf (saturating
 *      arithmetic; a negative `leeway_s` counts as 0). Neither claim is required.
 *
 *  Returns 0 and fills `*out`, or one of (with `*out` reset to the empty claims):
 *    -E2BIG        the token is longer than WSG_TOKEN_MAX_LEN;
 *    -EINVAL       malformed: shape, base64url, signature length, header JSON or its "alg"/"typ"/"crit",
 *                  payload not a JSON object; also an empty secret (a configuration error);
 *    -EACCES       the signature does not match (wrong key, or altered token);
 *    -EBADMSG      the signature matches but a claim breaks a rule above (type, name, count, duplicate);
 *    -EKEYEXPIRED  "exp" has passed;
 *    -EAGAIN       "nbf" has not come yet.
 *  The signature is checked before the claims, so -EBADMSG, -EKEYEXPIRED and -EAGAIN come only from tokens
 *  made with `secret`. `*why` (when `why` is not NULL) is pointed at a static English reason ("bad
 *  signature", "token expired", "alg must be HS256", ...; "" on success) that never quotes the token.
 *  Borrows `token` and `secret`; `out` is caller storage, fully overwritten. Allocates only inside the JSON
 *  parser and frees before returning. */
int wsg_token_verify(wsg_str_t token, const uint8_t *secret, size_t secret_len, int64_t now_s,
                     int64_t leeway_s, size_t max_groups, wsg_token_claims_t *out, const char **why);

/** The `i`-th group of `claims` (0-based, token order) as a NUL-terminated string borrowed from `claims`, or
 *  NULL when `i` >= claims->ngroups. */
const char *wsg_token_group(const wsg_token_claims_t *claims, size_t i);

/** The `i`-th facility of the "channels" claim as a NUL-terminated string borrowed from `claims`, or NULL
 *  when `i` >= claims->nchannels. */
const char *wsg_token_channel(const wsg_token_claims_t *claims, size_t i);

/** Fills `*out` from the identity document of an authorization callback: a JSON object with optional
 *  "user" (like "sub"), "groups", "session" (like "sid"), "channels" and "allow", under the same rules as a
 *  token's claims (no signature, no dates). Returns 0, -EINVAL (not a JSON object), -EBADMSG (a member breaks
 *  a rule), -E2BIG or -ENOMEM, with `*why` a static reason. Borrows `json`. */
int wsg_token_claims_from_identity(const char *json, size_t len, size_t max_groups, wsg_token_claims_t *out,
                                   const char **why);

/** True when `claims` lets its bearer use `facility`: the token had no "channels" claim, or lists a facility
 *  byte-for-byte equal to `facility` (no wildcards, no case folding). Borrows both. */
bool wsg_token_allows_facility(const wsg_token_claims_t *claims, wsg_str_t facility);

/** Mints a token: base64url({"alg":"HS256","typ":"JWT"}) "." base64url(payload_json) "." base64url of
 *  HMAC-SHA256(secret, the first two parts), without padding, written NUL-terminated into `out` (capacity
 *  `cap`). The NUL-terminated `payload_json` is signed byte-for-byte as given, not parsed (so a test can sign
 *  broken JSON); tests/unit/mint_token.py computes the same bytes. A result longer than WSG_TOKEN_MAX_LEN is
 *  written but will not verify.
 *  Returns the token length (without the NUL), -EINVAL when `payload_json` is NULL or `secret_len` is 0, or
 *  -ENOSPC when `cap` is too small (then `out` holds nothing usable). Borrows `payload_json` and `secret`. */
ssize_t wsg_token_sign_hs256(const char *payload_json, const uint8_t *secret, size_t secret_len, char *out,
                             size_t cap);

#endif
