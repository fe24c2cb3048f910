"""Domain objects for signed records: statements (with their bodies) and heartbeats.

These are plain frozen dataclasses; the protobuf wire form lives in `pausenet.codec` only.
A `Signed*` object exists only after its envelope verified: it carries the exact envelope and
the SHA-256 of its payload.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pausenet.core.dsse import Envelope

__all__ = [
    "APPROVAL_TYPE",
    "HASH_BYTES",
    "HEARTBEAT_TYPE",
    "MAX_SEQ",
    "STATEMENT_TYPE",
    "Body",
    "CharterApproval",
    "Compliance",
    "ComplianceState",
    "Decision",
    "Heartbeat",
    "SignedHeartbeat",
    "SignedStatement",
    "Statement",
    "TriggerAttestation",
    "Vote",
]

STATEMENT_TYPE = "application/vnd.pausenet.statement.v1+protobuf"
HEARTBEAT_TYPE = "application/vnd.pausenet.heartbeat.v1+protobuf"
APPROVAL_TYPE = "application/vnd.pausenet.charter-approval.v1+protobuf"
HASH_BYTES = 32
MAX_SEQ = 2**63 - 1  # seqs, epochs and counters must fit a signed 64-bit integer


class Decision(StrEnum):
    PAUSE = "pause"
    LIFT = "lift"


class ComplianceState(StrEnum):
    HALTED = "halted"
    NOT_HALTED = "not_halted"


@dataclass(frozen=True)
class Vote:
    epoch: int
    decision: Decision
    triggers: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Compliance:
    epoch: int
    state: ComplianceState
    evidence_sha256: bytes = b""


@dataclass(frozen=True)
class TriggerAttestation:
    trigger_id: str
    evidence_sha256: bytes = b""
    note: str = ""
    epoch: int = 0  # the epoch a tripwire would pause; 0: bound to no epoch


Body = Vote | Compliance | TriggerAttestation


@dataclass(frozen=True)
class Statement:
    federation_id: str
    charter_digest: bytes
    member: str
    seq: int
    prev_hash: bytes
    issued_at_ms: int
    body: Body


@dataclass(frozen=True)
class Heartbeat:
    federation_id: str
    charter_digest: bytes
    member: str
    head_seq: int
    head_hash: bytes
    counter: int
    issued_at_ms: int
    address: str = ""


@dataclass(frozen=True)
class SignedStatement:
    statement: Statement
    envelope: Envelope
    hash: bytes

    @property
    def member(self) -> str:
        return self.statement.member

    @property
    def seq(self) -> int:
        return self.statement.seq


@dataclass(frozen=True)
class SignedHeartbeat:
    heartbeat: Heartbeat
    envelope: Envelope
    hash: bytes

    @property
    def member(self) -> str:
        return self.heartbeat.member


@dataclass(frozen=True)
class CharterApproval:
    """A member's approval of one charter version (docs/protocol.md, governance)."""

    federation_id: str
    version: int
    charter_digest: bytes
    previous_digest: bytes  # the approved charter's `previous`; empty for version 1
    member: str
    issued_at_ms: int
