"""demo.py - two machines (a control plane and a worker) registered by their TPM EK, approved, plus an
enrollment token; the secret `bootstrap_bundle` output is what a provisioning step hands the machines.

Configuration (see README.md):
  attestation:endpoint        the pulumi-state server's URL
  attestation:token           an API token (secret; `admin` to revoke on delete, `write` otherwise)
  controlplane, worker        objects: hostname, assignedIp (optional), hwSerial, hwProduct, hwMac,
                              role (optional), ekFingerprint (optional: computed from the certificate),
                              keepOnDelete (optional, default false)
  controlplaneEkCert, workerEkCert   the EK certificates (PEM, secret)
"""
import hashlib
import json
import ssl

import pulumi

from pulumi_itl_attestation import (EnrollmentToken, EnrollmentTokenArgs, MachineApproval, MachineApprovalArgs,
                                    NodeRole, RegisteredMachine, RegisteredMachineArgs)

# name in config -> default role
MACHINES = (("controlplane", NodeRole.CONTROLPLANE), ("worker", NodeRole.WORKER_APP))


def ek_fingerprint(pem: str) -> str:
    """The hex SHA-384 of the certificate's DER, as the server computes it."""
    return hashlib.sha384(ssl.PEM_cert_to_DER_cert(pem.strip() + "\n")).hexdigest()


def machine(name, default_role, endpoint, token, cfg):
    facts = cfg.require_object(name)
    pem = cfg.require_secret(name + "EkCert")
    role = facts.get("role") or default_role.value
    fingerprint = facts.get("ekFingerprint") or pulumi.Output.unsecret(pem.apply(ek_fingerprint))
    registered = RegisteredMachine(name, RegisteredMachineArgs(
        endpoint=endpoint,
        token=token,
        ek_fingerprint=fingerprint,
        ek_cert_pem=pem,
        hw_serial=facts["hwSerial"],
        hw_product=facts["hwProduct"],
        hw_mac=facts["hwMac"],
        desired_role=role,
    ))
    approval = MachineApproval(name + "-approval", MachineApprovalArgs(
        machine=registered,
        role=role,
        hostname=facts["hostname"],
        assigned_ip=facts.get("assignedIp"),
        keep_on_delete=bool(facts.get("keepOnDelete", False)),
    ))
    return registered, approval, facts["hostname"]


def program():
    att = pulumi.Config("attestation")
    endpoint = att.require("endpoint")
    token = att.require_secret("token")
    cfg = pulumi.Config()

    machines = {name: machine(name, role, endpoint, token, cfg) for name, role in MACHINES}
    enrollment = EnrollmentToken("enrollment", EnrollmentTokenArgs(keepers={"endpoint": endpoint}))

    pulumi.export("machine_ids", {n: m.machine_id for n, (m, _, _) in machines.items()})
    pulumi.export("statuses", {n: a.status for n, (_, a, _) in machines.items()})
    pulumi.export("iso_urls", {n: m.iso_url for n, (m, _, _) in machines.items()})
    pulumi.export("config_urls", {n: m.config_url for n, (m, _, _) in machines.items()})

    parts = {}
    for n, (m, a, host) in machines.items():
        parts[n] = pulumi.Output.all(m.machine_id, m.config_url, m.config_token, a.status).apply(
            lambda v, host=host: {"machine_id": v[0], "hostname": host, "config_url": v[1], "config_token": v[2]})
    bundle = pulumi.Output.all(enrollment.token, *parts.values()).apply(
        lambda v: json.dumps({"enrollment_token": v[0], "machines": dict(zip(parts.keys(), v[1:]))},
                             sort_keys=True))
    pulumi.export("bootstrap_bundle", pulumi.Output.secret(bundle))
