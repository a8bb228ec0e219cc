/* machine.c - the machine attestation API's domain: validation, the state machine, the one-time
 * configuration token and the signed boot image URLs. */
#include "machine.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "names.h"
#include "token.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MACHINE_COLUMNS                                                                                                \
    "id, status, desired_role, role, hostname, assigned_ip, retain, ek_fingerprint, hw_serial, hw_product, hw_mac, "   \
    "config_fetched_at IS NOT NULL, extract(epoch FROM iso_expires_at)::bigint, " TS("iso_expires_at") ", " TS(        \
        "created_at") ", " TS("updated_at") ", " TS("approved_at") ", " TS("revoked_at") " "

/* ---- validation ---- */

static const char *const roles[] = {"controlplane", "worker-infra", "worker-app"};

bool machine_role_valid(const char *role)
{
    for (size_t i = 0; role && i < sizeof(roles) / sizeof(roles[0]); i++)
        if (!strcmp(role, roles[i]))
            return true;
    return false;
}

bool machine_mac_normalize(const char *in, char out[18])
{
    if (!in || strlen(in) != 17)
        return false;
    char sep = in[2];
    if (sep != ':' && sep != '-')
        return false;
    bool zero = true;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (in[i] != sep)
                return false;
            out[i] = ':';
        } else {
            if (!isxdigit((unsigned char)in[i]))
                return false;
            out[i] = (char)tolower((unsigned char)in[i]);
            zero = zero && in[i] == '0';
        }
    }
    out[17] = '\0';
    return !zero;
}

bool machine_fqdn_valid(const char *name)
{
    if (!name)
        return false;
    size_t len = strlen(name);
    if (len && name[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return false;
    int labels = 0;
    size_t start = 0;
    bool last_digits = true;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.') {
            char ch = name[i];
            if (!(isalnum((unsigned char)ch) || ch == '-') || (ch & 0x80))
                return false;
            continue;
        }
        size_t n = i - start;
        if (n == 0 || n > 63 || name[start] == '-' || name[i - 1] == '-')
            return false;
        last_digits = true;
        for (size_t k = start; k < i; k++)
            last_digits = last_digits && isdigit((unsigned char)name[k]);
        labels++;
        start = i + 1;
    }
    return labels >= 2 && !last_digits;
}

bool machine_ip_normalize(const char *in, char out[46])
{
    unsigned char addr[16];
    if (!in)
        return false;
    if (inet_pton(AF_INET, in, addr) == 1)
        return inet_ntop(AF_INET, addr, out, 46) != NULL;
    if (inet_pton(AF_INET6, in, addr) == 1)
        return inet_ntop(AF_INET6, addr, out, 46) != NULL;
    return false;
}

bool machine_ek_fingerprint(const char *pem, char out[97], ApiError *e)
{
    if (!pem || !strstr(pem, "-----BEGIN CERTIFICATE-----"))
        return api_fail(e, 400,
                        "Bad Request: ek_cert_pem must be a PEM X.509 certificate (-----BEGIN CERTIFICATE-----)");
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!cert)
        return api_fail(e, 400, "Bad Request: ek_cert_pem does not parse as an X.509 certificate");
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    X509_free(cert);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    bool ok = n > 0 && EVP_Digest(der, (size_t)n, md, &mdlen, EVP_sha384(), NULL) == 1 && mdlen == 48;
    OPENSSL_free(der);
    if (!ok)
        return api_internal(e);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return true;
}

/* A fingerprint as given (hex, either case, ':' between pairs allowed): lowercase plain hex. */
static bool fingerprint_normalize(const char *in, char out[97])
{
    size_t n = 0;
    for (const char *p = in; p && *p; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p) || n == 96)
            return false;
        out[n++] = (char)tolower((unsigned char)*p);
    }
    out[n] = '\0';
    return n == 96;
}

/* ---- signed image URLs ---- */

static void iso_signature(const unsigned char master[CRYPTO_KEY_LEN], const char *id, long long expires, char hex[65])
{
    static const char label[] = "pulumi-state iso-url v1";
    unsigned char key[32], mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), master, CRYPTO_KEY_LEN, (const unsigned char *)label, sizeof(label) - 1, key, &len);
    char msg[96];
    int m = snprintf(msg, sizeof(msg), "%s:%lld", id, expires);
    HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)msg, (size_t)m, mac, &len);
    OPENSSL_cleanse(key, sizeof(key));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

char *machine_iso_url(const char *base, const unsigned char master[CRYPTO_KEY_LEN], const char *id, long long expires)
{
    char sig[65];
    iso_signature(master, id, expires, sig);
    return xasprintf("%s/%s.iso?expires=%lld&signature=%s", base, id, expires, sig);
}

bool machine_iso_check(const char *url, const unsigned char master[CRYPTO_KEY_LEN], long long now, char **id_out,
                       long long *expires_out, const char **reason)
{
    *reason = "not a signed image URL";
    if (id_out)
        *id_out = NULL;
    const char *q = url ? strrchr(url, '?') : NULL;
    if (!q || q - url < 41 || strncmp(q - 4, ".iso", 4) != 0 || q[-41] != '/')
        return false;
    char id[37];
    memcpy(id, q - 40, 36);
    id[36] = '\0';
    if (!name_valid_uuid(id))
        return false;
    long long expires = 0;
    char sig[65];
    int used = 0;
    if (sscanf(q, "?expires=%lld&signature=%64[0-9a-f]%n", &expires, sig, &used) != 2 || q[used] != '\0' ||
        strlen(sig) != 64)
        return false;
    char want[65];
    iso_signature(master, id, expires, want);
    if (CRYPTO_memcmp(want, sig, 64) != 0) {
        *reason = "the signature does not match";
        return false;
    }
    if (id_out)
        *id_out = xstrdup(id);
    *expires_out = expires;
    if (expires <= now) {
        *reason = "the URL has expired";
        return false;
    }
    *reason = NULL;
    return true;
}

/* ---- rows ---- */

static const char *url_base(const Config *cfg)
{
    return *cfg->public_url ? cfg->public_url : cfg->base_path;
}

static json_t *nullable(PGresult *r, int i, int col)
{
    return PQgetisnull(r, i, col) ? json_null() : json_string(PQgetvalue(r, i, col));
}

/* The JSON of row i (MACHINE_COLUMNS). Never the config token or its hash. */
static json_t *machine_json(PGresult *r, int i, const Config *cfg, const unsigned char *master)
{
    const char *id = PQgetvalue(r, i, 0);
    char *image_base =
        *cfg->image_factory_url ? xstrdup(cfg->image_factory_url) : xasprintf("%s/images", url_base(cfg));
    char *iso = machine_iso_url(image_base, master, id, atoll(PQgetvalue(r, i, 12)));
    json_t *o = json_pack("{s:s, s:s, s:s}", "machine_id", id, "status", PQgetvalue(r, i, 1), "desired_role",
                          PQgetvalue(r, i, 2));
    json_object_set_new(o, "role", nullable(r, i, 3));
    json_object_set_new(o, "hostname", nullable(r, i, 4));
    json_object_set_new(o, "assigned_ip", nullable(r, i, 5));
    json_object_set_new(o, "retain", json_boolean(PQgetvalue(r, i, 6)[0] == 't'));
    json_object_set_new(o, "ek_fingerprint", json_string(PQgetvalue(r, i, 7)));
    json_object_set_new(o, "hw_serial", json_string(PQgetvalue(r, i, 8)));
    json_object_set_new(o, "hw_product", json_string(PQgetvalue(r, i, 9)));
    json_object_set_new(o, "hw_mac", json_string(PQgetvalue(r, i, 10)));
    json_object_set_new(o, "config_url", json_sprintf("%s/api/v1/machines/%s/config", url_base(cfg), id));
    json_object_set_new(o, "config_fetched", json_boolean(PQgetvalue(r, i, 11)[0] == 't'));
    json_object_set_new(o, "iso_url", json_string(iso));
    json_object_set_new(o, "iso_expires_at", json_string(PQgetvalue(r, i, 13)));
    json_object_set_new(o, "created_at", json_string(PQgetvalue(r, i, 14)));
    json_object_set_new(o, "updated_at", json_string(PQgetvalue(r, i, 15)));
    json_object_set_new(o, "approved_at", nullable(r, i, 16));
    json_object_set_new(o, "revoked_at", nullable(r, i, 17));
    free(iso);
    free(image_base);
    return o;
}

/* The row of machine id (MACHINE_COLUMNS), locked for update inside a transaction when lock; NULL
 * with e filled (404 for an unknown id). */
static PGresult *find(Db *db, const char *id, bool lock, ApiError *e)
{
    if (!name_valid_uuid(id)) {
        api_fail(e, 404, "Not Found: unknown machine");
        return NULL;
    }
    DbParam p[] = {DB_TEXT(id)};
    PGresult *r =
        db_exec(db,
                lock ? "SELECT " MACHINE_COLUMNS "FROM extension_pulumi_state_machines WHERE id = $1 FOR UPDATE"
                     : "SELECT " MACHINE_COLUMNS "FROM extension_pulumi_state_machines WHERE id = $1",
                1, p, false);
    if (!r) {
        api_internal(e);
        return NULL;
    }
    if (PQntuples(r) != 1) {
        PQclear(r);
        api_fail(e, 404, "Not Found: unknown machine");
        return NULL;
    }
    return r;
}

/* Re-read machine id and render it (after a change was committed). */
static bool render(Db *db, const Config *cfg, const unsigned char *master, const char *id, json_t *extra, Buf *out,
                   ApiError *e)
{
    PGresult *r = find(db, id, false, e);
    if (!r) {
        json_decref(extra);
        return false;
    }
    json_t *o = machine_json(r, 0, cfg, master);
    PQclear(r);
    if (extra)
        json_object_update(o, extra);
    json_decref(extra);
    return api_json_into(o, out, e);
}

/* A string member of body, or NULL (wrong type counts as absent: the caller says it is required). */
static const char *member(json_t *body, const char *name)
{
    return json_string_value(json_object_get(body, name));
}

static bool text_field(json_t *body, const char *name, size_t max, const char **out, ApiError *e)
{
    *out = member(body, name);
    if (!*out || !**out)
        return api_fail(e, 400, "Bad Request: %s (a non-empty string) is required", name);
    if (strlen(*out) > max)
        return api_fail(e, 400, "Bad Request: %s is longer than %zu characters", name, max);
    for (const unsigned char *p = (const unsigned char *)*out; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return api_fail(e, 400, "Bad Request: %s holds a control character", name);
    return true;
}

/* ---- the API ---- */

bool machine_register(Db *db, const Config *cfg, const unsigned char *master, json_t *body, const char *actor, Audit *a,
                      Buf *out, ApiError *e)
{
    const char *fp_in = member(body, "ek_fingerprint"), *pem = member(body, "ek_cert_pem");
    const char *serial, *product, *mac_in = member(body, "hw_mac"), *role = member(body, "desired_role");
    char fp[97], want[97], mac[18];
    if (!fp_in || !fingerprint_normalize(fp_in, fp))
        return api_fail(e, 400, "Bad Request: ek_fingerprint must be the SHA-384 of the EK certificate: 96 hex digits");
    if (!pem || strlen(pem) > 16384)
        return api_fail(e, 400, "Bad Request: ek_cert_pem (a PEM certificate, at most 16 KiB) is required");
    if (!machine_ek_fingerprint(pem, want, e))
        return false;
    if (strcmp(fp, want) != 0)
        return api_fail(e, 400, "Bad Request: ek_fingerprint does not match the certificate (its SHA-384 is %.16s...)",
                        want);
    if (!text_field(body, "hw_serial", 128, &serial, e) || !text_field(body, "hw_product", 128, &product, e))
        return false;
    if (!machine_mac_normalize(mac_in, mac))
        return api_fail(e, 400, "Bad Request: hw_mac must be a MAC address such as 52:54:00:12:34:56");
    if (!machine_role_valid(role))
        return api_fail(e, 400, "Bad Request: desired_role must be controlplane, worker-infra or worker-app");

    char id[37], expires[24];
    uuid_new(id);
    char *token = token_new("mcfg_");
    char *hash = token ? token_hash(token) : NULL;
    snprintf(expires, sizeof(expires), "%lld", (long long)time(NULL) + cfg->iso_url_ttl);
    bool ok = false;
    DbOutcome outcome = DB_ERROR;
    if (hash && db_begin(db)) {
        DbParam p[] = {DB_TEXT(id),  DB_TEXT(fp),   DB_TEXT(pem),  DB_TEXT(serial),  DB_TEXT(product),
                       DB_TEXT(mac), DB_TEXT(role), DB_TEXT(hash), DB_TEXT(expires), DB_TEXT(actor)};
        outcome = db_run_outcome(db,
                                 "INSERT INTO extension_pulumi_state_machines (id, ek_fingerprint, ek_cert_pem, "
                                 "hw_serial, hw_product, hw_mac, desired_role, config_token_hash, iso_expires_at, "
                                 "created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9::bigint), $10)",
                                 10, p);
        a->detail = id;
        ok = outcome == DB_OK && audit_commit(db, a);
        db_rollback(db);
    }
    /* id does not outlive this call: a refusal's audit row (written after it) has no detail. */
    if (!ok)
        a->detail = NULL;
    if (ok)
        ok = render(db, cfg, master, id, json_pack("{s:s}", "config_token", token), out, e);
    else if (outcome == DB_DUPLICATE) {
        DbParam q[] = {DB_TEXT(fp)};
        PGresult *r = db_exec(db,
                              "SELECT id, status FROM extension_pulumi_state_machines WHERE ek_fingerprint = $1 AND "
                              "status <> 'revoked'",
                              1, q, false);
        if (r && PQntuples(r) == 1)
            api_fail(e, 409, "Conflict: this EK is already registered as machine %s (status %s); revoke it first",
                     PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
        else
            api_fail(e, 409, "Conflict: this EK is already registered to a live machine");
        PQclear(r);
    } else
        api_internal(e);
    if (token)
        OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(hash);
    return ok;
}

bool machine_get(Db *db, const Config *cfg, const unsigned char *master, const char *id, Buf *out, ApiError *e)
{
    return render(db, cfg, master, id, NULL, out, e);
}

static bool status_valid(const char *s)
{
    return !strcmp(s, "pending") || !strcmp(s, "approved") || !strcmp(s, "locked") || !strcmp(s, "revoked");
}

bool machine_list(Db *db, const Config *cfg, const unsigned char *master, const char *status, const char *role,
                  long page, long page_size, Buf *out, ApiError *e)
{
    if (status && !status_valid(status))
        return api_fail(e, 400, "Bad Request: status must be pending, approved, locked or revoked");
    if (role && !machine_role_valid(role))
        return api_fail(e, 400, "Bad Request: role must be controlplane, worker-infra or worker-app");
    char lim[24], off[24];
    snprintf(lim, sizeof(lim), "%ld", page_size);
    snprintf(off, sizeof(off), "%ld", (page - 1) * page_size);
    DbParam p[] = {DB_TEXT(status), DB_TEXT(role), DB_TEXT(lim), DB_TEXT(off)};
    PGresult *r = db_exec(db,
                          "SELECT " MACHINE_COLUMNS ", count(*) OVER () FROM extension_pulumi_state_machines WHERE "
                          "($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR coalesce(role, desired_role) = "
                          "$2) ORDER BY created_at DESC, id LIMIT $3::int OFFSET $4::bigint",
                          4, p, false);
    if (!r)
        return api_internal(e);
    json_t *list = json_array();
    long long total = 0;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        json_array_append_new(list, machine_json(r, i, cfg, master));
        total = atoll(PQgetvalue(r, i, 18));
    }
    PQclear(r);
    if (n == 0 && page > 1) {
        /* Past the end: the total still counts. */
        PGresult *c = db_exec(db,
                              "SELECT count(*) FROM extension_pulumi_state_machines WHERE ($1::text IS NULL OR "
                              "status = $1) AND ($2::text IS NULL OR coalesce(role, desired_role) = $2)",
                              2, p, false);
        total = c && PQntuples(c) == 1 ? atoll(PQgetvalue(c, 0, 0)) : 0;
        PQclear(c);
    }
    return api_json_into(json_pack("{s:o, s:I, s:i, s:i}", "machines", list, "total", (json_int_t)total, "page",
                                   (int)page, "pageSize", (int)page_size),
                         out, e);
}

/* Which live machine other than id holds the hostname or the address (for the 409's message). */
static void name_holder(Db *db, const char *id, const char *hostname, const char *ip, ApiError *e)
{
    DbParam p[] = {DB_TEXT(id), DB_TEXT(hostname), DB_TEXT(ip)};
    PGresult *r = db_exec(db,
                          "SELECT id, CASE WHEN lower(hostname) = lower($2) THEN 'hostname' ELSE 'address' END FROM "
                          "extension_pulumi_state_machines WHERE id <> $1 AND status <> 'revoked' AND (lower(hostname) "
                          "= lower($2) OR assigned_ip = $3) LIMIT 1",
                          3, p, false);
    if (r && PQntuples(r) == 1)
        api_fail(e, 409, "Conflict: the %s is already assigned to machine %s", PQgetvalue(r, 0, 1),
                 PQgetvalue(r, 0, 0));
    else
        api_fail(e, 409, "Conflict: the hostname or address is already assigned to a live machine");
    PQclear(r);
}

bool machine_approve(Db *db, const Config *cfg, const unsigned char *master, const char *id, json_t *body, Audit *a,
                     Buf *out, ApiError *e)
{
    const char *role = member(body, "role"), *hostname = member(body, "hostname");
    json_t *ipj = json_object_get(body, "assigned_ip"), *retainj = json_object_get(body, "retain");
    char ip[46] = "";
    if (!machine_role_valid(role))
        return api_fail(e, 400, "Bad Request: role must be controlplane, worker-infra or worker-app");
    if (!machine_fqdn_valid(hostname))
        return api_fail(e, 400, "Bad Request: hostname must be a fully qualified domain name (host.example.com)");
    if (ipj && !json_is_null(ipj) && !machine_ip_normalize(json_string_value(ipj), ip))
        return api_fail(e, 400, "Bad Request: assigned_ip must be an IPv4 or IPv6 address");
    if (retainj && !json_is_boolean(retainj) && !json_is_null(retainj))
        return api_fail(e, 400, "Bad Request: retain must be true or false");
    char host[256];
    size_t hl = strlen(hostname);
    snprintf(host, sizeof(host), "%.*s", (int)(hl && hostname[hl - 1] == '.' ? hl - 1 : hl), hostname);
    for (char *p = host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    const char *retain = json_is_true(retainj) ? "true" : "false";
    if (!db_begin(db))
        return api_internal(e);
    PGresult *r = find(db, id, true, e);
    bool ok = false;
    DbOutcome outcome = DB_OK;
    if (r) {
        const char *status = PQgetvalue(r, 0, 1);
        bool same = !strcmp(status, "approved") && !strcmp(PQgetvalue(r, 0, 3), role) &&
                    !strcmp(PQgetvalue(r, 0, 4), host) && !strcmp(PQgetvalue(r, 0, 5), ip);
        if (!strcmp(status, "pending") || same) {
            DbParam p[] = {DB_TEXT(id), DB_TEXT(role), DB_TEXT(host), DB_TEXT(*ip ? ip : NULL), DB_TEXT(retain)};
            outcome = db_run_outcome(db,
                                     "UPDATE extension_pulumi_state_machines SET status = 'approved', role = $2, "
                                     "hostname = $3, assigned_ip = $4, retain = $5::boolean, updated_at = now(), "
                                     "approved_at = coalesce(approved_at, now()) WHERE id = $1",
                                     5, p);
            a->detail = id;
            ok = outcome == DB_OK && audit_commit(db, a);
            if (!ok && outcome == DB_OK)
                api_internal(e);
        } else if (!strcmp(status, "approved")) {
            api_fail(e, 409, "Conflict: machine %s is already approved as %s (%s); revoke it to approve it again", id,
                     PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 3));
        } else {
            api_fail(e, 409, "Conflict: machine %s is %s; only a pending machine can be approved", id, status);
        }
        PQclear(r);
    }
    db_rollback(db);
    if (outcome == DB_DUPLICATE)
        name_holder(db, id, host, ip, e);
    else if (outcome == DB_ERROR)
        api_internal(e);
    return ok && render(db, cfg, master, id, NULL, out, e);
}

bool machine_transition(Db *db, const Config *cfg, const unsigned char *master, const char *id, MachineAction act,
                        Audit *a, Buf *out, ApiError *e)
{
    if (!db_begin(db))
        return api_internal(e);
    PGresult *r = find(db, id, true, e);
    bool ok = false;
    if (r) {
        /* Each action: the state it moves from (NULL: any live one), the state it leaves the machine
         * in (asking for that state again is a no-op, so retries are safe). */
        const char *status = PQgetvalue(r, 0, 1);
        const char *from = act == MACHINE_REVOKE ? NULL : act == MACHINE_LOCK ? "approved" : "locked";
        const char *to = act == MACHINE_REVOKE ? "revoked" : act == MACHINE_LOCK ? "locked" : "approved";
        bool noop = !strcmp(status, to), allowed = noop || !from || !strcmp(status, from);
        if (!allowed)
            api_fail(e, 409, "Conflict: machine %s is %s; only %s machine can be %s", id, status,
                     act == MACHINE_LOCK ? "an approved" : "a locked", act == MACHINE_LOCK ? "locked" : "unlocked");
        PQclear(r);
        a->detail = id;
        if (allowed) {
            DbParam p[] = {DB_TEXT(id), DB_TEXT(to)};
            ok = (noop || db_run(db,
                                 "UPDATE extension_pulumi_state_machines SET status = $2, updated_at = now(), "
                                 "revoked_at = CASE WHEN $2 = 'revoked' THEN now() END WHERE id = $1",
                                 2, p)) &&
                 audit_commit(db, a);
            if (!ok)
                api_internal(e);
        }
    }
    db_rollback(db);
    return ok && render(db, cfg, master, id, NULL, out, e);
}

bool machine_config(Db *db, const char *id, const char *token, Audit *a, Buf *out, ApiError *e)
{
    if (!token || !*token)
        return api_fail(e, 401, "Unauthorized: the machine's config token is required (Authorization: Bearer ...)");
    if (!name_valid_uuid(id))
        return api_fail(e, 404, "Not Found: unknown machine");
    char *hash = token_hash(token);
    if (!db_begin(db)) {
        free(hash);
        return api_internal(e);
    }
    DbParam p[] = {DB_TEXT(id)};
    PGresult *r = db_exec(db,
                          "SELECT status, config_token_hash, config_fetched_at IS NOT NULL, coalesce(role, "
                          "desired_role), hostname, assigned_ip, ek_fingerprint, hw_mac, hw_serial FROM "
                          "extension_pulumi_state_machines WHERE id = $1 FOR UPDATE",
                          1, p, false);
    bool ok = false;
    if (!r)
        api_internal(e);
    else if (PQntuples(r) != 1)
        api_fail(e, 404, "Not Found: unknown machine");
    else if (strlen(PQgetvalue(r, 0, 1)) != 64 || CRYPTO_memcmp(PQgetvalue(r, 0, 1), hash, 64) != 0)
        api_fail(e, 403, "Forbidden: the config token is not this machine's");
    else if (!strcmp(PQgetvalue(r, 0, 0), "revoked"))
        api_fail(e, 410, "Gone: machine %s is revoked", id);
    else if (PQgetvalue(r, 0, 2)[0] == 't')
        api_fail(e, 410, "Gone: the configuration of machine %s was fetched already (the token is one-time)", id);
    else if (strcmp(PQgetvalue(r, 0, 0), "approved") != 0)
        api_fail(e, 409, "Conflict: machine %s is %s; its configuration is ready once it is approved", id,
                 PQgetvalue(r, 0, 0));
    else {
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "machine_id", id, "role", PQgetvalue(r, 0, 3),
                                "hostname", PQgetvalue(r, 0, 4), "ek_fingerprint", PQgetvalue(r, 0, 6), "hw_mac",
                                PQgetvalue(r, 0, 7), "hw_serial", PQgetvalue(r, 0, 8));
        json_object_set_new(doc, "assigned_ip", nullable(r, 0, 5));
        a->detail = id;
        ok = db_run(db,
                    "UPDATE extension_pulumi_state_machines SET config_fetched_at = now(), updated_at = now() WHERE "
                    "id = $1",
                    1, p) &&
             audit_commit(db, a);
        if (ok)
            ok = api_json_into(doc, out, e);
        else {
            json_decref(doc);
            api_internal(e);
        }
    }
    PQclear(r);
    db_rollback(db);
    free(hash);
    return ok;
}

bool machine_iso_verify(const unsigned char *master, json_t *body, Buf *out, ApiError *e)
{
    const char *url = member(body, "iso_url");
    if (!url)
        return api_fail(e, 400, "Bad Request: iso_url (a string) is required");
    char *id = NULL;
    long long expires = 0;
    const char *reason = NULL;
    bool valid = machine_iso_check(url, master, (long long)time(NULL), &id, &expires, &reason);
    json_t *o = json_pack("{s:b}", "valid", valid);
    if (id) {
        char when[32];
        time_t t = (time_t)expires;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(o, "machine_id", json_string(id));
        json_object_set_new(o, "expires_at", json_string(when));
    }
    if (reason)
        json_object_set_new(o, "reason", json_string(reason));
    free(id);
    return api_json_into(o, out, e);
}
