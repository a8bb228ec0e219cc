/* crypto.c - strict base64, SHA-256, randomness, and AES-256-GCM sealing over OpenSSL libcrypto. */
#include "crypto.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define SEAL_PREFIX "v1:"
#define SEAL_PREFIX_LEN 3
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN 16
#define WRAP_AAD_PREFIX "pulumi-state:stack-key:"
#define CANARY_AAD "pulumi-state:canary"
#define CANARY_TEXT "pulumi-state master key canary v1"

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Log the failing OpenSSL call with the first queued error, and clear the queue. */
static void log_openssl(const char *what)
{
    unsigned long e = ERR_get_error();
    char msg[256] = "unknown error";
    if (e)
        ERR_error_string_n(e, msg, sizeof(msg));
    log_error("crypto: %s failed: %s", what, msg);
    ERR_clear_error();
}

char *b64_encode(const void *in, size_t len)
{
    const unsigned char *p = in;
    /* No overflow: an object is at most PTRDIFF_MAX bytes, and 4/3 of that fits a size_t. */
    char *out = xmalloc(4 * ((len + 2) / 3) + 1);
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8) | p[i + 2];
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (len - i == 1) {
        unsigned long v = (unsigned long)p[i] << 16;
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (len - i == 2) {
        unsigned long v = ((unsigned long)p[i] << 16) | ((unsigned long)p[i + 1] << 8);
        *o++ = b64_alphabet[(v >> 18) & 63];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

/* The 6-bit value of a base64 digit, or -1 (padding, whitespace and anything else). */
static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict: length a multiple of 4, '=' only as the last one or two characters, no whitespace, and
 * the unused bits before padding must be zero (so every byte string has exactly one encoding). */
bool b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *buf = NULL;
    *out = NULL;
    *outlen = 0;
    if (inlen % 4 != 0)
        goto fail;
    size_t pad = 0;
    if (inlen >= 4 && s[inlen - 1] == '=')
        pad = s[inlen - 2] == '=' ? 2 : 1;
    size_t n = inlen / 4 * 3 - pad;
    buf = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < inlen; i += 4) {
        bool last = i + 4 == inlen;
        size_t digits = last ? 4 - pad : 4;
        unsigned long v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = 0;
            if (j < digits) {
                d = b64_value(s[i + j]);
                if (d < 0)
                    goto fail;
            }
            v = (v << 6) | (unsigned long)d;
        }
        buf[o++] = (unsigned char)(v >> 16);
        if (digits >= 3)
            buf[o++] = (unsigned char)(v >> 8);
        if (digits == 4)
            buf[o++] = (unsigned char)v;
        /* Non-canonical: bits dropped by the padding must be zero. */
        if ((digits == 2 && (v & 0xffff)) || (digits == 3 && (v & 0xff)))
            goto fail;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return true;
fail:
    free(buf);
    return false;
}

void sha256_raw(const void *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32) {
        /* Callers cannot check; a wrong digest would be worse than stopping. */
        log_openssl("EVP_Digest(SHA-256)");
        abort();
    }
}

void sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char raw[32];
    sha256_raw(data, len, raw);
    hex_encode(raw, sizeof(raw), out);
}

bool crypto_random(void *buf, size_t len)
{
    unsigned char *p = buf;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(p, n) != 1) {
            log_openssl("RAND_bytes");
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* NULL only when OpenSSL itself fails (logged) or the input exceeds what EVP takes (INT_MAX). */
char *crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen, const void *pt, size_t ptlen)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    char *b64 = NULL;
    char *text = NULL;
    int n = 0;

    if (ptlen > (size_t)INT_MAX - GCM_NONCE_LEN - GCM_TAG_LEN || aadlen > (size_t)INT_MAX) {
        log_error("crypto: seal input too large (%zu bytes, aad %zu)", ptlen, aadlen);
        goto fail;
    }
    rawlen = GCM_NONCE_LEN + ptlen + GCM_TAG_LEN;
    raw = xmalloc(rawlen);
    unsigned char *nonce = raw;
    unsigned char *ct = raw + GCM_NONCE_LEN;
    unsigned char *tag = ct + ptlen;
    if (!crypto_random(nonce, GCM_NONCE_LEN))
        goto fail;
    if (!(ctx = EVP_CIPHER_CTX_new())) {
        log_openssl("EVP_CIPHER_CTX_new");
        goto fail;
    }
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) {
        log_openssl("AES-256-GCM encrypt init");
        goto fail;
    }
    if (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1) {
        log_openssl("AES-256-GCM aad");
        goto fail;
    }
    if (ptlen > 0 && (EVP_EncryptUpdate(ctx, ct, &n, pt, (int)ptlen) != 1 || (size_t)n != ptlen)) {
        log_openssl("AES-256-GCM encrypt");
        goto fail;
    }
    if (EVP_EncryptFinal_ex(ctx, ct + ptlen, &n) != 1 || n != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag) != 1) {
        log_openssl("AES-256-GCM finish");
        goto fail;
    }
    b64 = b64_encode(raw, rawlen);
    text = xasprintf(SEAL_PREFIX "%s", b64);
fail:
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    free(b64);
    return text;
}

bool crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen, const char *text,
                 size_t textlen, unsigned char **pt, size_t *ptlen)
{
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    unsigned char *out = NULL;
    size_t ctlen = 0;
    bool ok = false;
    int n = 0;

    *pt = NULL;
    *ptlen = 0;
    if (textlen < SEAL_PREFIX_LEN || memcmp(text, SEAL_PREFIX, SEAL_PREFIX_LEN) != 0)
        goto fail;
    if (!b64_decode(text + SEAL_PREFIX_LEN, textlen - SEAL_PREFIX_LEN, &raw, &rawlen))
        goto fail;
    if (rawlen < GCM_NONCE_LEN + GCM_TAG_LEN || rawlen > (size_t)INT_MAX || aadlen > (size_t)INT_MAX)
        goto fail;
    ctlen = rawlen - GCM_NONCE_LEN - GCM_TAG_LEN;
    const unsigned char *nonce = raw;
    const unsigned char *ct = raw + GCM_NONCE_LEN;
    unsigned char *tag = raw + GCM_NONCE_LEN + ctlen;
    out = xmalloc(ctlen + 1);
    if (!(ctx = EVP_CIPHER_CTX_new())) {
        log_openssl("EVP_CIPHER_CTX_new");
        goto fail;
    }
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) {
        log_openssl("AES-256-GCM decrypt init");
        goto fail;
    }
    if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1) {
        log_openssl("AES-256-GCM aad");
        goto fail;
    }
    if (ctlen > 0 && (EVP_DecryptUpdate(ctx, out, &n, ct, (int)ctlen) != 1 || (size_t)n != ctlen)) {
        log_openssl("AES-256-GCM decrypt");
        goto fail;
    }
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag) != 1) {
        log_openssl("AES-256-GCM set tag");
        goto fail;
    }
    /* Failing here means a wrong key, wrong aad or altered text: bad input, so not logged. */
    if (EVP_DecryptFinal_ex(ctx, out + ctlen, &n) != 1) {
        ERR_clear_error();
        goto fail;
    }
    out[ctlen] = '\0';
    *pt = out;
    *ptlen = ctlen;
    out = NULL;
    ok = true;
fail:
    EVP_CIPHER_CTX_free(ctx);
    free(raw);
    if (out) {
        /* Unauthenticated plaintext must not linger either. */
        OPENSSL_cleanse(out, ctlen + 1);
        free(out);
    }
    return ok;
}

/* Exactly 2*CRYPTO_KEY_LEN hex digits, either case. */
static bool parse_hex_key(const char *s, size_t len, unsigned char key[CRYPTO_KEY_LEN])
{
    return len == 2 * CRYPTO_KEY_LEN && hex_decode(s, len, key);
}

bool crypto_parse_key(const char *s, unsigned char key[CRYPTO_KEY_LEN])
{
    unsigned char *dec = NULL;
    size_t declen = 0;
    bool ok = false;

    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)*s))
        s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (parse_hex_key(s, len, key))
        return true;
    if (!b64_decode(s, len, &dec, &declen) || declen != CRYPTO_KEY_LEN)
        goto fail;
    memcpy(key, dec, CRYPTO_KEY_LEN);
    ok = true;
fail:
    if (dec) {
        OPENSSL_cleanse(dec, declen);
        free(dec);
    }
    return ok;
}

char *crypto_wrap_key(const unsigned char master[CRYPTO_KEY_LEN], const char *stack_id,
                      const unsigned char datakey[CRYPTO_KEY_LEN])
{
    char *aad = xasprintf(WRAP_AAD_PREFIX "%s", stack_id);
    char *text = crypto_seal(master, aad, strlen(aad), datakey, CRYPTO_KEY_LEN);
    free(aad);
    return text;
}

bool crypto_unwrap_key(const unsigned char master[CRYPTO_KEY_LEN], const char *stack_id, const char *wrapped,
                       unsigned char datakey[CRYPTO_KEY_LEN])
{
    unsigned char *pt = NULL;
    size_t ptlen = 0;
    bool ok = false;
    char *aad = xasprintf(WRAP_AAD_PREFIX "%s", stack_id);
    if (!crypto_open(master, aad, strlen(aad), wrapped, strlen(wrapped), &pt, &ptlen) || ptlen != CRYPTO_KEY_LEN)
        goto fail;
    memcpy(datakey, pt, CRYPTO_KEY_LEN);
    ok = true;
fail:
    if (pt) {
        OPENSSL_cleanse(pt, ptlen);
        free(pt);
    }
    free(aad);
    return ok;
}

char *crypto_canary_new(const unsigned char master[CRYPTO_KEY_LEN])
{
    return crypto_seal(master, CANARY_AAD, strlen(CANARY_AAD), CANARY_TEXT, strlen(CANARY_TEXT));
}

bool crypto_canary_check(const unsigned char master[CRYPTO_KEY_LEN], const char *canary)
{
    unsigned char *pt = NULL;
    size_t ptlen = 0;
    if (!crypto_open(master, CANARY_AAD, strlen(CANARY_AAD), canary, strlen(canary), &pt, &ptlen))
        return false;
    bool ok = ptlen == strlen(CANARY_TEXT) && memcmp(pt, CANARY_TEXT, ptlen) == 0;
    free(pt);
    return ok;
}

bool crypto_read_key_file(const char *path, unsigned char key[CRYPTO_KEY_LEN])
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return false;
    char line[256] = "";
    bool ok = fgets(line, sizeof(line), f) != NULL && crypto_parse_key(line, key);
    OPENSSL_cleanse(line, sizeof(line));
    fclose(f);
    return ok;
}

bool crypto_load_key(const char *value, const char *file, unsigned char key[CRYPTO_KEY_LEN], bool *given)
{
    if (given)
        *given = *value || *file;
    if (*value)
        return crypto_parse_key(value, key);
    return *file && crypto_read_key_file(file, key);
}
