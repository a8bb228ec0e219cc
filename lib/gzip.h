/* gzip.h - bounded gzip inflate (request bodies) and deflate (stored versions). */
#ifndef PS_GZIP_H
#define PS_GZIP_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { GZ_OK, GZ_BAD, GZ_TOO_BIG } GzResult;

/* Inflate a gzip stream (one member or several concatenated). Stops and returns GZ_TOO_BIG as
 * soon as more than max_out bytes would be produced, without allocating past that. *out is new
 * and NUL-terminated past *outlen on GZ_OK, NULL otherwise. Trailing garbage is GZ_BAD. */
GzResult gz_inflate(const void *in, size_t inlen, size_t max_out, unsigned char **out, size_t *outlen);
/* Deflate into a gzip stream at level (1..9). *out is new. */
bool gz_deflate(const void *in, size_t inlen, int level, unsigned char **out, size_t *outlen);
/* True if data starts with the gzip magic. */
bool gz_is_gzip(const void *data, size_t len);

#endif
