"""The chain rule: how a statement links to the one before it in its member's log.

Statement 1 has an empty `prev_hash`. Statement n > 1 extends the log only where the member's
statement n-1 is held, its hash is n's `prev_hash`, and n is not issued earlier than n-1
(docs/protocol.md §5). The view, the replica's ingest and the store's append all ask
`link_problem`; what each does with a problem is its own business (the view lists it as a
rejection, ingest may find a fork in it, the store refuses the append).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from pausenet.core.records import SignedStatement, Statement
from pausenet.errors import Reason

__all__ = ["LinkProblem", "Predecessor", "link_problem"]


class Predecessor(NamedTuple):
    """What the rule needs of the held statement n-1: its hash and when it was issued."""

    hash: bytes
    issued_at_ms: int

    @classmethod
    def of(cls, signed: SignedStatement) -> Predecessor:
        return cls(signed.hash, signed.statement.issued_at_ms)


@dataclass(frozen=True)
class LinkProblem:
    """Why a statement does not extend its log: a rejection reason and a one-line detail."""

    reason: Reason
    detail: str


def link_problem(st: Statement, pred: Predecessor | None) -> LinkProblem | None:
    """None when `st` extends a log whose entry st.seq - 1 is `pred` (None: not held)."""
    if st.seq == 1:
        if st.prev_hash:
            return LinkProblem(Reason.INVALID, "prev_hash must be empty for seq 1")
        return None
    if pred is None:
        return LinkProblem(Reason.MISSING_PREDECESSOR, f"seq {st.seq - 1} is missing")
    if st.prev_hash != pred.hash:
        return LinkProblem(Reason.BROKEN_CHAIN, f"prev_hash does not match seq {st.seq - 1}'s hash")
    if st.issued_at_ms < pred.issued_at_ms:
        return LinkProblem(Reason.BROKEN_CHAIN, "issued earlier than its predecessor")
    return None
