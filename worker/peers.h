/* peers.h - how many connections each client holds in this worker, for
 * MAX_CONNECTIONS_PER_CLIENT: a hash table whose entries are the connections themselves
 * (each embeds a node), so counting allocates nothing and a connection leaves the table
 * as it closes. Knows nothing of sockets or settings: a client is 16 bytes (an address
 * already grouped, addr_group). */
#ifndef RZ_PEERS_H
#define RZ_PEERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct peers_node {
    uint8_t client[16];
    struct peers_node *next;
    struct peers_node **pprev; /* NULL while in no table */
} peers_node;

typedef struct {
    peers_node **buckets;
    size_t mask;
    uint64_t seed; /* random: which clients share a bucket cannot be chosen from outside */
} peers;

/* A table sized for about n connections; 0, or -1 when out of memory. */
int peers_init(peers *p, size_t n);
void peers_free(peers *p);

/* Connections of client in the table: each costs a comparison, plus any other
 * client's sharing its bucket. */
size_t peers_count(const peers *p, const uint8_t client[16]);
/* Count n (its client set) until peers_remove; n must be in no table. */
void peers_add(peers *p, peers_node *n);
/* Stop counting n; a node in no table is left alone. */
void peers_remove(peers_node *n);

#endif
