"""Clients for a node's Oversight and Admin services, for people and scripts, and the checks
that let a client trust what a node sent no more than the charter allows.

gRPC errors become `NodeError` with one line that says what failed and, where there is one, the
fix; a refusal by the node (wrong epoch, unknown trigger) carries the node's own reason.

`check_view_reply` recomputes a node's answer from the envelopes it sent; `check_log` verifies
a member's log as a node sent it, statement by statement and link by link. Both return result
objects (true when everything checks) that list each problem in one line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc

from pausenet.core.answer import check_answer
from pausenet.core.chain import Predecessor, link_problem
from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.payload import decode_statement, pause_state_from_pb
from pausenet.core.records import ComplianceState, Decision, SignedStatement, Statement
from pausenet.core.verify import Rejection, verify_envelope
from pausenet.core.view import evaluate_envelopes
from pausenet.errors import CodecError, NodeError, Reason
from pausenet.node.rpc import open_channel
from pausenet.node.runfile import read_admin_token
from pausenet.node.tls import TlsFiles
from pausenet.node.wire import envelope_from_pb, envelope_to_pb
from pausenet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    oversight_pb2,
    oversight_pb2_grpc,
    statement_pb2,
)

__all__ = [
    "AdminClient",
    "LogCheck",
    "LogEntry",
    "LogPage",
    "OversightClient",
    "ReplyCheck",
    "check_log",
    "check_view_reply",
    "fetch_full_logs",
    "read_admin_token",
]

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


@dataclass(frozen=True)
class LogPage:
    """A page of a member's log: its statements from the seq asked for, the node's head seq,
    the seq the next page starts at, and whether there is one."""

    statements: tuple[Envelope, ...]
    head_seq: int
    next_seq: int
    more: bool


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

    async def get_log_page(
        self, member: str, from_seq: int = 1, limit: int = 0, max_bytes: int = 0
    ) -> LogPage:
        """One page of a member's log, and where the next one starts."""
        try:
            r = await self.stub.GetLog(
                oversight_pb2.GetLogRequest(
                    member=member, from_seq=from_seq, limit=limit, max_bytes=max_bytes
                ),
                timeout=self.timeout,
            )
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "log") from exc
        return LogPage(
            tuple(envelope_from_pb(e) for e in r.statements), r.head_seq, r.next_seq, r.more
        )

    async def get_charter(self) -> tuple[bytes, bytes]:
        try:
            r = await self.stub.GetCharter(oversight_pb2.GetCharterRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "charter") from exc
        return bytes(r.canonical), bytes(r.digest)

    async def get_chain(self) -> tuple[list[bytes], list[Envelope]]:
        """The node's chain: canonical bytes of each version in force from its pin (newest
        last) and the approvals that put them in force."""
        try:
            r = await self.stub.GetCharter(oversight_pb2.GetCharterRequest(), timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise self._error(exc, "charter") from exc
        return [bytes(c) for c in r.chain], [envelope_from_pb(e) for e in r.chain_approvals]


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

    async def govern(
        self, charter: bytes = b"", approvals: tuple[Envelope, ...] = (), *, approve: bool = False
    ) -> admin_pb2.GovernReply:
        """Hand the node a charter version (canonical bytes) and/or approvals to keep and
        gossip; with approve, the node also signs its member's approval of the charter."""
        req = admin_pb2.GovernRequest(
            charter=charter, approvals=[envelope_to_pb(e) for e in approvals], approve=approve
        )
        try:
            r: admin_pb2.GovernReply = await self.stub.Govern(
                req, timeout=self.timeout, metadata=self.metadata
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise NodeError(f"charter proposal refused: {exc.details()}") from exc
            raise self._error(exc, "charter proposal") from exc
        return r


# -- checking what a node sent ----------------------------------------------------------------


@dataclass(frozen=True)
class ReplyCheck:
    """Whether a node's view reply matches what the charter gives for its proof envelopes;
    true when it does."""

    charter_digest: str  # hex
    problems: tuple[str, ...]
    signed_by: str | None = None  # the member whose signed answer checked, if one was asked for

    def __bool__(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "charter_digest": self.charter_digest,
            "ok": not self.problems,
            "problems": list(self.problems),
            "signed_by": self.signed_by,
        }


def check_view_reply(
    charter: Charter, reply: oversight_pb2.ViewReply, nonce: bytes | None
) -> ReplyCheck:
    """Recompute the view from the reply's proof envelopes at the node's time and compare it
    with what the node says; with a nonce, also check the answer the node signed for it."""
    digest = charter.digest_hex
    if bytes(reply.charter_digest) != charter.digest:
        return ReplyCheck(
            digest,
            (f"the node runs under another charter ({bytes(reply.charter_digest).hex()[:16]}…)",),
        )
    proof = [envelope_from_pb(e) for e in reply.proof]
    counted = frozenset(bytes(h) for h in reply.proof_counted) or None
    local = evaluate_envelopes(charter, proof, reply.now_ms, counted=counted)
    problems: list[str] = []
    said = (
        pause_state_from_pb(reply.state),
        reply.epoch,
        reply.as_of_ms or None,
        pause_state_from_pb(reply.certified_state),
    )
    mine = (local.state.value, local.epoch, local.as_of_ms, local.certified_state.value)
    if said != mine:
        problems.append(
            f"the node says {said[0]} epoch {said[1]} as of {said[2]} (certified {said[3]}), but"
            f" its proof gives {mine[0]} epoch {mine[1]} as of {mine[2]} (certified {mine[3]})"
        )
    if local.rejected:
        problems.append(f"{len(local.rejected)} proof envelope(s) rejected: {local.rejected[0]}")
    signed_by = None
    if nonce is not None:
        if not reply.HasField("signed_answer"):
            problems.append("the node did not sign its answer")
        else:
            check = check_answer(charter, envelope_from_pb(reply.signed_answer), proof, nonce=nonce)
            problems.extend(check.problems)
            # a checked answer names the member whose signature it carries
            signed_by = check.answer.member if check and check.answer else None
    return ReplyCheck(digest, tuple(problems), signed_by)


@dataclass(frozen=True)
class LogEntry:
    """One envelope of a log as a node sent it: the statement it holds (None when it could not
    be read) and what is wrong with it ('' when nothing)."""

    envelope: Envelope
    hash: bytes
    statement: Statement | None
    problem: str = ""


@dataclass(frozen=True)
class LogCheck:
    """A member's log as a node sent it, entry by entry; true when no entry has a problem.
    `verified` says whether signatures and links were checked against a charter, or the
    statements were only decoded."""

    member: str
    verified: bool
    entries: tuple[LogEntry, ...]

    @property
    def problems(self) -> int:
        return sum(1 for e in self.entries if e.problem)

    def __bool__(self) -> bool:
        return not self.problems


def check_log(
    envelopes: Sequence[Envelope], member: str, charter: Charter | None, *, now_ms: int
) -> LogCheck:
    """Check consecutive statements of member's log (from any seq on). With a charter each
    envelope is verified and each statement must link to the one before it: the next seq, and
    prev_hash the hash of that statement. Without one they are only decoded."""
    entries: list[LogEntry] = []
    prev: Statement | None = None
    prev_hash = b""
    for env in envelopes:
        problem = ""
        st: Statement | None = None
        if charter is not None:
            got = verify_envelope(charter, env, now_ms=now_ms)
            if isinstance(got, SignedStatement):
                st = got.statement
            else:
                problem = str(got) if isinstance(got, Rejection) else "not a statement"
        else:
            try:
                st = decode_statement(env.payload)
            except CodecError as exc:
                problem = f"malformed: {exc}"
        h = env.payload_hash
        if st is None:
            entries.append(LogEntry(env, h, None, problem or "unreadable"))
            prev = None
            continue
        if st.member != member:
            problem = problem or f"a statement of {st.member}, not {member}"
        elif charter is not None and prev is not None and st.seq == prev.seq + 1:
            link = link_problem(st, Predecessor(prev_hash, prev.issued_at_ms))
            if link is not None and link.reason is Reason.BROKEN_CHAIN:
                if st.prev_hash != prev_hash:
                    problem = "broken chain: prev_hash is not the hash of the statement before"
                else:
                    problem = f"broken chain: {link.detail}"
        elif charter is not None and prev is not None:
            problem = f"seq {st.seq} after {prev.seq}"
        entries.append(LogEntry(env, h, st, problem))
        prev, prev_hash = st, h
    return LogCheck(member, charter is not None, tuple(entries))


async def fetch_full_logs(
    client: OversightClient, reply: oversight_pb2.ViewReply, *, page_bytes: int = 0
) -> list[Envelope]:
    """Every member's main log from seq 1 up to the head the reply names, paged with GetLog,
    plus the reply's proof envelopes (heartbeats, evidence, an equivocator's other branches):
    complete logs, to check the node's answer without trusting it for elided statements.
    Raises NodeError if the node's pages do not reach the heads it stated."""
    out: dict[bytes, Envelope] = {}
    for m in reply.members:
        seq = 1
        while seq <= m.head_seq:
            page = await client.get_log_page(m.id, seq, max_bytes=page_bytes)
            if not page.statements:
                break
            for env in page.statements[: m.head_seq - seq + 1]:
                out.setdefault(env.payload_hash, env)
            seq += len(page.statements)
            if not page.more:
                break
        if seq <= m.head_seq:
            raise NodeError(
                f"view --full: the node's log of {m.id} ends at seq {seq - 1}, below the head"
                f" {m.head_seq} it stated"
            )
    for e in reply.proof:
        env = envelope_from_pb(e)
        out.setdefault(env.payload_hash, env)
    return list(out.values())
