"""The bounded proof: the few envelopes a view's decision reads, whatever the logs' length.

A member can sign statements for as long as it likes (within its quota), and statements are kept
forever, so a proof of every counted statement grows without bound (docs/security.md: one member
made every GetView reply exceed the message limit). The decision reads only, per member: its
earliest vote per (epoch, decision) and earliest attestation per (epoch, trigger) for epochs up to
the current one + 1, its latest compliance for the current epoch, its head (the statements at the
top of its log, and the one its latest heartbeat names), its latest heartbeat and one naming its
highest committed head, and every piece of evidence. That is bounded by members x epochs.

The logs in such a proof are partial: statements between those it carries are elided. The proof
lists the statements it carries that the node counts, and a verifier counts those and no others:
linked to their predecessor where the proof holds it, on the node's word where it is elided
(every other rule that could leave a linked statement uncounted — the quota, a rule of a later
charter version — was applied by the node to the full log). docs/protocol.md §8.5 is the spec;
`pausenet.core.view.evaluate` with `counted=` evaluates a partial proof, and gives the same state,
epoch, as-of time, certificates and heads as the node's evaluation of everything it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pausenet.core.dsse import Envelope
from pausenet.core.facts import Facts, MemberFacts
from pausenet.core.records import SignedStatement

if TYPE_CHECKING:
    from pausenet.core.view import View

__all__ = ["Head", "Proof", "complete_proof", "select"]


@dataclass(frozen=True)
class Head:
    """A member's log head as the answering node holds it (seq 0: nothing held)."""

    member: str
    seq: int
    hash: bytes


@dataclass(frozen=True)
class Proof:
    """Envelopes a verifier needs to recompute a view, and how they fit together."""

    envelopes: tuple[Envelope, ...]
    counted: frozenset[bytes]  # payload hashes of the statements of the proof the node counts
    heads: tuple[Head, ...]  # every member's head, in charter order
    # seqs from 1 to each member's head at which the proof holds nothing (0: complete logs)
    elided: int


def select(view: View, facts: Facts) -> Proof:
    """The bounded proof of `view`, which `pausenet.core.view.decide` computed from `facts`."""
    current = view.epoch
    statements: list[SignedStatement] = []
    heartbeats: list[Envelope] = []
    evidence: list[Envelope] = []
    elided = 0
    for m in sorted(facts.members):
        mf = facts.members[m]
        picked = _statements(mf, current)
        statements += picked
        elided += mf.head_seq - len({s.seq for s in picked})
        for hb in (mf.latest, mf.committed_by):
            if hb is not None:
                heartbeats.append(hb.envelope)
        for ev in mf.evidence:
            evidence += [ev.first, ev.second]
    statements.sort(key=lambda s: (s.member, s.seq, s.hash))
    envelopes = _distinct([s.envelope for s in statements] + heartbeats + evidence)
    heads = tuple(Head(ms.id, ms.head_seq, ms.head_hash) for ms in view.members)
    return Proof(envelopes, frozenset(s.hash for s in statements), heads, elided)


def complete_proof(view: View) -> Proof:
    """Every envelope the view counted (complete logs): what a full bundle carries. Its
    `counted` is empty: complete logs need no one's word on what counts."""
    heads = tuple(Head(ms.id, ms.head_seq, ms.head_hash) for ms in view.members)
    return Proof(tuple(view.envelopes), frozenset(), heads, 0)


def _statements(mf: MemberFacts, current: int) -> list[SignedStatement]:
    """The member's counted statements the decision reads (each once), in no set order."""
    out: dict[bytes, SignedStatement] = {}

    def take(st: SignedStatement | None) -> None:
        if st is not None:
            out.setdefault(st.hash, st)

    for (epoch, _decision), st in mf.votes.items():
        if epoch <= current + 1:
            take(st)
    for (epoch, _trigger), st in mf.attestations.items():
        if epoch <= current + 1:
            take(st)
    # under several charter versions, the earliest of each kept apart by the version named
    for under in mf.votes_under.values():
        for (epoch, _decision), st in under.items():
            if epoch <= current + 1:
                take(st)
    for under_a in mf.attestations_under.values():
        for (epoch, _trigger), st in under_a.items():
            if epoch <= current + 1:
                take(st)
    take(mf.compliance.get(current))
    # Evidence envelopes that are counted statements count in the proof too.
    counted = {s.hash: s for seq in mf.valid.values() for s in seq} if mf.evidence else {}
    for ev in mf.evidence:
        for env in (ev.first, ev.second):
            take(counted.get(env.payload_hash))
    if mf.valid:
        top = max(mf.valid)
        for st in mf.valid[top]:
            take(st)
    if mf.latest is not None and mf.latest.heartbeat.head_seq:
        h = mf.latest.heartbeat
        take(next((s for s in mf.valid.get(h.head_seq, []) if s.hash == h.head_hash), None))
    return list(out.values())


def _distinct(envelopes: Iterable[Envelope]) -> tuple[Envelope, ...]:
    seen: set[bytes] = set()
    out = []
    for e in envelopes:
        if e.payload_hash not in seen:
            seen.add(e.payload_hash)
            out.append(e)
    return tuple(out)
