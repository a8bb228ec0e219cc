-- 0002_access.sql - who started each update (for cancel rights), audit detail, token lookups.

ALTER TABLE extension_pulumi_state_updates ADD COLUMN created_by text;
ALTER TABLE extension_pulumi_state_audit ADD COLUMN detail text;
CREATE INDEX extension_pulumi_state_audit_stack ON extension_pulumi_state_audit (org, project, stack, at);
