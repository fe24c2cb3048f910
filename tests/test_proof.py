"""The bounded proof (core/proof.py): what it carries, and that a verifier evaluating it gets the
node's answer (docs/protocol.md §9.3)."""

from __future__ import annotations

from typing import Any

from helpers import T0, attest, heartbeat_for, key_for, log_for, make_federation, pause
from hypothesis import given
from hypothesis import strategies as st
from test_view_properties import PROPERTY, History, histories

from pausenet.core.records import Decision
from pausenet.core.view import View, evaluate, evaluate_envelopes

S = 1000


def _answer(v: View) -> dict[str, Any]:
    """What a verifier of a bounded proof must reproduce."""
    certs = {
        (e.epoch, d): c
        for e in v.epochs
        for d, c in ((Decision.PAUSE, e.pause), (Decision.LIFT, e.lift))
        if c is not None
    }
    return {
        "state": v.state,
        "epoch": v.epoch,
        "as_of": v.as_of_ms,
        "certified": (v.certified_state, v.certified_since_ms),
        "certificates": certs,
        "heads": [(m.id, m.head_seq, m.head_hash) for m in v.members],
        "status": [(m.id, m.fresh, m.synced, m.equivocator, m.compliance) for m in v.members],
    }


def _check_bounded(h: History, dropped: set[int]) -> None:
    items = [i for k, i in enumerate(h.items) if k not in dropped]
    full = evaluate(h.charter, items, h.now)
    proof = full.proof
    assert proof is not None
    assert {e.payload_hash for e in proof.envelopes} <= {i.hash for i in items}
    part = evaluate_envelopes(h.charter, proof.envelopes, h.now, segments=proof.segments)
    assert _answer(part) == _answer(full)
    assert part.elided == proof.elided
    # the proof of a proof is itself: a verifier can re-serve what it checked
    assert part.proof is not None
    assert set(part.proof.envelopes) == set(proof.envelopes)
    assert part.proof.segments == proof.segments


@PROPERTY
@given(h=histories(forks=True))
def test_a_bounded_proof_gives_the_nodes_answer(h: History) -> None:
    _check_bounded(h, set())


@PROPERTY
@given(h=histories(forks=True, max_events=20), data=st.data())
def test_a_bounded_proof_gives_the_nodes_answer_even_with_gaps(
    h: History, data: st.DataObject
) -> None:
    # Items missing from what the node holds: gaps in logs, statements that do not count.
    n = len(h.items)
    dropped = set(data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3))) if n else set()
    _check_bounded(h, dropped)


def test_the_proof_stays_bounded_however_long_a_log_grows() -> None:
    charter, keys = make_federation(3, 1)
    flood = log_for(
        charter,
        keys["lab-a"],
        "lab-a",
        [attest(note="x" * 100) for _ in range(300)] + [pause(1, "eval-threshold")],
        T0,
    )
    votes = log_for(charter, keys["lab-b"], "lab-b", [pause(1, "eval-threshold")], T0 + 500 * S)
    hbs = [
        heartbeat_for(charter, key_for(m), m, log, 1, T0 + 600 * S)
        for m, log in (("lab-a", flood), ("lab-b", votes))
    ]
    full = evaluate(charter, [*flood, *votes, *hbs], T0 + 601 * S)
    assert full.proof is not None
    # lab-a: its earliest attestation, its pause vote (also its head); lab-b: its vote; two
    # heartbeats
    assert len(full.proof.envelopes) == 5
    assert full.proof.elided == 299
    assert {e.payload_hash for e in full.proof.envelopes} >= {flood[-1].hash, flood[0].hash}
    assert flood[-1].hash in full.proof.segments
    part = evaluate_envelopes(
        charter, full.proof.envelopes, T0 + 601 * S, segments=full.proof.segments
    )
    assert _answer(part) == _answer(full)
    # Without its segment list the partial log does not link: the vote is not counted.
    bare = evaluate_envelopes(charter, full.proof.envelopes, T0 + 601 * S)
    assert bare.member("lab-a").head_seq == 1  # type: ignore[union-attr]
