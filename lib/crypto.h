/* crypto.h - base64, SHA-256, randomness, and AES-256-GCM sealing of secrets and stack keys. */
#ifndef PS_CRYPTO_H
#define PS_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define CRYPTO_KEY_LEN 32

/* new: standard base64 with padding, NUL-terminated. */
char *b64_encode(const void *in, size_t len);
/* Strict standard base64 (padding required, no whitespace). *out is new (NUL-terminated past
 * *outlen). Returns false on malformed input and leaves *out NULL. */
bool b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);

/* out: 65 bytes, lowercase hex. */
void sha256_hex(const void *data, size_t len, char out[65]);
void sha256_raw(const void *data, size_t len, unsigned char out[32]);
bool crypto_random(void *buf, size_t len);

/* Seal plaintext with AES-256-GCM under key, binding aad. Returns new text
 * "v1:" + base64(nonce[12] || ciphertext || tag[16]). */
char *crypto_seal(const unsigned char key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen, const void *pt,
                  size_t ptlen);
/* Open text produced by crypto_seal. *pt is new (NUL-terminated past *ptlen). Returns false on any
 * malformed input, wrong key or wrong aad; logs nothing (callers decide). */
bool crypto_open(const unsigned char key[CRYPTO_KEY_LEN], const void *aad, size_t aadlen, const char *text,
                 size_t textlen, unsigned char **pt, size_t *ptlen);

/* Parse a master key given as 64 hex digits or base64 of 32 bytes (surrounding whitespace
 * ignored). Returns false if it is neither. */
bool crypto_parse_key(const char *s, unsigned char key[CRYPTO_KEY_LEN]);

/* Read a key (as crypto_parse_key takes it) from the first line of a file. False if the file
 * cannot be read or holds no key. */
bool crypto_read_key_file(const char *path, unsigned char key[CRYPTO_KEY_LEN]);
/* A key from its setting (value) or else its file; *given (may be NULL) says whether either was set. */
bool crypto_load_key(const char *value, const char *file, unsigned char key[CRYPTO_KEY_LEN], bool *given);

/* Wrap/unwrap a stack data key under the master key, bound to the stack id. */
char *crypto_wrap_key(const unsigned char master[CRYPTO_KEY_LEN], const char *stack_id,
                      const unsigned char datakey[CRYPTO_KEY_LEN]);
bool crypto_unwrap_key(const unsigned char master[CRYPTO_KEY_LEN], const char *stack_id, const char *wrapped,
                       unsigned char datakey[CRYPTO_KEY_LEN]);

/* The canary: a sealed known text that proves the master key at start. */
char *crypto_canary_new(const unsigned char master[CRYPTO_KEY_LEN]);
bool crypto_canary_check(const unsigned char master[CRYPTO_KEY_LEN], const char *canary);

#endif
