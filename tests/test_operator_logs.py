"""What the operator is told at WARNING (issue 8 item 9): a banned member, once, with why;
refusals above a rate, summed per window; nothing below it."""

from __future__ import annotations

import logging

import pytest

from pausenet.node.limits import PeerGuard, RateLimit


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_ban_is_logged_once_with_the_member_and_the_reasons(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = PeerGuard({}, floor=-100, ban_s=30)
    with caplog.at_level(logging.WARNING, logger="pausenet.limits"):
        for _ in range(9):
            guard.judge("lab-d", {"bad-signature": 1, "gap": 1}, 0, 0.0)
        assert warnings(caplog) == []  # score 99 down: not yet
        guard.judge("lab-d", {"bad-signature": 1}, 0, 0.0)
        guard.judge("lab-d", {"superseded": 3}, 0, 1.0)  # while banned: costs nothing more
    assert warnings(caplog) == [
        "banned lab-d for 30s (ban 1): it sent invalid items: bad-signature 10, gap 9"
    ]
    assert guard.banned("lab-d", 1.0)


def test_refusals_above_the_rate_are_summed_once_per_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = PeerGuard(
        {"digest": RateLimit(rate_per_s=1, burst=1)}, report_every_s=60, report_rate_per_s=1
    )
    with caplog.at_level(logging.WARNING, logger="pausenet.limits"):
        guard.report_refusals(0.0)
        for _ in range(500):
            guard.admit("lab-d", "digest", 1.0)
        guard.refused["unauthenticated"] += 30
        guard.report_refusals(30.0)  # within the window: nothing yet
        guard.report_refusals(60.0)
        guard.report_refusals(61.0)
    assert warnings(caplog) == [
        "refused 529 call(s) in the last 60s: rate:digest 499, unauthenticated 30"
    ]


def test_refusals_below_the_rate_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    guard = PeerGuard({}, report_every_s=60, report_rate_per_s=1)
    with caplog.at_level(logging.WARNING, logger="pausenet.limits"):
        guard.report_refusals(0.0)
        guard.refused["unauthenticated"] += 59
        guard.report_refusals(60.0)
    assert warnings(caplog) == []
