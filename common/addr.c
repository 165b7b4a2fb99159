/* addr.c - IP addresses in the 16-byte mapped form: parsing (networks, X-Forwarded-For
 * entries, sockets), text, network matching, grouping into clients, and the walk of
 * X-Forwarded-For past trusted proxies. Owns what an address is; not which ones the
 * server trusts. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static void map_ipv4(const void *in4, uint8_t out[16])
{
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, in4, 4);
}

/* s[0..len) as an IPv4 or IPv6 address; *bits is 32 or 128, the width it was written in. */
static int parse_exact(const char *s, size_t len, uint8_t out[16], unsigned *bits)
{
    char buf[INET6_ADDRSTRLEN];
    struct in_addr a4;
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        map_ipv4(&a4, out);
        *bits = 32;
        return 0;
    }
    *bits = 128;
    return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

/* One to three decimal digits, no sign, at most max. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t n = 0;
    for (; s[n] >= '0' && s[n] <= '9'; n++)
        v = v * 10 + (unsigned)(s[n] - '0');
    if (n == 0 || n > 3 || s[n] != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

int addr_parse_cidr(const char *s, addr_cidr *out)
{
    const char *slash = strchr(s, '/');
    size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
    addr_cidr r;
    unsigned bits, prefix;
    if (parse_exact(s, alen, r.addr, &bits) != 0)
        return -1;
    prefix = bits;
    if (slash != NULL && parse_prefix(slash + 1, bits, &prefix) != 0)
        return -1;
    r.prefix = (uint8_t)(128 - bits + prefix);
    for (unsigned i = r.prefix; i < 128; i++)
        r.addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
    *out = r;
    return 0;
}

int addr_match(const addr_cidr_list *l, const uint8_t addr[16])
{
    for (size_t i = 0; i < l->n; i++) {
        const addr_cidr *n = &l->items[i];
        unsigned full = n->prefix / 8, rem = n->prefix % 8;
        if (memcmp(addr, n->addr, full) != 0)
            continue;
        if (rem == 0 || ((addr[full] ^ n->addr[full]) & (0xff00u >> rem) & 0xffu) == 0)
            return 1;
    }
    return 0;
}

int addr_parse(const char *s, size_t len, uint8_t out[16])
{
    unsigned bits;
    while (len > 0 && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= 2 && s[0] == '[' && s[len - 1] == ']')
        s++, len -= 2;
    return parse_exact(s, len, out, &bits);
}

int addr_from_sockaddr(const struct sockaddr *sa, uint8_t out[16])
{
    if (sa->sa_family == AF_INET) {
        map_ipv4(&((const struct sockaddr_in *)sa)->sin_addr, out);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    return -1;
}

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An IPv4 address in IPv6 clothes: mapped (how we keep IPv4), or translated by NAT64
 * under its well-known prefix, where each IPv4 client of the translator has its own
 * IPv6 address and grouping them by prefix would make every one of them one client. */
static int is_ipv4(const uint8_t addr[16])
{
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    return memcmp(addr, mapped_prefix, 12) == 0 || memcmp(addr, nat64, 12) == 0;
}

/* The prefix addr_group keeps of addr. */
static unsigned group_bits(const uint8_t addr[16], unsigned v6_prefix)
{
    return is_ipv4(addr) || v6_prefix > 128 ? 128 : v6_prefix;
}

void addr_group(const uint8_t addr[16], unsigned v6_prefix, uint8_t out[16])
{
    unsigned bits = group_bits(addr, v6_prefix);
    if (out != addr)
        memcpy(out, addr, 16);
    for (unsigned i = bits; i < 128; i++)
        out[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

void addr_group_text(const uint8_t addr[16], unsigned v6_prefix, char *out, size_t cap)
{
    uint8_t g[16];
    unsigned bits = group_bits(addr, v6_prefix);
    addr_group(addr, v6_prefix, g);
    addr_text(g, out, cap);
    if (bits < 128 && out[0] != '\0') {
        size_t n = strlen(out);
        int w = snprintf(out + n, cap - n, "/%u", bits);
        if (w < 0 || (size_t)w >= cap - n)
            out[0] = '\0';
    }
}

void addr_text(const uint8_t addr[16], char *out, size_t cap)
{
    const char *ok;
    if (memcmp(addr, mapped_prefix, 12) == 0)
        ok = inet_ntop(AF_INET, addr + 12, out, (socklen_t)cap);
    else
        ok = inet_ntop(AF_INET6, addr, out, (socklen_t)cap);
    if (ok == NULL && cap > 0)
        out[0] = '\0';
}

addr_fwd addr_forwarded(const char *v, size_t len, const addr_cidr_list *trusted, uint8_t client[16])
{
    size_t end = len;
    for (;;) {
        size_t start = end;
        uint8_t a[16];
        while (start > 0 && v[start - 1] != ',')
            start--;
        if (addr_parse(v + start, end - start, a) != 0)
            return ADDR_FWD_MALFORMED;
        memcpy(client, a, 16);
        if (!addr_match(trusted, a))
            return ADDR_FWD_CLIENT;
        if (start == 0)
            return ADDR_FWD_MORE;
        end = start - 1;
    }
}
