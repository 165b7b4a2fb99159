/* lookup.c - GET /preview/{key} (the one look at a file's details) and
 * GET /status/{key} (never consumes anything). */
#include <stdio.h>
#include <string.h>

#include "drop.h"
#include "http.h"
#include "keyed.h"
#include "util.h"

static void status_json(h2o_req_t *req, const keyed_op *op, const char *status, long long uses, long long expires,
                        int accessible)
{
    char ts[32], buf[512];
    jsonw o;
    jsonw_init(&o, buf, sizeof(buf), 1);
    jsonw_str(&o, "key", op->echo);
    jsonw_str(&o, "status", status);
    jsonw_num(&o, "remaining_uses", (double)uses);
    if (expires > 0) {
        util_iso_time(expires, ts, sizeof(ts));
        jsonw_str(&o, "expires_at", ts);
    } else {
        jsonw_null(&o, "expires_at");
    }
    jsonw_bool(&o, "is_accessible", accessible);
    jsonw_close(&o);
    http_json_w(req, 200, &o);
}

static void on_status(h2o_req_t *req, keyed_op *op, const record_access *r)
{
    if (r->outcome == RECORD_OK)
        status_json(req, op, "active", r->uses_left, r->expires, 1);
    else if (r->outcome == RECORD_EXPIRED || r->outcome == RECORD_BURNED)
        status_json(req, op, r->outcome == RECORD_EXPIRED ? "expired" : "burned", 0, r->expires, 0);
    else
        status_json(req, op, "expired_or_burned", 0, 0, 0);
}

int status_handle(h2o_req_t *req, const char *key, size_t keylen)
{
    keyed_run(req, store_status, 0, key, keylen, on_status);
    return 0;
}

static void on_preview(h2o_req_t *req, keyed_op *op, const record_access *r)
{
    if (r->outcome == RECORD_PREVIEWED) {
        http_error(req, 404, "Preview already accessed. The preview is available only once.");
        return;
    }
    if (r->outcome != RECORD_OK) {
        http_error(req, 404, "Upload not found or link expired");
        return;
    }
    drop_meta meta;
    if (keyed_open_meta(req, op, r, &meta) != 0) {
        http_error(req, 404, "Upload not found or link expired");
        return;
    }
    long long expires = r->expires, now = (long long)(util_now_ms() / 1000);
    char base[512], url[768], curl[800], ts[32];
    http_base_url(req, base, sizeof(base));
    snprintf(url, sizeof(url), "%s/download/%s", base, op->key);
    snprintf(curl, sizeof(curl), "curl -OJ %s", url);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", op->key);
    cJSON_AddStringToObject(o, "filename", meta.filename);
    cJSON_AddNumberToObject(o, "size", (double)r->size);
    cJSON_AddStringToObject(o, "mime_type", meta.mime);
    util_iso_time(expires, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "expiry", ts);
    cJSON_AddNumberToObject(o, "uses", (double)r->uses_left);
    cJSON_AddNumberToObject(o, "minutes_left", (double)(expires > now ? (expires - now) / 60 : 0));
    cJSON_AddStringToObject(o, "download_url", url);
    cJSON_AddStringToObject(o, "curl_example", curl);
    util_iso_time(r->created, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "created_at", ts);
    cJSON_AddStringToObject(o, "sha256", meta.sha256);
    http_json(req, 200, o);
}

int preview_handle(h2o_req_t *req, const char *key, size_t keylen)
{
    keyed_run(req, store_preview, 0, key, keylen, on_preview);
    return 0;
}
