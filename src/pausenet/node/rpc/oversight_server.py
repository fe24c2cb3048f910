"""The Oversight service: anyone may ask for the view, a signed answer, a log or the charter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import grpc

from pausenet.core.answer import MAX_NONCE, MIN_NONCE
from pausenet.core.view import View
from pausenet.node.rpc.api import NodeApi
from pausenet.node.wire import envelope_to_pb, view_to_pb
from pausenet.v1 import gossip_pb2, oversight_pb2, oversight_pb2_grpc

__all__ = ["OversightServicer"]

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


class OversightServicer(oversight_pb2_grpc.OversightServicer):
    def __init__(self, node: NodeApi) -> None:
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
        view = self.node.view()
        answer = self.node.sign_answer(nonce, view) if nonce else None
        return view_to_pb(view, answered_by=self.node.member, signed_answer=answer)

    async def WatchView(
        self, request: oversight_pb2.WatchViewRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[oversight_pb2.ViewReply]:
        changes = self.node.changes
        seen = changes.version
        last: tuple[object, ...] | None = None
        while not self.node.stopping:
            v = self.node.view()
            fp = _fingerprint(v)
            if fp != last:
                last = fp
                yield view_to_pb(v, answered_by=self.node.member, signed_answer=None)
            # the view changes with time too (freshness): look again at least every tick
            with anyio.move_on_after(_WATCH_TICK_S):
                seen = await changes.wait(seen)

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
