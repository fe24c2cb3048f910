"""What the gRPC servers need from a node: the `NodeApi` protocol, declared beside its users.

The servicers see the node only through this protocol (`pausenet.node.node.Node` implements it),
so the adapter cannot reach into the node's internals, and a fake node can stand in for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.evidence import Evidence
from pausenet.core.records import ComplianceState, Decision, SignedStatement
from pausenet.core.view import View
from pausenet.node.concurrency import Changes
from pausenet.node.gossip import DigestReply, ExchangeReply
from pausenet.node.governance import GovernanceReport
from pausenet.node.governor import GovernanceReply, GovernReply
from pausenet.node.limits import PeerGuard
from pausenet.node.messages import Digest, Items
from pausenet.node.peerauth import Authenticator
from pausenet.node.replica import IngestReport

__all__ = ["NodeApi", "ReplicaReads"]


class ReplicaReads(Protocol):
    """The reads Oversight serves straight from the replica."""

    def log(
        self, member: str, from_seq: int = 1, limit: int | None = None
    ) -> list[SignedStatement]: ...

    def head(self, member: str) -> tuple[int, bytes]: ...

    def evidence(self) -> list[Evidence]: ...


class NodeApi(Protocol):
    # -- identity and shared state --
    @property
    def member(self) -> str: ...

    @property
    def charter(self) -> Charter: ...

    @property
    def clock(self) -> Callable[[], int]: ...

    @property
    def guard(self) -> PeerGuard: ...

    @property
    def authenticator(self) -> Authenticator: ...

    @property
    def replica(self) -> ReplicaReads: ...

    @property
    def stopping(self) -> bool: ...

    # -- gossip --
    def get_digest(
        self, summary_hash: bytes, level: int = 0, nodes: Sequence[int] = ()
    ) -> DigestReply:
        """Raises CodecError for a request no honest peer makes (docs/protocol.md §12.2)."""
        ...

    async def exchange(self, digest: Digest, items: Items) -> tuple[ExchangeReply, IngestReport]:
        """Ingest a peer's items and answer with what it lacks; runs to its end even if the
        caller is cancelled. Raises NotRunningError once the node is stopping."""
        ...

    # -- oversight --
    @property
    def facts_version(self) -> int:
        """Changes whenever the facts do: a view is a function of (facts, time)."""
        ...

    def view(self) -> View: ...

    def sign_answer(self, nonce: bytes, view: View) -> Envelope: ...

    @property
    def changes(self) -> Changes:
        """Bumped whenever the facts change (and once when the node starts stopping)."""
        ...

    # -- admin --
    @property
    def admin_token(self) -> str: ...

    @property
    def admin_token_file(self) -> Path: ...

    def stats(self) -> dict[str, int]: ...

    async def cast_vote(
        self, decision: Decision, *, epoch: int = 0, triggers: tuple[str, ...] = (), note: str = ""
    ) -> SignedStatement: ...

    async def attest_compliance(
        self, state: ComplianceState, *, epoch: int = 0, evidence_sha256: bytes = b""
    ) -> SignedStatement: ...

    async def attest_trigger(
        self, trigger_id: str, *, evidence_sha256: bytes = b"", note: str = "", epoch: int = 0
    ) -> SignedStatement: ...

    # -- charter versions (docs/protocol.md §15.7) --
    async def get_governance(
        self,
        version: int,
        summary: bytes,
        offer: tuple[tuple[bytes, ...], tuple[Envelope, ...]] = ((), ()),
    ) -> tuple[GovernanceReply, GovernanceReport]: ...

    async def govern(
        self, charter: bytes, approvals: tuple[Envelope, ...], approve: bool
    ) -> GovernReply: ...

    def chain(self) -> tuple[tuple[Charter, ...], tuple[Envelope, ...]]: ...
