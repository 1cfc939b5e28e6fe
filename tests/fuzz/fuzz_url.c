/* Fuzzes the request-target code: split, percent-decoding, facility, query switches, values and "since"
 * resume points, and the channel names and labels built from them, each checked against a plain
 * re-implementation or its contract. */
#include <errno.h>
#include <string.h>

#include "channel.h"
#include "stream_id.h"
#include "url.h"
#include "utf8.h"

#include "fuzz.h"

#define ALL_FLAGS (WSG_Q_SUBSCRIBE_ANY | WSG_Q_PUBLISH_ANY | WSG_Q_ECHO)

static bool is_py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* The reference normalisation of a query key: decode fully, strip, lower-case (what Django + ws4redis do). */
static size_t normalise_key(wsg_str_t key, char *buf)
{
    ssize_t n = wsg_url_decode(key, buf, key.len, true);
    FUZZ_ASSERT(n >= 0 && (size_t)n <= key.len);
    size_t a = 0, b = (size_t)n;
    while (a < b && is_py_space(buf[a]))
        a++;
    while (b > a && is_py_space(buf[b - 1]))
        b--;
    for (size_t i = a; i < b; i++)
        if (buf[i] >= 'A' && buf[i] <= 'Z')
            buf[i] = (char)(buf[i] - 'A' + 'a');
    memmove(buf, buf + a, b - a);
    return b - a;
}

static uint32_t reference_flags(wsg_str_t query, char *buf)
{
    static const char *const names[] = {"subscribe-broadcast", "subscribe-user",    "subscribe-group",
                                        "subscribe-session",   "publish-broadcast", "publish-user",
                                        "publish-group",       "publish-session",   "echo"};
    uint32_t flags = 0;
    size_t start = 0;
    if (query.ptr == NULL)
        return 0;
    for (size_t i = 0; i <= query.len; i++) {
        if (i < query.len && query.ptr[i] != '&')
            continue;
        wsg_str_t part = {query.ptr + start, i - start};
        start = i + 1;
        if (part.len == 0)
            continue;
        const char *eq = memchr(part.ptr, '=', part.len);
        wsg_str_t key = {part.ptr, eq ? (size_t)(eq - part.ptr) : part.len};
        size_t n = normalise_key(key, buf);
        for (size_t k = 0; k < 9; k++)
            if (n == strlen(names[k]) && memcmp(buf, names[k], n) == 0)
                flags |= 1u << k;
    }
    return flags;
}

static void check_split(wsg_str_t target, wsg_str_t *path, wsg_str_t *query)
{
    wsg_url_split(target, path, query);
    FUZZ_ASSERT(path->ptr == target.ptr);
    FUZZ_ASSERT(path->len <= target.len);
    FUZZ_ASSERT(memchr(path->ptr, '?', path->len) == NULL);
    FUZZ_ASSERT(memchr(path->ptr, '#', path->len) == NULL);
    if (query->len > 0) {
        FUZZ_ASSERT(query->ptr == path->ptr + path->len + 1);
        FUZZ_ASSERT(query->ptr + query->len <= target.ptr + target.len);
        FUZZ_ASSERT(memchr(query->ptr, '#', query->len) == NULL);
    }
}

static void check_decode(wsg_str_t in, char *buf)
{
    ssize_t n = wsg_url_decode(in, buf, in.len, false);
    ssize_t m = wsg_url_decode(in, buf, in.len, true);
    FUZZ_ASSERT(n >= 0 && n == m && (size_t)n <= in.len);
    /* No '%' means nothing to decode: the same bytes, or '+' turned to ' '. */
    if (memchr(in.ptr, '%', in.len) == NULL) {
        FUZZ_ASSERT((size_t)n == in.len);
        for (size_t i = 0; i < in.len; i++)
            FUZZ_ASSERT(buf[i] == (in.ptr[i] == '+' ? ' ' : in.ptr[i]));
    }
    if (n > 0)
        FUZZ_ASSERT(wsg_url_decode(in, buf, (size_t)n - 1, false) == -ENOSPC);
}

static void check_facility(wsg_str_t path, wsg_str_t prefix, char *decoded)
{
    char fac[WSG_FACILITY_MAX];
    size_t len = SIZE_MAX;
    int rc = wsg_url_facility(path, prefix, fac, &len);
    ssize_t n = wsg_url_decode(path, decoded, path.len, false);
    FUZZ_ASSERT(n >= 0);
    bool has_prefix = (size_t)n >= prefix.len && memcmp(decoded, prefix.ptr, prefix.len) == 0;
    if (!has_prefix) {
        FUZZ_ASSERT(rc == -ENOENT);
        return;
    }
    size_t rest = (size_t)n - prefix.len;
    if (rest > WSG_FACILITY_MAX) {
        FUZZ_ASSERT(rc == -E2BIG);
        return;
    }
    bool clean = wsg_utf8_is_valid((const uint8_t *)decoded + prefix.len, rest);
    for (size_t i = 0; i < rest; i++) {
        unsigned char c = (unsigned char)decoded[prefix.len + i];
        if (c < 0x20 || c == 0x7f)
            clean = false;
    }
    if (!clean) {
        FUZZ_ASSERT(rc == -EINVAL);
        return;
    }
    FUZZ_ASSERT(rc == 0);
    FUZZ_ASSERT(len == rest && memcmp(fac, decoded + prefix.len, len) == 0);
}

static void check_channel(wsg_str_t prefix, wsg_str_t ident, wsg_str_t facility)
{
    char out[1024];
    for (int a = WSG_AUDIENCE_BROADCAST; a <= WSG_AUDIENCE_SESSION; a++) {
        size_t want = (prefix.len ? prefix.len + 1 : 0) + facility.len +
                      (a == WSG_AUDIENCE_BROADCAST ? strlen("broadcast:")
                       : a == WSG_AUDIENCE_GROUP   ? strlen("group:") + ident.len + 1
                       : a == WSG_AUDIENCE_USER    ? strlen("user:") + ident.len + 1
                                                   : strlen("session:") + ident.len + 1);
        ssize_t n = wsg_channel_name(out, sizeof out, prefix, (wsg_audience_t)a, ident, facility);
        if (want + 1 > sizeof out) {
            FUZZ_ASSERT(n == -ENOSPC);
            continue;
        }
        FUZZ_ASSERT(n == (ssize_t)want && out[n] == '\0');
        FUZZ_ASSERT(memcmp(out + n - facility.len, facility.ptr, facility.len) == 0);
        if (prefix.len)
            FUZZ_ASSERT(memcmp(out, prefix.ptr, prefix.len) == 0 && out[prefix.len] == ':');
        FUZZ_ASSERT(wsg_channel_name(out, want, prefix, (wsg_audience_t)a, ident, facility) == -ENOSPC);
    }
    if (wsg_channel_ident_is_valid(ident)) {
        FUZZ_ASSERT(ident.len > 0 && ident.len <= 256);
        FUZZ_ASSERT(memchr(ident.ptr, ':', ident.len) == NULL);
        FUZZ_ASSERT(wsg_utf8_is_valid((const uint8_t *)ident.ptr, ident.len));
    }
}

/* The reference reading of "since" keys: decode the whole key and value, strip the key, compare. `kind` of a
 * key: 0 other, 1 "since", 2 "since.<rest>" with the rest in [*rest, *rest + *rest_len) of `buf`. */
static int since_kind(wsg_str_t key, char *buf, size_t *rest, size_t *rest_len)
{
    ssize_t n = wsg_url_decode(key, buf, key.len, true);
    FUZZ_ASSERT(n >= 0);
    size_t a = 0, b = (size_t)n;
    while (a < b && is_py_space(buf[a]))
        a++;
    while (b > a && is_py_space(buf[b - 1]))
        b--;
    char low[6];
    for (size_t i = 0; i < 6 && a + i < b; i++)
        low[i] = (char)(buf[a + i] >= 'A' && buf[a + i] <= 'Z' ? buf[a + i] - 'A' + 'a' : buf[a + i]);
    if (b - a == 5 && memcmp(low, "since", 5) == 0)
        return 1;
    if (b - a >= 6 && memcmp(low, "since.", 6) == 0) {
        *rest = a + 6;
        *rest_len = b - a - 6;
        return 2;
    }
    return 0;
}

static int reference_value(wsg_str_t raw, char *buf, wsg_stream_id_t *id)
{
    ssize_t n = wsg_url_decode(raw, buf, raw.len, true);
    FUZZ_ASSERT(n >= 0);
    return wsg_stream_id_parse(buf, (size_t)n, id);
}

/* Checks wsg_query_since_check over the whole query, and wsg_query_since for the label of the first
 * "since.<label>" key (or "broadcast:x" when there is none). */
static void check_since(wsg_str_t query, char *buf)
{
    char *label = malloc(query.len + 12);
    FUZZ_ASSERT(label != NULL);
    size_t label_len = 0;
    bool has_label = false, all_ok = true, has_plain = false, has_labelled = false;
    wsg_str_t plain = WSG_STR_NULL, labelled = WSG_STR_NULL;
    wsg_stream_id_t id;
    /* Pass 0: the label to ask for, and whether every since value is an id; pass 1: the keys that apply. */
    for (int pass = 0; pass < 2; pass++) {
        size_t start = 0;
        for (size_t i = 0; query.ptr && i <= query.len; i++) {
            if (i < query.len && query.ptr[i] != '&')
                continue;
            wsg_str_t part = {query.ptr + start, i - start};
            start = i + 1;
            if (part.len == 0)
                continue;
            const char *eq = memchr(part.ptr, '=', part.len);
            wsg_str_t key = {part.ptr, eq ? (size_t)(eq - part.ptr) : part.len};
            wsg_str_t value = eq ? (wsg_str_t){eq + 1, part.len - key.len - 1} : (wsg_str_t){part.ptr, 0};
            size_t rest = 0, rest_len = 0;
            int kind = since_kind(key, buf, &rest, &rest_len);
            if (pass == 0) {
                if (kind != 0 && reference_value(value, buf + key.len, &id) != 0)
                    all_ok = false;
                if (kind == 2 && !has_label) {
                    has_label = true;
                    memcpy(label, buf + rest, rest_len);
                    label_len = rest_len;
                }
            } else if (kind == 1 && !has_plain) {
                has_plain = true;
                plain = value;
            } else if (kind == 2 && !has_labelled && rest_len == label_len &&
                       memcmp(buf + rest, label, label_len) == 0) {
                has_labelled = true;
                labelled = value;
            }
        }
        if (pass == 0 && !has_label) {
            memcpy(label, "broadcast:x", 11);
            label_len = 11;
        }
    }
    FUZZ_ASSERT(wsg_query_since_check(query) == (all_ok ? 0 : -EINVAL));
    wsg_stream_id_t got = {5, 5}, want = {0, 0};
    int rc = wsg_query_since(query, (wsg_str_t){label, label_len}, &got);
    int want_rc = has_labelled ? reference_value(labelled, buf, &want)
                  : has_plain  ? reference_value(plain, buf, &want)
                               : -ENOENT;
    FUZZ_ASSERT(rc == want_rc);
    if (rc == 0)
        FUZZ_ASSERT(wsg_stream_id_cmp(got, want) == 0);
    else
        FUZZ_ASSERT(got.ms == 5 && got.seq == 5);
    if (all_ok && rc != -ENOENT)
        FUZZ_ASSERT(rc == 0);
    free(label);
}

static void check_label(wsg_str_t name, wsg_str_t prefix)
{
    char out[512];
    ssize_t n = wsg_channel_label(name.ptr, name.len, prefix, out, sizeof out);
    FUZZ_ASSERT(n == -ENOSPC || (n >= 0 && (size_t)n < sizeof out && out[n] == '\0'));
    if (n < 0) {
        FUZZ_ASSERT(name.len + 1 > sizeof out);
        return;
    }
    FUZZ_ASSERT((size_t)n <= name.len + 1);
    FUZZ_ASSERT(wsg_channel_label(name.ptr, name.len, prefix, out, (size_t)n) == -ENOSPC);
    /* A label is a suffix of the name, or "session:" and then a suffix of it (the facility). */
    if (n >= 8 && memcmp(out, "session:", 8) == 0) {
        size_t f = (size_t)n - 8;
        FUZZ_ASSERT(f <= name.len && memcmp(out + 8, name.ptr + name.len - f, f) == 0);
    } else {
        FUZZ_ASSERT(memcmp(out, name.ptr + name.len - (size_t)n, (size_t)n) == 0); /* a suffix of the name */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    char *buf = malloc(size + 1);
    FUZZ_ASSERT(buf != NULL);
    wsg_str_t target = {(const char *)data, size};

    wsg_str_t path, query;
    check_split(target, &path, &query);
    check_decode(target, buf);
    check_facility(path, wsg_str_c("/ws/"), buf);
    check_facility(path, wsg_str_c(""), buf);
    /* The first byte, when below 16, picks a prefix length taken from the path itself. */
    if (size > 0 && data[0] < 16 && path.len > 1) {
        wsg_str_t p = {path.ptr + 1, data[0] < path.len - 1 ? data[0] : path.len - 1};
        check_facility((wsg_str_t){path.ptr + 1, path.len - 1}, p, buf);
    }

    uint32_t flags = wsg_query_flags(query);
    FUZZ_ASSERT((flags & ~(uint32_t)ALL_FLAGS) == 0);
    FUZZ_ASSERT(flags == reference_flags(query, buf));

    char value[64];
    ssize_t v = wsg_query_value(query, "echo", value, sizeof value);
    FUZZ_ASSERT(v == -ENOENT || v == -ENOSPC || (v >= 0 && v <= (ssize_t)sizeof value));
    FUZZ_ASSERT((v != -ENOENT) == ((flags & WSG_Q_ECHO) != 0));
    v = wsg_query_value(query, "subscribe-user", value, sizeof value);
    FUZZ_ASSERT((v != -ENOENT) == ((flags & WSG_Q_SUBSCRIBE_USER) != 0));
    /* A name taken from the input: the first key, normalised, must find itself. */
    if (query.len > 0) {
        const char *amp = memchr(query.ptr, '&', query.len);
        wsg_str_t part = {query.ptr, amp ? (size_t)(amp - query.ptr) : query.len};
        if (part.len > 0) {
            const char *eq = memchr(part.ptr, '=', part.len);
            wsg_str_t key = {part.ptr, eq ? (size_t)(eq - part.ptr) : part.len};
            size_t n = normalise_key(key, buf);
            if (memchr(buf, '\0', n) == NULL) {
                buf[n] = '\0';
                char *val = malloc(query.len + 1);
                FUZZ_ASSERT(val != NULL);
                ssize_t got = wsg_query_value(query, buf, val, query.len);
                FUZZ_ASSERT(got >= 0);
                wsg_str_t raw = eq ? (wsg_str_t){eq + 1, part.len - key.len - 1} : (wsg_str_t){part.ptr, 0};
                ssize_t want = wsg_url_decode(raw, buf, raw.len, true);
                FUZZ_ASSERT(got == want && memcmp(val, buf, (size_t)got) == 0);
                free(val);
            }
        }
    }

    /* Channel names from pieces of the input: prefix, ident and facility at split points it chooses. */
    size_t a = size > 1 ? data[1] % (size + 1) : 0, b = size > 2 ? data[2] % (size + 1) : 0;
    if (a > b) {
        size_t t = a;
        a = b;
        b = t;
    }
    check_channel((wsg_str_t){target.ptr, a}, (wsg_str_t){target.ptr + a, b - a},
                  (wsg_str_t){target.ptr + b, size - b});
    check_label((wsg_str_t){target.ptr + a, size - a}, (wsg_str_t){target.ptr, a});
    check_label(target, wsg_str_c("ws4redis"));
    check_since(query, buf);
    free(buf);
    return 0;
}
