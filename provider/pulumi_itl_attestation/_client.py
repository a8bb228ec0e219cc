"""_client.py - a typed client of the pulumi-state machine attestation API over one requests Session.

Every call sends `Authorization: token <token>` (the operator's token or an API token of the needed
role), JSON in and out. Failures raise AttestationError with the HTTP status and the server's own
`message`. A call is retried, with exponential backoff, only when the server answers 503 (it is
starting, or its database is away) or the connection fails; every other answer is final.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union
from urllib.parse import quote

import requests

from ._enums import MachineStatus, NodeRole

__all__ = [
    "AttestationClient",
    "AttestationError",
    "IsoVerification",
    "Machine",
    "MachinePage",
    "Registration",
]

RoleLike = Union[NodeRole, str]
StatusLike = Union[MachineStatus, str]


class AttestationError(Exception):
    """A call that failed: `status` is the HTTP status (None when no answer came), `message` the server's."""

    def __init__(self, status: Optional[int], message: str, method: str = "", path: str = "",
                 code: Optional[int] = None) -> None:
        self.status = status
        self.message = message
        self.method = method
        self.path = path
        self.code = code if code is not None else status
        where = ("%s %s: " % (method, path)) if method else ""
        what = ("%d " % status) if status is not None else ""
        super().__init__("%s%s%s" % (where, what, message))

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _enum_or_str(enum: Any, value: Any) -> Any:
    """The enum member for a known value; the text itself for one this client does not know yet."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return value


def _value(v: Any) -> Any:
    return v.value if isinstance(v, (NodeRole, MachineStatus)) else v


@dataclasses.dataclass(frozen=True)
class Machine:
    """A machine as the server shows it (never with its config token)."""

    machine_id: str
    status: MachineStatus
    desired_role: Optional[NodeRole]
    role: Optional[NodeRole]
    hostname: Optional[str]
    assigned_ip: Optional[str]
    retain: bool
    ek_fingerprint: str
    hw_serial: str
    hw_product: str
    hw_mac: str
    config_url: Optional[str]
    config_fetched: bool
    iso_url: Optional[str]
    iso_expires_at: Optional[str]
    created_at: Optional[str]
    updated_at: Optional[str]
    approved_at: Optional[str]
    revoked_at: Optional[str]
    extra: Dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Machine":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        return cls(
            machine_id=d["machine_id"],
            status=_enum_or_str(MachineStatus, d.get("status")),
            desired_role=_enum_or_str(NodeRole, d.get("desired_role")),
            role=_enum_or_str(NodeRole, d.get("role")),
            hostname=d.get("hostname"),
            assigned_ip=d.get("assigned_ip"),
            retain=bool(d.get("retain", False)),
            ek_fingerprint=d.get("ek_fingerprint", ""),
            hw_serial=d.get("hw_serial", ""),
            hw_product=d.get("hw_product", ""),
            hw_mac=d.get("hw_mac", ""),
            config_url=d.get("config_url"),
            config_fetched=bool(d.get("config_fetched", False)),
            iso_url=d.get("iso_url"),
            iso_expires_at=d.get("iso_expires_at"),
            created_at=d.get("created_at"),
            updated_at=d.get("updated_at"),
            approved_at=d.get("approved_at"),
            revoked_at=d.get("revoked_at"),
            extra={k: v for k, v in d.items() if k not in known and k != "config_token"},
        )

    @property
    def live(self) -> bool:
        return self.status != MachineStatus.REVOKED

    def to_json(self) -> Dict[str, Any]:
        """Plain JSON values (enums as their text), the fields the server sent."""
        out = {f.name: _value(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out


@dataclasses.dataclass(frozen=True)
class Registration:
    """What register returns: the new machine and its one-time config token (shown only here)."""

    machine: Machine
    config_token: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class MachinePage:
    machines: List[Machine]
    total: int
    page: int
    page_size: int


@dataclasses.dataclass(frozen=True)
class IsoVerification:
    valid: bool
    machine_id: Optional[str]
    expires_at: Optional[str]
    reason: Optional[str] = None


class AttestationClient:
    """The machine attestation API of one pulumi-state server.

    endpoint: the server's base URL (`https://state.example.com`, or with its base path).
    token: an operator or API token; reads need `read`, register/approve `write`, revoke/lock/unlock `admin`.
    timeout: seconds for connecting and for each read.
    retries: further attempts after a 503 or a failed connection (0: one attempt only).
    backoff: the first wait between attempts in seconds, doubled each time (capped at max_backoff).
    """

    USER_AGENT = "pulumi-itl-attestation/0.1.0"

    def __init__(self, endpoint: str, token: str, timeout: float = 30.0, retries: int = 3, backoff: float = 0.5,
                 max_backoff: float = 10.0, session: Optional[requests.Session] = None) -> None:
        if not endpoint:
            raise ValueError("endpoint is required")
        if not token:
            raise ValueError("token is required")
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = max(0.0, float(backoff))
        self.max_backoff = max_backoff
        self._token = token
        self._session = session or requests.Session()
        self._session.headers.update({"User-Agent": self.USER_AGENT, "Accept": "application/json"})

    def __repr__(self) -> str:  # never the token
        return "AttestationClient(%r)" % self.endpoint

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> "AttestationClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport ----

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.endpoint + path

    def _wait(self, attempt: int, resp: Optional[requests.Response]) -> None:
        delay = min(self.max_backoff, self.backoff * (2 ** attempt))
        if resp is not None:
            ra = resp.headers.get("Retry-After", "")
            if ra.isdigit():
                delay = min(self.max_backoff, max(delay, float(ra)))
        if delay > 0:
            time.sleep(delay)

    def _request(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None,
                 params: Optional[Mapping[str, Any]] = None, auth: Optional[str] = None) -> Any:
        """One API call with the retry policy; the parsed JSON answer, or AttestationError."""
        url = self._url(path)
        headers = {"Authorization": auth or ("token " + self._token)}
        if body is not None:
            headers["Content-Type"] = "application/json"
        shown = path if not path.startswith(("http://", "https://")) else requests.utils.urlparse(path).path
        attempt = 0
        while True:
            resp = None
            try:
                resp = self._session.request(method, url, json=body, params=params, headers=headers,
                                             timeout=self.timeout)
            except requests.ConnectionError as e:
                if attempt >= self.retries:
                    raise AttestationError(None, "cannot reach %s: %s" % (self.endpoint, e), method, shown) from e
            except requests.RequestException as e:  # a read timeout, an invalid URL: not retried
                raise AttestationError(None, str(e), method, shown) from e
            if resp is not None:
                if resp.status_code != 503 or attempt >= self.retries:
                    return self._result(resp, method, shown)
                resp.close()
            self._wait(attempt, resp)
            attempt += 1

    @staticmethod
    def _result(resp: requests.Response, method: str, path: str) -> Any:
        data: Any = None
        if resp.content:
            try:
                data = resp.json()
            except ValueError:
                data = None
        if 200 <= resp.status_code < 300:
            if data is None and resp.content:
                raise AttestationError(resp.status_code, "the server's answer is not JSON", method, path)
            return data
        message = None
        code = None
        if isinstance(data, dict):
            message = data.get("message")
            code = data.get("code") if isinstance(data.get("code"), int) else None
        if not message:
            text = resp.text.strip()[:300] if resp.content else ""
            message = text or resp.reason or "HTTP %d" % resp.status_code
        raise AttestationError(resp.status_code, message, method, path, code)

    @staticmethod
    def _id(machine_id: str) -> str:
        if not machine_id:
            raise ValueError("machine_id is required")
        return quote(machine_id, safe="")

    # ---- the API ----

    def register(self, ek_fingerprint: str, ek_cert_pem: str, hw_serial: str, hw_product: str, hw_mac: str,
                 desired_role: RoleLike) -> Registration:
        """POST /api/v1/register: a new pending machine and its one-time config token."""
        d = self._request("POST", "/api/v1/register", {
            "ek_fingerprint": ek_fingerprint,
            "ek_cert_pem": ek_cert_pem,
            "hw_serial": hw_serial,
            "hw_product": hw_product,
            "hw_mac": hw_mac,
            "desired_role": _value(desired_role),
        })
        return Registration(machine=Machine.from_json(d), config_token=d.get("config_token", ""))

    def get_machine(self, machine_id: str) -> Machine:
        return Machine.from_json(self._request("GET", "/api/v1/machines/" + self._id(machine_id)))

    def list_machines(self, status: Optional[StatusLike] = None, role: Optional[RoleLike] = None, page: int = 1,
                      page_size: int = 50) -> MachinePage:
        """GET /api/v1/machines: newest first, filtered by status and role when given."""
        params: Dict[str, Any] = {"page": page, "pageSize": page_size}
        if status is not None:
            params["status"] = _value(status)
        if role is not None:
            params["role"] = _value(role)
        d = self._request("GET", "/api/v1/machines", params=params)
        return MachinePage(machines=[Machine.from_json(m) for m in d.get("machines", [])], total=d.get("total", 0),
                           page=d.get("page", page), page_size=d.get("pageSize", page_size))

    def iter_machines(self, status: Optional[StatusLike] = None, role: Optional[RoleLike] = None,
                      page_size: int = 100) -> Iterator[Machine]:
        """Every machine of list_machines, page by page (the server allows pageSize up to 500)."""
        page = 1
        while True:
            p = self.list_machines(status=status, role=role, page=page, page_size=page_size)
            yield from p.machines
            if not p.machines or page * p.page_size >= p.total:
                return
            page += 1

    def approve(self, machine_id: str, role: RoleLike, hostname: str, assigned_ip: Optional[str] = None,
                retain: bool = False) -> Machine:
        """POST .../approve: idempotent with the same values, 409 with others or from revoked/locked."""
        body: Dict[str, Any] = {"role": _value(role), "hostname": hostname, "retain": bool(retain)}
        if assigned_ip:
            body["assigned_ip"] = assigned_ip
        return Machine.from_json(self._request("POST", "/api/v1/machines/%s/approve" % self._id(machine_id), body))

    def _transition(self, machine_id: str, action: str) -> Machine:
        return Machine.from_json(self._request("POST", "/api/v1/machines/%s/%s" % (self._id(machine_id), action), {}))

    def revoke(self, machine_id: str) -> Machine:
        """Final; idempotent."""
        return self._transition(machine_id, "revoke")

    def lock(self, machine_id: str) -> Machine:
        """approved -> locked."""
        return self._transition(machine_id, "lock")

    def unlock(self, machine_id: str) -> Machine:
        """locked -> approved."""
        return self._transition(machine_id, "unlock")

    def fetch_config(self, config_url: str, config_token: str) -> Dict[str, Any]:
        """The machine's configuration document, with its config token; once (410 after, 409 while pending)."""
        if not config_token:
            raise ValueError("config_token is required")
        return self._request("GET", config_url, auth="Bearer " + config_token)

    def verify_iso(self, iso_url: str) -> IsoVerification:
        d = self._request("POST", "/api/v1/iso/verify", {"iso_url": iso_url})
        return IsoVerification(valid=bool(d.get("valid")), machine_id=d.get("machine_id"),
                               expires_at=d.get("expires_at"), reason=d.get("reason"))
