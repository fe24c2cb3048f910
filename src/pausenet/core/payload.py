"""The canonical encoding of signed payloads: statements, heartbeats and charter approvals.

Encoding is canonical: the protobuf encoding with fields in field-number order, each
scalar at its default omitted, no unknown fields. `decode_*` rejects any other byte string for
the same message, so one statement has exactly one payload and one hash.
"""

from __future__ import annotations

from typing import cast

from google.protobuf.message import DecodeError, Message

from pausenet.core.records import (
    Body,
    CharterApproval,
    Compliance,
    ComplianceState,
    Decision,
    Heartbeat,
    Statement,
    TriggerAttestation,
    Vote,
)
from pausenet.errors import CodecError, Reason
from pausenet.v1 import governance_pb2, oversight_pb2, statement_pb2

__all__ = [
    "CodecError",
    "compliance_state_from_pb",
    "compliance_state_to_pb",
    "decision_from_pb",
    "decision_to_pb",
    "decode_approval",
    "decode_heartbeat",
    "decode_statement",
    "encode_approval",
    "encode_heartbeat",
    "encode_statement",
    "pause_state_from_pb",
    "pause_state_to_pb",
]


_DECISION_TO_PB = {
    Decision.PAUSE: statement_pb2.DECISION_PAUSE,
    Decision.LIFT: statement_pb2.DECISION_LIFT,
}
_DECISION_FROM_PB = {v: k for k, v in _DECISION_TO_PB.items()}
_STATE_TO_PB = {
    ComplianceState.HALTED: statement_pb2.COMPLIANCE_STATE_HALTED,
    ComplianceState.NOT_HALTED: statement_pb2.COMPLIANCE_STATE_NOT_HALTED,
}
_STATE_FROM_PB = {v: k for k, v in _STATE_TO_PB.items()}


def decision_to_pb(d: Decision) -> statement_pb2.Decision:
    return _DECISION_TO_PB[d]


def decision_from_pb(value: int) -> Decision | None:
    """The decision for a protobuf enum value; None for UNSPECIFIED or unknown values."""
    return _DECISION_FROM_PB.get(cast(statement_pb2.Decision, value))


def compliance_state_to_pb(s: ComplianceState) -> statement_pb2.ComplianceState:
    return _STATE_TO_PB[s]


def compliance_state_from_pb(value: int) -> ComplianceState | None:
    """The compliance state for a protobuf enum value; None for UNSPECIFIED or unknown values."""
    return _STATE_FROM_PB.get(cast(statement_pb2.ComplianceState, value))


def _parse(msg: Message, data: bytes, what: str) -> None:
    try:
        msg.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:  # upb raises DecodeError; be broad
        raise CodecError(Reason.MALFORMED, f"{what} is not valid protobuf") from exc
    # Unknown fields survive a round trip, so discard them and compare: a payload with unknown
    # fields, duplicated fields, non-minimal varints or out-of-order fields is not canonical.
    msg.DiscardUnknownFields()
    if msg.SerializeToString(deterministic=True) != data:
        raise CodecError(Reason.NON_CANONICAL, f"{what} is not in canonical protobuf encoding")


# -- statements -----------------------------------------------------------------------------


def encode_statement(s: Statement) -> bytes:
    pb = statement_pb2.Statement(
        federation_id=s.federation_id,
        charter_digest=s.charter_digest,
        member=s.member,
        seq=s.seq,
        prev_hash=s.prev_hash,
        issued_at_ms=s.issued_at_ms,
    )
    b = s.body
    if isinstance(b, Vote):
        pb.vote.CopyFrom(
            statement_pb2.Vote(
                epoch=b.epoch,
                decision=_DECISION_TO_PB[b.decision],
                triggers=b.triggers,
                note=b.note,
            )
        )
    elif isinstance(b, Compliance):
        pb.compliance.CopyFrom(
            statement_pb2.Compliance(
                epoch=b.epoch, state=_STATE_TO_PB[b.state], evidence_sha256=b.evidence_sha256
            )
        )
    else:
        pb.trigger_attestation.CopyFrom(
            statement_pb2.TriggerAttestation(
                trigger_id=b.trigger_id,
                evidence_sha256=b.evidence_sha256,
                note=b.note,
                epoch=b.epoch,
            )
        )
    return pb.SerializeToString(deterministic=True)


def decode_statement(data: bytes) -> Statement:
    pb = statement_pb2.Statement()
    _parse(pb, data, "statement payload")
    kind = pb.WhichOneof("body")
    body: Body
    if kind == "vote":
        v = pb.vote
        if v.decision not in _DECISION_FROM_PB:
            raise CodecError(Reason.INVALID, "vote decision must be PAUSE or LIFT")
        body = Vote(v.epoch, _DECISION_FROM_PB[v.decision], tuple(v.triggers), v.note)
    elif kind == "compliance":
        c = pb.compliance
        if c.state not in _STATE_FROM_PB:
            raise CodecError(Reason.INVALID, "compliance state must be HALTED or NOT_HALTED")
        body = Compliance(c.epoch, _STATE_FROM_PB[c.state], c.evidence_sha256)
    elif kind == "trigger_attestation":
        t = pb.trigger_attestation
        body = TriggerAttestation(t.trigger_id, t.evidence_sha256, t.note, t.epoch)
    else:
        raise CodecError(
            Reason.INVALID, "statement has no body (vote, compliance or trigger_attestation)"
        )
    return Statement(
        federation_id=pb.federation_id,
        charter_digest=pb.charter_digest,
        member=pb.member,
        seq=pb.seq,
        prev_hash=pb.prev_hash,
        issued_at_ms=pb.issued_at_ms,
        body=body,
    )


# -- heartbeats -----------------------------------------------------------------------------


def encode_heartbeat(h: Heartbeat) -> bytes:
    return statement_pb2.Heartbeat(
        federation_id=h.federation_id,
        charter_digest=h.charter_digest,
        member=h.member,
        head_seq=h.head_seq,
        head_hash=h.head_hash,
        counter=h.counter,
        issued_at_ms=h.issued_at_ms,
        address=h.address,
    ).SerializeToString(deterministic=True)


def decode_heartbeat(data: bytes) -> Heartbeat:
    pb = statement_pb2.Heartbeat()
    _parse(pb, data, "heartbeat payload")
    return Heartbeat(
        federation_id=pb.federation_id,
        charter_digest=pb.charter_digest,
        member=pb.member,
        head_seq=pb.head_seq,
        head_hash=pb.head_hash,
        counter=pb.counter,
        issued_at_ms=pb.issued_at_ms,
        address=pb.address,
    )


# -- charter approvals ----------------------------------------------------------------------


def encode_approval(a: CharterApproval) -> bytes:
    return governance_pb2.CharterApproval(
        federation_id=a.federation_id,
        version=a.version,
        charter_digest=a.charter_digest,
        previous_digest=a.previous_digest,
        member=a.member,
        issued_at_ms=a.issued_at_ms,
    ).SerializeToString(deterministic=True)


def decode_approval(data: bytes) -> CharterApproval:
    pb = governance_pb2.CharterApproval()
    _parse(pb, data, "charter approval payload")
    return CharterApproval(
        federation_id=pb.federation_id,
        version=pb.version,
        charter_digest=pb.charter_digest,
        previous_digest=pb.previous_digest,
        member=pb.member,
        issued_at_ms=pb.issued_at_ms,
    )


# -- pause states (signed answers and replies) ----------------------------------------------


def pause_state_to_pb(state: str) -> oversight_pb2.PauseState:
    """'PAUSED' -> PAUSE_STATE_PAUSED, and so on."""
    return cast(oversight_pb2.PauseState, oversight_pb2.PauseState.Value("PAUSE_STATE_" + state))


def pause_state_from_pb(value: int) -> str:
    """PAUSE_STATE_PAUSED -> 'PAUSED'; 'UNSPECIFIED' for 0 or unknown values."""
    try:
        name: str = oversight_pb2.PauseState.Name(value)
        return name.removeprefix("PAUSE_STATE_")
    except ValueError:
        return "UNSPECIFIED"
