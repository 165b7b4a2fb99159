/* test_addr.c - the address module: networks and their matching, the forms an address
 * arrives in (socket, X-Forwarded-For entry), its text, and the walk of X-Forwarded-For
 * past trusted proxies that decides who the client is. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "addr.h"

static void mapped4(const char *ip, uint8_t out[16])
{
    memset(out, 0, 16);
    out[10] = out[11] = 0xff;
    assert_int_equal(inet_pton(AF_INET, ip, out + 12), 1);
}

static void v6(const char *ip, uint8_t out[16])
{
    assert_int_equal(inet_pton(AF_INET6, ip, out), 1);
}

/* A list of up to 8 networks from their text, which must all parse. */
typedef struct {
    addr_cidr items[8];
    addr_cidr_list l;
} nets;

static void nets_of(nets *n, const char *const *text, size_t count)
{
    assert_true(count <= 8);
    for (size_t i = 0; i < count; i++)
        if (addr_parse_cidr(text[i], &n->items[i]) != 0)
            fail_msg("%s refused", text[i]);
    n->l.items = n->items;
    n->l.n = count;
}

#define NETS(n, ...)                                                                                                   \
    do {                                                                                                               \
        static const char *const text_[] = {__VA_ARGS__};                                                              \
        nets_of(n, text_, sizeof text_ / sizeof text_[0]);                                                             \
    } while (0)

/* ---- networks ---- */

static void cidr_ipv4_is_kept_ipv4_mapped_with_the_prefix_plus_96(void **state)
{
    addr_cidr n;
    uint8_t want[16];
    (void)state;
    assert_int_equal(addr_parse_cidr("10.0.0.0/8", &n), 0);
    mapped4("10.0.0.0", want);
    assert_memory_equal(n.addr, want, 16);
    assert_int_equal(n.prefix, 104);
}

static void cidr_bare_address_is_a_single_host(void **state)
{
    addr_cidr n;
    uint8_t want[16];
    (void)state;
    assert_int_equal(addr_parse_cidr("192.0.2.7", &n), 0);
    assert_int_equal(n.prefix, 128);
    mapped4("192.0.2.7", want);
    assert_memory_equal(n.addr, want, 16);
    assert_int_equal(addr_parse_cidr("2001:db8::1", &n), 0);
    assert_int_equal(n.prefix, 128);
    v6("2001:db8::1", want);
    assert_memory_equal(n.addr, want, 16);
}

static void cidr_clears_host_bits(void **state)
{
    addr_cidr n;
    uint8_t want[16];
    (void)state;
    assert_int_equal(addr_parse_cidr("10.1.2.3/8", &n), 0);
    mapped4("10.0.0.0", want);
    assert_memory_equal(n.addr, want, 16);
    assert_int_equal(addr_parse_cidr("2001:db8:ffff::/33", &n), 0);
    v6("2001:db8:8000::", want);
    assert_memory_equal(n.addr, want, 16);
}

static void cidr_rejects_bad_prefixes_and_non_addresses(void **state)
{
    static const char *const bad[] = {"",           "/8",          "10.0.0.0/33", "::/129",        "10.0.0.0/",
                                      "10.0.0.0/-1", "10.0.0.0/8/8", "10.0.0/8",   "example.com",   "10.0.0.0/ 8",
                                      " 10.0.0.1",  "fe80::1%eth0", "10.0.0.0/0008", "10.0.0.0/+8", "[::1]/128"};
    addr_cidr n;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (addr_parse_cidr(bad[i], &n) == 0)
            fail_msg("%s accepted", bad[i]);
}

static void match_honours_every_prefix_bit(void **state)
{
    nets n;
    uint8_t a[16];
    (void)state;
    NETS(&n, "172.16.0.0/12", "2001:db8::/32", "192.0.2.1");
    mapped4("172.31.255.255", a);
    assert_true(addr_match(&n.l, a));
    mapped4("172.32.0.0", a);
    assert_false(addr_match(&n.l, a));
    mapped4("172.15.255.255", a);
    assert_false(addr_match(&n.l, a));
    mapped4("192.0.2.1", a);
    assert_true(addr_match(&n.l, a));
    mapped4("192.0.2.2", a);
    assert_false(addr_match(&n.l, a));
    v6("2001:db8:1::5", a);
    assert_true(addr_match(&n.l, a));
    v6("2001:db9::5", a);
    assert_false(addr_match(&n.l, a));
}

static void ipv4_any_network_does_not_match_ipv6_but_ipv6_any_matches_all(void **state)
{
    nets n;
    uint8_t a[16];
    (void)state;
    NETS(&n, "0.0.0.0/0");
    v6("2001:db8::1", a);
    assert_false(addr_match(&n.l, a));
    mapped4("203.0.113.9", a);
    assert_true(addr_match(&n.l, a));
    NETS(&n, "::/0");
    assert_true(addr_match(&n.l, a));
    v6("2001:db8::1", a);
    assert_true(addr_match(&n.l, a));
}

static void empty_list_matches_nothing(void **state)
{
    addr_cidr_list none = {NULL, 0};
    uint8_t a[16];
    (void)state;
    mapped4("127.0.0.1", a);
    assert_false(addr_match(&none, a));
}

/* ---- the forms an address arrives in ---- */

static void from_sockaddr_maps_ipv4_copies_ipv6_and_refuses_other_families(void **state)
{
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    uint8_t out[16], want[16];
    (void)state;
    inet_pton(AF_INET, "198.51.100.4", &in4.sin_addr);
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&in4, out), 0);
    mapped4("198.51.100.4", want);
    assert_memory_equal(out, want, 16);
    inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&in6, out), 0);
    v6("2001:db8::7", want);
    assert_memory_equal(out, want, 16);
    assert_int_equal(addr_from_sockaddr((struct sockaddr *)&un, out), -1);
}

static void forwarded_entry_may_be_padded_or_bracketed(void **state)
{
    static const struct {
        const char *text, *v4, *v6;
    } good[] = {{"203.0.113.9", "203.0.113.9", NULL}, {" \t203.0.113.9\t ", "203.0.113.9", NULL},
                {"2001:db8::1", NULL, "2001:db8::1"}, {"[2001:db8::1]", NULL, "2001:db8::1"},
                {" [::1] ", NULL, "::1"},             {"::ffff:192.0.2.1", "192.0.2.1", NULL}};
    uint8_t out[16], want[16];
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        if (addr_parse(good[i].text, strlen(good[i].text), out) != 0)
            fail_msg("\"%s\" refused", good[i].text);
        if (good[i].v4 != NULL)
            mapped4(good[i].v4, want);
        else
            v6(good[i].v6, want);
        assert_memory_equal(out, want, 16);
    }
}

static void forwarded_entry_refuses_ports_names_and_broken_addresses(void **state)
{
    static const char *const bad[] = {"",          "   ",          "unknown",     "203.0.113.9:80", "[::1]:80",
                                      "[::1",      "1.2.3",        "1.2.3.4 5.6.7.8", "::ffff:300.1.1.1", "[]",
                                      "10.0.0.0/8", "fe80::1%eth0", "example.com"};
    uint8_t out[16];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (addr_parse(bad[i], strlen(bad[i]), out) == 0)
            fail_msg("\"%s\" accepted", bad[i]);
}

static void forwarded_entry_is_read_only_within_its_length(void **state)
{
    uint8_t out[16], want[16];
    (void)state;
    assert_int_equal(addr_parse("10.0.0.9, 10.0.0.10", 8, out), 0);
    mapped4("10.0.0.9", want);
    assert_memory_equal(out, want, 16);
}

static void text_is_dotted_for_ipv4_and_shortest_for_ipv6(void **state)
{
    uint8_t a[16];
    char out[INET6_ADDRSTRLEN];
    (void)state;
    mapped4("192.0.2.33", a);
    addr_text(a, out, sizeof out);
    assert_string_equal(out, "192.0.2.33");
    v6("2001:0db8:0000:0000:0000:0000:0000:0001", a);
    addr_text(a, out, sizeof out);
    assert_string_equal(out, "2001:db8::1");
    v6("::1", a);
    addr_text(a, out, sizeof out);
    assert_string_equal(out, "::1");
}

static void text_too_small_for_the_address_is_empty(void **state)
{
    uint8_t a[16];
    char out[8];
    (void)state;
    v6("2001:db8::1", a);
    addr_text(a, out, sizeof out);
    assert_string_equal(out, "");
}

/* ---- clients: addresses grouped by prefix ---- */

static void group_text_of(const char *ip, unsigned prefix, char *out, size_t cap)
{
    uint8_t a[16];
    assert_int_equal(addr_parse(ip, strlen(ip), a), 0);
    addr_group_text(a, prefix, out, cap);
}

static void an_ipv6_client_is_its_prefix_and_an_ipv4_client_its_address(void **state)
{
    char out[ADDR_GROUP_TEXT_MAX];
    (void)state;
    group_text_of("2001:db8:1:2:a:b:c:d", 64, out, sizeof out);
    assert_string_equal(out, "2001:db8:1:2::/64");
    group_text_of("2001:db8:1:2:ffff:ffff:ffff:ffff", 64, out, sizeof out);
    assert_string_equal(out, "2001:db8:1:2::/64");
    group_text_of("2001:db8:1:2:a:b:c:d", 56, out, sizeof out);
    assert_string_equal(out, "2001:db8:1::/56");
    group_text_of("2001:db8:1:2:a:b:c:d", 33, out, sizeof out);
    assert_string_equal(out, "2001:db8::/33");
    group_text_of("2001:db8:1:2:a:b:c:d", 128, out, sizeof out);
    assert_string_equal(out, "2001:db8:1:2:a:b:c:d");
    group_text_of("203.0.113.7", 64, out, sizeof out);
    assert_string_equal(out, "203.0.113.7");
    group_text_of("::ffff:203.0.113.7", 32, out, sizeof out);
    assert_string_equal(out, "203.0.113.7");
}

static void nat64_addresses_stay_whole_so_their_ipv4_clients_stay_apart(void **state)
{
    char a[ADDR_GROUP_TEXT_MAX], b[ADDR_GROUP_TEXT_MAX];
    (void)state;
    group_text_of("64:ff9b::203.0.113.7", 64, a, sizeof a);
    group_text_of("64:ff9b::198.51.100.1", 64, b, sizeof b);
    assert_string_not_equal(a, b);
}

static void grouping_in_place_clears_only_the_host_bits(void **state)
{
    uint8_t a[16], want[16];
    (void)state;
    v6("2001:db8:1:2:a:b:c:d", a);
    addr_group(a, 60, a);
    v6("2001:db8:1::", want);
    assert_memory_equal(a, want, 16);
    mapped4("192.0.2.33", a);
    addr_group(a, 32, a);
    mapped4("192.0.2.33", want);
    assert_memory_equal(a, want, 16);
}

static void the_longest_group_text_fits_and_a_smaller_buffer_gets_nothing(void **state)
{
    char out[ADDR_GROUP_TEXT_MAX], small[17]; /* the address fits, its "/64" does not */
    (void)state;
    group_text_of("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 127, out, sizeof out);
    assert_string_equal(out, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
    group_text_of("2001:db8:1:2:a:b:c:d", 64, small, sizeof small);
    assert_string_equal(small, "");
}

/* ---- the client behind trusted proxies ---- */

/* Walk value as the one X-Forwarded-For line from a peer at peer; returns the walk's
 * verdict and leaves the client's text in out. */
static addr_fwd walk(const nets *trusted, const char *peer, const char *value, char *out, size_t cap)
{
    uint8_t client[16];
    assert_int_equal(addr_parse(peer, strlen(peer), client), 0);
    addr_fwd rc = addr_forwarded(value, strlen(value), &trusted->l, client);
    addr_text(client, out, cap);
    return rc;
}

static void forwarded_client_is_the_rightmost_untrusted_entry(void **state)
{
    nets trusted;
    char out[INET6_ADDRSTRLEN];
    (void)state;
    NETS(&trusted, "127.0.0.1", "10.0.0.0/8");
    assert_int_equal(walk(&trusted, "127.0.0.1", "198.51.100.7, 203.0.113.9, 10.0.0.2", out, sizeof out),
                     ADDR_FWD_CLIENT);
    assert_string_equal(out, "203.0.113.9");
    assert_int_equal(walk(&trusted, "127.0.0.1", "203.0.113.9", out, sizeof out), ADDR_FWD_CLIENT);
    assert_string_equal(out, "203.0.113.9");
    assert_int_equal(walk(&trusted, "127.0.0.1", "[2001:db8::7]", out, sizeof out), ADDR_FWD_CLIENT);
    assert_string_equal(out, "2001:db8::7");
}

static void a_spoofed_entry_left_of_an_untrusted_one_is_ignored(void **state)
{
    nets trusted;
    char out[INET6_ADDRSTRLEN];
    (void)state;
    NETS(&trusted, "127.0.0.1");
    assert_int_equal(walk(&trusted, "127.0.0.1", "10.0.0.1, 203.0.113.9", out, sizeof out), ADDR_FWD_CLIENT);
    assert_string_equal(out, "203.0.113.9");
}

/* A trusted hop that passed on something not an address (a proxy relaying the
 * client's own header unchecked): the client cannot be known, and is never taken to
 * be a hop, the proxy least of all ("8.8.8.8, garbage" from 127.0.0.1 is not 127.0.0.1). */
static void a_malformed_entry_leaves_the_client_unknown_never_a_hop(void **state)
{
    nets trusted;
    char out[INET6_ADDRSTRLEN];
    static const char *const malformed[] = {"8.8.8.8, garbage", "198.51.100.7, garbage, 10.0.0.2", "",
                                            " ", "203.0.113.9,", ",", "1.2.3.4:80", "unknown",
                                            "10.0.0.2, 999.1.1.1"};
    (void)state;
    NETS(&trusted, "127.0.0.1", "10.0.0.0/8");
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++)
        assert_int_equal(walk(&trusted, "127.0.0.1", malformed[i], out, sizeof out), ADDR_FWD_MALFORMED);
    /* Left of an untrusted entry nothing is read: garbage there is the client's own. */
    assert_int_equal(walk(&trusted, "127.0.0.1", "garbage, 203.0.113.9", out, sizeof out), ADDR_FWD_CLIENT);
    assert_string_equal(out, "203.0.113.9");
}

static void a_line_of_trusted_hops_lets_the_walk_go_on_with_its_leftmost_entry(void **state)
{
    nets trusted;
    char out[INET6_ADDRSTRLEN];
    (void)state;
    NETS(&trusted, "127.0.0.1", "10.0.0.0/8");
    assert_int_equal(walk(&trusted, "127.0.0.1", "10.0.0.3, 10.0.0.2", out, sizeof out), ADDR_FWD_MORE);
    assert_string_equal(out, "10.0.0.3");
}

#define T(name) cmocka_unit_test(name)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(cidr_ipv4_is_kept_ipv4_mapped_with_the_prefix_plus_96),
        T(cidr_bare_address_is_a_single_host),
        T(cidr_clears_host_bits),
        T(cidr_rejects_bad_prefixes_and_non_addresses),
        T(match_honours_every_prefix_bit),
        T(ipv4_any_network_does_not_match_ipv6_but_ipv6_any_matches_all),
        T(empty_list_matches_nothing),
        T(from_sockaddr_maps_ipv4_copies_ipv6_and_refuses_other_families),
        T(forwarded_entry_may_be_padded_or_bracketed),
        T(forwarded_entry_refuses_ports_names_and_broken_addresses),
        T(forwarded_entry_is_read_only_within_its_length),
        T(text_is_dotted_for_ipv4_and_shortest_for_ipv6),
        T(text_too_small_for_the_address_is_empty),
        T(an_ipv6_client_is_its_prefix_and_an_ipv4_client_its_address),
        T(nat64_addresses_stay_whole_so_their_ipv4_clients_stay_apart),
        T(grouping_in_place_clears_only_the_host_bits),
        T(the_longest_group_text_fits_and_a_smaller_buffer_gets_nothing),
        T(forwarded_client_is_the_rightmost_untrusted_entry),
        T(a_spoofed_entry_left_of_an_untrusted_one_is_ignored),
        T(a_malformed_entry_leaves_the_client_unknown_never_a_hop),
        T(a_line_of_trusted_hops_lets_the_walk_go_on_with_its_leftmost_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
