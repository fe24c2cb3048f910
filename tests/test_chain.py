"""The chain rule (pausenet.core.chain), and that the view, ingest and the store all follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import T0, attest, log_for, make_federation

from pausenet.core.chain import LinkProblem, Predecessor, link_problem
from pausenet.core.records import SignedStatement
from pausenet.core.signing import build_statement, sign_statement
from pausenet.core.view import evaluate
from pausenet.errors import Reason
from pausenet.node.messages import Items
from pausenet.node.replica import Replica
from pausenet.node.store import AppendOutcome, Store

CHARTER, KEYS = make_federation()
A = "lab-a"
LOG = log_for(CHARTER, KEYS[A], A, [attest(note="one"), attest(note="two")], start_ms=T0)


def _signed(seq: int, prev_hash: bytes, issued_at_ms: int) -> SignedStatement:
    st = build_statement(CHARTER, A, seq, prev_hash, issued_at_ms, attest(note="other"))
    return sign_statement(KEYS[A], st)


def test_seq_1_links_to_nothing() -> None:
    assert link_problem(LOG[0].statement, None) is None
    with_prev = _signed(1, b"\x01" * 32, T0).statement
    assert link_problem(with_prev, None) == LinkProblem(
        Reason.INVALID, "prev_hash must be empty for seq 1"
    )


def test_a_statement_links_to_its_held_predecessor() -> None:
    assert link_problem(LOG[1].statement, Predecessor.of(LOG[0])) is None
    same_time = _signed(2, LOG[0].hash, LOG[0].statement.issued_at_ms)
    assert link_problem(same_time.statement, Predecessor.of(LOG[0])) is None


@pytest.mark.parametrize(
    ("st", "pred", "reason", "detail"),
    [
        (LOG[1], None, Reason.MISSING_PREDECESSOR, "seq 1 is missing"),
        (
            _signed(2, b"\x02" * 32, T0 + 5),
            Predecessor.of(LOG[0]),
            Reason.BROKEN_CHAIN,
            "prev_hash does not match seq 1's hash",
        ),
        (
            _signed(2, LOG[0].hash, T0 - 1),
            Predecessor.of(LOG[0]),
            Reason.BROKEN_CHAIN,
            "issued earlier than its predecessor",
        ),
    ],
    ids=["missing", "wrong-prev-hash", "earlier"],
)
def test_link_problems(
    st: SignedStatement, pred: Predecessor | None, reason: Reason, detail: str
) -> None:
    assert link_problem(st.statement, pred) == LinkProblem(reason, detail)


async def test_view_ingest_and_store_refuse_a_back_dated_successor_alike(tmp_path: Path) -> None:
    """One rule, three callers: the same statement is refused by each, for the same reason."""
    earlier = _signed(2, LOG[0].hash, LOG[0].statement.issued_at_ms - 1)

    view = evaluate(CHARTER, [LOG[0], earlier], T0 + 10_000)
    assert [(r.reason, r.detail) for r in view.rejected] == [
        (Reason.BROKEN_CHAIN, "issued earlier than its predecessor")
    ]

    replica = Replica(CHARTER, clock=lambda: T0 + 10_000)
    report = await replica.ingest(Items(statements=(LOG[0].envelope, earlier.envelope)))
    assert (report.statements, dict(report.rejected)) == (1, {Reason.BROKEN_CHAIN: 1})

    async with await Store.open(tmp_path / "s.db", charter_digest=CHARTER.digest) as store:
        assert (await store.append_statement(LOG[0])).outcome is AppendOutcome.APPENDED
        result = await store.append_statement(earlier)
    assert result.outcome is AppendOutcome.BROKEN_CHAIN
    assert result.detail == "lab-a#2: issued earlier than its predecessor"


async def test_a_wrong_prev_hash_is_a_fork_at_ingest_and_a_broken_chain_in_the_view() -> None:
    other = _signed(2, b"\x03" * 32, T0 + 5)
    view = evaluate(CHARTER, [LOG[0], other], T0 + 10_000)
    assert [r.reason for r in view.rejected] == [Reason.BROKEN_CHAIN]
    assert [(e.member, e.seq) for e in view.evidence] == [(A, 1)]  # it commits seq 1 elsewhere

    replica = Replica(CHARTER, clock=lambda: T0 + 10_000)
    report = await replica.ingest(Items(statements=(LOG[0].envelope, other.envelope)))
    assert (report.statements, report.evidence, dict(report.rejected)) == (1, 1, {})
