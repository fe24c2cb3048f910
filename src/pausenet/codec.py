"""The only place where protobuf messages and domain objects meet.

Payload encoding is canonical: the protobuf encoding with fields in field-number order, each
scalar at its default omitted, no unknown fields. `decode_*` rejects any other byte string for
the same message, so one statement has exactly one payload and one hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from google.protobuf.message import DecodeError, Message

from pausenet.dsse import Envelope, Signature
from pausenet.errors import PausenetError
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
from pausenet.v1 import envelope_pb2, gossip_pb2, oversight_pb2, statement_pb2
from pausenet.v1.oversight_pb2 import ViewReply

if TYPE_CHECKING:
    from pausenet.view import View

__all__ = [
    "CodecError",
    "decode_envelope",
    "decode_heartbeat",
    "decode_statement",
    "digest_from_pb",
    "digest_to_pb",
    "encode_envelope",
    "encode_heartbeat",
    "encode_statement",
    "envelope_from_pb",
    "envelope_to_pb",
    "items_from_pb",
    "items_to_pb",
    "pause_state_from_pb",
    "pause_state_to_pb",
    "view_reply_to_json",
    "view_to_pb",
]


class CodecError(PausenetError, ValueError):
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
    if len(pb.heads) > max_heads or len(pb.evidence_ids) > max_heads * 8:
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


# -- views (oversight replies) --------------------------------------------------------------


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


def view_to_pb(view: View, *, answered_by: str, signed_answer: Envelope | None) -> ViewReply:
    certs = []
    for e in view.epochs:
        for c in (e.pause, e.lift):
            if c is not None:
                certs.append(
                    oversight_pb2.CertificateView(
                        epoch=c.epoch,
                        decision=c.decision.value,
                        labs=list(c.labs),
                        overseers=list(c.overseers),
                        votes=list(c.votes),
                        formed_at_ms=c.formed_at_ms,
                        effective_at_ms=c.effective_at_ms,
                    )
                )
    reply = oversight_pb2.ViewReply(
        state=pause_state_to_pb(view.state.value),
        epoch=view.epoch,
        as_of_ms=view.as_of_ms or 0,
        now_ms=view.now_ms,
        certified_state=pause_state_to_pb(view.certified_state.value),
        certified_since_ms=view.certified_since_ms or 0,
        explanation=view.explanation,
        charter_digest=view.charter_digest,
        members=[
            oversight_pb2.MemberView(
                id=m.id,
                role=m.role.value,
                head_seq=m.head_seq,
                head_hash=m.head_hash,
                heartbeat_counter=m.heartbeat_counter,
                heartbeat_at_ms=m.heartbeat_at_ms or 0,
                address=m.address,
                fresh=m.fresh,
                synced=m.synced,
                equivocator=m.equivocator,
                compliance=m.compliance.value if m.compliance else "",
            )
            for m in view.members
        ],
        certificates=certs,
        proof=[envelope_to_pb(e) for e in view.envelopes],
        answered_by=answered_by,
        evidence=[
            oversight_pb2.EvidenceView(
                member=ev.member,
                seq=ev.seq,
                id=ev.id,
                first=ev.first.payload_hash,
                second=ev.second.payload_hash,
            )
            for ev in view.evidence
        ],
    )
    if signed_answer is not None:
        reply.signed_answer.CopyFrom(envelope_to_pb(signed_answer))
    return reply


def view_reply_to_json(reply: ViewReply) -> dict[str, Any]:
    """A ViewReply as plain JSON data (for `pausenet status --json`)."""
    return {
        "state": pause_state_from_pb(reply.state),
        "epoch": reply.epoch,
        "as_of": reply.as_of_ms or None,
        "now": reply.now_ms,
        "certified_state": pause_state_from_pb(reply.certified_state),
        "certified_since": reply.certified_since_ms or None,
        "explanation": reply.explanation,
        "charter_digest": reply.charter_digest.hex(),
        "answered_by": reply.answered_by,
        "members": [
            {
                "id": m.id,
                "role": m.role,
                "head_seq": m.head_seq,
                "head_hash": m.head_hash.hex(),
                "heartbeat_counter": m.heartbeat_counter,
                "heartbeat_at": m.heartbeat_at_ms or None,
                "address": m.address,
                "fresh": m.fresh,
                "synced": m.synced,
                "equivocator": m.equivocator,
                "compliance": m.compliance or None,
            }
            for m in reply.members
        ],
        "evidence": [
            {
                "member": e.member,
                "seq": e.seq,
                "id": e.id.hex(),
                "first": e.first.hex(),
                "second": e.second.hex(),
            }
            for e in reply.evidence
        ],
        "certificates": [
            {
                "epoch": c.epoch,
                "decision": c.decision,
                "labs": list(c.labs),
                "overseers": list(c.overseers),
                "votes": [v.hex() for v in c.votes],
                "formed_at": c.formed_at_ms,
                "effective_at": c.effective_at_ms,
            }
            for c in reply.certificates
        ],
    }
