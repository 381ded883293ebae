/* test_limits.c - allow-lists and per-address token buckets
 * (ingest/limits.c): CIDR parsing and its errors, IPv4, IPv6 and
 * IPv4-mapped matching, prefix edges, bucket refill, wait times, addresses
 * kept apart, and the fixed-size table under many senders.
 * Threads: single-threaded.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/limits.h"

static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1)
        v6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return ss;
}

static bool allowed(const lsf_allow *a, const char *ip)
{
    struct sockaddr_storage ss = addr(ip);
    return lsf_allow_match(a, (struct sockaddr *)&ss);
}

static void allow_lists(void **state)
{
    (void)state;
    char *v[] = {"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "172.16.0.0/12", "0.0.0.0/0"};
    lsf_strlist l = {v, 4};
    lsf_allow a;
    lsf_errbuf err;
    assert_int_equal(lsf_allow_parse(&a, &l, NULL, &err), 0);
    assert_true(allowed(&a, "10.255.1.2"));
    assert_false(allowed(&a, "11.0.0.1"));
    assert_true(allowed(&a, "192.0.2.7"));
    assert_false(allowed(&a, "192.0.2.8"));
    assert_true(allowed(&a, "172.31.255.255"));
    assert_false(allowed(&a, "172.32.0.0"));
    assert_true(allowed(&a, "2001:db8:ffff::1"));
    assert_false(allowed(&a, "2001:db9::1"));
    assert_true(allowed(&a, "::ffff:10.1.1.1")); /* IPv4-mapped, as a dual-stack socket reports */
    assert_false(allowed(&a, "::1"));
    lsf_allow_free(&a);
    l.n = 5; /* with 0.0.0.0/0 every IPv4 address, still no IPv6 */
    assert_int_equal(lsf_allow_parse(&a, &l, NULL, &err), 0);
    assert_true(allowed(&a, "8.8.8.8"));
    assert_false(allowed(&a, "2001:4860::1"));
    lsf_allow_free(&a);
    l.n = 0;
    assert_int_equal(lsf_allow_parse(&a, &l, NULL, &err), 0);
    assert_true(allowed(&a, "203.0.113.1")); /* empty: everyone */
    lsf_allow_free(&a);
}

static void allow_errors(void **state)
{
    (void)state;
    const char *bad[] = {"10.0.0.0/33", "10.0.0/8", "host.example", "::/129", "1.2.3.4/", "1.2.3.4/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *v[] = {(char *)bad[i]};
        lsf_strlist l = {v, 1};
        lsf_allow a;
        lsf_errbuf err;
        lsf_node at = {.kind = LSF_NODE_SCALAR, .file = "c.yaml", .line = 3, .col = 12};
        assert_int_equal(lsf_allow_parse(&a, &l, &at, &err), -1);
        assert_non_null(strstr(err.msg, "c.yaml:3:12:"));
        assert_non_null(strstr(err.msg, bad[i]));
        lsf_allow_free(&a);
    }
}

static void buckets(void **state)
{
    (void)state;
    lsf_rate *r = lsf_rate_new(100, 10); /* 100/s, bursts of 10 */
    struct sockaddr_storage a = addr("192.0.2.1"), b = addr("192.0.2.2");
    const struct sockaddr *sa = (struct sockaddr *)&a, *sb = (struct sockaddr *)&b;
    int64_t t = 1000000000LL;
    for (int i = 0; i < 10; i++)
        assert_true(lsf_rate_allow_one(r, sa, t));
    assert_false(lsf_rate_allow_one(r, sa, t));    /* burst used */
    assert_true(lsf_rate_allow_one(r, sb, t));     /* another address has its own */
    assert_true(lsf_rate_allow_one(r, sa, t + 10000000LL)); /* 10 ms: one token back */
    assert_false(lsf_rate_allow_one(r, sa, t + 10000000LL));
    /* take: 20 at once from a full bucket of 10 waits for 10 tokens = 100 ms */
    struct sockaddr_storage c = addr("2001:db8::9");
    int64_t w = lsf_rate_take(r, (struct sockaddr *)&c, 20, t);
    assert_true(w > 99000000LL && w < 101000000LL);
    assert_int_equal(lsf_rate_take(r, (struct sockaddr *)&c, 0, t + w), 0);
    /* never more than the burst after a long pause */
    for (int i = 0; i < 10; i++)
        assert_true(lsf_rate_allow_one(r, sb, t + 3600000000000LL));
    assert_false(lsf_rate_allow_one(r, sb, t + 3600000000000LL));
    lsf_rate_free(r);
}

/* Far more senders than slots: the table keeps working and a sender seen
 * again just now still has its own (spent) bucket. */
static void many_senders(void **state)
{
    (void)state;
    lsf_rate *r = lsf_rate_new(1, 1);
    char ip[32];
    for (int i = 0; i < 100000; i++) {
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct sockaddr_storage s = addr(ip);
        assert_true(lsf_rate_allow_one(r, (struct sockaddr *)&s, 1000 + i));
        assert_false(lsf_rate_allow_one(r, (struct sockaddr *)&s, 1000 + i));
    }
    lsf_rate_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(allow_lists),
        cmocka_unit_test(allow_errors),
        cmocka_unit_test(buckets),
        cmocka_unit_test(many_senders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
