"""Evidence of equivocation: two validly signed items from one member that cannot both be honest.

Every signed item commits its author to log entries: statement n says "entry n has my hash" and
"entry n-1 has hash prev_hash"; a heartbeat says "entry head_seq has hash head_hash". Two items
from one member that commit the same seq to different hashes are a fork.

Items also commit their author to a timeline. A heartbeat issued at T naming head N says "at T my
log ended at N": a statement with a seq above N issued at or before T contradicts it (a vote
signed and withheld while heartbeats deny it). A heartbeat's counter orders a member's heartbeats
and a log never shrinks: a heartbeat with a higher counter naming a lower head than another one
contradicts it (a head committed to and then taken back).

Each of these pairs is evidence, checkable by anyone holding the charter and nothing else
(docs/protocol.md §7). The *seq* of a piece of evidence is the lowest log entry the pair leaves
in doubt: for a fork, the seq committed to two hashes; for a timeline contradiction, head + 1 of
the heartbeat that is contradicted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, sha256
from pausenet.core.records import SignedHeartbeat, SignedStatement
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
    """The lowest seq that two items of one member leave in doubt, or None if both can be honest.

    Two items conflict when they commit one seq to different hashes (a fork), when a statement
    above a heartbeat's head was issued at or before that heartbeat (a withheld entry the
    heartbeat denies), or when one heartbeat has a higher counter but a lower head than the
    other, or the same counter and another head (a head taken back)."""
    if a.member != b.member or a.hash == b.hash:
        return None
    ca, cb = commitments(a), commitments(b)
    clash = [s for s in ca if s in cb and ca[s] != cb[s]]
    timeline = _timeline_conflict(a, b)
    if timeline is not None:
        clash.append(timeline)
    return min(clash) if clash else None


def _timeline_conflict(a: Verified, b: Verified) -> int | None:
    if isinstance(a, SignedStatement) and isinstance(b, SignedStatement):
        return None  # two statements: only a fork (above) can make them conflict
    if isinstance(a, SignedStatement) and isinstance(b, SignedHeartbeat):
        return _denied(a, b)
    if isinstance(b, SignedStatement) and isinstance(a, SignedHeartbeat):
        return _denied(b, a)
    assert isinstance(a, SignedHeartbeat)
    assert isinstance(b, SignedHeartbeat)
    ha, hb_ = a.heartbeat, b.heartbeat
    if ha.head_seq == hb_.head_seq:
        return None  # the same head (different hashes at it are a fork, found above)
    lower, higher = (ha, hb_) if ha.head_seq < hb_.head_seq else (hb_, ha)
    if lower.counter >= higher.counter:
        return lower.head_seq + 1  # a later (or equal) counter names a lower head
    return None


def _denied(st: SignedStatement, hb: SignedHeartbeat) -> int | None:
    """head + 1 when `hb` says the log ended below `st` at a time `st` already existed."""
    h = hb.heartbeat
    if st.seq > h.head_seq and st.statement.issued_at_ms <= h.issued_at_ms:
        return h.head_seq + 1
    return None


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
            Reason.INVALID,
            "the two items neither fork the log nor contradict each other's timeline",
            evidence_id(a, b),
            va.member,
        )
    first, second = sorted((va, vb), key=lambda v: v.hash)
    return Evidence(va.member, seq, first.envelope, second.envelope)
