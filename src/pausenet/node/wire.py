"""The one mapping between protobuf messages and domain objects on the wire (gRPC) and on disk.

Envelopes, gossip digests and items, and the Oversight projections of a view. Signed payloads
(statements, heartbeats) have their canonical encoding in `pausenet.core.payload`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError

from pausenet.core.dsse import Envelope, Signature
from pausenet.core.payload import pause_state_from_pb, pause_state_to_pb
from pausenet.core.proof import complete_proof
from pausenet.core.view import PATH_LABS, View
from pausenet.errors import CodecError
from pausenet.node.messages import MAX_EVIDENCE_PER_HEAD, Digest, Items, MemberHead
from pausenet.v1 import envelope_pb2, gossip_pb2, oversight_pb2
from pausenet.v1.oversight_pb2 import ViewReply

__all__ = [
    "decode_envelope",
    "digest_from_pb",
    "digest_to_pb",
    "encode_envelope",
    "envelope_from_pb",
    "envelope_to_pb",
    "items_from_pb",
    "items_to_pb",
    "view_reply_to_json",
    "view_to_pb",
]


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
                tree_hash=h.tree_hash,
                evidence_ids=list(h.evidence_ids),
            )
            for h in d.heads
        ],
        partial=d.partial,
    )


def digest_from_pb(pb: gossip_pb2.Digest, *, max_heads: int) -> Digest:
    """Raises CodecError on a digest no honest peer sends (too many heads, bad sizes)."""
    if len(pb.heads) > max_heads:
        raise CodecError("oversize", f"digest lists {len(pb.heads)} heads, limit {max_heads}")
    heads = []
    for h in pb.heads:
        if len(h.head_hash) not in (0, 32) or len(h.tree_hash) not in (0, 32) or len(h.member) > 64:
            raise CodecError("malformed", "digest head with a bad hash or member id")
        if len(h.evidence_ids) > MAX_EVIDENCE_PER_HEAD:
            raise CodecError(
                "oversize",
                f"digest head lists {len(h.evidence_ids)} evidence ids,"
                f" limit {MAX_EVIDENCE_PER_HEAD}",
            )
        if any(len(e) != 32 for e in h.evidence_ids):
            raise CodecError("malformed", "evidence id must be 32 bytes")
        heads.append(
            MemberHead(
                h.member,
                h.head_seq,
                bytes(h.head_hash),
                h.heartbeat_counter,
                bytes(h.tree_hash),
                tuple(sorted(bytes(e) for e in h.evidence_ids)),
            )
        )
    return Digest(tuple(heads), partial=pb.partial)


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
                        path=c.path,
                        attesters=list(c.attesters),
                        attestations=list(c.attestations),
                    )
                )
    proof = view.proof if view.proof is not None else complete_proof(view)
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
        proof=[envelope_to_pb(e) for e in proof.envelopes],
        proof_counted=sorted(proof.counted),
        proof_elided=proof.elided,
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
                # a node from before paths existed sends none: its certificates are lab votes'
                "path": c.path or PATH_LABS,
                "attesters": list(c.attesters),
                "attestations": [a.hex() for a in c.attestations],
            }
            for c in reply.certificates
        ],
    }
