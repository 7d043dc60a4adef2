/* test_netguard.c - the SSRF guard's address policy. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "net/netguard.h"

static const struct {
    const char *addr;
    const char *why;     /* NULL: allowed */
} cases[] = {
    /* IPv4 */
    { "127.0.0.1", "loopback" },
    { "127.1.2.3", "loopback" },
    { "127.255.255.255", "loopback" },
    { "10.0.0.1", "private" },
    { "10.255.255.255", "private" },
    { "172.16.0.1", "private" },
    { "172.31.255.255", "private" },
    { "172.15.255.255", NULL },
    { "172.32.0.1", NULL },
    { "192.168.1.1", "private" },
    { "192.168.0.0", "private" },
    { "192.169.0.1", NULL },
    { "169.254.169.254", "link_local" },
    { "169.254.0.1", "link_local" },
    { "100.64.0.1", "cgnat" },
    { "100.127.255.255", "cgnat" },
    { "100.63.255.255", NULL },
    { "100.128.0.1", NULL },
    { "0.0.0.0", "unspecified" },
    { "0.1.2.3", "unspecified" },
    { "224.0.0.1", "multicast" },
    { "239.255.255.250", "multicast" },
    { "255.255.255.255", "reserved" },
    { "240.0.0.1", "reserved" },
    { "192.0.2.1", "reserved" },
    { "198.51.100.7", "reserved" },
    { "203.0.113.9", "reserved" },
    { "198.18.0.1", "reserved" },
    { "198.19.255.255", "reserved" },
    { "198.17.255.255", NULL },
    { "198.20.0.0", NULL },
    { "192.0.0.0", "reserved" },
    { "192.0.0.255", "reserved" },
    { "192.0.1.0", NULL },
    { "192.88.99.1", "reserved" },
    { "0.255.255.255", "unspecified" },
    { "1.0.0.0", NULL },
    { "239.255.255.255", "multicast" },
    { "223.255.255.254", NULL },
    { "240.255.255.255", "reserved" },
    { "254.0.0.1", "reserved" },
    { "100.64.0.0", "cgnat" },
    { "169.253.255.255", NULL },
    { "169.255.0.0", NULL },
    { "126.255.255.255", NULL },
    { "128.0.0.0", NULL },
    { "9.255.255.255", NULL },
    { "11.0.0.0", NULL },
    { "8.8.8.8", NULL },
    { "1.1.1.1", NULL },
    { "93.184.216.34", NULL },
    { "223.255.255.255", NULL },
    /* IPv6 */
    { "::1", "loopback" },
    { "::", "unspecified" },
    { "fe80::1", "link_local" },
    { "febf::1", "link_local" },
    { "fc00::1", "private" },
    { "fd12::1", "private" },
    { "fd12:3456:789a:1::1", "private" },
    { "ff02::1", "multicast" },
    { "ff05::2", "multicast" },
    { "2001:db8::1", "reserved" },
    /* IPv4 hiding in IPv6: v4-mapped, NAT64, 6to4. */
    { "::ffff:127.0.0.1", "loopback" },
    { "::ffff:7f00:1", "loopback" },
    { "::ffff:10.0.0.1", "private" },
    { "::ffff:169.254.169.254", "link_local" },
    { "::ffff:0.0.0.0", "unspecified" },
    { "::ffff:8.8.8.8", NULL },
    { "64:ff9b::7f00:1", "loopback" },
    { "64:ff9b::127.0.0.1", "loopback" },
    { "64:ff9b::a9fe:a9fe", "link_local" },
    { "64:ff9b::808:808", NULL },
    { "2002:7f00:1::1", "loopback" },
    { "2002:a00:1::", "private" },
    { "2002:808:808::1", NULL },
    /* ::ffff:0:0/96 whole: every v4-mapped address is its IPv4 address. */
    { "::ffff:0:0", "unspecified" },
    { "::ffff:ffff:ffff", "reserved" },               /* 255.255.255.255 */
    { "::ffff:100.64.0.1", "cgnat" },
    { "::ffff:192.0.0.8", "reserved" },
    { "::ffff:198.19.255.255", "reserved" },
    { "::ffff:224.0.0.251", "multicast" },
    { "::ffff:240.0.0.1", "reserved" },
    { "::ffff:172.16.5.4", "private" },
    { "::ffff:192.168.0.1", "private" },
    { "::ffff:1.1.1.1", NULL },
    /* IPv4-translated ::ffff:0:0:0/96 (SIIT): the same. */
    { "::ffff:0:127.0.0.1", "loopback" },
    { "::ffff:0:a00:1", "private" },
    { "::ffff:0:808:808", NULL },
    /* The NAT64 well-known prefix 64:ff9b::/96 and what it embeds. */
    { "64:ff9b::", "unspecified" },
    { "64:ff9b::10.1.2.3", "private" },
    { "64:ff9b::192.168.1.1", "private" },
    { "64:ff9b::100.64.0.1", "cgnat" },
    { "64:ff9b::192.0.0.1", "reserved" },
    { "64:ff9b::198.18.0.1", "reserved" },
    { "64:ff9b::224.0.0.1", "multicast" },
    { "64:ff9b::255.255.255.255", "reserved" },
    { "64:ff9b::1.1.1.1", NULL },
    /* A network's own NAT64 prefix 64:ff9b:1::/48 (RFC 8215): refused
     * whatever it embeds; the rest of 64:ff9b::/32 is not assigned. */
    { "64:ff9b:1::", "private" },
    { "64:ff9b:1::808:808", "private" },
    { "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "private" },
    { "64:ff9b:1:0:0:0:a00:1", "private" },
    { "64:ff9b:2::808:808", "reserved" },
    { "64:ff9b:0:1::808:808", "reserved" },
    { "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", NULL },
    { "64:ff9c::", NULL },
    /* Teredo, benchmarking, ORCHID, documentation, SRv6, discard. */
    { "2001::1", "reserved" },
    { "2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved" },
    { "2001:2::1", "reserved" },
    { "2001:2:0:ffff::1", "reserved" },
    { "2001:2:1::1", NULL },
    { "2001:10::1", "reserved" },
    { "2001:1f::1", "reserved" },
    { "2001:20::1", NULL },
    { "3fff::1", "reserved" },
    { "3fff:fff::1", "reserved" },
    { "3fff:1000::1", NULL },
    { "5f00::1", "reserved" },
    { "100::1", "reserved" },
    { "100:0:0:1::1", NULL },
    /* Unspecified, loopback, ULA, link-local, site-local edges. */
    { "::2", "reserved" },
    { "::1:0", "reserved" },
    { "::127.0.0.1", "reserved" },
    { "fbff:ffff::1", NULL },
    { "fc00::", "private" },
    { "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private" },
    { "fe00::1", NULL },
    { "fe80::", "link_local" },
    { "febf:ffff::1", "link_local" },
    { "fec0::1", "private" },
    { "ff00::", "multicast" },
    { "2606:4700::1111", NULL },
    { "2001:4860:4860::8888", NULL },
    { "2a00:1450:4001:81b::200e", NULL },
    /* Not addresses. */
    { "invalid", "invalid" },
    { "", "invalid" },
    { "localhost", "invalid" },
    { "127.1", "invalid" },
    { "0x7f.0.0.1", "invalid" },
    { "2130706433", "invalid" },
    { "127.0.0.1 ", "invalid" },
    { " 127.0.0.1", "invalid" },
    { "127.0.0.1.", "invalid" },
    { "256.0.0.1", "invalid" },
    { "1.2.3.4.5", "invalid" },
    { "[::1]", "invalid" },
    { "::1%lo", "invalid" },
    { ":::1", "invalid" },
    { "1::2::3", "invalid" },
    { "::g", "invalid" },
    { "127.0.0.1:80", "invalid" },
};

static void check_one(const char *addr, const char *got, const char *want, int *failures)
{
    if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0)) {
        print_error("%s: got %s, want %s\n", addr, got ? got : "NULL (allowed)",
                    want ? want : "NULL (allowed)");
        (*failures)++;
    }
}

static void test_check_str(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_one(cases[i].addr, mr_netguard_check_str(cases[i].addr), cases[i].why, &failures);
    assert_int_equal(failures, 0);
}

/* The same table through sockaddrs, as the upstream module asks. */
static void test_check_sockaddr(void **state)
{
    int failures = 0;
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_in in;
        struct sockaddr_in6 in6;

        memset(&in, 0, sizeof(in));
        memset(&in6, 0, sizeof(in6));
        if (inet_pton(AF_INET, cases[i].addr, &in.sin_addr) == 1) {
            in.sin_family = AF_INET;
            in.sin_port = htons(443);
            check_one(cases[i].addr, mr_netguard_check((struct sockaddr *)&in, sizeof(in)),
                      cases[i].why, &failures);
        } else if (inet_pton(AF_INET6, cases[i].addr, &in6.sin6_addr) == 1) {
            in6.sin6_family = AF_INET6;
            in6.sin6_port = htons(80);
            check_one(cases[i].addr, mr_netguard_check((struct sockaddr *)&in6, sizeof(in6)),
                      cases[i].why, &failures);
        } else {
            assert_string_equal(cases[i].why, "invalid");
        }
    }
    assert_int_equal(failures, 0);
}

/* Short lengths and other families are refused. */
static void test_check_other(void **state)
{
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
    struct sockaddr_storage ss;
    (void)state;

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    inet_pton(AF_INET, "8.8.8.8", &in.sin_addr);
    assert_null(mr_netguard_check((struct sockaddr *)&in, sizeof(in)));
    assert_non_null(mr_netguard_check((struct sockaddr *)&in, sizeof(in) - 1));
    assert_non_null(mr_netguard_check((struct sockaddr *)&in, 0));

    memset(&in6, 0, sizeof(in6));
    in6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2606:4700::1111", &in6.sin6_addr);
    assert_null(mr_netguard_check((struct sockaddr *)&in6, sizeof(in6)));
    assert_non_null(mr_netguard_check((struct sockaddr *)&in6, sizeof(in6) - 1));
    /* A sockaddr_in's length is not enough for AF_INET6. */
    assert_non_null(mr_netguard_check((struct sockaddr *)&in6, sizeof(struct sockaddr_in)));

    /* A sockaddr_storage holding an allowed address, with its full length. */
    memset(&ss, 0, sizeof(ss));
    memcpy(&ss, &in6, sizeof(in6));
    assert_null(mr_netguard_check((struct sockaddr *)&ss, sizeof(ss)));

    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", "/run/redis.sock");
    assert_string_equal(mr_netguard_check((struct sockaddr *)&un, sizeof(un)), "reserved");

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNSPEC;
    assert_string_equal(mr_netguard_check((struct sockaddr *)&ss, sizeof(ss)), "reserved");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_str),
        cmocka_unit_test(test_check_sockaddr),
        cmocka_unit_test(test_check_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
