"""The public API's bounds on their own: streams and calls per client and in total, pacing."""

from __future__ import annotations

import pytest

from pausenet.node.rpc.bounds import CallSlots, Pacer, Refused, Slots


def test_streams_are_bounded_per_client_and_in_total_and_given_back() -> None:
    slots = Slots("watch streams", per_client=2, total=3)
    slots.take("a")
    slots.take("a")
    with pytest.raises(Refused, match="too many watch streams from this client"):
        slots.take("a")
    slots.take("b")
    with pytest.raises(Refused, match="holds at most 3 watch streams"):
        slots.take("c")
    slots.give("a")
    slots.take("c")
    assert slots.open == 3


def test_calls_in_flight_are_bounded_per_client_and_in_total_until_they_end() -> None:
    calls = CallSlots("oversight", per_client=2, total=3, running=1)
    ends = [calls.admit("a"), calls.admit("a")]
    with pytest.raises(Refused, match="too many oversight calls in flight from this client"):
        calls.admit("a")
    ends.append(calls.admit("b"))
    with pytest.raises(Refused, match="busy with oversight calls"):
        calls.admit("c")
    ends[0]()
    ends[0]()  # ending twice counts once
    assert calls.in_flight == 2
    ends.append(calls.admit("a"))
    for end in ends:
        end()
    assert calls.in_flight == 0


def test_pacing_lets_a_burst_through_then_spaces_calls_and_refuses_a_long_wait() -> None:
    pace = Pacer("oversight", rate=10, burst=3, max_wait_s=0.5)
    assert [pace.reserve("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    waits = [pace.reserve("a", 0.0) for _ in range(5)]
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    with pytest.raises(Refused, match="10 per second per client"):
        pace.reserve("a", 0.0)
    assert pace.reserve("b", 0.0) == 0.0  # another client has its own turn
    assert pace.reserve("a", 10.0) == 0.0  # the bucket refilled


def test_pacing_remembers_a_bounded_number_of_clients() -> None:
    pace = Pacer("oversight", rate=1, burst=1, max_wait_s=100, max_clients=2)
    for c in ("a", "b", "c"):
        pace.reserve(c, 0.0)
    assert pace.reserve("a", 0.0) == 0.0  # forgotten: a full burst again
    assert pace.reserve("c", 0.0) == pytest.approx(1.0)
