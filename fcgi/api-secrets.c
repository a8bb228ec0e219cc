/* api-secrets.c - the service secrets manager: per-stack AES-256-GCM keys under the master key. */
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

/* Load the stack and unwrap its data key. Replies and returns NULL on failure. */
static Stack *stack_key(Ctx *c, unsigned char key[CRYPTO_KEY_LEN])
{
    StackRef ref = ctx_stack(c);
    ApiError e;
    Stack *s = stack_get(c->db, &ref, &e);
    if (!s || !stack_data_key(s, c->w->master_key, c->w->old_master_key, key, &e)) {
        reply_api_error(c, &e);
        stack_free(s);
        return NULL;
    }
    return s;
}

/* base64 plaintext -> base64 of the sealed text. new, or NULL on bad base64. */
static char *seal_b64(const unsigned char key[CRYPTO_KEY_LEN], const Stack *s, const char *b64)
{
    unsigned char *pt = NULL;
    size_t ptlen = 0;
    if (!b64_decode(b64, strlen(b64), &pt, &ptlen))
        return NULL;
    char *sealed = crypto_seal(key, s->id, strlen(s->id), pt, ptlen);
    OPENSSL_cleanse(pt, ptlen);
    free(pt);
    if (!sealed)
        return NULL;
    char *out = b64_encode(sealed, strlen(sealed));
    free(sealed);
    return out;
}

typedef enum { OPEN_OK, OPEN_BAD_B64, OPEN_FAILED } OpenResult;

/* base64 of sealed text -> base64 plaintext (new). */
static OpenResult open_b64(const unsigned char key[CRYPTO_KEY_LEN], const Stack *s, const char *b64, char **out)
{
    unsigned char *ct = NULL, *pt = NULL;
    size_t ctlen = 0, ptlen = 0;
    if (!b64_decode(b64, strlen(b64), &ct, &ctlen))
        return OPEN_BAD_B64;
    bool ok = crypto_open(key, s->id, strlen(s->id), (const char *)ct, ctlen, &pt, &ptlen);
    free(ct);
    if (!ok)
        return OPEN_FAILED;
    *out = b64_encode(pt, ptlen);
    OPENSSL_cleanse(pt, ptlen);
    free(pt);
    return OPEN_OK;
}

static void reply_open_error(Ctx *c, OpenResult r)
{
    if (r == OPEN_BAD_B64)
        reply_error(c, 400, "Bad Request: the ciphertext is not valid base64");
    else
        reply_error(c, 400, "Bad Request: the ciphertext cannot be decrypted by this stack");
}

void api_encrypt(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *pt = json_string_value(json_object_get(body, "plaintext"));
    if (!pt) {
        reply_error(c, 400, "Bad Request: plaintext (base64) is required");
        return;
    }
    unsigned char key[CRYPTO_KEY_LEN];
    Stack *s = stack_key(c, key);
    if (!s)
        return;
    char *ct = seal_b64(key, s, pt);
    if (ct)
        reply_json(c, 200, json_pack("{s:s}", "ciphertext", ct));
    else
        reply_error(c, 400, "Bad Request: the plaintext is not valid base64");
    free(ct);
    OPENSSL_cleanse(key, sizeof(key));
    stack_free(s);
}

void api_decrypt(Ctx *c)
{
    json_t *body = ctx_json(c);
    if (!body)
        return;
    const char *ct = json_string_value(json_object_get(body, "ciphertext"));
    if (!ct) {
        reply_error(c, 400, "Bad Request: ciphertext (base64) is required");
        return;
    }
    unsigned char key[CRYPTO_KEY_LEN];
    Stack *s = stack_key(c, key);
    if (!s)
        return;
    char *pt = NULL;
    OpenResult r = open_b64(key, s, ct, &pt);
    if (r == OPEN_OK)
        reply_json(c, 200, json_pack("{s:s}", "plaintext", pt));
    else
        reply_open_error(c, r);
    if (pt)
        OPENSSL_cleanse(pt, strlen(pt));
    free(pt);
    OPENSSL_cleanse(key, sizeof(key));
    stack_free(s);
}

/* The array member name of body, every element a string. Replies 400 and returns NULL if not. */
static json_t *string_array(Ctx *c, json_t *body, const char *name)
{
    json_t *arr = json_object_get(body, name);
    size_t i;
    json_t *v;
    if (!json_is_array(arr))
        goto bad;
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            goto bad;
    }
    return arr;
bad:
    reply_error(c, 400, "Bad Request: %s must be an array of base64 strings", name);
    return NULL;
}

void api_batch_encrypt(Ctx *c)
{
    json_t *body = ctx_json(c);
    json_t *arr = body ? string_array(c, body, "plaintexts") : NULL;
    if (!arr)
        return;
    unsigned char key[CRYPTO_KEY_LEN];
    Stack *s = stack_key(c, key);
    if (!s)
        return;
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char *ct = seal_b64(key, s, json_string_value(v));
        if (!ct) {
            json_decref(out);
            out = NULL;
            reply_error(c, 400, "Bad Request: plaintexts[%zu] is not valid base64", i);
            break;
        }
        json_array_append_new(out, json_string(ct));
        free(ct);
    }
    if (out)
        reply_json(c, 200, json_pack("{s:o}", "ciphertexts", out));
    OPENSSL_cleanse(key, sizeof(key));
    stack_free(s);
}

void api_batch_decrypt(Ctx *c)
{
    json_t *body = ctx_json(c);
    json_t *arr = body ? string_array(c, body, "ciphertexts") : NULL;
    if (!arr)
        return;
    unsigned char key[CRYPTO_KEY_LEN];
    Stack *s = stack_key(c, key);
    if (!s)
        return;
    json_t *out = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char *pt = NULL;
        OpenResult r = open_b64(key, s, json_string_value(v), &pt);
        if (r != OPEN_OK) {
            json_decref(out);
            out = NULL;
            reply_open_error(c, r);
            break;
        }
        json_object_set_new(out, json_string_value(v), json_string(pt));
        OPENSSL_cleanse(pt, strlen(pt));
        free(pt);
    }
    if (out)
        reply_json(c, 200, json_pack("{s:o}", "plaintexts", out));
    OPENSSL_cleanse(key, sizeof(key));
    stack_free(s);
}

void api_log_decryption(Ctx *c)
{
    if (c->body_len && !ctx_json(c))
        return;
    StackRef ref = ctx_stack(c);
    ApiError e;
    Stack *s = stack_get(c->db, &ref, &e);
    if (s)
        reply_ok(c);
    else
        reply_api_error(c, &e);
    stack_free(s);
}
