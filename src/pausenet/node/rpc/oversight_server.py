"""The Oversight service: anyone may ask for the view, a signed answer, a log or the charter.

It is open to the world, so it is bounded (`bounds`): calls per client and in total, paced per
client, watch streams per client and in total. The view is evaluated and serialized at most once per change of
the facts per second (`ViewReplies`); a signed answer costs one signature on top.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import anyio
import grpc

from pausenet.core.answer import MAX_NONCE, MIN_NONCE
from pausenet.core.dsse import Envelope
from pausenet.core.proof import complete_proof
from pausenet.core.view import View
from pausenet.node.replica import envelope_size
from pausenet.node.rpc.api import NodeApi
from pausenet.node.rpc.bounds import CallSlots, Pacer, Refused, ServerLimits, Slots
from pausenet.node.wire import envelope_to_pb, view_to_pb
from pausenet.v1 import gossip_pb2, oversight_pb2, oversight_pb2_grpc

__all__ = ["OversightServicer", "ViewReplies"]

log = logging.getLogger("pausenet.grpc")

_WATCH_TICK_S = 1.0


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


class ViewReplies:
    """The current view and its serialized ViewReply (unsigned), made at most once per
    (facts version, clock second).

    The view in a reply is the one evaluated at the first call of its second, and says so in its
    `now_ms`; a signed answer is made for that same view, so the reply and the answer agree and
    `pausenet verify` checks both at that time."""

    def __init__(self, node: NodeApi) -> None:
        self.node = node
        self._key: tuple[int, int] | None = None
        self._view: View | None = None
        self._bytes = b""
        # each proof envelope of the last reply, serialized as the reply's proof field
        self._proof: dict[bytes, tuple[Envelope, bytes]] = {}

    def current(self) -> tuple[View, bytes]:
        key = (self.node.facts_version, self.node.clock() // 1000)
        if key != self._key or self._view is None:
            view = self.node.view()
            self._key, self._view, self._bytes = key, view, self._serialize(view)
        return self._view, self._bytes

    def _serialize(self, view: View) -> bytes:
        """The ViewReply's bytes. The proof is most of them and mostly what the last reply
        held: each envelope is serialized once, as its own `proof` field, and appended to the
        rest of the reply (a serialized message followed by another is their merge, and a
        repeated field's entries keep their order)."""
        proof = view.proof if view.proof is not None else complete_proof(view)
        rest = view_to_pb(
            replace(view, proof=replace(proof, envelopes=())),
            answered_by=self.node.member,
            signed_answer=None,
        ).SerializeToString()
        kept: dict[bytes, tuple[Envelope, bytes]] = {}
        parts = [rest]
        for env in proof.envelopes:
            h = env.payload_hash
            held = self._proof.get(h)
            if held is None or not (held[0] is env or held[0] == env):
                one = oversight_pb2.ViewReply(proof=[envelope_to_pb(env)])
                held = (env, one.SerializeToString())
            kept[h] = held
            parts.append(held[1])
        self._proof = kept
        return b"".join(parts)


# Bytes a GetLogReply adds around its statements (head_seq, next_seq, more): a few varints.
_LOG_REPLY_OVERHEAD = 64


def log_page(node: NodeApi, request: oversight_pb2.GetLogRequest) -> oversight_pb2.GetLogReply:
    """One page of a member's log from `from_seq`: at most `limit` statements and `max_bytes`
    bytes (each capped by the charter), and always at least one statement if any is left, so
    that paging makes progress. `next_seq`/`more` say where the next page starts."""
    limits = node.charter.limits
    cap = limits.max_items_per_message
    limit = min(request.limit or cap, cap)
    byte_cap = limits.max_message_bytes // 2
    budget = min(request.max_bytes or byte_cap, byte_cap) - _LOG_REPLY_OVERHEAD
    start = max(request.from_seq or 1, 1)
    head, _ = node.replica.head(request.member)
    out: list[Envelope] = []
    used = 0
    for st in node.replica.log(request.member, start, limit):
        size = envelope_size(st.envelope)
        if out and used + size > budget:
            break
        out.append(st.envelope)
        used += size
    next_seq = start + len(out)
    return oversight_pb2.GetLogReply(
        statements=[envelope_to_pb(e) for e in out],
        head_seq=head,
        next_seq=next_seq,
        more=next_seq <= head,
    )


class OversightServicer(oversight_pb2_grpc.OversightServicer):
    """Replies are returned as serialized bytes where they come from the cache (the server's
    serializer passes bytes through)."""

    def __init__(self, node: NodeApi, limits: ServerLimits) -> None:
        self.node = node
        self.replies = ViewReplies(node)
        self.calls = CallSlots(
            "oversight",
            limits.oversight_calls_per_client,
            limits.oversight_calls_total,
            limits.oversight_calls_running,
        )
        self.pace = Pacer(
            "oversight",
            limits.oversight_rate_per_client,
            limits.oversight_burst_per_client,
            limits.oversight_max_wait_s,
        )
        self.watches = Slots(
            "watch streams", limits.watch_streams_per_client, limits.watch_streams_total
        )

    @asynccontextmanager
    async def _slot(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        """In flight until the call ends, whatever ends it; paced; refused over the bounds."""
        client = context.peer() or ""
        try:
            wait = self.pace.reserve(client, anyio.current_time())
            end = self.calls.admit(client)
        except Refused as exc:
            self.node.guard.refused["oversight-busy"] += 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        context.add_done_callback(lambda _context: end())
        if context.done():  # ended before the callback was in place: it would never run
            end()
        if wait:
            await anyio.sleep(wait)
        async with self.calls.running():
            yield

    async def GetView(
        self, request: oversight_pb2.GetViewRequest, context: grpc.aio.ServicerContext
    ) -> bytes:
        nonce = request.nonce
        if nonce and not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"nonce must be {MIN_NONCE} to {MAX_NONCE} bytes, got {len(nonce)}",
            )
        async with self._slot(context):
            view, data = self.replies.current()
            if nonce:
                # A serialized message followed by another is their merge: the cached reply
                # plus its signed_answer field, without serializing the view again.
                answer = envelope_to_pb(self.node.sign_answer(nonce, view))
                data += oversight_pb2.ViewReply(signed_answer=answer).SerializeToString()
            cap = self.node.charter.limits.max_message_bytes
            if len(data) > cap:
                # The bounded proof keeps this from happening (members x epochs, never the
                # length of a log); should a charter's limits allow it anyway, say so plainly.
                self.node.guard.refused["view-too-large"] += 1
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"the view is {len(data)} bytes, over the charter's max_message_bytes"
                    f" ({cap}); fetch the logs with GetLog",
                )
            return data
        raise AssertionError("unreachable")  # _slot aborts or yields

    async def WatchView(
        self, request: oversight_pb2.WatchViewRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        client = context.peer() or ""
        try:
            self.watches.take(client)
        except Refused as exc:
            self.node.guard.refused["watch-limit"] += 1
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        try:
            changes = self.node.changes
            seen = changes.version
            last: tuple[object, ...] | None = None
            while not self.node.stopping:
                view, data = self.replies.current()
                fp = _fingerprint(view)
                if fp != last:
                    last = fp
                    if len(data) > self.node.charter.limits.max_message_bytes:
                        await context.abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"the view is {len(data)} bytes, over the charter's"
                            " max_message_bytes; fetch the logs with GetLog",
                        )
                    yield data
                # the view changes with time too (freshness): look again at least every tick
                with anyio.move_on_after(_WATCH_TICK_S):
                    seen = await changes.wait(seen)
        finally:
            self.watches.give(client)

    async def GetLog(
        self, request: oversight_pb2.GetLogRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.GetLogReply:
        charter = self.node.charter
        if charter.member(request.member) is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"{request.member[:64]!r} is not a member of the charter"
            )
        async with self._slot(context):
            return log_page(self.node, request)
        raise AssertionError("unreachable")

    async def GetEvidence(
        self, request: oversight_pb2.GetEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.GetEvidenceReply:
        async with self._slot(context):
            return oversight_pb2.GetEvidenceReply(
                evidence=[
                    gossip_pb2.EvidencePair(
                        first=envelope_to_pb(e.first), second=envelope_to_pb(e.second)
                    )
                    for e in self.node.replica.evidence()
                ]
            )
        raise AssertionError("unreachable")

    async def GetCharter(
        self, request: oversight_pb2.GetCharterRequest, context: grpc.aio.ServicerContext
    ) -> oversight_pb2.GetCharterReply:
        versions, approvals = self.node.chain()
        c = versions[-1] if versions else self.node.charter
        # the chain from the pin, within the message limit (a verifier that gets less than the
        # whole chain sees the newest version missing and pins a later one, §15.7)
        budget = c.limits.max_message_bytes * 8 // 10 - 2 * len(c.canonical_bytes)
        chain: list[bytes] = []
        for v in versions:
            budget -= len(v.canonical_bytes) + 8
            if budget < 0:
                break
            chain.append(v.canonical_bytes)
        envs = []
        for env in approvals:
            budget -= len(env.payload) + 200
            if budget < 0:
                break
            envs.append(envelope_to_pb(env))
        return oversight_pb2.GetCharterReply(
            canonical=c.canonical_bytes, digest=c.digest, chain=chain, chain_approvals=envs
        )
