"""Anti-entropy in the Scuttlebutt style plus pushed news, written against a small transport.

News first: whatever a node first holds (its own statements and heartbeats, new items from a
peer) it pushes at once to a few random peers (`push_fanout`), in one `exchange` with an empty
partial digest; each peer passes on what was new to it. A batch of more than `push_max_items`
(a catch-up) is not pushed: anti-entropy carries bulk.

Anti-entropy then repairs whatever pushes missed. A round: the initiator picks `fanout` random
peers (not backing off) and, with each, in parallel:

1. sends its 32-byte summary hash, the root of its digest tree (`get_digest`); a peer that holds
   the same facts answers `in_sync` and the contact ends there;
2. otherwise it descends the peer's tree where the hashes differ (16 child hashes a level) to the
   leaves, whose members' heads the peer sends; the initiator sends its own heads for the members
   that differ plus exactly what the peer lacks of them (`exchange`), and the peer replies with
   exactly what the initiator lacks. Replies are bounded in bytes and items; `more` says the rest
   waits. A member being fetched from one peer is not asked of another at the same time.

While rounds find nothing to do, the interval between them doubles up to `idle_interval_max_s`;
a round that moves items resets it. Every call has a deadline; a failing peer backs off
exponentially (with jitter) so one slow, dead or hostile peer never stalls a round or the node.
The same engine runs over gRPC (`pausenet.node.rpc`) and over the in-memory network
(`pausenet.testing.memnet`). docs/protocol.md §12 specifies the messages.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import anyio

from pausenet.core.dsse import Envelope
from pausenet.errors import CodecError, PausenetError, PeerError
from pausenet.node.limits import PENALTIES
from pausenet.node.messages import ARITY, MAX_EXPAND, Digest, Items, check_expand
from pausenet.node.replica import IngestReport, Replica, envelope_size, items_size

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

_T = TypeVar("_T")

_NOTHING = Digest((), partial=True)
_SPLIT_BACKLOG = 256  # statements to pull above which a contact takes only its share of members  # the digest of a push: asks the receiver for nothing


@dataclass(frozen=True)
class GossipConfig:
    interval_s: float = 1.0
    jitter: float = 0.2  # each sleep is interval × (1 ± jitter)
    fanout: int = 3
    call_timeout_s: float = 3.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    exchanges_per_round: int = 4  # follow-up exchanges with one peer while it says `more`
    # While rounds find nothing to do the interval doubles up to this; it bounds how late a
    # node learns what every push missed (docs/protocol.md §12.2). A node takes the least of
    # this and its charter's heartbeat TTL / 15.
    idle_interval_max_s: float = 8.0
    push_fanout: int = 3  # peers each piece of news is pushed to as it arrives
    # With at most this many peers a node pushes its own news to every one and passes on no
    # one else's: on a small federation that reaches everyone once, with no duplicates.
    push_all_max: int = 16
    push_max_items: int = 32  # a larger batch of news (a catch-up) is left to anti-entropy
    push_every_s: float = 0.05  # pushes at most this often: news arriving meanwhile is merged

    @classmethod
    def local(cls) -> GossipConfig:
        """For clusters on one machine: fast rounds."""
        return cls(
            interval_s=0.25,
            call_timeout_s=2.0,
            backoff_base_s=0.5,
            backoff_max_s=10.0,
            idle_interval_max_s=4.0,
        )


@dataclass(frozen=True)
class DigestReply:
    in_sync: bool
    digest: Digest | None  # the heads of the members in the expanded leaves
    children: tuple[bytes, ...] = ()  # ARITY child hashes per expanded inner node


@dataclass(frozen=True)
class ExchangeReply:
    items: Items
    more: bool


class PeerClient(Protocol):
    async def get_digest(
        self, summary_hash: bytes, *, timeout: float, level: int = 0, nodes: Sequence[int] = ()
    ) -> DigestReply: ...

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
        """The first call of a contact: in sync, or the root expanded."""
        return self.expand(summary_hash, 0, ())

    def expand(self, summary_hash: bytes, level: int, nodes: Sequence[int]) -> DigestReply:
        """Expand nodes of our digest tree; CodecError for a request no honest peer makes."""
        problem = check_expand(self.replica.tree_depth, level, nodes)
        if problem is not None:
            raise CodecError("oversize" if "limit" in problem else "malformed", problem)
        if summary_hash == self.replica.summary_hash():
            return DigestReply(True, None)
        children, digest = self.replica.subtree(level, nodes or (0,))
        return DigestReply(False, digest, tuple(children))

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
    pushes: int = 0
    failures: int = 0
    items_sent: int = 0
    items_received: int = 0
    bytes_sent: int = 0  # envelope bytes (payloads, signatures, framing), as budgeted
    bytes_received: int = 0
    push_bytes: int = 0  # of bytes_sent, those pushed as news
    reports: list[IngestReport] = field(default_factory=list)


_COUNTED = (
    "contacted",
    "in_sync",
    "exchanges",
    "pushes",
    "failures",
    "items_sent",
    "items_received",
    "bytes_sent",
    "bytes_received",
    "push_bytes",
)


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
        self.interval_s = self.config.interval_s  # now; grows while rounds find nothing to do
        self._fetching: set[str] = set()  # members being fetched from some peer right now
        self._fetched: anyio.Event | None = None  # set when a fetch ends; made on demand
        self._news: list[Items] = []  # to push, oldest first
        self._own_news: list[Items] = []  # signed by this node's member
        self._news_arrived: anyio.Event | None = None  # set by announce; run() waits on it
        replica.on_news = self.announce

    def announce(self, items: Items) -> None:
        """News to push: called by the replica with what it first held."""
        if not 0 < len(items) <= self.config.push_max_items:
            return
        own = self.replica.own

        def mine(e: Envelope) -> bool:
            return own is not None and e.signatures[0].keyid == own

        if any(mine(e) for e in items.statements + items.heartbeats):
            self._own_news.append(
                Items(
                    tuple(e for e in items.statements if mine(e)),
                    tuple(e for e in items.heartbeats if mine(e)),
                )
            )
            items = Items(
                tuple(e for e in items.statements if not mine(e)),
                tuple(e for e in items.heartbeats if not mine(e)),
                items.evidence,
            )
        if items:
            self._news.append(items)
        if self._news_arrived is not None:
            self._news_arrived.set()

    def peers(self) -> list[str]:
        learned = set(self.replica.addresses().values())
        return sorted((set(self.bootstrap) | learned) - {self.self_address, ""})

    def _eligible(self) -> list[str]:
        now = self.monotonic()
        return [p for p in self.peers() if self._health.get(p, _PeerHealth()).retry_at <= now]

    async def run_round(self) -> RoundStats:
        """One round that waits for every chosen peer (simulations and tests use this): push
        the news held since the last round, then anti-entropy."""
        stats = RoundStats()
        async with anyio.create_task_group() as tg:
            for address, items in self._take_news():
                tg.start_soon(self._push, address, items, stats)
        chosen = self._choose(set(), self.config.fanout)
        self.rounds += 1
        self.counters["gossip.rounds"] += 1
        async with anyio.create_task_group() as tg:
            for p in chosen:
                tg.start_soon(self._with_peer, p, stats)
        return stats

    def _choose(self, busy: set[str], n: int) -> list[str]:
        candidates = [p for p in self._eligible() if p not in busy]
        return self.rng.sample(candidates, min(n, len(candidates)))

    def _take_news(self) -> list[tuple[str, Items]]:
        """The pushes to make now: all news held, merged into one message, to push_fanout
        random peers; or, with few peers, own news and evidence to every peer."""
        news, self._news = self._news, []
        own, self._own_news = self._own_news, []
        if len(self.peers()) <= self.config.push_all_max:
            # evidence is passed on all the same: rare, and every node must count it
            merged = self._merge(own + [Items(evidence=n.evidence) for n in news])
            return [(p, merged) for p in self._eligible()] if merged else []
        merged = self._merge(own + news)
        return [(p, merged) for p in self._choose(set(), self.config.push_fanout)] if merged else []

    def _merge(self, news: list[Items]) -> Items:
        # one message, within the push bound and the charter's (what does not fit is left to
        # anti-entropy); evidence first, then statements, then heartbeats, as in §12.2
        lim = self.replica.charter.limits
        room = min(self.config.push_max_items, lim.max_items_per_message)
        budget = lim.max_message_bytes * 9 // 10

        def fit(xs: list[_T], size: Callable[[_T], int]) -> tuple[_T, ...]:
            nonlocal room, budget
            out = []
            for x in xs:
                if room <= 0 or size(x) > budget:
                    break
                out.append(x)
                room -= 1
                budget -= size(x)
            return tuple(out)

        evidence = fit(
            [p for n in news for p in n.evidence],
            lambda p: envelope_size(p[0]) + envelope_size(p[1]),
        )
        statements = fit([e for n in news for e in n.statements], envelope_size)
        heartbeats = fit([e for n in news for e in n.heartbeats], envelope_size)
        return Items(statements, heartbeats, evidence)

    async def _push(self, address: str, items: Items, stats: RoundStats) -> None:
        mine = RoundStats(contacted=1, exchanges=1, pushes=1)
        try:
            ex = await self.transport.peer(address).exchange(
                _NOTHING, items, timeout=self.config.call_timeout_s
            )
            mine.items_sent += len(items)
            mine.bytes_sent += items_size(items)
            mine.push_bytes += items_size(items)
            if ex.items:  # asked for nothing: an honest peer sends nothing back
                raise PeerError(f"answered a push with {len(ex.items)} items")
        except PeerError as exc:
            mine.failures += 1
            self._failed(address, str(exc))
        else:
            self._health.pop(address, None)
        finally:
            self._count(mine, stats)

    async def _with_peer(self, address: str, stats: RoundStats) -> None:
        mine = RoundStats()  # this exchange's own figures, added to the round's and the totals
        mine.contacted += 1
        try:
            settled = await self._sync_with(address, mine)
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
            if settled and self.on_contact is not None:
                self.on_contact()
        finally:
            if mine.items_sent or mine.items_received:
                self.interval_s = self.config.interval_s  # there was work: rounds go fast again
            self._count(mine, stats)

    def _count(self, mine: RoundStats, stats: RoundStats) -> None:
        c = self.counters
        for name in _COUNTED:
            n = getattr(mine, name)
            setattr(stats, name, getattr(stats, name) + n)
            c[f"gossip.{name}"] += n
        stats.reports.extend(mine.reports)
        for r in mine.reports:
            for reason, n in r.rejected.items():
                c[f"rejected.{reason}"] += n

    async def _descend(self, peer: PeerClient) -> Digest | bool:
        """Walk the peer's digest tree down to the leaves where it differs from ours: their
        members' heads; or True when in sync, False when no longer apart (one of us changed
        meanwhile: the next round looks again)."""
        t = self.config.call_timeout_s
        depth = self.replica.tree_depth
        level, nodes = 0, [0]
        reply = await peer.get_digest(self.replica.summary_hash(), timeout=t)
        while not reply.in_sync:
            if reply.digest is not None:
                # members we do not know (the peer may hold a charter version that adds some,
                # §15) are left out; members of ours outside the leaves asked for are a lie
                leaves = set(nodes)
                known = [h for h in reply.digest.heads if self.replica.is_member(h.member)]
                if level != depth or any(
                    self.replica.leaf_of(h.member) not in leaves for h in known
                ):
                    raise PeerError("digest reply lists members outside the leaves asked for")
                return Digest(tuple(known), partial=True)
            got = reply.children
            if level >= depth or len(got) != ARITY * len(nodes) or any(len(h) != 32 for h in got):
                raise PeerError(f"digest reply has {len(got)} child hashes for {len(nodes)} nodes")
            nodes = self.replica.differing(level, nodes, got)[:MAX_EXPAND]
            level += 1
            if not nodes:
                return False
            reply = await peer.get_digest(
                self.replica.summary_hash(), timeout=t, level=level, nodes=nodes
            )
        return True

    async def _sync_with(self, address: str, stats: RoundStats) -> bool:
        """Anti-entropy with one peer. True when what the peer holds of this node's own member
        is known to be held here too (the node may then sign: docs/protocol.md §12.4)."""
        peer = self.transport.peer(address)
        t = self.config.call_timeout_s
        own = self.replica.own
        settled = own is None
        for attempt in range(self.config.exchanges_per_round):
            theirs = await self._descend(peer)
            if theirs is True:
                stats.in_sync += attempt == 0
                return True
            if theirs is False:
                return settled
            # the members that differ, less those another exchange is fetching right now
            behind: dict[str, int] = {}  # member -> statements the peer holds beyond ours
            for h in theirs.heads:
                if self.replica.is_member(h.member):
                    mine = self.replica.member_head(h.member)
                    if h.entry() != mine.entry():
                        behind[h.member] = max(0, h.head_seq - mine.head_seq)
            if own is not None and own not in behind and own in theirs.members():
                settled = True  # the peer holds what we hold of our own member
            free = sorted(set(behind) - self._fetching)
            ask = free
            if sum(behind[m] for m in free) > _SPLIT_BACKLOG:
                # A backlog: several contacts run at once (fanout), and each takes its share of
                # the members, so it comes from several peers in parallel, each part once.
                ask = free[: -(-len(free) // max(1, self.config.fanout))]
            if not ask:
                # Another exchange is fetching them: wait for it (at most a call's deadline, so
                # a slow peer cannot hold them), then look again at what still differs.
                if self._fetched is None:
                    self._fetched = anyio.Event()
                with anyio.move_on_after(t):
                    await self._fetched.wait()
                continue
            self._fetching.update(ask)
            try:
                scope = Digest(tuple(h for h in theirs.heads if h.member in ask), partial=True)
                items, more_to_send = self.replica.missing_for(scope)
                ex = await peer.exchange(self.replica.partial_digest(ask), items, timeout=t)
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
            finally:
                self._fetching.difference_update(ask)
                if self._fetched is not None:
                    self._fetched.set()
                    self._fetched = None
            if own is not None and own in ask and not ex.more:
                settled = True
            if not (ex.more or more_to_send or len(free) > len(ask)):
                return settled
        return settled

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
        """Rounds, one every interval ± jitter, and pushes as news arrives, until cancelled.

        A round does not wait for slow peers: each exchange runs on its own (in this call's
        task group, so none outlives it), and a peer still busy from an earlier round is not
        chosen again until it finishes (or its call times out), so one slow or silent peer
        never holds up news from the others. A round that finds nothing to do doubles the
        interval to the next (up to `idle_interval_max_s`); one that moves items resets it.
        """
        busy: set[str] = set()
        c = self.config
        idle_max = max(c.interval_s, c.idle_interval_max_s)
        async with anyio.create_task_group() as tg:
            while True:
                try:
                    self.rounds += 1
                    self.counters["gossip.rounds"] += 1
                    for p in self._choose(busy, c.fanout):
                        busy.add(p)
                        tg.start_soon(self._in_background, p, busy)
                except Exception:  # a bug in one round must not end gossip; log it loudly
                    log.exception("gossip round failed")
                wait = self.interval_s * (1 + c.jitter * (2 * self.rng.random() - 1))
                self.interval_s = min(idle_max, self.interval_s * 2)  # reset by work found
                due = anyio.current_time() + wait
                while (left := due - anyio.current_time()) > 0:
                    self._news_arrived = arrived = anyio.Event()
                    if not (self._news or self._own_news):
                        with anyio.move_on_after(left):
                            await arrived.wait()
                    pushes = self._take_news()
                    for address, items in pushes:
                        tg.start_soon(self._push_in_background, address, items)
                    if pushes:
                        # news arriving in a burst (many members' heartbeats) goes out in
                        # batches, at most one every push_every_s
                        await anyio.sleep(min(c.push_every_s, max(0.0, due - anyio.current_time())))

    async def _push_in_background(self, address: str, items: Items) -> None:
        try:
            await self._push(address, items, RoundStats())
        except Exception:
            log.exception("push to %s failed", address)

    async def _in_background(self, peer: str, busy: set[str]) -> None:
        try:
            await self._with_peer(peer, RoundStats())
        except Exception:  # a bug in one exchange must not end gossip either
            log.exception("gossip with %s failed", peer)
        finally:
            busy.discard(peer)
