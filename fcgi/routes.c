/* routes.c - the route table: every call the CLI makes, and the original design's aliases. */
#include "api.h"

#define STACK "/api/stacks/:org/:project/:stack"
/* The CLI always uses "update" after the stack; "updates" is the original design's alias. */
#define UPD STACK "/update|updates/:update"

/* First match wins: literal routes come before the ones with a capture in the same place. */
const Route api_routes[] = {
    /* Operations, without authentication (api-ops.c). */
    {"GET", "/healthz", AUTH_NONE, ROLE_READ, ROUTE_NODB, NULL, api_healthz},
    {"GET", "/readyz", AUTH_NONE, ROLE_READ, ROUTE_NODB, NULL, api_readyz},
    {"GET", "/metrics", AUTH_NONE, ROLE_READ, ROUTE_NODB, NULL, api_metrics},

    {"GET", "/api/user", AUTH_USER, ROLE_READ, 0, NULL, api_get_user},
    {"GET", "/api/user/organizations/default", AUTH_USER, ROLE_READ, 0, NULL, api_get_default_org},
    {"GET", "/api/capabilities", AUTH_USER, ROLE_READ, 0, NULL, api_get_capabilities},
    {"GET", "/api/user/stacks", AUTH_USER, ROLE_READ, 0, NULL, api_list_stacks},

    {"HEAD", "/api/stacks/:org/:project", AUTH_USER, ROLE_READ, 0, NULL, api_project_exists},
    {"POST", "/api/stacks/:org/:project", AUTH_USER, ROLE_WRITE, ROUTE_AUDIT, "stack.create", api_create_stack},

    {"GET", STACK, AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_get_stack},
    {"DELETE", STACK, AUTH_USER, ROLE_ADMIN, ROUTE_STACK | ROUTE_AUDIT, "stack.delete", api_delete_stack},
    {"PATCH", STACK "/tags", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "stack.tags", api_update_tags},
    {"POST", STACK "/rename", AUTH_USER, ROLE_ADMIN, ROUTE_STACK | ROUTE_AUDIT, "stack.rename", api_rename_stack},
    {"GET", STACK "/export", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_export},
    {"GET", STACK "/export/:version", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_export_version},
    {"POST", STACK "/import", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "stack.import", api_import},
    {"GET", STACK "/updates", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_history},
    {"GET", STACK "/updates/latest", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_latest_update},

    {"POST", STACK "/encrypt", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "secrets.encrypt", api_encrypt},
    {"POST", STACK "/decrypt", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "secrets.decrypt", api_decrypt},
    {"POST", STACK "/batch-encrypt", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "secrets.batch-encrypt",
     api_batch_encrypt},
    {"POST", STACK "/batch-decrypt", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "secrets.batch-decrypt",
     api_batch_decrypt},
    {"POST", STACK "/decrypt/log-decryption", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT,
     "secrets.log-decryption", api_log_decryption},
    {"POST", STACK "/decrypt/log-batch-decryption", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT,
     "secrets.log-batch-decryption", api_log_decryption},

    /* Server-side deployments (run by pulumi-state-agent). */
    {"POST", STACK "/deployments", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "deployment.create",
     api_deploy_create},
    {"GET", STACK "/deployments", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_deploy_list},
    {"GET", STACK "/deployments/settings", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_deploy_settings_get},
    {"POST", STACK "/deployments/settings", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "deployment.settings",
     api_deploy_settings_set},
    {"PUT", STACK "/deployments/settings", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "deployment.settings",
     api_deploy_settings_set},
    {"DELETE", STACK "/deployments/settings", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "deployment.settings",
     api_deploy_settings_delete},
    {"POST", STACK "/deployments/settings/encrypt", AUTH_USER, ROLE_WRITE, ROUTE_STACK, NULL,
     api_deploy_settings_encrypt},
    {"GET", STACK "/deployments/version/:version", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_deploy_get_version},
    {"GET", STACK "/deployments/:id", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_deploy_get},
    {"GET", STACK "/deployments/:id/logs", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_deploy_logs},
    {"GET", STACK "/deployments/:id/updates", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_deploy_updates},
    {"POST", STACK "/deployments/:id/cancel", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "deployment.cancel",
     api_deploy_cancel},
    {"DELETE", STACK "/deployments/:id/cancel", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "deployment.cancel",
     api_deploy_cancel},

    /* The machine attestation API (lib/machine.c). */
    {"POST", "/api/v1/register", AUTH_USER, ROLE_WRITE, ROUTE_MACHINE | ROUTE_AUDIT, "machine.register",
     api_machine_register},
    {"GET", "/api/v1/machines", AUTH_USER, ROLE_READ, ROUTE_MACHINE, NULL, api_machine_list},
    {"GET", "/api/v1/machines/:id", AUTH_USER, ROLE_READ, ROUTE_MACHINE, NULL, api_machine_get},
    {"POST", "/api/v1/machines/:id/approve", AUTH_USER, ROLE_WRITE, ROUTE_MACHINE | ROUTE_AUDIT, "machine.approve",
     api_machine_approve},
    {"POST", "/api/v1/machines/:id/revoke", AUTH_USER, ROLE_ADMIN, ROUTE_MACHINE | ROUTE_AUDIT, "machine.revoke",
     api_machine_revoke},
    {"POST", "/api/v1/machines/:id/lock", AUTH_USER, ROLE_ADMIN, ROUTE_MACHINE | ROUTE_AUDIT, "machine.lock",
     api_machine_lock},
    {"POST", "/api/v1/machines/:id/unlock", AUTH_USER, ROLE_ADMIN, ROUTE_MACHINE | ROUTE_AUDIT, "machine.unlock",
     api_machine_unlock},
    /* The machine itself, with its one-time config token (Authorization: Bearer). */
    {"GET", "/api/v1/machines/:id/config", AUTH_NONE, ROLE_READ, ROUTE_MACHINE | ROUTE_AUDIT, "machine.config",
     api_machine_config},
    {"POST", "/api/v1/iso/verify", AUTH_USER, ROLE_READ, ROUTE_MACHINE, NULL, api_iso_verify},

    /* The update lifecycle. */
    {"POST", STACK "/update|preview|refresh|destroy", AUTH_USER, ROLE_WRITE, ROUTE_STACK, NULL, api_create_update},
    {"POST", UPD, AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "update.start", api_start_update},
    {"GET", UPD, AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_get_update},
    {"POST", UPD "/cancel", AUTH_USER, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "update.cancel", api_cancel_update},
    {"GET", UPD "/events", AUTH_USER, ROLE_READ, ROUTE_STACK, NULL, api_get_events},
    {"POST", UPD "/renew_lease", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK, NULL, api_renew_lease},
    {"POST", UPD "/complete", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK | ROUTE_AUDIT, "update.complete",
     api_complete_update},
    {"PATCH", UPD "/checkpoint", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK, NULL, api_checkpoint},
    {"PATCH", UPD "/checkpointverbatim", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK, NULL, api_checkpoint_verbatim},
    {"PATCH", UPD "/checkpointdelta", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK, NULL, api_checkpoint_delta},
    {"PATCH", UPD "/journalentries", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK, NULL, api_journal_entries},
    {"POST", UPD "/events/batch", AUTH_UPDATE, ROLE_WRITE, ROUTE_STACK, NULL, api_post_events},
    {NULL, NULL, AUTH_NONE, ROLE_READ, 0, NULL, NULL},
};
