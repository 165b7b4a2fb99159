/* test_peers.c - connections counted per client: each client's own count whatever
 * shares its bucket, nodes leaving in any order, and a node in no table left alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "peers.h"

static void client_of(peers_node *n, unsigned id)
{
    memset(n, 0, sizeof(*n));
    memcpy(n->client + 12, &id, sizeof(id));
}

static size_t count_of(const peers *p, unsigned id)
{
    peers_node probe;
    client_of(&probe, id);
    return peers_count(p, probe.client);
}

static void each_client_counts_its_own_connections(void **state)
{
    (void)state;
    peers p;
    peers_node n[10];
    assert_int_equal(peers_init(&p, 16), 0);
    for (unsigned i = 0; i < 10; i++) {
        client_of(&n[i], i % 3);
        peers_add(&p, &n[i]);
    }
    assert_int_equal(count_of(&p, 0), 4);
    assert_int_equal(count_of(&p, 1), 3);
    assert_int_equal(count_of(&p, 2), 3);
    assert_int_equal(count_of(&p, 3), 0);
    peers_free(&p);
}

static void connections_leave_in_any_order(void **state)
{
    (void)state;
    peers p;
    peers_node n[6];
    assert_int_equal(peers_init(&p, 4), 0);
    for (unsigned i = 0; i < 6; i++) {
        client_of(&n[i], 7);
        peers_add(&p, &n[i]);
    }
    static const int order[] = {2, 0, 5, 3, 1, 4};
    for (size_t i = 0; i < 6; i++) {
        peers_remove(&n[order[i]]);
        assert_int_equal(count_of(&p, 7), 5 - i);
    }
    peers_free(&p);
}

static void removing_a_node_in_no_table_does_nothing(void **state)
{
    (void)state;
    peers p;
    peers_node counted, never;
    assert_int_equal(peers_init(&p, 4), 0);
    client_of(&counted, 1);
    client_of(&never, 1);
    peers_add(&p, &counted);
    peers_remove(&never);
    assert_int_equal(count_of(&p, 1), 1);
    peers_remove(&counted);
    peers_remove(&counted);
    assert_int_equal(count_of(&p, 1), 0);
    peers_free(&p);
}

/* Far more clients than buckets: chains are shared, counts stay exact. */
static void many_clients_sharing_buckets_keep_exact_counts(void **state)
{
    (void)state;
    enum { CLIENTS = 3000, EACH = 3 };
    static peers_node n[CLIENTS * EACH];
    peers p;
    assert_int_equal(peers_init(&p, 1), 0);
    for (unsigned i = 0; i < CLIENTS * EACH; i++) {
        client_of(&n[i], i % CLIENTS);
        peers_add(&p, &n[i]);
    }
    for (unsigned c = 0; c < CLIENTS; c += 97)
        assert_int_equal(count_of(&p, c), EACH);
    for (unsigned i = 0; i < CLIENTS * EACH; i += 2)
        peers_remove(&n[i]);
    size_t total = 0;
    for (unsigned c = 0; c < CLIENTS; c++)
        total += count_of(&p, c);
    assert_int_equal(total, CLIENTS * EACH / 2);
    peers_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_client_counts_its_own_connections),
        cmocka_unit_test(connections_leave_in_any_order),
        cmocka_unit_test(removing_a_node_in_no_table_does_nothing),
        cmocka_unit_test(many_clients_sharing_buckets_keep_exact_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
