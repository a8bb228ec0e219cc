/* test_crypto.c - unit tests for lib/crypto.c: base64, SHA-256, sealing, key wrap, canary, key parsing. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "unit.h"

static const unsigned char key_a[CRYPTO_KEY_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const unsigned char key_b[CRYPTO_KEY_LEN] = {
    0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
#define KEY_A_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_A_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* Decode s and expect it to fail, leaving *out NULL. */
static void expect_b64_bad(const char *s)
{
    unsigned char *out = (unsigned char *)"sentinel";
    size_t len = 99;
    ck_assert_msg(!b64_decode(s, strlen(s), &out, &len), "accepted \"%s\"", s);
    ck_assert_ptr_null(out);
}

static void expect_b64(const char *s, const void *want, size_t wantlen)
{
    unsigned char *out = NULL;
    size_t len = 0;
    ck_assert_msg(b64_decode(s, strlen(s), &out, &len), "rejected \"%s\"", s);
    ck_assert_uint_eq(len, wantlen);
    ck_assert_mem_eq(out, want, wantlen);
    ck_assert_int_eq(out[len], 0);
    free(out);
}

START_TEST(b64_known_vectors)
{
    /* RFC 4648 section 10. */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        char *e = b64_encode(plain[i], strlen(plain[i]));
        ck_assert_str_eq(e, enc[i]);
        free(e);
        expect_b64(enc[i], plain[i], strlen(plain[i]));
    }
}
END_TEST

START_TEST(b64_round_trip_binary)
{
    unsigned char data[300];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + (i >> 3));
    data[0] = 0;
    data[150] = 0;
    for (size_t n = 0; n <= sizeof(data); n++) {
        char *e = b64_encode(data, n);
        ck_assert_uint_eq(strlen(e), 4 * ((n + 2) / 3));
        unsigned char *d = NULL;
        size_t dlen = 0;
        ck_assert(b64_decode(e, strlen(e), &d, &dlen));
        ck_assert_uint_eq(dlen, n);
        ck_assert_mem_eq(d, data, n);
        free(d);
        free(e);
    }
}
END_TEST

START_TEST(b64_empty_is_zero_bytes)
{
    unsigned char *out = NULL;
    size_t len = 42;
    ck_assert(b64_decode("", 0, &out, &len));
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(out[0], 0);
    free(out);
}
END_TEST

START_TEST(b64_rejects)
{
    expect_b64_bad("Zm9v!A==");     /* bad char */
    expect_b64_bad("Zm9-");         /* base64url char */
    expect_b64_bad("Zm9_");         /* base64url char */
    expect_b64_bad("Zg");           /* missing padding */
    expect_b64_bad("Zg=");          /* short padding, length not a multiple of 4 */
    expect_b64_bad("Zm9vY");        /* length not a multiple of 4 */
    expect_b64_bad("Z===");         /* too much padding */
    expect_b64_bad("====");         /* only padding */
    expect_b64_bad("Zg=a");         /* '=' then data */
    expect_b64_bad("Zg==Zm9v");     /* '=' in the middle */
    expect_b64_bad("Zm=v");         /* '=' in the middle of a group */
    expect_b64_bad("Zm9v\n");       /* trailing newline */
    expect_b64_bad("Zm9 v");        /* space inside */
    expect_b64_bad(" Zm9v");        /* leading space */
    expect_b64_bad("Zm9v\r\nZm9v"); /* line break */
    expect_b64_bad("Zh==");         /* non-zero bits under the padding */
    expect_b64_bad("Zm9=");         /* non-zero bits under the padding */
    /* An embedded NUL is a bad character, not an end. */
    unsigned char *out = NULL;
    size_t len = 0;
    ck_assert(!b64_decode("Zm9v\0AAA", 8, &out, &len));
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(sha256_vectors)
{
    char hex[65];
    sha256_hex("", 0, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    ck_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    unsigned char raw[32];
    sha256_raw("abc", 3, raw);
    ck_assert_int_eq(raw[0], 0xba);
    ck_assert_int_eq(raw[31], 0xad);
}
END_TEST

START_TEST(random_fills)
{
    unsigned char a[32] = {0}, b[32] = {0};
    ck_assert(crypto_random(a, sizeof(a)));
    ck_assert(crypto_random(b, sizeof(b)));
    ck_assert(memcmp(a, b, sizeof(a)) != 0);
    ck_assert(crypto_random(a, 0));
}
END_TEST

/* Seal then open with the same key and aad; check the text shape and the plaintext. */
static void round_trip(const void *pt, size_t ptlen, const char *aad)
{
    size_t aadlen = aad ? strlen(aad) : 0;
    char *text = crypto_seal(key_a, aad, aadlen, pt, ptlen);
    ck_assert_ptr_nonnull(text);
    ck_assert(strncmp(text, "v1:", 3) == 0);
    ck_assert_uint_eq(strlen(text), 3 + 4 * ((12 + ptlen + 16 + 2) / 3));
    unsigned char *out = NULL;
    size_t outlen = 99;
    ck_assert(crypto_open(key_a, aad, aadlen, text, strlen(text), &out, &outlen));
    ck_assert_uint_eq(outlen, ptlen);
    if (ptlen)
        ck_assert_mem_eq(out, pt, ptlen);
    ck_assert_int_eq(out[outlen], 0);
    free(out);
    free(text);
}

START_TEST(seal_open_round_trip)
{
    round_trip("hello, world", 12, "stack-1");
    round_trip("", 0, "stack-1");
    round_trip("no aad", 6, NULL);
    static const unsigned char bin[] = {0, 1, 0, 0xff, 0x80, 0, 0x7f, 0, 0, 0};
    round_trip(bin, sizeof(bin), "stack-1");
    unsigned char big[70000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (unsigned char)(i * 131 >> 2);
    round_trip(big, sizeof(big), "stack-2");
}
END_TEST

/* Expect crypto_open under key_a / aad "aad" to refuse text of textlen bytes. */
static void expect_open_bad(const char *text, size_t textlen)
{
    unsigned char *out = (unsigned char *)"sentinel";
    size_t outlen = 99;
    ck_assert(!crypto_open(key_a, "aad", 3, text, textlen, &out, &outlen));
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(outlen, 0);
}

START_TEST(open_wrong_key_or_aad)
{
    char *text = crypto_seal(key_a, "aad", 3, "secret", 6);
    ck_assert_ptr_nonnull(text);
    unsigned char *out = NULL;
    size_t outlen = 0;
    ck_assert(!crypto_open(key_b, "aad", 3, text, strlen(text), &out, &outlen));
    ck_assert_ptr_null(out);
    ck_assert(!crypto_open(key_a, "aae", 3, text, strlen(text), &out, &outlen));
    ck_assert(!crypto_open(key_a, "aa", 2, text, strlen(text), &out, &outlen));
    ck_assert(!crypto_open(key_a, NULL, 0, text, strlen(text), &out, &outlen));
    ck_assert_ptr_null(out);
    /* And the right pair still works. */
    ck_assert(crypto_open(key_a, "aad", 3, text, strlen(text), &out, &outlen));
    ck_assert_uint_eq(outlen, 6);
    free(out);
    free(text);
}
END_TEST

START_TEST(open_tampered)
{
    char *text = crypto_seal(key_a, "aad", 3, "secret message", 14);
    ck_assert_ptr_nonnull(text);
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    ck_assert(b64_decode(text + 3, strlen(text) - 3, &raw, &rawlen));
    ck_assert_uint_eq(rawlen, 12 + 14 + 16);
    /* Flip one bit in every byte position in turn: nonce, ciphertext and tag. */
    for (size_t i = 0; i < rawlen; i++) {
        raw[i] ^= 0x01;
        char *b = b64_encode(raw, rawlen);
        char *t = malloc(strlen(b) + 4);
        strcpy(t, "v1:");
        strcat(t, b);
        expect_open_bad(t, strlen(t));
        free(t);
        free(b);
        raw[i] ^= 0x01;
    }
    /* Truncated: drop the last base64 group, and cut to fewer bytes than nonce + tag. */
    size_t tl = strlen(text);
    expect_open_bad(text, tl - 4);
    expect_open_bad(text, tl - 1);
    char *b = b64_encode(raw, 27);
    char *t = malloc(strlen(b) + 4);
    strcpy(t, "v1:");
    strcat(t, b);
    expect_open_bad(t, strlen(t));
    free(t);
    free(b);
    /* Exactly nonce + tag with a wrong tag (an empty ciphertext that was never sealed). */
    b = b64_encode(raw, 28);
    t = malloc(strlen(b) + 4);
    strcpy(t, "v1:");
    strcat(t, b);
    expect_open_bad(t, strlen(t));
    free(t);
    free(b);
    /* Extra bytes appended. */
    t = malloc(tl + 5);
    memcpy(t, text, tl);
    memcpy(t + tl, "AAAA", 5);
    expect_open_bad(t, strlen(t));
    free(t);
    free(raw);
    free(text);
}
END_TEST

START_TEST(open_garbage)
{
    expect_open_bad("", 0);
    expect_open_bad("v", 1);
    expect_open_bad("v1", 2);
    expect_open_bad("v1:", 3);
    expect_open_bad("v2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 43);
    expect_open_bad("V1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 43);
    expect_open_bad("v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 43);
    expect_open_bad("v1:not base64 at all!", 21);
    expect_open_bad("v1:AAAA\nAAAA", 12);
    expect_open_bad("hello world", 11);
    /* textlen is honoured: a valid text cut short by textlen is refused. */
    char *text = crypto_seal(key_a, "aad", 3, "x", 1);
    expect_open_bad(text, 3);
    expect_open_bad(text, 10);
    free(text);
    /* Arbitrary bytes, with and without the prefix and plausible base64. */
    uint32_t seed = 12345;
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    char buf[200];
    for (int round = 0; round < 3000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % sizeof(buf);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = round % 2 ? alpha[(seed >> 16) % 65] : (char)(seed >> 16);
        }
        if (round % 3 && n >= 3)
            memcpy(buf, "v1:", 3);
        expect_open_bad(buf, n);
    }
}
END_TEST

START_TEST(seal_is_randomized)
{
    char *a = crypto_seal(key_a, "aad", 3, "same", 4);
    char *b = crypto_seal(key_a, "aad", 3, "same", 4);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_ne(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(wrap_unwrap)
{
    unsigned char datakey[CRYPTO_KEY_LEN], got[CRYPTO_KEY_LEN];
    ck_assert(crypto_random(datakey, sizeof(datakey)));
    char *w = crypto_wrap_key(key_a, "7f0c8d2e-1111-4222-8333-944455556666", datakey);
    ck_assert_ptr_nonnull(w);
    ck_assert(strncmp(w, "v1:", 3) == 0);
    memset(got, 0, sizeof(got));
    ck_assert(crypto_unwrap_key(key_a, "7f0c8d2e-1111-4222-8333-944455556666", w, got));
    ck_assert_mem_eq(got, datakey, sizeof(got));
    ck_assert(!crypto_unwrap_key(key_a, "7f0c8d2e-1111-4222-8333-944455556667", w, got));
    ck_assert(!crypto_unwrap_key(key_a, "", w, got));
    ck_assert(!crypto_unwrap_key(key_b, "7f0c8d2e-1111-4222-8333-944455556666", w, got));
    ck_assert(!crypto_unwrap_key(key_a, "7f0c8d2e-1111-4222-8333-944455556666", "v1:garbage", got));
    /* The wrap aad is namespaced: a plain seal under the stack id alone does not unwrap. */
    char *plain = crypto_seal(key_a, "s1", 2, datakey, sizeof(datakey));
    ck_assert(!crypto_unwrap_key(key_a, "s1", plain, got));
    free(plain);
    /* A correctly bound text of the wrong length is not a key. */
    const char *aad = "pulumi-state:stack-key:s1";
    char *short_key = crypto_seal(key_a, aad, strlen(aad), datakey, 16);
    ck_assert(!crypto_unwrap_key(key_a, "s1", short_key, got));
    free(short_key);
    char *right = crypto_seal(key_a, aad, strlen(aad), datakey, sizeof(datakey));
    ck_assert(crypto_unwrap_key(key_a, "s1", right, got));
    ck_assert_mem_eq(got, datakey, sizeof(got));
    free(right);
    free(w);
}
END_TEST

START_TEST(canary)
{
    char *c = crypto_canary_new(key_a);
    ck_assert_ptr_nonnull(c);
    ck_assert(strncmp(c, "v1:", 3) == 0);
    ck_assert(crypto_canary_check(key_a, c));
    ck_assert(!crypto_canary_check(key_b, c));
    ck_assert(!crypto_canary_check(key_a, ""));
    ck_assert(!crypto_canary_check(key_a, "v1:"));
    ck_assert(!crypto_canary_check(key_a, "not a canary"));
    /* Same aad, other text: refused. */
    char *other = crypto_seal(key_a, "pulumi-state:canary", 19, "something else", 14);
    ck_assert(!crypto_canary_check(key_a, other));
    free(other);
    /* The documented construction, built by hand, is accepted. */
    const char *txt = "pulumi-state master key canary v1";
    char *manual = crypto_seal(key_a, "pulumi-state:canary", 19, txt, strlen(txt));
    ck_assert(crypto_canary_check(key_a, manual));
    free(manual);
    free(c);
}
END_TEST

static void expect_key(const char *s, const unsigned char *want)
{
    unsigned char k[CRYPTO_KEY_LEN];
    memset(k, 0xaa, sizeof(k));
    ck_assert_msg(crypto_parse_key(s, k), "rejected \"%s\"", s);
    ck_assert_mem_eq(k, want, CRYPTO_KEY_LEN);
}

static void expect_key_bad(const char *s)
{
    unsigned char k[CRYPTO_KEY_LEN];
    ck_assert_msg(!crypto_parse_key(s, k), "accepted \"%s\"", s);
}

START_TEST(parse_key)
{
    expect_key(KEY_A_HEX, key_a);
    expect_key(KEY_A_HEX "\n", key_a);
    expect_key("  " KEY_A_HEX " \r\n", key_a);
    expect_key("\t000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n", key_a);
    expect_key(KEY_A_B64, key_a);
    expect_key(KEY_A_B64 "\n", key_a);
    expect_key(" " KEY_A_B64 "\r\n", key_a);

    expect_key_bad("");
    expect_key_bad("   \n");
    expect_key_bad(KEY_A_HEX "00");                                                     /* 33 bytes hex */
    expect_key_bad("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1");  /* 63 digits */
    expect_key_bad("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g"); /* not hex */
    expect_key_bad("0001020304050607 08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    expect_key_bad("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==");     /* 31 bytes */
    expect_key_bad("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ=="); /* 34 bytes */
    expect_key_bad("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");      /* no padding */
    expect_key_bad("AAECAwQFBgcICQoL DA0ODxAREhMUFRYXGBkaGxwdHh8=");    /* inner space */
    expect_key_bad("correct horse battery staple");

    /* A failed parse leaves the key untouched. */
    unsigned char k[CRYPTO_KEY_LEN];
    memset(k, 0x5a, sizeof(k));
    ck_assert(!crypto_parse_key("nope", k));
    for (size_t i = 0; i < sizeof(k); i++)
        ck_assert_int_eq(k[i], 0x5a);
}
END_TEST

static Suite *crypto_suite(void)
{
    Suite *s = suite_create("crypto");
    TCase *tc = tcase_create("base64");
    tcase_add_test(tc, b64_known_vectors);
    tcase_add_test(tc, b64_round_trip_binary);
    tcase_add_test(tc, b64_empty_is_zero_bytes);
    tcase_add_test(tc, b64_rejects);
    suite_add_tcase(s, tc);

    tc = tcase_create("digest");
    tcase_add_test(tc, sha256_vectors);
    tcase_add_test(tc, random_fills);
    suite_add_tcase(s, tc);

    tc = tcase_create("seal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, seal_open_round_trip);
    tcase_add_test(tc, open_wrong_key_or_aad);
    tcase_add_test(tc, open_tampered);
    tcase_add_test(tc, open_garbage);
    tcase_add_test(tc, seal_is_randomized);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_test(tc, wrap_unwrap);
    tcase_add_test(tc, canary);
    tcase_add_test(tc, parse_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(crypto_suite(), CK_FORK_GETENV);
}
