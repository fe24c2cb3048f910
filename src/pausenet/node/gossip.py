"""Push-pull anti-entropy in the Scuttlebutt style, written against a small transport interface.

A round: the initiator picks `fanout` random peers (not backing off) and, with each, in parallel:

1. sends its 32-byte summary hash (`get_digest`); a peer that holds the same facts answers
   `in_sync` and the round ends there — an idle federation costs a few hundred bytes a round;
2. otherwise the peer answers with its digest (per-member heads and heartbeat counters); the
   initiator sends its own digest plus exactly what the peer lacks (`exchange`), and the peer
   replies with exactly what the initiator lacks. Replies are bounded in bytes and items; `more`
   says the rest waits for the next round.

Every call has a deadline; a failing peer backs off exponentially (with jitter) so one slow, dead
or hostile peer never stalls a round or the node. The same engine runs over gRPC
(`pausenet.node.rpc`) and over the in-memory network (`pausenet.testing.memnet`).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from pausenet.errors import PausenetError, PeerError
from pausenet.node.limits import PENALTIES
from pausenet.node.messages import Digest, Items
from pausenet.node.replica import IngestReport, Replica, items_size

__all__ = [
    "DigestReply",
    "ExchangeReply",
    "GossipConfig",
    "GossipEngine",
    "GossipService",
    "PeerClient",
    "PeerError",
    "RoundStats",
    "Transport",
]

log = logging.getLogger("pausenet.gossip")


@dataclass(frozen=True)
class GossipConfig:
    interval_s: float = 1.0
    jitter: float = 0.2  # each sleep is interval × (1 ± jitter)
    fanout: int = 3
    call_timeout_s: float = 3.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    exchanges_per_round: int = 4  # follow-up exchanges with one peer while it says `more`

    @classmethod
    def local(cls) -> GossipConfig:
        """For clusters on one machine: fast rounds."""
        return cls(interval_s=0.25, call_timeout_s=2.0, backoff_base_s=0.5, backoff_max_s=10.0)


@dataclass(frozen=True)
class DigestReply:
    in_sync: bool
    digest: Digest | None


@dataclass(frozen=True)
class ExchangeReply:
    items: Items
    more: bool


class PeerClient(Protocol):
    async def get_digest(self, summary_hash: bytes, *, timeout: float) -> DigestReply: ...

    async def exchange(self, digest: Digest, items: Items, *, timeout: float) -> ExchangeReply: ...


class Transport(Protocol):
    def peer(self, address: str) -> PeerClient: ...

    async def close(self) -> None: ...


class GossipService:
    """The receiving side of a round: answers a peer from the replica and ingests what it sent."""

    def __init__(self, replica: Replica, on_change: Callable[[], None] | None = None) -> None:
        self.replica = replica
        self.on_change = on_change

    def get_digest(self, summary_hash: bytes) -> DigestReply:
        if summary_hash == self.replica.summary_hash():
            return DigestReply(True, None)
        return DigestReply(False, self.replica.digest())

    async def exchange(self, digest: Digest, items: Items) -> ExchangeReply:
        return (await self.exchange_with_report(digest, items))[0]

    async def exchange_with_report(
        self, digest: Digest, items: Items
    ) -> tuple[ExchangeReply, IngestReport]:
        """Ingest what the peer sent, answer with what it lacks; the report scores the peer."""
        report = await self.replica.ingest(items)
        if report.changed and self.on_change is not None:
            self.on_change()
        reply, more = self.replica.missing_for(digest)
        return ExchangeReply(reply, more), report


@dataclass
class RoundStats:
    contacted: int = 0
    in_sync: int = 0
    exchanges: int = 0
    failures: int = 0
    items_sent: int = 0
    items_received: int = 0
    bytes_sent: int = 0  # envelope bytes (payloads, signatures, framing), as budgeted
    bytes_received: int = 0
    reports: list[IngestReport] = field(default_factory=list)


@dataclass
class _PeerHealth:
    failures: int = 0
    retry_at: float = 0.0


class GossipEngine:
    """Runs rounds against peers: bootstrap addresses plus those learned from signed heartbeats."""

    def __init__(
        self,
        replica: Replica,
        transport: Transport,
        *,
        self_address: str,
        bootstrap: tuple[str, ...] = (),
        config: GossipConfig | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] | None = None,
        on_change: Callable[[], None] | None = None,
        on_contact: Callable[[], None] | None = None,
        on_local_error: Callable[[PausenetError], None] | None = None,
    ) -> None:
        self.on_contact = on_contact  # called after each successful exchange with a peer
        self.on_local_error = on_local_error  # called when our own store fails in a round
        self.replica = replica
        self.transport = transport
        self.self_address = self_address
        self.bootstrap = tuple(a for a in bootstrap if a != self_address)
        self.config = config or GossipConfig()
        self.rng = rng or random.Random()
        self.monotonic = monotonic or anyio.current_time
        self.on_change = on_change
        self._health: dict[str, _PeerHealth] = {}
        self.rounds = 0
        self.counters: Counter[str] = Counter()  # totals since start, for the operator

    def peers(self) -> list[str]:
        learned = set(self.replica.addresses().values())
        return sorted((set(self.bootstrap) | learned) - {self.self_address, ""})

    def _eligible(self) -> list[str]:
        now = self.monotonic()
        return [p for p in self.peers() if self._health.get(p, _PeerHealth()).retry_at <= now]

    async def run_round(self) -> RoundStats:
        """One round that waits for every chosen peer (simulations and tests use this)."""
        stats = RoundStats()
        chosen = self._choose(set())
        self.rounds += 1
        self.counters["gossip.rounds"] += 1
        async with anyio.create_task_group() as tg:
            for p in chosen:
                tg.start_soon(self._with_peer, p, stats)
        return stats

    def _choose(self, busy: set[str]) -> list[str]:
        candidates = [p for p in self._eligible() if p not in busy]
        return self.rng.sample(candidates, min(self.config.fanout, len(candidates)))

    async def _with_peer(self, address: str, stats: RoundStats) -> None:
        mine = RoundStats()  # this exchange's own figures, added to the round's and the totals
        mine.contacted += 1
        try:
            await self._sync_with(address, mine)
        except PeerError as exc:
            mine.failures += 1
            self._failed(address, str(exc))
        except PausenetError as exc:  # our own store failed while ingesting: log, back off
            mine.failures += 1
            log.error("gossip with %s failed here: %s", address, exc)
            self._failed(address, f"local error: {exc}")
            if self.on_local_error is not None:
                self.on_local_error(exc)
        else:
            self._health.pop(address, None)
            if self.on_contact is not None:
                self.on_contact()
        finally:
            self._count(mine, stats)

    def _count(self, mine: RoundStats, stats: RoundStats) -> None:
        c = self.counters
        for name in (
            "contacted",
            "in_sync",
            "exchanges",
            "failures",
            "items_sent",
            "items_received",
            "bytes_sent",
            "bytes_received",
        ):
            n = getattr(mine, name)
            setattr(stats, name, getattr(stats, name) + n)
            c[f"gossip.{name}"] += n
        stats.reports.extend(mine.reports)
        for r in mine.reports:
            for reason, n in r.rejected.items():
                c[f"rejected.{reason}"] += n

    async def _sync_with(self, address: str, stats: RoundStats) -> None:
        peer = self.transport.peer(address)
        t = self.config.call_timeout_s
        reply = await peer.get_digest(self.replica.summary_hash(), timeout=t)
        if reply.in_sync or reply.digest is None:
            stats.in_sync += 1
            return
        for _ in range(self.config.exchanges_per_round):
            if reply.in_sync or reply.digest is None:
                return
            items, more_to_send = self.replica.missing_for(reply.digest)
            ex = await peer.exchange(self.replica.digest(), items, timeout=t)
            stats.exchanges += 1
            stats.items_sent += len(items)
            stats.items_received += len(ex.items)
            stats.bytes_sent += items_size(items)
            stats.bytes_received += items_size(ex.items)
            if ex.items:
                report = await self.replica.ingest(ex.items)
                stats.reports.append(report)
                if report.changed and self.on_change is not None:
                    self.on_change()
                if report.rejected:
                    log.debug("peer %s sent rejected items: %s", address, dict(report.rejected))
                    if any(PENALTIES.get(r, 5) >= 5 for r in report.rejected):
                        # an honest node verifies before it relays: back off from this one
                        raise PeerError(f"sent invalid items: {dict(report.rejected)}")
            if not (ex.more or more_to_send):
                return
            reply = await peer.get_digest(self.replica.summary_hash(), timeout=t)

    def _failed(self, address: str, why: str) -> None:
        h = self._health.setdefault(address, _PeerHealth())
        h.failures += 1
        delay = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (h.failures - 1))
        delay *= 0.5 + self.rng.random()  # jitter: 0.5x .. 1.5x
        h.retry_at = self.monotonic() + delay
        level = logging.INFO if h.failures in (1, 5) or h.failures % 50 == 0 else logging.DEBUG
        log.log(
            level,
            "peer %s failed (%s); %d in a row, retry in %.1fs",
            address,
            why,
            h.failures,
            delay,
        )

    def backoff(self, address: str) -> float:
        """Seconds until a backing-off peer is tried again (0 if it is not backing off)."""
        h = self._health.get(address)
        return max(0.0, h.retry_at - self.monotonic()) if h else 0.0

    async def run(self) -> None:
        """Rounds, one every interval ± jitter, until cancelled.

        A round does not wait for slow peers: each exchange runs on its own (in this call's
        task group, so none outlives it), and a peer still busy from an earlier round is not
        chosen again until it finishes (or its call times out), so one slow or silent peer
        never holds up news from the others.
        """
        busy: set[str] = set()
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    self.rounds += 1
                    self.counters["gossip.rounds"] += 1
                    for p in self._choose(busy):
                        busy.add(p)
                        tg.start_soon(self._in_background, p, busy)
                except Exception:  # a bug in one round must not end gossip; log it loudly
                    log.exception("gossip round failed")
                c = self.config
                await anyio.sleep(c.interval_s * (1 + c.jitter * (2 * self.rng.random() - 1)))

    async def _in_background(self, peer: str, busy: set[str]) -> None:
        try:
            await self._with_peer(peer, RoundStats())
        except Exception:  # a bug in one exchange must not end gossip either
            log.exception("gossip with %s failed", peer)
        finally:
            busy.discard(peer)
