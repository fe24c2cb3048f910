"""Watching every node of a cluster at once: a WatchView stream per node, and waits, with a
deadline, until every node's view meets a condition."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from pausenet.client import OversightClient
from pausenet.core.payload import pause_state_from_pb
from pausenet.errors import ClusterError, NodeError
from pausenet.node.tls import TlsFiles
from pausenet.ops.cluster.supervisor import ClusterNode
from pausenet.v1 import oversight_pb2

__all__ = ["STEP_DEADLINE_S", "Watcher", "describe_view", "state_of"]

ViewReply = oversight_pb2.ViewReply

STEP_DEADLINE_S = 20.0


class Watcher:
    """A WatchView stream from every node: each node's latest view, and when each member's new
    head first reached it (for latency measurements)."""

    def __init__(self, nodes: Sequence[ClusterNode], tls: TlsFiles | None = None) -> None:
        self.nodes = list(nodes)
        self.tls = tls
        self.latest: dict[str, ViewReply] = {}
        self.arrived: dict[str, float] = {}  # time.perf_counter() of the latest reply
        self.failed: dict[str, str] = {}
        self._heads: dict[str, dict[str, int]] = {n.member: {} for n in self.nodes}
        self._first_seen: dict[tuple[str, str, int], float] = {}
        self._event = asyncio.Event()
        self._clients: list[OversightClient] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watcher:
        for n in self.nodes:
            c = OversightClient(n.address, tls=self.tls)
            self._clients.append(c)
            self._tasks.append(asyncio.create_task(self._follow(n.member, c)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for c in self._clients:
            with contextlib.suppress(Exception):
                await c.channel.close()

    async def _follow(self, member: str, client: OversightClient) -> None:
        try:
            async for reply in client.watch():
                now = time.perf_counter()
                self.latest[member] = reply
                self.arrived[member] = now
                heads = self._heads[member]
                for m in reply.members:
                    old = heads.get(m.id, 0)
                    for s in range(old + 1, m.head_seq + 1):
                        self._first_seen[(member, m.id, s)] = now
                    heads[m.id] = max(old, m.head_seq)
                self._event.set()
            self.failed[member] = "its WatchView stream ended (is the node stopping?)"
        except NodeError as exc:
            self.failed[member] = str(exc)
        self._event.set()

    def seen_at(self, node: str, member: str, seq: int) -> float | None:
        """When node's view first showed member's log at seq or beyond (perf_counter)."""
        return self._first_seen.get((node, member, seq))

    def head(self, node: str, member: str) -> int:
        return self._heads[node].get(member, 0)

    async def until(
        self,
        done: Callable[[ViewReply], bool],
        *,
        what: str,
        deadline_s: float = STEP_DEADLINE_S,
        on_reply: Callable[[str, ViewReply, float], None] | None = None,
        describe: Callable[[ViewReply], str] | None = None,
    ) -> None:
        """Wait until done(view) holds on every node; on_reply sees each node's new view (with
        its arrival time) as it comes. Raises ClusterError after deadline_s, or when a node's
        stream fails, in one line naming the nodes that are not there."""
        deadline = time.monotonic() + deadline_s
        seen: dict[str, float] = {}
        while True:
            self._event.clear()
            for n in self.nodes:
                m = n.member
                if m in self.failed:
                    raise ClusterError(f"waiting for every node {what}: {self.failed[m]}")
                if on_reply is not None and m in self.latest and seen.get(m) != self.arrived[m]:
                    seen[m] = self.arrived[m]
                    on_reply(m, self.latest[m], self.arrived[m])
            if all(m.member in self.latest and done(self.latest[m.member]) for m in self.nodes):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                desc = describe or describe_view
                late = ", ".join(
                    f"{n.member} {desc(self.latest[n.member])}"
                    if n.member in self.latest
                    else f"{n.member} has sent no view"
                    for n in self.nodes
                    if n.member not in self.latest or not done(self.latest[n.member])
                )
                raise ClusterError(f"not every node {what} within {deadline_s:g} s: {late}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)


def state_of(r: ViewReply) -> str:
    """The view's state by name: PAUSED, NOT_PAUSED or UNKNOWN."""
    return pause_state_from_pb(r.state)


def describe_view(r: ViewReply) -> str:
    """'says PAUSED (epoch 1, 4/4 members fresh)': why a node is not there yet."""
    fresh = sum(1 for m in r.members if m.fresh)
    return f"says {state_of(r)} (epoch {r.epoch}, {fresh}/{len(r.members)} members fresh)"
