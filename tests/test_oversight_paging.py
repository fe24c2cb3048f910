"""GetLog pages (docs/protocol.md §13): a log of any length comes in pages under the limits."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from helpers import T0, attest, log_for, make_federation

from pausenet.core.charter import Charter
from pausenet.core.records import SignedStatement
from pausenet.node.replica import envelope_size
from pausenet.node.rpc.oversight_server import log_page
from pausenet.node.wire import envelope_from_pb
from pausenet.v1 import oversight_pb2

CHARTER, KEYS = make_federation(3, 1)
LOG = log_for(CHARTER, KEYS["lab-a"], "lab-a", [attest(note="x" * 500) for _ in range(50)], T0)


@dataclass
class _Replica:
    logs: dict[str, list[SignedStatement]] = field(default_factory=dict)

    def log(
        self, member: str, from_seq: int = 1, limit: int | None = None
    ) -> list[SignedStatement]:
        log = self.logs.get(member, [])
        start = max(from_seq, 1) - 1
        return log[start : start + limit] if limit is not None else log[start:]

    def head(self, member: str) -> tuple[int, bytes]:
        log = self.logs.get(member, [])
        return (len(log), log[-1].hash) if log else (0, b"")


@dataclass
class _Node:
    charter: Charter
    replica: _Replica


NODE = _Node(CHARTER, _Replica({"lab-a": LOG}))


def _pages(limit: int = 0, max_bytes: int = 0) -> list[oversight_pb2.GetLogReply]:
    out, seq = [], 1
    while True:
        req = oversight_pb2.GetLogRequest(
            member="lab-a", from_seq=seq, limit=limit, max_bytes=max_bytes
        )
        page = log_page(NODE, req)  # a fake with the two reads it uses
        out.append(page)
        if not page.more:
            return out
        assert page.next_seq == seq + len(page.statements)
        seq = page.next_seq


@pytest.mark.parametrize(("limit", "max_bytes"), [(7, 0), (0, 4000), (3, 100_000), (0, 1)])
def test_paging_fetches_the_whole_log_in_pages_within_the_bounds(
    limit: int, max_bytes: int
) -> None:
    pages = _pages(limit, max_bytes)
    got = [e.payload for p in pages for e in p.statements]
    assert got == [s.envelope.payload for s in LOG]
    assert all(p.head_seq == 50 for p in pages)
    for p in pages:
        assert p.statements  # always progress, even when one statement exceeds max_bytes
        if limit:
            assert len(p.statements) <= limit
        if max_bytes > 1000:
            assert sum(envelope_size(envelope_from_pb(e)) for e in p.statements) <= max_bytes
    assert pages[-1].next_seq == 51


def test_a_page_never_exceeds_half_the_message_limit_whatever_is_asked() -> None:
    big = log_for(
        CHARTER, KEYS["lab-b"], "lab-b", [attest(note="y" * 2000) for _ in range(1500)], T0
    )
    node = _Node(CHARTER, _Replica({"lab-b": big}))
    req = oversight_pb2.GetLogRequest(member="lab-b", limit=100_000, max_bytes=1 << 31)
    page = log_page(node, req)
    assert page.more
    assert len(page.statements) <= CHARTER.limits.max_items_per_message
    assert page.ByteSize() <= CHARTER.limits.max_message_bytes // 2


def test_past_the_head_a_page_is_empty_and_says_there_is_no_more() -> None:
    page = log_page(NODE, oversight_pb2.GetLogRequest(member="lab-a", from_seq=51))
    assert not page.statements
    assert not page.more
    assert page.next_seq == 51
