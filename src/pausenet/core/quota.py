"""The statement quota: how many statements a member may sign per hour (docs/protocol.md §5).

Statements are kept forever, so a member signing as fast as it can would grow every node's
store and every full log without bound. The charter's `rules.max_statements_per_hour` (default
`DEFAULT_MAX_STATEMENTS_PER_HOUR`, generous for honest use; heartbeats are not statements) bounds
it in fixed windows of one hour of `issued_at` (Unix ms // 3,600,000): a statement whose window
already holds that many of the member's statements at lower seqs is over quota. The rule reads
only the member's own log, so it is deterministic: the view's chain check rejects such a
statement (reason `quota`), a node's ingest refuses it, and a node refuses to sign one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # records needs the charter, which needs the default below
    from pausenet.core.records import SignedStatement

__all__ = [
    "DEFAULT_MAX_STATEMENTS_PER_HOUR",
    "WINDOW_MS",
    "in_window",
    "quota_detail",
    "window_end_ms",
    "window_of",
]

DEFAULT_MAX_STATEMENTS_PER_HOUR = 600
WINDOW_MS = 3_600_000


def window_of(issued_at_ms: int) -> int:
    """The fixed one-hour window a time falls in."""
    return issued_at_ms // WINDOW_MS


def window_end_ms(issued_at_ms: int) -> int:
    """When the window of a time ends: the first moment a new hour's quota applies."""
    return (window_of(issued_at_ms) + 1) * WINDOW_MS


def in_window(log: Sequence[SignedStatement], issued_at_ms: int) -> int:
    """How many statements of a log (in seq order, so in issued_at order: §5) fall in the window
    of `issued_at_ms` at or before it: what a statement appended at that time is counted
    against."""
    start = window_of(issued_at_ms) * WINDOW_MS
    lo = bisect_left(log, start, key=lambda s: s.statement.issued_at_ms)
    hi = bisect_left(log, issued_at_ms + 1, key=lambda s: s.statement.issued_at_ms, lo=lo)
    return hi - lo


def quota_detail(quota: int, issued_at_ms: int) -> str:
    """The one-line reason a statement is over quota."""
    end = window_end_ms(issued_at_ms)
    return (
        f"over the charter's max_statements_per_hour ({quota}): the member already signed"
        f" {quota} statements in the hour ending at {end} (Unix ms)"
    )
