/* Fuzzes glob matching against a plain (exponential, so bounded) recursive reference, and pattern lists
 * against their documented reading. The input is "<pattern>\0<string>". */
#include <errno.h>
#include <string.h>

#include "glob_match.h"

#include "fuzz.h"

/* The reference set reader: returns the index after ']' and whether `c` is in the set starting at p[i]
 * (just past '['), or SIZE_MAX for an unterminated set. */
static size_t ref_set(const char *p, size_t plen, size_t i, unsigned char c, bool *in)
{
    bool negate = i < plen && p[i] == '^';
    if (negate)
        i++;
    bool found = false;
    for (bool first = true;; first = false) {
        if (i >= plen)
            return SIZE_MAX;
        if (p[i] == ']' && !first)
            break;
        if (p[i] == '\\' && ++i >= plen)
            return SIZE_MAX;
        unsigned char lo = (unsigned char)p[i++], hi = lo;
        if (i + 1 < plen && p[i] == '-' && p[i + 1] != ']') {
            i++;
            if (p[i] == '\\' && ++i >= plen)
                return SIZE_MAX;
            hi = (unsigned char)p[i++];
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
        }
        found |= c >= lo && c <= hi;
    }
    *in = found != negate;
    return i + 1;
}

static bool ref_well_formed(const char *p, size_t plen)
{
    for (size_t i = 0; i < plen;) {
        bool in;
        if (p[i] == '\\') {
            if (i + 1 >= plen)
                return false;
            i += 2;
        } else if (p[i] == '[') {
            i = ref_set(p, plen, i + 1, 0, &in);
            if (i == SIZE_MAX)
                return false;
        } else {
            i++;
        }
    }
    return true;
}

/* The textbook recursion, with a step budget so that pathological inputs give up instead of hanging. */
static int ref_match(const char *p, size_t plen, const char *s, size_t slen, long *budget)
{
    if (--*budget < 0)
        return -1;
    if (plen == 0)
        return slen == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= slen; k++) {
            int r = ref_match(p + 1, plen - 1, s + k, slen - k, budget);
            if (r != 0)
                return r;
        }
        return 0;
    }
    if (slen == 0)
        return 0;
    unsigned char c = (unsigned char)s[0];
    size_t next;
    bool ok;
    if (p[0] == '?') {
        ok = true;
        next = 1;
    } else if (p[0] == '[') {
        next = ref_set(p, plen, 1, c, &ok);
    } else if (p[0] == '\\') {
        ok = (unsigned char)p[1] == c;
        next = 2;
    } else {
        ok = (unsigned char)p[0] == c;
        next = 1;
    }
    return ok ? ref_match(p + next, plen - next, s + 1, slen - 1, budget) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *in = (const char *)data;
    const char *nul = memchr(in, '\0', size);
    size_t plen = nul ? (size_t)(nul - in) : size;
    const char *s = nul ? nul + 1 : in + size;
    size_t slen = nul ? size - plen - 1 : 0;

    bool got = wsg_glob_match(in, plen, s, slen);
    bool wf = ref_well_formed(in, plen);
    if (!wf) {
        FUZZ_ASSERT(!got);
    } else {
        long budget = 200000;
        int want = ref_match(in, plen, s, slen, &budget);
        FUZZ_ASSERT(want < 0 || got == (want == 1));
    }
    /* "*" + pattern + "*" matches whatever the pattern matches, inside a longer string. */
    if (got) {
        char *pp = malloc(plen + 2), *ss = malloc(slen + 2);
        FUZZ_ASSERT(pp != NULL && ss != NULL);
        pp[0] = '*';
        memcpy(pp + 1, in, plen);
        pp[plen + 1] = '*';
        ss[0] = 'x';
        memcpy(ss + 1, s, slen);
        ss[slen + 1] = 'y';
        FUZZ_ASSERT(wsg_glob_match(pp, plen + 2, ss, slen + 2));
        free(pp);
        free(ss);
    }

    /* The pattern part as a list: it matches when one of its trimmed, non-empty entries does, and the check
     * agrees with the well-formedness of each entry. */
    bool any = false, all_wf = true;
    size_t first_bad = SIZE_MAX;
    for (size_t a = 0, b; a <= plen; a = b + 1) {
        for (b = a; b < plen && in[b] != ','; b++)
            ;
        size_t x = a, y = b;
        while (x < y && (in[x] == ' ' || in[x] == '\t'))
            x++;
        while (y > x && (in[y - 1] == ' ' || in[y - 1] == '\t'))
            y--;
        if (y == x)
            continue;
        any |= wsg_glob_match(in + x, y - x, s, slen);
        if (!ref_well_formed(in + x, y - x) && all_wf) {
            all_wf = false;
            first_bad = x;
        }
    }
    FUZZ_ASSERT(wsg_glob_list_match(in, plen, s, slen) == any);
    size_t bad_at = SIZE_MAX;
    int rc = wsg_glob_list_check(in, plen, &bad_at);
    FUZZ_ASSERT(rc == (all_wf ? 0 : -EINVAL));
    FUZZ_ASSERT(all_wf || bad_at == first_bad);
    return 0;
}
