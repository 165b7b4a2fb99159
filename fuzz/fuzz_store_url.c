/* fuzz_store_url.c - libFuzzer target: any input is a REDIS_URL. An accepted URL names
 * one connection (a unix path, or a host and a port in range) and a db in range; a
 * refused one leaves no password behind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    store_url u;
    if (url == NULL)
        abort();
    memcpy(url, data, size);
    url[size] = '\0';
    if (store_url_parse(url, &u) == 0) {
        int is_unix = u.unix_path[0] != '\0';
        if (is_unix == (u.host[0] != '\0') || (is_unix && u.unix_path[0] != '/'))
            abort();
        if (u.port < 1 || u.port > 65535 || u.db < 0 || u.db > STORE_URL_DB_MAX)
            abort();
        if (u.user[0] != '\0' && u.password[0] == '\0')
            abort();
    } else if (u.password[0] != '\0' || u.host[0] != '\0' || u.unix_path[0] != '\0') {
        abort();
    }
    free(url);
    return 0;
}
