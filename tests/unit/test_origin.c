/* Tests for protocol/origin.c: list parsing with its error positions, and the matching table. */
#include <errno.h>

#include "origin.h"

#include "test.h"

/* Lists live here rather than on each test's stack (about 5 KB). */
static wsg_origin_list_t list;

static void check_parse_err(const char *spec, int want_rc, size_t want_pos, const char *want_reason, int line)
{
    memset(&list, 0x5a, sizeof list);
    int rc = wsg_origin_list_parse(spec, &list);
    if (rc != want_rc || list.err_pos != want_pos || list.err_reason == NULL ||
        strcmp(list.err_reason, want_reason) != 0)
        TEST_FAIL_AT("line %d: \"%s\": rc %d at %zu (%s), want %d at %zu (%s)", line, spec, rc, list.err_pos,
                     list.err_reason ? list.err_reason : "(null)", want_rc, want_pos, want_reason);
    if (list.n != 0 || list.allows_any || list.allows_null)
        TEST_FAIL_AT("line %d: \"%s\": list not empty after an error", line, spec);
}
#define PARSE_ERR(spec, pos, reason) check_parse_err(spec, -EINVAL, pos, reason, __LINE__)

static bool parse_ok(const char *spec, int line)
{
    memset(&list, 0x5a, sizeof list);
    int rc = wsg_origin_list_parse(spec, &list);
    if (rc != 0 || list.err_reason == NULL || strcmp(list.err_reason, "") != 0) {
        TEST_FAIL_AT("line %d: \"%s\": rc %d at %zu (%s)", line, spec, rc, list.err_pos,
                     list.err_reason ? list.err_reason : "(null)");
        return false;
    }
    return true;
}
#define PARSE_OK(spec) parse_ok(spec, __LINE__)

static void check_allows(const char *origin, bool want, int line)
{
    if (wsg_origin_list_allows(&list, wsg_str_c(origin)) != want)
        TEST_FAIL_AT("line %d: \"%s\" should be %s", line, origin, want ? "allowed" : "refused");
}
#define YES(origin) check_allows(origin, true, __LINE__)
#define NO(origin) check_allows(origin, false, __LINE__)

/* ---- parsing ---- */

static void test_parse_forms(void)
{
    if (PARSE_OK("https://example.com, https://*.example.com, http://localhost:8000, *")) {
        ASSERT_UINT_EQ(list.n, 3);
        ASSERT_TRUE(list.allows_any);
        ASSERT_FALSE(list.allows_null);
        ASSERT_UINT_EQ(list.rules[0].port, 443);
        ASSERT_FALSE(list.rules[0].is_subdomains);
        ASSERT_TRUE(list.rules[1].is_subdomains);
        ASSERT_UINT_EQ(list.rules[1].host_len, strlen("example.com"));
        ASSERT_UINT_EQ(list.rules[2].port, 8000);
    }
    if (PARSE_OK(
            "  HTTPS://Example.COM:443\t,null,ws://a,wss://b,chrome-extension://abcdef,x+y.z-1://h:1 ")) {
        ASSERT_UINT_EQ(list.n, 5);
        ASSERT_TRUE(list.allows_null);
        ASSERT_FALSE(list.allows_any);
        ASSERT_MEM_EQ(list.text + list.rules[0].scheme_off, "https", 5);
        ASSERT_MEM_EQ(list.text + list.rules[0].host_off, "example.com", 11);
        ASSERT_UINT_EQ(list.rules[1].port, 80);
        ASSERT_UINT_EQ(list.rules[2].port, 443);
        ASSERT_UINT_EQ(list.rules[3].port, 0);
        ASSERT_UINT_EQ(list.rules[4].port, 1);
    }
    PARSE_OK("http://[::1]:8080, http://[2001:DB8::1], http://127.0.0.1, http://a_b-c.d, http://x:65535");
    ASSERT_UINT_EQ(list.n, 5);
    PARSE_OK("NULL, *");
    ASSERT_TRUE(list.allows_null && list.allows_any);

    /* Empty and blank specs give an empty list. */
    PARSE_OK("");
    ASSERT_UINT_EQ(list.n, 0);
    PARSE_OK(" \t ");
    ASSERT_UINT_EQ(list.n, 0);
    ASSERT_INT_EQ(wsg_origin_list_parse(NULL, &list), 0);
    ASSERT_UINT_EQ(list.n, 0);
    ASSERT_FALSE(list.allows_any || list.allows_null);
}

static void test_parse_errors(void)
{
    PARSE_ERR("https://a.com,,https://b.com", 14, "empty entry");
    PARSE_ERR("https://a.com,", 14, "empty entry");
    PARSE_ERR(",https://a.com", 0, "empty entry");
    PARSE_ERR("https://a.com, ,x://y", 14, "empty entry");
    PARSE_ERR("example.com", 11, "expected scheme://host");
    PARSE_ERR("https://a.com, example.com", 26, "expected scheme://host");
    PARSE_ERR("https:/a.com", 5, "expected scheme://host");
    PARSE_ERR("https//a.com", 5, "expected scheme://host");
    PARSE_ERR("://a.com", 0, "bad scheme");
    PARSE_ERR("1http://a.com", 0, "bad scheme");
    PARSE_ERR("ht_tp://a.com", 2, "expected scheme://host");
    PARSE_ERR("abcdefghijabcdefghijabcdefghijabc://a", 0, "scheme too long");
    PARSE_ERR("https://", 8, "empty host");
    PARSE_ERR("https://:443", 8, "empty host");
    PARSE_ERR("https://a.com/", 13, "path not allowed");
    PARSE_ERR("https://a.com/x", 13, "path not allowed");
    PARSE_ERR("https://a.com?x", 13, "path not allowed");
    PARSE_ERR("https://a.com#x", 13, "path not allowed");
    PARSE_ERR("https://u@a.com", 9, "userinfo not allowed");
    PARSE_ERR("https://a..com", 10, "empty label in host");
    PARSE_ERR("https://.a.com", 8, "empty label in host");
    PARSE_ERR("https://a.com.", 13, "empty label in host");
    PARSE_ERR("https://a.com.:443", 13, "empty label in host");
    PARSE_ERR("https://a b.com", 9, "bad character in host");
    PARSE_ERR("https://\xc3\xa9.com", 8, "bad character in host");
    PARSE_ERR("https://a.com:", 14, "empty port");
    PARSE_ERR("https://a.com:0", 14, "bad port");
    PARSE_ERR("https://a.com:080", 14, "bad port");
    PARSE_ERR("https://a.com:+80", 14, "bad port");
    PARSE_ERR("https://a.com:8a", 15, "bad port");
    PARSE_ERR("https://a.com:443:1", 17, "bad port");
    PARSE_ERR("https://a.com:65536", 14, "port out of range");
    PARSE_ERR("https://a.com:99999999999999999999", 14, "port out of range");
    PARSE_ERR("https://a.com:*", 14, "bad port");
    /* Wildcards: only "*." at the start of a host name, only as a whole entry otherwise. */
    PARSE_ERR("https://*", 8, "'*' only as \"*.\" before the host");
    PARSE_ERR("https://*.", 10, "empty host");
    PARSE_ERR("https://*.*.a.com", 10, "'*' only as \"*.\" before the host");
    PARSE_ERR("https://a.*.com", 10, "'*' only as \"*.\" before the host");
    PARSE_ERR("https://*a.com", 8, "'*' only as \"*.\" before the host");
    PARSE_ERR("https://*.[::1]", 10, "'*.' needs a host name");
    PARSE_ERR("*://a.com", 0, "bad scheme");
    PARSE_ERR("**", 0, "bad scheme");
    PARSE_ERR("* ,nul", 6, "expected scheme://host");
    /* IPv6 literals. */
    PARSE_ERR("http://[::1", 11, "bad IPv6 literal");
    PARSE_ERR("http://[]", 8, "empty IPv6 literal");
    PARSE_ERR("http://[fe80::1%eth0]", 15, "bad IPv6 literal");
    PARSE_ERR("http://[::1]x", 12, "bad character after host");
    PARSE_ERR("http://[::1]:", 13, "empty port");

    /* Hosts of 253 bytes pass, 254 do not. */
    char spec[600];
    int n = snprintf(spec, sizeof spec, "https://");
    for (int i = 0; i < 126; i++)
        n += snprintf(spec + n, sizeof spec - (size_t)n, "%sa", i ? "." : "");
    n += snprintf(spec + n, sizeof spec - (size_t)n, "b:1");
    PARSE_OK(spec);
    ASSERT_UINT_EQ(list.rules[0].host_len, 252);
    memcpy(spec + n - 3, "bc:1", 5);
    PARSE_OK(spec);
    ASSERT_UINT_EQ(list.rules[0].host_len, 253);
    memcpy(spec + n - 3, "bcd:1", 6);
    PARSE_ERR(spec, 8, "host too long");
}

static void test_parse_bounds(void)
{
    /* WSG_ORIGIN_LIST_MAX entries, "*" and "null" included. */
    static char spec[WSG_ORIGIN_SPEC_MAX + 2];
    size_t n = 0;
    for (int i = 0; i < WSG_ORIGIN_LIST_MAX - 2; i++)
        n += (size_t)snprintf(spec + n, sizeof spec - n, "http://h%d,", i);
    n += (size_t)snprintf(spec + n, sizeof spec - n, "*,null");
    if (PARSE_OK(spec))
        ASSERT_UINT_EQ(list.n, WSG_ORIGIN_LIST_MAX - 2);
    snprintf(spec + n, sizeof spec - n, ", http://x");
    check_parse_err(spec, -E2BIG, n + 2, "too many entries", __LINE__);

    /* WSG_ORIGIN_SPEC_MAX bytes, blanks included. */
    memset(spec, ' ', WSG_ORIGIN_SPEC_MAX);
    memcpy(spec + 100, "https://a.com", 13);
    spec[WSG_ORIGIN_SPEC_MAX] = '\0';
    PARSE_OK(spec);
    ASSERT_UINT_EQ(list.n, 1);
    spec[WSG_ORIGIN_SPEC_MAX] = ' ';
    spec[WSG_ORIGIN_SPEC_MAX + 1] = '\0';
    check_parse_err(spec, -E2BIG, WSG_ORIGIN_SPEC_MAX, "list too long", __LINE__);
}

/* ---- matching ---- */

static void test_match_exact(void)
{
    PARSE_OK("https://example.com, http://localhost:8000, http://[::1]:9000, chrome-extension://abc");
    YES("https://example.com");
    YES("https://example.com:443");
    YES("HTTPS://EXAMPLE.COM");
    YES("HtTpS://ExAmPlE.cOm:443");
    YES(" https://example.com\t");
    YES("http://localhost:8000");
    YES("http://LOCALHOST:8000");
    YES("http://[::1]:9000");
    YES("chrome-extension://abc");
    YES("chrome-extension://ABC");

    NO("http://example.com");           /* scheme */
    NO("wss://example.com");            /* scheme, same default port */
    NO("https://example.com:8443");     /* port */
    NO("https://example.com:80");       /* port */
    NO("https://www.example.com");      /* exact entries take no subdomains */
    NO("https://example.com.evil.net"); /* suffix tricks */
    NO("https://evil-example.com");     /* prefix tricks */
    NO("https://example.co");
    NO("https://example.com/"); /* origins have no path */
    NO("https://example.com/x");
    NO("https://example.com."); /* no trailing dot */
    NO("https://user@example.com");
    NO("https://example.com:");
    NO("https://example.com:0443");
    NO("https://example.com:443 https://example.com");
    NO("https://example.com,https://example.com");
    NO("http://localhost"); /* 80 is not 8000 */
    NO("http://localhost:80");
    NO("http://localhost:8001");
    NO("http://127.0.0.1:8000");
    NO("http://[::1]");
    NO("http://[0:0::1]:9000"); /* literals compare as text */
    NO("chrome-extension://abc:443");
    NO("null");
    NO("NULL");
    NO("");
    NO("   ");
    NO("*");
    NO("https://*.example.com");
    NO("example.com");
    ASSERT_FALSE(wsg_origin_list_allows(&list, WSG_STR_NULL));
    ASSERT_FALSE(wsg_origin_list_allows(&list, (wsg_str_t){"https://example.com\0", 20}));
    ASSERT_TRUE(wsg_origin_list_allows(&list, (wsg_str_t){"https://example.com.evil", 19}));
}

static void test_match_default_ports(void)
{
    PARSE_OK("http://a.com:80, https://b.com, ws://c.com, wss://d.com:443, foo://e.com, foo://f.com:80");
    YES("http://a.com");
    YES("http://a.com:80");
    YES("https://b.com:443");
    YES("ws://c.com:80");
    YES("wss://d.com");
    YES("foo://e.com");
    NO("foo://e.com:80");
    NO("foo://e.com:443");
    YES("foo://f.com:80");
    NO("foo://f.com");
}

static void test_match_wildcard(void)
{
    PARSE_OK("https://*.example.com, http://*.Dev.Local:3000");
    YES("https://a.example.com");
    YES("https://a.b.example.com");
    YES("https://A.EXAMPLE.COM");
    YES("https://www.example.com:443");
    YES("https://x-1.example.com");
    YES("http://app.dev.local:3000");
    NO("https://example.com"); /* not the apex */
    NO("https://.example.com");
    NO("https://a..example.com");
    NO("https://aexample.com");
    NO("https://a.example.com.evil.net");
    NO("https://a.example.co");
    NO("http://a.example.com");
    NO("https://a.example.com:8443");
    NO("http://app.dev.local");
    NO("http://dev.local:3000");
    NO("https://*.example.com");
}

static void test_match_any_and_null(void)
{
    PARSE_OK("*");
    YES("https://anything.test");
    YES("null");
    YES("garbage that is no origin");
    YES("x");
    NO("");
    NO(" \r\n");
    ASSERT_FALSE(wsg_origin_list_allows(&list, WSG_STR_NULL));

    PARSE_OK("null");
    YES("null");
    YES("Null");
    YES(" null ");
    NO("nul");
    NO("null ,null");
    NO("https://example.com");

    PARSE_OK("https://example.com");
    NO("null");

    PARSE_OK("");
    NO("https://example.com");
    NO("null");
}

TEST_MAIN("origin", TEST_CASE(test_parse_forms), TEST_CASE(test_parse_errors), TEST_CASE(test_parse_bounds),
          TEST_CASE(test_match_exact), TEST_CASE(test_match_default_ports), TEST_CASE(test_match_wildcard),
          TEST_CASE(test_match_any_and_null))
