/* peers.c - connections per client (see peers.h): chained buckets of the connections'
 * own nodes, a power of two of them, chosen by a seeded hash of the client. */
#include "peers.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define BUCKETS_MIN 64
#define BUCKETS_MAX 65536 /* 512 KiB of pointers; chains lengthen past that many connections */

static size_t bucket_of(const peers *p, const uint8_t client[16])
{
    uint64_t a, b;
    memcpy(&a, client, 8);
    memcpy(&b, client + 8, 8);
    uint64_t h = (a ^ p->seed) * UINT64_C(0x9e3779b97f4a7c15);
    h = (h ^ b ^ (h >> 29)) * UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 32;
    return (size_t)h & p->mask;
}

int peers_init(peers *p, size_t n)
{
    size_t buckets = BUCKETS_MIN;
    while (buckets < n && buckets < BUCKETS_MAX)
        buckets *= 2;
    p->buckets = calloc(buckets, sizeof(*p->buckets));
    if (p->buckets == NULL)
        return -1;
    p->mask = buckets - 1;
    /* Without randomness the table still counts right; only its spread is guessable. */
    if (getrandom(&p->seed, sizeof(p->seed), GRND_NONBLOCK) != (ssize_t)sizeof(p->seed))
        p->seed = 0;
    return 0;
}

void peers_free(peers *p)
{
    free(p->buckets);
    p->buckets = NULL;
}

size_t peers_count(const peers *p, const uint8_t client[16])
{
    size_t n = 0;
    for (const peers_node *e = p->buckets[bucket_of(p, client)]; e != NULL; e = e->next)
        n += memcmp(e->client, client, 16) == 0;
    return n;
}

void peers_add(peers *p, peers_node *n)
{
    peers_node **head = &p->buckets[bucket_of(p, n->client)];
    n->next = *head;
    if (n->next != NULL)
        n->next->pprev = &n->next;
    n->pprev = head;
    *head = n;
}

void peers_remove(peers_node *n)
{
    if (n->pprev == NULL)
        return;
    *n->pprev = n->next;
    if (n->next != NULL)
        n->next->pprev = n->pprev;
    n->next = NULL;
    n->pprev = NULL;
}
