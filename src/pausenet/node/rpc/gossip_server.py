"""The Gossip service: members' nodes prove their key once, then exchange digests and items.

Calls that need a session are refused on their metadata, before gRPC reads their body
(`SessionRequired`), and an Exchange body is read only once the call holds one of a few
exchange slots (`GossipServicer.exchange_slot`), so neither strangers nor members can make the
node hold more than a few messages' bytes at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc

from pausenet.core.payload import CodecError
from pausenet.errors import PausenetError
from pausenet.node.concurrency import NotRunningError
from pausenet.node.rpc.api import NodeApi
from pausenet.node.rpc.bounds import Refused, ServerLimits, Slots
from pausenet.node.rpc.channels import SESSION_KEY
from pausenet.node.wire import (
    digest_from_pb,
    digest_to_pb,
    envelope_from_pb,
    envelope_to_pb,
    items_from_pb,
    items_to_pb,
)
from pausenet.v1 import gossip_pb2, gossip_pb2_grpc

__all__ = ["GossipServicer", "SessionRequired", "peer_key"]

log = logging.getLogger("pausenet.grpc")

_NO_SESSION = "no valid session: call Challenge and Authenticate first (members only)"
# the Gossip methods that need a session (Challenge and Authenticate are how one gets it)
SESSION_METHODS = frozenset(
    {
        "/pausenet.v1.Gossip/GetDigest",
        "/pausenet.v1.Gossip/Exchange",
        "/pausenet.v1.Gossip/GetGovernance",
    }
)


def _session_token(metadata: Sequence[Any] | None) -> str:
    for key, value in metadata or ():
        if key == SESSION_KEY:
            return str(value)
    return ""


class SessionRequired(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """Refuses a call to a session method without a valid session from its metadata alone:
    the refusing handler never reads the request, so a stranger's multi-megabyte Exchange is
    neither buffered nor parsed (the token lookup is one dict access)."""

    def __init__(self, node: NodeApi, methods: frozenset[str] = SESSION_METHODS) -> None:
        self.node = node
        self.methods = methods
        self._refusal = grpc.stream_unary_rpc_method_handler(_refuse_unauthenticated)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method in self.methods:
            token = _session_token(details.invocation_metadata)
            if self.node.authenticator.session(token, self.node.clock()) is None:
                self.node.guard.refused["unauthenticated"] += 1
                return self._refusal
        return await continuation(details)


async def _refuse_unauthenticated(requests: object, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, _NO_SESSION)


def peer_key(context: grpc.aio.ServicerContext) -> str:
    """'ip:1.2.3.4' for 'ipv4:1.2.3.4:5678' (the port changes per connection; the host does not)."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    host = rest.rpartition(":")[0] if kind in ("ipv4", "ipv6") else rest
    return f"ip:{host or peer}"


class GossipServicer(gossip_pb2_grpc.GossipServicer):
    """Only members' nodes may gossip: each proves its key once, then calls with a session.

    Calls are rate-limited per member (per address before authentication), a member whose
    items fail verification loses score and is refused for a while (`pausenet.node.limits`).
    """

    def __init__(self, node: NodeApi, limits: ServerLimits) -> None:
        self.node = node
        self.auth = node.authenticator
        self.guard = node.guard
        self.exchanges = Slots(
            "exchanges in flight", limits.exchanges_per_member, limits.exchanges_total
        )

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
        session = self.auth.session(
            str(md.get(SESSION_KEY, "")), self.node.clock(), context.peer() or ""
        )
        if session is None:
            self.guard.refused["unauthenticated"] += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, _NO_SESSION)
        assert session is not None
        return session.member

    @asynccontextmanager
    async def exchange_slot(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """Held while an Exchange body is read and handled: a few per member and in all, so
        the bytes in flight stay a few messages; a banned member is refused before reading."""
        member = await self._member(context)
        if self.guard.banned(member, self._now_s()):
            self.guard.refused["banned"] += 1
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{member} is refused for a while: too many invalid items",
            )
        try:
            self.exchanges.take(member)
        except Refused as exc:
            self.guard.refused["exchanges-in-flight"] += 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        try:
            yield
        finally:
            self.exchanges.give(member)

    async def Challenge(
        self, request: gossip_pb2.ChallengeRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.ChallengeReply:
        await self._admit(context, peer_key(context), "auth")
        c = self.auth.challenge(request.client, self.node.clock())
        if isinstance(c, str):
            self.guard.refused["not-a-member"] += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, c)
        assert isinstance(c, bytes)
        return gossip_pb2.ChallengeReply(challenge=c, server=self.node.member)

    async def Authenticate(
        self, request: gossip_pb2.AuthRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.AuthReply:
        await self._admit(context, peer_key(context), "auth")
        got = self.auth.authenticate(
            envelope_from_pb(request.auth), self.node.clock(), context.peer() or ""
        )
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
        try:
            r = self.node.get_digest(request.summary_hash, request.level, list(request.nodes))
        except CodecError as exc:
            self.guard.judge(member, {exc.reason: 1}, 0, self._now_s())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        if r.in_sync:
            return gossip_pb2.DigestResponse(in_sync=True)
        return gossip_pb2.DigestResponse(
            in_sync=False,
            digest=digest_to_pb(r.digest) if r.digest is not None else None,
            children=list(r.children),
        )

    async def Exchange(
        self, request: gossip_pb2.ExchangeRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.ExchangeResponse:
        member = await self._member(context)
        it = request.items
        n = len(it.statements) + len(it.heartbeats) + len(it.evidence)
        await self._admit(context, member, "exchange", cost=1 + n / 50)
        charter = self.node.charter
        try:
            digest = digest_from_pb(request.digest, max_heads=len(charter.members))
            items = items_from_pb(it, max_items=charter.limits.max_items_per_message)
        except CodecError as exc:
            self.guard.judge(member, {exc.reason: 1}, 0, self._now_s())
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            reply, report = await self.node.exchange(digest, items)
        except NotRunningError as exc:
            why = str(exc)
            if why == "not running":
                why = "the node is starting or stopping; try again"
            await context.abort(grpc.StatusCode.UNAVAILABLE, why)
        except PausenetError as exc:  # our own store failed: not the peer's fault
            log.error("exchange from %s failed here: %s", member, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the node could not store the items")
        accepted = report.statements + report.heartbeats + report.evidence
        self.guard.judge(member, report.rejected, accepted, self._now_s())
        if report.rejected:
            log.debug("items from %s rejected: %s", member, dict(report.rejected))
        return gossip_pb2.ExchangeResponse(items=items_to_pb(reply.items), more=reply.more)

    async def GetGovernance(
        self, request: gossip_pb2.GovernanceRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.GovernanceReply:
        """Charters and approvals after the caller's newest version (docs/protocol.md §15.7);
        rate-limited like GetDigest, the reply bounded by the message limit."""
        member = await self._member(context)
        await self._admit(context, member, "digest")
        if len(request.summary) != 32 or len(request.newest_digest) not in (0, 32):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "summary must be 32 bytes and newest_digest 0 or 32",
            )
        if len(request.offer_charters) > 64 or len(request.offer_approvals) > 4096:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "offer too large")
        offer = (
            tuple(bytes(c) for c in request.offer_charters),
            tuple(envelope_from_pb(e) for e in request.offer_approvals),
        )
        try:
            r, got = await self.node.get_governance(request.version, request.summary, offer)
        except PausenetError as exc:  # our own store failed: not the peer's fault
            log.error("governance exchange from %s failed here: %s", member, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the node could not store the items")
        if got.refused:
            log.debug("governance items from %s refused: %s", member, got.refused[:3])
        if r.in_sync:
            return gossip_pb2.GovernanceReply(in_sync=True, version=r.version)
        return gossip_pb2.GovernanceReply(
            charters=list(r.charters),
            approvals=[envelope_to_pb(e) for e in r.approvals],
            more=r.more,
            version=r.version,
        )
