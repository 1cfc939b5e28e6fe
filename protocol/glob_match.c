/* Glob matching for channel patterns: Redis's syntax without its exponential recursion on '*'. */
#include "glob_match.h"

#include <errno.h>

/* True when `pattern` has no unterminated '[' and no trailing '\'. The matcher relies on it. */
static bool is_well_formed(const char *p, size_t plen)
{
    for (size_t i = 0; i < plen; i++) {
        if (p[i] == '\\') {
            if (++i == plen)
                return false;
        } else if (p[i] == '[') {
            i++;
            if (i < plen && p[i] == '^')
                i++;
            if (i < plen && p[i] == ']')
                i++; /* literal */
            for (;; i++) {
                if (i >= plen)
                    return false;
                if (p[i] == ']')
                    break;
                if (p[i] == '\\' && ++i == plen)
                    return false;
            }
        }
    }
    return true;
}

/* Reads one set member at p[*i] (an escaped byte or a plain one) and moves past it. */
static unsigned char set_member(const char *p, size_t *i)
{
    if (p[*i] == '\\')
        (*i)++;
    return (unsigned char)p[(*i)++];
}

/* Matches byte `c` against the set that starts at p[*i] (just past '[') and moves *i past its ']'. The
 * pattern is well formed, so the ']' is there. */
static bool set_matches(const char *p, size_t *i, unsigned char c)
{
    bool negate = false, found = false;
    if (p[*i] == '^') {
        negate = true;
        (*i)++;
    }
    bool first = true;
    while (first || p[*i] != ']') {
        first = false;
        unsigned char lo = set_member(p, i), hi = lo;
        /* "x-y" is a range unless the '-' is the set's last member ("[a-]" is 'a' or '-'). */
        if (p[*i] == '-' && p[*i + 1] != ']') {
            (*i)++;
            hi = set_member(p, i);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
        }
        if (c >= lo && c <= hi)
            found = true;
    }
    (*i)++;
    return found != negate;
}

/* Matches the single-byte token at p[*i] ('?', a set, an escaped or a plain byte; never '*') against `c`
 * and moves *i past it. */
static bool token_matches(const char *p, size_t *i, unsigned char c)
{
    switch (p[*i]) {
    case '?':
        (*i)++;
        return true;
    case '[':
        (*i)++;
        return set_matches(p, i, c);
    case '\\':
        (*i)++;
        /* fall through */
    default:
        return (unsigned char)p[(*i)++] == c;
    }
}

bool wsg_glob_match(const char *pattern, size_t plen, const char *s, size_t slen)
{
    if (!is_well_formed(pattern, plen))
        return false;
    /* Every token but '*' matches exactly one byte, so a failure after a '*' only needs that last '*' to
     * take one more byte: an earlier '*' could not do better than the later one. Each retry moves the
     * string position on, which bounds the work at O(plen * slen). */
    size_t pi = 0, si = 0, star_p = 0, star_s = 0;
    bool has_star = false;
    while (si < slen) {
        if (pi < plen && pattern[pi] == '*') {
            while (pi < plen && pattern[pi] == '*')
                pi++;
            has_star = true;
            star_p = pi;
            star_s = si;
            continue;
        }
        size_t next = pi;
        if (pi < plen && token_matches(pattern, &next, (unsigned char)s[si])) {
            pi = next;
            si++;
            continue;
        }
        if (!has_star)
            return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && pattern[pi] == '*')
        pi++;
    return pi == plen;
}

/* Takes the next comma-separated entry of `list` from `*pos` on, trimmed of spaces and tabs, into
 * [*start, *end). Returns false when the list is used up. */
static bool next_entry(const char *list, size_t len, size_t *pos, size_t *start, size_t *end)
{
    if (*pos > len)
        return false;
    size_t a = *pos, b = a;
    while (b < len && list[b] != ',')
        b++;
    *pos = b + 1;
    while (a < b && (list[a] == ' ' || list[a] == '\t'))
        a++;
    while (b > a && (list[b - 1] == ' ' || list[b - 1] == '\t'))
        b--;
    *start = a;
    *end = b;
    return true;
}

bool wsg_glob_list_match(const char *list, size_t list_len, const char *s, size_t slen)
{
    size_t pos = 0, a, b;
    if (list == NULL)
        return false;
    while (next_entry(list, list_len, &pos, &a, &b))
        if (b > a && wsg_glob_match(list + a, b - a, s, slen))
            return true;
    return false;
}

int wsg_glob_list_check(const char *list, size_t list_len, size_t *bad_at)
{
    size_t pos = 0, a, b;
    if (list == NULL)
        return 0;
    while (next_entry(list, list_len, &pos, &a, &b)) {
        if (b > a && !is_well_formed(list + a, b - a)) {
            if (bad_at != NULL)
                *bad_at = a;
            return -EINVAL;
        }
    }
    return 0;
}
