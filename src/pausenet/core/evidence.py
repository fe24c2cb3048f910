"""Evidence of equivocation: two validly signed items from one member that cannot both be honest.

Every signed item commits its author to log entries: statement n says "entry n has my hash" and
"entry n-1 has hash prev_hash"; a heartbeat says "entry head_seq has hash head_hash". Two items
from one member that commit the same seq to different hashes are a fork: evidence, checkable by
anyone holding the charter and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, sha256
from pausenet.core.records import SignedStatement
from pausenet.core.verify import Reason, Rejection, Verified, verify_envelope

__all__ = ["Evidence", "check_evidence", "commitments", "evidence_id", "find_conflict"]


@dataclass(frozen=True)
class Evidence:
    """A proven fork: `first` and `second` commit `member`'s log entry `seq` to different hashes."""

    member: str
    seq: int
    first: Envelope
    second: Envelope

    @property
    def id(self) -> bytes:
        return evidence_id(self.first, self.second)


def evidence_id(a: Envelope, b: Envelope) -> bytes:
    """Content hash of a pair, independent of order: SHA-256(min(hA, hB) || max(hA, hB))."""
    ha, hb = sorted((a.payload_hash, b.payload_hash))
    return sha256(ha + hb)


def commitments(item: Verified) -> dict[int, bytes]:
    """Log entries (seq -> payload hash) that a signed item commits its author to."""
    if isinstance(item, SignedStatement):
        out = {item.seq: item.hash}
        if item.seq > 1:
            out[item.seq - 1] = item.statement.prev_hash
        return out
    hb = item.heartbeat
    return {hb.head_seq: hb.head_hash} if hb.head_seq > 0 else {}


def find_conflict(a: Verified, b: Verified) -> int | None:
    """The lowest seq on which two items of one member disagree, or None."""
    if a.member != b.member or a.hash == b.hash:
        return None
    ca, cb = commitments(a), commitments(b)
    clash = [s for s in ca if s in cb and ca[s] != cb[s]]
    return min(clash) if clash else None


def check_evidence(
    charter: Charter, a: Envelope, b: Envelope, *, now_ms: int
) -> Evidence | Rejection:
    """Verify a claimed fork on its own. Cannot frame an honest member: both envelopes must verify
    under the charter, name the same member and commit one seq to two different hashes."""
    va = verify_envelope(charter, a, now_ms=now_ms)
    if isinstance(va, Rejection):
        return va
    vb = verify_envelope(charter, b, now_ms=now_ms)
    if isinstance(vb, Rejection):
        return vb
    seq = find_conflict(va, vb)
    if seq is None:
        return Rejection(
            Reason.INVALID, "the two items do not conflict", evidence_id(a, b), va.member
        )
    first, second = sorted((va, vb), key=lambda v: v.hash)
    return Evidence(va.member, seq, first.envelope, second.envelope)
