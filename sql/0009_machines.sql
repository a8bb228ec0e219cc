-- 0009_machines.sql - the machine attestation API: machines registered by their TPM endorsement key
-- (EK), approved by an operator (or Pulumi), revoked or locked. "Live" is every status but revoked:
-- an EK, a hostname and an address belong to at most one live machine (partial unique indexes, so
-- two workers racing cannot both win).
CREATE TABLE extension_pulumi_state_machines (
    id                  uuid PRIMARY KEY,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'approved', 'locked', 'revoked')),
    ek_fingerprint      text NOT NULL,
    ek_cert_pem         text NOT NULL,
    hw_serial           text NOT NULL,
    hw_product          text NOT NULL,
    hw_mac              text NOT NULL,
    desired_role        text NOT NULL,
    role                text,
    hostname            text,
    assigned_ip         text,
    retain              boolean NOT NULL DEFAULT false,
    config_token_hash   text NOT NULL,
    config_fetched_at   timestamptz,
    iso_expires_at      timestamptz NOT NULL,
    created_by          text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    approved_at         timestamptz,
    revoked_at          timestamptz
);
CREATE UNIQUE INDEX extension_pulumi_state_machines_live_ek
    ON extension_pulumi_state_machines (ek_fingerprint) WHERE status <> 'revoked';
CREATE UNIQUE INDEX extension_pulumi_state_machines_live_hostname
    ON extension_pulumi_state_machines (lower(hostname)) WHERE status <> 'revoked' AND hostname IS NOT NULL;
CREATE UNIQUE INDEX extension_pulumi_state_machines_live_ip
    ON extension_pulumi_state_machines (assigned_ip) WHERE status <> 'revoked' AND assigned_ip IS NOT NULL;
CREATE INDEX extension_pulumi_state_machines_created ON extension_pulumi_state_machines (created_at DESC, id);
