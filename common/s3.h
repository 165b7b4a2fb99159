/* s3.h - object storage (S3 API) settings and requests: STORAGE_URL and the S3_*
 * settings read once into an s3_conf, each object's name and URL, a libcurl handle
 * made ready for a SigV4 request, the few XML answers read, and the blocking calls the
 * shredder makes (list, delete).
 *
 * An object is named <prefix><id>: flat under STORAGE_URL's prefix, so one listing by
 * prefix finds every object of ours. It holds the sealed file exactly as a file in
 * STORAGE_PATH would. The worker's calls run on its event loop (worker/s3loop.h,
 * worker/objstore.h); this module only prepares and reads, so it serves both. */
#ifndef RZ_S3_H
#define RZ_S3_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

#define S3_PART_MIN (UINT64_C(5) << 20) /* S3's smallest part but the last */
#define S3_PART_MAX (UINT64_C(5) << 30) /* and its largest */
#define S3_PARTS_MAX 1000               /* Swift's limit (S3 allows 10000) */
#define S3_URL_MAX 2048
#define S3_TEXT_MAX 256

typedef struct {
    char endpoint[S3_TEXT_MAX]; /* scheme://host[:port], no trailing slash */
    char bucket[64];
    char prefix[S3_TEXT_MAX];   /* "" or ending in '/' */
    char sigv4[S3_TEXT_MAX];    /* CURLOPT_AWS_SIGV4: aws:amz:REGION:s3 */
    char access_key[S3_TEXT_MAX];
    char secret_key[S3_TEXT_MAX];
    uint64_t part_size;
} s3_conf;

/* Is STORAGE_URL set (files live in object storage, not STORAGE_PATH)? */
int s3_enabled(const cfg *c);
/* The start-up check of STORAGE_URL and the S3_* settings, credentials file included:
 * 0, or -1 with one line naming the setting (never showing a secret). */
int s3_check(const cfg *c, char *err, size_t errlen);
/* Read the settings (and the credentials file) into out; 0 or -1 with err. */
int s3_conf_load(s3_conf *out, const cfg *c, char *err, size_t errlen);
/* Wipe the secret key. */
void s3_conf_wipe(s3_conf *conf);

/* The URL of id's object with query appended ("" for none; "?..." already sorted and
 * encoded as SigV4 signs it), or of the bucket when id is NULL. 0, or -1 if too long. */
int s3_url(const s3_conf *conf, const char *id, const char *query, char *out, size_t cap);
/* value percent-encoded as SigV4 wants a query value (RFC 3986 unreserved kept). */
int s3_query_encode(const char *value, char *out, size_t cap);

/* Make e ready for a request to url: SigV4, the credentials, and the payload hash
 * header libcurl 7.88 does not add (payload_sha256_hex, or NULL for UNSIGNED-PAYLOAD).
 * Returns the header list the handle uses (free it after the request), NULL on failure. */
struct curl_slist *s3_prepare(const s3_conf *conf, CURL *e, const char *url, const char *payload_sha256_hex);

/* The text of the first <tag>...</tag> at or after *pos in xml; *pos moves past it.
 * 1 found (copied into out, truncated to cap), 0 not found. */
int s3_xml_next(const char *xml, size_t len, const char *tag, size_t *pos, char *out, size_t cap);
/* "2026-11-30T07:00:00.000Z" as unix seconds; -1 when not that shape. */
int64_t s3_time(const char *iso);

/* ---- blocking calls (the shredder's); each returns 0, or -1 with err ---- */

/* Delete id's object; one already gone counts as deleted. */
int s3_sync_delete(const s3_conf *conf, const char *id, char *err, size_t errlen);
/* One page of objects under the prefix: for each whose name is prefix + a word,
 * each(word, last_modified, arg). *token is "" for the first page and, after the call,
 * the continuation token, or "" when that was the last page. */
int s3_sync_list(const s3_conf *conf, char *token, size_t token_cap,
                 void (*each)(const char *name, int64_t modified, void *arg), void *arg, char *err, size_t errlen);
/* Abort every multipart upload under the prefix begun before older_than (unix
 * seconds): a worker that died mid-upload leaves its parts behind. *aborted counts. */
int s3_sync_abort_stale(const s3_conf *conf, int64_t older_than, unsigned *aborted, char *err, size_t errlen);

#endif
