/* gzip.c - bounded gzip inflate with a hard output cap, and gzip deflate, over zlib. */
#include "gzip.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util.h"

#define GZ_WINDOW (16 + MAX_WBITS) /* zlib: gzip wrapper, 32 KB window */
#define GZ_FIRST_CHUNK ((size_t)64 * 1024)

/* Hand zlib the next piece of input; avail_in is a uInt, so large inputs go in slices. */
static void feed(z_stream *zs, const unsigned char **in, size_t *left)
{
    if (zs->avail_in > 0 || *left == 0)
        return;
    uInt n = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
    zs->next_in = (unsigned char *)*in;
    zs->avail_in = n;
    *in += n;
    *left -= n;
}

/* The buffer never grows past max_out + 1 bytes: one byte over the cap is how "too big" shows, and
 * when the data fits, that byte holds the NUL. */
GzResult gz_inflate(const void *in, size_t inlen, size_t max_out, unsigned char **out, size_t *outlen)
{
    z_stream zs;
    bool zs_live = false;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    size_t limit = max_out == SIZE_MAX ? SIZE_MAX : max_out + 1;
    const unsigned char *next = in;
    size_t left = inlen;
    GzResult res = GZ_BAD;

    *out = NULL;
    *outlen = 0;
    if (inlen == 0)
        goto fail;
    memset(&zs, 0, sizeof(zs));
    int rc = inflateInit2(&zs, GZ_WINDOW);
    if (rc != Z_OK) {
        log_error("gzip: inflateInit2 failed: %s", zs.msg ? zs.msg : zError(rc));
        goto fail;
    }
    zs_live = true;
    cap = limit < GZ_FIRST_CHUNK ? limit : GZ_FIRST_CHUNK;
    buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap == limit) {
                res = GZ_TOO_BIG;
                goto fail;
            }
            cap = cap > limit / 2 ? limit : cap * 2;
            buf = xrealloc(buf, cap);
        }
        feed(&zs, &next, &left);
        size_t room = cap - len;
        zs.next_out = buf + len;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = zs.avail_out;
        rc = inflate(&zs, Z_NO_FLUSH);
        len += before - zs.avail_out;
        if (len > max_out) {
            res = GZ_TOO_BIG;
            goto fail;
        }
        if (rc == Z_STREAM_END) {
            if (zs.avail_in == 0 && left == 0)
                break;
            /* Another member follows, or garbage: the next header decides. */
            if (inflateReset(&zs) != Z_OK)
                goto fail;
            continue;
        }
        if (rc == Z_MEM_ERROR) {
            log_error("gzip: inflate out of memory");
            goto fail;
        }
        /* Z_BUF_ERROR with room left means the input ran out mid-stream (we always feed all we
         * have); Z_DATA_ERROR and Z_NEED_DICT are not a gzip stream we accept. */
        if (rc != Z_OK)
            goto fail;
    }
    if (len == cap)
        buf = xrealloc(buf, len + 1);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    res = GZ_OK;
fail:
    if (zs_live)
        inflateEnd(&zs);
    free(buf);
    return res;
}

bool gz_deflate(const void *in, size_t inlen, int level, unsigned char **out, size_t *outlen)
{
    z_stream zs;
    bool zs_live = false;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0;
    const unsigned char *next = in;
    size_t left = inlen;
    bool ok = false;

    *out = NULL;
    *outlen = 0;
    if (level < 1 || level > 9) {
        log_error("gzip: bad deflate level %d", level);
        goto fail;
    }
    memset(&zs, 0, sizeof(zs));
    int rc = deflateInit2(&zs, level, Z_DEFLATED, GZ_WINDOW, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK) {
        log_error("gzip: deflateInit2 failed: %s", zs.msg ? zs.msg : zError(rc));
        goto fail;
    }
    zs_live = true;
    /* deflateBound is exact enough that one pass normally fits; the loop grows if not. */
    cap = (size_t)deflateBound(&zs, (uLong)inlen) + 1;
    buf = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        feed(&zs, &next, &left);
        size_t room = cap - len;
        zs.next_out = buf + len;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before = zs.avail_out;
        rc = deflate(&zs, left == 0 ? Z_FINISH : Z_NO_FLUSH);
        len += before - zs.avail_out;
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            log_error("gzip: deflate failed: %s", zs.msg ? zs.msg : zError(rc));
            goto fail;
        }
    }
    if (len == cap)
        buf = xrealloc(buf, len + 1);
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    ok = true;
fail:
    if (zs_live)
        deflateEnd(&zs);
    free(buf);
    return ok;
}

bool gz_is_gzip(const void *data, size_t len)
{
    const unsigned char *p = data;
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}
