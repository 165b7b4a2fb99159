/* store.h - the metadata store (Valkey/Redis) client.
 *
 * Workers use the asynchronous client, driven by their own h2o event loop: commands
 * never block, a lost connection is retried with back-off, and while the store is
 * down every command fails at once (callback with NULL) so requests answer 503.
 * The shredder uses a plain blocking connection with timeouts (store_connect_sync). */
#ifndef RZ_STORE_H
#define RZ_STORE_H

#include <stddef.h>
#include <h2o.h>
#include <hiredis/hiredis.h>

#include "store_url.h"


/* The atomic scripts (common/scripts.c). */
enum {
    SCRIPT_CREATE,     /* record a new upload unless the id is taken */
    SCRIPT_TAKE_USE,   /* block check + take one download */
    SCRIPT_PREVIEW,    /* block check + mark previewed once */
    SCRIPT_STATUS,     /* block check + read state */
    SCRIPT_RATE,       /* fixed-window rate limit */
    SCRIPT_UPLOAD_GATE,/* upload rate limit + concurrent uploads per client */
    SCRIPT_COUNT
};
extern const char *const store_scripts[SCRIPT_COUNT];

typedef struct store store;
/* reply is NULL when the store is unreachable or timed out; the callback always runs
 * exactly once, possibly before store_* returns (when the store is known to be down). */
typedef void (*store_cb)(redisReply *reply, void *data);

store *store_new(h2o_loop_t *loop, const store_url *url, int timeout_ms);
void store_free(store *s);
int store_is_up(const store *s);
void store_command(store *s, store_cb cb, void *data, int argc, const char **argv, const size_t *argvlen);
/* EVALSHA script with keys then args (argv = keys followed by args). */
void store_script(store *s, int script, store_cb cb, void *data, int nkeys, int argc, const char **argv,
                  const size_t *argvlen);

/* Blocking connection for the shredder (AUTH and SELECT done); NULL with err. */
redisContext *store_connect_sync(const store_url *url, int timeout_ms, char *err, size_t errlen);

#endif
