"""Equivocators on real nodes: forks whose branches sit on different nodes, and members that lie
about their own timeline (DESIGN.md §6; docs/protocol.md §7, §8.1, §12.1, §12.3).

Four honest nodes (lab-a, lab-b, lab-c, overseer-a) run in this process over gRPC; lab-d's key
belongs to an `Attacker` (tests/byzantine.py) that sends each node what it chooses. A pause
needs 3 labs' PAUSE votes; a lift needs 3 labs' and the overseer's LIFT votes.
"""

# ruff: noqa: F811  (tests take the imported `arena` fixture as a parameter)
from __future__ import annotations

import asyncio
import os

import pytest
from helpers import attest, lift, pause
from netutil import eventually, views_agree
from test_byzantine import EVIL, RSI, Arena, arena  # noqa: F401 (arena: the fixture)

from pausenet.core.evidence import check_evidence
from pausenet.core.records import Decision
from pausenet.core.verify import Rejection
from pausenet.core.view import PauseState, View

pytestmark = pytest.mark.slow

SIDE_A = ("lab-a", "lab-b")
SIDE_B = ("lab-c", "overseer-a")


def equivocator(v: View, member: str = EVIL) -> bool:
    m = v.member(member)
    return m is not None and m.equivocator


async def test_an_equivocators_later_pause_vote_reaches_and_counts_on_every_node(
    arena: Arena,
) -> None:
    """lab-d forks at seq 2, one branch to each half of the federation, then goes on only on
    branch A: PAUSE and LIFT for epoch 1, then PAUSE for epoch 2. Its PAUSE votes must count on
    every node (fail-safe, §8.1), so the nodes holding branch B must learn branch A's later
    statements although they conflict with what they hold."""
    atk, cluster, nodes = arena.attacker, arena.cluster, arena.nodes
    await arena.publish(attest())
    await arena.everywhere(EVIL, 1)
    a2 = atk.statement(attest(note="branch A"))
    b2 = atk.statement(attest(note="branch B"))
    outs = await asyncio.gather(
        *(atk.exchange(cluster[m].address, statements=[a2]) for m in SIDE_A),
        *(atk.exchange(cluster[m].address, statements=[b2]) for m in SIDE_B),
    )
    assert all(o.ok for o in outs), outs
    atk.log.append(a2)
    a3 = atk.sign(pause(1, *RSI))
    a4 = atk.sign(lift(1))
    out = await atk.exchange(cluster["lab-a"].address, statements=[a3, a4])
    assert out.ok, out

    await arena.vote("lab-a", Decision.PAUSE)
    await arena.vote("lab-b", Decision.PAUSE)
    view = await views_agree(
        nodes,
        lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 1) and equivocator(v),
        what="epoch 1 paused everywhere, lab-d's branch-A PAUSE counted on branch-B nodes too",
    )
    assert view.epochs[0].pause is not None
    assert EVIL in view.epochs[0].pause.labs
    assert [(e.member, e.seq) for e in view.evidence] == [(EVIL, 2)]

    for m in ("lab-a", "lab-b", "lab-c", "overseer-a"):
        await arena.vote(m, Decision.LIFT)
    view = await views_agree(
        nodes,
        lambda v: (v.state, v.epoch) == (PauseState.NOT_PAUSED, 1),
        what="epoch 1 lifted by the honest members (lab-d's LIFT, after its fork, not counted)",
    )
    assert view.epochs[0].lift is not None
    assert EVIL not in view.epochs[0].lift.labs

    a5 = atk.sign(pause(2, *RSI))
    out = await atk.exchange(cluster["lab-a"].address, statements=[a5])
    assert out.ok, out
    await arena.vote("lab-a", Decision.PAUSE)
    await arena.vote("lab-b", Decision.PAUSE)
    view = await views_agree(
        nodes,
        lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 2),
        what="epoch 2 paused on every node, whichever branch of lab-d's log it saw first",
    )
    assert view.epochs[1].pause is not None
    assert view.epochs[1].pause.labs == ("lab-a", "lab-b", EVIL)
    # every node holds both branches of lab-d's log: the same statements, the same digest entry
    trees = {n.replica.tree_hash(EVIL) for n in nodes}
    assert len(trees) == 1
    assert trees != {b""}
    for n in nodes:
        held = {s.hash for s in n.replica.log(EVIL)} | {
            s.hash for s in n.replica.branch_statements(EVIL)
        }
        assert {a2.hash, b2.hash, a3.hash, a4.hash, a5.hash} <= held, n.member


async def test_a_vote_withheld_while_heartbeats_deny_it_is_evidence_when_revealed(
    arena: Arena,
) -> None:
    """lab-d signs a PAUSE vote at t0 and withholds it, while its heartbeats (issued after t0)
    keep naming its old head; the nodes prove NOT_PAUSED as of times after t0. Revealed, the vote
    and a denying heartbeat are portable evidence (§7), on every node, even one restarted in
    between; lab-d is an equivocator and its PAUSE vote counts."""
    atk, cluster, nodes = arena.attacker, arena.cluster, arena.nodes
    head = len(atk.log)
    withheld = atk.statement(pause(1, *RSI))  # issued now: t0
    await asyncio.sleep(0.01)
    await arena.vote("lab-a", Decision.PAUSE)
    await arena.vote("lab-b", Decision.PAUSE)
    denial = atk.heartbeat()  # names the old head, issued after t0
    assert denial.heartbeat.head_seq == head
    assert denial.heartbeat.issued_at_ms > withheld.statement.issued_at_ms
    out = await atk.push(arena.target.address, heartbeats=[denial])
    assert out.ok, out
    answer_time = denial.heartbeat.issued_at_ms

    def proven_not_paused_after_t0(v: View) -> bool:
        return (
            v.state is PauseState.NOT_PAUSED
            and v.as_of_ms is not None
            and v.as_of_ms >= answer_time
            and not v.evidence
        )

    await views_agree(nodes, proven_not_paused_after_t0, what="NOT_PAUSED proven after t0")

    # a node restarted now still holds the denying heartbeat as a witness of lab-d's timeline,
    # even once a later heartbeat (committing to the withheld head) has replaced it as latest
    later = atk.heartbeat(head_seq=head + 1, head_hash=withheld.hash)
    out = await atk.push(arena.target.address, heartbeats=[later])
    assert out.ok, out
    await eventually(
        lambda: all(
            (hb := n.replica.heartbeat(EVIL)) is not None and hb.hash == later.hash for n in nodes
        ),
        what="the later heartbeat everywhere",
    )
    await cluster.stop("lab-c")
    restarted = await cluster.start("lab-c")
    assert any(h.hash == denial.hash for h in restarted.replica.kept_heartbeats(EVIL))

    atk.log.append(withheld)
    out = await atk.push(cluster["lab-c"].address, withheld)
    assert out.ok, out
    view = await views_agree(
        cluster.running(),
        lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 1) and equivocator(v),
        what="the revealed vote is evidence everywhere, and it counts",
    )
    assert [(e.member, e.seq) for e in view.evidence] == [(EVIL, head + 1)]
    ev = view.evidence[0]
    assert {ev.first.payload_hash, ev.second.payload_hash} == {withheld.hash, denial.hash}
    # portable: anyone holding the charter can check it alone
    checked = check_evidence(cluster.charter, ev.first, ev.second, now_ms=answer_time)
    assert not isinstance(checked, Rejection)
    assert checked.seq == head + 1
    assert view.epochs[0].pause is not None
    assert EVIL in view.epochs[0].pause.labs


async def test_a_later_heartbeat_naming_a_lower_head_is_evidence_not_a_rollback(
    arena: Arena,
) -> None:
    """H1 commits lab-d to seq N+1 (never sent); H2, with a higher counter, names head N. The
    pair takes back a committed head: evidence on every node, and lab-d never looks synced
    again (§7, §8.3)."""
    atk, nodes = arena.attacker, arena.nodes
    await arena.publish(attest())
    await arena.everywhere(EVIL, 1)
    n = len(atk.log)
    h1 = atk.heartbeat(head_seq=n + 1, head_hash=os.urandom(32))
    h2 = atk.heartbeat()
    assert (h2.heartbeat.counter, h2.heartbeat.head_seq) == (h1.heartbeat.counter + 1, n)
    out = await atk.push(arena.target.address, heartbeats=[h1])
    assert out.ok, out
    await eventually(
        lambda: all(
            (hb := x.replica.heartbeat(EVIL)) is not None and hb.hash == h1.hash for x in nodes
        ),
        what="H1 everywhere",
    )
    out = await atk.push(arena.target.address, heartbeats=[h2])
    assert out.ok, out

    def rolled_back_is_evidence(v: View) -> bool:
        m = v.member(EVIL)
        return (
            m is not None
            and m.equivocator
            and not m.synced
            and [(e.member, e.seq) for e in v.evidence] == [(EVIL, n + 1)]
        )

    view = await views_agree(nodes, rolled_back_is_evidence, what="the rollback is evidence")
    ev = view.evidence[0]
    assert {ev.first.payload_hash, ev.second.payload_hash} == {h1.hash, h2.hash}
    # and the same pair sent the other way round (H2 first, then H1) is evidence too
    n2 = arena.cluster["lab-a"]
    assert any(e.id == ev.id for e in n2.replica.evidence())
