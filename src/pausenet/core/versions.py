"""The view across charter versions: how statements signed under different versions count.

A federation's charter changes by amendment (`pausenet.core.governance` finds the versions in
force). Logs, seqs and epochs carry across versions; docs/protocol.md §15.8 gives the rules this
module implements:

- Each version after the pinned one has a ratification time R (when its last needed approval was
  signed) and an activation time A: R, unless a pause is in effect then, in which case the lift
  of that pause. So an amendment never takes effect while a pause is in effect. A version governs
  from its activation until the next one's.
- A statement names the version it was signed under and verifies with its signer's key there. It
  counts toward version V's tallies iff V lists its signer with the key that verified it: a
  removed member counts for no version that removed it, an old key for no version that replaced
  it, and old-key statements stay valid history of the versions that listed that key.
- Epoch e's pause forms under the first version, in chain order, whose certificate forms while it
  governs, and is lifted under that version's rules alone (members, keys, thresholds, minimum
  pause), whatever was ratified meanwhile.

`verify_versions` checks one envelope against the versions; `evaluate_versions` is the view. With
one version both equal their single-charter counterparts (`verify_envelope`, `evaluate`).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from functools import cached_property

from pausenet.core.approval import SignedApproval, verify_approval
from pausenet.core.charter import Charter, Member, Role
from pausenet.core.dsse import Envelope
from pausenet.core.facts import Facts, MemberFacts, build_facts_of
from pausenet.core.governance import ChainResult, changed_members
from pausenet.core.payload import CodecError, decode_heartbeat, decode_statement
from pausenet.core.records import (
    HEARTBEAT_TYPE,
    STATEMENT_TYPE,
    Decision,
    SignedHeartbeat,
    SignedStatement,
)
from pausenet.core.verify import Reason, Rejection, Verified, verify_envelope
from pausenet.core.view import (
    Certificate,
    EpochRecord,
    PauseState,
    VersionSpan,
    View,
    _Evaluation,
    shows_whole_log,
    with_compliance,
    with_proof,
)
from pausenet.errors import GovernanceError

__all__ = ["Version", "Versions", "decide_versions", "evaluate_versions", "verify_versions"]

# Later than any int64 millisecond time: "not active (yet)".
NEVER = 1 << 63

# Rejections under the newest version that an item signed under an older one may earn there
# (another key, a member since removed, another digest, an older version's larger size limit).
_REROUTE = frozenset(
    {Reason.UNKNOWN_MEMBER, Reason.BAD_SIGNATURE, Reason.WRONG_CHARTER, Reason.OVERSIZE}
)


@dataclass(frozen=True)
class Version:
    charter: Charter
    ratified_at_ms: int  # R: when its last needed approval was signed; 0 for the pinned version


@dataclass(frozen=True)
class Versions:
    """The charter versions in force, pinned first, each amending the one before it."""

    versions: tuple[Version, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise GovernanceError("no charter version is in force")
        for a, b in zip(self.versions, self.versions[1:], strict=False):
            if b.charter.version != a.charter.version + 1 or b.charter.previous != a.charter.digest:
                raise GovernanceError(
                    f"version {b.charter.version} does not amend version {a.charter.version}"
                )

    @classmethod
    def single(cls, charter: Charter) -> Versions:
        return cls((Version(charter, 0),))

    @classmethod
    def from_chain(cls, chain: ChainResult, approvals: Iterable[Envelope]) -> Versions:
        """The versions a chain walk found in force, with their ratification times read from
        the approvals the walk was given."""
        if not chain.in_force:
            raise GovernanceError(chain.stopped)
        envs = list(approvals)
        out = [Version(chain.in_force[0].charter, 0)]
        for prev, cur in zip(chain.in_force, chain.in_force[1:], strict=False):
            out.append(Version(cur.charter, ratified_at(prev.charter, cur.charter, envs)))
        return cls(tuple(out))

    @classmethod
    def of(cls, charters: Sequence[Charter], approvals: Iterable[Envelope]) -> Versions:
        """Versions in force (pinned first) as a node adopted them, with their ratification
        times read from the approvals it holds."""
        envs = list(approvals)
        out = [Version(charters[0], 0)]
        for prev, cur in itertools.pairwise(charters):
            out.append(Version(cur, ratified_at(prev, cur, envs)))
        return cls(tuple(out))

    @property
    def charters(self) -> tuple[Charter, ...]:
        return tuple(v.charter for v in self.versions)

    def __len__(self) -> int:
        return len(self.versions)

    @property
    def newest(self) -> Charter:
        return self.versions[-1].charter

    @cached_property
    def _by_digest(self) -> dict[bytes, Charter]:
        return {v.charter.digest: v.charter for v in self.versions}

    def by_digest(self, digest: bytes) -> Charter | None:
        return self._by_digest.get(digest)

    @cached_property
    def member_ids(self) -> frozenset[str]:
        return frozenset(m.id for v in self.versions for m in v.charter.members)

    def latest_entry(self, member_id: str) -> Member | None:
        """The member as the newest version listing it lists it (its current key and role)."""
        for v in reversed(self.versions):
            m = v.charter.member(member_id)
            if m is not None:
                return m
        return None


def ratified_at(prev: Charter, charter: Charter, approvals: Iterable[Envelope]) -> int:
    """R: the time the last approval `charter` needed was signed: the latest of the k-th
    earliest lab approval (k = prev's amend_threshold), the same for overseers, and each
    required consent. Each member's earliest approval counts."""
    labs: dict[str, int] = {}
    overseers: dict[str, int] = {}
    consents: dict[str, int] = {}
    changed = set(changed_members(prev, charter))
    for env in approvals:
        got = verify_approval(charter, prev, env)
        if isinstance(got, SignedApproval):
            m = prev.member(got.member)
            assert m is not None
            _earliest(labs if m.role is Role.LAB else overseers, got)
        if changed:
            got = verify_approval(charter, charter, env)
            if isinstance(got, SignedApproval) and got.member in changed:
                _earliest(consents, got)
    times: list[int] = []
    for who, k in ((labs, prev.amend_threshold), (overseers, prev.amend_overseer_threshold)):
        if k and len(who) >= k:
            times.append(heapq.nsmallest(k, who.values())[-1])
        elif k:
            raise GovernanceError(
                f"the approvals given do not ratify version {charter.version}: pass the ones the"
                " chain was followed with"
            )
    if not changed <= set(consents):
        raise GovernanceError(
            f"the approvals given lack the consents version {charter.version} needs"
        )
    times += consents.values()
    return max(times, default=0)


def _earliest(slot: dict[str, int], a: SignedApproval) -> None:
    t = a.approval.issued_at_ms
    slot[a.member] = min(slot.get(a.member, t), t)


# -- one envelope ----------------------------------------------------------------------------------


def verify_versions(versions: Versions, env: Envelope, now_ms: int) -> Verified | Rejection:
    """Check one envelope against the versions in force (docs/protocol.md §15.8): a statement
    against the version it names, with its signer's key there; a heartbeat likewise, and only
    with its signer's key in the newest version that lists it."""
    newest = versions.newest
    got = verify_envelope(newest, env, now_ms=now_ms)
    if isinstance(got, Rejection):
        if len(versions) == 1 or got.reason not in _REROUTE:
            return got
        named = _named_version(versions, env)
        if named is None or named.digest == newest.digest:
            return got
        got = verify_envelope(named, env, now_ms=now_ms)
        if isinstance(got, Rejection):
            return got
    if isinstance(got, SignedHeartbeat) and got.heartbeat.charter_digest != newest.digest:
        named = versions.by_digest(got.heartbeat.charter_digest)
        current = versions.latest_entry(got.member)
        assert named is not None
        assert current is not None
        signer = named.member(got.member)
        assert signer is not None
        if signer.public_key != current.public_key:
            return Rejection(
                Reason.BAD_SIGNATURE,
                f"a heartbeat must be signed with {got.member}'s key in the newest version that"
                f" lists it; version {named.version}'s key was replaced",
                got.hash,
                got.member,
            )
    return got


def _named_version(versions: Versions, env: Envelope) -> Charter | None:
    """The version an envelope's payload names. For routing only: nothing counts until the
    signature verifies with that version's key."""
    limit = max(v.charter.limits.max_statement_bytes for v in versions.versions)
    if len(env.payload) > limit:
        return None
    try:
        if env.payload_type == STATEMENT_TYPE:
            digest = decode_statement(env.payload).charter_digest
        elif env.payload_type == HEARTBEAT_TYPE:
            digest = decode_heartbeat(env.payload).charter_digest
        else:
            return None
    except CodecError:
        return None
    return versions.by_digest(digest)


# -- the view --------------------------------------------------------------------------------------


def evaluate_versions(
    versions: Versions,
    items: Iterable[Verified],
    now_ms: int,
    *,
    rejected: Iterable[Rejection] = (),
    counted: Set[bytes] | None = None,
) -> View:
    """The view from verified items (from `verify_versions` with these versions), with its
    bounded proof. `counted`: None for complete logs, else what a partial proof's node counts
    (as `pausenet.core.view.evaluate`). The statement quota is the newest version's."""
    facts = build_facts_of(
        versions.member_ids, items, counted=counted, quota=versions.newest.max_statements_per_hour
    )
    return with_proof(decide_versions(versions, facts, now_ms, rejected=rejected), facts)


class _Span:
    """One version: its rules, and the votes and attestations that count toward them."""

    def __init__(
        self, versions: Versions, index: int, facts: Mapping[str, MemberFacts], now_ms: int
    ) -> None:
        v = versions.versions[index]
        self.c = v.charter
        self.ratified_at = v.ratified_at_ms
        self.ev = _Evaluation(self.c, now_ms, [])  # its tripwire tally is this version's
        self.min_pause_ms = self.c.rules.min_pause_s * 1000
        self.votes: dict[tuple[int, Decision], dict[str, SignedStatement]] = {}
        for m in self.c.members:
            mf = facts.get(m.id)
            if mf is None:
                continue
            # statements signed under any version that gives m the same key as this one
            for other in versions.versions:
                om = other.charter.member(m.id)
                if om is None or om.public_key != m.public_key:
                    continue
                d = other.charter.digest
                for key, st in mf.votes_under.get(d, {}).items():
                    slot = self.votes.setdefault(key, {})
                    cur = slot.get(m.id)
                    if cur is None or _earlier(st, cur):
                        slot[m.id] = st
                for st in mf.attestations_under.get(d, {}).values():
                    self.ev.tally.add(st)

    def pause_cert(self, epoch: int) -> Certificate | None:
        return self.ev._pause_cert(epoch, self.votes.get((epoch, Decision.PAUSE), {}))

    def lift_cert(self, epoch: int) -> Certificate | None:
        return self.ev._lift_cert(epoch, self.votes.get((epoch, Decision.LIFT), {}))

    def could_pause(self, epoch: int, unseen: frozenset[str], before: int = NEVER) -> bool:
        """Whether a pause certificate for `epoch` formed before `before` could exist if the
        `unseen` members had all voted and attested (docs/protocol.md §8.3, §15.8)."""
        rules = self.c.rules
        labs = {m.id for m in self.c.labs()}
        ovs = {m.id for m in self.c.overseers()}
        seen = self.votes.get((epoch, Decision.PAUSE), {})
        pv = {m for m, st in seen.items() if st.statement.issued_at_ms < before} | unseen
        if len(pv & labs) >= rules.pause_threshold:
            return True
        opt = rules.overseer_pause_threshold
        if opt and len(pv & ovs) >= opt:
            return True
        tally = self.ev.tally
        if before == NEVER:
            return tally.could_reach(epoch, unseen)
        for trigger, k in tally.threshold.items():
            atts = tally.attestations(epoch, trigger)
            early = {m for m, st in atts.items() if st.statement.issued_at_ms < before}
            if len((early | unseen) & tally.eligible[trigger]) >= k:
                return True
        return False

    def could_lift(self, epoch: int, unseen: frozenset[str]) -> bool:
        rules = self.c.rules
        pot = set(self.votes.get((epoch, Decision.LIFT), {})) | unseen
        return (
            len(pot & {m.id for m in self.c.labs()}) >= rules.lift_threshold
            and len(pot & {m.id for m in self.c.overseers()}) >= rules.lift_overseer_threshold
        )


def _earlier(a: SignedStatement, b: SignedStatement) -> bool:
    return (a.statement.issued_at_ms, a.hash) < (b.statement.issued_at_ms, b.hash)


@dataclass
class _Walk:
    """The result of walking the epochs and activations together."""

    active: list[int]  # A per version (NEVER: waiting for a lift not yet in hand)
    certified: PauseState
    epoch: int
    since: int | None
    paused_at: int
    certs: dict[int, tuple[Certificate, Certificate | None]]
    governed: dict[int, int]  # epoch -> index of the version its pause started under
    lifted_at: dict[int, int]  # epoch -> lift effective time, for lifted epochs


def _walk(spans: list[_Span], now: int) -> _Walk:
    """Epochs in order, each with the version it started under, fixing each version's
    activation as the walk passes its ratification (docs/protocol.md §15.8)."""
    n = len(spans)
    active = [0] + [NEVER] * (n - 1)
    fixed = 1  # versions before this index have their activation time settled
    w = _Walk(active, PauseState.NOT_PAUSED, 0, None, 0, {}, {}, {})
    while True:
        e = w.epoch + 1
        floor = w.since or 0
        tent = active[:fixed]
        for j in range(fixed, n):  # as if no pause came first
            tent.append(max(spans[j].ratified_at, tent[j - 1]))
        options: list[tuple[int, int, Certificate]] = []
        for i in range(n):
            if tent[i] > now:
                break  # not active yet
            until = tent[i + 1] if i + 1 < n else NEVER
            if w.since is not None and until <= w.since:
                continue  # retired before the last lift
            cert = spans[i].pause_cert(e)
            if cert is None:
                continue
            t = max(cert.formed_at_ms, tent[i])
            if t < until:
                options.append((max(t, floor), i, cert))
        if not options:
            active[fixed:] = tent[fixed:]
            return w
        p, g, pause = min(options, key=lambda o: (o[0], o[1]))
        pause = replace(pause, effective_at_ms=p)
        gov = spans[g]
        lift = gov.lift_cert(e)
        if lift is not None:
            lift = replace(lift, effective_at_ms=max(lift.formed_at_ms, p + gov.min_pause_ms))
        w.certs[e], w.governed[e] = (pause, lift), g
        w.certified, w.epoch, w.since, w.paused_at = PauseState.PAUSED, e, p, p
        lifted = lift is not None and lift.effective_at_ms <= now
        end = lift.effective_at_ms if lift is not None and lifted else NEVER
        while fixed < n:
            a = max(spans[fixed].ratified_at, active[fixed - 1])
            if a <= p:
                active[fixed] = a  # in effect before this pause took effect
            elif a < end:
                active[fixed] = end  # ratified while the pause is in effect: waits for its lift
            else:
                break
            fixed += 1
        if not lifted:
            return w
        w.certified, w.since = PauseState.NOT_PAUSED, end
        w.lifted_at[e] = end


def decide_versions(
    versions: Versions, facts: Facts, now_ms: int, *, rejected: Iterable[Rejection] = ()
) -> View:
    """The view at `now_ms` from members' facts, under the versions in force."""
    rejections = [*rejected, *facts.rejected]
    for mf in facts.members.values():
        rejections.extend(mf.rejected)
    members = facts.members
    spans = [_Span(versions, i, members, now_ms) for i in range(len(versions))]
    w = _walk(spans, now_ms)
    n = len(spans)
    active = w.active

    def until(i: int) -> int:
        return active[i + 1] if i + 1 < n else NEVER

    now_index = max(i for i in range(n) if active[i] <= now_ms or i == 0)
    current = spans[now_index]
    gov = spans[w.governed[w.epoch]] if w.epoch else current
    # The version governing now: the pause's while paused (nothing takes effect during it).
    ruling = gov if w.certified is PauseState.PAUSED else current
    # The member list: every member of any version, as the newest version listing it has it.
    roster = [versions.latest_entry(m) for m in _roster_order(versions)]
    ev = _Evaluation(ruling.c, now_ms, rejections)
    equivocators = frozenset(mf.member for mf in members.values() if mf.evidence)
    statuses = ev._member_status(members, equivocators, [m for m in roster if m is not None])
    synced_at = {m.id: m.heartbeat_at_ms for m in statuses if m.synced}
    # Members whose latest heartbeat showed their whole log: unseen statements of theirs were
    # signed after it, too late to count toward a version retired by then.
    closed = {
        mf.member: mf.latest.heartbeat.issued_at_ms
        for mf in members.values()
        if mf.latest is not None and not mf.evidence and shows_whole_log(mf)
    }

    def sealed_out(i: int, uncovered: frozenset[str]) -> frozenset[str]:
        end = until(i)
        return frozenset(m for m in uncovered if closed.get(m, -1) < end)

    def candidates(after: int | None) -> list[int]:
        """Versions active at some time from `after` (a lift; None: the start) until now."""
        return [i for i in range(n) if active[i] <= now_ms and (after is None or until(i) > after)]

    def earlier_lift(uncovered: frozenset[str]) -> tuple[int, int] | None:
        """(e, p): the first lifted epoch e, paused at p, that unseen statements could have
        lifted earlier: LIFT votes, or PAUSE votes moving p and with it the minimum pause, of
        uncovered members of its version not heard from since the lift (an equivocator never
        is). From p on, which version governed when may then differ."""
        for e in sorted(w.lifted_at):
            g = spans[w.governed[e]]
            end = w.lifted_at[e]
            for u in uncovered:
                if g.c.member(u) and (u in equivocators or closed.get(u, -1) < end):
                    return e, w.certs[e][0].effective_at_ms
        return None

    def windows(e: int, shift: tuple[int, int] | None) -> list[int]:
        """The versions that could govern a pause of e."""
        if shift is not None and e > shift[0]:
            return [i for i in range(n) if spans[i].ratified_at <= now_ms and until(i) > shift[1]]
        return candidates(w.lifted_at.get(e - 1))

    def could_pause(e: int, i: int, uncovered: frozenset[str], shifted: bool) -> bool:
        if shifted:  # its time may have been longer: every vote, and no member sealed out
            return spans[i].could_pause(e, uncovered)
        return spans[i].could_pause(e, sealed_out(i, uncovered), until(i))

    def can_flip(uncovered: frozenset[str]) -> bool:
        shift = earlier_lift(uncovered)
        # Could unseen statements have started an epoch already certified under an older
        # version than the one it started under, changing the rules that lift it?
        for e in range(1, w.epoch + 1):
            for i in windows(e, shift):
                if i >= w.governed[e]:
                    break
                if could_pause(e, i, uncovered, shift is not None and e > shift[0]):
                    return True
        if w.certified is PauseState.NOT_PAUSED:
            e = w.epoch + 1
            return any(could_pause(e, i, uncovered, shift is not None) for i in windows(e, shift))
        if w.paused_at + gov.min_pause_ms > now_ms:
            return False  # no lift can take effect yet, whatever is unseen
        return gov.could_lift(w.epoch, uncovered - equivocators)

    everyone = versions.member_ids
    as_of: int | None = None
    blockers: frozenset[str] = frozenset()
    if not can_flip(everyone):
        as_of = now_ms
    else:
        floor = w.since or 0
        times = {t for t in synced_at.values() if t is not None and t >= floor}
        for t in sorted(times, reverse=True):
            covered = {m for m, tm in synced_at.items() if tm is not None and tm >= t}
            if not can_flip(everyone - covered):
                as_of = min(t, now_ms)
                break
        if as_of is None:
            blockers = everyone - set(synced_at)
    state = w.certified if as_of is not None else PauseState.UNKNOWN

    if w.certified is PauseState.PAUSED:
        # the labs of the version the pause started under; it governs until the lift
        latest = {
            m: mf.compliance[w.epoch] for m, mf in members.items() if w.epoch in mf.compliance
        }
        deadline = w.paused_at + gov.c.rules.compliance_grace_s * 1000
        labs = frozenset(m.id for m in gov.c.labs())
        statuses = with_compliance(statuses, labs, latest, deadline, now_ms)

    several = n > 1
    epochs = []
    for e in sorted(
        {e for s in spans for (e, _d) in s.votes} | set(w.certs) | _tally_epochs(spans)
    ):
        span = spans[w.governed[e]] if e in w.governed else current
        pause, lift = w.certs.get(e, (None, None))
        epochs.append(
            EpochRecord(
                e,
                pause,
                lift,
                tuple(sorted(span.votes.get((e, Decision.PAUSE), {}))),
                tuple(sorted(span.votes.get((e, Decision.LIFT), {}))),
                span.ev.tally.attesters(e),
                span.c.digest if several and e in w.governed else b"",
            )
        )
    attested: dict[str, set[str]] = {}
    for mf in members.values():
        for trigger in mf.attested:
            attested.setdefault(trigger, set()).add(mf.member)
    fs = [members[m] for m in sorted(members)]
    evidence = [e for mf in fs for e in mf.evidence]
    proof: dict[bytes, Envelope] = {}
    for mf in fs:
        for s in mf.counted:
            proof.setdefault(s.envelope.payload_hash, s.envelope)
    for mf in sorted(fs, key=lambda f: f.member):
        if mf.latest is not None:
            proof.setdefault(mf.latest.envelope.payload_hash, mf.latest.envelope)
    for evd in evidence:
        for env in (evd.first, evd.second):
            proof.setdefault(env.payload_hash, env)
    return View(
        state=state,
        epoch=w.epoch,
        as_of_ms=as_of,
        now_ms=now_ms,
        certified_state=w.certified,
        certified_since_ms=w.since,
        explanation=ev._explain(
            state, w.certified, w.epoch, blockers, as_of, w.certs.get(w.epoch, (None, None))[0]
        ),
        charter_digest=ruling.c.digest,
        epochs=tuple(epochs),
        members=tuple(statuses),
        evidence=tuple(evidence),
        triggers_attested=tuple((t, tuple(sorted(ms))) for t, ms in sorted(attested.items())),
        rejected=tuple(
            sorted(rejections, key=lambda r: (r.member, r.payload_hash, r.reason.value, r.detail))
        ),
        envelopes=tuple(proof.values()),
        versions=tuple(
            VersionSpan(
                s.c.version,
                s.c.digest,
                s.ratified_at,
                active[i] if active[i] != NEVER else None,
            )
            for i, s in enumerate(spans)
        )
        if several
        else (),
    )


def _roster_order(versions: Versions) -> list[str]:
    """Members of the newest version in its order, then members only older versions list."""
    out: list[str] = []
    seen: set[str] = set()
    for v in reversed(versions.versions):
        for m in v.charter.members:
            if m.id not in seen:
                seen.add(m.id)
                out.append(m.id)
    return out


def _tally_epochs(spans: list[_Span]) -> set[int]:
    return {e for s in spans for e in s.ev.tally.epochs()}
