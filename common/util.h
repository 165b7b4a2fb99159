/* util.h - small shared helpers: clocks, timestamps, UUIDs, file-system bits. */
#ifndef RZ_UTIL_H
#define RZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

uint64_t util_now_ms(void);      /* wall clock, ms since the epoch */
uint64_t util_mono_ms(void);     /* monotonic clock, ms */
/* "2026-11-22T18:00:00Z" (whole seconds) and "...00.123Z" (ms). */
void util_iso_time(int64_t unix_s, char *out, size_t cap);
void util_iso_time_ms(uint64_t unix_ms, char *out, size_t cap);
/* Random UUID v4, 36 chars + NUL. */
void util_uuid4(char out[37]);
/* The same from 16 random bytes the caller drew (b is changed: version and variant). */
void util_uuid4_from(uint8_t b[16], char out[37]);
/* mkdir -p with mode; 0 or -1 (errno set). */
int util_mkdirs(const char *path, int mode);
/* printf into a caller's error buffer; err may be NULL or errlen 0 (nothing written). */
__attribute__((format(printf, 3, 4))) void util_errf(char *err, size_t errlen, const char *fmt, ...);

#endif
