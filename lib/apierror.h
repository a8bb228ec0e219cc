/* apierror.h - errors as values: what a domain function in lib/ reports instead of replying. */
#ifndef PS_APIERROR_H
#define PS_APIERROR_H

#include <jansson.h>
#include <stdbool.h>

#include "util.h"

/* An HTTP status and the client-facing message ("Conflict: ..."). Domain functions fill one and
 * return false; the front end renders it once (fcgi/http.c reply_api_error, admin/ prints it). A
 * status >= 500 carries no detail for the client: the cause was logged where it happened. */
typedef struct ApiError {
    int status;
    char message[480];
} ApiError;

/* Fill e (may be NULL); always returns false, so a function can `return api_fail(e, ...)`. */
bool api_fail(ApiError *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Append o (stolen; NULL allowed) to out as compact JSON in its key order; a 500 in e when it
 * cannot be serialised. The one way a domain function renders its answer. */
bool api_json_into(json_t *o, Buf *out, ApiError *e);
/* A database or internal failure (500; the cause is logged by the caller). Returns false. */
bool api_internal(ApiError *e);

/* Messages the real CLI matches exactly (pkg/backend/httpstate), or that users know by heart. */
#define MSG_UPDATE_IN_PROGRESS "Conflict: Another update is currently in progress."
#define MSG_STACK_HAS_RESOURCES "Bad Request: Stack still contains resources."
#define MSG_UNKNOWN_UPDATE "Not Found: unknown update"
#define MSG_BAD_UPDATE_TOKEN "Forbidden: the update token is not valid for this update"

#endif
