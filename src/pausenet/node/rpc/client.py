"""The gossip client: `GrpcTransport`, the gRPC implementation of `pausenet.node.gossip.Transport`.

Protobuf stops here: replies are converted to domain objects by `pausenet.node.wire`, and gRPC
errors become `PeerError` at this boundary.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import CodecError
from pausenet.node.gossip import DigestReply, ExchangeReply, PeerError
from pausenet.node.governor import GovernanceReply
from pausenet.node.messages import ARITY, MAX_EXPAND, Digest, Items
from pausenet.node.peerauth import sign_auth
from pausenet.node.rpc.channels import SESSION_KEY, open_channel, rpc_error
from pausenet.node.tls import TlsFiles
from pausenet.node.wire import (
    digest_from_pb,
    digest_to_pb,
    envelope_from_pb,
    envelope_to_pb,
    items_from_pb,
    items_to_pb,
)
from pausenet.v1 import gossip_pb2, gossip_pb2_grpc

__all__ = ["GrpcTransport"]

_MAX_CHANNELS = 256
# what a session token may be to be sent back as a header value (nodes make 43 characters)
_MAX_TOKEN_CHARS = 512
_TOKEN_RE = re.compile(rf"[!-~]{{1,{_MAX_TOKEN_CHARS}}}")


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
        self._evicted: list[grpc.aio.Channel] = []  # closed by the next call, in its task

    def peer(self, address: str) -> _GrpcPeer:
        ch = self._channels.get(address)
        if ch is None:
            ch = open_channel(address, self.tls, self.charter.limits.max_message_bytes)
            self._channels[address] = ch
            while len(self._channels) > _MAX_CHANNELS:
                old_address, old = self._channels.popitem(last=False)
                self._sessions.pop(old_address, None)
                self._evicted.append(old)
        else:
            self._channels.move_to_end(address)
        return _GrpcPeer(self, gossip_pb2_grpc.GossipStub(ch), address)

    async def close_evicted(self) -> None:
        """Close channels evicted from the table: at the next call, not at shutdown, so a member
        that keeps changing its advertised address cannot pile up open connections."""
        while self._evicted:
            await self._evicted.pop().close()

    async def close(self) -> None:
        chans = [*self._channels.values(), *self._evicted]
        self._channels.clear()
        self._evicted.clear()
        self._sessions.clear()
        for ch in chans:
            await ch.close()


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
            # the address we dialled goes into the login: it is good only there (§12.5)
            auth = sign_auth(
                t.key, t.charter, t.member, ch.server, ch.challenge, t.clock(), self.address
            )
            reply = await self.stub.Authenticate(
                gossip_pb2.AuthRequest(auth=envelope_to_pb(auth)), timeout=timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise PeerError(f"authentication: {rpc_error(exc)}") from exc
        token = str(reply.session)
        if not _TOKEN_RE.fullmatch(token):
            # gRPC refuses to send such a header value with an error of its own internal type,
            # which would escape as a bug on every round instead of a failing peer backed off
            raise PeerError(
                f"peer at {self.address} gave a session token that is not 1 to"
                f" {_MAX_TOKEN_CHARS} printable ASCII characters"
            )
        t._sessions[self.address] = token
        return token

    async def _call(self, method: Any, request: Any, timeout: float) -> Any:
        await self.t.close_evicted()
        for attempt in (1, 2):
            token = await self._session(timeout)
            try:
                return await method(request, timeout=timeout, metadata=((SESSION_KEY, token),))
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and attempt == 1:
                    self.t._sessions.pop(self.address, None)  # expired or peer restarted
                    continue
                raise PeerError(rpc_error(exc)) from exc
        raise AssertionError("unreachable")

    async def get_digest(
        self, summary_hash: bytes, *, timeout: float, level: int = 0, nodes: Sequence[int] = ()
    ) -> DigestReply:
        req = gossip_pb2.DigestRequest(summary_hash=summary_hash, level=level, nodes=list(nodes))
        r = await self._call(self.stub.GetDigest, req, timeout)
        if r.in_sync:
            return DigestReply(True, None)
        if len(r.children) > ARITY * MAX_EXPAND:
            raise PeerError(f"bad digest: {len(r.children)} child hashes")
        try:
            digest = (
                digest_from_pb(r.digest, max_heads=len(self.charter.members))
                if r.HasField("digest")
                else None
            )
        except CodecError as exc:
            raise PeerError(f"bad digest: {exc}") from exc
        return DigestReply(False, digest, tuple(bytes(c) for c in r.children))

    async def exchange(self, digest: Digest, items: Items, *, timeout: float) -> ExchangeReply:
        req = gossip_pb2.ExchangeRequest(digest=digest_to_pb(digest), items=items_to_pb(items))
        r = await self._call(self.stub.Exchange, req, timeout)
        try:
            got = items_from_pb(r.items, max_items=self.charter.limits.max_items_per_message)
        except CodecError as exc:
            raise PeerError(f"bad reply: {exc}") from exc
        return ExchangeReply(got, r.more)

    async def get_governance(
        self,
        version: int,
        digest: bytes,
        summary: bytes,
        *,
        timeout: float,
        offer: tuple[tuple[bytes, ...], tuple[Envelope, ...]] = ((), ()),
    ) -> GovernanceReply:
        req = gossip_pb2.GovernanceRequest(
            version=version,
            newest_digest=digest,
            summary=summary,
            offer_charters=list(offer[0]),
            offer_approvals=[envelope_to_pb(e) for e in offer[1]],
        )
        r = await self._call(self.stub.GetGovernance, req, timeout)
        if r.in_sync:
            return GovernanceReply(True, version=r.version)
        try:
            approvals = tuple(envelope_from_pb(e) for e in r.approvals)
        except CodecError as exc:
            raise PeerError(f"bad governance reply: {exc}") from exc
        return GovernanceReply(
            False, tuple(bytes(c) for c in r.charters), approvals, r.more, r.version
        )
