"""Bounds on what one client, and all clients together, may hold open on the public API.

A client is one connection, as gRPC names its peer ('ipv4:1.2.3.4:5678'): overseers sharing an
address (a NAT, one host running many tools) are not refused for a neighbour's calls, and a
client that opens many connections meets the totals. Refusals are RESOURCE_EXHAUSTED with a
one-line reason; nothing waits without bound.

A call costs the node about the same CPU whether it is answered from the cache or refused, so
refusing alone cannot protect honest callers from a client that sends as fast as it can. Its
calls are paced instead (`Pacer`): beyond its rate a client's calls wait their turn, holding
their HTTP/2 streams, and a connection has only so many streams, so the client itself slows
down at no cost to the node.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import anyio

__all__ = ["CallSlots", "Pacer", "ReadGate", "Refused", "ServerLimits", "Slots"]


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on the public server (per client = per connection)."""

    streams_per_connection: int = 64  # HTTP/2 concurrent streams; a client queues the rest
    watch_streams_per_client: int = 4
    watch_streams_total: int = 256
    # in flight, from arrival until the reply is sent: as many as a connection has streams, so
    # that a client's paced calls wait in its streams instead of being refused over and over
    oversight_calls_per_client: int = 64
    oversight_calls_total: int = 512
    oversight_calls_running: int = 16
    oversight_rate_per_client: float = 50.0  # calls per second; more wait their turn
    oversight_burst_per_client: float = 100.0
    oversight_max_wait_s: float = 5.0  # a call that would wait longer is refused
    exchanges_per_member: int = 2  # Exchange bodies read at once: bounds the bytes in flight
    exchanges_total: int = 8  # (times max_message_bytes)
    # Every other request on the public port is small (an id, a nonce, a hash), but gRPC would
    # read one of max_message_bytes: they are read a few at a time per service, each within a
    # deadline, and refused unparsed over `small_request_bytes`.
    request_reads_total: int = 4
    request_read_wait_s: float = 5.0
    # generous: on a loaded node an honest request's bytes can take seconds to be handed over;
    # a read cut short cancels the call
    request_read_timeout_s: float = 10.0
    small_request_bytes: int = 64 * 1024


class Refused(Exception):
    """A call over a bound; the message is the one-line reason given to the client."""


class Slots:
    """Things held open (streams, exchanges being read): at most `per_client` for one client
    and `total` in all; `what` names them in the reasons ("watch streams")."""

    def __init__(self, what: str, per_client: int, total: int) -> None:
        self.what = what
        self.per_client = per_client
        self.total = total
        self._open: Counter[str] = Counter()
        self._count = 0

    @property
    def open(self) -> int:
        return self._count

    def take(self, client: str) -> None:
        """Count one more for `client`, or raise Refused."""
        if self._open[client] >= self.per_client:
            raise Refused(f"too many {self.what} from this client ({self.per_client} open)")
        if self._count >= self.total:
            raise Refused(f"this node holds at most {self.total} {self.what}; try again later")
        self._open[client] += 1
        self._count += 1

    def give(self, client: str) -> None:
        self._count -= 1
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    @contextmanager
    def held(self, client: str) -> Iterator[None]:
        self.take(client)
        try:
            yield
        finally:
            self.give(client)


class CallSlots:
    """Calls: at most `per_client` in flight for one client and `total` in all, counted from
    admission until the call ends (its reply sent or the call cancelled), so a client that reads
    its replies slowly holds its slots meanwhile; at most `running` handlers at once, the others
    wait their turn (they are in flight, so the wait is bounded too)."""

    def __init__(self, what: str, per_client: int, total: int, running: int) -> None:
        self.what = what
        self.per_client = per_client
        self.total = total
        self._limiter = anyio.CapacityLimiter(running)
        self._clients: Counter[str] = Counter()
        self._count = 0

    @property
    def in_flight(self) -> int:
        return self._count

    def admit(self, client: str) -> Callable[[], None]:
        """Count a call of `client` in flight and return the function that ends it (call it
        exactly once, when the call ends); raises Refused if over a bound."""
        if self._clients[client] >= self.per_client:
            raise Refused(
                f"too many {self.what} calls in flight from this client (at most"
                f" {self.per_client}); wait for replies before sending more"
            )
        if self._count >= self.total:
            raise Refused(f"this node is busy with {self.what} calls; try again shortly")
        self._clients[client] += 1
        self._count += 1
        ended = False

        def end() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            self._count -= 1
            self._clients[client] -= 1
            if self._clients[client] <= 0:
                del self._clients[client]

        return end

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """A turn to run a handler's work."""
        async with self._limiter:
            yield


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class Pacer:
    """A token bucket per client that reserves a turn for each call: no wait within the rate,
    the time until the call's turn beyond it, and a refusal when that is over `max_wait_s`.
    Buckets are kept for at most `max_clients` clients, least recently used dropped first (a
    dropped client starts again with a full burst, which costs the node one burst)."""

    def __init__(
        self, what: str, rate: float, burst: float, max_wait_s: float, max_clients: int = 4096
    ) -> None:
        self.what = what
        self.rate = rate
        self.burst = burst
        self.max_wait_s = max_wait_s
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def reserve(self, client: str, now_s: float) -> float:
        """Seconds this call must wait for its turn; raises Refused if that is too long."""
        b = self._buckets.get(client)
        if b is None:
            b = self._buckets[client] = _Bucket(self.burst, now_s)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(client)
            b.tokens = min(self.burst, b.tokens + (now_s - b.stamp) * self.rate)
            b.stamp = now_s
        wait = (1.0 - b.tokens) / self.rate if b.tokens < 1.0 else 0.0
        if wait > self.max_wait_s:
            raise Refused(
                f"rate limit for {self.what} calls: {self.rate:g} per second per client; slow down"
            )
        b.tokens -= 1.0
        return wait


class ReadGate:
    """Request bodies being read: at most `total` at once, in turn (a request waits at most
    `max_wait_s` for its turn, then is refused), each read within `read_timeout_s`.

    gRPC receives a request's bytes only while a handler reads it (the server does not probe
    bandwidth, so an unread stream holds at most its 64 KiB window): the bytes a server holds
    for requests of any size stay `total` messages, however many calls are open. A small
    request is in the window when its turn comes, so it is read at once."""

    def __init__(self, what: str, total: int, max_wait_s: float, read_timeout_s: float) -> None:
        self.what = what
        self.max_wait_s = max_wait_s
        self.read_timeout_s = read_timeout_s
        self._turns = anyio.Semaphore(total)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A turn to read one request; raises Refused if none comes within `max_wait_s`."""
        got = False
        with anyio.move_on_after(self.max_wait_s):
            await self._turns.acquire()
            got = True
        if not got:
            raise Refused(f"this node is busy reading {self.what} requests; try again shortly")
        try:
            yield
        finally:
            self._turns.release()
