"""Tripwires (if-then commitments): pauses formed by trigger attestations instead of votes.

A charter trigger may carry `auto_pause = {attest_threshold, attesters}`. Every lab agreed to it
when it ratified the charter, so once `attest_threshold` distinct eligible members have counted
TriggerAttestations for that trigger bound to epoch e, a pause certificate for e exists without a
vote (docs/protocol.md §8.1). This module tallies those attestations; `pausenet.core.view` puts
them in epoch order beside the votes.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping

from pausenet.core.charter import Charter
from pausenet.core.records import SignedStatement, TriggerAttestation

__all__ = [
    "PATH_LABS",
    "PATH_OVERSEERS",
    "TRIPWIRE_PREFIX",
    "TripwireTally",
    "describe_path",
    "tripwire_path",
]

PATH_LABS = "labs"
PATH_OVERSEERS = "overseers"
TRIPWIRE_PREFIX = "tripwire:"


def tripwire_path(trigger_id: str) -> str:
    return TRIPWIRE_PREFIX + trigger_id


def describe_path(path: str) -> str:
    """'lab votes', 'overseer votes' or 'tripwire <trigger id>', for people."""
    if path.startswith(TRIPWIRE_PREFIX):
        return "tripwire " + path.removeprefix(TRIPWIRE_PREFIX)
    return {PATH_LABS: "lab votes", PATH_OVERSEERS: "overseer votes"}.get(path, path)


class TripwireTally:
    """For each tripwire trigger and epoch, each eligible member's earliest counted attestation.

    An attestation counts here only when its trigger has a tripwire, it is bound to an epoch
    (epoch 0 never triggers anything) and its signer is eligible by role or id. An equivocator's
    attestations count like anyone's: a tripwire only ever adds to a pause (fail-safe), as PAUSE
    votes do.
    """

    def __init__(self, charter: Charter) -> None:
        self.threshold: dict[str, int] = {}
        self.eligible: dict[str, frozenset[str]] = {}
        for t in charter.triggers:
            if t.auto_pause is not None:
                self.threshold[t.id] = t.auto_pause.attest_threshold
                self.eligible[t.id] = frozenset(t.auto_pause.eligible(charter.members))
        # epoch -> trigger -> member -> earliest attestation
        self._by_epoch: dict[int, dict[str, dict[str, SignedStatement]]] = defaultdict(
            lambda: defaultdict(dict)
        )

    def add(self, st: SignedStatement) -> None:
        """Count one counted statement whose body is a TriggerAttestation, if it qualifies."""
        b = st.statement.body
        assert isinstance(b, TriggerAttestation)
        if not b.epoch or st.member not in self.eligible.get(b.trigger_id, frozenset()):
            return
        slot = self._by_epoch[b.epoch][b.trigger_id]
        cur = slot.get(st.member)
        key = (st.statement.issued_at_ms, st.hash)
        if cur is None or key < (cur.statement.issued_at_ms, cur.hash):
            slot[st.member] = st

    def epochs(self) -> set[int]:
        return set(self._by_epoch)

    def attesters(self, epoch: int) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(trigger, eligible members that attested it for `epoch`), by trigger id."""
        slots = self._by_epoch.get(epoch, {})
        return tuple((t, tuple(sorted(ms))) for t, ms in sorted(slots.items()) if ms)

    def attestations(self, epoch: int, trigger_id: str) -> Mapping[str, SignedStatement]:
        return self._by_epoch.get(epoch, {}).get(trigger_id, {})

    def reached(self, epoch: int) -> list[tuple[int, str]]:
        """(k-th attestation time, trigger) for each tripwire that reached its threshold for
        `epoch`, by trigger id. The time is uncapped; the caller caps it at now."""
        out = []
        for t, ms in sorted(self._by_epoch.get(epoch, {}).items()):
            k = self.threshold[t]
            if len(ms) >= k:
                out.append(
                    (heapq.nsmallest(k, (s.statement.issued_at_ms for s in ms.values()))[-1], t)
                )
        return out

    def could_reach(self, epoch: int, uncovered: frozenset[str]) -> bool:
        """Whether some tripwire for `epoch` could be complete, counting every uncovered
        eligible member as having attested it unseen (docs/protocol.md §8.3)."""
        slots = self._by_epoch.get(epoch, {})
        for t, k in self.threshold.items():
            seen = set(slots.get(t, {}))
            if len((seen | uncovered) & self.eligible[t]) >= k:
                return True
        return False
