/* ws4redis request targets: the facility (path after the prefix) and the query switches, as Django reads
 * them. */
#include "url.h"

#include <errno.h>
#include <string.h>

#include "stream_id.h"
#include "utf8.h"

/* Decodes the byte that starts at in.ptr[*i] and moves *i past it: "%XX" is one byte, a '%' without two
 * hex digits after it is itself (Python's unquote), '+' is a space when `plus_is_space`. */
static char decode_next(wsg_str_t in, size_t *i, bool plus_is_space)
{
    char c = in.ptr[*i];
    if (c == '%' && in.len - *i >= 3) {
        int hi = wsg_hex_value(in.ptr[*i + 1]), lo = wsg_hex_value(in.ptr[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            *i += 3;
            return (char)(hi << 4 | lo);
        }
    }
    *i += 1;
    return (plus_is_space && c == '+') ? ' ' : c;
}

/* White space as Python's str.strip() sees it within ASCII: also the separators 0x1c..0x1f. */
static bool is_py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

static char to_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

void wsg_url_split(wsg_str_t target, wsg_str_t *path, wsg_str_t *query)
{
    *path = target;
    *query = WSG_STR_NULL;
    if (target.ptr == NULL)
        return;
    /* The fragment goes first: a '?' after '#' belongs to the fragment, not to a query. */
    const char *hash = memchr(target.ptr, '#', target.len);
    if (hash != NULL)
        path->len = (size_t)(hash - target.ptr);
    const char *qmark = memchr(path->ptr, '?', path->len);
    if (qmark != NULL) {
        size_t at = (size_t)(qmark - path->ptr);
        *query = (wsg_str_t){qmark + 1, path->len - at - 1};
        path->len = at;
    }
}

ssize_t wsg_url_decode(wsg_str_t in, char *out, size_t cap, bool plus_is_space)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len;) {
        char c = decode_next(in, &i, plus_is_space);
        if (n == cap)
            return -ENOSPC;
        out[n++] = c;
    }
    return (ssize_t)n;
}

int wsg_url_facility(wsg_str_t path, wsg_str_t prefix, char *out, size_t *out_len)
{
    /* Decode the whole path as it streams by (a "%2F" may form the prefix), match the prefix against the
     * first decoded bytes, and keep what follows. Nothing but `out` is needed however long the path. */
    size_t i = 0, n = 0, matched = 0;
    while (matched < prefix.len) {
        if (i >= path.len || decode_next(path, &i, false) != prefix.ptr[matched])
            return -ENOENT;
        matched++;
    }
    while (i < path.len) {
        char c = decode_next(path, &i, false);
        if (n == WSG_FACILITY_MAX)
            return -E2BIG;
        out[n++] = c;
    }
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)out[k];
        if (c < 0x20 || c == 0x7f)
            return -EINVAL;
    }
    if (!wsg_utf8_is_valid((const uint8_t *)out, n))
        return -EINVAL;
    *out_len = n;
    return 0;
}

/* True when the raw query key `raw`, once percent-decoded ('+' as space), stripped and lower-cased up to
 * `ci_len` bytes, equals `ci` followed by `exact` (compared as it is: `exact` is not lower-cased). Compares
 * as it decodes, so that a key of any length needs no buffer: after the leading white space, byte `pos` of
 * the key must be the target's byte `pos` while pos is inside the target, and white space after it. */
static bool key_matches(wsg_str_t raw, const char *ci, size_t ci_len, wsg_str_t exact)
{
    size_t name_len = ci_len + exact.len;
    char first = ci_len > 0 ? ci[0] : exact.len > 0 ? exact.ptr[0] : 'x';
    char last = exact.len > 0 ? exact.ptr[exact.len - 1] : ci_len > 0 ? ci[ci_len - 1] : 'x';
    /* A stripped key neither starts nor ends with white space. */
    if (is_py_space(first) || is_py_space(last))
        return false;
    size_t pos = 0;
    for (size_t i = 0; i < raw.len;) {
        char c = decode_next(raw, &i, true);
        if (pos < ci_len)
            c = to_lower(c);
        if (pos == 0 && is_py_space(c))
            continue;
        if (pos < name_len ? c != (pos < ci_len ? ci[pos] : exact.ptr[pos - ci_len]) : !is_py_space(c))
            return false;
        pos++;
    }
    return pos >= name_len;
}

static bool key_equals(wsg_str_t raw, const char *name, size_t name_len)
{
    return key_matches(raw, name, name_len, WSG_STR_NULL);
}

/* True when the raw query key `raw`, normalised as key_equals does, starts with `ci` (lower case). */
static bool key_starts_with(wsg_str_t raw, const char *ci, size_t ci_len)
{
    size_t pos = 0;
    for (size_t i = 0; i < raw.len && pos < ci_len;) {
        char c = to_lower(decode_next(raw, &i, true));
        if (pos == 0 && is_py_space(c))
            continue;
        if (c != ci[pos])
            return false;
        pos++;
    }
    return pos == ci_len;
}

/* Calls back with the key and value (after the first '=', or the empty view) of each non-empty
 * '&'-separated part of `query`, until `fn` returns true. Returns whether it did. */
typedef bool (*part_fn)(wsg_str_t key, wsg_str_t value, void *arg);

static bool for_each_part(wsg_str_t query, part_fn fn, void *arg)
{
    wsg_str_t part;
    while (wsg_str_next_elem(&query, '&', &part)) {
        if (part.len == 0)
            continue;
        wsg_str_t key = part, value = {part.ptr + part.len, 0};
        wsg_str_cut(part, '=', &key, &value);
        if (fn(key, value, arg))
            return true;
    }
    return false;
}

static const struct {
    const char *name;
    uint32_t flag;
} switches[] = {
    {"subscribe-broadcast", WSG_Q_SUBSCRIBE_BROADCAST},
    {"subscribe-user", WSG_Q_SUBSCRIBE_USER},
    {"subscribe-group", WSG_Q_SUBSCRIBE_GROUP},
    {"subscribe-session", WSG_Q_SUBSCRIBE_SESSION},
    {"publish-broadcast", WSG_Q_PUBLISH_BROADCAST},
    {"publish-user", WSG_Q_PUBLISH_USER},
    {"publish-group", WSG_Q_PUBLISH_GROUP},
    {"publish-session", WSG_Q_PUBLISH_SESSION},
    {"echo", WSG_Q_ECHO},
};

uint32_t wsg_query_flag_by_name(const char *name)
{
    for (size_t k = 0; k < sizeof switches / sizeof switches[0]; k++)
        if (strcmp(switches[k].name, name) == 0)
            return switches[k].flag;
    return 0;
}

static bool add_flag(wsg_str_t key, wsg_str_t value, void *arg)
{
    uint32_t *flags = arg;
    (void)value;
    for (size_t k = 0; k < sizeof switches / sizeof switches[0]; k++) {
        if (key_equals(key, switches[k].name, strlen(switches[k].name))) {
            *flags |= switches[k].flag;
            break;
        }
    }
    return false;
}

uint32_t wsg_query_flags(wsg_str_t query)
{
    uint32_t flags = 0;
    for_each_part(query, add_flag, &flags);
    return flags;
}

typedef struct value_search {
    const char *name;
    size_t name_len;
    wsg_str_t value;
} value_search_t;

static bool find_value(wsg_str_t key, wsg_str_t value, void *arg)
{
    value_search_t *s = arg;
    if (!key_equals(key, s->name, s->name_len))
        return false;
    s->value = value;
    return true;
}

ssize_t wsg_query_value(wsg_str_t query, const char *name, char *out, size_t cap)
{
    if (name == NULL)
        return -ENOENT;
    value_search_t s = {name, strlen(name), WSG_STR_NULL};
    if (!for_each_part(query, find_value, &s))
        return -ENOENT;
    return wsg_url_decode(s.value, out, cap, true);
}

bool wsg_cookie_value(wsg_str_t header, const char *name, wsg_str_t *value)
{
    wsg_str_t pair, key, v;
    while (wsg_str_next_elem(&header, ';', &pair)) {
        if (!wsg_str_cut(wsg_str_trim(pair), '=', &key, &v) || !wsg_str_eq(wsg_str_trim(key), wsg_str_c(name)))
            continue;
        v = wsg_str_trim(v);
        if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"')
            v = (wsg_str_t){v.ptr + 1, v.len - 2};
        *value = v;
        return true;
    }
    return false;
}

/* Parses the raw query value `raw` as a stream id while percent-decoding it: no buffer, however long. */
static int parse_since_value(wsg_str_t raw, wsg_stream_id_t *out)
{
    wsg_stream_id_reader_t r = wsg_stream_id_reader_init();
    for (size_t i = 0; i < raw.len;)
        if (!wsg_stream_id_reader_feed(&r, decode_next(raw, &i, true)))
            return -EINVAL;
    return wsg_stream_id_reader_finish(&r, out);
}

typedef struct since_search {
    wsg_str_t label;
    bool has_plain, has_labelled;
    wsg_str_t plain, labelled; /* the first raw value of each */
} since_search_t;

static bool find_since(wsg_str_t key, wsg_str_t value, void *arg)
{
    since_search_t *s = arg;
    if (!s->has_labelled && key_matches(key, "since.", 6, s->label)) {
        s->has_labelled = true;
        s->labelled = value;
        return true; /* nothing can beat it */
    }
    if (!s->has_plain && key_equals(key, "since", 5)) {
        s->has_plain = true;
        s->plain = value;
    }
    return false;
}

int wsg_query_since(wsg_str_t query, wsg_str_t label, wsg_stream_id_t *out)
{
    since_search_t s = {label, false, false, WSG_STR_NULL, WSG_STR_NULL};
    for_each_part(query, find_since, &s);
    if (s.has_labelled)
        return parse_since_value(s.labelled, out);
    if (s.has_plain)
        return parse_since_value(s.plain, out);
    return -ENOENT;
}

static bool find_bad_since(wsg_str_t key, wsg_str_t value, void *arg)
{
    (void)arg;
    wsg_stream_id_t id;
    if (!key_equals(key, "since", 5) && !key_starts_with(key, "since.", 6))
        return false;
    return parse_since_value(value, &id) != 0;
}

int wsg_query_since_check(wsg_str_t query)
{
    return for_each_part(query, find_bad_since, NULL) ? -EINVAL : 0;
}
