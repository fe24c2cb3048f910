"""What each member's items prove, before the clock is consulted: the first half of the view.

`member_facts` turns one member's verified statements and heartbeats into a `MemberFacts`: its
hash-chained log (statements linked to seq 1), the evidence among its items (docs/protocol.md
§7), its latest heartbeat and the highest head it ever committed to, and, from its counted
statements, its earliest vote per (epoch, decision), its latest compliance per epoch and its
earliest trigger attestation per (epoch, trigger). Nothing here depends on `now` or on any other
member, so a member's facts change only when its own items do: `pausenet.core.view.decide`
combines them at a given time. `build_facts` is the reference: the whole set of items at once.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import TypeVar

from pausenet.core.chain import LinkProblem, Predecessor, link_problem
from pausenet.core.charter import Charter
from pausenet.core.evidence import Evidence, commitments, find_conflict
from pausenet.core.quota import quota_detail, window_of
from pausenet.core.records import (
    Compliance,
    Decision,
    SignedHeartbeat,
    SignedStatement,
    TriggerAttestation,
    Vote,
)
from pausenet.core.verify import Reason, Rejection, Verified

_K = TypeVar("_K")

__all__ = ["Facts", "MemberFacts", "build_facts", "build_facts_of", "member_facts"]


@dataclass
class MemberFacts:
    """One member's items, checked and reduced to what the decision reads."""

    member: str
    valid: dict[int, list[SignedStatement]]  # seq -> statements linked to seq 1 (a fork: several)
    latest: SignedHeartbeat | None  # highest (counter, issued_at, hash)
    committed: int  # the highest head any of its heartbeats named: a log never shrinks
    evidence: list[Evidence]  # one piece per seq in doubt, by (seq, id)
    fork_at: int | None  # the lowest seq it forked at, if it is an equivocator
    # earliest counted vote per (epoch, decision); an equivocator's LIFT only below fork_at
    votes: dict[tuple[int, Decision], SignedStatement]
    compliance: dict[int, SignedStatement]  # epoch -> latest (seq, hash) compliance
    attestations: dict[tuple[int, str], SignedStatement]  # (epoch, trigger) -> earliest
    attested: set[str]  # every trigger id it attested, any epoch
    counted: list[SignedStatement]  # every statement of `valid`, in seq order
    rejected: list[Rejection] = field(default_factory=list)
    # a heartbeat naming the `committed` head (the proof carries it: docs/protocol.md §8.5)
    committed_by: SignedHeartbeat | None = None
    # The same earliest votes and attestations, kept apart by the charter digest each statement
    # names: under several charter versions a statement counts only toward the versions that
    # give its signer the key that verified it (pausenet.core.versions).
    votes_under: dict[bytes, dict[tuple[int, Decision], SignedStatement]] = field(
        default_factory=dict
    )
    attestations_under: dict[bytes, dict[tuple[int, str], SignedStatement]] = field(
        default_factory=dict
    )

    @property
    def head_seq(self) -> int:
        # `valid` is filled in seq order (here and in pausenet.core.incremental): its last key
        # is its highest, found in O(1) where a view asks for it once per member per call
        return next(reversed(self.valid), 0)


@dataclass
class Facts:
    """Every member's facts, plus items refused before they reached a member's facts."""

    members: dict[str, MemberFacts]
    rejected: list[Rejection]


def build_facts(
    charter: Charter, items: Iterable[Verified], *, counted: Set[bytes] | None = None
) -> Facts:
    """The reference: sort items by member (refusing duplicates and non-members), then each
    member's facts from its items alone. `counted`: see `member_facts`."""
    return build_facts_of(
        frozenset(m.id for m in charter.members),
        items,
        counted=counted,
        quota=charter.max_statements_per_hour,
    )


def build_facts_of(
    members: Collection[str],
    items: Iterable[Verified],
    *,
    counted: Set[bytes] | None = None,
    quota: int | None = None,
) -> Facts:
    """As `build_facts`, for items from several charter versions: `members` is everyone any of
    them lists; `quota` the statement quota checked (None: not checked)."""
    rejected: list[Rejection] = []
    seen: set[bytes] = set()
    statements: dict[str, list[SignedStatement]] = defaultdict(list)
    heartbeats: dict[str, list[SignedHeartbeat]] = defaultdict(list)
    for it in sorted(items, key=lambda i: i.hash):
        if it.hash in seen:
            rejected.append(
                Rejection(
                    Reason.DUPLICATE, "the same signed item appears twice", it.hash, it.member
                )
            )
            continue
        seen.add(it.hash)
        if it.member not in members:  # not from this charter's verifier: refuse
            rejected.append(
                Rejection(
                    Reason.UNKNOWN_MEMBER, f"{it.member!r} is not a member", it.hash, it.member
                )
            )
            continue
        if isinstance(it, SignedStatement):
            statements[it.member].append(it)
        else:
            heartbeats[it.member].append(it)
    members = {
        m: member_facts(
            m,
            statements.get(m, []),
            heartbeats.get(m, []),
            counted=counted,
            quota=quota,
        )
        for m in sorted(set(statements) | set(heartbeats))
    }
    return Facts(members, rejected)


def member_facts(
    member: str,
    statements: Iterable[SignedStatement],
    heartbeats: Iterable[SignedHeartbeat],
    *,
    counted: Set[bytes] | None = None,
    quota: int | None = None,
) -> MemberFacts:
    """One member's facts from its distinct verified items (any order).

    `counted` is None for complete logs (every statement linked to seq 1 through held ones).
    For partial logs (a bounded proof, docs/protocol.md §8.5) it holds the hashes of the
    statements the node that sent the proof counts: only those count, linked to their
    predecessor where it is held, and on that node's word where it is elided.

    `quota` is the charter's max_statements_per_hour (None: not checked). It is checked on
    complete logs only: a partial log does not hold the statements it would count."""
    rejected: list[Rejection] = []
    by_seq: dict[int, list[SignedStatement]] = defaultdict(list)
    for st in sorted(statements, key=lambda s: s.hash):
        by_seq[st.seq].append(st)
    hbs = sorted(heartbeats, key=lambda h: h.hash)
    valid = _chain(by_seq, rejected, counted, quota if counted is None else None)
    evidence = _evidence(member, by_seq, hbs)
    fork_at = min((ev.seq for ev in evidence), default=None)
    latest = max(
        hbs, key=lambda h: (h.heartbeat.counter, h.heartbeat.issued_at_ms, h.hash), default=None
    )
    committed_by = max(hbs, key=lambda h: (h.heartbeat.head_seq, h.hash), default=None)
    facts = MemberFacts(
        member=member,
        valid=valid,
        latest=latest,
        committed=committed_by.heartbeat.head_seq if committed_by is not None else 0,
        evidence=evidence,
        fork_at=fork_at,
        votes={},
        compliance={},
        attestations={},
        attested=set(),
        counted=[],
        rejected=rejected,
        committed_by=committed_by,
    )
    for seq in sorted(valid):
        for st in valid[seq]:
            count(facts, st)
    return facts


def count(facts: MemberFacts, st: SignedStatement) -> None:
    """Add one counted statement (already in `facts.valid`) to the member's tallies."""
    facts.counted.append(st)
    b = st.statement.body
    if isinstance(b, Vote):
        if b.decision is Decision.LIFT and facts.fork_at is not None and st.seq >= facts.fork_at:
            # fail-safe: an equivocator's lift counts only where every branch of its log has
            # it, i.e. below the lowest seq it forked at
            return
        key = (b.epoch, b.decision)
        _keep_earliest(facts.votes, key, st)
        _keep_earliest(facts.votes_under.setdefault(st.statement.charter_digest, {}), key, st)
    elif isinstance(b, Compliance):
        cur = facts.compliance.get(b.epoch)
        if cur is None or (st.seq, st.hash) > (cur.seq, cur.hash):
            facts.compliance[b.epoch] = st
    elif isinstance(b, TriggerAttestation):
        facts.attested.add(b.trigger_id)
        akey = (b.epoch, b.trigger_id)
        _keep_earliest(facts.attestations, akey, st)
        under = facts.attestations_under.setdefault(st.statement.charter_digest, {})
        _keep_earliest(under, akey, st)


def _keep_earliest(slot: dict[_K, SignedStatement], key: _K, st: SignedStatement) -> None:
    cur = slot.get(key)
    if cur is None or _earlier(st, cur):
        slot[key] = st


def _earlier(a: SignedStatement, b: SignedStatement) -> bool:
    return (a.statement.issued_at_ms, a.hash) < (b.statement.issued_at_ms, b.hash)


def _chain(
    seqs: Mapping[int, list[SignedStatement]],
    rejected: list[Rejection],
    vouched: Set[bytes] | None = None,
    quota: int | None = None,
) -> dict[int, list[SignedStatement]]:
    """Statements linked to seq 1 through held statements, each within the quota of its hour;
    in a partial log (`vouched`: what the sending node counts), the vouched statements linked
    to their held predecessor or with it elided. The rest are rejected."""
    valid: dict[int, list[SignedStatement]] = {}
    per_window: Counter[int] = Counter()  # counted statements at lower seqs, by hour
    for seq in sorted(seqs):
        ok: list[SignedStatement] = []
        counted = {p.hash for p in valid.get(seq - 1, [])}
        for st in seqs[seq]:
            # A fork may hold several n-1: check against the one st names, if held.
            held = seqs.get(seq - 1, [])
            pred = next((p for p in held if p.hash == st.statement.prev_hash), None)
            if vouched is not None and st.hash not in vouched:
                rejected.append(
                    Rejection(
                        Reason.INVALID,
                        "not counted by the node that sent this partial proof",
                        st.hash,
                        st.member,
                    )
                )
                continue
            if pred is None and vouched is not None and seq > 1:
                ok.append(st)  # its predecessor is elided: the link is the node's word
                continue
            if pred is not None and pred.hash not in counted:
                rejected.append(
                    Rejection(
                        Reason.MISSING_PREDECESSOR,
                        f"seq {seq - 1} is not counted",
                        st.hash,
                        st.member,
                    )
                )
                continue
            pred = pred or (held[0] if held else None)
            problem = link_problem(st.statement, Predecessor.of(pred) if pred else None)
            at = st.statement.issued_at_ms
            if problem is None and quota is not None and per_window[window_of(at)] >= quota:
                problem = LinkProblem(Reason.QUOTA, quota_detail(quota, at))
            if problem is None:
                ok.append(st)
            else:
                rejected.append(Rejection(problem.reason, problem.detail, st.hash, st.member))
        if ok:
            valid[seq] = ok
            per_window.update(window_of(st.statement.issued_at_ms) for st in ok)
    return valid


def _evidence(
    member: str,
    statements: Mapping[int, list[SignedStatement]],
    hbs: list[SignedHeartbeat],
) -> list[Evidence]:
    """Evidence among one member's verified items (docs/protocol.md §7): forks (a seq committed
    to two hashes), statements a heartbeat denies, and heads taken back. One piece per seq in
    doubt: of the candidate pairs found, the one with the lowest evidence id. `hbs` is sorted
    by hash."""
    out: dict[int, Evidence] = {}

    def add(a: Verified, b: Verified) -> None:
        seq = find_conflict(a, b)
        if seq is None:
            return
        first, second = sorted((a, b), key=lambda v: v.hash)
        ev = Evidence(member, seq, first.envelope, second.envelope)
        cur = out.get(seq)
        if cur is None or ev.id < cur.id:
            out[seq] = ev

    stmts = [s for lst in statements.values() for s in lst]
    items: list[Verified] = [*stmts, *hbs]
    by_seq: dict[int, dict[bytes, Verified]] = defaultdict(dict)
    for it in sorted(items, key=lambda i: i.hash):
        for seq, h in commitments(it).items():
            by_seq[seq].setdefault(h, it)
    for seq in sorted(by_seq):
        claims = by_seq[seq]
        if len(claims) >= 2:
            (_, a), (_, b) = sorted(claims.items())[:2]
            add(a, b)  # no conflict when both commit to seq through unrelated items
    if hbs:
        # A statement above a heartbeat's head, issued at or before it: of those issued by
        # each heartbeat's time, the one with the highest (seq, hash) is the witness.
        by_time = sorted(stmts, key=lambda s: (s.statement.issued_at_ms, s.hash))
        times = [s.statement.issued_at_ms for s in by_time]
        best: list[SignedStatement] = []
        for st in by_time:
            top = best[-1] if best else None
            best.append(st if top is None or (st.seq, st.hash) > (top.seq, top.hash) else top)
        for hb in hbs:
            i = bisect.bisect_right(times, hb.heartbeat.issued_at_ms)
            if i and best[i - 1].seq > hb.heartbeat.head_seq:
                add(best[i - 1], hb)
        # A head taken back: a heartbeat whose counter is not below another's, with a lower
        # head. Walk in counter order, comparing with the highest head seen so far.
        top_hb: SignedHeartbeat | None = None
        for hb in sorted(hbs, key=lambda h: (h.heartbeat.counter, -h.heartbeat.head_seq)):
            if top_hb is not None and top_hb.heartbeat.head_seq > hb.heartbeat.head_seq:
                add(top_hb, hb)
            if top_hb is None or hb.heartbeat.head_seq > top_hb.heartbeat.head_seq:
                top_hb = hb
    return [out[s] for s in sorted(out)]
