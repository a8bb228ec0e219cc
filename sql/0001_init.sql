-- 0001_init.sql - stacks, updates, versions, checkpoints, journal, events, deployments, tokens, audit.

CREATE TABLE extension_pulumi_state_stacks (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org             text NOT NULL,
    project         text NOT NULL,
    name            text NOT NULL,
    tags            jsonb NOT NULL DEFAULT '{}'::jsonb,
    version         integer NOT NULL DEFAULT 0,
    resource_count  integer NOT NULL DEFAULT 0,
    secrets_key     text NOT NULL,
    active_update   uuid,
    last_update     uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org, project, name)
);

CREATE TABLE extension_pulumi_state_updates (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stack_id          uuid NOT NULL REFERENCES extension_pulumi_state_stacks(id) ON DELETE CASCADE,
    kind              text NOT NULL,
    dry_run           boolean NOT NULL DEFAULT false,
    status            text NOT NULL DEFAULT 'not started',
    token_hash        text,
    prev_token_hash   text,
    lease_expires_at  timestamptz,
    config            jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
    options           jsonb NOT NULL DEFAULT '{}'::jsonb,
    base_version      integer,
    result_version    integer,
    resource_changes  jsonb,
    resource_count    integer,
    checkpoint_mode   text,
    journal_version   integer NOT NULL DEFAULT 0,
    last_seq          bigint NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    ended_at          timestamptz
);
CREATE INDEX extension_pulumi_state_updates_stack ON extension_pulumi_state_updates (stack_id, created_at DESC);

CREATE TABLE extension_pulumi_state_versions (
    stack_id        uuid NOT NULL REFERENCES extension_pulumi_state_stacks(id) ON DELETE CASCADE,
    version         integer NOT NULL,
    update_id       uuid,
    data            bytea NOT NULL,          -- gzip of {"version":..,"deployment":..}
    sha256          text NOT NULL,           -- of the uncompressed JSON
    size            bigint NOT NULL,         -- uncompressed bytes
    resource_count  integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stack_id, version)
);

CREATE TABLE extension_pulumi_state_checkpoints (
    update_id       uuid PRIMARY KEY REFERENCES extension_pulumi_state_updates(id) ON DELETE CASCADE,
    seq             bigint NOT NULL DEFAULT 0,
    mode            text NOT NULL,           -- full | verbatim
    raw             bytea NOT NULL,          -- exact bytes of the last accepted deployment
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE extension_pulumi_state_journal (
    update_id       uuid NOT NULL REFERENCES extension_pulumi_state_updates(id) ON DELETE CASCADE,
    sequence_id     bigint NOT NULL,
    entry           bytea NOT NULL,
    PRIMARY KEY (update_id, sequence_id)
);

CREATE TABLE extension_pulumi_state_events (
    update_id       uuid NOT NULL REFERENCES extension_pulumi_state_updates(id) ON DELETE CASCADE,
    sequence        bigint NOT NULL,
    event           jsonb NOT NULL,
    PRIMARY KEY (update_id, sequence)
);

CREATE TABLE extension_pulumi_state_deployments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    stack_id        uuid NOT NULL REFERENCES extension_pulumi_state_stacks(id) ON DELETE CASCADE,
    version         integer NOT NULL,
    operation       text NOT NULL,
    source          jsonb NOT NULL DEFAULT '{}'::jsonb,
    env_sealed      text,
    status          text NOT NULL DEFAULT 'not-started',
    exit_code       integer,
    agent           text,
    heartbeat_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    ended_at        timestamptz,
    UNIQUE (stack_id, version)
);
CREATE INDEX extension_pulumi_state_deployments_queue ON extension_pulumi_state_deployments (status, created_at);

CREATE TABLE extension_pulumi_state_deployment_logs (
    deployment_id   uuid NOT NULL REFERENCES extension_pulumi_state_deployments(id) ON DELETE CASCADE,
    line_no         bigint NOT NULL,
    header          text,
    line            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (deployment_id, line_no)
);

CREATE TABLE extension_pulumi_state_tokens (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name            text NOT NULL UNIQUE,
    token_hash      text NOT NULL UNIQUE,
    role            text NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    scope           text NOT NULL DEFAULT '*',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    revoked_at      timestamptz,
    last_used_at    timestamptz
);

CREATE TABLE extension_pulumi_state_audit (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    action          text NOT NULL,
    org             text,
    project         text,
    stack           text,
    status          integer NOT NULL,
    client_addr     text,
    request_id      text
);
CREATE INDEX extension_pulumi_state_audit_at ON extension_pulumi_state_audit (at);
