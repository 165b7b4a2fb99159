/* metrics.h - GET /metrics (Prometheus text) and the per-response observations behind it. */
#ifndef RZ_METRICS_H
#define RZ_METRICS_H

#include <h2o.h>

#include "shm.h"

/* Count one finished response: its status class by endpoint (the route's label,
 * worker/routes.h), its duration in the latency histogram, and (store_failed) a
 * request the metadata store failed. */
void metrics_observe(shm_state *shm, size_t endpoint, int status, double seconds, int store_failed);

/* GET /metrics: 403 unless the client is in METRICS_ALLOW. */
int metrics_handle(h2o_req_t *req);

#endif
