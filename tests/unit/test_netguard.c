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

#include "netguard.h"

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
