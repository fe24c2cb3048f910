"""Tripwire pauses in the view (docs/protocol.md §8.1–§8.3): if-then commitments in the charter.

Unless a test says otherwise the federation has labs lab-a..lab-c (pause and lift need 2 labs, a
lift also needs one overseer), overseers overseer-a and overseer-b, and one tripwire: when both
overseers attest `rsi-detected` for an epoch, that epoch is paused without a vote. Times are T0
plus whole seconds.
"""

from __future__ import annotations

import json

import pytest
from helpers import T0, attest, heartbeat_for, key_for, lift, make_tripwire_federation, pause
from rich.console import Console
from test_view import World, record, statement

from pausenet.core.charter import Charter
from pausenet.core.view import PATH_LABS, PATH_OVERSEERS, Certificate, PauseState, View, evaluate
from pausenet.node.wire import view_reply_to_json, view_to_pb
from pausenet.ops.render import render_view, status_renderable

S = 1000
PAUSED, NOT_PAUSED, UNKNOWN = PauseState.PAUSED, PauseState.NOT_PAUSED, PauseState.UNKNOWN
OVERSEERS = ("overseer-a", "overseer-b")
RSI = "tripwire:rsi-detected"


@pytest.fixture
def charter() -> Charter:
    return make_tripwire_federation({"rsi-detected": (2, ["overseer"])})


@pytest.fixture
def world(charter: Charter) -> World:
    return World(charter)


def pause_cert(view: View, epoch: int) -> Certificate:
    cert = record(view, epoch).pause
    assert cert is not None
    return cert


def test_tripwire_forms_a_pause_without_any_vote(world: World) -> None:
    (a,) = world.say("overseer-a", attest(epoch=1), at=T0)
    (b,) = world.say("overseer-b", attest(epoch=1), at=T0 + 3 * S)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch, v.certified_since_ms) == (PAUSED, 1, T0 + 3 * S)
    cert = pause_cert(v, 1)
    assert cert.path == RSI
    assert (cert.labs, cert.overseers, cert.votes) == ((), (), ())
    assert cert.attesters == OVERSEERS
    assert cert.attestations == (a.hash, b.hash)
    assert cert.formed_at_ms == T0 + 3 * S  # the k-th attestation
    assert record(v, 1).pause_votes == ()
    assert record(v, 1).tripwire_attesters == (("rsi-detected", OVERSEERS),)
    assert "(formed by tripwire rsi-detected)" in v.explanation


def test_one_attestation_below_the_threshold_does_not_pause(world: World) -> None:
    world.say("overseer-a", attest(epoch=1), at=T0)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 0)
    assert record(v, 1).pause is None
    assert record(v, 1).tripwire_attesters == (("rsi-detected", ("overseer-a",)),)


def test_attestations_for_a_trigger_without_a_tripwire_never_pause(world: World) -> None:
    for m in OVERSEERS:
        world.say(m, attest("eval-threshold", epoch=1), at=T0)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 0)
    assert v.epochs == ()


def test_ineligible_members_attestations_never_count() -> None:
    charter = make_tripwire_federation({"rsi-detected": (2, ["overseer-a", "lab-a"])})
    w = World(charter)
    for m in ("lab-b", "lab-c", "overseer-b"):  # none of them is eligible
        w.say(m, attest(epoch=1), at=T0)
    w.say("lab-a", attest(epoch=1), at=T0)
    v = evaluate(charter, [*w.statements(), *w.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 0)
    assert record(v, 1).tripwire_attesters == (("rsi-detected", ("lab-a",)),)
    # every attestation is still a counted fact about the trigger
    assert dict(v.triggers_attested)["rsi-detected"] == (
        "lab-a",
        "lab-b",
        "lab-c",
        "overseer-b",
    )
    w.say("overseer-a", attest(epoch=1), at=T0 + 5 * S)
    v = evaluate(charter, [*w.statements(), *w.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch) == (PAUSED, 1)
    assert pause_cert(v, 1).attesters == ("lab-a", "overseer-a")


def test_attestations_bound_to_no_epoch_never_trigger_a_tripwire(world: World) -> None:
    for m in OVERSEERS:
        world.say(m, attest(), attest(note="again"), at=T0)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 0)
    assert v.epochs == ()


def test_member_counted_once_however_many_attestations_it_signs(world: World) -> None:
    first = world.say("overseer-a", attest(epoch=1), attest(epoch=1, note="2"), at=T0)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 10 * S)], T0 + 20 * S)
    assert v.certified_state is NOT_PAUSED
    world.say("overseer-b", attest(epoch=1), at=T0 + 5 * S)
    v = evaluate(world.charter, world.statements(), T0 + 20 * S)
    assert pause_cert(v, 1).attestations[0] == first[0].hash  # its earliest attestation


def _tripwire_paused_then_lifted(world: World) -> None:
    for m in OVERSEERS:
        world.say(m, attest(epoch=1), at=T0)
    for m in ("lab-a", "lab-b"):
        world.say(m, lift(1), at=T0 + 10 * S)
    world.say("overseer-a", lift(1), at=T0 + 11 * S)


def test_tripwire_pause_is_lifted_by_votes_like_any_pause(world: World) -> None:
    _tripwire_paused_then_lifted(world)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 20 * S)], T0 + 30 * S)
    assert (v.state, v.epoch, v.certified_since_ms) == (NOT_PAUSED, 1, T0 + 11 * S)
    assert pause_cert(v, 1).path == RSI
    lifted = record(v, 1).lift
    assert lifted is not None
    assert lifted.path == PATH_LABS


def test_old_epoch_attestation_replayed_after_a_lift_never_re_pauses(world: World) -> None:
    _tripwire_paused_then_lifted(world)
    # Later, the same overseers attest again, bound to the epoch already lifted.
    for m in OVERSEERS:
        world.say(m, attest(epoch=1, note="still happening"), at=T0 + 50 * S)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 60 * S)], T0 + 70 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 1)
    # Bound to the next epoch, they pause it.
    for m in OVERSEERS:
        world.say(m, attest(epoch=2), at=T0 + 80 * S)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 90 * S)], T0 + 95 * S)
    assert (v.state, v.epoch, v.certified_since_ms) == (PAUSED, 2, T0 + 80 * S)
    assert pause_cert(v, 2).path == RSI


def test_tripwire_for_epoch_2_counts_only_once_epoch_1_is_lifted(world: World) -> None:
    for m in OVERSEERS:
        world.say(m, attest(epoch=2), at=T0)
    v = evaluate(world.charter, [*world.statements(), *world.beats(T0 + 10 * S)], T0 + 20 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 0)
    world.say("lab-a", pause(1), at=T0 + 11 * S)
    world.say("lab-b", pause(1), at=T0 + 12 * S)
    v = evaluate(world.charter, world.statements(), T0 + 20 * S)
    assert (v.certified_state, v.epoch) == (PAUSED, 1)
    for m in ("lab-a", "lab-b", "overseer-a"):
        world.say(m, lift(1), at=T0 + 30 * S)
    v = evaluate(world.charter, world.statements(), T0 + 40 * S)
    # epoch 2's tripwire was complete all along: it takes effect when epoch 1 is lifted
    assert (v.certified_state, v.epoch, v.certified_since_ms) == (PAUSED, 2, T0 + 30 * S)
    assert pause_cert(v, 2).formed_at_ms == T0


def test_equivocators_attestation_counts_toward_a_tripwire(world: World) -> None:
    c = world.charter
    world.say("overseer-a", attest(epoch=1), at=T0)
    fork = [
        statement(c, "overseer-b", 1, b"", T0 + S, attest(epoch=1)),
        statement(c, "overseer-b", 1, b"", T0 + S, attest(epoch=1, note="other branch")),
    ]
    v = evaluate(c, [*world.statements(), *fork], T0 + 10 * S)
    assert [e.member for e in v.evidence] == ["overseer-b"]
    assert (v.certified_state, v.epoch) == (PAUSED, 1)
    assert pause_cert(v, 1).attesters == OVERSEERS


def test_earliest_path_forms_the_certificate(world: World) -> None:
    world.say("lab-a", pause(1), at=T0)
    world.say("lab-b", pause(1), at=T0 + 5 * S)
    world.say("overseer-a", attest(epoch=1), at=T0)
    world.say("overseer-b", attest(epoch=1), at=T0 + 3 * S)
    cert = pause_cert(evaluate(world.charter, world.statements(), T0 + 10 * S), 1)
    assert (cert.path, cert.formed_at_ms) == (RSI, T0 + 3 * S)
    assert cert.labs == ("lab-a", "lab-b")  # the votes are in the certificate all the same
    world.say("lab-c", pause(1), at=T0 + S)  # now lab votes reach 2 at T0+1 s
    cert = pause_cert(evaluate(world.charter, world.statements(), T0 + 10 * S), 1)
    assert (cert.path, cert.formed_at_ms) == (PATH_LABS, T0 + S)
    assert cert.attesters == ()


def test_ties_go_to_lab_votes_then_overseer_votes_then_tripwires_by_trigger_id() -> None:
    charter = make_tripwire_federation(
        {"rsi-detected": (1, ["overseer"]), "eval-threshold": (1, ["overseer"])},
        overseer_pause_threshold=1,
    )
    # Two tripwires complete at the same time: the smaller trigger id wins.
    w = World(charter)
    w.say("overseer-a", attest("rsi-detected", epoch=1), at=T0)
    w.say("overseer-b", attest("eval-threshold", epoch=1), at=T0)
    assert pause_cert(evaluate(charter, w.statements(), T0 + 9 * S), 1).path == (
        "tripwire:eval-threshold"
    )
    # An overseer vote at the same time as a tripwire: overseer votes win.
    w = World(charter)
    w.say("overseer-a", pause(1), at=T0)
    w.say("overseer-b", attest("rsi-detected", epoch=1), at=T0)
    assert pause_cert(evaluate(charter, w.statements(), T0 + 9 * S), 1).path == PATH_OVERSEERS
    # Lab votes at the same time as both: lab votes win.
    w.say("lab-a", pause(1), at=T0 - 5 * S)
    w.say("lab-b", pause(1), at=T0)
    assert pause_cert(evaluate(charter, w.statements(), T0 + 9 * S), 1).path == PATH_LABS


def test_overseer_path_is_named_in_the_explanation() -> None:
    charter = make_tripwire_federation({}, overseer_pause_threshold=1)
    w = World(charter)
    w.say("overseer-a", pause(1), at=T0)
    v = evaluate(charter, w.statements(), T0 + 9 * S)
    assert pause_cert(v, 1).path == PATH_OVERSEERS
    assert "(formed by overseer votes)" in v.explanation


def test_formed_time_is_capped_at_now(world: World) -> None:
    world.say("overseer-a", attest(epoch=1), at=T0)
    world.say("overseer-b", attest(epoch=1), at=T0 + 20 * S)  # within the 30 s clock skew
    v = evaluate(world.charter, world.statements(), T0 + 10 * S)
    assert pause_cert(v, 1).formed_at_ms == T0 + 10 * S


# -- could an unseen tripwire flip the answer? (§8.3) ---------------------------------------------


def test_uncovered_eligible_attesters_could_complete_a_tripwire_unseen(world: World) -> None:
    labs_only = world.beats({"lab-a": T0, "lab-b": T0, "lab-c": T0})
    v = evaluate(world.charter, labs_only, T0 + S)
    # Overseers cannot vote PAUSE here, but both together could have attested unseen.
    assert v.state is UNKNOWN
    assert "overseer-a, overseer-b not synced" in v.explanation
    # With one overseer synced, the other alone is too few for the tripwire.
    one = [*labs_only, world.beat("overseer-a", T0)]
    assert evaluate(world.charter, one, T0 + S).state is NOT_PAUSED
    # …unless the synced one's attestation is in hand: then the other completes it unseen.
    world.say("overseer-a", attest(epoch=1), at=T0 + 2 * S)
    seen = [*labs_only, *world.statements(), world.beat("overseer-a", T0 + 3 * S)]
    assert evaluate(world.charter, seen, T0 + 4 * S).state is UNKNOWN


def test_a_tripwire_for_one_lab_makes_that_lab_alone_able_to_pause() -> None:
    charter = make_tripwire_federation({"rsi-detected": (1, ["lab-a"])})
    w = World(charter)
    everyone_but_a = w.beats({"lab-b": T0, "lab-c": T0, "overseer-a": T0, "overseer-b": T0})
    assert evaluate(charter, everyone_but_a, T0 + S).state is UNKNOWN
    plain = make_tripwire_federation({})
    assert evaluate(plain, World(plain).beats({"lab-b": T0, "lab-c": T0}), T0 + S).state is (
        NOT_PAUSED
    )


def test_attestations_for_an_old_or_later_epoch_do_not_make_the_answer_unknown(
    world: World,
) -> None:
    _tripwire_paused_then_lifted(world)
    hbs = world.beats({"lab-a": T0 + 20 * S, "lab-b": T0 + 20 * S, "lab-c": T0 + 20 * S})
    hbs.append(world.beat("overseer-a", T0 + 20 * S))
    # overseer-b is uncovered, but alone it cannot complete epoch 2's tripwire
    v = evaluate(world.charter, [*world.statements(), *hbs], T0 + 30 * S)
    assert (v.state, v.epoch) == (NOT_PAUSED, 1)


def test_equivocating_attester_is_never_synced_so_it_always_could_attest(world: World) -> None:
    c = world.charter
    fork = [
        statement(c, "overseer-b", 1, b"", T0, attest()),
        statement(c, "overseer-b", 1, b"", T0, attest(note="x")),
    ]
    world.say("overseer-a", attest(epoch=1), at=T0)
    hbs = world.beats({m: T0 + 10 * S for m in ("lab-a", "lab-b", "lab-c", "overseer-a")})
    hbs.append(heartbeat_for(c, key_for("overseer-b"), "overseer-b", fork[:1], 1, T0 + 10 * S))
    v = evaluate(c, [*fork, *world.statements(), *hbs], T0 + 20 * S)
    assert v.state is UNKNOWN


def test_to_json_names_the_path_and_the_attesters(world: World) -> None:
    for m in OVERSEERS:
        world.say(m, attest(epoch=1), at=T0)
    v = evaluate(world.charter, world.statements(), T0 + 10 * S)
    doc = json.loads(json.dumps(v.to_json()))
    cert = doc["epochs"][0]["pause"]
    assert cert["path"] == RSI
    assert cert["attesters"] == list(OVERSEERS)
    assert len(cert["attestations"]) == 2
    assert doc["epochs"][0]["tripwire_attesters"] == {"rsi-detected": list(OVERSEERS)}


# -- which path formed a pause, as status, verify and GetView show it ----------------------------


def _printed(renderable: object) -> str:
    console = Console(record=True, width=200)
    console.print(renderable)
    return console.export_text()


def test_verify_and_status_say_a_tripwire_formed_the_pause(world: World) -> None:
    for m in OVERSEERS:
        world.say(m, attest(epoch=1), at=T0)
    v = evaluate(world.charter, world.statements(), T0 + 10 * S)
    console = Console(record=True, width=200)
    render_view(v, console, charter=world.charter)
    text = console.export_text()
    assert "epoch 1 PAUSE: no labs; attested by overseer-a, overseer-b (by tripwire" in text
    reply = view_to_pb(v, answered_by="lab-a", signed_answer=None)
    assert reply.certificates[0].path == RSI
    assert list(reply.certificates[0].attesters) == list(OVERSEERS)
    doc = view_reply_to_json(reply)
    assert doc["certificates"][0]["path"] == RSI
    status = _printed(status_renderable(doc))
    assert "epoch 1 PAUSE: no labs; attested by overseer-a, overseer-b (by tripwire" in status


def test_a_tripwire_short_of_its_threshold_is_shown_with_what_it_needs(world: World) -> None:
    world.say("overseer-a", attest(epoch=1), at=T0)
    console = Console(record=True, width=200)
    render_view(evaluate(world.charter, world.statements(), T0 + S), console, charter=world.charter)
    assert (
        "epoch 1 tripwire rsi-detected: no certificate yet; attested by overseer-a; 2 needed"
        in console.export_text()
    )


def test_lab_vote_certificates_print_as_before(world: World) -> None:
    world.say("lab-a", pause(1), at=T0)
    world.say("lab-b", pause(1), at=T0)
    v = evaluate(world.charter, world.statements(), T0 + 10 * S)
    doc = view_reply_to_json(view_to_pb(v, answered_by="lab-a", signed_answer=None))
    assert "  epoch 1 PAUSE: labs lab-a, lab-b (in effect " in _printed(status_renderable(doc))
    console = Console(record=True, width=200)
    render_view(v, console)
    assert "epoch 1 PAUSE: labs lab-a, lab-b (formed " in console.export_text()
    assert "formed by" not in v.explanation
