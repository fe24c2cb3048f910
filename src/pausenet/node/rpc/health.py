"""The standard `grpc.health.v1.Health` service, saying what the node says it can do.

A node is SERVING only once it has fully started, and NOT_SERVING while it cannot decide (one
of its loops died, its store fails) and from the moment it starts to stop. Unlike gRPC's
reference servicer, nothing is locked while a watcher is written to, so a watcher that never
reads cannot hold up a status change (or shutdown), and watchers are bounded like WatchView's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2

from pausenet.node.concurrency import Changes
from pausenet.node.rpc.bounds import Refused, Slots

__all__ = ["HealthServicer"]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN


class HealthServicer:
    """Registered by `servers._register` from the service descriptor, like the others."""

    def __init__(self, services: tuple[str, ...], watchers: Slots) -> None:
        self._status = dict.fromkeys(("", *services), NOT_SERVING)
        self._changes = Changes()
        self._final = False
        self._watchers = watchers

    @property
    def serving(self) -> bool:
        return bool(self._status[""] == SERVING)

    def set_serving(self, serving: bool) -> None:
        """Every service of this server SERVING or NOT_SERVING (ignored after shutdown)."""
        if self._final:
            return
        status = SERVING if serving else NOT_SERVING
        if any(s != status for s in self._status.values()):
            self._status = dict.fromkeys(self._status, status)
            self._changes.bump()

    def shutdown(self) -> None:
        """NOT_SERVING for good."""
        self.set_serving(False)
        self._final = True

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def List(
        self, request: health_pb2.HealthListRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthListResponse:
        reply = health_pb2.HealthListResponse()
        for name, status in self._status.items():
            reply.statuses[name].status = status
        return reply

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        client = context.peer() or ""
        try:
            self._watchers.take(client)
        except Refused as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        try:
            seen = self._changes.version
            last = None
            while True:
                status = self._status.get(request.service, UNKNOWN)
                if status != last:
                    last = status
                    yield health_pb2.HealthCheckResponse(status=status)
                seen = await self._changes.wait(seen)
        finally:
            self._watchers.give(client)
