/* value.h - the text forms a setting's value may take: numbers, byte counts, rates,
 * booleans, log levels, paths, URLs, listen addresses, origins, parts of a User-Agent,
 * and lists of entries (comma-separated or a JSON list).
 *
 * Knows nothing of setting names or error lines: each parser says yes or no, and
 * cfg.c words the refusal. Values arrive trimmed (value_trim). A parser that makes a
 * copy returns -1 for a bad value, else 0 with *out set (NULL if memory ran out). */
#ifndef RZ_VALUE_H
#define RZ_VALUE_H

#include <stddef.h>
#include <stdint.h>

/* Copy of s[0..len) without leading and trailing white space; NULL if memory ran out. */
char *value_trim(const char *s, size_t len);

/* Decimal digits only, in [min, max]. */
int value_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Bytes in [min, max], optionally with a binary suffix: K, M, G, T or KiB, MiB, GiB,
 * TiB (any case). */
int value_bytes(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* 1/true/yes/on or 0/false/no/off, any case. */
int value_bool(const char *s, int *out);
/* debug, info, warning or error (any case) as log.h's LOG_* level. */
int value_level(const char *s, int *out);
/* "N/unit", N >= 1, unit s/second(s), m/minute(s), h/hour(s), d/day(s), spaces around
 * the slash allowed: N requests per *period_s seconds. */
int value_rate(const char *s, uint32_t *count, uint32_t *period_s);

/* s[0..n) is a DNS name or a dotted IPv4 address: labels of letters, digits, '-' and
 * '_'. 0 or -1. */
int value_hostname(const char *s, size_t n);
/* Non-empty, without control characters. 0 or -1. */
int value_path(const char *s);
/* A REDIS_URL the store clients can use: store_url.h's parser, so that -t refuses
 * exactly what they would. 0 or -1. */
int value_redis_url(const char *s);
/* REDIS_SENTINELS: "" or host[:port] entries, comma-separated (store_url.h). 0 or -1. */
int value_sentinels(const char *s);
/* A Sentinel master name (store_url.h). 0 or -1. */
int value_sentinel_master(const char *s);
/* "" or http(s)://host[:port][/path] without query or fragment; the copy has no
 * trailing slash and a lowercase scheme. */
int value_public_url(const char *s, char **out);
/* host:port, [IPv6]:port or :port, port 1 to 65535. */
int value_listen(const char *s, char **out);
/* scheme://host[:port], at most a trailing "/" (dropped); the copy is lowercased. */
int value_origin(const char *s, char **out);

/* A part of a User-Agent: 1 to VALUE_AGENT_MAX printable ASCII characters; the copy is
 * lowercased, so that matching needs to lowercase only the request's side. */
#define VALUE_AGENT_MAX 128
int value_agent(const char *s, char **out);

/* A list: a JSON list of strings when s starts like one ('[' then '"' or ']'; "[::1]:80"
 * does not), else comma-separated entries. Entries are trimmed, empty ones dropped.
 * 0 with *items holding *n copies (free with value_list_free), -1 on bad syntax or a
 * JSON item that is not a string, -2 when memory ran out. */
int value_list(const char *s, char ***items, size_t *n);
void value_list_free(char **items, size_t n);

#endif
