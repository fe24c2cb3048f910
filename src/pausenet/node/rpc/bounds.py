"""Bounds on what one client, and all clients together, may hold open on the public API.

A client is one connection, as gRPC names its peer ('ipv4:1.2.3.4:5678'): overseers sharing an
address (a NAT, one host running many tools) are not refused for a neighbour's calls, and a
client that opens many connections meets the totals. Refusals are RESOURCE_EXHAUSTED with a
one-line reason; nothing waits without bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

__all__ = ["CallSlots", "Refused", "ServerLimits", "StreamSlots"]


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on the public server (per client = per connection)."""

    streams_per_connection: int = 32  # HTTP/2 concurrent streams; a client queues the rest
    watch_streams_per_client: int = 8
    watch_streams_total: int = 256
    oversight_calls_per_client: int = 8  # running or waiting to run
    oversight_calls_running: int = 16
    oversight_calls_waiting: int = 256
    exchanges_per_member: int = 2  # Exchange bodies read at once: bounds memory in flight
    exchanges_total: int = 8


class Refused(Exception):
    """A call over a bound; the message is the one-line reason given to the client."""


class StreamSlots:
    """Long-lived streams: at most `per_client` for one client and `total` in all."""

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
        """Count a new stream for `client`, or raise Refused."""
        if self._open[client] >= self.per_client:
            raise Refused(
                f"too many {self.what} streams from this client ({self.per_client} open);"
                " close one first"
            )
        if self._count >= self.total:
            raise Refused(
                f"this node serves at most {self.total} {self.what} streams; try again later"
            )
        self._open[client] += 1
        self._count += 1

    def give(self, client: str) -> None:
        self._count -= 1
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]


class CallSlots:
    """Calls: at most `per_client` running or waiting for one client; at most `running` run at
    once and `waiting` more wait their turn; beyond that, calls are refused."""

    def __init__(self, what: str, per_client: int, running: int, waiting: int) -> None:
        self.what = what
        self.per_client = per_client
        self.waiting = waiting
        self._limiter = anyio.CapacityLimiter(running)
        self._clients: Counter[str] = Counter()
        self._waiting = 0

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        """Hold a slot for one call of `client`; raises Refused if over a bound."""
        if self._clients[client] >= self.per_client:
            raise Refused(
                f"too many {self.what} calls at once from this client (at most"
                f" {self.per_client}); wait for replies before sending more"
            )
        if self._limiter.available_tokens < 1 and self._waiting >= self.waiting:
            raise Refused(f"this node is busy with {self.what} calls; try again shortly")
        self._clients[client] += 1
        try:
            self._waiting += 1
            try:
                await self._limiter.acquire()
            finally:
                self._waiting -= 1
            try:
                yield
            finally:
                self._limiter.release()
        finally:
            self._clients[client] -= 1
            if self._clients[client] <= 0:
                del self._clients[client]
