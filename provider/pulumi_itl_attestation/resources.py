"""resources.py - the Pulumi resources: RegisteredMachine, MachineApproval and EnrollmentToken.

Replacements always delete first (also a forced `pulumi up --replace`): the old machine must give up
its EK, hostname and address before the new one claims them.

Secrets: the API token, the EK certificate, the config token and the enrollment token are secret
inputs and outputs (Output.secret on the way in, additional_secret_outputs on the way out), so the
backend encrypts them in the stack's state.
"""
from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any, Dict, Mapping, Optional

import pulumi
import pulumi.dynamic

from ._enums import NodeRole
from .provider import EnrollmentTokenProvider, MachineApprovalProvider, RegisteredMachineProvider

__all__ = [
    "EnrollmentToken",
    "EnrollmentTokenArgs",
    "MachineApproval",
    "MachineApprovalArgs",
    "RegisteredMachine",
    "RegisteredMachineArgs",
]


def _plain(v: Any) -> Any:
    """An Input as the engine should see it: enums as their text."""
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, pulumi.Output):
        return v.apply(lambda x: x.value if isinstance(x, Enum) else x)
    return v


def _secret(v: Any) -> Any:
    return None if v is None else pulumi.Output.secret(v)


def _with_secrets(opts: Optional[pulumi.ResourceOptions], names: list,
                  delete_before_replace: Optional[bool] = None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=names,
                                                                     delete_before_replace=delete_before_replace))


@dataclasses.dataclass
class RegisteredMachineArgs:
    """What a machine attests with.

    endpoint: the pulumi-state server's URL; token: an API token with `write` (revoking on delete
    needs `admin`); ek_fingerprint: the hex SHA-384 of the EK certificate's DER; ek_cert_pem: the EK
    certificate (PEM); hw_serial, hw_product, hw_mac: the hardware facts; desired_role: what the
    machine asks to be.
    """

    endpoint: pulumi.Input[str]
    token: pulumi.Input[str]
    ek_fingerprint: pulumi.Input[str]
    ek_cert_pem: pulumi.Input[str]
    hw_serial: pulumi.Input[str]
    hw_product: pulumi.Input[str]
    hw_mac: pulumi.Input[str]
    desired_role: pulumi.Input[NodeRole]


class RegisteredMachine(pulumi.dynamic.Resource, module="itl-attestation", name="RegisteredMachine"):
    """A machine registered with the attestation API (pending until a MachineApproval approves it).

    Replaced (old one revoked first) when its EK or hardware facts change, or when a refresh saw it
    revoked or locked by an operator; revoked when deleted unless its approval keeps it.
    """

    endpoint: pulumi.Output[str]
    machine_id: pulumi.Output[str]
    status: pulumi.Output[str]
    config_url: pulumi.Output[str]
    config_token: pulumi.Output[str]
    iso_url: pulumi.Output[str]
    iso_expires_at: pulumi.Output[str]
    token: pulumi.Output[str]

    def __init__(self, resource_name: str, args: RegisteredMachineArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        props: Dict[str, Any] = {
            "endpoint": args.endpoint,
            "token": _secret(args.token),
            "ek_fingerprint": args.ek_fingerprint,
            "ek_cert_pem": _secret(args.ek_cert_pem),
            "hw_serial": args.hw_serial,
            "hw_product": args.hw_product,
            "hw_mac": args.hw_mac,
            "desired_role": _plain(args.desired_role),
        }
        for out in ("machine_id", "status", "role", "hostname", "assigned_ip", "retain", "registered_mac",
                    "config_url", "config_fetched", "config_token", "iso_url", "iso_expires_at", "created_at",
                    "approved_at", "revoked_at"):
            props[out] = None
        super().__init__(RegisteredMachineProvider(), resource_name, props,
                         _with_secrets(opts, ["token", "ek_cert_pem", "config_token"], delete_before_replace=True))


@dataclasses.dataclass
class MachineApprovalArgs:
    """An approval of a registered machine.

    machine: the RegisteredMachine (its id, endpoint and token are used unless given here), or
    machine_id: a machine's id; role, hostname (an FQDN), assigned_ip (IPv4 or IPv6, optional);
    keep_on_delete: when the approval (or the whole stack) is deleted, keep the machine approved on
    the server instead of revoking it.
    """

    role: pulumi.Input[NodeRole]
    hostname: pulumi.Input[str]
    machine: Optional[RegisteredMachine] = None
    machine_id: Optional[pulumi.Input[str]] = None
    assigned_ip: Optional[pulumi.Input[str]] = None
    keep_on_delete: pulumi.Input[bool] = False
    endpoint: Optional[pulumi.Input[str]] = None
    token: Optional[pulumi.Input[str]] = None


class MachineApproval(pulumi.dynamic.Resource, module="itl-attestation", name="MachineApproval"):
    """Approves a machine: its role, hostname and address; `status` shows whether it still is approved.

    Replaced when the machine changes or a refresh saw it revoked or locked; deleting it revokes the
    machine unless keep_on_delete.
    """

    machine_id: pulumi.Output[str]
    status: pulumi.Output[str]
    approved_at: pulumi.Output[str]
    approved_ip: pulumi.Output[Optional[str]]
    iso_url: pulumi.Output[str]

    def __init__(self, resource_name: str, args: MachineApprovalArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        m = args.machine
        if m is None and args.machine_id is None:
            raise ValueError("MachineApproval %s: machine or machine_id is required" % resource_name)
        endpoint = args.endpoint if args.endpoint is not None else (m.endpoint if m is not None else None)
        token = args.token if args.token is not None else (m.token if m is not None else None)
        if endpoint is None or token is None:
            raise ValueError("MachineApproval %s: endpoint and token are required with machine_id" % resource_name)
        props: Dict[str, Any] = {
            "endpoint": endpoint,
            "token": _secret(token),
            "machine_id": args.machine_id if args.machine_id is not None else m.machine_id,
            "role": _plain(args.role),
            "hostname": args.hostname,
            "assigned_ip": args.assigned_ip,
            "keep_on_delete": args.keep_on_delete,
        }
        for out in ("status", "approved_role", "approved_hostname", "approved_ip", "retain", "approved_at",
                    "iso_url"):
            props[out] = None
        if m is not None:
            opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[m]))
        super().__init__(MachineApprovalProvider(), resource_name, props,
                         _with_secrets(opts, ["token"], delete_before_replace=True))


@dataclasses.dataclass
class EnrollmentTokenArgs:
    """keepers: arbitrary values; a change of any of them makes a new token (like random's keepers)."""

    keepers: Optional[pulumi.Input[Mapping[str, pulumi.Input[str]]]] = None


class EnrollmentToken(pulumi.dynamic.Resource, module="itl-attestation", name="EnrollmentToken"):
    """A 256-bit random token (64 hex digits), secret, made once and stable across updates."""

    token: pulumi.Output[str]
    keepers: pulumi.Output[Mapping[str, str]]

    def __init__(self, resource_name: str, args: Optional[EnrollmentTokenArgs] = None,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        args = args or EnrollmentTokenArgs()
        props: Dict[str, Any] = {"keepers": args.keepers or {}, "token": None}
        super().__init__(EnrollmentTokenProvider(), resource_name, props, _with_secrets(opts, ["token"]))
