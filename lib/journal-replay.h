/* journal-replay.h - the replayer's state, shared by journal.c (reading and applying entries),
 * journal-gen.c (generating the deployment) and journal-check.c (batch-time checks). Internal to
 * those three files. */
#ifndef PS_JOURNAL_REPLAY_H
#define PS_JOURNAL_REPLAY_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "intmap.h"

#define PROVIDER_TYPE_PREFIX "pulumi:providers:"
#define UNKNOWN_PROVIDER_ID "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

enum {
    KIND_BEGIN = 0,
    KIND_SUCCESS = 1,
    KIND_FAILURE = 2,
    KIND_REFRESH_SUCCESS = 3,
    KIND_OUTPUTS = 4,
    KIND_WRITE = 5,
    KIND_SECRETS_MANAGER = 6,
    KIND_REBUILT_BASE_STATE = 7,
    KIND_EXTENSION_PARAMETERIZE = 8,
    KIND_SNIPPETS = 9,
};

/* The members of the base deployment the replay reads; each an owned reference or NULL. */
typedef struct Base {
    json_t *resources;  /* array */
    json_t *pending;    /* pending_operations array */
    json_t *metadata;   /* object */
    json_t *secrets;    /* secrets_providers object */
    json_t *snippets;   /* array */
    json_t *extensions; /* object */
} Base;

typedef struct NewRes {
    json_t *state; /* owned reference */
    bool del;      /* deleteNew: "delete": true */
    bool pending;  /* pendingReplacementNew: "pendingReplacement": true */
} NewRes;

typedef struct Replay {
    Base base;
    size_t nbase;
    bool *to_delete;     /* toDeleteInSnapshot, per base index */
    bool *mark_delete;   /* markAsDeletion */
    bool *mark_pending;  /* markAsPendingReplacement */
    json_t **to_replace; /* toReplaceInSnapshot: owned state or NULL */
    NewRes *news;        /* newResources */
    size_t nnews, capnews;
    IntMap op_index;   /* operationID -> index in news */
    IntMap to_remove;  /* set of operationIDs */
    IntMap incomplete; /* operationID -> index in begins */
    json_t **begins;   /* owned Begin entries in order; NULL once completed */
    size_t nbegins, capbegins;
    json_t *extensions; /* ref -> extension, from ExtensionParameterize */
    bool has_refresh;
    bool byte_string;
    bool lenient; /* JOURNAL_LENIENT: skip what cannot be applied */
    size_t skipped;
    const char *server_version;
} Replay;

static inline json_t *member_of_type(json_t *obj, const char *key, json_type type)
{
    json_t *v = json_object_get(obj, key);
    return v && json_typeof(v) == type ? v : NULL;
}

/* GenerateDeployment: new DeploymentV3 object; *features new sorted array or NULL. */
json_t *journal_generate(Replay *r, json_t **features, char *err, size_t errlen);

#endif
