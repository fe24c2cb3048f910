"""The Admin service: the member's own votes and attestations, for holders of the admin token."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable

import grpc

from pausenet.core.governance import MAX_CHARTER_BYTES
from pausenet.core.payload import CodecError, compliance_state_from_pb, decision_from_pb
from pausenet.core.records import SignedStatement
from pausenet.errors import PausenetError, SigningRefusedError
from pausenet.node.rpc.api import NodeApi
from pausenet.node.wire import envelope_from_pb, envelope_to_pb
from pausenet.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminServicer"]

log = logging.getLogger("pausenet.grpc")


class AdminServicer(admin_pb2_grpc.AdminServicer):
    def __init__(self, node: NodeApi) -> None:
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
                f" token from {self.node.admin_token_file}",
            )

    async def _run(
        self, context: grpc.aio.ServicerContext, coro: Awaitable[SignedStatement]
    ) -> admin_pb2.IssueReply:
        try:
            st = await coro
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
        decision = decision_from_pb(request.decision)
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
        state = compliance_state_from_pb(request.state)
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

    async def Govern(
        self, request: admin_pb2.GovernRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.GovernReply:
        """A proposed charter version and/or approvals for the node to keep and gossip."""
        await self._authorize(context)
        if len(request.charter) > MAX_CHARTER_BYTES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the charter is {len(request.charter)} bytes, limit {MAX_CHARTER_BYTES}",
            )
        if len(request.approvals) > 256:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "at most 256 approvals a call")
        try:
            envs = tuple(envelope_from_pb(e) for e in request.approvals)
        except CodecError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"an approval: {exc}")
        try:
            r = await self.node.govern(request.charter, envs, request.approve)
        except PausenetError as exc:
            log.error("admin call failed: %s", exc)
            await context.abort(grpc.StatusCode.INTERNAL, str(exc))
        return admin_pb2.GovernReply(
            version=r.version,
            digest=r.digest,
            refused=list(r.refused),
            status=r.status,
            approval=envelope_to_pb(r.approval) if r.approval is not None else None,
        )
