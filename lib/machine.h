/* machine.h - the machine attestation API: machines registered by their TPM endorsement key
 * certificate, approved (role, hostname, address), locked, unlocked and revoked; a one-time
 * configuration document per machine; signed, expiring boot image URLs.
 *
 * States (the README has the table): pending -approve-> approved -lock-> locked -unlock-> approved;
 * revoke from every state -> revoked (final). Every other transition is a 409 naming the state. */
#ifndef PS_MACHINE_H
#define PS_MACHINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "apierror.h"
#include "audit.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "util.h"

typedef enum { MACHINE_REVOKE, MACHINE_LOCK, MACHINE_UNLOCK } MachineAction;

/* ---- validation (pure) ---- */

/* "controlplane", "worker-infra", "worker-app". */
bool machine_role_valid(const char *role);
/* A MAC address as six hex pairs split by ':' or '-' (not all zero): out gets the lowercase
 * colon form (18 bytes). */
bool machine_mac_normalize(const char *in, char out[18]);
/* A fully qualified domain name: at least two labels, each 1-63 of [a-z0-9-] (no leading or
 * trailing '-'), 253 characters at most, an optional final dot; the last label not all digits. */
bool machine_fqdn_valid(const char *name);
/* An IPv4 or IPv6 address; out gets its canonical text (INET6_ADDRSTRLEN = 46 bytes). */
bool machine_ip_normalize(const char *in, char out[46]);
/* The SHA-384 (lowercase hex, 96 digits) of the DER of the one X.509 certificate in pem. False
 * (e filled with a 400) when pem is not exactly a certificate. */
bool machine_ek_fingerprint(const char *pem, char out[97], ApiError *e);
/* The signed boot image URL of machine id valid until expires (Unix seconds): base/<id>.iso?
 * expires=<n>&signature=<hex HMAC-SHA256 of "<id>:<n>" under a key derived from master>. New. */
char *machine_iso_url(const char *base, const unsigned char master[CRYPTO_KEY_LEN], const char *id, long long expires);
/* Check such a URL: its signature under master and its expiry against now. *id_out (new, may be
 * NULL) and *expires_out are set when the signature holds; reason says why not. */
bool machine_iso_check(const char *url, const unsigned char master[CRYPTO_KEY_LEN], long long now, char **id_out,
                       long long *expires_out, const char **reason);

/* ---- the API (each change audited in its transaction) ---- */

/* POST /api/v1/register: out gets the machine and its config_token (201). */
bool machine_register(Db *db, const Config *cfg, const unsigned char *master, json_t *body, const char *actor, Audit *a,
                      Buf *out, ApiError *e);
bool machine_get(Db *db, const Config *cfg, const unsigned char *master, const char *id, Buf *out, ApiError *e);
/* GET /api/v1/machines: newest first; status and role filter when not NULL. */
bool machine_list(Db *db, const Config *cfg, const unsigned char *master, const char *status, const char *role,
                  long page, long page_size, Buf *out, ApiError *e);
/* POST .../approve {role, hostname, assigned_ip?, retain?}. */
bool machine_approve(Db *db, const Config *cfg, const unsigned char *master, const char *id, json_t *body, Audit *a,
                     Buf *out, ApiError *e);
/* POST .../revoke (idempotent), .../lock, .../unlock. */
bool machine_transition(Db *db, const Config *cfg, const unsigned char *master, const char *id, MachineAction act,
                        Audit *a, Buf *out, ApiError *e);
/* GET .../config with the machine's config token: the configuration document, once (410 after). */
bool machine_config(Db *db, const char *id, const char *token, Audit *a, Buf *out, ApiError *e);
/* POST /api/v1/iso/verify {iso_url}: {"valid", "machine_id", "expires_at", "reason"?}. */
bool machine_iso_verify(const unsigned char *master, json_t *body, Buf *out, ApiError *e);

#endif
