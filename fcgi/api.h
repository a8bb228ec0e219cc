/* api.h - the route table and every API handler, grouped by the file that implements them. */
#ifndef PS_API_H
#define PS_API_H

#include "http.h"
#include "router.h"

extern const Route api_routes[];

/* api-user.c */
void api_get_user(Ctx *c);
void api_get_default_org(Ctx *c);
void api_get_capabilities(Ctx *c);
void api_list_stacks(Ctx *c);

/* api-stacks.c */
void api_project_exists(Ctx *c);
void api_create_stack(Ctx *c);
void api_get_stack(Ctx *c);
void api_delete_stack(Ctx *c);
void api_update_tags(Ctx *c);
void api_rename_stack(Ctx *c);
void api_export(Ctx *c);
void api_export_version(Ctx *c);
void api_import(Ctx *c);

/* api-updates.c */
void api_create_update(Ctx *c);
void api_start_update(Ctx *c);
void api_get_update(Ctx *c);
void api_renew_lease(Ctx *c);
void api_complete_update(Ctx *c);
void api_cancel_update(Ctx *c);

/* api-checkpoints.c */
void api_checkpoint(Ctx *c);
void api_checkpoint_verbatim(Ctx *c);
void api_checkpoint_delta(Ctx *c);
void api_journal_entries(Ctx *c);

/* api-events.c */
void api_post_events(Ctx *c);
void api_get_events(Ctx *c);

/* api-history.c */
void api_history(Ctx *c);
void api_latest_update(Ctx *c);

/* api-secrets.c */
void api_encrypt(Ctx *c);
void api_decrypt(Ctx *c);
void api_batch_encrypt(Ctx *c);
void api_batch_decrypt(Ctx *c);
void api_log_decryption(Ctx *c);

/* api-deployments.c */
void api_deploy_create(Ctx *c);
void api_deploy_list(Ctx *c);
void api_deploy_get(Ctx *c);
void api_deploy_get_version(Ctx *c);
void api_deploy_logs(Ctx *c);
void api_deploy_updates(Ctx *c);
void api_deploy_cancel(Ctx *c);
void api_deploy_settings_get(Ctx *c);
void api_deploy_settings_set(Ctx *c);
void api_deploy_settings_delete(Ctx *c);
void api_deploy_settings_encrypt(Ctx *c);

/* api-ops.c */
void api_healthz(Ctx *c);
void api_readyz(Ctx *c);
void api_metrics(Ctx *c);

/* api-machines.c */
void api_machine_register(Ctx *c);
void api_machine_list(Ctx *c);
void api_machine_get(Ctx *c);
void api_machine_approve(Ctx *c);
void api_machine_revoke(Ctx *c);
void api_machine_lock(Ctx *c);
void api_machine_unlock(Ctx *c);
void api_machine_config(Ctx *c);
void api_iso_verify(Ctx *c);

#endif
