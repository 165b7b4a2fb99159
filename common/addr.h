/* addr.h - IP addresses in one 16-byte form, the networks that contain them, and the
 * client behind a chain of trusted proxies.
 *
 * An IPv4 address is kept IPv4-mapped (::ffff:a.b.c.d), so one comparison covers both
 * families and a network's prefix is counted on the mapped form (10.0.0.0/8 is /104).
 * Knows nothing of settings or HTTP: the configuration parses its networks here, and
 * the worker feeds in its peers and X-Forwarded-For values. */
#ifndef RZ_ADDR_H
#define RZ_ADDR_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct {
    uint8_t addr[16]; /* host bits cleared */
    uint8_t prefix;   /* 0..128, counted on the mapped form */
} addr_cidr;

typedef struct {
    addr_cidr *items;
    size_t n;
} addr_cidr_list;

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (a single host). Host bits are
 * cleared, so "10.1.2.3/8" means 10.0.0.0/8. 0, or -1 if s is not exactly that. */
int addr_parse_cidr(const char *s, addr_cidr *out);
/* Is the address inside any network of the list? */
int addr_match(const addr_cidr_list *l, const uint8_t addr[16]);

/* One address as a client or proxy writes it in X-Forwarded-For: surrounding spaces
 * and tabs ignored, IPv6 optionally in brackets. 0, or -1 if it is not an address. */
int addr_parse(const char *s, size_t len, uint8_t out[16]);
/* A socket's address; -1 for families other than IPv4 and IPv6. */
int addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16]);
/* Text form: dotted IPv4 for a mapped address, else IPv6. cap >= INET6_ADDRSTRLEN. */
void addr_text(const uint8_t addr[16], char *out, size_t cap);

/* The client an address counts as for limits, failure counts and blocks: an IPv6
 * address stands for its /v6_prefix network (one host's SLAAC addresses, or a whole
 * site's, are one client however many it rotates through); an IPv4 address, mapped or
 * in the NAT64 well-known prefix 64:ff9b::/96, stays whole. out may be addr. */
void addr_group(const uint8_t addr[16], unsigned v6_prefix, uint8_t out[16]);
/* Longest addr_group_text: an IPv6 address, "/" and three digits. */
#define ADDR_GROUP_TEXT_MAX (INET6_ADDRSTRLEN + 4)
/* addr_group's result as the store names a client: "203.0.113.7" for IPv4,
 * "2001:db8:1:2::/64" for an IPv6 network, the bare address at /128. cap >=
 * ADDR_GROUP_TEXT_MAX. */
void addr_group_text(const uint8_t addr[16], unsigned v6_prefix, char *out, size_t cap);

/* What a walk of X-Forwarded-For found. */
typedef enum {
    ADDR_FWD_CLIENT,    /* an untrusted entry: *client, the client */
    ADDR_FWD_MORE,      /* every entry trusted: the walk may go on into an earlier line */
    ADDR_FWD_MALFORMED, /* an entry that is not an address, written by a trusted hop: the
                         * client cannot be known, and is none of the hops either (a
                         * proxy that relays a client's own header unchecked would
                         * otherwise make any client the proxy itself) */
} addr_fwd;

/* One X-Forwarded-For value, walked from the right; call it only when *client (at
 * first the TCP peer) is a trusted proxy. An entry is believed because the hop to its
 * right is trusted, so *client becomes each entry in turn until one is not in trusted.
 * After ADDR_FWD_MALFORMED, *client is meaningless. */
addr_fwd addr_forwarded(const char *v, size_t len, const addr_cidr_list *trusted, uint8_t client[16]);

#endif
