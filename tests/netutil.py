"""Harnesses for multi-node tests: polling with deadlines, a simulated federation over the
in-memory network, and clusters of real nodes over gRPC on 127.0.0.1.

    await eventually(lambda: node.view().state is PauseState.PAUSED, what="node paused")

    sim = Sim(20, seed=1)                     # 20 replicas, one per member, synchronous rounds
    sim.publish("lab-a", pause(1))
    rounds = await sim.run_until(lambda: sim.everyone_has("lab-a", 1), max_rounds=10)

    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        await cluster.converged()
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from helpers import T0, heartbeat_for, log_for, make_federation

from pausenet.core.charter import Charter
from pausenet.core.keys import SigningKey
from pausenet.core.records import Body, SignedHeartbeat, SignedStatement
from pausenet.core.view import View
from pausenet.node.config import NodeConfig, load_config
from pausenet.node.gossip import GossipConfig, GossipEngine, GossipService, RoundStats
from pausenet.node.messages import Items
from pausenet.node.node import Node, NodeOptions
from pausenet.node.peerauth import Authenticator
from pausenet.node.replica import Replica
from pausenet.ops.federation import Federation, approve_charter, init_federation
from pausenet.testing.memnet import MemoryNetwork, RoundSyncReplica

__all__ = [
    "FAST_GOSSIP",
    "Cluster",
    "Sim",
    "agreed_view",
    "eventually",
    "facts",
    "gossip_authenticator",
    "set_heartbeat_ttl",
    "set_tripwires",
    "views_agree",
]

# A loaded two-core CI machine can be slow; deadlines are generous, polls are frequent.
DEFAULT_TIMEOUT_S = 15.0


async def eventually(
    pred: Callable[[], bool | Awaitable[bool]],
    timeout: float = DEFAULT_TIMEOUT_S,
    interval: float = 0.02,
    *,
    what: str = "",
) -> float:
    """Poll `pred` (sync or async) until it is true; return the seconds it took.

    Fails the test with `what` if it is still false after `timeout` seconds.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        result = pred()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return loop.time() - start
        if loop.time() - start > timeout:
            raise AssertionError(f"not true within {timeout:g}s: {what or pred}")
        await asyncio.sleep(interval)


# -- a simulated federation -------------------------------------------------------------------


class Sim:
    """One replica per member of an n-lab charter, each with a `GossipEngine`, over one
    `MemoryNetwork`. Time is counted in rounds: the replicas' clock is T0 + 1 s per round and
    the engines' monotonic clock is the round number, so backoff delays are in rounds.

    By default replicas are `RoundSyncReplica`s (what a round delivers takes effect at its end,
    the textbook round model); pass `replica_cls=Replica` for a node's immediate ingest.
    """

    def __init__(
        self,
        n: int,
        *,
        seed: int = 0,
        loss: float = 0.0,
        fanout: int = 3,
        limits: Mapping[str, int] | None = None,
        replica_cls: type[Replica] = RoundSyncReplica,
        bootstrap: Callable[[str], tuple[str, ...]] | None = None,
        gossip: GossipConfig | None = None,
    ) -> None:
        self.charter, self.keys = make_federation(labs=n, overseers=0, limits=limits)
        self.ids = [m.id for m in self.charter.members]
        self.round_no = 0
        self.rng = random.Random(seed)
        self.net = MemoryNetwork(loss=loss, rng=random.Random(self.rng.random()))
        self.address = {m: f"{m}.sim:7400" for m in self.ids}
        self.member_at = {a: m for m, a in self.address.items()}
        self.logs: dict[str, list[SignedStatement]] = {m: [] for m in self.ids}
        self.counters: dict[str, int] = dict.fromkeys(self.ids, 0)
        self.down: set[str] = set()
        self.replicas: dict[str, Replica] = {}
        self.engines: dict[str, GossipEngine] = {}
        config = gossip or GossipConfig(fanout=fanout, backoff_base_s=1.0, backoff_max_s=4.0)
        everyone = tuple(self.address.values())
        for m in self.ids:
            rep = replica_cls(self.charter, self.clock)
            self.net.register(self.address[m], GossipService(rep))
            self.replicas[m] = rep
            self.engines[m] = GossipEngine(
                rep,
                self.net.transport(self.address[m]),
                self_address=self.address[m],
                bootstrap=bootstrap(m) if bootstrap else everyone,
                config=config,
                rng=random.Random(self.rng.random()),
                monotonic=lambda: float(self.round_no),
            )

    def clock(self) -> int:
        return T0 + self.round_no * 1000

    # -- members acting ---------------------------------------------------------------------

    def sign(self, member: str, *bodies: Body) -> list[SignedStatement]:
        """Sign the next statements of member's log (not yet held by any replica)."""
        new = log_for(
            self.charter,
            self.keys[member],
            member,
            bodies,
            self.clock(),
            step_ms=1,  # a long log signed at once stays within the clock-skew allowance
            after=self.logs[member],
        )
        self.logs[member] += new
        return new

    def sign_heartbeat(self, member: str) -> SignedHeartbeat:
        self.counters[member] += 1
        return heartbeat_for(
            self.charter,
            self.keys[member],
            member,
            self.logs[member],
            self.counters[member],
            self.clock(),
            address=self.address[member],
        )

    async def give(self, member: str, items: Items) -> None:
        """Deliver items straight into member's replica (as its own node would)."""
        rep = self.replicas[member]
        await rep.ingest(items)
        if isinstance(rep, RoundSyncReplica):
            await rep.flush()

    async def publish(self, member: str, *bodies: Body) -> list[SignedStatement]:
        """Member signs statements and a heartbeat; its own replica holds them."""
        new = self.sign(member, *bodies)
        hb = self.sign_heartbeat(member)
        await self.give(member, Items(tuple(s.envelope for s in new), (hb.envelope,)))
        return new

    async def heartbeat_all(self) -> None:
        for m in self.ids:
            await self.give(m, Items(heartbeats=(self.sign_heartbeat(m).envelope,)))

    # -- the network ------------------------------------------------------------------------

    def set_down(self, member: str, down: bool = True) -> None:
        self.net.set_down(self.address[member], down)
        (self.down.add if down else self.down.discard)(member)

    async def round(self) -> dict[str, RoundStats]:
        """Every running node runs one gossip round; returns each one's stats."""
        self.round_no += 1
        running = [m for m in self.ids if m not in self.down]
        stats = await asyncio.gather(*(self.engines[m].run_round() for m in running))
        for rep in self.replicas.values():
            if isinstance(rep, RoundSyncReplica):
                await rep.flush()
        return dict(zip(running, stats, strict=True))

    async def run_until(self, pred: Callable[[], bool], max_rounds: int) -> int:
        """Run rounds until pred() holds; return how many it took (fail after max_rounds)."""
        for n in range(max_rounds + 1):
            if pred():
                return n
            if n < max_rounds:
                await self.round()
        raise AssertionError(f"not reached within {max_rounds} rounds")

    # -- what replicas hold -----------------------------------------------------------------

    def holders(self, member: str, seq: int, among: set[str] | None = None) -> int:
        """How many replicas hold member's log up to seq."""
        return sum(
            1
            for m, r in self.replicas.items()
            if (among is None or m in among) and r.head(member)[0] >= seq
        )

    def everyone_has(self, member: str, seq: int) -> bool:
        return self.holders(member, seq) == len(self.ids)

    def all_heartbeats_everywhere(self) -> bool:
        return all(
            (hb := r.heartbeat(m)) is not None and hb.heartbeat.counter == self.counters[m]
            for r in self.replicas.values()
            for m in self.ids
        )

    def in_sync(self) -> bool:
        return len({r.summary_hash() for r in self.replicas.values()}) == 1


# -- real nodes over gRPC ---------------------------------------------------------------------

# Rounds every 0.1 s, short backoff: a cluster on one machine converges in well under a second.
FAST_GOSSIP = GossipConfig(
    interval_s=0.1, jitter=0.2, fanout=3, call_timeout_s=3.0, backoff_base_s=0.2, backoff_max_s=1.0
)


def set_heartbeat_ttl(charter_path: Path, ttl_s: int) -> None:
    """Rewrite the TTL in a freshly written charter (before anything is signed under it)."""
    text = charter_path.read_text(encoding="utf-8")
    new, n = re.subn(r"(?m)^heartbeat_ttl_s = \d+$", f"heartbeat_ttl_s = {ttl_s}", text)
    assert n == 1, "charter.toml has no heartbeat_ttl_s line"
    charter_path.write_text(new, encoding="utf-8")
    approve_charter(charter_path.parent)  # genesis is in force only when every member approved it


def set_tripwires(charter_path: Path, tripwires: Mapping[str, tuple[int, Sequence[str]]]) -> None:
    """Give triggers of a freshly written charter tripwires, {trigger: (attest_threshold,
    attesters)}: the charter becomes format 2 (before anything is signed under it)."""
    text = charter_path.read_text(encoding="utf-8")
    text, n = re.subn(
        r'(?m)^format = "pausenet.charter.v1"$', 'format = "pausenet.charter.v2"', text
    )
    assert n == 1, "charter.toml has no format line"
    for trigger, (k, attesters) in tripwires.items():
        # a JSON array of strings is a TOML array too
        rule = f"{{ attest_threshold = {k}, attesters = {json.dumps(list(attesters))} }}"
        text, n = re.subn(
            rf'(?m)^(id = "{re.escape(trigger)}"\ndescription = .*)$',
            lambda m, rule=rule: f"{m.group(1)}\nauto_pause = {rule}",
            text,
        )
        assert n == 1, f"charter.toml has no trigger {trigger!r}"
    charter_path.write_text(text, encoding="utf-8")
    approve_charter(charter_path.parent)


class Cluster:
    """A federation made by `init_federation` in a temp dir, its nodes run in this process.

    Every node listens on 127.0.0.1 with OS-chosen ports; the first node started is every other
    node's bootstrap peer. `async with` starts every member's node (or only those in `running`)
    and stops every node on the way out, even on failure.
    """

    def __init__(
        self,
        dir: Path,
        labs: int = 3,
        overseers: int = 1,
        *,
        heartbeat_ttl_s: int | None = None,
        options: NodeOptions | None = None,
        extra_peers: tuple[str, ...] = (),
        running: tuple[str, ...] | None = None,
        tripwires: Mapping[str, tuple[int, Sequence[str]]] | None = None,
    ) -> None:
        self.extra_peers = extra_peers
        self.fed: Federation = init_federation(dir / "fed", labs, overseers)
        if heartbeat_ttl_s is not None:
            set_heartbeat_ttl(self.fed.charter_path, heartbeat_ttl_s)
        if tripwires:
            set_tripwires(self.fed.charter_path, tripwires)
        self.options = options or NodeOptions(gossip=FAST_GOSSIP, heartbeat_interval_s=0.5)
        self.ids = [m.id for m in self.fed.members]
        self.configs: dict[str, NodeConfig] = {
            m.id: load_config(m.config_path) for m in self.fed.members
        }
        self.nodes: dict[str, Node] = {}
        self.bootstrap: str | None = None
        self.to_start = list(running) if running is not None else self.ids

    @property
    def charter(self) -> Charter:
        """The charter as the nodes read it (after any rewrite)."""
        return next(iter(self.nodes.values())).charter

    def key(self, member: str) -> SigningKey:
        return next(m.key for m in self.fed.members if m.id == member)

    def config(self, member: str) -> NodeConfig:
        peers = ((self.bootstrap,) if self.bootstrap else ()) + self.extra_peers
        return replace(
            self.configs[member], listen="127.0.0.1:0", admin_listen="127.0.0.1:0", peers=peers
        )

    async def start(self, member: str) -> Node:
        assert member not in self.nodes, f"{member} is already running"
        node = Node(self.config(member), self.options)
        await node.start()
        self.nodes[member] = node
        if self.bootstrap is None:
            self.bootstrap = node.address
        return node

    async def stop(self, member: str) -> None:
        await self.nodes.pop(member).stop()

    async def start_all(self) -> list[Node]:
        """Start every member's node (or those named by `running`) not yet running."""
        return [await self.start(m) for m in self.to_start if m not in self.nodes]

    def running(self) -> list[Node]:
        return list(self.nodes.values())

    def __getitem__(self, member: str) -> Node:
        return self.nodes[member]

    async def __aenter__(self) -> Cluster:
        try:
            await self.start_all()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        nodes, self.nodes = list(self.nodes.values()), {}
        await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)

    # -- conditions -------------------------------------------------------------------------

    def all_synced(self) -> bool:
        """Every running node sees every running member fresh and synced."""
        running = set(self.nodes)
        return all(
            m.fresh and m.synced
            for n in self.running()
            for m in n.view().members
            if m.id in running
        )

    async def converged(self, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        return await eventually(
            self.all_synced, timeout, what="every node sees every member fresh and synced"
        )

    def states(self) -> dict[str, tuple[str, int]]:
        return {m: (n.view().state.value, n.view().epoch) for m, n in self.nodes.items()}

    async def all_say(self, state: str, epoch: int, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        want = {m: (state, epoch) for m in self.nodes}
        try:
            return await eventually(lambda: self.states() == want, timeout)
        except AssertionError:
            raise AssertionError(
                f"not every node says {state} epoch {epoch} within {timeout:g}s: {self.states()}"
            ) from None


# -- comparing what nodes conclude ------------------------------------------------------------


def agreed_view(view: View) -> str:
    """The part of a view that every node holding the same facts must compute identically, as
    canonical JSON: everything but the evaluation time, the as-of time it implies (and the
    explanation that quotes it), and each member's latest heartbeat counter and time, which move
    on every heartbeat."""
    doc = view.to_json()
    for key in ("now", "as_of", "explanation"):
        doc.pop(key)
    for m in doc["members"]:
        m.pop("heartbeat_counter")
        m.pop("heartbeat_at")
    return json.dumps(doc, sort_keys=True)


def facts(node: Node) -> tuple[tuple[tuple[str, int, bytes], ...], tuple[bytes, ...]]:
    """Every member's log head and the evidence ids a node holds (heartbeats left out)."""
    r = node.replica
    heads = tuple((m.id, *r.head(m.id)) for m in sorted(node.charter.members, key=lambda m: m.id))
    return heads, tuple(e.id for e in r.evidence())


async def views_agree(
    nodes: Sequence[Node],
    check: Callable[[View], bool] = lambda v: True,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> View:
    """Wait until every node's view passes `check` and all agree (`agreed_view`); return one.

    On failure the assertion shows each node's state and what differs."""

    def ok() -> bool:
        views = [n.view() for n in nodes]
        return all(check(v) for v in views) and len({agreed_view(v) for v in views}) == 1

    try:
        await eventually(ok, timeout, what=what)
    except AssertionError:
        lines = [
            f"{n.member}: {v.state.value} epoch {v.epoch} certified {v.certified_state.value},"
            f" equivocators {[m.id for m in v.members if m.equivocator]},"
            f" unsynced {[m.id for m in v.members if not m.synced]},"
            f" evidence {len(v.evidence)}"
            for n in nodes
            for v in (n.view(),)
        ]
        raise AssertionError(f"not true within {timeout:g}s: {what}\n" + "\n".join(lines)) from None
    return nodes[0].view()


def gossip_authenticator(node: Node) -> Authenticator:
    """The `Authenticator` behind a running node's Gossip service (for bounds on its tables)."""
    return node.authenticator
