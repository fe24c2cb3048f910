"""gRPC transport: the Gossip client, and the Gossip, Oversight and Admin servers of a node.

Protobuf stops here: requests are converted to domain objects by `pausenet.codec` before they
reach the node, and gRPC errors are translated to `PeerError` at this boundary. Message sizes are
bounded by the charter's `max_message_bytes` on both ends, so an oversized message is refused by
gRPC before it is parsed.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pausenet.core.answer import MAX_NONCE, MIN_NONCE
from pausenet.core.charter import Charter
from pausenet.core.keys import SigningKey
from pausenet.core.payload import CodecError
from pausenet.core.records import ComplianceState, Decision, SignedStatement
from pausenet.core.view import View
from pausenet.errors import ConfigError, PausenetError, SigningRefusedError
from pausenet.node.config import parse_host_port
from pausenet.node.gossip import DigestReply, ExchangeReply, GossipService, PeerError
from pausenet.node.messages import Digest, Items
from pausenet.node.peerauth import Authenticator, sign_auth
from pausenet.node.tls import TlsFiles
from pausenet.node.wire import (
    digest_from_pb,
    digest_to_pb,
    envelope_from_pb,
    envelope_to_pb,
    items_from_pb,
    items_to_pb,
    view_to_pb,
)
from pausenet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    gossip_pb2,
    gossip_pb2_grpc,
    oversight_pb2,
    oversight_pb2_grpc,
    statement_pb2,
)

if TYPE_CHECKING:
    from pausenet.node.node import Node

__all__ = [
    "SERVICE_NAMES",
    "GrpcTransport",
    "channel_options",
    "open_channel",
    "start_admin_server",
    "start_public_server",
]

log = logging.getLogger("pausenet.grpc")

SERVICE_NAMES = (
    gossip_pb2.DESCRIPTOR.services_by_name["Gossip"].full_name,
    oversight_pb2.DESCRIPTOR.services_by_name["Oversight"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)
_MAX_CHANNELS = 256
_SESSION_KEY = "pausenet-session"
_WATCH_TICK_S = 1.0


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_metadata_size", 16 * 1024),
        ("grpc.enable_retries", 0),
    ]


# A connection whose peer went silent (a black-holed link, a frozen host) is found by HTTP/2
# pings within ~15 s and replaced, instead of waiting for TCP to give up. Servers accept pings
# that often (gRPC's default would answer them with "too many pings").
_CLIENT_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
_SERVER_KEEPALIVE = [
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def open_channel(address: str, tls: TlsFiles | None, max_message_bytes: int) -> grpc.aio.Channel:
    """A channel to address: TLS (verifying the peer against tls.ca, presenting tls.cert) or not."""
    options = [*channel_options(max_message_bytes), *_CLIENT_KEEPALIVE]
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )
    return grpc.aio.secure_channel(address, creds, options=options)


# -- client ---------------------------------------------------------------------------------


class GrpcTransport:
    """Gossip client: one channel and one session per peer address (LRU-bounded).

    Before its first call to a peer, the client proves its member identity (docs/protocol.md
    §12.5): it asks for a challenge, signs it, and sends the session token it gets with every
    later call, starting over once if the peer says the session is no longer valid.
    """

    def __init__(
        self,
        charter: Charter,
        key: SigningKey,
        member: str,
        clock: Callable[[], int],
        tls: TlsFiles | None = None,
        expected_member: Callable[[str], str | None] = lambda _address: None,
    ) -> None:
        self.tls = tls
        self.expected_member = expected_member  # whose node a gossip address should be
        self.charter = charter
        self.key = key
        self.member = member
        self.clock = clock
        self._channels: OrderedDict[str, grpc.aio.Channel] = OrderedDict()
        self._sessions: dict[str, str] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def peer(self, address: str) -> _GrpcPeer:
        ch = self._channels.get(address)
        if ch is None:
            ch = open_channel(address, self.tls, self.charter.limits.max_message_bytes)
            self._channels[address] = ch
            while len(self._channels) > _MAX_CHANNELS:
                old_address, old = self._channels.popitem(last=False)
                self._sessions.pop(old_address, None)
                self._close_soon(old)
        else:
            self._channels.move_to_end(address)
        return _GrpcPeer(self, gossip_pb2_grpc.GossipStub(ch), address)

    def _close_soon(self, ch: grpc.aio.Channel) -> None:
        """Close an evicted channel now (in the background), not at shutdown: a member that
        keeps changing its advertised address must not pile up open connections."""
        task = asyncio.get_running_loop().create_task(ch.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        chans = list(self._channels.values())
        self._channels.clear()
        self._sessions.clear()
        for ch in chans:
            await ch.close()
        await asyncio.gather(*self._closing, return_exceptions=True)


class _GrpcPeer:
    def __init__(self, t: GrpcTransport, stub: gossip_pb2_grpc.GossipStub, address: str) -> None:
        self.t = t
        self.charter = t.charter
        self.stub = stub
        self.address = address

    async def _session(self, timeout: float) -> str:
        token = self.t._sessions.get(self.address)
        if token is not None:
            return token
        t = self.t
        try:
            ch = await self.stub.Challenge(
                gossip_pb2.ChallengeRequest(client=t.member), timeout=timeout
            )
            # Sign only for the member we meant to reach: a member's node relaying another
            # node's challenge would otherwise get a session there in our name.
            expected = t.expected_member(self.address)
            if ch.server == t.member or t.charter.member(ch.server) is None:
                raise PeerError(f"peer at {self.address} claims to be {ch.server[:64]!r}")
            if expected is not None and ch.server != expected:
                raise PeerError(
                    f"peer at {self.address} says it is {ch.server}, but {expected}'s signed"
                    " heartbeat gives that address"
                )
            auth = sign_auth(t.key, t.charter, t.member, ch.server, ch.challenge, t.clock())
            reply = await self.stub.Authenticate(
                gossip_pb2.AuthRequest(auth=envelope_to_pb(auth)), timeout=timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise PeerError(f"authentication: {_rpc_error(exc)}") from exc
        t._sessions[self.address] = reply.session
        return str(reply.session)

    async def _call(self, method: Any, request: Any, timeout: float) -> Any:
        for attempt in (1, 2):
            token = await self._session(timeout)
            try:
                return await method(request, timeout=timeout, metadata=((_SESSION_KEY, token),))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and attempt == 1:
                    self.t._sessions.pop(self.address, None)  # expired or peer restarted
                    continue
                raise PeerError(_rpc_error(exc)) from exc
        raise AssertionError("unreachable")

    async def get_digest(self, summary_hash: bytes, *, timeout: float) -> DigestReply:
        r = await self._call(
            self.stub.GetDigest, gossip_pb2.DigestRequest(summary_hash=summary_hash), timeout
        )
        if r.in_sync:
            return DigestReply(True, None)
        try:
            return DigestReply(False, digest_from_pb(r.digest, max_heads=len(self.charter.members)))
        except CodecError as exc:
            raise PeerError(f"bad digest: {exc}") from exc

    async def exchange(self, digest: Digest, items: Items, *, timeout: float) -> ExchangeReply:
        req = gossip_pb2.ExchangeRequest(digest=digest_to_pb(digest), items=items_to_pb(items))
        r = await self._call(self.stub.Exchange, req, timeout)
        try:
            got = items_from_pb(r.items, max_items=self.charter.limits.max_items_per_message)
        except CodecError as exc:
            raise PeerError(f"bad reply: {exc}") from exc
        return ExchangeReply(got, r.more)


def _rpc_error(exc: grpc.aio.AioRpcError) -> str:
    code = exc.code()
    name = code.name if code is not None else "UNKNOWN"
    return f"{name}: {(exc.details() or '').splitlines()[0][:200] if exc.details() else ''}"


# -- servers --------------------------------------------------------------------------------


# gRPC sets SO_REUSEPORT by default on Linux: a second node would bind the same port and share
# its traffic instead of failing to start.
_SERVER_OPTIONS = [("grpc.so_reuseport", 0), *_SERVER_KEEPALIVE]


async def start_public_server(node: Node, listen: str) -> tuple[grpc.aio.Server, str]:
    """Gossip, Oversight, health and reflection on `listen`; returns the bound address."""
    server = grpc.aio.server(
        options=[*channel_options(node.charter.limits.max_message_bytes), *_SERVER_OPTIONS]
    )
    _register(server, _GossipServicer(node), gossip_pb2.DESCRIPTOR.services_by_name["Gossip"])
    _register(
        server, _OversightServicer(node), oversight_pb2.DESCRIPTOR.services_by_name["Oversight"]
    )
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    names = (*SERVICE_NAMES[:2], health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
    address = await _bind(server, listen, "listen", node.tls)
    for name in ("", *SERVICE_NAMES[:2]):
        await hs.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, address


async def start_admin_server(node: Node, listen: str) -> tuple[grpc.aio.Server, str]:
    """Admin (token required), health and reflection on `listen`, loopback by default."""
    server = grpc.aio.server(options=[*channel_options(1024 * 1024), *_SERVER_OPTIONS])
    _register(server, _AdminServicer(node), admin_pb2.DESCRIPTOR.services_by_name["Admin"])
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    names = (SERVICE_NAMES[2], health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)
    address = await _bind(server, listen, "admin_listen", node.tls)
    for name in ("", SERVICE_NAMES[2]):
        await hs.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, address


class _Malformed:
    """Stands for a request whose bytes did not parse; the handler refuses it."""

    __slots__ = ()


_MALFORMED = _Malformed()


def _register(server: grpc.aio.Server, servicer: object, service: ServiceDescriptor) -> None:
    """Like the generated add_*_to_server, but a request that is not valid protobuf for its
    method is refused with INVALID_ARGUMENT (the generated handlers parse before the servicer
    runs, and a parse error becomes UNKNOWN)."""
    handlers = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        impl = getattr(servicer, method.name)

        def parse(data: bytes, cls: Any = request_cls) -> Any:
            try:
                return cls.FromString(data)
            except (DecodeError, ValueError, RuntimeError):
                return _MALFORMED

        if method.server_streaming:

            async def stream(req: Any, ctx: Any, impl: Any = impl, name: str = method.name) -> Any:
                if req is _MALFORMED:
                    _count_malformed(servicer)
                    await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf")
                async for item in impl(req, ctx):
                    yield item

            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                stream, request_deserializer=parse, response_serializer=_serialize
            )
        else:

            async def unary(req: Any, ctx: Any, impl: Any = impl, name: str = method.name) -> Any:
                if req is _MALFORMED:
                    _count_malformed(servicer)
                    await ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: not valid protobuf")
                return await impl(req, ctx)

            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=parse, response_serializer=_serialize
            )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )


def _count_malformed(servicer: object) -> None:
    node = getattr(servicer, "node", None)
    guard = getattr(node, "guard", None)
    if guard is not None:
        guard.refused["malformed-request"] += 1


def _serialize(message: Any) -> bytes:
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


class _GossipServicer(gossip_pb2_grpc.GossipServicer):
    """Only members' nodes may gossip: each proves its key once, then calls with a session.

    Calls are rate-limited per member (per address before authentication), a member whose
    items fail verification loses score and is refused for a while (`pausenet.node.limits`).
    """

    def __init__(self, node: Node) -> None:
        self.node = node
        self.service = GossipService(node.replica, on_change=node._notify)
        self.auth = Authenticator(node.charter, node.member)
        self.guard = node.guard

    def _now_s(self) -> float:
        return self.node.clock() / 1000

    async def _admit(
        self, context: grpc.aio.ServicerContext, key: str, kind: str, cost: float = 1.0
    ) -> None:
        why = self.guard.admit(key, kind, self._now_s(), cost)
        if why is not None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, why)

    async def _member(self, context: grpc.aio.ServicerContext) -> str:
        md = dict(context.invocation_metadata() or ())
        session = self.auth.session(str(md.get(_SESSION_KEY, "")), self.node.clock())
        if session is None:
            self.guard.refused["unauthenticated"] += 1
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "no valid session: call Challenge and Authenticate first (members only)",
            )
        assert session is not None
        return session.member

    async def Challenge(
        self, request: gossip_pb2.ChallengeRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.ChallengeReply:
        await self._admit(context, _peer_key(context), "auth")
        c = self.auth.challenge(request.client, self.node.clock())
        if isinstance(c, str):
            self.guard.refused["not-a-member"] += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, c)
        assert isinstance(c, bytes)
        return gossip_pb2.ChallengeReply(challenge=c, server=self.node.member)

    async def Authenticate(
        self, request: gossip_pb2.AuthRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.AuthReply:
        await self._admit(context, _peer_key(context), "auth")
        got = self.auth.authenticate(envelope_from_pb(request.auth), self.node.clock())
        if isinstance(got, str):
            self.guard.refused["bad-auth"] += 1
            log.info("gossip authentication refused from %s: %s", context.peer(), got)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, got)
        assert not isinstance(got, str)
        token, session = got
        return gossip_pb2.AuthReply(session=token, expires_at_ms=session.expires_at_ms)

    async def GetDigest(
        self, request: gossip_pb2.DigestRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.DigestResponse:
        member = await self._member(context)
        await self._admit(context, member, "digest")
        if len(request.summary_hash) != 32:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "summary_hash must be 32 bytes")
        r = self.service.get_digest(request.summary_hash)
        if r.in_sync or r.digest is None:
            return gossip_pb2.DigestResponse(in_sync=True)
        return gossip_pb2.DigestResponse(in_sync=False, digest=digest_to_pb(r.digest))

    async def Exchange(
        self, request: gossip_pb2.ExchangeRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.ExchangeResponse:
        member = await self._member(context)
        it = request.items
        n = len(it.statements) + len(it.heartbeats) + len(it.evidence)
        await self._admit(context, member, "exchange", cost=1 + n / 50)
        limits = self.node.charter.limits
        try:
            digest = digest_from_pb(request.digest, max_heads=len(self.node.charter.members))
            items = items_from_pb(it, max_items=limits.max_items_per_message)
        except CodecError as exc:
            self.guard.judge(member, {exc.reason: 1}, 0, self._now_s())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            reply, report = await self.service.exchange_with_report(digest, items)
        except PausenetError as exc:  # our own store failed: not the peer's fault
            log.error("exchange from %s failed here: %s", member, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the node could not store the items")
        accepted = report.statements + report.heartbeats + report.evidence
        self.guard.judge(member, report.rejected, accepted, self._now_s())
        self.node.mark_in_touch()  # a peer told us what it holds: our own log is caught up
        if report.rejected:
            log.debug("items from %s rejected: %s", member, dict(report.rejected))
        return gossip_pb2.ExchangeResponse(items=items_to_pb(reply.items), more=reply.more)


def _peer_key(context: grpc.aio.ServicerContext) -> str:
    """'ip:1.2.3.4' for 'ipv4:1.2.3.4:5678' (the port changes per connection; the host does not)."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    host = rest.rpartition(":")[0] if kind in ("ipv4", "ipv6") else rest
    return f"ip:{host or peer}"


def _fingerprint(v: View) -> tuple[object, ...]:
    return (
        v.state,
        v.epoch,
        v.certified_state,
        tuple(
            (m.id, m.head_seq, m.fresh, m.synced, m.equivocator, m.compliance) for m in v.members
        ),
        len(v.evidence),
    )


class _OversightServicer(oversight_pb2_grpc.OversightServicer):
    def __init__(self, node: Node) -> None:
        self.node = node

    async def GetView(
        self, request: oversight_pb2.GetViewRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.ViewReply:
        nonce = request.nonce
        if nonce and not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"nonce must be {MIN_NONCE} to {MAX_NONCE} bytes, got {len(nonce)}",
            )
        if nonce:
            view, answer = self.node.signed_view(nonce)
            return view_to_pb(view, answered_by=self.node.member, signed_answer=answer)  # type: ignore[arg-type]
        return view_to_pb(self.node.view(), answered_by=self.node.member, signed_answer=None)

    async def WatchView(
        self, request: oversight_pb2.WatchViewRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[oversight_pb2.ViewReply]:
        last: tuple[object, ...] | None = None
        while not self.node.stopping:
            v = self.node.view()
            fp = _fingerprint(v)
            if fp != last:
                last = fp
                yield view_to_pb(v, answered_by=self.node.member, signed_answer=None)
            await self.node.wait_for_change(_WATCH_TICK_S)

    async def GetLog(
        self, request: oversight_pb2.GetLogRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.GetLogReply:
        charter = self.node.charter
        if charter.member(request.member) is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"{request.member[:64]!r} is not a member of the charter"
            )
        cap = charter.limits.max_items_per_message
        limit = min(request.limit or cap, cap)
        stmts = self.node.replica.log(request.member, request.from_seq or 1, limit)
        head, _ = self.node.replica.head(request.member)
        return oversight_pb2.GetLogReply(
            statements=[envelope_to_pb(s.envelope) for s in stmts], head_seq=head
        )

    async def GetEvidence(
        self, request: oversight_pb2.GetEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.GetEvidenceReply:
        return oversight_pb2.GetEvidenceReply(
            evidence=[
                gossip_pb2.EvidencePair(
                    first=envelope_to_pb(e.first), second=envelope_to_pb(e.second)
                )
                for e in self.node.replica.evidence()
            ]
        )

    async def GetCharter(
        self, request: oversight_pb2.GetCharterRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.GetCharterReply:
        c = self.node.charter
        return oversight_pb2.GetCharterReply(canonical=c.canonical_bytes, digest=c.digest)


_DECISIONS = {
    statement_pb2.DECISION_PAUSE: Decision.PAUSE,
    statement_pb2.DECISION_LIFT: Decision.LIFT,
}
_STATES = {
    statement_pb2.COMPLIANCE_STATE_HALTED: ComplianceState.HALTED,
    statement_pb2.COMPLIANCE_STATE_NOT_HALTED: ComplianceState.NOT_HALTED,
}


class _AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, node: Node) -> None:
        self.node = node

    async def _authorize(self, context: grpc.aio.ServicerContext) -> None:
        md = dict(context.invocation_metadata() or ())
        given = str(md.get("authorization", ""))
        want = "Bearer " + self.node.admin_token
        if not hmac.compare_digest(given.encode(), want.encode()):
            peer = context.peer()
            log.warning("admin call refused from %s: missing or wrong token", peer)
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"missing or wrong admin token; send 'authorization: Bearer <token>' with the"
                f" token from {self.node.config.admin_token_file}",
            )

    async def _run(self, context: grpc.aio.ServicerContext, coro: Any) -> admin_pb2.IssueReply:
        try:
            st: SignedStatement = await coro
        except SigningRefusedError as exc:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        except PausenetError as exc:
            log.error("admin call failed: %s", exc)
            await context.abort(grpc.StatusCode.INTERNAL, str(exc))
        return admin_pb2.IssueReply(statement=envelope_to_pb(st.envelope), seq=st.seq, hash=st.hash)

    async def GetStats(
        self, request: admin_pb2.StatsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.StatsReply:
        await self._authorize(context)
        guard = self.node.guard
        return admin_pb2.StatsReply(
            counters=self.node.stats(),
            peer_scores={m.id: guard.score(m.id) for m in self.node.charter.members},
        )

    async def CastVote(
        self, request: admin_pb2.CastVoteRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.IssueReply:
        await self._authorize(context)
        decision = _DECISIONS.get(request.decision)
        if decision is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "decision must be PAUSE or LIFT")
        assert decision is not None
        return await self._run(
            context,
            self.node.cast_vote(
                decision, epoch=request.epoch, triggers=tuple(request.triggers), note=request.note
            ),
        )

    async def AttestCompliance(
        self, request: admin_pb2.AttestComplianceRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.IssueReply:
        await self._authorize(context)
        state = _STATES.get(request.state)
        if state is None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "state must be HALTED or NOT_HALTED"
            )
        assert state is not None
        if request.evidence_sha256 and len(request.evidence_sha256) != 32:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "evidence_sha256 must be 32 bytes"
            )
        return await self._run(
            context,
            self.node.attest_compliance(
                state, epoch=request.epoch, evidence_sha256=request.evidence_sha256
            ),
        )

    async def AttestTrigger(
        self, request: admin_pb2.AttestTriggerRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.IssueReply:
        await self._authorize(context)
        if request.evidence_sha256 and len(request.evidence_sha256) != 32:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "evidence_sha256 must be 32 bytes"
            )
        return await self._run(
            context,
            self.node.attest_trigger(
                request.trigger_id,
                evidence_sha256=request.evidence_sha256,
                note=request.note,
                epoch=request.epoch,
            ),
        )
