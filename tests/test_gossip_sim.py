"""The gossip engine over the in-memory network (docs/protocol.md §12): many replicas in one
process, no sockets, time counted in rounds.

Round bounds below are stated for fanout 3; push-pull anti-entropy reaches n nodes in about
log4(n) + ln ln(n) rounds without loss. Each bound is about twice what runs with ten seeds took.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest
from helpers import T0, attest, heartbeat_for, key_for, log_for, make_federation, pause
from netutil import Sim

from pausenet.core.dsse import Envelope, Signature, sign_envelope
from pausenet.core.records import STATEMENT_TYPE
from pausenet.node.gossip import (
    DigestReply,
    ExchangeReply,
    GossipConfig,
    GossipEngine,
    GossipService,
)
from pausenet.node.messages import Digest, Items, MemberHead
from pausenet.node.replica import Replica, envelope_size
from pausenet.node.store import Store

# (members, message loss) -> rounds within which news must reach every replica
ROUND_BOUNDS = {
    (20, 0.0): 5,
    (50, 0.0): 6,
    (20, 0.1): 7,
    (50, 0.1): 8,
    (20, 0.3): 12,
    (50, 0.3): 16,
}
SEEDS = (1, 2, 3)


# -- convergence ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("n", "loss"), sorted(ROUND_BOUNDS))
async def test_a_statement_reaches_every_replica_within_bounded_rounds(
    n: int, loss: float, seed: int
) -> None:
    sim = Sim(n, seed=seed, loss=loss)
    await sim.publish("lab-a", pause(1))

    rounds = await sim.run_until(lambda: sim.everyone_has("lab-a", 1), ROUND_BOUNDS[n, loss])

    assert rounds <= ROUND_BOUNDS[n, loss]
    if loss:
        assert sim.net.stats.lost > 0  # the loss really happened


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("n", "loss"), sorted(ROUND_BOUNDS))
async def test_every_heartbeat_reaches_every_replica_and_every_view_agrees(
    n: int, loss: float, seed: int
) -> None:
    sim = Sim(n, seed=seed, loss=loss)
    await sim.heartbeat_all()

    # n pieces of news at once need a few rounds more than one
    await sim.run_until(sim.all_heartbeats_everywhere, ROUND_BOUNDS[n, loss] + 3)

    views = [r.view() for r in sim.replicas.values()]
    assert all(m.fresh and m.synced for v in views for m in views[0].members)
    assert all(v == views[0] for v in views)  # same facts, same clock: the same view
    assert views[0].state.value == "NOT_PAUSED"


async def test_an_idle_converged_federation_ends_each_round_at_the_digest_step() -> None:
    sim = Sim(30, seed=4)
    await sim.publish("lab-a", pause(1))
    await sim.heartbeat_all()
    await sim.run_until(lambda: sim.all_heartbeats_everywhere() and sim.in_sync(), 15)
    await sim.round()  # news that arrived in the last round is pushed in the next one
    messages, sent_bytes = sim.net.stats.messages, sim.net.stats.bytes

    stats = await sim.round()

    assert all(s.contacted == 3 for s in stats.values())
    assert all(s.in_sync == s.contacted for s in stats.values())
    assert all(s.exchanges == 0 and s.items_sent == s.items_received == 0 for s in stats.values())
    contacts = sum(s.contacted for s in stats.values())
    assert sim.net.stats.messages - messages == 2 * contacts  # one digest request, one reply
    assert sim.net.stats.bytes - sent_bytes <= 50 * contacts  # a 32-byte hash and a flag


# -- faults -----------------------------------------------------------------------------------


async def test_a_node_that_was_down_catches_up_when_it_comes_back() -> None:
    sim = Sim(20, seed=5)
    await sim.heartbeat_all()
    await sim.run_until(sim.all_heartbeats_everywhere, 10)
    sim.set_down("lab-t")
    await sim.publish("lab-a", pause(1))
    await sim.publish("lab-b", pause(1), attest())

    await sim.run_until(lambda: sim.holders("lab-b", 2) == 19, 10)
    assert sim.replicas["lab-t"].head("lab-a")[0] == 0
    assert sim.replicas["lab-t"].head("lab-b")[0] == 0

    sim.set_down("lab-t", False)
    rounds = await sim.run_until(sim.in_sync, 4)

    assert rounds <= 4
    assert sim.replicas["lab-t"].view() == sim.replicas["lab-a"].view()


async def test_a_cut_network_does_not_converge_across_the_cut_and_does_after_heal() -> None:
    sim = Sim(20, seed=6)
    left, right = set(sim.ids[:10]), set(sim.ids[10:])
    for a in left:
        for b in right:
            sim.net.cut(sim.address[a], sim.address[b])
    await sim.publish("lab-a", pause(1))  # lab-a is on the left

    await sim.run_until(lambda: sim.holders("lab-a", 1, among=left) == 10, 8)
    for _ in range(10):
        await sim.round()
    assert sim.holders("lab-a", 1, among=right) == 0

    sim.net.heal()
    # cross-cut peers may still be backing off (at most 1.5 x backoff_max_s = 6 rounds)
    rounds = await sim.run_until(lambda: sim.everyone_has("lab-a", 1), 10)
    assert rounds <= 10


# -- bounded messages -------------------------------------------------------------------------


def test_missing_for_respects_max_items_and_the_byte_budget_and_says_more() -> None:
    charter, keys = make_federation(labs=3, overseers=0)
    log = log_for(charter, keys["lab-a"], "lab-a", [attest(note=f"n{i}") for i in range(300)])
    rep = Replica(charter, lambda: T0 + 600_000)
    rep.load(log, [], [])
    nothing = Digest(())

    items, more = rep.missing_for(nothing, max_items=10)
    assert more
    assert [e.payload_hash for e in items.statements] == [s.hash for s in log[:10]]

    size = envelope_size(log[0].envelope)
    items, more = rep.missing_for(nothing, budget_bytes=3 * size + size // 2)
    assert more
    assert [e.payload_hash for e in items.statements] == [s.hash for s in log[:3]]

    at_295 = Digest((MemberHead("lab-a", 295, log[294].hash, 0),))
    items, more = rep.missing_for(at_295, max_items=10)
    assert not more
    assert [e.payload_hash for e in items.statements] == [s.hash for s in log[295:]]

    items, more = rep.missing_for(nothing)  # the charter's limits: 1000 items, 90% of 4 MiB
    assert not more
    assert len(items.statements) == 300


async def test_a_long_log_arrives_in_seq_order_with_no_gaps_over_many_bounded_rounds() -> None:
    sim = Sim(4, seed=7, replica_cls=Replica, limits={"max_items_per_message": 10})
    await sim.publish("lab-a", *(attest(note=f"statement {i}") for i in range(300)))
    full = [s.hash for s in sim.logs["lab-a"]]
    assert sim.replicas["lab-a"].head("lab-a")[0] == 300

    rounds = 0
    while not sim.everyone_has("lab-a", 300):
        stats = await sim.round()
        rounds += 1
        # 10 items a message, 4 exchanges with each of 3 peers a round: 3 rounds; allow 8
        assert rounds <= 8
        for s in stats.values():
            assert s.items_received <= 10 * s.exchanges
            assert s.items_sent <= 10 * s.exchanges
            assert not any(r.rejected for r in s.reports), [dict(r.rejected) for r in s.reports]
        for rep in sim.replicas.values():
            held = [st.hash for st in rep.log("lab-a")]
            assert held == full[: len(held)]  # always a prefix: in order, no gaps
            assert [st.seq for st in rep.log("lab-a")] == list(range(1, len(held) + 1))


# -- peers ------------------------------------------------------------------------------------


async def test_a_failing_peer_backs_off_exponentially_and_is_retried_after_the_delay() -> None:
    sim = Sim(2)
    now = [0.0]
    base = 1.0
    peer = sim.address["lab-b"]
    engine = GossipEngine(
        sim.replicas["lab-a"],
        sim.net.transport(sim.address["lab-a"]),
        self_address=sim.address["lab-a"],
        bootstrap=(peer,),
        config=GossipConfig(backoff_base_s=base, backoff_max_s=8.0),
        rng=random.Random(8),
        monotonic=lambda: now[0],
    )
    sim.set_down("lab-b")

    stats = await engine.run_round()
    assert (stats.contacted, stats.failures) == (1, 1)
    first = engine.backoff(peer)
    assert 0.5 * base <= first <= 1.5 * base  # base delay with ±50% jitter

    now[0] += first / 2
    assert (await engine.run_round()).contacted == 0  # skipped while backing off

    now[0] += first  # past the delay: tried again, fails again, waits about twice as long
    assert (await engine.run_round()).failures == 1
    second = engine.backoff(peer)
    assert 1.0 * base <= second <= 3.0 * base

    for _ in range(10):  # the delay is capped
        now[0] += engine.backoff(peer) + 0.01
        await engine.run_round()
    assert engine.backoff(peer) <= 1.5 * 8.0

    sim.set_down("lab-b", False)
    now[0] += engine.backoff(peer) + 0.01
    stats = await engine.run_round()
    assert (stats.contacted, stats.failures) == (1, 0)
    assert engine.backoff(peer) == 0.0  # a success ends the backoff


async def test_peers_learned_from_signed_heartbeats_are_gossiped_with() -> None:
    sim = Sim(4, seed=9, bootstrap=lambda m: ("lab-b.sim:7400",) if m == "lab-a" else ())
    a, b = sim.engines["lab-a"], sim.address["lab-b"]
    await sim.heartbeat_all()
    # lab-b has heard every heartbeat (with its address); lab-a only knows lab-b
    await sim.give(
        "lab-b", Items(heartbeats=tuple(sim.sign_heartbeat(m).envelope for m in sim.ids))
    )
    assert a.peers() == [b]

    await a.run_round()
    await sim.replicas["lab-a"].flush()  # type: ignore[attr-defined]
    assert a.peers() == sorted(sim.address[m] for m in ("lab-b", "lab-c", "lab-d"))

    # with lab-b out of reach, lab-a still hears lab-c's news from the peers it learned
    sim.net.cut(sim.address["lab-a"], b)
    await sim.publish("lab-c", pause(1))
    for _ in range(6):
        await a.run_round()
        await sim.replicas["lab-a"].flush()  # type: ignore[attr-defined]
        if sim.replicas["lab-a"].head("lab-c")[0] == 1:
            break
    assert sim.replicas["lab-a"].head("lab-c")[0] == 1


# -- hostile peers ----------------------------------------------------------------------------


class HostilePeer:
    """Answers every digest with 'I have much more' and every exchange with junk."""

    def __init__(self, junk: Items, claims: Digest) -> None:
        self.junk, self.claims = junk, claims

    def get_digest(self, summary_hash: bytes) -> DigestReply:
        return DigestReply(False, self.claims)

    async def exchange(self, digest: Digest, items: Items) -> ExchangeReply:
        return ExchangeReply(self.junk, more=False)


async def test_a_hostile_peer_sending_forged_and_foreign_items_cannot_change_a_view() -> None:
    sim = Sim(4, seed=10, replica_cls=Replica)
    ch, keys = sim.charter, sim.keys
    await sim.publish("lab-a", pause(1))
    await sim.heartbeat_all()
    honest = sim.replicas["lab-b"]
    await sim.give("lab-b", Items(tuple(s.envelope for s in sim.logs["lab-a"])))
    await sim.give(
        "lab-b", Items(heartbeats=tuple(sim.sign_heartbeat(m).envelope for m in sim.ids))
    )
    before = honest.view()

    other_charter, _ = make_federation(labs=4, overseers=0, federation_id="another-federation")
    real = log_for(ch, keys["lab-c"], "lab-c", [pause(1), attest()], T0)
    forged_sig = Envelope(
        STATEMENT_TYPE, real[0].envelope.payload, (Signature("lab-c", bytes(64)),)
    )
    wrong_key = sign_envelope(key_for("mallory"), "lab-c", STATEMENT_TYPE, real[0].envelope.payload)
    foreign = log_for(other_charter, keys["lab-c"], "lab-c", [pause(1)], T0)[0].envelope
    non_member = log_for(ch, key_for("mallory"), "mallory", [pause(1)], T0)[0].envelope
    hb = heartbeat_for(ch, keys["lab-c"], "lab-c", real, counter=99, issued_at_ms=T0)
    forged_hb = Envelope(
        hb.envelope.payload_type, hb.envelope.payload, (Signature("lab-c", bytes(64)),)
    )
    junk = Items(
        statements=(forged_sig, wrong_key, foreign, non_member, hb.envelope, real[1].envelope),
        heartbeats=(forged_hb, real[0].envelope),
        evidence=((real[0].envelope, real[1].envelope),),  # a chain, not a fork
    )
    claims = Digest(tuple(MemberHead(m, 10**6, bytes(32), 10**6) for m in sim.ids))
    evil = "evil.sim:7400"
    sim.net.register(evil, HostilePeer(junk, claims))  # type: ignore[arg-type]
    engine = GossipEngine(
        honest,
        sim.net.transport(sim.address["lab-b"]),
        self_address=sim.address["lab-b"],
        bootstrap=(evil,),
        rng=random.Random(1),
        monotonic=lambda: 0.0,
    )

    stats = await engine.run_round()
    # the junk also arrives pushed, through the honest node's own service
    await GossipService(honest).exchange(claims, junk)

    assert stats.exchanges >= 1
    assert stats.reports
    rejected = sum((r.rejected for r in stats.reports), Counter())
    assert rejected == {
        "bad-signature": 3,  # zeroed signature, mallory's key under lab-c's name, zeroed heartbeat
        "wrong-charter": 1,
        "unknown-member": 1,
        "type-confusion": 2,  # a heartbeat sent as a statement and a statement as a heartbeat
        "gap": 1,  # lab-c#2 without lab-c#1
        "bad-evidence": 1,
    }
    assert not any(r.changed for r in stats.reports)
    assert honest.view() == before
    assert honest.evidence() == []
    assert honest.head("lab-c") == (0, b"")


# -- equivocation -----------------------------------------------------------------------------


async def test_two_replicas_holding_different_statements_at_one_seq_find_the_fork() -> None:
    """Forks of equal length, and no heartbeat to betray either: the digests show the same
    head seq with different hashes, and that alone must make the peers exchange the entries."""
    sim = Sim(3, seed=11, replica_cls=Replica)
    sim.set_down("lab-a")  # the equivocator shows each side one version, then falls silent
    one = log_for(sim.charter, sim.keys["lab-a"], "lab-a", [pause(1)], T0)[0]
    other = log_for(sim.charter, sim.keys["lab-a"], "lab-a", [attest()], T0)[0]
    await sim.give("lab-b", Items((one.envelope,)))
    await sim.give("lab-c", Items((other.envelope,)))

    await sim.run_until(
        lambda: all(sim.replicas[m].equivocators() == {"lab-a"} for m in ("lab-b", "lab-c")), 3
    )
    assert sim.replicas["lab-b"].evidence() == sim.replicas["lab-c"].evidence()


async def test_one_equivocation_reaching_two_sides_gives_every_replica_the_same_evidence() -> None:
    sim = Sim(20, seed=12)
    await sim.heartbeat_all()
    one = log_for(sim.charter, sim.keys["lab-a"], "lab-a", [pause(1)], T0)[0]
    other = log_for(sim.charter, sim.keys["lab-a"], "lab-a", [attest()], T0 + 1)[0]
    await sim.give("lab-c", Items((one.envelope,)))
    await sim.give("lab-p", Items((other.envelope,)))

    def everyone_has_evidence() -> bool:
        return all(r.evidence() for r in sim.replicas.values())

    await sim.run_until(everyone_has_evidence, 10)
    await sim.run_until(
        lambda: len({tuple(e.id for e in r.evidence()) for r in sim.replicas.values()}) == 1, 10
    )

    evidence = [r.evidence() for r in sim.replicas.values()]
    assert all(e == evidence[0] for e in evidence)  # the same pairs, byte for byte
    assert {e.member for e in evidence[0]} == {"lab-a"}
    for rep in sim.replicas.values():
        view = rep.view()
        status = {m.id: m for m in view.members}
        assert status["lab-a"].equivocator
        assert not status["lab-a"].synced
        assert [m.id for m in view.members if m.equivocator] == ["lab-a"]
        assert view.evidence == tuple(evidence[0])


# -- the ingest transaction -------------------------------------------------------------------


async def test_concurrent_ingests_of_one_delta_append_each_statement_once(tmp_path: Path) -> None:
    """A node ingests from its own rounds and from peers' Exchange calls at the same time, and
    ingest awaits the store: the checks and the append must still be one transaction."""
    charter, keys = make_federation(labs=3, overseers=0)
    log = log_for(charter, keys["lab-a"], "lab-a", [pause(1), attest(), attest(note="x")])
    hb = heartbeat_for(charter, keys["lab-a"], "lab-a", log, counter=1, issued_at_ms=T0 + 5000)
    delta = Items(tuple(s.envelope for s in log), (hb.envelope,))
    async with await Store.open(tmp_path / "db", charter_digest=charter.digest) as store:
        rep = Replica(charter, lambda: T0 + 10_000, store)

        reports = await asyncio.gather(*(rep.ingest(delta) for _ in range(4)))

        assert [s.hash for s in rep.log("lab-a")] == [s.hash for s in log]
        assert sum(r.statements for r in reports) == 3
        assert not any(r.rejected for r in reports)
        assert rep.evidence() == []
        assert rep.view().members[0].synced


async def test_concurrent_ingests_never_roll_a_heartbeat_back(tmp_path: Path) -> None:
    charter, keys = make_federation(labs=3, overseers=0)
    newer = heartbeat_for(charter, keys["lab-b"], "lab-b", [], counter=2, issued_at_ms=T0 + 2)
    older = heartbeat_for(charter, keys["lab-b"], "lab-b", [], counter=1, issued_at_ms=T0 + 1)
    async with await Store.open(tmp_path / "db", charter_digest=charter.digest) as store:
        rep = Replica(charter, lambda: T0 + 10_000, store)

        await asyncio.gather(
            rep.ingest(Items(heartbeats=(newer.envelope,))),
            rep.ingest(Items(heartbeats=(older.envelope,))),
        )

        assert rep.heartbeat("lab-b") == newer


# -- a member that forks again and again -------------------------------------------------------


def _forks(n: int) -> list[Envelope]:
    charter, _ = make_federation()
    return [
        log_for(charter, key_for("lab-c"), "lab-c", [attest(note=f"branch {i}")])[0].envelope
        for i in range(n)
    ]


async def test_a_member_forking_many_times_leaves_bounded_evidence_and_a_usable_digest() -> None:
    """Evidence is bounded per member (the lowest forked seqs), so a member signing twenty different
    first statements cannot grow memory or make digests too large for peers to accept."""
    from pausenet.node.wire import digest_from_pb, digest_to_pb

    charter, _ = make_federation()
    rep = Replica(charter, lambda: T0 + 10_000)
    for env in _forks(20):
        await rep.ingest(Items(statements=(env,)))
    assert len(rep.evidence()) <= 8
    assert rep.equivocators() == frozenset({"lab-c"})
    digest_from_pb(digest_to_pb(rep.digest()), max_heads=len(charter.members))  # no CodecError


async def test_replicas_on_two_branches_of_a_fork_exchange_only_the_conflicting_entry() -> None:
    """A peer on the other branch gets our entry at its head (the proof), not the rest of our
    branch, so neither side refuses items as gaps or loses score for an honest exchange."""
    charter, _ = make_federation()
    key = key_for("lab-c")
    a = log_for(charter, key, "lab-c", [attest(note="a")])
    b = log_for(charter, key, "lab-c", [attest(note=f"b{i}") for i in range(6)])
    one, two = Replica(charter, lambda: T0 + 60_000), Replica(charter, lambda: T0 + 60_000)
    await one.ingest(Items(statements=tuple(s.envelope for s in a)))
    await two.ingest(Items(statements=tuple(s.envelope for s in b)))
    items, _ = two.missing_for(one.digest())
    assert items.statements == (b[0].envelope,)
    report = await one.ingest(items)
    assert report.evidence == 1
    assert not report.rejected
    again, _ = two.missing_for(one.digest())
    assert not (await one.ingest(again)).rejected
