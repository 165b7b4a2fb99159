/* s3.c - STORAGE_URL and the S3_* settings, object names and URLs, SigV4 requests
 * prepared on a libcurl handle, the XML the answers carry, and the shredder's blocking
 * list and delete. Owns the quirks of libcurl 7.88's SigV4: see s3_prepare. */
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define SYNC_TIMEOUT_S 30 /* the shredder's requests: a stuck store must not stop its passes for long */

int s3_enabled(const cfg *c)
{
    return c->storage_url != NULL && c->storage_url[0] != '\0';
}

/* "s3://bucket[/prefix]": a DNS-style bucket (Swift and AWS both insist) and a prefix
 * of safe characters, so that no name needs encoding and none has a dot segment. */
static int parse_url(const char *v, s3_conf *out)
{
    if (strncmp(v, "s3://", 5) != 0)
        return -1;
    const char *b = v + 5, *slash = strchr(b, '/');
    size_t blen = slash != NULL ? (size_t)(slash - b) : strlen(b);
    if (blen < 3 || blen > 63 || !isalnum((unsigned char)b[0]) || !isalnum((unsigned char)b[blen - 1]))
        return -1;
    for (size_t i = 0; i < blen; i++)
        if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) && b[i] != '-' && b[i] != '.')
            return -1;
    memcpy(out->bucket, b, blen);
    out->bucket[blen] = '\0';
    out->prefix[0] = '\0';
    if (slash == NULL || slash[1] == '\0')
        return 0;
    const char *p = slash + 1;
    size_t plen = strlen(p);
    if (plen + 2 > sizeof(out->prefix))
        return -1;
    for (size_t i = 0; i < plen; i++) {
        char ch = p[i];
        if (!isalnum((unsigned char)ch) && ch != '-' && ch != '_' && ch != '/' && ch != '.')
            return -1;
        /* no empty or dot segment: libcurl would squash it, and the signature with it */
        int seg_start = i == 0 || p[i - 1] == '/';
        if (seg_start && (ch == '/' || (ch == '.' && (p[i + 1] == '/' || p[i + 1] == '\0' ||
                                                     (p[i + 1] == '.' && (p[i + 2] == '/' || p[i + 2] == '\0'))))))
            return -1;
    }
    snprintf(out->prefix, sizeof(out->prefix), "%s%s", p, p[plen - 1] == '/' ? "" : "/");
    return 0;
}

/* S3_CREDENTIALS_FILE: lines S3_ACCESS_KEY=... and S3_SECRET_KEY=..., nothing else but
 * blank lines and # comments; readable by its owner alone. */
static int read_credentials(const char *path, s3_conf *out, char *err, size_t errlen)
{
    struct stat st;
    char line[2 * S3_TEXT_MAX];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0) {
        util_errf(err, errlen, "S3_CREDENTIALS_FILE=%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        close(fd);
        util_errf(err, errlen, "S3_CREDENTIALS_FILE=%s: expected a regular file readable by its owner alone (chmod 600)",
                  path);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        util_errf(err, errlen, "S3_CREDENTIALS_FILE=%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0, n = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        n++;
        line[strcspn(line, "\r\n")] = '\0';
        char *v = strchr(line, '=');
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *dst = NULL;
        if (v != NULL && (size_t)(v - line) == 13 && strncmp(line, "S3_ACCESS_KEY", 13) == 0)
            dst = out->access_key;
        else if (v != NULL && (size_t)(v - line) == 13 && strncmp(line, "S3_SECRET_KEY", 13) == 0)
            dst = out->secret_key;
        if (dst == NULL || strlen(v + 1) >= S3_TEXT_MAX) {
            util_errf(err, errlen, "S3_CREDENTIALS_FILE=%s:%d: expected S3_ACCESS_KEY=... or S3_SECRET_KEY=...", path,
                      n);
            rc = -1;
        } else {
            snprintf(dst, S3_TEXT_MAX, "%s", v + 1);
        }
    }
    explicit_bzero(line, sizeof(line));
    fclose(f);
    return rc;
}

int s3_conf_load(s3_conf *out, const cfg *c, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (parse_url(c->storage_url, out) != 0) {
        util_errf(err, errlen,
                  "STORAGE_URL=%.200s: expected s3://bucket[/prefix] (bucket: 3 to 63 of a-z 0-9 . -; prefix: "
                  "A-Z a-z 0-9 - _ . / without empty or dot segments)",
                  c->storage_url);
        return -1;
    }
    if (c->s3_region[0] == '\0' || strlen(c->s3_region) > 64) {
        util_errf(err, errlen, "S3_REGION=%s: expected the region the store expects, e.g. us-east-1", c->s3_region);
        return -1;
    }
    snprintf(out->sigv4, sizeof(out->sigv4), "aws:amz:%s:s3", c->s3_region);
    if (c->s3_endpoint[0] != '\0') {
        if (strlen(c->s3_endpoint) >= sizeof(out->endpoint) || strchr(c->s3_endpoint + 8, '/') != NULL) {
            util_errf(err, errlen, "S3_ENDPOINT=%.200s: expected scheme://host[:port] without a path", c->s3_endpoint);
            return -1;
        }
        snprintf(out->endpoint, sizeof(out->endpoint), "%s", c->s3_endpoint);
    } else {
        snprintf(out->endpoint, sizeof(out->endpoint), "https://s3.%s.amazonaws.com", c->s3_region);
    }
    if (c->s3_credentials_file[0] != '\0') {
        if (c->s3_access_key[0] != '\0' || c->s3_secret_key[0] != '\0') {
            util_errf(err, errlen, "S3_CREDENTIALS_FILE=%s: set either it or S3_ACCESS_KEY/S3_SECRET_KEY, not both",
                      c->s3_credentials_file);
            return -1;
        }
        if (read_credentials(c->s3_credentials_file, out, err, errlen) != 0) {
            s3_conf_wipe(out);
            return -1;
        }
    } else {
        snprintf(out->access_key, sizeof(out->access_key), "%s", c->s3_access_key);
        snprintf(out->secret_key, sizeof(out->secret_key), "%s", c->s3_secret_key);
    }
    if (out->access_key[0] == '\0' || out->secret_key[0] == '\0') {
        util_errf(err, errlen, "%s: empty; STORAGE_URL needs S3_ACCESS_KEY and S3_SECRET_KEY (or S3_CREDENTIALS_FILE)",
                  out->access_key[0] == '\0' ? "S3_ACCESS_KEY" : "S3_SECRET_KEY");
        s3_conf_wipe(out);
        return -1;
    }
    out->part_size = c->s3_part_size;
    /* The largest file must fit in the parts S3 takes. */
    uint64_t parts = (c->max_file_size + c->max_file_size / 4096 + 4096 + out->part_size - 1) / out->part_size;
    if (parts > S3_PARTS_MAX) {
        util_errf(err, errlen,
                  "S3_PART_SIZE=%llu: a file of MAX_FILE_SIZE (%llu bytes) needs more than %d parts; expected at least "
                  "%llu",
                  (unsigned long long)out->part_size, (unsigned long long)c->max_file_size, S3_PARTS_MAX,
                  (unsigned long long)((c->max_file_size + c->max_file_size / 4096 + 4096) / S3_PARTS_MAX + 1));
        s3_conf_wipe(out);
        return -1;
    }
    return 0;
}

void s3_conf_wipe(s3_conf *conf)
{
    explicit_bzero(conf->secret_key, sizeof(conf->secret_key));
}

int s3_check(const cfg *c, char *err, size_t errlen)
{
    s3_conf conf;
    if (!s3_enabled(c))
        return 0;
    int rc = s3_conf_load(&conf, c, err, errlen);
    s3_conf_wipe(&conf);
    return rc;
}

int s3_url(const s3_conf *conf, const char *id, const char *query, char *out, size_t cap)
{
    int n = id != NULL ? snprintf(out, cap, "%s/%s/%s%s%s", conf->endpoint, conf->bucket, conf->prefix, id, query)
                       : snprintf(out, cap, "%s/%s/%s", conf->endpoint, conf->bucket, query);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

int s3_query_encode(const char *value, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (o + 4 > cap)
            return -1;
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return 0;
}

struct curl_slist *s3_prepare(const s3_conf *conf, CURL *e, const char *url, const char *payload_sha256_hex)
{
    char h[128];
    /* libcurl signs this header as the payload's hash, and S3 refuses a request
     * without it; UNSIGNED-PAYLOAD lets a body stream (TLS protects it in transit). */
    snprintf(h, sizeof(h), "x-amz-content-sha256: %s",
             payload_sha256_hex != NULL ? payload_sha256_hex : "UNSIGNED-PAYLOAD");
    struct curl_slist *hs = curl_slist_append(NULL, h);
    if (hs == NULL)
        return NULL;
    /* An access key may hold a colon (Swift's account:user): USERNAME/PASSWORD take it
     * whole, where "user:password" would split it. */
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, conf->sigv4) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERNAME, conf->access_key) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PASSWORD, conf->secret_key) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, hs) != CURLE_OK) {
        curl_slist_free_all(hs);
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    return hs;
}

int s3_xml_next(const char *xml, size_t len, const char *tag, size_t *pos, char *out, size_t cap)
{
    char open[64], close[64];
    int ol = snprintf(open, sizeof(open), "<%s>", tag), cl = snprintf(close, sizeof(close), "</%s>", tag);
    if (*pos >= len || ol <= 0 || cl <= 0)
        return 0;
    const char *a = memmem(xml + *pos, len - *pos, open, (size_t)ol);
    if (a == NULL)
        return 0;
    a += ol;
    const char *b = memmem(a, len - (size_t)(a - xml), close, (size_t)cl);
    if (b == NULL)
        return 0;
    size_t n = (size_t)(b - a) < cap - 1 ? (size_t)(b - a) : cap - 1;
    memcpy(out, a, n);
    out[n] = '\0';
    *pos = (size_t)(b - xml) + (size_t)cl;
    return 1;
}

int64_t s3_time(const char *iso)
{
    struct tm tm = {0};
    const char *end = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    if (end == NULL)
        return -1;
    return (int64_t)timegm(&tm);
}

/* ---- blocking calls ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} body;

static size_t body_take(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t len = size * n;
    if (b->len + len + 1 > b->cap) {
        size_t cap = (b->len + len + 1) * 2;
        char *nb = realloc(b->buf, cap);
        if (nb == NULL)
            return 0;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, len);
    b->len += len;
    b->buf[b->len] = '\0';
    return len;
}

/* One request; *status its HTTP status (0 when none came). 0, or -1 with err. */
static int sync_request(const s3_conf *conf, const char *method, const char *url, body *out, long *status, char *err,
                        size_t errlen)
{
    CURL *e = curl_easy_init();
    struct curl_slist *hs = e != NULL ? s3_prepare(conf, e, url, NULL) : NULL;
    if (hs == NULL) {
        curl_easy_cleanup(e);
        util_errf(err, errlen, "object storage: out of memory");
        return -1;
    }
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "DELETE") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_take);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)SYNC_TIMEOUT_S);
    CURLcode rc = curl_easy_perform(e);
    *status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(e);
    if (rc != CURLE_OK) {
        util_errf(err, errlen, "object storage: %s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}

int s3_sync_delete(const s3_conf *conf, const char *id, char *err, size_t errlen)
{
    char url[S3_URL_MAX];
    body b = {0};
    long status;
    if (s3_url(conf, id, "", url, sizeof(url)) != 0) {
        util_errf(err, errlen, "object storage: URL too long");
        return -1;
    }
    int rc = sync_request(conf, "DELETE", url, &b, &status, err, errlen);
    free(b.buf);
    if (rc == 0 && status != 204 && status != 200 && status != 404) {
        util_errf(err, errlen, "object storage: DELETE answered %ld", status);
        rc = -1;
    }
    return rc;
}

int s3_sync_list(const s3_conf *conf, char *token, size_t token_cap,
                 void (*each)(const char *name, int64_t modified, void *arg), void *arg, char *err, size_t errlen)
{
    char url[S3_URL_MAX], q[S3_URL_MAX], enc_tok[1024], enc_pre[3 * S3_TEXT_MAX], key[S3_TEXT_MAX * 2], mod[64];
    body b = {0};
    long status;
    /* SigV4 signs the query as written: parameters sorted by name. */
    if (s3_query_encode(conf->prefix, enc_pre, sizeof(enc_pre)) != 0 ||
        s3_query_encode(token, enc_tok, sizeof(enc_tok)) != 0 ||
        snprintf(q, sizeof(q), "?%s%s%slist-type=2&prefix=%s", token[0] != '\0' ? "continuation-token=" : "", enc_tok,
                 token[0] != '\0' ? "&" : "", enc_pre) >= (int)sizeof(q) ||
        s3_url(conf, NULL, q, url, sizeof(url)) != 0) {
        util_errf(err, errlen, "object storage: listing URL too long");
        return -1;
    }
    int rc = sync_request(conf, "GET", url, &b, &status, err, errlen);
    if (rc == 0 && status != 200) {
        util_errf(err, errlen, "object storage: listing answered %ld", status);
        rc = -1;
    }
    if (rc == 0) {
        size_t pos = 0, plen = strlen(conf->prefix);
        while (s3_xml_next(b.buf, b.len, "Contents", &pos, key, sizeof(key))) {
            size_t kp = 0, mp = 0;
            char name[S3_TEXT_MAX * 2];
            if (s3_xml_next(key, strlen(key), "Key", &kp, name, sizeof(name)) &&
                s3_xml_next(key, strlen(key), "LastModified", &mp, mod, sizeof(mod)) &&
                strncmp(name, conf->prefix, plen) == 0 && strchr(name + plen, '/') == NULL)
                each(name + plen, s3_time(mod), arg);
        }
        size_t tp = 0, trunc = 0;
        char truncated[16];
        token[0] = '\0';
        if (s3_xml_next(b.buf, b.len, "IsTruncated", &trunc, truncated, sizeof(truncated)) &&
            strcmp(truncated, "true") == 0 &&
            !s3_xml_next(b.buf, b.len, "NextContinuationToken", &tp, token, token_cap)) {
            util_errf(err, errlen, "object storage: a truncated listing without a continuation token");
            rc = -1;
        }
    }
    free(b.buf);
    return rc;
}

int s3_sync_abort_stale(const s3_conf *conf, int64_t older_than, unsigned *aborted, char *err, size_t errlen)
{
    char url[S3_URL_MAX], q[S3_URL_MAX], enc_pre[3 * S3_TEXT_MAX], item[2048], key[S3_TEXT_MAX * 2], upid[1024],
        enc_id[3 * 1024], when[64];
    body b = {0};
    long status;
    if (s3_query_encode(conf->prefix, enc_pre, sizeof(enc_pre)) != 0 ||
        snprintf(q, sizeof(q), "?prefix=%s&uploads=", enc_pre) >= (int)sizeof(q) ||
        s3_url(conf, NULL, q, url, sizeof(url)) != 0) {
        util_errf(err, errlen, "object storage: listing URL too long");
        return -1;
    }
    int rc = sync_request(conf, "GET", url, &b, &status, err, errlen);
    if (rc == 0 && status != 200) {
        util_errf(err, errlen, "object storage: listing uploads answered %ld", status);
        rc = -1;
    }
    size_t pos = 0, plen = strlen(conf->prefix);
    while (rc == 0 && s3_xml_next(b.buf, b.len, "Upload", &pos, item, sizeof(item))) {
        size_t kp = 0, ip = 0, wp = 0;
        if (!s3_xml_next(item, strlen(item), "Key", &kp, key, sizeof(key)) ||
            !s3_xml_next(item, strlen(item), "UploadId", &ip, upid, sizeof(upid)) ||
            !s3_xml_next(item, strlen(item), "Initiated", &wp, when, sizeof(when)) ||
            strncmp(key, conf->prefix, plen) != 0 || strchr(key + plen, '/') != NULL || s3_time(when) < 0 ||
            s3_time(when) >= older_than)
            continue;
        body d = {0};
        if (s3_query_encode(upid, enc_id, sizeof(enc_id)) == 0 &&
            snprintf(q, sizeof(q), "?uploadId=%s", enc_id) < (int)sizeof(q) &&
            s3_url(conf, key + plen, q, url, sizeof(url)) == 0 &&
            sync_request(conf, "DELETE", url, &d, &status, err, errlen) == 0 && (status == 204 || status == 404))
            (*aborted)++;
        free(d.buf);
    }
    free(b.buf);
    return rc;
}
