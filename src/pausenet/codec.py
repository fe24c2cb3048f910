"""The only place where protobuf messages and domain objects meet.

Payload encoding is canonical: the protobuf encoding with fields in field-number order, each
scalar at its default omitted, no unknown fields. `decode_*` rejects any other byte string for
the same message, so one statement has exactly one payload and one hash.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError, Message

from pausenet.dsse import Envelope, Signature
from pausenet.messages import Digest, Items, MemberHead
from pausenet.records import (
    Body,
    Compliance,
    ComplianceState,
    Decision,
    Heartbeat,
    Statement,
    TriggerAttestation,
    Vote,
)
from pausenet.v1 import envelope_pb2, gossip_pb2, statement_pb2

__all__ = [
    "CodecError",
    "decode_envelope",
    "decode_heartbeat",
    "decode_statement",
    "encode_envelope",
    "encode_heartbeat",
    "encode_statement",
    "envelope_from_pb",
    "envelope_to_pb",
]


class CodecError(ValueError):
    """Bytes that are not a valid, canonical encoding of the expected message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


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


def _parse(msg: Message, data: bytes, what: str) -> None:
    try:
        msg.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:  # upb raises DecodeError; be broad
        raise CodecError("malformed", f"{what} is not valid protobuf") from exc
    # Unknown fields survive a round trip, so discard them and compare: a payload with unknown
    # fields, duplicated fields, non-minimal varints or out-of-order fields is not canonical.
    msg.DiscardUnknownFields()
    if msg.SerializeToString(deterministic=True) != data:
        raise CodecError("non-canonical", f"{what} is not in canonical protobuf encoding")


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
                trigger_id=b.trigger_id, evidence_sha256=b.evidence_sha256, note=b.note
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
            raise CodecError("invalid", "vote decision must be PAUSE or LIFT")
        body = Vote(v.epoch, _DECISION_FROM_PB[v.decision], tuple(v.triggers), v.note)
    elif kind == "compliance":
        c = pb.compliance
        if c.state not in _STATE_FROM_PB:
            raise CodecError("invalid", "compliance state must be HALTED or NOT_HALTED")
        body = Compliance(c.epoch, _STATE_FROM_PB[c.state], c.evidence_sha256)
    elif kind == "trigger_attestation":
        t = pb.trigger_attestation
        body = TriggerAttestation(t.trigger_id, t.evidence_sha256, t.note)
    else:
        raise CodecError(
            "invalid", "statement has no body (vote, compliance or trigger_attestation)"
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


# -- envelopes ------------------------------------------------------------------------------


def envelope_to_pb(e: Envelope) -> envelope_pb2.Envelope:
    return envelope_pb2.Envelope(
        payload=e.payload,
        payload_type=e.payload_type,
        signatures=[envelope_pb2.Signature(sig=s.sig, keyid=s.keyid) for s in e.signatures],
    )


def envelope_from_pb(pb: envelope_pb2.Envelope) -> Envelope:
    return Envelope(
        payload_type=pb.payload_type,
        payload=bytes(pb.payload),
        signatures=tuple(Signature(keyid=s.keyid, sig=bytes(s.sig)) for s in pb.signatures),
    )


def encode_envelope(e: Envelope) -> bytes:
    return envelope_to_pb(e).SerializeToString(deterministic=True)


def decode_envelope(data: bytes) -> Envelope:
    pb = envelope_pb2.Envelope()
    try:
        pb.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CodecError("malformed", "envelope is not valid protobuf") from exc
    return envelope_from_pb(pb)


# -- gossip messages ------------------------------------------------------------------------


def digest_to_pb(d: Digest) -> gossip_pb2.Digest:
    return gossip_pb2.Digest(
        heads=[
            gossip_pb2.MemberHead(
                member=h.member,
                head_seq=h.head_seq,
                head_hash=h.head_hash,
                heartbeat_counter=h.heartbeat_counter,
            )
            for h in d.heads
        ],
        evidence_ids=list(d.evidence_ids),
    )


def digest_from_pb(pb: gossip_pb2.Digest, *, max_heads: int) -> Digest:
    """Raises CodecError on a digest no honest peer sends (too many heads, bad sizes)."""
    if len(pb.heads) > max_heads or len(pb.evidence_ids) > max_heads * 4:
        raise CodecError("oversize", f"digest lists {len(pb.heads)} heads, limit {max_heads}")
    heads = []
    for h in pb.heads:
        if len(h.head_hash) not in (0, 32) or len(h.member) > 64:
            raise CodecError("malformed", "digest head with a bad hash or member id")
        heads.append(MemberHead(h.member, h.head_seq, bytes(h.head_hash), h.heartbeat_counter))
    for e in pb.evidence_ids:
        if len(e) != 32:
            raise CodecError("malformed", "evidence id must be 32 bytes")
    return Digest(tuple(heads), tuple(bytes(e) for e in pb.evidence_ids))


def items_to_pb(items: Items) -> gossip_pb2.Items:
    return gossip_pb2.Items(
        statements=[envelope_to_pb(e) for e in items.statements],
        heartbeats=[envelope_to_pb(e) for e in items.heartbeats],
        evidence=[
            gossip_pb2.EvidencePair(first=envelope_to_pb(a), second=envelope_to_pb(b))
            for a, b in items.evidence
        ],
    )


def items_from_pb(pb: gossip_pb2.Items, *, max_items: int) -> Items:
    n = len(pb.statements) + len(pb.heartbeats) + len(pb.evidence)
    if n > max_items:
        raise CodecError("oversize", f"message carries {n} items, limit {max_items}")
    return Items(
        statements=tuple(envelope_from_pb(e) for e in pb.statements),
        heartbeats=tuple(envelope_from_pb(e) for e in pb.heartbeats),
        evidence=tuple(
            (envelope_from_pb(p.first), envelope_from_pb(p.second)) for p in pb.evidence
        ),
    )
