/* test_gzip.c - unit tests for lib/gzip.c: round trips, the output cap, bombs, and malformed streams. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "gzip.h"
#include "unit.h"

/* new: len bytes of text-like data that compresses a few times but not trivially. */
static unsigned char *make_data(size_t len)
{
    static const char *words[] = {"urn", "pulumi", "stack",    "aws:s3/bucket:Bucket", "\"id\"",  "{",      "}",
                                  ",",   "\n",     "provider", "0123456789",           "outputs", "inputs", "  "};
    unsigned char *p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(p);
    uint32_t seed = 2463534242u;
    size_t i = 0;
    while (i < len) {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        const char *w = words[seed % (sizeof(words) / sizeof(words[0]))];
        if (seed % 7 == 0) {
            p[i++] = (unsigned char)(seed >> 8);
            continue;
        }
        for (; *w && i < len; w++)
            p[i++] = (unsigned char)*w;
    }
    return p;
}

static void deflate_ok(const void *in, size_t len, int level, unsigned char **gz, size_t *gzlen)
{
    ck_assert(gz_deflate(in, len, level, gz, gzlen));
    ck_assert_ptr_nonnull(*gz);
    ck_assert(gz_is_gzip(*gz, *gzlen));
}

static void round_trip(size_t len, int level)
{
    unsigned char *data = make_data(len);
    unsigned char *gz = NULL, *out = NULL;
    size_t gzlen = 0, outlen = 0;
    deflate_ok(data, len, level, &gz, &gzlen);
    ck_assert_int_eq(gz_inflate(gz, gzlen, len + 100, &out, &outlen), GZ_OK);
    ck_assert_uint_eq(outlen, len);
    if (len)
        ck_assert_mem_eq(out, data, len);
    ck_assert_int_eq(out[outlen], 0);
    free(out);
    free(gz);
    free(data);
}

/* Expect gz_inflate to give want and leave *out NULL. */
static void expect_inflate_fail(const void *in, size_t inlen, size_t max_out, GzResult want)
{
    unsigned char *out = (unsigned char *)"sentinel";
    size_t outlen = 99;
    ck_assert_int_eq(gz_inflate(in, inlen, max_out, &out, &outlen), want);
    ck_assert_ptr_null(out);
}

START_TEST(round_trip_small)
{
    round_trip(1, 6);
    round_trip(100, 1);
    round_trip(4096, 9);
    const char *s = "{\"version\":3,\"deployment\":{}}";
    unsigned char *gz = NULL, *out = NULL;
    size_t gzlen = 0, outlen = 0;
    deflate_ok(s, strlen(s), 6, &gz, &gzlen);
    ck_assert_int_eq(gz_inflate(gz, gzlen, 1 << 20, &out, &outlen), GZ_OK);
    ck_assert_str_eq((char *)out, s);
    free(out);
    free(gz);
}
END_TEST

START_TEST(round_trip_empty)
{
    round_trip(0, 6);
    unsigned char *gz = NULL, *out = NULL;
    size_t gzlen = 0, outlen = 1;
    deflate_ok("", 0, 1, &gz, &gzlen);
    /* Even a cap of zero admits an empty body. */
    ck_assert_int_eq(gz_inflate(gz, gzlen, 0, &out, &outlen), GZ_OK);
    ck_assert_uint_eq(outlen, 0);
    ck_assert_int_eq(out[0], 0);
    free(out);
    free(gz);
}
END_TEST

START_TEST(round_trip_5mb)
{
    round_trip((size_t)5 * 1024 * 1024, 3);
    round_trip((size_t)5 * 1024 * 1024 + 17, 9);
}
END_TEST

START_TEST(deflate_bad_level)
{
    unsigned char *gz = (unsigned char *)"sentinel";
    size_t gzlen = 5;
    ck_assert(!gz_deflate("abc", 3, 0, &gz, &gzlen));
    ck_assert_ptr_null(gz);
    ck_assert(!gz_deflate("abc", 3, 10, &gz, &gzlen));
    ck_assert_ptr_null(gz);
}
END_TEST

START_TEST(is_gzip)
{
    ck_assert(gz_is_gzip("\x1f\x8b\x08", 3));
    ck_assert(gz_is_gzip("\x1f\x8b", 2));
    ck_assert(!gz_is_gzip("\x1f", 1));
    ck_assert(!gz_is_gzip("", 0));
    ck_assert(!gz_is_gzip("{\"a\":1}", 7));
    ck_assert(!gz_is_gzip("\x8b\x1f", 2));
}
END_TEST

/* new: a single gzip member holding total zero bytes, built without holding them in memory. */
static unsigned char *zero_bomb(size_t total, size_t *gzlen)
{
    static unsigned char zeros[1 << 20];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    ck_assert_int_eq(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = total / 1000 + 4096;
    unsigned char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    size_t left = total;
    int rc;
    do {
        size_t n = left < sizeof(zeros) ? left : sizeof(zeros);
        zs.next_in = zeros;
        zs.avail_in = (uInt)n;
        left -= n;
        rc = deflate(&zs, left ? Z_NO_FLUSH : Z_FINISH);
        ck_assert(rc == Z_OK || rc == Z_STREAM_END);
        ck_assert_uint_eq(zs.avail_in, 0);
        ck_assert_uint_gt(zs.avail_out, 0);
    } while (rc != Z_STREAM_END);
    *gzlen = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

START_TEST(bomb_refused)
{
    size_t gzlen = 0;
    unsigned char *bomb = zero_bomb((size_t)200 * 1024 * 1024, &gzlen);
    ck_assert_uint_lt(gzlen, 1024 * 1024);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    expect_inflate_fail(bomb, gzlen, 1024 * 1024, GZ_TOO_BIG);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* Stopping at the cap means inflating ~1 MB, not 200 MB. */
    ck_assert_msg(secs < 2.0, "bomb took %.2fs", secs);
    free(bomb);
}
END_TEST

START_TEST(cap_boundaries)
{
    size_t len = 300000;
    unsigned char *data = make_data(len);
    unsigned char *gz = NULL, *out = NULL;
    size_t gzlen = 0, outlen = 0;
    deflate_ok(data, len, 6, &gz, &gzlen);
    /* Exactly the size: fits. */
    ck_assert_int_eq(gz_inflate(gz, gzlen, len, &out, &outlen), GZ_OK);
    ck_assert_uint_eq(outlen, len);
    ck_assert_mem_eq(out, data, len);
    ck_assert_int_eq(out[len], 0);
    free(out);
    /* One short: too big. */
    expect_inflate_fail(gz, gzlen, len - 1, GZ_TOO_BIG);
    expect_inflate_fail(gz, gzlen, 0, GZ_TOO_BIG);
    expect_inflate_fail(gz, gzlen, 1, GZ_TOO_BIG);
    /* No practical cap. */
    ck_assert_int_eq(gz_inflate(gz, gzlen, SIZE_MAX, &out, &outlen), GZ_OK);
    ck_assert_uint_eq(outlen, len);
    free(out);
    free(gz);

    /* Small bodies around the first internal chunk size. */
    for (size_t n = 65534; n <= 65538; n++) {
        deflate_ok(data, n, 1, &gz, &gzlen);
        ck_assert_int_eq(gz_inflate(gz, gzlen, n, &out, &outlen), GZ_OK);
        ck_assert_uint_eq(outlen, n);
        ck_assert_mem_eq(out, data, n);
        free(out);
        expect_inflate_fail(gz, gzlen, n - 1, GZ_TOO_BIG);
        free(gz);
    }
    free(data);
}
END_TEST

START_TEST(truncated)
{
    size_t len = 50000;
    unsigned char *data = make_data(len);
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    deflate_ok(data, len, 6, &gz, &gzlen);
    /* Every cut from the header to the last trailer byte is refused. */
    for (size_t cut = 1; cut < gzlen; cut += (cut < 64 || cut > gzlen - 64) ? 1 : 97)
        expect_inflate_fail(gz, cut, len, GZ_BAD);
    free(gz);
    free(data);
}
END_TEST

START_TEST(not_gzip)
{
    expect_inflate_fail("", 0, 1000, GZ_BAD);
    expect_inflate_fail("{\"a\":1}", 7, 1000, GZ_BAD);
    expect_inflate_fail("\x1f", 1, 1000, GZ_BAD);
    expect_inflate_fail("\x1f\x8b", 2, 1000, GZ_BAD);
    expect_inflate_fail("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xff\xff\xff\xff", 14, 1000, GZ_BAD);
    /* A raw zlib stream (not gzip) is refused too. */
    unsigned char z[64];
    uLongf zlen = sizeof(z);
    ck_assert_int_eq(compress(z, &zlen, (const Bytef *)"hello", 5), Z_OK);
    expect_inflate_fail(z, zlen, 1000, GZ_BAD);
    /* Corrupt CRC. */
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    deflate_ok("hello hello hello", 17, 6, &gz, &gzlen);
    gz[gzlen - 8] ^= 0xff;
    expect_inflate_fail(gz, gzlen, 1000, GZ_BAD);
    gz[gzlen - 8] ^= 0xff;
    /* Wrong length in the trailer. */
    gz[gzlen - 4] ^= 0x01;
    expect_inflate_fail(gz, gzlen, 1000, GZ_BAD);
    free(gz);
    /* Arbitrary bytes after a gzip magic never crash. */
    unsigned char junk[512];
    uint32_t seed = 99;
    for (int round = 0; round < 2000; round++) {
        size_t n = 2 + (size_t)(round % 500);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            junk[i] = (unsigned char)(seed >> 16);
        }
        junk[0] = 0x1f;
        junk[1] = 0x8b;
        if (n > 2)
            junk[2] = 8;
        unsigned char *out = NULL;
        size_t outlen = 0;
        GzResult r = gz_inflate(junk, n, 4096, &out, &outlen);
        ck_assert(r == GZ_BAD || r == GZ_TOO_BIG || r == GZ_OK);
        ck_assert(r == GZ_OK ? out != NULL : out == NULL);
        free(out);
    }
}
END_TEST

START_TEST(trailing_garbage)
{
    const char *s = "some body";
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    deflate_ok(s, strlen(s), 6, &gz, &gzlen);
    unsigned char *buf = malloc(gzlen + 16);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, gz, gzlen);
    memcpy(buf + gzlen, "garbage", 7);
    expect_inflate_fail(buf, gzlen + 7, 1000, GZ_BAD);
    memset(buf + gzlen, 0, 8);
    expect_inflate_fail(buf, gzlen + 1, 1000, GZ_BAD);
    expect_inflate_fail(buf, gzlen + 8, 1000, GZ_BAD);
    buf[gzlen] = 0x1f;
    expect_inflate_fail(buf, gzlen + 1, 1000, GZ_BAD);
    buf[gzlen + 1] = 0x8b;
    expect_inflate_fail(buf, gzlen + 2, 1000, GZ_BAD);
    free(buf);
    free(gz);
}
END_TEST

START_TEST(concatenated)
{
    const char *a = "first member, ";
    size_t blen = 100000;
    unsigned char *b = make_data(blen);
    unsigned char *ga = NULL, *gb = NULL, *ge = NULL, *out = NULL;
    size_t galen = 0, gblen = 0, gelen = 0, outlen = 0;
    deflate_ok(a, strlen(a), 6, &ga, &galen);
    deflate_ok(b, blen, 6, &gb, &gblen);
    deflate_ok("", 0, 6, &ge, &gelen);
    size_t total = galen + gelen + gblen + galen;
    unsigned char *cat = malloc(total);
    ck_assert_ptr_nonnull(cat);
    memcpy(cat, ga, galen);
    memcpy(cat + galen, ge, gelen);
    memcpy(cat + galen + gelen, gb, gblen);
    memcpy(cat + galen + gelen + gblen, ga, galen);
    size_t want = strlen(a) + blen + strlen(a);
    ck_assert_int_eq(gz_inflate(cat, total, want, &out, &outlen), GZ_OK);
    ck_assert_uint_eq(outlen, want);
    ck_assert_mem_eq(out, a, strlen(a));
    ck_assert_mem_eq(out + strlen(a), b, blen);
    ck_assert_mem_eq(out + strlen(a) + blen, a, strlen(a));
    ck_assert_int_eq(out[outlen], 0);
    free(out);
    /* The cap counts across members. */
    expect_inflate_fail(cat, total, want - 1, GZ_TOO_BIG);
    /* A truncated second member is still truncated. */
    expect_inflate_fail(cat, galen + gelen + gblen / 2, want, GZ_BAD);
    free(cat);
    free(ge);
    free(gb);
    free(ga);
    free(b);
}
END_TEST

static Suite *gzip_suite(void)
{
    Suite *s = suite_create("gzip");
    TCase *tc = tcase_create("round_trip");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trip_small);
    tcase_add_test(tc, round_trip_empty);
    tcase_add_test(tc, round_trip_5mb);
    tcase_add_test(tc, deflate_bad_level);
    tcase_add_test(tc, is_gzip);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bomb_refused);
    tcase_add_test(tc, cap_boundaries);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, truncated);
    tcase_add_test(tc, not_gzip);
    tcase_add_test(tc, trailing_garbage);
    tcase_add_test(tc, concatenated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(gzip_suite(), CK_FORK_GETENV);
}
