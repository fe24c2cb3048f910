"""Properties of the view across random charter chains and random honest histories (hypothesis).

A chain is a random genesis (2-4 labs, 0-2 overseers, random thresholds) and one or two
amendments, each changing thresholds, removing a lab, adding one or replacing a member's key,
ratified at random times. A history is a timeline, one event per second: a member votes (under
the newest version ratified by then, or, if its node lags, the one before, with its key there),
or one member or all of them heartbeat (with their newest key). Checked: the same view for any
order and repetition; every certificate meets the thresholds of the version it started under,
with members of that version; no version takes effect while a pause is in effect; and a proven
answer is never contradicted by more of the same history.
"""

from __future__ import annotations

from dataclasses import dataclass

from chains import amend, approvals
from helpers import T0, federation_data, key_for, lift, pause
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from profiles import examples

from pausenet.core.approval import sign_approval
from pausenet.core.charter import CHARTER_FORMAT_V2, Charter, Role, parse_charter
from pausenet.core.governance import follow_chain
from pausenet.core.keys import SigningKey
from pausenet.core.records import SignedHeartbeat, SignedStatement
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.core.verify import Rejection, Verified
from pausenet.core.versions import Versions, evaluate_versions, verify_versions
from pausenet.core.view import PauseState, View

S = 1000
PROPERTY = settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def rules_for(draw: st.DrawFn, labs: int, overseers: int) -> dict[str, int]:
    return {
        "pause_threshold": draw(st.integers(1, labs)),
        "lift_threshold": draw(st.integers(1, labs)),
        "lift_overseer_threshold": draw(st.integers(0, overseers)),
        "min_pause_s": draw(st.sampled_from((0, 0, 2))),
        "heartbeat_ttl_s": draw(st.sampled_from((5, 60))),
    }


@dataclass(frozen=True)
class Chain:
    versions: Versions
    keys: dict[tuple[int, str], SigningKey]  # (version index, member) -> its key there


@st.composite
def chains(draw: st.DrawFn) -> Chain:
    labs, overseers = draw(st.integers(2, 4)), draw(st.integers(0, 2))
    data = federation_data(labs, overseers)
    data["format"] = CHARTER_FORMAT_V2
    data["rules"].update(draw(rules_for(labs, overseers)))
    g = parse_charter(data)
    envs = [sign_approval(key_for(m.id), g, m.id, T0 - S).envelope for m in g.members]
    charters: list[Charter] = [g]
    keys = {(0, m.id): key_for(m.id) for m in g.members}
    at = T0
    rekeyed: set[str] = set()
    for i in range(1, draw(st.integers(1, 2)) + 1):
        prev = charters[-1]
        kind = draw(st.sampled_from(("rules", "remove", "add", "rekey")))
        lab_ids = [m.id for m in prev.labs()]
        remove: list[str] = []
        add: list[tuple[str, str]] = []
        rekey: dict[str, SigningKey] = {}
        if kind == "remove" and len(lab_ids) > 2:
            remove = [draw(st.sampled_from(lab_ids))]
        elif kind == "add":
            add = [(f"lab-new{i}", "lab")]
        elif kind == "rekey":
            who = draw(st.sampled_from([m.id for m in prev.members if m.id not in rekeyed]))
            rekey = {who: key_for(who + "-2")}
            rekeyed.add(who)
        n_labs = len(lab_ids) - len(remove) + len(add)
        n_ovs = len(prev.overseers())
        new = amend(prev, add=add, remove=remove, rekey=rekey, **draw(rules_for(n_labs, n_ovs)))
        at += draw(st.integers(0, 8)) * S
        envs += approvals(prev, new, at)
        charters.append(new)
        for m in new.members:
            keys[(i, m.id)] = rekey.get(m.id) or keys.get((i - 1, m.id)) or key_for(m.id)
    chain = follow_chain(g, charters[1:], envs)
    assert len(chain.in_force) == len(charters), chain.stopped
    return Chain(Versions.from_chain(chain, envs), keys)


@dataclass(frozen=True)
class History:
    chain: Chain
    items: tuple[Verified, ...]
    now: int


@st.composite
def histories(draw: st.DrawFn) -> History:
    chain = draw(chains())
    vs = chain.versions.versions
    everyone = sorted(chain.versions.member_ids)
    logs: dict[str, list[SignedStatement]] = {m: [] for m in everyone}
    counters = dict.fromkeys(everyone, 0)
    items: list[Verified] = []

    def newest_listing(m: str, at: int, lag: bool) -> int | None:
        ratified = [i for i, v in enumerate(vs) if v.ratified_at_ms <= at]
        if lag and len(ratified) > 1:
            ratified = ratified[:-1]
        listing = [i for i in ratified if vs[i].charter.member(m) is not None]
        return listing[-1] if listing else None

    def beat(m: str, at: int) -> None:
        i = max(i for i, v in enumerate(vs) if v.charter.member(m) is not None)
        counters[m] += 1
        log = logs[m]
        hb: SignedHeartbeat = sign_heartbeat(
            chain.keys[(i, m)],
            vs[i].charter,
            m,
            head_seq=log[-1].seq if log else 0,
            head_hash=log[-1].hash if log else b"",
            counter=counters[m],
            issued_at_ms=at,
        )
        items.append(hb)

    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(everyone),
                st.sampled_from(
                    ("pause", "pause", "burst", "lift", "lift", "beat", "round", "round")
                ),
                st.sampled_from((1, 1, 1, 2)),
                st.booleans(),
            ),
            max_size=30,
        )
    )

    def vote(m: str, kind: str, epoch: int, lag: bool, at: int) -> None:
        i = newest_listing(m, at, lag)
        if i is None:
            return
        c = vs[i].charter
        member = c.member(m)
        assert member is not None
        if kind == "pause" and member.role is Role.OVERSEER:
            kind = "lift"  # overseers cannot vote to pause under these charters
        prev = logs[m][-1] if logs[m] else None
        body = pause(epoch) if kind == "pause" else lift(epoch)
        st_ = build_statement(
            c, m, prev.seq + 1 if prev else 1, prev.hash if prev else b"", at, body
        )
        signed = sign_statement(chain.keys[(i, m)], st_)
        logs[m].append(signed)
        items.append(signed)

    for k, (m, kind, epoch, lag) in enumerate(events):
        at = T0 + k * S
        if kind in ("beat", "round"):
            for who in everyone if kind == "round" else [m]:
                beat(who, at + everyone.index(who))
        elif kind == "burst":  # m and every member after it vote to pause
            for j, v in enumerate(everyone[everyone.index(m) :]):
                vote(v, "pause", epoch, lag, at + j)
        else:
            vote(m, kind, epoch, lag, at)
    now = T0 + len(events) * S + draw(st.integers(0, 10)) * S
    for it in items:
        assert verify_versions(chain.versions, it.envelope, now) == it
    return History(chain, tuple(items), now)


def _issued(it: Verified) -> int:
    if isinstance(it, SignedStatement):
        return it.statement.issued_at_ms
    return it.heartbeat.issued_at_ms


def state_at(view: View, t: int) -> tuple[PauseState, int]:
    """The certified state at time t according to the view's certificates."""
    state, epoch = PauseState.NOT_PAUSED, 0
    for rec in view.epochs:
        if rec.pause is None or rec.epoch > view.epoch or rec.pause.effective_at_ms > t:
            break
        state, epoch = PauseState.PAUSED, rec.epoch
        if rec.lift is None or rec.lift.effective_at_ms > min(t, view.now_ms):
            break
        state = PauseState.NOT_PAUSED
    return state, epoch


def check_invariants(view: View, h: History) -> None:
    versions = h.chain.versions
    by_digest = {v.charter.digest: v.charter for v in versions.versions}
    spans = view.versions
    assert [s.digest for s in spans] == list(by_digest)
    active = [s.active_from_ms for s in spans]
    settled = [a for a in active if a is not None]
    assert settled == sorted(settled)
    assert active[: len(settled)] == settled  # not yet active: only at the end of the chain
    for s in spans:
        assert s.active_from_ms is None or s.active_from_ms >= s.ratified_at_ms
    assert view.state in (view.certified_state, PauseState.UNKNOWN)
    for rec in view.epochs:
        if rec.pause is None:
            continue
        c = by_digest[rec.charter_digest]
        labs = {m.id for m in c.labs()}
        ovs = {m.id for m in c.overseers()}
        assert set(rec.pause.labs) <= labs
        assert set(rec.pause.overseers) <= ovs
        assert len(rec.pause.labs) >= c.rules.pause_threshold
        p = rec.pause.effective_at_ms
        # the version it started under governed at p
        i = list(by_digest).index(c.digest)
        assert active[i] is not None
        assert active[i] <= p
        assert i + 1 == len(active) or active[i + 1] is None or active[i + 1] > p
        end = None
        if rec.lift is not None:
            assert set(rec.lift.labs) <= labs
            assert set(rec.lift.overseers) <= ovs
            assert len(rec.lift.labs) >= c.rules.lift_threshold
            assert len(rec.lift.overseers) >= c.rules.lift_overseer_threshold
            assert rec.lift.effective_at_ms >= p + c.rules.min_pause_s * 1000
            if rec.lift.effective_at_ms <= view.now_ms:
                end = rec.lift.effective_at_ms
        # no escape: nothing takes effect while the pause is in effect
        for a in settled:
            assert not (p < a and (end is None or a < end))


@PROPERTY
@given(h=histories(), data=st.data())
def test_view_across_versions_is_the_same_for_any_order_and_repetition(
    h: History, data: st.DataObject
) -> None:
    items = list(h.items)
    repeated = data.draw(st.lists(st.sampled_from(items), max_size=3)) if items else []
    first = evaluate_versions(h.chain.versions, items + repeated, h.now)
    again = evaluate_versions(h.chain.versions, data.draw(st.permutations(items + repeated)), h.now)
    assert again.to_json() == first.to_json()
    check_invariants(first, h)
    event(f"{first.state.value} epoch {first.epoch}")
    digests = [v.charter.digest for v in h.chain.versions.versions]
    under = sorted({digests.index(r.charter_digest) for r in first.epochs if r.pause})
    event(f"pauses under versions {under} of {len(digests)}")


@PROPERTY
@given(h=histories(), data=st.data())
def test_more_of_the_same_history_never_contradicts_a_proven_answer_across_versions(
    h: History, data: st.DataObject
) -> None:
    items = list(h.items)
    cut = h.now - data.draw(st.integers(0, 15)) * S
    where = data.draw(
        st.lists(st.sampled_from((0, 1, 1, 2)), min_size=len(items), max_size=len(items))
    )
    where = [2 if _issued(i) < cut else w for i, w in zip(items, where, strict=True)]
    fewer = [i for i, w in zip(items, where, strict=True) if w == 2]
    more = [i for i, w in zip(items, where, strict=True) if w >= 1]
    before = evaluate_versions(h.chain.versions, fewer, h.now)
    after = evaluate_versions(h.chain.versions, more, h.now)
    check_invariants(before, h)
    check_invariants(after, h)
    event(f"before {before.state.value}, after {after.state.value}")
    if before.state is not PauseState.UNKNOWN:
        assert before.as_of_ms is not None
        assert state_at(after, before.as_of_ms) == (before.state, before.epoch)


@PROPERTY
@given(h=histories(), data=st.data())
def test_no_statements_the_unsynced_could_have_signed_contradict_a_proven_answer(
    h: History, data: st.DataObject
) -> None:
    # What "proven as of T" means: whatever members not synced at T signed that we have not
    # seen, the state at T is the same. The node holds a prefix of each member's log, every
    # heartbeat, and a heartbeat at now from some members whose whole log it holds. Unseen: the
    # rest of a member's log and, after what it last showed, votes for any epoch the answer
    # could turn on, at any time, under any version listing it, with its key there.
    vs = h.chain.versions.versions
    logs: dict[str, list[SignedStatement]] = {}
    for it in h.items:
        if isinstance(it, SignedStatement):
            logs.setdefault(it.member, []).append(it)
    held: list[Verified] = [i for i in h.items if isinstance(i, SignedHeartbeat)]
    hidden: dict[str, list[SignedStatement]] = {}
    counters: dict[str, int] = {}
    for hb in held:
        assert isinstance(hb, SignedHeartbeat)
        counters[hb.member] = max(counters.get(hb.member, 0), hb.heartbeat.counter)
    for m in sorted(h.chain.versions.member_ids):
        log = sorted(logs.get(m, []), key=lambda s: s.seq)
        cut = data.draw(st.integers(0, len(log)))
        held += log[:cut]
        hidden[m] = log[cut:]
        if cut == len(log) and data.draw(st.booleans()):
            i = max(i for i, v in enumerate(vs) if v.charter.member(m) is not None)
            held.append(
                sign_heartbeat(
                    h.chain.keys[(i, m)],
                    vs[i].charter,
                    m,
                    head_seq=log[-1].seq if log else 0,
                    head_hash=log[-1].hash if log else b"",
                    counter=counters.get(m, 0) + 1,
                    issued_at_ms=h.now,
                )
            )
    before = evaluate_versions(h.chain.versions, held, h.now)
    if before.state is PauseState.UNKNOWN:
        return
    t = before.as_of_ms
    assert t is not None
    extension: list[Verified] = []
    for m in before.members:
        if m.synced and m.heartbeat_at_ms is not None and m.heartbeat_at_ms >= t:
            continue
        if m.equivocator or not data.draw(st.booleans()):
            continue
        extension += hidden[m.id]
        full = sorted(logs.get(m.id, []), key=lambda s: s.seq)
        prev = full[-1] if full else None
        # after its last statement and after its last heartbeat (else evidence: §7 rule 2)
        start = max([T0] + [s.statement.issued_at_ms for s in full])
        if m.heartbeat_at_ms is not None:
            start = max(start, m.heartbeat_at_ms + 1)
        for _ in range(data.draw(st.integers(0, 3))):
            listing = [i for i, v in enumerate(vs) if v.charter.member(m.id) is not None]
            i = data.draw(st.sampled_from(listing))
            c = vs[i].charter
            role = c.member(m.id)
            assert role is not None
            epoch = data.draw(st.integers(1, before.epoch + 1))
            lifts = role.role is Role.OVERSEER or data.draw(st.booleans())
            at = data.draw(st.integers(start, max(start, h.now)))
            body = lift(epoch) if lifts else pause(epoch)
            st_ = build_statement(
                c, m.id, prev.seq + 1 if prev else 1, prev.hash if prev else b"", at, body
            )
            prev = sign_statement(h.chain.keys[(i, m.id)], st_)
            extension.append(prev)
            start = at
    after = evaluate_versions(h.chain.versions, held + extension, h.now)
    event(f"{before.state.value} proven, {min(len(extension), 3)}+ unseen statements")
    assert not after.evidence
    assert state_at(after, t) == (before.state, before.epoch)


@PROPERTY
@given(h=histories())
def test_the_bounded_proof_across_versions_gives_the_view_of_everything(h: History) -> None:
    """GetView sends a bounded proof (docs/protocol.md §8.5): evaluated as partial logs with the
    statements it counts, under the same versions, it gives the same answer as all the items."""
    full = evaluate_versions(h.chain.versions, list(h.items), h.now)
    proof = full.proof
    assert proof is not None
    items = []
    for env in proof.envelopes:
        v = verify_versions(h.chain.versions, env, h.now)
        assert not isinstance(v, Rejection), v
        items.append(v)
    partial = evaluate_versions(h.chain.versions, items, h.now, counted=proof.counted)
    assert (partial.state, partial.epoch, partial.as_of_ms) == (
        full.state,
        full.epoch,
        full.as_of_ms,
    )
    assert partial.certified_state is full.certified_state
    assert [(r.epoch, r.pause, r.lift) for r in partial.epochs if r.pause] == [
        (r.epoch, r.pause, r.lift) for r in full.epochs if r.pause
    ]
    assert [(m.id, m.head_seq, m.head_hash, m.synced) for m in partial.members] == [
        (m.id, m.head_seq, m.head_hash, m.synced) for m in full.members
    ]
    event(f"proof {len(proof.envelopes)} of {len(full.envelopes)} envelopes")
