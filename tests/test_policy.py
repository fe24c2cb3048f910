"""The signing policy (pausenet.core.policy): what a node agrees to sign, every refusal path."""

from __future__ import annotations

import pytest
from helpers import T0, attest, lift, log_for, make_federation, make_tripwire_federation, pause

from pausenet.core.charter import Charter
from pausenet.core.policy import (
    attestation_epoch,
    check_trigger_attestation,
    compliance_epoch,
    vote_epoch,
)
from pausenet.core.records import Body, Decision, SignedStatement
from pausenet.core.view import PauseState, View, evaluate
from pausenet.errors import SigningRefusedError

CHARTER, KEYS = make_federation(labs=3, overseers=1)  # pause 2 of 3 labs; lift 2 labs + 1 overseer
OVERSEERS_MAY_PAUSE, _ = make_federation(labs=3, overseers=1, overseer_pause_threshold=1)
PAUSE, LIFT = Decision.PAUSE, Decision.LIFT
TRIGGERS = "eval-threshold, rsi-detected"


def _view(charter: Charter = CHARTER, **bodies: list[Body]) -> View:
    items: list[SignedStatement] = []
    for member, bs in bodies.items():
        mid = member.replace("_", "-")
        items += log_for(charter, KEYS[mid], mid, bs, start_ms=T0)
    return evaluate(charter, items, T0 + 60_000)


NEVER_PAUSED = _view()
LAB_A_VOTED = _view(lab_a=[pause(1)])
PAUSED = _view(lab_a=[pause(1)], lab_b=[pause(1)])
LAB_A_LIFTED = _view(lab_a=[pause(1), lift(1)], lab_b=[pause(1)])
LIFTED = _view(lab_a=[pause(1), lift(1)], lab_b=[pause(1), lift(1)], overseer_a=[lift(1)])


def test_the_fixture_views() -> None:
    assert (NEVER_PAUSED.certified_state, NEVER_PAUSED.epoch) == (PauseState.NOT_PAUSED, 0)
    assert (PAUSED.certified_state, PAUSED.epoch) == (PauseState.PAUSED, 1)
    assert (LIFTED.certified_state, LIFTED.epoch) == (PauseState.NOT_PAUSED, 1)


# -- what it signs ---------------------------------------------------------------------------


def test_a_pause_vote_is_for_the_next_epoch() -> None:
    assert vote_epoch(CHARTER, "lab-a", NEVER_PAUSED, PAUSE, 0, ["rsi-detected"]) == 1
    assert vote_epoch(CHARTER, "lab-a", NEVER_PAUSED, PAUSE, 1, ["rsi-detected"]) == 1
    assert vote_epoch(CHARTER, "lab-c", PAUSED, LIFT) == 1
    assert vote_epoch(CHARTER, "lab-a", LIFTED, PAUSE, 0, ["eval-threshold"]) == 2
    assert vote_epoch(OVERSEERS_MAY_PAUSE, "overseer-a", NEVER_PAUSED, PAUSE, 0, ["rsi-detected"])


def test_a_lift_vote_is_for_the_paused_epoch() -> None:
    assert vote_epoch(CHARTER, "lab-b", PAUSED, LIFT) == 1
    assert vote_epoch(CHARTER, "overseer-a", PAUSED, LIFT, 1) == 1


def test_compliance_defaults_to_the_paused_epoch() -> None:
    assert compliance_epoch(CHARTER, "lab-a", PAUSED) == 1
    assert compliance_epoch(CHARTER, "lab-a", NEVER_PAUSED, 3) == 3  # an explicit epoch is kept


def test_a_charter_trigger_may_be_attested_by_anyone() -> None:
    check_trigger_attestation(CHARTER, "rsi-detected")


# -- every refusal, with the message the operator sees ---------------------------------------


@pytest.mark.parametrize(
    ("charter", "member", "view", "decision", "epoch", "triggers", "message"),
    [
        (
            CHARTER, "overseer-a", NEVER_PAUSED, PAUSE, 0, ["rsi-detected"],
            "this charter does not let overseers vote to start a pause",
        ),
        (
            CHARTER, "lab-c", PAUSED, PAUSE, 0, ["rsi-detected"],
            "epoch 1 is already paused; a PAUSE vote for epoch 2 can be cast once it is lifted",
        ),
        (
            CHARTER, "lab-a", NEVER_PAUSED, PAUSE, 2, ["rsi-detected"],
            "wrong epoch 2: the next pause would be epoch 1",
        ),
        (
            CHARTER, "lab-a", NEVER_PAUSED, PAUSE, 0, [],
            f"a PAUSE vote must name a trigger; this charter's triggers: {TRIGGERS}",
        ),
        (
            CHARTER, "lab-a", NEVER_PAUSED, PAUSE, 0, ["rsi-detected", "made-up"],
            f"unknown trigger 'made-up'; this charter's triggers: {TRIGGERS}",
        ),
        (
            CHARTER, "lab-a", LAB_A_VOTED, PAUSE, 0, ["eval-threshold"],
            "lab-a has already voted PAUSE for epoch 1",
        ),
        (CHARTER, "lab-a", NEVER_PAUSED, LIFT, 0, [], "no pause is in effect to lift"),
        (
            CHARTER, "lab-c", LIFTED, LIFT, 0, [],
            "no pause is in effect to lift (epoch 1 was already lifted)",
        ),
        (
            CHARTER, "lab-b", PAUSED, LIFT, 2, [],
            "wrong epoch 2: the pause in effect is epoch 1",
        ),
        (CHARTER, "lab-b", PAUSED, LIFT, 0, ["rsi-detected"], "a LIFT vote names no triggers"),
        (CHARTER, "lab-a", LAB_A_LIFTED, LIFT, 1, [], "lab-a has already voted LIFT for epoch 1"),
        (CHARTER, "lab-x", PAUSED, LIFT, 0, [], "'lab-x' is not a member of this charter"),
    ],
    ids=[
        "overseer-pause",
        "already-paused",
        "pause-wrong-epoch",
        "pause-no-trigger",
        "pause-unknown-trigger",
        "pause-twice",
        "lift-never-paused",
        "lift-already-lifted",
        "lift-wrong-epoch",
        "lift-with-trigger",
        "lift-twice",
        "not-a-member",
    ],
)  # fmt: skip
def test_vote_refusals(
    charter: Charter,
    member: str,
    view: View,
    decision: Decision,
    epoch: int,
    triggers: list[str],
    message: str,
) -> None:
    with pytest.raises(SigningRefusedError) as info:
        vote_epoch(charter, member, view, decision, epoch, triggers)
    assert str(info.value) == message


def test_compliance_refusals() -> None:
    with pytest.raises(SigningRefusedError, match=r"^only labs attest compliance$"):
        compliance_epoch(CHARTER, "overseer-a", PAUSED)
    with pytest.raises(
        SigningRefusedError, match=r"^no pause is in effect; give --epoch to attest for one$"
    ):
        compliance_epoch(CHARTER, "lab-a", LIFTED)


def test_trigger_attestation_refusal() -> None:
    with pytest.raises(SigningRefusedError) as info:
        check_trigger_attestation(CHARTER, "made-up")
    assert str(info.value) == f"unknown trigger 'made-up'; this charter's triggers: {TRIGGERS}"


# -- trigger attestations and tripwires ------------------------------------------------------

TRIPWIRE = make_tripwire_federation({"rsi-detected": (2, ["overseer", "lab-a"])}, overseers=1)
TW_NEVER_PAUSED = _view(TRIPWIRE)
TW_PAUSED = _view(TRIPWIRE, lab_a=[pause(1)], lab_b=[pause(1)])
TW_LIFTED = _view(
    TRIPWIRE, lab_a=[pause(1), lift(1)], lab_b=[pause(1), lift(1)], overseer_a=[lift(1)]
)


def test_an_eligible_attester_binds_a_tripwire_trigger_to_the_next_epoch() -> None:
    assert attestation_epoch(TRIPWIRE, "overseer-a", TW_NEVER_PAUSED, "rsi-detected") == 1
    assert attestation_epoch(TRIPWIRE, "overseer-a", TW_LIFTED, "rsi-detected") == 2
    assert attestation_epoch(TRIPWIRE, "overseer-a", TW_LIFTED, "rsi-detected", 2) == 2


def test_other_attestations_are_bound_to_no_epoch_unless_asked() -> None:
    # a trigger without a tripwire, and a member not eligible for the tripwire
    assert attestation_epoch(TRIPWIRE, "overseer-a", TW_PAUSED, "eval-threshold") == 0
    assert attestation_epoch(TRIPWIRE, "lab-b", TW_PAUSED, "rsi-detected") == 0
    assert attestation_epoch(CHARTER, "lab-a", NEVER_PAUSED, "rsi-detected") == 0
    assert attestation_epoch(CHARTER, "lab-a", LIFTED, "rsi-detected", 2) == 2


@pytest.mark.parametrize(
    ("charter", "member", "view", "trigger", "epoch", "message"),
    [
        (
            TRIPWIRE,
            "overseer-a",
            TW_PAUSED,
            "rsi-detected",
            0,
            "epoch 1 is already paused; the tripwire on rsi-detected would bind to epoch 2,"
            " which can be attested once epoch 1 is lifted",
        ),
        (
            TRIPWIRE,
            "lab-b",
            TW_PAUSED,
            "rsi-detected",
            2,
            "epoch 1 is already paused; an attestation would bind to epoch 2, which can be"
            " attested once epoch 1 is lifted",
        ),
        (
            TRIPWIRE,
            "overseer-a",
            TW_LIFTED,
            "rsi-detected",
            1,
            "wrong epoch 1: the next pause would be epoch 2",
        ),
        (
            TRIPWIRE,
            "overseer-a",
            _view(TRIPWIRE, overseer_a=[attest(epoch=1)]),
            "rsi-detected",
            0,
            "overseer-a has already attested rsi-detected for epoch 1",
        ),
        (
            TRIPWIRE,
            "overseer-a",
            TW_NEVER_PAUSED,
            "made-up",
            0,
            "unknown trigger 'made-up'; this charter's triggers: eval-threshold, rsi-detected",
        ),
        (TRIPWIRE, "lab-z", TW_NEVER_PAUSED, "rsi-detected", 0, "'lab-z' is not a member"),
    ],
)
def test_attestation_refusals(
    charter: Charter, member: str, view: View, trigger: str, epoch: int, message: str
) -> None:
    with pytest.raises(SigningRefusedError) as info:
        attestation_epoch(charter, member, view, trigger, epoch)
    assert message in str(info.value)
