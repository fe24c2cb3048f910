"""Partitions and clocks (DESIGN.md §5, §6; docs/protocol.md §6 step 9, §8.3, §12).

Real nodes in this process, each link between two of them a `FaultProxy` (one per direction):
every node's peers are the proxies in front of the others, and it advertises no address of its
own, so all of its gossip goes through links the test can pass, cut or black-hole.

- During a partition each side answers truthfully: the side that holds a pause certificate says
  PAUSED; the side that cannot see one says UNKNOWN once the other side's heartbeats are stale
  (never NOT_PAUSED as of a time when a pause was in effect). After healing, every node converges
  on one view; the time it takes is recorded (`convergence_after_heal_s`).
- Nodes whose clocks differ by less than the charter's allowed skew agree; a node whose clock runs
  far ahead signs items that the others reject as `from-future`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from netutil import FAST_GOSSIP, agreed_view, eventually, set_heartbeat_ttl, views_agree

from pausenet.core.records import Decision
from pausenet.core.view import PauseState, View
from pausenet.errors import SigningRefusedError
from pausenet.node.config import load_config, parse_host_port
from pausenet.node.node import Node, NodeOptions, wall_clock_ms
from pausenet.ops.federation import init_federation
from pausenet.testing.faultproxy import FaultProxy, Mode

pytestmark = pytest.mark.slow

RSI = ("rsi-detected",)
HEAL_DEADLINE_S = 60.0  # a generous timeout: converging takes about a second when idle


class Mesh:
    """A federation whose nodes gossip only through fault proxies, one per directed link."""

    def __init__(
        self,
        dir: Path,
        labs: int,
        overseers: int,
        *,
        heartbeat_ttl_s: int | None = None,
        clocks: dict[str, Callable[[], int]] | None = None,
    ) -> None:
        self.fed = init_federation(dir / "fed", labs, overseers)
        if heartbeat_ttl_s is not None:
            set_heartbeat_ttl(self.fed.charter_path, heartbeat_ttl_s)
        self.ids = [m.id for m in self.fed.members]
        self.clocks = clocks or {}
        self.nodes: dict[str, Node] = {}
        self.links: dict[tuple[str, str], FaultProxy] = {}

    async def start(self) -> None:
        # the proxies first (their addresses are the nodes' peers), cut until they know where
        # the nodes they stand for listen
        for a in self.ids:
            for b in self.ids:
                if a != b:
                    proxy = self.links[(a, b)] = await FaultProxy("127.0.0.1", 1).start()
                    proxy.set_mode(Mode.CUT)
        for m in self.fed.members:
            peers = tuple(self.links[(m.id, b)].address for b in self.ids if b != m.id)
            config = replace(
                load_config(m.config_path),
                listen="127.0.0.1:0",
                admin_listen="127.0.0.1:0",
                peers=peers,
                advertise="",
            )
            options = NodeOptions(
                gossip=FAST_GOSSIP,
                heartbeat_interval_s=0.5,
                clock=self.clocks.get(m.id, wall_clock_ms),
                # peers dial it through the proxies in front of it (gossip logins name them)
                dialled_at=tuple(self.links[(a, m.id)].address for a in self.ids if a != m.id),
            )
            node = Node(config, options)
            await node.start()
            self.nodes[m.id] = node
        for (_a, b), proxy in self.links.items():
            proxy.target = parse_host_port(self.nodes[b].address)
            proxy.set_mode(Mode.PASS)

    async def aclose(self) -> None:
        nodes, self.nodes = list(self.nodes.values()), {}
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
        links, self.links = list(self.links.values()), {}
        await asyncio.gather(*(p.close() for p in links), return_exceptions=True)

    def __getitem__(self, member: str) -> Node:
        return self.nodes[member]

    def group(self, members: Iterable[str]) -> list[Node]:
        return [self.nodes[m] for m in members]

    def set_links(self, side_a: Iterable[str], side_b: Iterable[str], mode: Mode) -> None:
        """Set every link between the two groups, both directions, to `mode`."""
        side_b = list(side_b)
        for a in side_a:
            for b in side_b:
                self.links[(a, b)].set_mode(mode)
                self.links[(b, a)].set_mode(mode)

    def heal(self) -> None:
        for proxy in self.links.values():
            proxy.set_mode(Mode.PASS)


@contextlib.asynccontextmanager
async def mesh(dir: Path, labs: int, overseers: int, **kw: object) -> AsyncIterator[Mesh]:
    m = Mesh(dir, labs, overseers, **kw)  # type: ignore[arg-type]
    try:
        await m.start()
        yield m
    finally:
        await m.aclose()


def all_synced(nodes: Iterable[Node]) -> Callable[[], bool]:
    """Every one of `nodes` sees every one of their members fresh and synced."""
    nodes = list(nodes)
    ids = {n.member for n in nodes}
    return lambda: all(m.fresh and m.synced for n in nodes for m in n.view().members if m.id in ids)


@dataclass(frozen=True)
class Sample:
    member: str
    at_ms: int
    state: PauseState
    as_of_ms: int | None


async def sample_views(nodes: list[Node], out: list[Sample], stop: asyncio.Event) -> None:
    """Every node's answer every 20 ms until `stop` is set."""
    while not stop.is_set():
        for n in nodes:
            v = n.view()
            out.append(Sample(n.member, v.now_ms, v.state, v.as_of_ms))
        await asyncio.sleep(0.02)


def untruthful(samples: Iterable[Sample], paused_from_ms: int) -> list[Sample]:
    """Answers that claim NOT_PAUSED as of a moment when a pause was already in effect."""
    return [
        s
        for s in samples
        if s.state is PauseState.NOT_PAUSED
        and s.as_of_ms is not None
        and s.as_of_ms >= paused_from_ms
    ]


# -- partitions -------------------------------------------------------------------------------

SIDE_A = ("lab-a", "lab-b", "lab-c")  # three of four labs: enough to pause
SIDE_B = ("lab-d", "overseer-a")


@pytest.mark.parametrize("mode", [Mode.CUT, Mode.DROP])
async def test_during_a_partition_each_side_answers_truthfully_and_after_healing_all_converge(
    tmp_path: Path, mode: Mode, record_property: Callable[[str, object], None]
) -> None:
    ttl_s = 3
    async with mesh(tmp_path, 4, 1, heartbeat_ttl_s=ttl_s) as net:
        everyone = net.group(net.ids)
        side_a, side_b = net.group(SIDE_A), net.group(SIDE_B)
        await eventually(all_synced(everyone), what="every node sees every member synced")
        await views_agree(everyone, lambda v: v.state is PauseState.NOT_PAUSED, what="not paused")

        net.set_links(SIDE_A, SIDE_B, mode)
        cut_at = wall_clock_ms()
        samples: list[Sample] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_views(everyone, samples, stop))
        try:
            votes = [await net[m].cast_vote(Decision.PAUSE, triggers=RSI) for m in SIDE_A]
            paused_from = max(v.statement.issued_at_ms for v in votes)  # the third vote's time
            news_b = await net["lab-d"].attest_trigger("eval-threshold", note="seen on side B")

            # side A holds the certificate: PAUSED, proven (side B cannot lift without 3 labs)
            await views_agree(
                side_a,
                lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 1),
                what="side A: PAUSED epoch 1",
            )
            # side B cannot see it: once side A's heartbeats are stale, UNKNOWN
            await eventually(
                lambda: all(n.view().state is PauseState.UNKNOWN for n in side_b),
                timeout=ttl_s + 60,
                what="side B: UNKNOWN once side A's heartbeats are older than the TTL",
            )
            for n in side_b:
                v = n.view()
                assert (v.certified_state, v.epoch) == (PauseState.NOT_PAUSED, 0)
                assert {m.id for m in v.members if not m.fresh} == set(SIDE_A)
                assert n.replica.head("lab-a")[0] == 0  # nothing crossed the partition
            assert all(n.replica.head("lab-d")[0] == 0 for n in side_a)
            unknown_after_s = (wall_clock_ms() - cut_at) / 1000

            net.heal()
            if mode is Mode.DROP:
                # connections held by the black hole: a real one would deliver them late or
                # reset them; the proxy discarded their bytes, so end them as a reset would
                for proxy in net.links.values():
                    proxy.set_mode(Mode.CUT)
                    proxy.set_mode(Mode.PASS)
            healed = time.monotonic()
            converged = await views_agree(
                everyone,
                lambda v: (
                    (v.state, v.epoch) == (PauseState.PAUSED, 1)
                    and all(m.synced for m in v.members)
                    and v.member("lab-d").head_seq == 1  # type: ignore[union-attr]
                ),
                what="after healing: every node PAUSED epoch 1, every member synced",
                timeout=HEAL_DEADLINE_S,
            )
            convergence_s = time.monotonic() - healed
        finally:
            stop.set()
            await sampler

        record_property("convergence_after_heal_s", round(convergence_s, 2))
        record_property("unknown_after_partition_s", round(unknown_after_s, 2))
        assert converged.epochs[0].pause is not None
        assert converged.epochs[0].pause.labs == SIDE_A
        assert all(n.replica.head("lab-d") == (1, news_b.hash) for n in everyone)
        lies = untruthful(samples, paused_from)
        assert not lies, f"NOT_PAUSED as of a time after the pause took effect: {lies[:3]}"
        # side B said UNKNOWN from some moment on, and never PAUSED before it could know
        b_states = {s.state for s in samples if s.member in SIDE_B and s.at_ms < paused_from}
        assert PauseState.PAUSED not in b_states


async def test_a_black_holed_link_is_routed_around_and_used_again_once_it_heals(
    tmp_path: Path,
) -> None:
    async with mesh(tmp_path, 3, 0) as net:
        everyone = net.group(net.ids)
        await eventually(all_synced(everyone), what="every node sees every member synced")
        a_to_b, b_to_a = net.links[("lab-a", "lab-b")], net.links[("lab-b", "lab-a")]
        a_to_b.set_mode(Mode.DROP)
        b_to_a.set_mode(Mode.DROP)

        await net["lab-a"].cast_vote(Decision.PAUSE, triggers=RSI)
        await net["lab-b"].cast_vote(Decision.PAUSE, triggers=RSI)
        took = await views_agree(
            everyone,
            lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 1),
            what="PAUSED everywhere, through lab-c",
        )
        assert took.epochs[0].pause is not None
        engine = net["lab-a"].engine
        assert engine is not None
        await eventually(
            lambda: engine.backoff(a_to_b.address) > 0, what="lab-a backs off the silent link"
        )

        net.heal()
        a_to_b.set_mode(Mode.CUT)  # the held connections end, as a reset would end them
        a_to_b.set_mode(Mode.PASS)
        b_to_a.set_mode(Mode.CUT)
        b_to_a.set_mode(Mode.PASS)
        forwarded = a_to_b.bytes_forwarded
        await eventually(
            lambda: a_to_b.bytes_forwarded > forwarded,
            what="lab-a gossips with lab-b directly again",
            timeout=HEAL_DEADLINE_S,
        )
        await views_agree(everyone, lambda v: v.state is PauseState.PAUSED, what="still agreed")


# -- clocks -----------------------------------------------------------------------------------


def offset_clock(offset_ms: int) -> Callable[[], int]:
    return lambda: wall_clock_ms() + offset_ms


def key_fields(v: View) -> tuple[object, ...]:
    """What nodes must agree on whatever their clocks: the answer and what it rests on (the
    times a certificate formed are capped at each node's own clock, so they may differ)."""
    return (
        v.state,
        v.epoch,
        v.certified_state,
        tuple((e.epoch, e.pause_votes, e.lift_votes) for e in v.epochs),
        tuple(c.votes for e in v.epochs for c in (e.pause, e.lift) if c is not None),
        tuple((m.id, m.head_seq, m.head_hash, m.equivocator, m.synced) for m in v.members),
        tuple(e.id for e in v.evidence),
    )


async def test_nodes_whose_clocks_differ_within_the_allowed_skew_agree(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    skew_ms = 30_000  # the generated charter's max_clock_skew_s
    offsets = {"lab-a": 0, "lab-b": skew_ms // 2 - 1_000, "lab-c": -(skew_ms // 2 - 1_000)}
    clocks = {m: offset_clock(o) for m, o in offsets.items()}
    async with mesh(tmp_path, 3, 0, clocks=clocks) as net:
        everyone = net.group(net.ids)
        assert net["lab-a"].charter.rules.max_clock_skew_s * 1000 == skew_ms
        await eventually(all_synced(everyone), what="every node sees every member synced")
        before = {n.member: n.stats().get("rejected.from-future", 0) for n in everyone}

        votes = [
            await net["lab-b"].cast_vote(Decision.PAUSE, triggers=RSI),  # 14 s ahead
            await net["lab-c"].cast_vote(Decision.PAUSE, triggers=RSI),  # 14 s behind
        ]
        formed_at = max(v.statement.issued_at_ms for v in votes)  # as the signers' clocks say

        samples: list[Sample] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_views(everyone, samples, stop))

        def agree() -> bool:
            keys = {key_fields(n.view()) for n in everyone}
            return len(keys) == 1 and next(iter(keys))[:2] == (PauseState.PAUSED, 1)

        try:
            # A node whose clock is behind the vote that completed the pause cannot prove the
            # pause as of a time before that vote was signed: it answers UNKNOWN until its own
            # clock passes it, up to the clocks' difference (docs/protocol.md §8.1, §8.3).
            took = await eventually(
                agree,
                timeout=skew_ms / 1000 + 60,
                what="every node PAUSED epoch 1 on the same votes",
            )
        finally:
            stop.set()
            await sampler
        record_property("skewed_clocks_agree_after_s", round(took, 2))
        after = {n.member: n.stats().get("rejected.from-future", 0) for n in everyone}
        assert after == before, "nothing within the skew is rejected"
        # meanwhile no node claimed NOT_PAUSED as of a time the certificate says it was paused
        lies = untruthful(samples, formed_at)
        assert not lies, lies[:3]


async def test_a_node_whose_clock_runs_beyond_the_skew_signs_items_the_others_reject_as_from_future(
    tmp_path: Path,
) -> None:
    """50 s ahead: beyond the 30 s allowed for signed items, within the 30 s + 30 s the gossip
    handshake allows (docs/protocol.md §12.5), so its items reach the others and are refused."""
    ahead, offset_ms = "lab-d", 50_000
    async with mesh(tmp_path, 4, 0, clocks={ahead: offset_clock(offset_ms)}) as net:
        honest = net.group(("lab-a", "lab-b", "lab-c"))
        assert net[ahead].charter.rules.max_clock_skew_s * 1000 < offset_ms
        await eventually(all_synced(honest), what="the honest nodes see each other synced")
        # lab-d's heartbeats are 50 s ahead: the others never count it fresh
        await eventually(
            lambda: all(n.stats().get("rejected.from-future", 0) > 0 for n in honest),
            what="every honest node rejects lab-d's items as from-future",
        )
        # (its vote would be within the skew 20 s from now: what follows takes a second or two)
        vote_d = await net[ahead].cast_vote(Decision.PAUSE, triggers=RSI)
        for m in ("lab-a", "lab-b"):
            await net[m].cast_vote(Decision.PAUSE, triggers=RSI)
        # lab-d's vote is not counted: two of the three needed; lab-d may have voted unseen
        await views_agree(
            honest,
            lambda v: (
                (v.state, v.certified_state) == (PauseState.UNKNOWN, PauseState.NOT_PAUSED)
                and v.epochs[0].pause_votes == ("lab-a", "lab-b")
                and v.member(ahead).head_seq == 0  # type: ignore[union-attr]
            ),
            what="honest nodes: two PAUSE votes counted, lab-d's rejected, answer UNKNOWN",
        )
        await net["lab-c"].cast_vote(Decision.PAUSE, triggers=RSI)
        view = await views_agree(
            honest,
            lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 1),
            what="honest nodes: PAUSED by the three labs whose clocks are right",
        )
        assert wall_clock_ms() < vote_d.statement.issued_at_ms - 30_000, "the test ran too slowly"
        assert view.epochs[0].pause is not None
        assert view.epochs[0].pause.labs == ("lab-a", "lab-b", "lab-c")
        assert all(n.replica.head(ahead)[0] == 0 for n in honest)

        # the node ahead takes everyone's (older) items and counts its own vote too
        fast = net[ahead]
        await eventually(
            lambda: (
                fast.view().certified_state is PauseState.PAUSED
                and fast.replica.head("lab-c")[0] == 1  # lab-c's vote, not just a's and b's
            ),
            what="lab-d paused too, holding every vote",
        )
        own = fast.view()
        assert own.epochs[0].pause is not None
        assert own.epochs[0].pause.labs == ("lab-a", "lab-b", "lab-c", ahead)
        assert agreed_view(own) != agreed_view(view)
        assert fast.stats().get("rejected.from-future", 0) == 0


async def test_a_node_whose_clock_is_an_hour_off_is_refused_at_the_handshake(
    tmp_path: Path,
) -> None:
    off = "lab-d"
    async with mesh(tmp_path, 4, 0, clocks={off: offset_clock(-3_600_000)}) as net:
        honest = net.group(("lab-a", "lab-b", "lab-c"))
        await eventually(all_synced(honest), what="the honest nodes see each other synced")
        # neither side accepts the other's signed challenge answer: too far from its own clock
        await eventually(
            lambda: all(n.stats().get("refused.bad-auth", 0) > 0 for n in [*honest, net[off]]),
            what="authentication refused both ways",
        )
        # cut off since it started, it signs nothing (its store could lack its own latest
        # statements, which only peers can show it)
        with pytest.raises(SigningRefusedError, match="not yet in touch"):
            await net[off].cast_vote(Decision.PAUSE, triggers=RSI)
        for m in ("lab-a", "lab-b", "lab-c"):
            await net[m].cast_vote(Decision.PAUSE, triggers=RSI)
        view = await views_agree(
            honest,
            lambda v: (v.state, v.epoch) == (PauseState.PAUSED, 1),
            what="the honest nodes agree without lab-d",
        )
        assert view.epochs[0].pause is not None
        assert view.epochs[0].pause.labs == ("lab-a", "lab-b", "lab-c")
        lone = net[off].view()
        assert lone.certified_state is PauseState.NOT_PAUSED  # it heard nothing
        assert [m.id for m in lone.members if m.head_seq] == []
