/* Unit tests for protocol/forwarded.c: addresses, networks, and the client behind trusted proxies. */
#include "forwarded.h"

#include <errno.h>

#include "test.h"

static wsg_ip_t ip(const char *text)
{
    wsg_ip_t out = {0};
    if (!wsg_ip_parse(wsg_str_c(text), &out))
        TEST_FAIL_AT("\"%s\" did not parse", text);
    return out;
}

static const char *fmt(wsg_ip_t a)
{
    static char out[WSG_IP_TEXT_MAX];
    return wsg_ip_format(&a, out);
}

static void test_ip_parse(void)
{
    ASSERT_STR_EQ(fmt(ip("1.2.3.4")), "1.2.3.4");
    ASSERT_STR_EQ(fmt(ip(" 10.0.0.1 ")), "10.0.0.1");
    ASSERT_STR_EQ(fmt(ip("1.2.3.4:5678")), "1.2.3.4");
    ASSERT_STR_EQ(fmt(ip("2001:db8::1")), "2001:db8::1");
    ASSERT_STR_EQ(fmt(ip("[2001:db8::1]")), "2001:db8::1");
    ASSERT_STR_EQ(fmt(ip("[2001:db8::1]:443")), "2001:db8::1");
    ASSERT_STR_EQ(fmt(ip("::ffff:1.2.3.4")), "1.2.3.4"); /* IPv4-mapped is IPv4 */
    wsg_ip_t out;
    const char *bad[] = {
        "",     " ",      "1.2.3",  "1.2.3.4.5", "256.1.1.1", "example.com",     "unknown", "[1.2.3.4]",
        "[::1", "[::1]:", "[::1]x", "1.2.3.4:",  "::1::2",    "1.2.3.4 5.6.7.8", "_hidden"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wsg_ip_parse(wsg_str_c(bad[i]), &out))
            TEST_FAIL_AT("\"%s\" parsed as an address", bad[i]);
}

static void test_cidr_lists(void)
{
    wsg_cidr_list_t list;
    const char *why = NULL;
    ASSERT_INT_EQ(wsg_cidr_list_parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8, ::1, 0.0.0.0/0x", &list, &why),
                  -EINVAL);
    ASSERT_INT_EQ(wsg_cidr_list_parse("10.0.0.0/8, 192.168.1.7 ,fd00::/8, ::1", &list, &why), 0);
    ASSERT_UINT_EQ(list.n, 4);
    wsg_ip_t a;
    const char *in[] = {"10.1.2.3", "10.255.255.255", "192.168.1.7", "fd12::9", "::1", "::ffff:10.9.9.9"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        if (!(a = ip(in[i]), wsg_cidr_list_contains(&list, &a)))
            TEST_FAIL_AT("%s not in the list", in[i]);
    const char *out[] = {"11.0.0.1", "9.255.255.255", "192.168.1.8", "fe80::1", "::2", "127.0.0.1"};
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
        if ((a = ip(out[i]), wsg_cidr_list_contains(&list, &a)))
            TEST_FAIL_AT("%s in the list", out[i]);
    ASSERT_INT_EQ(wsg_cidr_list_parse("", &list, &why), 0);
    ASSERT_UINT_EQ(list.n, 0);
    a = ip("10.1.2.3");
    ASSERT_FALSE(wsg_cidr_list_contains(&list, &a));
    ASSERT_INT_EQ(wsg_cidr_list_parse(" , ,", &list, &why), 0);
    ASSERT_INT_EQ(wsg_cidr_list_parse("0.0.0.0/0", &list, &why), 0);
    ASSERT_TRUE(wsg_cidr_list_contains(&list, &a));
    a = ip("::1");
    ASSERT_FALSE(wsg_cidr_list_contains(&list, &a)); /* IPv4's /0 is not all of IPv6 */
    ASSERT_INT_EQ(wsg_cidr_list_parse("10.0.0.0/33", &list, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_cidr_list_parse("::/129", &list, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_cidr_list_parse("10.0.0.0/", &list, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_cidr_list_parse("10.0.0.1:80", &list, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_cidr_list_parse("[::1]", &list, &why), -EINVAL);
    ASSERT_INT_EQ(wsg_cidr_list_parse("proxy.example", &list, &why), -EINVAL);
    ASSERT_STR_EQ(why, "not an IP address");
    char many[64 * 12] = "";
    for (int i = 0; i < 33; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "10.0.0.%d,", i);
    ASSERT_INT_EQ(wsg_cidr_list_parse(many, &list, &why), -EINVAL);
}

static const char *client(const char *peer, const char *xff1, const char *xff2, const char *real_ip,
                          const char *trusted)
{
    wsg_cidr_list_t list;
    const char *why;
    if (wsg_cidr_list_parse(trusted, &list, &why) != 0)
        TEST_FAIL_AT("bad trusted list %s", trusted);
    wsg_str_t xff[2] = {wsg_str_c(xff1 ? xff1 : ""), wsg_str_c(xff2 ? xff2 : "")};
    wsg_ip_t p = ip(peer);
    wsg_ip_t c = wsg_forwarded_client(&p, xff, xff1 ? (xff2 ? 2 : 1) : 0,
                                      real_ip ? wsg_str_c(real_ip) : WSG_STR_NULL, &list);
    return fmt(c);
}

static void test_client_behind_trusted_proxies(void)
{
    const char *T = "10.0.0.0/8";
    /* Not from a trusted proxy: the headers are the client's own words, and ignored. */
    ASSERT_STR_EQ(client("203.0.113.9", "1.1.1.1", NULL, "2.2.2.2", T), "203.0.113.9");
    ASSERT_STR_EQ(client("203.0.113.9", "1.1.1.1", NULL, NULL, ""), "203.0.113.9");
    /* From a trusted proxy: the rightmost address that is not a trusted proxy. */
    ASSERT_STR_EQ(client("10.0.0.1", "198.51.100.7", NULL, NULL, T), "198.51.100.7");
    ASSERT_STR_EQ(client("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2", NULL, NULL, T), "198.51.100.7");
    /* A forged leftmost entry does not win: the proxy appended the real one after it. */
    ASSERT_STR_EQ(client("10.0.0.1", "127.0.0.1, 198.51.100.7", NULL, NULL, T), "198.51.100.7");
    /* Several header lines (one added by the client, one by a proxy): the last line holds the nearest hops.
     */
    ASSERT_STR_EQ(client("10.0.0.1", "6.6.6.6", "198.51.100.7", NULL, T), "198.51.100.7");
    ASSERT_STR_EQ(client("10.0.0.1", "198.51.100.7", "10.0.0.3", NULL, T), "198.51.100.7");
    /* Every hop trusted: the leftmost one. */
    ASSERT_STR_EQ(client("10.0.0.1", "10.0.0.5, 10.0.0.6", NULL, NULL, T), "10.0.0.5");
    /* A hop that is not an address stops the walk at the last one that was. */
    ASSERT_STR_EQ(client("10.0.0.1", "198.51.100.7, unknown", NULL, NULL, T), "10.0.0.1");
    ASSERT_STR_EQ(client("10.0.0.1", "198.51.100.7, garbage, 10.0.0.2", NULL, NULL, T), "10.0.0.2");
    ASSERT_STR_EQ(client("10.0.0.1", " , 198.51.100.7 ,, ", NULL, NULL, T), "198.51.100.7");
    ASSERT_STR_EQ(client("10.0.0.1", "[2001:db8::7]:1234", NULL, NULL, T), "2001:db8::7");
    /* X-Real-IP counts only without X-Forwarded-For. */
    ASSERT_STR_EQ(client("10.0.0.1", NULL, NULL, "198.51.100.8", T), "198.51.100.8");
    ASSERT_STR_EQ(client("10.0.0.1", "198.51.100.7", NULL, "198.51.100.8", T), "198.51.100.7");
    ASSERT_STR_EQ(client("10.0.0.1", NULL, NULL, "nonsense", T), "10.0.0.1");
    ASSERT_STR_EQ(client("10.0.0.1", "", NULL, NULL, T), "10.0.0.1");
}

TEST_MAIN("forwarded", TEST_CASE(test_ip_parse), TEST_CASE(test_cidr_lists),
          TEST_CASE(test_client_behind_trusted_proxies))
