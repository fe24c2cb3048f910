"""Threat: kill -9 at any instant, on every node, while votes are cast (DESIGN.md §6;
docs/protocol.md §5, §12.3, §14).

Three node processes are killed KILLS times in all, at random moments, while statements are cast
through their Admin APIs (tests/killloop.py has the harness). Then, once they have converged:

- no (member, seq) has two different payloads anywhere (acknowledged, or held by any node);
- every acknowledged statement is held by every node, with the same payload;
- every log is a valid hash chain of statements that verify, every node holds the same logs,
  and no node holds evidence.

The loop runs to its counts within one generous timeout, so a slow machine takes longer but does
not fail. The soak with many more kills, and its figures, is `python bench/kill_soak.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from killloop import run_kill_loop

pytestmark = pytest.mark.slow

KILLS = 50  # about 15 s on an idle machine
MIN_ACKNOWLEDGED = 20  # so that "nothing acknowledged is lost" is about something
TIMEOUT_S = 600.0


async def test_kill_9_at_random_moments_on_every_node_loses_nothing_acknowledged_and_never_forks(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    outcome = await run_kill_loop(
        tmp_path, kills=KILLS, min_acknowledged=MIN_ACKNOWLEDGED, timeout_s=TIMEOUT_S
    )
    figures = outcome.figures
    for k, v in figures.items():
        record_property(k, v)
    print(f"\nkill loop: {figures}")
    assert outcome.tally.kills >= KILLS, figures
    assert len(outcome.tally.acks) >= MIN_ACKNOWLEDGED, figures
    assert not outcome.forks, f"two payloads for one seq: {outcome.forks}; {figures}"
    assert not outcome.lost, f"acknowledged but missing: {outcome.lost[:5]}; {figures}"
    assert not outcome.chains, f"{outcome.chains[:5]}; {figures}"
    assert not outcome.evidence, f"evidence of a fork held by {outcome.evidence}; {figures}"
    assert not outcome.differing_logs, f"logs differ: {outcome.differing_logs}; {figures}"
