"""The bounded proof (core/proof.py): what it carries, and that a verifier evaluating it gets the
node's answer (docs/protocol.md §9.3)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    T0,
    attest,
    federation_data,
    heartbeat_for,
    key_for,
    lift,
    log_for,
    make_federation,
    pause,
)
from hypothesis import given
from hypothesis import strategies as st
from test_view_properties import PROPERTY, History, histories

from pausenet.core.answer import ANSWER_TYPE, check_answer, decode_answer, sign_answer
from pausenet.core.bundle import check_bundle_answer, read_bundle, write_bundle
from pausenet.core.charter import Charter, parse_charter
from pausenet.core.dsse import sign_envelope
from pausenet.core.records import Decision, SignedStatement
from pausenet.core.verify import Verified
from pausenet.core.view import View, evaluate, evaluate_envelopes
from pausenet.errors import BundleError
from pausenet.v1 import oversight_pb2

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
    part = evaluate_envelopes(h.charter, proof.envelopes, h.now, counted=proof.counted)
    assert _answer(part) == _answer(full)
    assert part.elided == proof.elided
    # the proof of a proof is itself: a verifier can re-serve what it checked
    assert part.proof is not None
    assert set(part.proof.envelopes) == set(proof.envelopes)
    assert part.proof.counted == proof.counted


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
    assert flood[-1].hash in full.proof.counted
    part = evaluate_envelopes(
        charter, full.proof.envelopes, T0 + 601 * S, counted=full.proof.counted
    )
    assert _answer(part) == _answer(full)
    # Without the list of what counts, the partial log does not link: the vote is not counted.
    bare = evaluate_envelopes(charter, full.proof.envelopes, T0 + 601 * S)
    assert bare.member("lab-a").head_seq == 1  # type: ignore[union-attr]


# -- the signed answer over a bounded proof ----------------------------------------------------

NONCE = bytes(range(32))


def _long_history() -> tuple[Charter, View, list[Verified]]:
    charter, keys = make_federation(3, 1)
    a = log_for(charter, keys["lab-a"], "lab-a", [attest() for _ in range(20)], T0)
    b = log_for(charter, keys["lab-b"], "lab-b", [attest(), pause(1, "eval-threshold")], T0)
    hbs = [
        heartbeat_for(charter, key_for(m), m, log, 1, T0 + 100 * S)
        for m, log in (("lab-a", a), ("lab-b", b))
    ]
    items: list[Verified] = [*a, *b, *hbs]
    return charter, evaluate(charter, items, T0 + 101 * S), items


def test_an_answer_over_a_bounded_proof_commits_to_heads_and_checks() -> None:
    charter, view, items = _long_history()
    assert view.proof is not None
    assert view.proof.elided == 18  # lab-a's seqs 2..19
    env = sign_answer(key_for("lab-a"), charter, "lab-a", NONCE, view)
    ans = decode_answer(env.payload)
    assert [(h.member, h.seq) for h in ans.heads] == [(m.id, m.head_seq) for m in view.members]
    assert set(ans.counted) == view.proof.counted
    assert check_answer(charter, env, view.proof.envelopes, nonce=NONCE)
    # complete logs that include the signed proof check too, with no trust in the node
    full = [i.envelope for i in items]
    assert check_answer(charter, env, full, nonce=NONCE, complete=True)
    # ...but not "complete" logs with a statement missing: the chain stops short of the head
    gap = [e for e in full if e.payload_hash != items[9].hash]  # lab-a's seq 10
    check = check_answer(charter, env, gap, nonce=NONCE, complete=True)
    assert not check
    assert any("lab-a's head at seq 20, but its proof gives seq 9" in p for p in check.problems)


def test_an_answer_whose_proof_misses_the_head_does_not_check() -> None:
    charter, view, items = _long_history()
    assert view.proof is not None
    head = items[19]  # lab-a's seq 20: its head
    env = sign_answer(key_for("lab-a"), charter, "lab-a", NONCE, view)
    check = check_answer(
        charter, env, [e for e in view.proof.envelopes if e.payload_hash != head.hash]
    )
    assert not check
    assert any("1 missing" in p for p in check.problems)
    assert any("lab-a's head at seq 20" in p for p in check.problems)


def test_an_old_format_answer_over_complete_logs_is_still_accepted() -> None:
    # Before bounded proofs an answer had no heads and no counted list; its proof was every
    # envelope.
    charter, view, _items = _long_history()
    old = replace(view, proof=None)  # complete_proof: every counted envelope, no list
    pb = oversight_pb2.Answer()
    pb.ParseFromString(sign_answer(key_for("lab-a"), charter, "lab-a", NONCE, old).payload)
    del pb.heads[:]
    env = sign_envelope(
        key_for("lab-a"), "lab-a", ANSWER_TYPE, pb.SerializeToString(deterministic=True)
    )
    assert decode_answer(env.payload).heads == ()
    assert check_answer(charter, env, view.envelopes, nonce=NONCE)


def test_a_bundle_whose_counted_list_differs_from_the_signed_one_does_not_check(
    tmp_path: Path,
) -> None:
    charter, view, _items = _long_history()
    assert view.proof is not None
    env = sign_answer(key_for("lab-a"), charter, "lab-a", NONCE, view)
    path = tmp_path / "b.json"
    write_bundle(
        path,
        view.proof.envelopes,
        view.now_ms,
        nonce=NONCE,
        answer=env,
        counted=view.proof.counted,
    )
    b = read_bundle(path)
    assert b.counted == view.proof.counted
    check = check_bundle_answer(charter, b)
    assert check is not None
    assert check
    fewer = sorted(view.proof.counted)[1:]
    write_bundle(path, view.proof.envelopes, view.now_ms, nonce=NONCE, answer=env, counted=fewer)
    check = check_bundle_answer(charter, read_bundle(path))
    assert check is not None
    assert not check
    assert any("'counted' differs" in p for p in check.problems)
    # without the list, the partial logs are read as complete ones, and do not link
    write_bundle(path, view.proof.envelopes, view.now_ms, nonce=NONCE, answer=env)
    check = check_bundle_answer(charter, read_bundle(path))
    assert check is not None
    assert not check


@pytest.mark.parametrize("counted", ['"ab"', '["AB"]', '["zz"]', "[1]"])
def test_a_malformed_counted_list_rejects_the_bundle(tmp_path: Path, counted: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(f'{{"envelopes": [], "counted": {counted}}}')
    with pytest.raises(BundleError, match="'counted' must be a list of payload hashes"):
        read_bundle(path)


def test_a_bundle_over_the_file_bound_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pausenet.core.bundle as bundle_mod

    _charter, view, _items = _long_history()
    monkeypatch.setattr(bundle_mod, "MAX_BUNDLE_BYTES", 4096)
    path = tmp_path / "full.json"
    with pytest.raises(BundleError, match=r"the bundle would be .* check each log on its own"):
        write_bundle(path, view.envelopes, view.now_ms)
    assert not path.exists()


# -- a charter with a quota: linked statements the node does not count -------------------------


def _charter_with_quota(quota: int) -> Charter:
    data = federation_data(3, 1)
    data["format"] = "pausenet.charter.v2"
    data["rules"]["max_statements_per_hour"] = quota
    return parse_charter(data, source="quota charter")


QUOTA = _charter_with_quota(2)
HOUR = 3_600_000
BODIES = (
    pause(1, "eval-threshold"),
    pause(2, "eval-threshold"),
    lift(1),
    attest(),
    attest("rsi-detected", epoch=1),
)


@st.composite
def quota_histories(draw: st.DrawFn) -> tuple[list[Verified], int]:
    """Logs of the quota charter's members with steps of a few minutes to over an hour (so some
    hours hold more than the quota of 2), a fork now and then, and heartbeats."""
    items: list[Verified] = []
    t_end = T0
    for m in [mm.id for mm in QUOTA.members]:
        key = key_for(m)
        log: list[SignedStatement] = []
        at = T0 + draw(st.integers(0, HOUR))
        for body_i, step, fork in draw(
            st.lists(
                st.tuples(
                    st.integers(0, len(BODIES) - 1),
                    st.sampled_from((60_000, 600_000, HOUR + 1)),
                    st.booleans(),
                ),
                max_size=7,
            )
        ):
            (new,) = log_for(QUOTA, key, m, [BODIES[body_i]], at, after=log)
            if fork and log:
                (twin,) = log_for(QUOTA, key, m, [attest(note="twin")], at, after=log)
                items.append(twin)
            log.append(new)
            items.append(new)
            at += step
        for c in range(1, draw(st.integers(0, 2)) + 1):
            items.append(heartbeat_for(QUOTA, key, m, log, c, at + c))
        t_end = max(t_end, at + 10)
    return items, t_end + draw(st.integers(0, 120_000))


@PROPERTY
@given(h=quota_histories())
def test_a_bounded_proof_gives_the_nodes_answer_under_a_quota(
    h: tuple[list[Verified], int],
) -> None:
    items, now = h
    # through the verifier, as a node's ingest would (an overseer's PAUSE vote is invalid here)
    full = evaluate_envelopes(QUOTA, [i.envelope for i in items], now)
    assert full.proof is not None
    part = evaluate_envelopes(QUOTA, full.proof.envelopes, now, counted=full.proof.counted)
    assert _answer(part) == _answer(full)
    assert part.elided == full.proof.elided
