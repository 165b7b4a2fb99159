/* store.h - the metadata store (Valkey/Redis) client of the workers.
 *
 * Asynchronous, driven by the worker's own h2o event loop: commands never block, a
 * lost connection is retried with back-off, and while the store is down every
 * command fails at once (callback with NULL) so requests answer 503. The shredder's
 * blocking client is store_sync.h. */
#ifndef RZ_STORE_H
#define RZ_STORE_H

#include <stddef.h>
#include <h2o.h>
#include <hiredis/hiredis.h>

#include "record.h"
#include "store_url.h"

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

#endif
