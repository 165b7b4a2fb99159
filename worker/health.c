/* health.c - GET /health/: is each service this worker depends on online?
 *
 * The rate-limit round trip doubles as the store's liveness probe: if the store
 * answered it, it is online. A store that is down cannot rate-limit, so health is
 * then answered (degraded) rather than refused. The host's own probe (a container's
 * HEALTHCHECK) is counted like any client but never refused: a supervisor that
 * probes again within the window must not see its service as failing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"
#include "version.h"

/* The shredder sweeps every second; three missed sweeps and it counts as down. */
#define SCHEDULER_STALE_MS 5000

typedef struct {
    req_ref ref;
    int exempt; /* the host probing itself */
} health_op;

/* Object storage: what its last request or probe found (objstore.h); the temp
 * directory is still ours (spilled bodies). */
static int storage_online(const worker *w)
{
    const cfg *c = w->cfg;
    if (w->objstore != NULL)
        return objstore_online(w->objstore) && access(c->temp_path, W_OK | X_OK) == 0;
    return access(c->storage_path, W_OK | X_OK) == 0 && access(c->temp_path, W_OK | X_OK) == 0;
}

/* A worker says when what its health answers changes: degraded, with the services
 * offline, or healthy again. Once per change, not per probe. */
static void log_change(int redis, int storage, int scheduler, int diceware)
{
    static char last[64]; /* the offline services named; "" while all are online */
    char now[64];
    snprintf(now, sizeof(now), "%s%s%s%s", redis ? "" : " redis", storage ? "" : " storage",
             scheduler ? "" : " scheduler", diceware ? "" : " diceware");
    if (strcmp(now, last) == 0)
        return;
    memcpy(last, now, sizeof(last));
    if (now[0] == '\0')
        log_event(LOG_INFO, "health_restored", "every service is online");
    else
        log_event(LOG_WARNING, "health_degraded", "offline:%s", now);
}

static void respond(h2o_req_t *req, int redis_online)
{
    worker *w = worker_of(req);
    uint64_t now = util_now_ms();
    uint64_t beat = atomic_load(&w->env->shm->shredder_heartbeat_ms);
    int storage = storage_online(w);
    uint64_t mono = util_mono_ms(); /* the heartbeat is monotonic: a clock step cannot fake it */
    int scheduler = beat != 0 && mono >= beat && mono - beat < SCHEDULER_STALE_MS;
    int diceware = words_count(w->env->words) == WORDS_EXPECTED;
    int healthy = redis_online && storage && scheduler && diceware;
    log_change(redis_online, storage, scheduler, diceware);
    char ts[32], started[32];
    util_iso_time((int64_t)(now / 1000), ts, sizeof(ts));
    util_iso_time((int64_t)(w->env->started_ms / 1000), started, sizeof(started));

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", healthy ? "healthy" : "degraded");
    cJSON_AddStringToObject(o, "version", RZ_VERSION);
    cJSON_AddStringToObject(o, "timestamp", ts);
    cJSON *s = cJSON_AddObjectToObject(o, "services");
    cJSON_AddStringToObject(s, "redis", redis_online ? "online" : "offline");
    cJSON_AddStringToObject(s, "storage", storage ? "online" : "offline");
    cJSON_AddStringToObject(s, "scheduler", scheduler ? "online" : "offline");
    cJSON_AddStringToObject(s, "diceware", diceware ? "online" : "offline");
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)((now - w->env->started_ms) / 1000));
    cJSON_AddStringToObject(o, "started_at", started);
    http_json(req, healthy ? 200 : 503, o);
}

static void on_rate(void *data, int outcome, long retry_after)
{
    health_op *op = data;
    h2o_req_t *req = op->ref.req;
    int exempt = op->exempt;
    req_ref_release(&op->ref);
    free(op);
    if (req == NULL)
        return;
    if (outcome == RATE_LIMITED && !exempt)
        http_rate_limited(req, retry_after);
    else
        respond(req, outcome != RATE_UNAVAILABLE);
}

int health_handle(h2o_req_t *req)
{
    worker *w = worker_of(req);
    char client[HTTP_ADDR_MAX];
    health_op *op = malloc(sizeof(*op));
    if (op == NULL) {
        respond(req, 0);
        return 0;
    }
    req_ref_init(&op->ref, req);
    op->exempt = http_from_host_itself(req);
    http_client_key(req, client);
    ratelimit_check(w->store, "health", client, &w->cfg->health_rate_limit, on_rate, op);
    return 0;
}
