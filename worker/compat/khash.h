/* khash.h - a stand-in for the hash-table header that h2o/http2_internal.h includes:
 * Debian's libh2o-dev installs http2_internal.h but not khash.h.
 *
 * We reach HTTP/2 streams only through their requests (early.c), never through the
 * connection's stream table, so here the table is an opaque type. The one function of
 * http2_internal.h that looks inside it, h2o_http2_conn_get_stream(), fails to link
 * (rz_khash_unavailable is defined nowhere) if anything ever calls it. */
#ifndef RZ_KHASH_STANDIN_H
#define RZ_KHASH_STANDIN_H

typedef unsigned int khint_t;
typedef khint_t khiter_t;

#define khash_t(name) kh_##name##_t
#define KHASH_MAP_INIT_INT64(name, khval_t) typedef struct kh_##name##_s kh_##name##_t;

khiter_t rz_khash_unavailable(void);
#define kh_get(name, h, k) rz_khash_unavailable()
#define kh_end(h) rz_khash_unavailable()
#define kh_val(h, x) ((void)(h), (void)(x), NULL)

#endif
