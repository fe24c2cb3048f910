"""A byzantine gossip peer for tests: a member's node gone bad, or a stranger, on the real client.

The attacker holds a member key (so it can pass the members-only handshake, docs/protocol.md
§12.5) and uses it to push whatever it likes through `Exchange`: its own validly signed log, and
crafted items that no honest node ever sends (DESIGN.md §6). Its honest face is the node's own
gossip client (`GrpcTransport`); its crafted calls go through the generated stub, on a channel
that lets it send more than the charter allows, with a session it obtained exactly as a node does.

    attacker = Attacker(charter, key_of_lab_d, "lab-d")
    await attacker.push(node.address, attacker.sign(pause(1)))          # a valid vote
    out = await attacker.exchange(node.address, statements=[attacker.forged("lab-a", pause(1))])
    assert out.code is grpc.StatusCode.OK                               # taken, and rejected

The item builders are pure: they return envelopes and never touch the network.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import grpc

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, Signature, sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import encode_statement
from pausenet.core.records import STATEMENT_TYPE, Body, SignedHeartbeat, SignedStatement
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.node.gossip import PeerError
from pausenet.node.messages import Digest, Items
from pausenet.node.peerauth import sign_auth
from pausenet.node.rpc import GrpcTransport
from pausenet.node.wire import envelope_to_pb, items_from_pb, items_to_pb
from pausenet.v1 import gossip_pb2, gossip_pb2_grpc

__all__ = ["Attacker", "Outcome", "wall_ms"]

SESSION_KEY = "pausenet-session"
CALL_TIMEOUT_S = 10.0
# The attacker's own channel: it sends far more than any charter allows, so the receiver's
# limits (not the sender's) are what is tested.
_BIG = 256 << 20
_RAW_OPTIONS = [
    ("grpc.max_send_message_length", _BIG),
    ("grpc.max_receive_message_length", _BIG),
    ("grpc.enable_retries", 0),
]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Outcome:
    """How a call ended: OK (with the peer's reply) or the gRPC status the peer refused with."""

    code: grpc.StatusCode
    details: str = ""
    reply: Items | None = None

    @property
    def ok(self) -> bool:
        return self.code is grpc.StatusCode.OK

    @classmethod
    def failed(cls, exc: grpc.aio.AioRpcError) -> Outcome:
        return cls(exc.code(), exc.details() or "")


class Attacker:
    """A member (or would-be member) that misbehaves on the gossip port of honest nodes.

    It keeps its own log and heartbeat counter so it can also behave: `sign` extends its log
    validly, `heartbeat` commits to its head. Everything else builds what an honest node never
    signs or never sends.
    """

    def __init__(
        self,
        charter: Charter,
        key: SigningKey,
        member: str,
        *,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.charter = charter
        self.key = key
        self.member = member
        self.clock = clock
        self.transport = GrpcTransport(charter, key, member, clock)  # the real gossip client
        self.log: list[SignedStatement] = []
        self.counter = 0
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._sessions: dict[str, str] = {}

    async def close(self) -> None:
        await self.transport.close()
        chans, self._channels = list(self._channels.values()), {}
        for ch in chans:
            await ch.close()

    async def __aenter__(self) -> Attacker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the handshake, step by step -------------------------------------------------------

    def stub(self, address: str) -> gossip_pb2_grpc.GossipStub:
        ch = self._channels.get(address)
        if ch is None:
            ch = self._channels[address] = grpc.aio.insecure_channel(address, options=_RAW_OPTIONS)
        return gossip_pb2_grpc.GossipStub(ch)

    def channel(self, address: str) -> grpc.aio.Channel:
        self.stub(address)
        return self._channels[address]

    async def challenge(self, address: str, client: str | None = None) -> gossip_pb2.ChallengeReply:
        """Ask for a challenge (raises AioRpcError when refused)."""
        return await self.stub(address).Challenge(
            gossip_pb2.ChallengeRequest(client=self.member if client is None else client),
            timeout=CALL_TIMEOUT_S,
        )

    def sign_auth(
        self, reply: gossip_pb2.ChallengeReply, address: str, *, keyid: str | None = None
    ) -> Envelope:
        """Answer a challenge from the node dialled at `address` as the real client does, with
        this attacker's key (and keyid)."""
        env = sign_auth(
            self.key,
            self.charter,
            self.member,
            reply.server,
            reply.challenge,
            self.clock(),
            address,
        )
        if keyid is None:
            return env
        return Envelope(env.payload_type, env.payload, (Signature(keyid, env.signatures[0].sig),))

    async def authenticate(self, address: str, auth: Envelope) -> gossip_pb2.AuthReply:
        return await self.stub(address).Authenticate(
            gossip_pb2.AuthRequest(auth=envelope_to_pb(auth)), timeout=CALL_TIMEOUT_S
        )

    async def session(self, address: str) -> tuple[tuple[str, str], ...]:
        """Metadata carrying a valid session at `address` (handshake on first use)."""
        token = self._sessions.get(address)
        if token is None:
            auth = self.sign_auth(await self.challenge(address), address)
            token = self._sessions[address] = (await self.authenticate(address, auth)).session
        return ((SESSION_KEY, token),)

    def use_session(self, address: str, token: str) -> None:
        """Send `token` as the session at `address` from now on (say, one it made up)."""
        self._sessions[address] = token

    # -- calls -------------------------------------------------------------------------------

    async def push(
        self,
        address: str,
        *statements: SignedStatement | Envelope,
        heartbeats: Iterable[SignedHeartbeat | Envelope] = (),
    ) -> Outcome:
        """Send items the way an honest node does: through `GrpcTransport` and its session."""
        items = Items(tuple(_env(s) for s in statements), tuple(_env(h) for h in heartbeats))
        try:
            got = await self.transport.peer(address).exchange(
                Digest(()), items, timeout=CALL_TIMEOUT_S
            )
        except PeerError as exc:
            cause = exc.__cause__
            if isinstance(cause, grpc.aio.AioRpcError):
                return Outcome.failed(cause)
            return Outcome(grpc.StatusCode.UNKNOWN, str(exc))
        return Outcome(grpc.StatusCode.OK, reply=got.items)

    async def exchange(
        self,
        address: str,
        *,
        statements: Sequence[SignedStatement | Envelope] = (),
        heartbeats: Sequence[SignedHeartbeat | Envelope] = (),
        evidence: Sequence[tuple[Envelope, Envelope]] = (),
        digest: gossip_pb2.Digest | None = None,
        session: bool = True,
    ) -> Outcome:
        """One crafted Exchange call on the attacker's own channel."""
        items = Items(
            tuple(_env(s) for s in statements), tuple(_env(h) for h in heartbeats), tuple(evidence)
        )
        req = gossip_pb2.ExchangeRequest(
            digest=digest or gossip_pb2.Digest(), items=items_to_pb(items)
        )
        return await self.exchange_pb(address, req, session=session)

    async def exchange_pb(
        self, address: str, request: gossip_pb2.ExchangeRequest, *, session: bool = True
    ) -> Outcome:
        md = await self.session(address) if session else ()
        try:
            r = await self.stub(address).Exchange(request, timeout=CALL_TIMEOUT_S, metadata=md)
        except grpc.aio.AioRpcError as exc:
            return Outcome.failed(exc)
        return Outcome(grpc.StatusCode.OK, reply=items_from_pb(r.items, max_items=1 << 30))

    async def exchange_bytes(self, address: str, request: bytes) -> Outcome:
        """Exchange with request bytes that need not be protobuf at all."""
        md = await self.session(address)
        raw = self.channel(address).unary_unary(
            "/pausenet.v1.Gossip/Exchange",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )
        try:
            await raw(request, timeout=CALL_TIMEOUT_S, metadata=md)
        except grpc.aio.AioRpcError as exc:
            return Outcome.failed(exc)
        return Outcome(grpc.StatusCode.OK)

    async def get_digest(self, address: str, *, session: bool = True) -> Outcome:
        md = await self.session(address) if session else ()
        try:
            await self.stub(address).GetDigest(
                gossip_pb2.DigestRequest(summary_hash=bytes(32)),
                timeout=CALL_TIMEOUT_S,
                metadata=md,
            )
        except grpc.aio.AioRpcError as exc:
            return Outcome.failed(exc)
        return Outcome(grpc.StatusCode.OK)

    async def flood(
        self,
        address: str,
        calls: int,
        *,
        concurrency: int = 32,
        make: Callable[[int], gossip_pb2.ExchangeRequest],
    ) -> Counter[grpc.StatusCode]:
        """`calls` Exchange calls as fast as `concurrency` allows; how each one ended."""
        await self.session(address)
        codes: Counter[grpc.StatusCode] = Counter()
        todo = iter(range(calls))

        async def worker() -> None:
            for i in todo:
                codes[(await self.exchange_pb(address, make(i))).code] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return codes

    # -- its own log, validly ---------------------------------------------------------------

    def sign(self, body: Body, *, issued_at_ms: int | None = None) -> SignedStatement:
        """The next statement of the attacker's log, validly linked; the log grows by it."""
        st = self.statement(body, issued_at_ms=issued_at_ms)
        self.log.append(st)
        return st

    def statement(
        self,
        body: Body,
        *,
        seq: int | None = None,
        prev_hash: bytes | None = None,
        issued_at_ms: int | None = None,
        charter: Charter | None = None,
        member: str | None = None,
    ) -> SignedStatement:
        """A statement signed with the attacker's key (keyid = its member id); by default the
        log's next one, without adding it to the log. Any field can be set to a lie."""
        head = self.log[-1] if self.log else None
        if seq is None:
            seq = head.seq + 1 if head else 1
        if prev_hash is None:
            prev = self.log[seq - 2] if 1 < seq <= len(self.log) + 1 else None
            prev_hash = prev.hash if prev else (os.urandom(32) if seq > 1 else b"")
        if issued_at_ms is None:
            issued_at_ms = max(self.clock(), head.statement.issued_at_ms if head else 0)
        st = build_statement(
            charter or self.charter, member or self.member, seq, prev_hash, issued_at_ms, body
        )
        return sign_statement(self.key, st)

    def heartbeat(
        self,
        *,
        counter: int | None = None,
        head_seq: int | None = None,
        head_hash: bytes | None = None,
        issued_at_ms: int | None = None,
        charter: Charter | None = None,
    ) -> SignedHeartbeat:
        """A heartbeat committing to the log's head (by default), with the next counter."""
        if counter is None:
            self.counter += 1
            counter = self.counter
        head = self.log[-1] if self.log else None
        return sign_heartbeat(
            self.key,
            charter or self.charter,
            self.member,
            head_seq=(head.seq if head else 0) if head_seq is None else head_seq,
            head_hash=(head.hash if head else b"") if head_hash is None else head_hash,
            counter=counter,
            issued_at_ms=self.clock() if issued_at_ms is None else issued_at_ms,
        )

    # -- what honest nodes never send --------------------------------------------------------

    def forged(self, member: str, body: Body, *, seq: int = 1, prev_hash: bytes = b"") -> Envelope:
        """A statement in `member`'s name with a signature that is not theirs (random bytes)."""
        st = build_statement(self.charter, member, seq, prev_hash, self.clock(), body)
        return Envelope(STATEMENT_TYPE, encode_statement(st), (Signature(member, os.urandom(64)),))

    def signed_payload(
        self, payload: bytes, payload_type: str = STATEMENT_TYPE, *, keyid: str | None = None
    ) -> Envelope:
        """Any bytes, validly signed by the attacker under any payload type and keyid."""
        env = sign_envelope(self.key, self.member, payload_type, payload)
        if keyid is None:
            return env
        return Envelope(payload_type, payload, (Signature(keyid, env.signatures[0].sig),))

    @staticmethod
    def relabeled(
        env: Envelope,
        *,
        payload_type: str | None = None,
        keyid: str | None = None,
        sig: bytes | None = None,
    ) -> Envelope:
        """The same payload with its type, keyid or signature swapped (nothing re-signed)."""
        s = env.signatures[0]
        return Envelope(
            payload_type or env.payload_type,
            env.payload,
            (Signature(s.keyid if keyid is None else keyid, s.sig if sig is None else sig),),
        )

    @staticmethod
    def with_signatures(env: Envelope, sigs: Sequence[Signature]) -> Envelope:
        return Envelope(env.payload_type, env.payload, tuple(sigs))


def _env(x: SignedStatement | SignedHeartbeat | Envelope) -> Envelope:
    return x if isinstance(x, Envelope) else x.envelope
