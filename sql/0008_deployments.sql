-- 0008_deployments.sql - server-side deployments: the queue's columns, settings, and the rule of
-- one running deployment per stack (a partial unique index, so two agents can never both claim one).
ALTER TABLE extension_pulumi_state_deployments
    ALTER COLUMN status SET DEFAULT 'queued',
    ADD COLUMN requested_by text,
    ADD COLUMN initiator text,
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN reason text,
    ADD COLUMN update_id uuid,
    ADD COLUMN token_name text,
    ADD COLUMN modified_at timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX extension_pulumi_state_deployments_one_running
    ON extension_pulumi_state_deployments (stack_id) WHERE status = 'running';

CREATE TABLE extension_pulumi_state_deployment_settings (
    stack_id        uuid PRIMARY KEY REFERENCES extension_pulumi_state_stacks(id) ON DELETE CASCADE,
    settings        jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
