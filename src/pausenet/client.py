"""Clients for a node's Oversight and Admin services, for people and scripts.

gRPC errors become `NodeError` with one line that says what failed and, where there is one, the
fix; a refusal by the node (wrong epoch, unknown trigger) carries the node's own reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from pausenet.core.dsse import Envelope
from pausenet.core.records import ComplianceState, Decision
from pausenet.errors import NodeError
from pausenet.node.rpc import open_channel
from pausenet.node.tls import TlsFiles
from pausenet.node.wire import envelope_from_pb
from pausenet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    oversight_pb2,
    oversight_pb2_grpc,
    statement_pb2,
)

__all__ = ["AdminClient", "OversightClient", "read_admin_token"]

_MAX_REPLY = 64 * 1024 * 1024


class _Client:
    def __init__(self, address: str, timeout: float, tls: TlsFiles | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.channel = open_channel(address, tls, _MAX_REPLY)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.channel.close()

    def _error(self, exc: grpc.aio.AioRpcError, what: str) -> NodeError:
        code = exc.code()
        details = (exc.details() or "").splitlines()[0] if exc.details() else ""
        if code == grpc.StatusCode.UNAVAILABLE:
            return NodeError(f"{what}: node at {self.address} is unreachable; is it running?")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return NodeError(f"{what}: node at {self.address} did not answer in {self.timeout:g}s")
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            return NodeError(f"{what} refused: {details}")
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return NodeError(
                f"{what}: {self.address} does not offer this service (the admin API listens on"
                " its own address: see admin_listen in the node config)"
            )
        name = code.name if code is not None else "UNKNOWN"
        return NodeError(f"{what} failed ({name}): {details}")


class OversightClient(_Client):
    def __init__(self, address: str, timeout: float = 5.0, tls: TlsFiles | None = None) -> None:
        super().__init__(address, timeout, tls)
        self.stub = oversight_pb2_grpc.OversightStub(self.channel)

    async def get_view(self, nonce: bytes = b"") -> oversight_pb2.ViewReply:
        try:
            r: oversight_pb2.ViewReply = await self.stub.GetView(
                oversight_pb2.GetViewRequest(nonce=nonce), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "view") from exc
        return r

    async def watch(self) -> AsyncIterator[oversight_pb2.ViewReply]:
        call = self.stub.WatchView(oversight_pb2.WatchViewRequest())
        try:
            async for reply in call:
                yield reply
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "watch") from exc
        finally:
            call.cancel()

    async def get_log(self, member: str, from_seq: int = 1, limit: int = 0) -> list[Envelope]:
        try:
            r = await self.stub.GetLog(
                oversight_pb2.GetLogRequest(member=member, from_seq=from_seq, limit=limit),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "log") from exc
        return [envelope_from_pb(e) for e in r.statements]

    async def get_charter(self) -> tuple[bytes, bytes]:
        try:
            r = await self.stub.GetCharter(oversight_pb2.GetCharterRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "charter") from exc
        return bytes(r.canonical), bytes(r.digest)


class AdminClient(_Client):
    def __init__(
        self, address: str, token: str, timeout: float = 10.0, tls: TlsFiles | None = None
    ) -> None:
        super().__init__(address, timeout, tls)
        self.stub = admin_pb2_grpc.AdminStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def _call(self, method: Any, request: Any, what: str) -> admin_pb2.IssueReply:
        try:
            r: admin_pb2.IssueReply = await method(
                request, timeout=self.timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise NodeError(f"{what} refused: {exc.details()}") from exc
            raise self._error(exc, what) from exc
        return r

    async def get_stats(self) -> admin_pb2.StatsReply:
        try:
            r: admin_pb2.StatsReply = await self.stub.GetStats(
                admin_pb2.StatsRequest(), timeout=self.timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise NodeError(f"stats refused: {exc.details()}") from exc
            raise self._error(exc, "stats") from exc
        return r

    async def cast_vote(
        self, decision: Decision, *, epoch: int = 0, triggers: tuple[str, ...] = (), note: str = ""
    ) -> admin_pb2.IssueReply:
        d = (
            statement_pb2.DECISION_PAUSE
            if decision is Decision.PAUSE
            else statement_pb2.DECISION_LIFT
        )
        req = admin_pb2.CastVoteRequest(decision=d, epoch=epoch, triggers=list(triggers), note=note)
        return await self._call(self.stub.CastVote, req, f"vote {decision.value}")

    async def attest_compliance(
        self, state: ComplianceState, *, epoch: int = 0, evidence_sha256: bytes = b""
    ) -> admin_pb2.IssueReply:
        s = (
            statement_pb2.COMPLIANCE_STATE_HALTED
            if state is ComplianceState.HALTED
            else statement_pb2.COMPLIANCE_STATE_NOT_HALTED
        )
        req = admin_pb2.AttestComplianceRequest(
            state=s, epoch=epoch, evidence_sha256=evidence_sha256
        )
        return await self._call(self.stub.AttestCompliance, req, "compliance attestation")

    async def attest_trigger(
        self, trigger_id: str, *, evidence_sha256: bytes = b"", note: str = "", epoch: int = 0
    ) -> admin_pb2.IssueReply:
        req = admin_pb2.AttestTriggerRequest(
            trigger_id=trigger_id, evidence_sha256=evidence_sha256, note=note, epoch=epoch
        )
        return await self._call(self.stub.AttestTrigger, req, "trigger attestation")


def read_admin_token(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise NodeError(
            f"{path}: admin token not found; it is created when the node first starts"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise NodeError(f"{path}: cannot read the admin token: {exc}") from exc
