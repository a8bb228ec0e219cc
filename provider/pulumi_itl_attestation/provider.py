"""provider.py - the dynamic providers behind RegisteredMachine, MachineApproval and EnrollmentToken.

A dynamic provider object is pickled into the stack's state, so these classes hold no fields: the
endpoint and the token travel as (secret) inputs of every resource and come back in its outputs,
which is what the engine hands to diff, read and delete.

Design
- RegisteredMachine: create registers; read (refresh) GETs the machine, so a revoke or lock done by
  an operator shows as drift in `status`; diff replaces it when its hardware facts change or when
  the recorded status is revoked or locked, always delete-before-replace (the old EK, hostname and
  address must be free before the new registration and approval claim them); delete revokes
  unless the server keeps it (`retain`, set by an approval with keep_on_delete) - but a machine
  recorded as locked or revoked is revoked in any case, or it could never register again.
- MachineApproval: create approves (retain = keep_on_delete); read GETs; diff replaces when the
  machine changes or is no longer approved; changing role, hostname or address of an approved
  machine is refused by the server, so update reports how to re-register instead; delete revokes
  unless keep_on_delete.
- EnrollmentToken: 256 random bits from `secrets`, made once; replaced only when its keepers change.
"""
from __future__ import annotations

import secrets
from typing import Any, Dict, Iterable, List, Optional

from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, \
    UpdateResult

from ._client import AttestationClient, AttestationError, Machine
from ._enums import MachineStatus

__all__ = ["RegisteredMachineProvider", "MachineApprovalProvider", "EnrollmentTokenProvider"]

# What the engine puts where a value is not known yet (a preview, or a dependency being replaced).
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

_DRIFTED = (MachineStatus.REVOKED.value, MachineStatus.LOCKED.value)

MACHINE_INPUTS = ("endpoint", "token", "ek_fingerprint", "ek_cert_pem", "hw_serial", "hw_product", "hw_mac",
                  "desired_role")
# A change of any of these is a different machine (or a different server): register anew.
MACHINE_REPLACE_ON = ("endpoint", "ek_fingerprint", "ek_cert_pem", "hw_serial", "hw_product", "hw_mac",
                      "desired_role")
APPROVAL_INPUTS = ("endpoint", "token", "machine_id", "role", "hostname", "assigned_ip", "keep_on_delete")


def _client(props: Dict[str, Any]) -> AttestationClient:
    return AttestationClient(props["endpoint"], props["token"])


def _changed(olds: Dict[str, Any], news: Dict[str, Any], keys: Iterable[str]) -> List[str]:
    """Keys whose new value differs from the old one (an unknown new value counts as a change)."""
    out = []
    for k in keys:
        old, new = olds.get(k), news.get(k)
        if new == _UNKNOWN or (old or None) != (new or None):
            out.append(k)
    return out


def _required(news: Dict[str, Any], keys: Iterable[str]) -> List[CheckFailure]:
    return [CheckFailure(k, "%s is required" % k) for k in keys if news.get(k) in (None, "")]


def _status(props: Dict[str, Any]) -> str:
    s = props.get("status")
    return s.value if isinstance(s, MachineStatus) else (s or "")


def _machine_outs(m: Machine) -> Dict[str, Any]:
    """The server's view of a machine as outputs (names the inputs do not use, so diffs stay clean)."""
    return {
        "machine_id": m.machine_id,
        "status": str(m.status),
        "role": str(m.role) if m.role is not None else None,
        "hostname": m.hostname,
        "assigned_ip": m.assigned_ip,
        "retain": m.retain,
        "registered_mac": m.hw_mac,
        "config_url": m.config_url,
        "config_fetched": m.config_fetched,
        "iso_url": m.iso_url,
        "iso_expires_at": m.iso_expires_at,
        "created_at": m.created_at,
        "approved_at": m.approved_at,
        "revoked_at": m.revoked_at,
    }


class RegisteredMachineProvider(ResourceProvider):
    """A machine registered by its TPM EK certificate and hardware facts."""

    def check(self, _olds: Dict[str, Any], news: Dict[str, Any]) -> CheckResult:
        # Only presence: what a valid EK, MAC or role is the server decides, and says in its message.
        return CheckResult(news, _required(news, [k for k in MACHINE_INPUTS]))

    def create(self, props: Dict[str, Any]) -> CreateResult:
        with _client(props) as c:
            reg = c.register(props["ek_fingerprint"], props["ek_cert_pem"], props["hw_serial"], props["hw_product"],
                             props["hw_mac"], props["desired_role"])
        outs = {k: props.get(k) for k in MACHINE_INPUTS}
        outs.update(_machine_outs(reg.machine))
        outs["config_token"] = reg.config_token
        return CreateResult(reg.machine.machine_id, outs)

    def diff(self, _id: str, olds: Dict[str, Any], news: Dict[str, Any]) -> DiffResult:
        replaces = _changed(olds, news, MACHINE_REPLACE_ON)
        if _status(olds) in _DRIFTED:
            replaces.append("status")
        changes = bool(replaces) or bool(_changed(olds, news, ["token"]))
        return DiffResult(changes=changes, replaces=replaces, stables=["machine_id"] if not replaces else [],
                          delete_before_replace=True)

    def update(self, _id: str, olds: Dict[str, Any], news: Dict[str, Any]) -> UpdateResult:
        # Only the credentials can change in place; the machine on the server stays as it is.
        outs = dict(olds)
        outs.update({k: news.get(k) for k in MACHINE_INPUTS})
        return UpdateResult(outs)

    def read(self, id_: str, props: Dict[str, Any]) -> ReadResult:
        try:
            with _client(props) as c:
                m = c.get_machine(id_)
        except AttestationError as e:
            if e.not_found:
                return ReadResult("", {})  # gone from the server: gone from the stack
            raise
        outs = dict(props)
        outs.update(_machine_outs(m))
        return ReadResult(id_, outs)

    def delete(self, id_: str, props: Dict[str, Any]) -> None:
        with _client(props) as c:
            try:
                m = c.get_machine(id_)
            except AttestationError as e:
                if e.not_found:
                    return
                raise
            if m.status == MachineStatus.REVOKED:
                return
            # Kept by its approval's keep_on_delete, unless the stack recorded it locked or revoked: then
            # this delete is the first half of a re-registration, which needs the EK free.
            if m.retain and _status(props) not in _DRIFTED:
                return
            c.revoke(id_)


class MachineApprovalProvider(ResourceProvider):
    """An operator's approval of a registered machine: its role, hostname and address."""

    def check(self, _olds: Dict[str, Any], news: Dict[str, Any]) -> CheckResult:
        news = dict(news)
        news.setdefault("keep_on_delete", False)
        if news.get("keep_on_delete") is None:
            news["keep_on_delete"] = False
        return CheckResult(news, _required(news, ["endpoint", "token", "machine_id", "role", "hostname"]))

    @staticmethod
    def _outs(props: Dict[str, Any], m: Machine) -> Dict[str, Any]:
        outs = {k: props.get(k) for k in APPROVAL_INPUTS}
        outs.update({
            "status": str(m.status),
            "approved_role": str(m.role) if m.role is not None else None,
            "approved_hostname": m.hostname,
            "approved_ip": m.assigned_ip,
            "retain": m.retain,
            "approved_at": m.approved_at,
            "iso_url": m.iso_url,
        })
        return outs

    def create(self, props: Dict[str, Any]) -> CreateResult:
        with _client(props) as c:
            m = c.approve(props["machine_id"], props["role"], props["hostname"], props.get("assigned_ip") or None,
                          retain=bool(props.get("keep_on_delete")))
        return CreateResult(m.machine_id, self._outs(props, m))

    def diff(self, _id: str, olds: Dict[str, Any], news: Dict[str, Any]) -> DiffResult:
        replaces = _changed(olds, news, ["endpoint", "machine_id"])
        if _status(olds) != MachineStatus.APPROVED.value:
            replaces.append("status")
        changes = bool(replaces) or bool(_changed(olds, news, ["token", "role", "hostname", "assigned_ip"])) \
            or bool(olds.get("keep_on_delete")) != bool(news.get("keep_on_delete"))
        return DiffResult(changes=changes, replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, olds: Dict[str, Any], news: Dict[str, Any]) -> UpdateResult:
        fixed = _changed(olds, news, ["role", "hostname", "assigned_ip"])
        if fixed:
            raise Exception(
                "machine %s is approved with its %s for as long as it lives; to change %s, re-register it: "
                "pulumi up --replace <the RegisteredMachine's URN> (its approval follows)"
                % (id_, ", ".join(fixed), "it" if len(fixed) == 1 else "them"))
        m: Optional[Machine] = None
        if bool(olds.get("keep_on_delete")) != bool(news.get("keep_on_delete")):
            # The same approval again with the other retain flag: the server records what to keep.
            with _client(news) as c:
                m = c.approve(news["machine_id"], news["role"], news["hostname"], news.get("assigned_ip") or None,
                              retain=bool(news.get("keep_on_delete")))
        outs = dict(olds)
        outs.update({k: news.get(k) for k in APPROVAL_INPUTS})
        if m is not None:
            outs.update(self._outs(news, m))
        return UpdateResult(outs)

    def read(self, id_: str, props: Dict[str, Any]) -> ReadResult:
        try:
            with _client(props) as c:
                m = c.get_machine(props.get("machine_id") or id_)
        except AttestationError as e:
            if e.not_found:
                return ReadResult("", {})
            raise
        outs = dict(props)
        outs.update(self._outs(props, m))
        return ReadResult(id_, outs)

    def delete(self, id_: str, props: Dict[str, Any]) -> None:
        if props.get("keep_on_delete"):
            return
        try:
            with _client(props) as c:
                c.revoke(props.get("machine_id") or id_)
        except AttestationError as e:
            if not e.not_found:
                raise


class EnrollmentTokenProvider(ResourceProvider):
    """A 256-bit random token, made once and kept until its keepers change."""

    def check(self, _olds: Dict[str, Any], news: Dict[str, Any]) -> CheckResult:
        news = dict(news)
        if news.get("keepers") is None:
            news["keepers"] = {}
        return CheckResult(news, [])

    def create(self, props: Dict[str, Any]) -> CreateResult:
        token = secrets.token_hex(32)
        return CreateResult("enr-" + secrets.token_hex(8), {"keepers": props.get("keepers") or {}, "token": token})

    def diff(self, _id: str, olds: Dict[str, Any], news: Dict[str, Any]) -> DiffResult:
        if (olds.get("keepers") or {}) != (news.get("keepers") or {}):
            return DiffResult(changes=True, replaces=["keepers"], delete_before_replace=False)
        return DiffResult(changes=False, replaces=[], stables=["token"])

    def update(self, _id: str, olds: Dict[str, Any], news: Dict[str, Any]) -> UpdateResult:
        return UpdateResult({"keepers": news.get("keepers") or {}, "token": olds.get("token")})
