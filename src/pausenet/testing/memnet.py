"""An in-memory network for the gossip engine: many nodes in one process, with faults on demand.

Used by tests and by `bench/propagation.py` to run the real `GossipEngine` and `GossipService`
for a thousand simulated nodes. Every request and every reply is one message; each can be lost
with probability `loss`; links can be cut and nodes taken down. Counters record messages and an
estimate of their bytes (the protobuf size of what would cross the wire).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from pausenet.errors import CodecError
from pausenet.node.gossip import DigestReply, ExchangeReply, GossipService, PeerError
from pausenet.node.messages import Digest, Items
from pausenet.node.replica import IngestReport, Replica, envelope_size

__all__ = ["MemoryNetwork", "MemoryTransport", "NetStats", "RoundSyncReplica"]

_DIGEST_REQUEST_BYTES = 40  # 32-byte hash plus framing
_HEAD_BYTES = 60  # member id, seq, hash, counter, framing
_CHILD_BYTES = 34  # one child hash and its framing


@dataclass
class NetStats:
    messages: int = 0
    bytes: int = 0
    lost: int = 0


class MemoryNetwork:
    def __init__(self, *, loss: float = 0.0, rng: random.Random | None = None) -> None:
        if not 0.0 <= loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        self.loss = loss
        self.rng = rng or random.Random()
        self.stats = NetStats()
        self._services: dict[str, GossipService] = {}
        self._down: set[str] = set()
        self._cut: set[frozenset[str]] = set()

    def register(self, address: str, service: GossipService) -> None:
        self._services[address] = service

    def transport(self, from_address: str) -> MemoryTransport:
        return MemoryTransport(self, from_address)

    def set_down(self, address: str, down: bool = True) -> None:
        (self._down.add if down else self._down.discard)(address)

    def cut(self, a: str, b: str) -> None:
        self._cut.add(frozenset((a, b)))

    def heal(self) -> None:
        self._cut.clear()
        self._down.clear()

    def _send(self, src: str, dst: str, size: int) -> None:
        """One message from src to dst; raises PeerError when it does not arrive."""
        if dst in self._down or src in self._down or frozenset((src, dst)) in self._cut:
            raise PeerError(f"{dst} unreachable")
        self.stats.messages += 1
        self.stats.bytes += size
        if self.loss and self.rng.random() < self.loss:
            self.stats.lost += 1
            raise PeerError("message lost")

    def _service(self, address: str) -> GossipService:
        svc = self._services.get(address)
        if svc is None:
            raise PeerError(f"no node at {address}")
        return svc


class MemoryTransport:
    def __init__(self, net: MemoryNetwork, src: str) -> None:
        self.net = net
        self.src = src

    def peer(self, address: str) -> _MemoryPeer:
        return _MemoryPeer(self.net, self.src, address)

    async def close(self) -> None:
        return None


class _MemoryPeer:
    def __init__(self, net: MemoryNetwork, src: str, dst: str) -> None:
        self.net, self.src, self.dst = net, src, dst

    async def get_digest(
        self, summary_hash: bytes, *, timeout: float, level: int = 0, nodes: Sequence[int] = ()
    ) -> DigestReply:
        self.net._send(self.src, self.dst, _DIGEST_REQUEST_BYTES + 4 * len(nodes))
        svc = self.net._service(self.dst)
        try:
            reply = (
                svc.expand(summary_hash, level, nodes) if nodes else svc.get_digest(summary_hash)
            )
        except CodecError as exc:
            raise PeerError(f"refused: {exc}") from exc
        self.net._send(
            self.dst, self.src, _digest_bytes(reply.digest) + _CHILD_BYTES * len(reply.children) + 4
        )
        return reply

    async def exchange(self, digest: Digest, items: Items, *, timeout: float) -> ExchangeReply:
        self.net._send(self.src, self.dst, _digest_bytes(digest) + _items_bytes(items))
        reply = await self.net._service(self.dst).exchange(digest, items)
        self.net._send(self.dst, self.src, _items_bytes(reply.items) + 4)
        return reply


def _digest_bytes(d: Digest | None) -> int:
    if d is None:
        return 0
    return _HEAD_BYTES * len(d.heads) + 34 * len(d.evidence_ids) + 2


def _items_bytes(items: Items) -> int:
    n = sum(envelope_size(e) for e in items.statements + items.heartbeats)
    return n + sum(envelope_size(a) + envelope_size(b) for a, b in items.evidence)


class RoundSyncReplica(Replica):
    """A replica whose ingest takes effect only at `flush()`: synchronous-round semantics.

    In one process every exchange of a round would otherwise see what earlier exchanges of the
    same round delivered, so news could cross many hops in one round. Deferring ingest to the
    end of the round makes each round use the states it started with, as in the textbook
    round model that gossip bounds are stated in.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pending: list[Items] = []

    async def ingest(self, items: Items) -> IngestReport:
        self._pending.append(items)
        return IngestReport()

    async def flush(self) -> IngestReport:
        total = IngestReport()
        pending, self._pending = self._pending, []
        for items in pending:
            r = await super().ingest(items)
            total.statements += r.statements
            total.heartbeats += r.heartbeats
            total.evidence += r.evidence
            total.duplicates += r.duplicates
            total.rejected.update(r.rejected)
        return total
