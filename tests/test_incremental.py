"""IncrementalFacts against the reference: for any sequence of additions and removals of items
(chains, forks, gaps, heartbeats naming any head, duplicates, non-members, any order) and any
time, its view equals `evaluate` over the items held then."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cache

from helpers import (
    T0,
    attest,
    comply,
    heartbeat_for,
    key_for,
    lift,
    log_for,
    make_federation,
    pause,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from profiles import examples

from pausenet.core.charter import Charter, Role
from pausenet.core.incremental import IncrementalFacts
from pausenet.core.records import Body, ComplianceState, SignedHeartbeat, SignedStatement
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.core.verify import Verified
from pausenet.core.view import View, evaluate

S = 1000
PROPERTY = settings(
    max_examples=examples(200),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@cache
def charter_for(labs: int, overseers: int, pause_t: int, lift_t: int, lift_ov: int) -> Charter:
    charter, _ = make_federation(
        labs,
        overseers,
        pause_threshold=pause_t,
        lift_threshold=lift_t,
        lift_overseer_threshold=lift_ov,
        heartbeat_ttl_s=10,
    )
    return charter


@cache
def outsider_charter() -> Charter:
    """A federation with one lab more than any drawn here: its lab-f is nobody's member."""
    charter, _ = make_federation(6, 0)
    return charter


@st.composite
def charters(draw: st.DrawFn) -> Charter:
    labs = draw(st.integers(2, 4))
    overseers = draw(st.integers(0, 1))
    return charter_for(
        labs,
        overseers,
        draw(st.integers(1, labs)),
        draw(st.integers(1, labs)),
        draw(st.integers(0, overseers)),
    )


def body(charter: Charter, member: str, kind: int, epoch: int) -> Body:
    m = charter.member(member)
    is_lab = m is None or m.role is Role.LAB
    if kind == 0 and is_lab:
        return pause(epoch)
    if kind == 1:
        return lift(epoch)
    if kind == 2 and is_lab:
        return comply(epoch, ComplianceState.HALTED)
    return attest("rsi-detected", note=f"k{kind}", epoch=epoch if kind == 3 else 0)


@st.composite
def member_items(draw: st.DrawFn, charter: Charter, member: str) -> list[Verified]:
    """A member's chain in seq order, then forks and heartbeats: every item it could sign."""
    key = key_for(member)
    steps = draw(
        st.lists(
            st.tuples(st.integers(0, 4), st.integers(1, 3), st.sampled_from((0, S, S, S, -S))),
            max_size=7,
        )
    )
    chain: list[SignedStatement] = []
    at = T0
    for kind, epoch, step in steps:
        at += step  # a step back makes a statement issued before its predecessor
        (st_,) = log_for(
            charter, key, member, [body(charter, member, kind, epoch)], at, after=chain
        )
        chain.append(st_)
    items: list[Verified] = list(chain)
    for seq, kind in draw(
        st.lists(st.tuples(st.integers(1, len(chain) + 1), st.integers(0, 4)), max_size=2)
    ):
        prev = chain[seq - 2].hash if seq > 1 else b""
        t = chain[seq - 2].statement.issued_at_ms + S // 2 if seq > 1 else T0
        twin = build_statement(charter, member, seq, prev, t, body(charter, member, kind, 2))
        items.append(sign_statement(key, twin))
    for head, counter, offset in draw(
        st.lists(
            st.tuples(st.integers(0, len(chain)), st.integers(1, 4), st.integers(-2 * S, 8 * S)),
            max_size=4,
        )
    ):
        items.append(heartbeat_for(charter, key, member, chain[:head], counter, T0 + offset))
    if draw(st.booleans()) and chain:  # a heartbeat naming a hash the chain does not hold
        items.append(
            sign_heartbeat(
                key,
                charter,
                member,
                head_seq=len(chain),
                head_hash=b"\x01" * 32,
                counter=2,
                issued_at_ms=T0 + 9 * S,
            )
        )
    return items


@dataclass(frozen=True)
class Scenario:
    charter: Charter
    pool: tuple[Verified, ...]
    ops: tuple[tuple[str, int], ...]  # ("add", pool index) | ("remove", held index) | ("view", ms)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    charter = draw(charters())
    pool: list[Verified] = []
    for m in charter.members:
        pool += draw(member_items(charter, m.id))
    if draw(st.integers(0, 4)) == 0:
        (stranger,) = log_for(outsider_charter(), key_for("lab-f"), "lab-f", [attest()], T0)
        pool.append(stranger)
    if not pool:
        return Scenario(charter, (), (("view", T0),))
    # mostly in the order signed, so the fast paths run; sometimes shuffled
    order = list(range(len(pool)))
    if draw(st.booleans()):
        order = draw(st.permutations(order))
    ops: list[tuple[str, int]] = []
    for i in order:
        ops.append(("add", i))
        extra = draw(st.integers(0, 9))
        if extra == 0:
            ops.append(("add", draw(st.integers(0, len(pool) - 1))))  # a duplicate, maybe
        elif extra == 1:
            ops.append(("remove", draw(st.integers(0, 1000))))
        if draw(st.integers(0, 2)) == 0:
            ops.append(("view", T0 + draw(st.integers(-S, 30 * S))))
    ops.append(("view", T0 + draw(st.integers(-S, 30 * S))))
    return Scenario(charter, tuple(pool), tuple(ops))


def same(a: View, b: View) -> None:
    assert a.to_json() == b.to_json()
    assert a.envelopes == b.envelopes


@given(scenarios())
@PROPERTY
def test_incremental_view_equals_the_reference(sc: Scenario) -> None:
    inc = IncrementalFacts(sc.charter)
    held: list[Verified] = []
    for op, arg in sc.ops:
        if op == "add":
            inc.add(sc.pool[arg])
            held.append(sc.pool[arg])
        elif op == "remove" and held:
            inc.remove(held.pop(arg % len(held)))
        elif op == "view":
            same(inc.view(arg), evaluate(sc.charter, held, arg))
    assert len(inc) == len(held)
    event(f"rebuilds per item: {min(inc.rebuilds * 4 // max(len(held), 1), 4)}/4")


def test_a_clean_chain_and_its_heartbeats_never_rebuild(charter: Charter) -> None:
    """Appending to a member's chain, heartbeats naming its head, and dropping superseded
    heartbeats are followed in place: only the first sight of each member rebuilds."""
    inc = IncrementalFacts(charter)
    chain: list[SignedStatement] = []
    hbs: list[SignedHeartbeat] = []
    for i in range(60):
        (st_,) = log_for(
            charter, key_for("lab-a"), "lab-a", [attest(note=f"{i}")], T0 + i * S, after=chain
        )
        chain.append(st_)
        inc.add(st_)
        hb = heartbeat_for(charter, key_for("lab-a"), "lab-a", chain, i + 1, T0 + i * S + 1)
        inc.add(hb)
        if hbs:
            inc.remove(hbs[-1])
        hbs.append(hb)
        same(inc.view(T0 + i * S + 2), evaluate(charter, [*chain, hb], T0 + i * S + 2))
    assert inc.rebuilds == 1


def test_a_fork_rebuilds_the_member_and_is_found(charter: Charter) -> None:
    inc = IncrementalFacts(charter)
    chain = log_for(charter, key_for("lab-a"), "lab-a", [pause(), lift()], T0)
    for s in chain:
        inc.add(s)
    twin = sign_statement(
        key_for("lab-a"),
        build_statement(charter, "lab-a", 2, chain[0].hash, T0 + S, attest(note="twin")),
    )
    inc.add(twin)
    view = inc.view(T0 + 5 * S)
    same(view, evaluate(charter, [*chain, twin], T0 + 5 * S))
    assert [ev.seq for ev in view.evidence] == [2]
    inc.remove(twin)
    assert inc.view(T0 + 5 * S).evidence == ()


def test_duplicates_and_strangers_are_refused_as_the_reference_does(charter: Charter) -> None:
    inc = IncrementalFacts(charter)
    (mine,) = log_for(charter, key_for("lab-a"), "lab-a", [pause()], T0)
    (stranger,) = log_for(outsider_charter(), key_for("lab-f"), "lab-f", [attest()], T0)
    items: list[Verified] = [mine, mine, mine, stranger, stranger]
    for it in items:
        inc.add(it)
    view = inc.view(T0 + S)
    same(view, evaluate(charter, items, T0 + S))
    assert Counter(r.reason.value for r in view.rejected) == Counter(
        {"duplicate": 3, "unknown-member": 1}
    )
    inc.remove(mine)
    inc.remove(stranger)
    same(inc.view(T0 + S), evaluate(charter, [mine, mine, stranger], T0 + S))


def test_a_view_keeps_its_complete_proof_when_more_items_arrive() -> None:
    """A view lists its complete proof only when it is read (`View.envelopes`), and still lists
    what it was made from, not what arrived since."""
    from helpers import T0, attest, log_for, make_federation

    charter, keys = make_federation()
    log = log_for(
        charter, keys["lab-a"], "lab-a", [attest(note=f"s{i}") for i in range(3)], T0, step_ms=1
    )
    inc = IncrementalFacts(charter)
    inc.add(log[0])
    inc.add(log[1])
    before = inc.view(T0 + 10_000)
    inc.add(log[2])
    after = inc.view(T0 + 10_000)
    assert [e.payload_hash for e in before.envelopes] == [s.hash for s in log[:2]]
    assert [e.payload_hash for e in after.envelopes] == [s.hash for s in log]
    assert before.envelopes != after.envelopes
