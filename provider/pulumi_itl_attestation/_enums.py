"""_enums.py - the roles a machine can be given and the states it can be in (string enums)."""
from enum import Enum


class NodeRole(str, Enum):
    """What a machine is for; `desired_role` at registration, `role` once approved."""

    CONTROLPLANE = "controlplane"
    WORKER_INFRA = "worker-infra"
    WORKER_APP = "worker-app"

    def __str__(self) -> str:
        return self.value


class MachineStatus(str, Enum):
    """pending -approve-> approved -lock-> locked -unlock-> approved; revoke from any state -> revoked (final)."""

    PENDING = "pending"
    APPROVED = "approved"
    LOCKED = "locked"
    REVOKED = "revoked"

    def __str__(self) -> str:
        return self.value

    @property
    def live(self) -> bool:
        """Every state but revoked holds the machine's EK, hostname and address."""
        return self is not MachineStatus.REVOKED
