/* fuzz_cfg.c - libFuzzer target for the configuration parsers.
 *
 * Each input is loaded as a YAML file, then split at its first NUL or newline into a
 * setting name and a value for cfg_set and the parsers other modules call. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "cfg.h"
#include "mime.h"
#include "value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64];

static void remove_scratch(void)
{
    unlink(scratch);
}

/* One temporary file for the whole run, rewritten for each input. */
static const char *scratch_path(void)
{
    if (scratch[0] == '\0') {
        int fd;
        strcpy(scratch, "/tmp/fuzz_cfg.XXXXXX");
        fd = mkstemp(scratch);
        if (fd < 0)
            abort();
        close(fd);
        atexit(remove_scratch);
    }
    return scratch;
}

static void fuzz_yaml(const uint8_t *data, size_t size)
{
    const char *path = scratch_path();
    char err[256];
    cfg c;
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        abort();
    if (size > 0 && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    cfg_init(&c);
    if (cfg_load_yaml(&c, path, err, sizeof err) == 0)
        (void)cfg_validate(&c, err, sizeof err);
    else if (memchr(err, '\n', strnlen(err, sizeof err)) != NULL)
        abort(); /* an error is one line */
    cfg_free(&c);
}

static void fuzz_set(const uint8_t *data, size_t size)
{
    char *name = malloc(size + 1), *value, err[256];
    size_t cut = 0;
    cfg c;
    cfg_rate r;
    addr_cidr n;
    uint8_t addr[16] = {0};
    if (name == NULL)
        abort();
    memcpy(name, data, size);
    name[size] = '\0';
    while (cut < size && name[cut] != '\0' && name[cut] != '\n')
        cut++;
    name[cut] = '\0';
    value = cut < size ? name + cut + 1 : name + size;

    cfg_init(&c);
    if (cfg_set(&c, name, value, err, sizeof err) != 0) {
        if (memchr(err, '\n', strnlen(err, sizeof err)) != NULL)
            abort();
    } else {
        (void)cfg_validate(&c, err, sizeof err);
    }
    /* the same value twice: the second set must free what the first allocated */
    (void)cfg_set(&c, name, value, err, sizeof err);
    (void)mime_allowed(c.allowed_mime_types.items, c.allowed_mime_types.n, value);
    memcpy(addr, data, size < sizeof addr ? size : sizeof addr);
    (void)addr_match(&c.trusted_proxies, addr);
    (void)addr_match(&c.metrics_allow, addr);
    (void)addr_forwarded(value, strlen(value), &c.trusted_proxies, addr);
    cfg_free(&c);

    (void)value_rate(value, &r.count, &r.period_s);
    if (addr_parse_cidr(value, &n) == 0 && n.prefix > 128)
        abort();
    free(name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_yaml(data, size);
    fuzz_set(data, size);
    return 0;
}
