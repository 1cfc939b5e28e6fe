/* Fuzzes Origin allowlists: the input is a list spec, a newline, and an Origin value. Checks the parse result
 * against the contract, that every exact rule admits its own origin, that matching ignores ASCII case, and
 * that a list with "*" admits every non-empty value. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "origin.h"

#include "fuzz.h"

static wsg_origin_list_t list, star;
static char spec[WSG_ORIGIN_SPEC_MAX + 16];

static bool is_blank(wsg_str_t s)
{
    return wsg_str_trim(s).len == 0;
}

static unsigned default_port(wsg_str_t scheme)
{
    if (wsg_str_eq(scheme, wsg_str_c("http")) || wsg_str_eq(scheme, wsg_str_c("ws")))
        return 80;
    if (wsg_str_eq(scheme, wsg_str_c("https")) || wsg_str_eq(scheme, wsg_str_c("wss")))
        return 443;
    return 0;
}

static void check_list(const wsg_origin_list_t *l, int rc, size_t spec_len)
{
    FUZZ_ASSERT(rc == 0 || rc == -EINVAL || rc == -E2BIG);
    FUZZ_ASSERT(l->err_reason != NULL);
    if (rc != 0) {
        FUZZ_ASSERT(l->err_reason[0] != '\0');
        FUZZ_ASSERT(l->n == 0 && !l->allows_any && !l->allows_null);
        FUZZ_ASSERT(l->err_pos <= spec_len);
        return;
    }
    FUZZ_ASSERT(l->err_reason[0] == '\0');
    FUZZ_ASSERT(l->n <= WSG_ORIGIN_LIST_MAX);
    for (size_t i = 0; i < l->n; i++) {
        const wsg_origin_rule_t *r = &l->rules[i];
        FUZZ_ASSERT(r->scheme_len >= 1 && r->scheme_len <= WSG_ORIGIN_SCHEME_MAX);
        FUZZ_ASSERT(r->host_len >= 1 && r->host_len <= WSG_ORIGIN_HOST_MAX);
        FUZZ_ASSERT((size_t)r->scheme_off + r->scheme_len <= spec_len);
        FUZZ_ASSERT((size_t)r->host_off + r->host_len <= spec_len);
        for (size_t k = 0; k < r->scheme_len; k++)
            FUZZ_ASSERT(!(l->text[r->scheme_off + k] >= 'A' && l->text[r->scheme_off + k] <= 'Z'));
        for (size_t k = 0; k < r->host_len; k++)
            FUZZ_ASSERT(!(l->text[r->host_off + k] >= 'A' && l->text[r->host_off + k] <= 'Z'));
        FUZZ_ASSERT(r->port != 0 || default_port((wsg_str_t){l->text + r->scheme_off, r->scheme_len}) == 0);

        /* Its own origin, rebuilt from the rule, is admitted; with "*." a subdomain is; in upper case too. */
        if (r->is_subdomains && r->host_len + 2 > WSG_ORIGIN_HOST_MAX)
            continue;
        char o[WSG_ORIGIN_SCHEME_MAX + WSG_ORIGIN_HOST_MAX + 32];
        int n = snprintf(o, sizeof o, "%.*s://%s%.*s", (int)r->scheme_len, l->text + r->scheme_off,
                         r->is_subdomains ? "s." : "", (int)r->host_len, l->text + r->host_off);
        if (r->port != 0)
            n += snprintf(o + n, sizeof o - (size_t)n, ":%u", r->port);
        FUZZ_ASSERT(n > 0 && (size_t)n < sizeof o);
        FUZZ_ASSERT(wsg_origin_list_allows(l, (wsg_str_t){o, (size_t)n}));
        for (int k = 0; k < n; k++)
            if (o[k] >= 'a' && o[k] <= 'z')
                o[k] = (char)(o[k] - 'a' + 'A');
        FUZZ_ASSERT(wsg_origin_list_allows(l, (wsg_str_t){o, (size_t)n}));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 2 * WSG_ORIGIN_SPEC_MAX)
        return 0;
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t spec_len = nl ? (size_t)(nl - in) : size;
    wsg_str_t origin = nl ? (wsg_str_t){nl + 1, size - spec_len - 1} : WSG_STR_NULL;

    /* The spec is a C string: it ends at the first NUL. */
    bool too_long = spec_len > WSG_ORIGIN_SPEC_MAX;
    size_t copy = too_long ? WSG_ORIGIN_SPEC_MAX + 1 : spec_len;
    memcpy(spec, in, copy);
    spec[copy] = '\0';
    size_t c_len = strlen(spec);
    int rc = wsg_origin_list_parse(spec, &list);
    check_list(&list, rc, c_len);
    if (c_len > WSG_ORIGIN_SPEC_MAX)
        FUZZ_ASSERT(rc == -E2BIG);
    if (is_blank((wsg_str_t){spec, c_len}))
        FUZZ_ASSERT(rc == 0 && list.n == 0 && !list.allows_any && !list.allows_null);

    bool allowed = wsg_origin_list_allows(&list, origin);
    if (is_blank(origin))
        FUZZ_ASSERT(!allowed);
    else if (list.allows_any)
        FUZZ_ASSERT(allowed);
    if (rc != 0)
        FUZZ_ASSERT(!allowed);

    /* ASCII case never matters. */
    if (origin.len > 0 && origin.len < sizeof spec) {
        static char upper[sizeof spec];
        for (size_t i = 0; i < origin.len; i++)
            upper[i] =
                (origin.ptr[i] >= 'a' && origin.ptr[i] <= 'z') ? (char)(origin.ptr[i] - 32) : origin.ptr[i];
        FUZZ_ASSERT(wsg_origin_list_allows(&list, (wsg_str_t){upper, origin.len}) == allowed);
    }

    /* Adding "*" to a valid list admits every non-empty value, and keeps the other rules. */
    if (rc == 0 && c_len + 2 <= WSG_ORIGIN_SPEC_MAX && !is_blank((wsg_str_t){spec, c_len})) {
        memcpy(spec + c_len, ",*", 3);
        int rc2 = wsg_origin_list_parse(spec, &star);
        if (rc2 == 0) {
            FUZZ_ASSERT(star.allows_any && star.n == list.n);
            FUZZ_ASSERT(wsg_origin_list_allows(&star, origin) == !is_blank(origin));
        } else {
            FUZZ_ASSERT(rc2 == -E2BIG); /* only the entry count can break */
        }
    }
    return 0;
}
