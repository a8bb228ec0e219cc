"""pulumi-itl-attestation - Pulumi resources for the pulumi-state machine attestation API.

RegisteredMachine registers a machine by its TPM EK certificate, MachineApproval approves it (role,
hostname, address), EnrollmentToken makes a secret random token; AttestationClient is the API's
plain client.
"""
from ._client import (AttestationClient, AttestationError, IsoVerification, Machine, MachinePage,
                      Registration)
from ._enums import MachineStatus, NodeRole
from .provider import EnrollmentTokenProvider, MachineApprovalProvider, RegisteredMachineProvider
from .resources import (EnrollmentToken, EnrollmentTokenArgs, MachineApproval, MachineApprovalArgs,
                        RegisteredMachine, RegisteredMachineArgs)

__version__ = "0.1.0"

__all__ = [
    "AttestationClient",
    "AttestationError",
    "EnrollmentToken",
    "EnrollmentTokenArgs",
    "EnrollmentTokenProvider",
    "IsoVerification",
    "Machine",
    "MachineApproval",
    "MachineApprovalArgs",
    "MachineApprovalProvider",
    "MachinePage",
    "MachineStatus",
    "NodeRole",
    "RegisteredMachine",
    "RegisteredMachineArgs",
    "RegisteredMachineProvider",
    "Registration",
]
