"""What a member's node agrees to sign: a vote or attestation only where it would count.

A node signs on its operator's request (docs/protocol.md §14), but refuses a statement that
would not count or that its operator most likely did not mean: a PAUSE vote while paused or for
an epoch other than the next, a LIFT vote with no pause in effect, a second vote of a kind for
one epoch, compliance from an overseer. These are pure functions of the charter and the node's
current view; they return what to sign (the epoch, filled in when the operator gave 0) or raise
`SigningRefusedError` with the one-line reason shown to the operator.
"""

from __future__ import annotations

from collections.abc import Sequence

from pausenet.core.charter import Charter, Member, Role
from pausenet.core.records import Decision
from pausenet.core.view import PauseState, View
from pausenet.errors import SigningRefusedError

__all__ = [
    "attestation_epoch",
    "check_trigger_attestation",
    "compliance_epoch",
    "vote_epoch",
]


def vote_epoch(
    charter: Charter,
    member: str,
    view: View,
    decision: Decision,
    epoch: int = 0,
    triggers: Sequence[str] = (),
) -> int:
    """The epoch `member` should sign a `decision` vote for (`epoch`, or the one due if 0)."""
    me = _member(charter, member)
    cur = view.epoch
    if decision is Decision.PAUSE:
        if me.role is Role.OVERSEER and not charter.rules.overseer_pause_threshold:
            raise SigningRefusedError("this charter does not let overseers vote to start a pause")
        if view.certified_state is PauseState.PAUSED:
            raise SigningRefusedError(
                f"epoch {cur} is already paused; a PAUSE vote for epoch {cur + 1} can be cast"
                " once it is lifted"
            )
        want = cur + 1
        if epoch == 0:
            epoch = want
        elif epoch != want:
            raise SigningRefusedError(f"wrong epoch {epoch}: the next pause would be epoch {want}")
        if not triggers:
            raise SigningRefusedError(
                f"a PAUSE vote must name a trigger; this charter's triggers: {_triggers(charter)}"
            )
        unknown = [t for t in triggers if t not in charter.trigger_ids()]
        if unknown:
            raise SigningRefusedError(
                f"unknown trigger {unknown[0]!r}; this charter's triggers: {_triggers(charter)}"
            )
    else:
        if view.certified_state is not PauseState.PAUSED:
            raise SigningRefusedError(
                "no pause is in effect to lift"
                + (f" (epoch {cur} was already lifted)" if cur else "")
            )
        if epoch == 0:
            epoch = cur
        elif epoch != cur:
            raise SigningRefusedError(f"wrong epoch {epoch}: the pause in effect is epoch {cur}")
        if triggers:
            raise SigningRefusedError("a LIFT vote names no triggers")
    rec = next((e for e in view.epochs if e.epoch == epoch), None)
    if rec and member in (rec.pause_votes if decision is Decision.PAUSE else rec.lift_votes):
        raise SigningRefusedError(
            f"{member} has already voted {decision.value.upper()} for epoch {epoch}"
        )
    return epoch


def compliance_epoch(charter: Charter, member: str, view: View, epoch: int = 0) -> int:
    """The epoch `member` should attest compliance for (`epoch`, or the paused one if 0)."""
    if _member(charter, member).role is not Role.LAB:
        raise SigningRefusedError("only labs attest compliance")
    if epoch == 0:
        if view.certified_state is not PauseState.PAUSED:
            raise SigningRefusedError("no pause is in effect; give --epoch to attest for one")
        epoch = view.epoch
    return epoch


def check_trigger_attestation(charter: Charter, trigger_id: str) -> None:
    """Refuse to attest a trigger the charter does not name."""
    if trigger_id not in charter.trigger_ids():
        raise SigningRefusedError(
            f"unknown trigger {trigger_id!r}; this charter's triggers: {_triggers(charter)}"
        )


def attestation_epoch(
    charter: Charter, member: str, view: View, trigger_id: str, epoch: int = 0
) -> int:
    """The epoch `member` should bind a `trigger_id` attestation to (0: none).

    With `epoch` 0 an attestation is bound to no epoch, except where the trigger has a tripwire
    `member` is eligible for: then it is bound to the next epoch, which a tripwire pauses
    (docs/protocol.md §8.1). A given epoch must be the next one; while a pause is in effect
    there is none to bind to until it is lifted.
    """
    _member(charter, member)
    check_trigger_attestation(charter, trigger_id)
    trigger = next(t for t in charter.triggers if t.id == trigger_id)
    tw = trigger.auto_pause
    arms = tw is not None and member in tw.eligible(charter.members)
    if epoch == 0 and not arms:
        return 0
    cur = view.epoch
    if view.certified_state is PauseState.PAUSED:
        what = f"the tripwire on {trigger_id}" if arms and not epoch else "an attestation"
        raise SigningRefusedError(
            f"epoch {cur} is already paused; {what} would bind to epoch {cur + 1}, which can be"
            f" attested once epoch {cur} is lifted"
        )
    want = cur + 1
    if epoch == 0:
        epoch = want
    elif epoch != want:
        raise SigningRefusedError(f"wrong epoch {epoch}: the next pause would be epoch {want}")
    rec = next((e for e in view.epochs if e.epoch == epoch), None)
    if arms and rec and member in dict(rec.tripwire_attesters).get(trigger_id, ()):
        raise SigningRefusedError(f"{member} has already attested {trigger_id} for epoch {epoch}")
    return epoch


def _member(charter: Charter, member: str) -> Member:
    m = charter.member(member)
    if m is None:
        raise SigningRefusedError(f"{member!r} is not a member of this charter")
    return m


def _triggers(charter: Charter) -> str:
    return ", ".join(sorted(charter.trigger_ids()))
