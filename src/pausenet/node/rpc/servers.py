"""The node's two gRPC servers: public (Gossip, Oversight) and admin (Admin), each with health
(`health`) and reflection.

Message sizes are bounded by the charter's `max_message_bytes`, so an oversized message is
refused by gRPC before it is parsed; a request that is not valid protobuf for its method is
refused with INVALID_ARGUMENT. On the public port every request but an Exchange is small, and
is read in turn and refused unparsed over `ServerLimits.small_request_bytes`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import anyio
import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from pausenet.errors import ConfigError
from pausenet.node.config import parse_host_port
from pausenet.node.rpc.admin_server import AdminServicer
from pausenet.node.rpc.api import NodeApi
from pausenet.node.rpc.bounds import ReadGate, Refused, ServerLimits, Slots
from pausenet.node.rpc.channels import SERVER_OPTIONS, channel_options
from pausenet.node.rpc.gossip_server import GossipServicer, SessionRequired
from pausenet.node.rpc.health import HealthServicer
from pausenet.node.rpc.oversight_server import OversightServicer
from pausenet.node.tls import TlsFiles
from pausenet.v1 import admin_pb2, gossip_pb2, oversight_pb2

__all__ = ["SERVICE_NAMES", "RpcServer", "start_admin_server", "start_public_server"]

_GOSSIP = gossip_pb2.DESCRIPTOR.services_by_name["Gossip"]
_OVERSIGHT = oversight_pb2.DESCRIPTOR.services_by_name["Oversight"]
_ADMIN = admin_pb2.DESCRIPTOR.services_by_name["Admin"]
_HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]
log = logging.getLogger("pausenet.grpc")

SERVICE_NAMES = (_GOSSIP.full_name, _OVERSIGHT.full_name, _ADMIN.full_name)


class RpcServer:
    """A started gRPC server and the health status it reports for its services (NOT_SERVING
    until told otherwise)."""

    def __init__(self, server: grpc.aio.Server, health: HealthServicer, address: str) -> None:
        self.address = address  # host:port it is bound to
        self._server = server
        self._health = health

    @property
    def serving(self) -> bool:
        return self._health.serving

    def set_serving(self, serving: bool) -> None:
        self._health.set_serving(serving)

    async def stop(self, grace: float) -> None:
        """Say NOT_SERVING for good, refuse new calls, and cancel the rest after `grace`."""
        self._health.shutdown()
        await self._server.stop(grace)


async def start_public_server(
    node: NodeApi, listen: str, tls: TlsFiles | None, limits: ServerLimits
) -> RpcServer:
    """Gossip, Oversight, health and reflection on `listen`."""
    server = grpc.aio.server(
        interceptors=[SessionRequired(node)],
        options=[
            *channel_options(node.charter.limits.max_message_bytes),
            *SERVER_OPTIONS,
            ("grpc.max_concurrent_streams", limits.streams_per_connection),
        ],
    )
    malformed = _malformed_counter(node)
    gossip = GossipServicer(node, limits)

    def small(what: str) -> _SmallRequests:
        gate = ReadGate(
            what,
            limits.request_reads_total,
            limits.request_read_wait_s,
            limits.request_read_timeout_s,
        )
        return _SmallRequests(gate, limits.small_request_bytes, _refusal_counter(node))

    _register(
        server,
        gossip,
        _GOSSIP,
        malformed,
        gated={"Exchange": gossip.exchange_slot},
        small=small("gossip"),
    )
    _register(server, OversightServicer(node, limits), _OVERSIGHT, malformed, small=small("view"))
    services = (_GOSSIP.full_name, _OVERSIGHT.full_name)
    watchers = Slots(
        "health watch streams", limits.watch_streams_per_client, limits.watch_streams_total
    )
    return await _start(server, services, watchers, malformed, listen, "listen", tls, small=small)


async def start_admin_server(node: NodeApi, listen: str, tls: TlsFiles | None) -> RpcServer:
    """Admin (token required), health and reflection on `listen`, loopback by default."""
    server = grpc.aio.server(options=[*channel_options(1024 * 1024), *SERVER_OPTIONS])
    malformed = _malformed_counter(node)
    _register(server, AdminServicer(node), _ADMIN, malformed)
    watchers = Slots("health watch streams", 4, 16)
    return await _start(
        server, (_ADMIN.full_name,), watchers, malformed, listen, "admin_listen", tls
    )


async def _start(
    server: grpc.aio.Server,
    services: tuple[str, ...],
    watchers: Slots,
    malformed: Callable[[], None],
    listen: str,
    key: str,
    tls: TlsFiles | None,
    small: Callable[[str], _SmallRequests] | None = None,
) -> RpcServer:
    health = HealthServicer(services, watchers)
    _register(server, health, _HEALTH, malformed, small=small("health") if small else None)
    names = (*services, _HEALTH.full_name, reflection.SERVICE_NAME)
    if small is None:
        reflection.enable_server_reflection(names, server)
    else:
        # its own turns: a reflection stream waiting for its next request holds one
        _register_reflection(server, names, small("reflection"), malformed)
    address = await _bind(server, listen, key, tls)
    return RpcServer(server, health, address)


def _malformed_counter(node: NodeApi) -> Callable[[], None]:
    def count() -> None:
        node.guard.refused["malformed-request"] += 1

    return count


def _refusal_counter(node: NodeApi) -> Callable[[str], None]:
    def count(cause: str) -> None:
        node.guard.refused[cause] += 1

    return count


class _Malformed:
    """Stands for a request whose bytes did not parse; the handler refuses it."""

    __slots__ = ()


_MALFORMED = _Malformed()


class _Oversize:
    """Stands for a request over its method's bound, left unparsed; the handler refuses it."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size


@dataclass(frozen=True)
class _SmallRequests:
    """How a service whose requests are all small reads them: in turn (`gate`), at most
    `max_bytes` each; `refused` counts refusals by cause."""

    gate: ReadGate
    max_bytes: int
    refused: Callable[[str], None]

    async def read(self, ctx: Any, name: str, *, end_ok: bool = False) -> Any:
        """The request of a call (the next one of a stream, or EOF if `end_ok`), read in turn
        and within the gate's deadline; aborts the call when it is refused, late, oversized or
        missing."""
        req: Any = None
        end: Any = grpc.aio.EOF
        try:
            async with self.gate.turn():
                with anyio.move_on_after(self.gate.read_timeout_s):
                    req = await ctx.read()
                    if not end_ok and req is not grpc.aio.EOF:
                        # a unary call's request is followed by the client's half-close: take
                        # it too, so the reply never races an open request stream (gRPC
                        # would reset the stream, and the client see CANCELLED)
                        end = await ctx.read()
        except Refused as exc:
            self.refused("request-reads")
            await ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        if req is None:
            self.refused("request-reads")
            await ctx.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{name}: request not received within {self.gate.read_timeout_s:g}s",
            )
        if req is grpc.aio.EOF and not end_ok:
            await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: no request")
        if end is not grpc.aio.EOF:
            await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: one request only")
        if isinstance(req, _Oversize):
            self.refused("oversized-request")
            await ctx.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{name}: request is {req.size} bytes; this method takes at most {self.max_bytes}",
            )
        return req


Gate = Callable[[grpc.aio.ServicerContext], AbstractAsyncContextManager[None]]


def _register(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    on_malformed: Callable[[], None],
    gated: Mapping[str, Gate] | None = None,
    small: _SmallRequests | None = None,
) -> None:
    """Like the generated add_*_to_server, but a request that is not valid protobuf for its
    method is refused with INVALID_ARGUMENT (the generated handlers parse before the servicer
    runs, and a parse error becomes UNKNOWN).

    A unary method with a gate reads its request only inside the gate (gRPC reads a unary
    request before calling the handler; registered as request-streaming, the handler reads it
    when it is ready), so the gate bounds how many such requests are held at once. With `small`,
    every other method reads its request that way too, in turn and bounded in size
    (`_SmallRequests`)."""
    handlers = {}
    gated = gated or {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        impl = getattr(servicer, method.name)

        def parse(
            data: bytes, cls: Any = request_cls, is_gated: bool = method.name in gated
        ) -> Any:
            if small is not None and not is_gated and len(data) > small.max_bytes:
                return _Oversize(len(data))
            try:
                return cls.FromString(data)
            except (DecodeError, ValueError, RuntimeError):
                return _MALFORMED

        if method.name in gated:

            async def read_then_call(
                requests: object,
                ctx: Any,
                impl: Any = impl,
                name: str = method.name,
                gate: Gate = gated[method.name],
            ) -> Any:
                async with gate(ctx):
                    req = await ctx.read()
                    if req is grpc.aio.EOF:
                        await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: no request")
                    if req is _MALFORMED:
                        on_malformed()
                        await ctx.abort(
                            grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf"
                        )
                    return await impl(req, ctx)

            handlers[method.name] = grpc.stream_unary_rpc_method_handler(
                read_then_call, request_deserializer=parse, response_serializer=_serialize
            )
        elif small is not None and method.server_streaming:

            async def read_then_stream(
                requests: object, ctx: Any, impl: Any = impl, name: str = method.name
            ) -> None:
                req = await small.read(ctx, name)
                await _stream(impl, req, ctx, name, on_malformed)

            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                read_then_stream, request_deserializer=parse, response_serializer=_serialize
            )
        elif small is not None:

            async def read_then_unary(
                requests: object, ctx: Any, impl: Any = impl, name: str = method.name
            ) -> Any:
                req = await small.read(ctx, name)
                if req is _MALFORMED:
                    on_malformed()
                    await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf")
                return await impl(req, ctx)

            handlers[method.name] = grpc.stream_unary_rpc_method_handler(
                read_then_unary, request_deserializer=parse, response_serializer=_serialize
            )
        elif method.server_streaming:

            async def stream(req: Any, ctx: Any, impl: Any = impl, name: str = method.name) -> None:
                await _stream(impl, req, ctx, name, on_malformed)

            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=parse, response_serializer=_serialize
            )
        else:

            async def unary(req: Any, ctx: Any, impl: Any = impl, name: str = method.name) -> Any:
                if req is _MALFORMED:
                    on_malformed()
                    await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf")
                return await impl(req, ctx)

            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=parse, response_serializer=_serialize
            )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )


def _register_reflection(
    server: grpc.aio.Server,
    names: tuple[str, ...],
    small: _SmallRequests,
    on_malformed: Callable[[], None],
) -> None:
    """Reflection, like `reflection.enable_server_reflection`, but each request of its stream
    read in turn and bounded in size like the other small requests (the library's handler reads
    every message of up to max_message_bytes as it comes)."""
    servicer = reflection.aio.ReflectionServicer(names)
    name = "ServerReflectionInfo"

    def parse(data: bytes) -> Any:
        if len(data) > small.max_bytes:
            return _Oversize(len(data))
        try:
            return reflection_pb2.ServerReflectionRequest.FromString(data)
        except (DecodeError, ValueError, RuntimeError):
            return _MALFORMED

    async def info(requests: object, ctx: Any) -> None:
        async def in_turn() -> AsyncIterator[Any]:
            while (req := await small.read(ctx, name, end_ok=True)) is not grpc.aio.EOF:
                if req is _MALFORMED:
                    on_malformed()
                    await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf")
                yield req

        await _stream(
            lambda req, ctx: servicer.ServerReflectionInfo(req, ctx),
            in_turn(),
            ctx,
            name,
            on_malformed,
        )

    handler = grpc.stream_stream_rpc_method_handler(
        info, request_deserializer=parse, response_serializer=_serialize
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(reflection.SERVICE_NAME, {name: handler}),)
    )


async def _stream(
    impl: Any, req: Any, ctx: Any, name: str, on_malformed: Callable[[], None]
) -> None:
    if req is _MALFORMED:
        on_malformed()
        await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf")
    async with contextlib.aclosing(impl(req, ctx)) as items:
        async for item in items:
            try:
                await ctx.write(item)
            except Exception as exc:
                # The client went away with a write pending (gRPC fails the write with an
                # internal error type, not a cancellation): the stream is over, which is no
                # error of the node's.
                log.debug("%s stream to %s ended: %r", name, ctx.peer(), exc)
                return


def _serialize(message: Any) -> bytes:
    if isinstance(message, bytes):  # already serialized (a cached reply)
        return message
    out: bytes = message.SerializeToString()
    return out


async def _bind(server: grpc.aio.Server, listen: str, key: str, tls: TlsFiles | None) -> str:
    host, _ = parse_host_port(listen)
    try:
        if tls is None:
            port = server.add_insecure_port(listen)
        else:
            assert tls.key is not None
            assert tls.cert is not None
            creds = grpc.ssl_server_credentials(
                [(tls.key, tls.cert)],
                root_certificates=tls.ca,
                require_client_auth=tls.client_auth,
            )
            port = server.add_secure_port(listen, creds)
    except RuntimeError as exc:
        port = 0
        cause: BaseException | None = exc
    else:
        cause = None
    if not port:
        raise ConfigError(
            f"{key} {listen}: cannot listen there (port in use or address not on this host);"
            " pick another port"
        ) from cause
    await server.start()
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}"
