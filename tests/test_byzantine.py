"""Threats from a byzantine member (DESIGN.md §6; docs/protocol.md §6, §7, §12.3, §12.5).

Four honest nodes (lab-a, lab-b, lab-c, overseer-a) run in this process over gRPC on 127.0.0.1.
The fifth member, lab-d, has no honest node: its key belongs to an `Attacker` (tests/byzantine.py)
that passes the members-only handshake and then sends what no honest node sends. One test per
named attack; each asserts that

- the honest nodes' views stay correct (the expected state, epoch, certificates and evidence)
  and identical (`netutil.agreed_view`),
- each bad item is rejected and counted by its reason (`rejected.<reason>` in `Node.stats()`),
- forks become evidence on every honest node and mark the forker an equivocator,
- a flooding or forging member is throttled and banned, and overseers still get answers.

Charter (4 labs, 1 overseer): a pause needs 3 labs' PAUSE votes; a lift needs 3 labs' and the
overseer's LIFT votes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
from byzantine import Attacker
from helpers import attest, lift, pause
from netutil import Cluster, eventually, facts, gossip_authenticator, views_agree

from pausenet.client import OversightClient
from pausenet.core.charter import parse_charter
from pausenet.core.dsse import Signature
from pausenet.core.keys import generate
from pausenet.core.payload import encode_statement
from pausenet.core.records import HEARTBEAT_TYPE, MAX_SEQ, STATEMENT_TYPE, Body, Decision
from pausenet.core.signing import build_statement, sign_statement
from pausenet.core.view import PauseState, View
from pausenet.node.messages import Items
from pausenet.node.node import Node
from pausenet.node.wire import items_to_pb
from pausenet.v1 import envelope_pb2, gossip_pb2, oversight_pb2

pytestmark = pytest.mark.slow

HONEST = ("lab-a", "lab-b", "lab-c", "overseer-a")
EVIL = "lab-d"
RSI = ("rsi-detected",)
OK = grpc.StatusCode.OK


@dataclass
class Arena:
    cluster: Cluster
    attacker: Attacker

    @property
    def nodes(self) -> list[Node]:
        return self.cluster.running()

    @property
    def target(self) -> Node:
        """The node every attack is aimed at (the others learn only what it relays)."""
        return self.cluster["lab-b"]

    async def publish(self, *bodies: Body) -> None:
        """The attacker behaving: sign the next statements of its log, with a heartbeat that
        commits to them, and give them to the target."""
        sts = [self.attacker.sign(b) for b in bodies]
        out = await self.attacker.push(
            self.target.address, *sts, heartbeats=[self.attacker.heartbeat()]
        )
        assert out.ok, out

    async def everywhere(self, member: str, seq: int) -> None:
        await eventually(
            lambda: all(n.replica.head(member)[0] == seq for n in self.nodes),
            what=f"every honest node holds {member}'s log up to seq {seq}",
        )

    async def vote(self, member: str, decision: Decision) -> None:
        await self.cluster[member].cast_vote(
            decision, triggers=RSI if decision is Decision.PAUSE else ()
        )


def gained(node: Node, before: Mapping[str, int], prefix: str = "rejected.") -> dict[str, int]:
    """Counters under `prefix` that grew since `before`. `superseded` is left out: honest gossip
    races produce it too (a heartbeat overtaken in flight), so attacks assert it separately."""
    now = node.stats()
    return {
        k: now[k] - before.get(k, 0)
        for k in now
        if k.startswith(prefix) and k != "rejected.superseded" and now[k] > before.get(k, 0)
    }


def evil_status(v: View) -> tuple[int, bool]:
    m = v.member(EVIL)
    assert m is not None
    return m.head_seq, m.equivocator


def plain(state: PauseState, epoch: int, *, evil_head: int = 0) -> Callable[[View], bool]:
    """A view check: this state and epoch, lab-d's log at evil_head, nobody an equivocator."""

    def check(v: View) -> bool:
        return (
            (v.state, v.epoch) == (state, epoch)
            and evil_status(v) == (evil_head, False)
            and not v.evidence
        )

    return check


@pytest.fixture
async def arena(tmp_path: Path) -> AsyncIterator[Arena]:
    async with Cluster(tmp_path, labs=4, overseers=1, running=HONEST) as cluster:
        attacker = Attacker(cluster.charter, cluster.key(EVIL), EVIL)
        try:
            a = Arena(cluster, attacker)
            await cluster.converged()
            await a.publish()  # a first heartbeat: lab-d looks alive and synced
            await views_agree(
                a.nodes,
                lambda v: v.state is PauseState.NOT_PAUSED and all(m.synced for m in v.members),
                what="every member synced and NOT_PAUSED on every honest node",
            )
            yield a
        finally:
            await attacker.close()


# -- who may gossip ---------------------------------------------------------------------------


async def test_a_non_member_gets_no_challenge_and_no_session_and_calls_without_one_are_refused(
    arena: Arena,
) -> None:
    target, charter = arena.target, arena.cluster.charter
    addr = target.address
    before, view_before = target.stats(), facts(target)

    async with Attacker(charter, generate(), "mallory") as stranger:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stranger.challenge(addr)
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED
        # a stranger that asks as a member cannot sign the answer with that member's key
        ch = await stranger.challenge(addr, client=EVIL)
        for keyid in ("mallory", EVIL):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stranger.authenticate(addr, stranger.sign_auth(ch, addr, keyid=keyid))
            assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # and without a session, or with a made-up one, nothing goes through
        assert (await stranger.get_digest(addr, session=False)).code is (
            grpc.StatusCode.UNAUTHENTICATED
        )
        out = await stranger.exchange(addr, heartbeats=[stranger.heartbeat()], session=False)
        assert out.code is grpc.StatusCode.UNAUTHENTICATED
        stranger.use_session(addr, "made-up")
        assert (await stranger.get_digest(addr)).code is grpc.StatusCode.UNAUTHENTICATED

    # a member's signed answer is good once, and only at the node that issued the challenge
    attacker = arena.attacker
    ch = await attacker.challenge(addr)
    auth = attacker.sign_auth(ch, addr)
    assert (await attacker.authenticate(addr, auth)).session
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await attacker.authenticate(addr, auth)  # replayed
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    elsewhere = arena.cluster["lab-c"].address
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await attacker.authenticate(
            elsewhere, attacker.sign_auth(await attacker.challenge(addr), addr)
        )
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED

    assert gained(target, before, "refused.") == {
        "refused.not-a-member": 1,
        "refused.bad-auth": 3,
        "refused.unauthenticated": 3,
    }
    assert gained(arena.cluster["lab-c"], {}, "refused.bad-auth") == {"refused.bad-auth": 1}
    assert facts(target) == view_before
    await views_agree(arena.nodes, plain(PauseState.NOT_PAUSED, 0), what="nothing changed")


# -- forgery ----------------------------------------------------------------------------------


async def test_forged_signatures_are_rejected_and_the_forger_loses_score_and_is_banned(
    arena: Arena,
) -> None:
    atk, target = arena.attacker, arena.target
    real = await arena.cluster["lab-a"].attest_trigger("eval-threshold")
    await arena.everywhere("lab-a", 1)
    before, held, score = target.stats(), [facts(n) for n in arena.nodes], target.guard.score(EVIL)
    bit_flipped = bytearray(atk.statement(pause(1)).envelope.signatures[0].sig)
    bit_flipped[0] ^= 1

    forged = [
        atk.forged("lab-a", pause(1), seq=2, prev_hash=real.hash),  # lab-a's name, random sig
        atk.forged("overseer-a", attest()),
        Attacker.relabeled(atk.statement(pause(1)).envelope, keyid="lab-a"),  # d's sig, a's name
        Attacker.relabeled(atk.statement(pause(1)).envelope, sig=bytes(bit_flipped)),
    ]
    # the payload says lab-a; lab-d signed it, under its own keyid
    impersonation = Attacker.relabeled(atk.statement(pause(1), member="lab-a").envelope, keyid=EVIL)
    # framing: a fork "by lab-a" made of its real statement and a forged one is not evidence
    framing = (real.envelope, atk.forged("lab-a", attest(note="the other branch")))
    out = await atk.exchange(
        target.address, statements=[*forged, impersonation], evidence=[framing]
    )
    assert out.ok, out
    assert gained(target, before) == {
        "rejected.bad-signature": 4,
        "rejected.member-mismatch": 1,
        "rejected.bad-evidence": 1,
    }
    assert target.guard.score(EVIL) == score - 60  # 10 points for each forgery
    assert [facts(n) for n in arena.nodes] == held  # nothing was taken, nothing relayed
    assert not target.guard.banned(EVIL, time.time())

    # keep forging: once the score is below the floor the node refuses lab-d for a while
    score = target.guard.score(EVIL)
    banning_call = next(k for k in range(1, 100) if score - 10 * k < target.guard.floor)
    codes = []
    for _ in range(banning_call + 1):
        out = await atk.exchange(target.address, statements=[atk.forged("lab-a", pause(1))])
        codes.append(out.code)
    assert codes == [OK] * banning_call + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert target.guard.banned(EVIL, time.time())
    assert (await atk.get_digest(target.address)).code is grpc.StatusCode.RESOURCE_EXHAUSTED
    stats = target.stats()
    assert stats["refused.bans"] == 1
    assert stats["refused.banned"] >= 2
    # a valid heartbeat from lab-d is refused by the node that banned it, taken by the others
    hb = atk.heartbeat()
    assert (await atk.push(target.address, heartbeats=[hb])).code is (
        grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    assert (await atk.push(arena.cluster["lab-c"].address, heartbeats=[hb])).ok
    # honest members lose nothing, anywhere
    for n in arena.nodes:
        for m in HONEST:
            assert n.guard.score(m) >= 0, (n.member, m)
            assert not n.guard.banned(m, time.time()), (n.member, m)
    await views_agree(
        arena.nodes,
        lambda v: (
            (v.state, v.epoch) == (PauseState.NOT_PAUSED, 0)
            and not v.evidence
            and v.epochs == ()
            and [m.head_seq for m in v.members] == [1, 0, 0, 0, 0]
        ),
        what="no vote of lab-a, no evidence against it, nothing from lab-d counted",
    )


async def test_statements_signed_by_a_non_member_key_are_rejected_as_unknown_member(
    arena: Arena,
) -> None:
    atk, target, charter = arena.attacker, arena.target, arena.cluster.charter
    before, held = target.stats(), facts(target)
    mallory = Attacker(charter, generate(), "mallory")  # builds items only; never connects
    by_mallory = mallory.statement(pause(1))
    out = await atk.exchange(  # a member relays what the stranger signed
        target.address,
        statements=[
            by_mallory,
            Attacker.relabeled(by_mallory.envelope, keyid=""),
            Attacker.relabeled(by_mallory.envelope, keyid="Lab A!" * 20),
        ],
        heartbeats=[mallory.heartbeat()],
        evidence=[(by_mallory.envelope, mallory.statement(lift(1)).envelope)],
    )
    assert out.ok, out
    assert gained(target, before) == {
        "rejected.unknown-member": 4,
        "rejected.bad-evidence": 1,
    }
    assert facts(target) == held
    await views_agree(arena.nodes, plain(PauseState.NOT_PAUSED, 0), what="nothing counted")


# -- replay and rollback ----------------------------------------------------------------------


async def test_replayed_statements_and_heartbeats_change_nothing(arena: Arena) -> None:
    """Old votes from before a lift, and heartbeats older than the latest, are sent again."""
    atk, target, nodes = arena.attacker, arena.target, arena.nodes
    old_own_heartbeat = atk.heartbeat()
    await arena.publish()
    for m in ("lab-a", "lab-b", "lab-c"):
        await arena.vote(m, Decision.PAUSE)
    await views_agree(nodes, plain(PauseState.PAUSED, 1), what="PAUSED epoch 1")
    old_statements = [s.envelope for m in HONEST for s in target.replica.log(m)]
    old_heartbeats = [hb for hb in target.replica.heartbeats() if hb.member != EVIL]
    for m in ("lab-a", "lab-b", "lab-c", "overseer-a"):
        await arena.vote(m, Decision.LIFT)
    for m in HONEST:
        await arena.everywhere(m, 2 if m != "overseer-a" else 1)
    await views_agree(nodes, plain(PauseState.NOT_PAUSED, 1), what="lifted, epoch 1")
    # every honest node has signed newer heartbeats since the old ones were taken
    await eventually(
        lambda: all(target.replica.heartbeat(hb.member) != hb for hb in old_heartbeats),
        what="newer heartbeats everywhere",
    )
    counters = {hb.member: hb.heartbeat.counter for hb in target.replica.heartbeats()}
    before, held, score = target.stats(), facts(target), target.guard.score(EVIL)

    out = await atk.exchange(
        target.address,
        statements=old_statements,
        heartbeats=[*old_heartbeats, old_own_heartbeat],
    )
    assert out.ok, out
    assert gained(target, before) == {}  # duplicates are not faults; nothing else was wrong
    superseded = target.stats().get("rejected.superseded", 0) - before.get("rejected.superseded", 0)
    assert superseded >= len(old_heartbeats)  # every old heartbeat is refused as superseded
    assert facts(target) == held
    for hb in target.replica.heartbeats():
        assert hb.heartbeat.counter >= counters[hb.member], hb.member  # never rolled back
    assert target.guard.score(EVIL) >= score  # a replay costs nothing: honest races make them
    await views_agree(nodes, plain(PauseState.NOT_PAUSED, 1), what="still lifted, epoch 1")


# -- mix-and-match across charters; fast-forward ------------------------------------------------


async def test_statements_under_another_charter_are_rejected_as_wrong_charter(
    arena: Arena,
) -> None:
    """Under a look-alike charter (same members and keys) one lab's vote would pause."""
    atk, target, charter = arena.attacker, arena.target, arena.cluster.charter
    raw = tomllib.loads(arena.cluster.fed.charter_path.read_text(encoding="utf-8"))
    raw["rules"]["pause_threshold"] = 1
    other = parse_charter(raw, source="look-alike charter")
    assert other.digest != charter.digest
    st = atk.statement(pause(1))
    other_federation = sign_statement(
        atk.key, replace(st.statement, federation_id=charter.federation_id + "-evil")
    )
    before, held = target.stats(), facts(target)

    out = await atk.exchange(
        target.address,
        statements=[atk.statement(pause(1), charter=other), other_federation],
        heartbeats=[atk.heartbeat(charter=other, head_seq=0, head_hash=b"")],
    )
    assert out.ok, out
    assert gained(target, before) == {"rejected.wrong-charter": 3}
    assert facts(target) == held

    # under this charter lab-d's PAUSE is one vote of the three needed
    await arena.publish(pause(1))
    await arena.vote("lab-a", Decision.PAUSE)
    view = await views_agree(
        arena.nodes,
        lambda v: (
            (v.state, v.certified_state) == (PauseState.NOT_PAUSED,) * 2
            and len(v.epochs) == 1
            and v.epochs[0].pause_votes == ("lab-a", EVIL)
        ),
        what="two PAUSE votes (lab-a, lab-d), not paused",
    )
    assert view.epochs[0].pause is None


async def test_a_seq_or_counter_near_2_63_cannot_fast_forward_a_log(arena: Arena) -> None:
    atk, target = arena.attacker, arena.target
    before = target.stats()
    out = await atk.exchange(
        target.address,
        statements=[
            atk.statement(attest(), seq=MAX_SEQ),  # valid on its own; far beyond the head
            atk.statement(attest(), seq=MAX_SEQ + 1),  # 2^63: not a valid seq at all
            atk.statement(pause(MAX_SEQ + 1)),  # epoch 2^63
        ],
        heartbeats=[
            atk.heartbeat(counter=MAX_SEQ + 1),
            atk.heartbeat(head_seq=MAX_SEQ + 1, head_hash=os.urandom(32)),
        ],
    )
    assert out.ok, out
    assert gained(target, before) == {"rejected.gap": 1, "rejected.invalid": 4}
    assert target.replica.head(EVIL)[0] == 0

    await arena.publish(attest(note="seq 1, as it should be"))
    await arena.everywhere(EVIL, 1)
    await views_agree(
        arena.nodes, plain(PauseState.NOT_PAUSED, 0, evil_head=1), what="lab-d's log is 1 long"
    )
    assert max(h.head_seq for h in target.replica.digest().heads) == 1


# -- broken chains and equivocation -----------------------------------------------------------


async def test_a_broken_hash_chain_is_refused_or_becomes_evidence_against_its_signer(
    arena: Arena,
) -> None:
    atk, target, nodes = arena.attacker, arena.target, arena.nodes
    await arena.publish(attest(note="one"), attest(note="two"))
    await arena.everywhere(EVIL, 2)
    second = atk.log[-1]
    before = target.stats()

    out = await atk.exchange(
        target.address,
        statements=[
            # linked to seq 2, but issued before it: time runs backwards in the log
            atk.statement(attest(), issued_at_ms=second.statement.issued_at_ms - 1),
            atk.statement(attest(), seq=5),  # a gap
        ],
    )
    assert out.ok, out
    assert gained(target, before) == {"rejected.broken-chain": 1, "rejected.gap": 1}
    assert not target.replica.evidence()

    # seq 3 whose prev_hash is not seq 2's hash: lab-d signed two different seq-2 entries
    forked = atk.statement(attest(), seq=3, prev_hash=os.urandom(32))
    out = await atk.exchange(target.address, statements=[forked])
    assert out.ok, out
    view = await views_agree(
        nodes,
        lambda v: evil_status(v) == (2, True) and len(v.evidence) == 1,
        what="evidence of lab-d's fork at seq 2 on every honest node; lab-d an equivocator",
    )
    assert (view.evidence[0].member, view.evidence[0].seq) == (EVIL, 2)
    await eventually(
        lambda: len({tuple(e.id for e in n.replica.evidence()) for n in nodes}) == 1,
        what="every honest node holds the same evidence",
    )
    held = nodes[0].replica.evidence()
    assert [(e.member, e.seq) for e in held] == [(EVIL, 2)]
    assert forked.envelope in (held[0].first, held[0].second)
    assert not any(m.synced for m in view.members if m.id == EVIL)


async def test_a_member_is_counted_once_however_often_it_votes_and_epochs_do_not_mix(
    arena: Arena,
) -> None:
    atk, nodes = arena.attacker, arena.nodes
    twice = atk.sign(pause(1, note="first"))
    out = await arena.attacker.exchange(  # the same vote, twice in one message
        arena.target.address, statements=[twice, twice], heartbeats=[atk.heartbeat()]
    )
    assert out.ok, out
    await arena.publish(pause(1, note="again"), pause(2), pause(3))  # and again, and later epochs
    await arena.vote("lab-a", Decision.PAUSE)
    view = await views_agree(
        nodes,
        lambda v: (
            v.certified_state is PauseState.NOT_PAUSED
            and evil_status(v) == (4, False)
            and [e.pause_votes for e in v.epochs] == [("lab-a", EVIL), (EVIL,), (EVIL,)]
        ),
        what="lab-d's four PAUSE votes count once for epoch 1, not for 2 and 3 yet",
    )
    assert all(e.pause is None for e in view.epochs)

    await arena.vote("lab-b", Decision.PAUSE)
    view = await views_agree(
        nodes, plain(PauseState.PAUSED, 1, evil_head=4), what="the third lab's vote pauses"
    )
    cert = view.epochs[0].pause
    assert cert is not None
    assert cert.labs == ("lab-a", "lab-b", EVIL)
    assert len(cert.votes) == 3
    assert twice.hash in cert.votes  # lab-d's earliest vote is the one counted


async def test_two_statements_at_one_seq_are_evidence_everywhere_and_the_forkers_lifts_stop_counting(
    arena: Arena,
) -> None:
    """Split view: lab-d shows one PAUSE vote to lab-a's node and a different one to lab-b's."""
    atk, nodes, cluster = arena.attacker, arena.nodes, arena.cluster
    branch_a = atk.statement(pause(1, note="for lab-a's eyes"))
    branch_b = atk.statement(pause(1, note="for lab-b's eyes"))
    outs = await asyncio.gather(
        atk.exchange(cluster["lab-a"].address, statements=[branch_a]),
        atk.exchange(cluster["lab-b"].address, statements=[branch_b]),
    )
    assert all(o.ok for o in outs), outs
    atk.log.append(branch_a)
    await arena.vote("lab-a", Decision.PAUSE)
    await arena.vote("lab-b", Decision.PAUSE)

    def forked_and_paused(v: View) -> bool:
        return (
            (v.state, v.epoch) == (PauseState.PAUSED, 1)
            and evil_status(v)[1]
            and [(e.member, e.seq) for e in v.evidence] == [(EVIL, 1)]
        )

    view = await views_agree(
        nodes, forked_and_paused, what="evidence everywhere; the forker's PAUSE still counts"
    )
    assert view.epochs[0].pause is not None
    assert view.epochs[0].pause.labs == ("lab-a", "lab-b", EVIL)  # fail-safe: its pause counts
    for n in nodes:
        async with OversightClient(n.address) as client:
            reply = await client.stub.GetEvidence(oversight_pb2.GetEvidenceRequest(), timeout=5)
        payloads = {bytes(p.first.payload) for p in reply.evidence} | {
            bytes(p.second.payload) for p in reply.evidence
        }
        assert {branch_a.envelope.payload, branch_b.envelope.payload} <= payloads, n.member

    # its LIFT, after the fork, does not count: three honest lifts are needed
    await arena.publish(lift(1))
    for m in ("lab-a", "lab-b", "overseer-a"):
        await arena.vote(m, Decision.LIFT)
    view = await views_agree(
        nodes,
        lambda v: (
            forked_and_paused(v)
            and v.epochs[0].lift_votes == ("lab-a", "lab-b", "overseer-a")
            and all(n.replica.head("overseer-a")[0] == 1 for n in nodes)
        ),
        what="still PAUSED: lab-d's LIFT is not counted",
    )
    assert view.epochs[0].lift is None
    await arena.vote("lab-c", Decision.LIFT)
    view = await views_agree(
        nodes,
        lambda v: (v.state, v.epoch) == (PauseState.NOT_PAUSED, 1) and evil_status(v)[1],
        what="lifted by the three honest labs and the overseer",
    )
    assert view.epochs[0].lift is not None
    assert view.epochs[0].lift.labs == ("lab-a", "lab-b", "lab-c")


async def test_a_fork_at_or_below_a_counted_lift_revokes_it_and_the_pause_is_back(
    arena: Arena,
) -> None:
    atk, nodes = arena.attacker, arena.nodes
    await arena.publish(pause(1))
    for m in ("lab-a", "lab-b"):
        await arena.vote(m, Decision.PAUSE)
    await views_agree(nodes, plain(PauseState.PAUSED, 1, evil_head=1), what="paused")
    await arena.publish(lift(1))
    for m in ("lab-a", "lab-b", "overseer-a"):
        await arena.vote(m, Decision.LIFT)
    await views_agree(
        nodes, plain(PauseState.NOT_PAUSED, 1, evil_head=2), what="lifted with lab-d's LIFT"
    )

    # lab-d signs a second seq-2 statement: its LIFT (seq 2) is at the fork, so it stops counting
    other = atk.statement(attest(note="the other seq 2"), seq=2)
    out = await atk.exchange(arena.target.address, statements=[other])
    assert out.ok, out
    view = await views_agree(
        nodes,
        lambda v: (
            (v.certified_state, v.epoch) == (PauseState.PAUSED, 1)
            and evil_status(v) == (2, True)
            and [(e.member, e.seq) for e in v.evidence] == [(EVIL, 2)]
        ),
        what="PAUSED again on every honest node: the lift rested on lab-d's LIFT",
    )
    assert view.epochs[0].lift is None
    assert view.epochs[0].lift_votes == ("lab-a", "lab-b", "overseer-a")


# -- type confusion, malformed and oversized input --------------------------------------------


async def test_a_payload_type_swapped_between_kinds_is_rejected(arena: Arena) -> None:
    atk, target = arena.attacker, arena.target
    st = atk.statement(attest())
    hb = atk.heartbeat()
    auth = atk.sign_auth(await atk.challenge(target.address), target.address)
    before = target.stats()
    out = await atk.exchange(
        target.address,
        statements=[
            hb,  # a heartbeat where statements go
            Attacker.relabeled(st.envelope, payload_type=HEARTBEAT_TYPE),  # type outside the sig
            atk.signed_payload(hb.envelope.payload, STATEMENT_TYPE),  # heartbeat bytes, signed
            auth,  # a signed gossip-auth envelope
            atk.signed_payload(st.envelope.payload, "application/json"),
        ],
        heartbeats=[
            st,  # a statement where heartbeats go
            atk.signed_payload(st.envelope.payload, HEARTBEAT_TYPE),  # statement bytes, signed
        ],
    )
    assert out.ok, out
    assert gained(target, before) == {
        "rejected.type-confusion": 2,
        "rejected.bad-signature": 1,
        "rejected.non-canonical": 2,
        "rejected.unknown-payload-type": 2,
    }
    assert target.replica.head(EVIL)[0] == 0
    await views_agree(arena.nodes, plain(PauseState.NOT_PAUSED, 0), what="nothing counted")


async def test_malformed_protobuf_is_refused_and_the_node_keeps_serving(arena: Arena) -> None:
    atk, target, nodes = arena.attacker, arena.target, arena.nodes
    before = target.stats()
    # bytes that are not an ExchangeRequest at all: refused before the service sees them
    out = await atk.exchange_bytes(target.address, b"\xff\xff\xff\xff\x0f")
    assert not out.ok
    st = atk.statement(attest())
    payload = st.envelope.payload
    one = st.envelope.signatures[0]
    out = await atk.exchange(
        target.address,
        statements=[
            atk.signed_payload(b"\x0a\xff\xff\xff\xff"),  # truncated field, validly signed
            atk.signed_payload(payload + b"\x78\x01"),  # an unknown field 15
            atk.signed_payload(payload[: 2 + payload[1]] + payload),  # field 1 twice
            Attacker.with_signatures(st.envelope, []),
            Attacker.with_signatures(st.envelope, [one, Signature("lab-a", one.sig)]),
        ],
    )
    assert out.ok, out
    bad_digest = gossip_pb2.Digest(heads=[gossip_pb2.MemberHead(member="lab-a", head_hash=b"12")])
    out = await atk.exchange(target.address, digest=bad_digest)
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert gained(target, before) == {"rejected.malformed": 4, "rejected.non-canonical": 2}

    async with OversightClient(target.address) as client:
        assert (await client.get_view()).answered_by == target.member
    await arena.publish(attest(note="after the junk"))
    await arena.everywhere(EVIL, 1)
    await views_agree(
        nodes, plain(PauseState.NOT_PAUSED, 0, evil_head=1), what="gossip and ingest go on"
    )


async def test_oversized_messages_and_items_are_refused(arena: Arena) -> None:
    atk, target, charter = arena.attacker, arena.target, arena.cluster.charter
    lim = charter.limits
    before = target.stats()
    huge = gossip_pb2.ExchangeRequest(
        items=gossip_pb2.Items(
            statements=[envelope_pb2.Envelope(payload=bytes(lim.max_message_bytes + 1))]
        )
    )
    out = await atk.exchange_pb(target.address, huge)
    assert out.code is grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC refuses it before parsing

    hb = atk.heartbeat()
    out = await atk.exchange(target.address, heartbeats=[hb] * (lim.max_items_per_message + 1))
    assert out.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "items" in out.details

    long_note = build_statement(charter, EVIL, 1, b"", int(time.time() * 1000), attest())
    big_payload = encode_statement(long_note) + b"\x00" * lim.max_statement_bytes
    out = await atk.exchange(
        target.address,
        statements=[atk.signed_payload(big_payload)],
        heartbeats=[atk.signed_payload(b"\x00" * 1025, HEARTBEAT_TYPE)],
    )
    assert out.ok, out
    assert gained(target, before) == {"rejected.oversize": 3}

    await arena.publish(attest(note="a message of a normal size"))
    await arena.everywhere(EVIL, 1)
    await views_agree(
        arena.nodes, plain(PauseState.NOT_PAUSED, 0, evil_head=1), what="the node serves on"
    )


async def test_timestamps_beyond_the_allowed_skew_are_rejected_as_from_future(
    arena: Arena,
) -> None:
    atk, target, charter = arena.attacker, arena.target, arena.cluster.charter
    skew_ms = charter.rules.max_clock_skew_s * 1000
    now = int(time.time() * 1000)
    before = target.stats()
    out = await atk.exchange(
        target.address,
        statements=[atk.statement(pause(1), issued_at_ms=now + 86_400_000)],
        heartbeats=[atk.heartbeat(issued_at_ms=now + skew_ms + 60_000)],
    )
    assert out.ok, out
    assert gained(target, before) == {"rejected.from-future": 2}
    assert target.replica.head(EVIL)[0] == 0

    # within the skew is fine (a clock a little ahead is not an attack)
    st = atk.sign(attest(), issued_at_ms=now + skew_ms // 2)
    assert (await atk.push(target.address, st, heartbeats=[atk.heartbeat()])).ok
    await arena.everywhere(EVIL, 1)
    await views_agree(
        arena.nodes, plain(PauseState.NOT_PAUSED, 0, evil_head=1), what="within the skew"
    )


async def test_the_operator_is_told_once_at_warning_when_a_forger_is_banned(
    arena: Arena, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 8 item 9: a ban is an operator event: one WARNING line naming the member and why."""
    atk, target = arena.attacker, arena.target
    with caplog.at_level(logging.WARNING, logger="pausenet.limits"):
        for _ in range(30):
            out = await atk.exchange(target.address, statements=[atk.forged("lab-a", pause(1))])
            if out.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                break
        for _ in range(3):  # refused while banned: no more lines
            await atk.exchange(target.address, statements=[atk.forged("lab-a", pause(1))])
    assert target.guard.banned(EVIL, time.time())
    bans = [r for r in caplog.records if r.getMessage().startswith("banned ")]
    assert [r.getMessage() for r in bans] == [
        f"banned {EVIL} for 30s (ban 1): it sent invalid items: bad-signature 11"
    ]
    assert bans[0].levelno == logging.WARNING


# -- floods -----------------------------------------------------------------------------------


async def test_a_flood_from_one_member_is_throttled_and_overseers_still_get_answers(
    arena: Arena, record_property: Callable[[str, object], None]
) -> None:
    atk, target, cluster = arena.attacker, arena.target, arena.cluster
    auth = gossip_authenticator(target)
    hb = atk.heartbeat()
    await arena.publish()
    replay = gossip_pb2.ExchangeRequest(items=items_to_pb(Items(heartbeats=(hb.envelope,))))
    before = target.stats()
    latencies: list[float] = []
    stop = asyncio.Event()

    async def overseer() -> None:
        async with OversightClient(target.address, timeout=30) as client:
            while not stop.is_set():
                t0 = time.monotonic()
                reply = await client.get_view()
                latencies.append(time.monotonic() - t0)
                assert reply.answered_by == target.member
                await asyncio.sleep(0.02)

    watcher = asyncio.create_task(overseer())
    t0 = time.monotonic()
    try:
        codes = await atk.flood(target.address, 1500, concurrency=48, make=lambda _i: replay)
        flood_s = time.monotonic() - t0
        answered_in_flood = len(latencies)
        # meanwhile honest news still spreads
        news = await cluster["lab-a"].attest_trigger("eval-threshold", note="during the flood")
        await eventually(
            lambda: target.replica.head("lab-a") == (1, news.hash), what="news reaches the target"
        )
    finally:
        stop.set()
        await watcher

    refused = codes[grpc.StatusCode.RESOURCE_EXHAUSTED]
    admitted = codes[OK]
    stats = target.stats()
    figures = {
        "flood_calls": sum(codes.values()),
        "flood_admitted": admitted,
        "flood_refused": refused,
        "flood_seconds": round(flood_s, 2),
        "getview_calls": len(latencies),
        "getview_during_flood": answered_in_flood,
        "getview_max_s": round(max(latencies), 3),
    }
    for k, v in figures.items():
        record_property(k, v)
    assert set(codes) <= {OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, (codes, figures)
    # a bucket of 50 that refills at 25/s (each call costs 1.02 tokens) admits about this many
    assert refused > 0, figures
    assert admitted <= 50 + 25 * flood_s + 10, figures
    # refused by its rate, or because it already had its exchanges in flight (bytes bound)
    causes = ("refused.rate:exchange", "refused.exchanges-in-flight")
    assert sum(stats.get(c, 0) - before.get(c, 0) for c in causes) >= refused
    assert latencies, figures
    assert answered_in_flood > 0, figures  # every call answered, some while the flood ran
    # bounded state: one guard entry per peer key, challenges and sessions within their caps
    assert len(target.guard._peers) <= len(cluster.ids) + 2
    assert len(auth._sessions) <= auth.max_sessions

    # a flood of forgeries gets the member banned: then every call is refused at once
    forged = gossip_pb2.ExchangeRequest(
        items=items_to_pb(Items(statements=(atk.forged("lab-a", pause(1)),) * 5))
    )
    codes2: Counter[grpc.StatusCode] = Counter()

    async def forge_until_banned() -> bool:
        # the rate limit lets a forgery through now and then; each one is judged
        codes2.update(await atk.flood(target.address, 50, concurrency=16, make=lambda _i: forged))
        return target.guard.banned(EVIL, time.time())

    await eventually(forge_until_banned, what="the forging member is banned")
    stats2 = target.stats()
    record_property("forgery_flood_calls", sum(codes2.values()))
    record_property("forgery_flood_admitted", codes2[OK])
    assert codes2[OK] <= 3, codes2  # 5 forgeries a call, 10 points each: banned on the 3rd
    assert stats2["refused.bans"] >= 1
    assert stats2.get("refused.banned", 0) > 0
    assert target.guard.banned(EVIL, time.time())

    # a flood of handshakes from one address is throttled and leaves bounded tables
    async def ask() -> grpc.StatusCode:
        try:
            await atk.challenge(target.address)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return OK

    hs = Counter(await asyncio.gather(*(ask() for _ in range(400))))
    record_property("challenge_flood_admitted", hs[OK])
    assert hs[grpc.StatusCode.RESOURCE_EXHAUSTED] > 0, hs
    # handing out challenges costs no memory: only members' own redeemed logins are held
    assert auth.held() <= auth.max_redeemed * len(auth.charter.members)
    await views_agree(
        arena.nodes,
        lambda v: v.state is PauseState.NOT_PAUSED and evil_status(v) == (0, False),
        what="the views are untouched",
    )
