"""The view: is a coordinated pause in effect? A pure, deterministic function of the facts.

`evaluate(charter, items, now_ms)` takes verified items (statements, heartbeats), checks the
rules that need more than one item (hash chains, duplicates, forks), builds the pause and lift
certificates epoch by epoch, and answers PAUSED, NOT_PAUSED or UNKNOWN with the time the answer
is proven as of. The same facts and the same `now_ms` always give the same view, in any order.

An answer is proven as of time T when every member either is *covered* at T — its latest
heartbeat is fresh, was issued at or after T, and we hold its whole log up to that heartbeat's
head — or is one of too few uncovered members to have produced an unseen certificate that would
flip the answer. As of is the latest such T; if there is none the answer is UNKNOWN, with the
certified state (what the certificates in hand prove) alongside. docs/protocol.md §6 is the spec.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, overload

from pausenet.core.charter import Charter, Member, Role
from pausenet.core.dsse import Envelope
from pausenet.core.evidence import Evidence
from pausenet.core.facts import Facts, MemberFacts, build_facts
from pausenet.core.proof import Proof
from pausenet.core.proof import select as select_proof
from pausenet.core.records import (
    Compliance,
    ComplianceState,
    Decision,
    SignedStatement,
)
from pausenet.core.tripwire import (
    PATH_LABS,
    PATH_OVERSEERS,
    TripwireTally,
    describe_path,
    tripwire_path,
)
from pausenet.core.verify import Rejection, Verified, verify_envelope

__all__ = [
    "PATH_LABS",
    "PATH_OVERSEERS",
    "Certificate",
    "ComplianceStatus",
    "EpochRecord",
    "MemberStatus",
    "PauseState",
    "VersionSpan",
    "View",
    "decide",
    "describe_path",
    "evaluate",
    "evaluate_envelopes",
    "shows_whole_log",
    "with_compliance",
]


class PauseState(StrEnum):
    PAUSED = "PAUSED"
    NOT_PAUSED = "NOT_PAUSED"
    UNKNOWN = "UNKNOWN"


class ComplianceStatus(StrEnum):
    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    PENDING = "pending"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Certificate:
    """Votes (or, for a tripwire, attestations) that reached a threshold: each member once,
    with its earliest qualifying statement."""

    epoch: int
    decision: Decision
    labs: tuple[str, ...]
    overseers: tuple[str, ...]
    votes: tuple[bytes, ...]  # payload hashes of the counted vote statements
    formed_at_ms: int  # issued_at of the vote that reached the threshold
    effective_at_ms: int  # when it takes effect (epoch order, minimum pause duration)
    # Which path formed it: PATH_LABS, PATH_OVERSEERS or "tripwire:<trigger id>" (a lift: labs).
    path: str = PATH_LABS
    attesters: tuple[str, ...] = ()  # for a tripwire: the eligible members that attested
    attestations: tuple[bytes, ...] = ()  # for a tripwire: their attestations' payload hashes


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    pause: Certificate | None
    lift: Certificate | None
    pause_votes: tuple[str, ...]  # every member with a counted PAUSE vote for this epoch
    lift_votes: tuple[str, ...]  # every member with a counted LIFT vote for this epoch
    # per tripwire trigger: the eligible members with a counted attestation bound to this epoch
    tripwire_attesters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Under several charter versions: the digest of the version whose rules the epoch's pause
    # started under (and so whose rules lift it); empty under one charter.
    charter_digest: bytes = b""


@dataclass(frozen=True)
class VersionSpan:
    """When one charter version governed (docs/protocol.md §15.8): from its activation until the
    next version's. Reported only when the view runs over several versions."""

    version: int
    digest: bytes
    ratified_at_ms: int  # when its last needed approval was signed (0: the pinned version)
    active_from_ms: int | None  # None: ratified while a pause is in effect, waiting for its lift


@dataclass(frozen=True)
class MemberStatus:
    id: str
    role: Role
    head_seq: int
    head_hash: bytes
    heartbeat_counter: int
    heartbeat_at_ms: int | None
    address: str
    fresh: bool  # latest heartbeat within the charter's TTL
    synced: bool  # fresh, not an equivocator, and its log held up to the heartbeat's head
    equivocator: bool
    compliance: ComplianceStatus | None  # only while the certified state is PAUSED (labs)


class Envelopes(Sequence[Envelope]):
    """A view's complete proof, listed from its facts when first read (then kept)."""

    __slots__ = ("_items", "_make")

    def __init__(self, make: Callable[[], Iterable[Envelope]]) -> None:
        self._make: Callable[[], Iterable[Envelope]] | None = make
        self._items: tuple[Envelope, ...] | None = None

    def _all(self) -> tuple[Envelope, ...]:
        if self._items is None:
            assert self._make is not None
            self._items, self._make = tuple(self._make()), None
        return self._items

    @overload
    def __getitem__(self, i: int) -> Envelope: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Envelope, ...]: ...
    def __getitem__(self, i: int | slice) -> Envelope | tuple[Envelope, ...]:
        return self._all()[i]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Envelope]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Envelopes | tuple | list):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"Envelopes({len(self)})"


@dataclass(frozen=True)
class View:
    state: PauseState
    epoch: int  # the paused epoch, or the last lifted one (0: never paused)
    as_of_ms: int | None  # None when UNKNOWN
    now_ms: int
    certified_state: PauseState  # what the certificates in hand prove (never UNKNOWN)
    certified_since_ms: int | None  # when the certified state took effect (None: never paused)
    explanation: str
    charter_digest: bytes
    epochs: tuple[EpochRecord, ...]
    members: tuple[MemberStatus, ...]
    evidence: tuple[Evidence, ...]
    triggers_attested: tuple[tuple[str, tuple[str, ...]], ...]
    rejected: tuple[Rejection, ...]
    envelopes: Sequence[Envelope] = field(repr=False)  # everything counted: the full proof
    # the bounded proof a node sends (pausenet.core.proof); None only for views made by hand
    proof: Proof | None = field(default=None, repr=False)
    # seqs from 1 to each member's head at which no counted statement is held: 0 for complete
    # logs, the statements a partial proof elides otherwise (docs/protocol.md §8.5)
    elided: int = 0
    versions: tuple[VersionSpan, ...] = ()  # several charter versions only, pinned first

    def member(self, member_id: str) -> MemberStatus | None:
        return next((m for m in self.members if m.id == member_id), None)

    def to_json(self) -> dict[str, Any]:
        doc = self._json()
        if self.versions:
            doc["versions"] = [
                {
                    "version": v.version,
                    "digest": v.digest.hex(),
                    "ratified_at": v.ratified_at_ms,
                    "active_from": v.active_from_ms,
                }
                for v in self.versions
            ]
            for rec, e in zip(doc["epochs"], self.epochs, strict=True):
                if e.charter_digest:
                    rec["charter_digest"] = e.charter_digest.hex()
        return doc

    def _json(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "epoch": self.epoch,
            "as_of": self.as_of_ms,
            "now": self.now_ms,
            "certified_state": self.certified_state.value,
            "certified_since": self.certified_since_ms,
            "explanation": self.explanation,
            "charter_digest": self.charter_digest.hex(),
            "members": [
                {
                    "id": m.id,
                    "role": m.role.value,
                    "head_seq": m.head_seq,
                    "head_hash": m.head_hash.hex(),
                    "heartbeat_counter": m.heartbeat_counter,
                    "heartbeat_at": m.heartbeat_at_ms,
                    "address": m.address,
                    "fresh": m.fresh,
                    "synced": m.synced,
                    "equivocator": m.equivocator,
                    "compliance": m.compliance.value if m.compliance else None,
                }
                for m in self.members
            ],
            "epochs": [
                {
                    "epoch": e.epoch,
                    "pause": _cert_json(e.pause),
                    "lift": _cert_json(e.lift),
                    "pause_votes": list(e.pause_votes),
                    "lift_votes": list(e.lift_votes),
                    "tripwire_attesters": {t: list(ms) for t, ms in e.tripwire_attesters},
                }
                for e in self.epochs
            ],
            "evidence": [
                {
                    "id": ev.id.hex(),
                    "member": ev.member,
                    "seq": ev.seq,
                    "first": ev.first.payload_hash.hex(),
                    "second": ev.second.payload_hash.hex(),
                }
                for ev in self.evidence
            ],
            "triggers_attested": {t: list(ms) for t, ms in self.triggers_attested},
            "rejected": [
                {
                    "payload_sha256": r.payload_hash.hex(),
                    "member": r.member,
                    "reason": r.reason.value,
                    "detail": r.detail,
                }
                for r in self.rejected
            ],
        }


def _cert_json(c: Certificate | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        "labs": list(c.labs),
        "overseers": list(c.overseers),
        "votes": [h.hex() for h in c.votes],
        "formed_at": c.formed_at_ms,
        "effective_at": c.effective_at_ms,
        "path": c.path,
        "attesters": list(c.attesters),
        "attestations": [h.hex() for h in c.attestations],
    }


def evaluate_envelopes(
    charter: Charter,
    envelopes: Iterable[Envelope],
    now_ms: int,
    *,
    counted: Set[bytes] | None = None,
) -> View:
    """Verify each envelope, then evaluate; rejected envelopes are listed in the view.
    `counted`: None for complete logs, else what a partial proof's node counts (see evaluate)."""
    verified: list[Verified] = []
    rejected: list[Rejection] = []
    for env in envelopes:
        r = verify_envelope(charter, env, now_ms=now_ms)
        (rejected if isinstance(r, Rejection) else verified).append(r)  # type: ignore[arg-type]
    return evaluate(charter, verified, now_ms, rejected=rejected, counted=counted)


def evaluate(
    charter: Charter,
    items: Iterable[Verified],
    now_ms: int,
    *,
    rejected: Iterable[Rejection] = (),
    counted: Set[bytes] | None = None,
) -> View:
    """The view from verified items. Items must come from `verify_envelope` under this charter.

    With `counted` (a bounded proof's counted statements, `pausenet.core.proof`) the logs are
    partial: only the statements listed there count, a statement whose predecessor is absent
    on the word of the node that listed it."""
    facts = build_facts(charter, items, counted=counted)
    return decide(charter, facts, now_ms, rejected=rejected)


def decide(
    charter: Charter, facts: Facts, now_ms: int, *, rejected: Iterable[Rejection] = ()
) -> View:
    """The view at `now_ms` from members' facts (`pausenet.core.facts`): certificates epoch by
    epoch, then what the facts prove as of when. Costs O(members x epochs), not O(log)."""
    ev = _Evaluation(charter, now_ms, [*rejected, *facts.rejected])
    for mf in facts.members.values():
        ev.rejected.extend(mf.rejected)
    return with_proof(ev.decide(facts.members), facts)


def with_proof(view: View, facts: Facts) -> View:
    """The view with what a partial proof elides and its bounded proof (pausenet.core.proof),
    both read from the facts it was decided from."""
    elided = sum(mf.head_seq - len(mf.valid) for mf in facts.members.values())
    view = replace(view, elided=elided)
    return replace(view, proof=select_proof(view, facts))


class _Evaluation:
    def __init__(self, charter: Charter, now_ms: int, rejected: list[Rejection]) -> None:
        self.c = charter
        self.now = now_ms
        self.rejected = rejected
        self.ttl_ms = charter.rules.heartbeat_ttl_s * 1000
        self.tally = TripwireTally(charter)  # eligible members' epoch-bound attestations

    # -- step 2: certificates, epoch by epoch ----------------------------------------------

    def decide(self, facts: Mapping[str, MemberFacts]) -> View:
        c, rules = self.c, self.c.rules
        fs = [facts[m] for m in sorted(facts)]
        evidence = [e for mf in fs for e in mf.evidence]
        equivocators = frozenset(mf.member for mf in fs if mf.evidence)
        latest = {mf.member: mf.latest for mf in fs if mf.latest is not None}
        # earliest counted vote per (epoch, decision, member)
        votes: dict[tuple[int, Decision], dict[str, SignedStatement]] = defaultdict(dict)
        compliance: dict[tuple[int, str], SignedStatement] = {}
        attested: dict[str, set[str]] = defaultdict(set)
        tally = self.tally
        for mf in fs:
            for key, st in mf.votes.items():
                votes[key][mf.member] = st
            for epoch, st in mf.compliance.items():
                compliance[(epoch, mf.member)] = st
            for st in mf.attestations.values():
                tally.add(st)
            for trigger in mf.attested:
                attested[trigger].add(mf.member)

        min_pause_ms = rules.min_pause_s * 1000
        certified = PauseState.NOT_PAUSED
        epoch, since = 0, None  # current (paused or last lifted) epoch and when it took effect
        paused_at = 0
        certs: dict[int, tuple[Certificate | None, Certificate | None]] = {}
        # Walk the epochs in order: epoch e's pause counts only once epoch e-1 is lifted.
        while True:
            e = epoch + 1
            pause = self._pause_cert(e, votes.get((e, Decision.PAUSE), {}))
            if pause is None:
                break
            pause = replace(pause, effective_at_ms=max(pause.formed_at_ms, since or 0))
            certified, epoch, since = PauseState.PAUSED, e, pause.effective_at_ms
            paused_at = since
            lift = self._lift_cert(e, votes.get((e, Decision.LIFT), {}))
            if lift is not None:
                lift = replace(
                    lift, effective_at_ms=max(lift.formed_at_ms, paused_at + min_pause_ms)
                )
            certs[e] = (pause, lift)
            if lift is None or lift.effective_at_ms > self.now:
                break  # no lift yet, or one waiting out the minimum pause
            certified, since = PauseState.NOT_PAUSED, lift.effective_at_ms
        epochs = [
            EpochRecord(
                e,
                *certs.get(e, (None, None)),
                tuple(sorted(votes.get((e, Decision.PAUSE), {}))),
                tuple(sorted(votes.get((e, Decision.LIFT), {}))),
                tally.attesters(e),
            )
            for e in sorted({e for (e, _d) in votes} | set(certs) | tally.epochs())
        ]

        members = self._member_status(facts, equivocators)
        synced_at = {m.id: m.heartbeat_at_ms for m in members if m.synced}
        assert all(t is not None for t in synced_at.values())

        # -- step 3: could unseen statements flip the answer? ------------------------------
        def can_flip(uncovered: frozenset[str]) -> bool:
            labs = {m.id for m in c.labs()}
            ovs = {m.id for m in c.overseers()}
            if certified is PauseState.NOT_PAUSED:
                pv = set(votes.get((epoch + 1, Decision.PAUSE), {}))
                if len((pv | uncovered) & labs) >= rules.pause_threshold:
                    return True
                opt = rules.overseer_pause_threshold
                if opt and len((pv | uncovered) & ovs) >= opt:
                    return True
                # uncovered eligible members could have completed a tripwire unseen
                return tally.could_reach(epoch + 1, uncovered)
            if paused_at + min_pause_ms > self.now:
                return False  # no lift can take effect yet, whatever is unseen
            lv = set(votes.get((epoch, Decision.LIFT), {}))
            pot = lv | (uncovered - equivocators)  # unseen lifts of equivocators never count
            return (
                len(pot & labs) >= rules.lift_threshold
                and len(pot & ovs) >= rules.lift_overseer_threshold
            )

        everyone = frozenset(m.id for m in c.members)
        as_of: int | None = None
        blockers: frozenset[str] = frozenset()
        if not can_flip(everyone):
            as_of = self.now
        else:
            # As of T the certified state must already have taken effect: an earlier T would
            # prove the new state at a moment the old one still held.
            floor = since or 0
            times = {t for t in synced_at.values() if t is not None and t >= floor}
            for t in sorted(times, reverse=True):
                covered = {m for m, tm in synced_at.items() if tm is not None and tm >= t}
                if not can_flip(everyone - covered):
                    as_of = min(t, self.now)
                    break
            if as_of is None:
                blockers = everyone - set(synced_at)
        state = certified if as_of is not None else PauseState.UNKNOWN

        # compliance, only while certified PAUSED
        if certified is PauseState.PAUSED:
            labs = frozenset(m.id for m in members if m.role is Role.LAB)
            latest_compliance = {m: st for (e, m), st in compliance.items() if e == epoch}
            deadline = paused_at + rules.compliance_grace_s * 1000
            members = with_compliance(members, labs, latest_compliance, deadline, self.now)

        # Listed when first read: a view is made after every change, its complete proof read
        # only for full bundles. Counted lists only grow (a rebuilt member gets a new list),
        # so each is taken up to its length now: the view stays a snapshot.
        counted = [(mf.counted, len(mf.counted)) for mf in fs]
        tail = [latest[m].envelope for m in sorted(latest)]
        for ev in evidence:
            tail += [ev.first, ev.second]
        dedupe = bool(evidence)  # facts hold each item once: only evidence can repeat one

        def everything() -> list[Envelope]:
            envelopes = [s.envelope for lst, n in counted for s in lst[:n]] + tail
            if not dedupe:
                return envelopes
            seen_env: set[bytes] = set()
            out = []
            for env in envelopes:
                if env.payload_hash not in seen_env:
                    seen_env.add(env.payload_hash)
                    out.append(env)
            return out

        return View(
            state=state,
            epoch=epoch,
            as_of_ms=as_of,
            now_ms=self.now,
            certified_state=certified,
            certified_since_ms=since,
            explanation=self._explain(
                state, certified, epoch, blockers, as_of, certs.get(epoch, (None, None))[0]
            ),
            charter_digest=c.digest,
            epochs=tuple(epochs),
            members=tuple(members),
            evidence=tuple(evidence),
            triggers_attested=tuple((t, tuple(sorted(ms))) for t, ms in sorted(attested.items())),
            rejected=tuple(
                sorted(
                    self.rejected,
                    key=lambda r: (r.member, r.payload_hash, r.reason.value, r.detail),
                )
            ),
            envelopes=Envelopes(everything),
        )

    def _pause_cert(self, epoch: int, voters: Mapping[str, SignedStatement]) -> Certificate | None:
        """The pause certificate for `epoch`, formed by whichever path reached its threshold
        first: lab votes, overseer votes or a tripwire. Ties go to lab votes, then overseer
        votes, then tripwires in trigger id order (docs/protocol.md §8.1)."""
        rules = self.c.rules
        labs, ovs = self._split(voters)
        paths: list[tuple[int, int, str, str]] = []  # (k-th time, rank, trigger, path)
        if len(labs) >= rules.pause_threshold:
            paths.append((_kth_time(labs, rules.pause_threshold), 0, "", PATH_LABS))
        opt = rules.overseer_pause_threshold
        if opt and len(ovs) >= opt:
            paths.append((_kth_time(ovs, opt), 1, "", PATH_OVERSEERS))
        for t_ms, trigger in self.tally.reached(epoch):
            paths.append((t_ms, 2, trigger, tripwire_path(trigger)))
        if not paths:
            return None
        formed, _rank, trigger, path = min(paths)
        cert = _cert(epoch, Decision.PAUSE, labs, ovs, min(formed, self.now))
        if not trigger:
            return replace(cert, path=path)
        atts = self.tally.attestations(epoch, trigger)
        return replace(
            cert,
            path=path,
            attesters=tuple(sorted(atts)),
            attestations=tuple(st.hash for _m, st in sorted(atts.items())),
        )

    def _lift_cert(self, epoch: int, voters: Mapping[str, SignedStatement]) -> Certificate | None:
        rules = self.c.rules
        labs, ovs = self._split(voters)
        if len(labs) < rules.lift_threshold or len(ovs) < rules.lift_overseer_threshold:
            return None
        formed = _kth_time(labs, rules.lift_threshold)
        if rules.lift_overseer_threshold:
            formed = max(formed, _kth_time(ovs, rules.lift_overseer_threshold))
        return _cert(epoch, Decision.LIFT, labs, ovs, min(formed, self.now))

    def _split(
        self, voters: Mapping[str, SignedStatement]
    ) -> tuple[dict[str, SignedStatement], dict[str, SignedStatement]]:
        labs: dict[str, SignedStatement] = {}
        ovs: dict[str, SignedStatement] = {}
        for mid, st in voters.items():
            m = self.c.member(mid)
            assert m is not None
            (labs if m.role is Role.LAB else ovs)[mid] = st
        return labs, ovs

    def _member_status(
        self,
        facts: Mapping[str, MemberFacts],
        equivocators: frozenset[str],
        members: Iterable[Member] | None = None,
    ) -> list[MemberStatus]:
        out = []
        for m in self.c.members if members is None else members:
            mf = facts.get(m.id)
            chain = mf.valid if mf is not None else {}
            head_seq = mf.head_seq if mf is not None else 0
            head_hash = min(s.hash for s in chain[head_seq]) if chain else b""
            hb = mf.latest if mf is not None else None
            fresh = synced = False
            if hb is not None:
                assert mf is not None
                fresh = self.now - hb.heartbeat.issued_at_ms <= self.ttl_ms
                synced = fresh and shows_whole_log(mf) and m.id not in equivocators
            out.append(
                MemberStatus(
                    id=m.id,
                    role=m.role,
                    head_seq=head_seq,
                    head_hash=head_hash,
                    heartbeat_counter=hb.heartbeat.counter if hb else 0,
                    heartbeat_at_ms=hb.heartbeat.issued_at_ms if hb else None,
                    address=hb.heartbeat.address if hb else "",
                    fresh=fresh,
                    synced=synced,
                    equivocator=m.id in equivocators,
                    compliance=None,
                )
            )
        return out

    def _explain(
        self,
        state: PauseState,
        certified: PauseState,
        epoch: int,
        blockers: frozenset[str],
        as_of: int | None,
        pause: Certificate | None,
    ) -> str:
        if certified is PauseState.PAUSED:
            base = f"a pause certificate for epoch {epoch} is in hand and not lifted"
            if pause is not None and pause.path != PATH_LABS:
                base += f" (formed by {describe_path(pause.path)})"
        elif epoch:
            base = (
                f"epoch {epoch} was paused and lifted; no pause certificate for epoch {epoch + 1}"
            )
        else:
            base = "no pause certificate for epoch 1"
        if state is not PauseState.UNKNOWN:
            return f"{base}; proven as of {as_of}"
        flip = "lift" if certified is PauseState.PAUSED else "pause"
        return (
            f"{base}, but {', '.join(sorted(blockers))} not synced: together they could have"
            f" signed an unseen {flip} certificate"
        )


def with_compliance(
    members: Iterable[MemberStatus],
    labs: frozenset[str],
    latest: Mapping[str, SignedStatement],
    deadline_ms: int,
    now_ms: int,
) -> list[MemberStatus]:
    """Each lab's compliance with the pause in effect (docs/protocol.md §8.4), from its latest
    Compliance statement for the paused epoch; members that are not labs have none."""
    out = []
    for m in members:
        cs: ComplianceStatus | None = None
        if m.id in labs:
            cst = latest.get(m.id)
            if cst is not None:
                b = cst.statement.body
                assert isinstance(b, Compliance)
                cs = (
                    ComplianceStatus.COMPLIANT
                    if b.state is ComplianceState.HALTED
                    else ComplianceStatus.NON_COMPLIANT
                )
            else:
                cs = ComplianceStatus.PENDING if now_ms < deadline_ms else ComplianceStatus.OVERDUE
        out.append(replace(m, compliance=cs))
    return out


def shows_whole_log(mf: MemberFacts) -> bool:
    """Whether the member's latest heartbeat names a head we hold, and we hold every statement
    any of its heartbeats committed to: it has shown us all it had signed by then."""
    hb = mf.latest
    if hb is None:
        return False
    h = hb.heartbeat
    has_head = h.head_seq == 0 or any(s.hash == h.head_hash for s in mf.valid.get(h.head_seq, []))
    return has_head and mf.head_seq >= mf.committed


def _kth_time(voters: Mapping[str, SignedStatement], k: int) -> int:
    """Time the k-th distinct voter signed: when the threshold was reached."""
    return heapq.nsmallest(k, (s.statement.issued_at_ms for s in voters.values()))[-1]


def _cert(
    epoch: int,
    decision: Decision,
    labs: Mapping[str, SignedStatement],
    ovs: Mapping[str, SignedStatement],
    formed: int,
) -> Certificate:
    return Certificate(
        epoch=epoch,
        decision=decision,
        labs=tuple(sorted(labs)),
        overseers=tuple(sorted(ovs)),
        votes=tuple(st.hash for _m, st in sorted({**labs, **ovs}.items())),
        formed_at_ms=formed,
        effective_at_ms=formed,
    )
