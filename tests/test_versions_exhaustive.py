"""The decision across one amendment, checked exhaustively against an independent reference.

Federation: 3 labs + 1 overseer under genesis (pause: 2 labs; lift: 2 labs and the overseer, at
least 2 s after the pause). One amendment, ratified at slot R, of one of four kinds: lower
thresholds (1 lab pauses, 1 lab lifts, no minimum), raise them (3 labs), remove lab-c, or
replace lab-a's key. Each lab signs one of a few short logs (votes at chosen slots), under
genesis or, if its node adopted the amendment, under the amendment from R on (lab-a's key then
being its new one when it was replaced; a lab-a that did not adopt keeps signing with the old
key: the stolen-key case). The overseer lifts epoch 1 or stays silent.

The reference steps through time slot by slot, as the rules read in docs/protocol.md §15.8: the
amendment takes effect at R unless a pause is in effect then, in which case at its lift; at each
instant the version taking effect first, then a pause under the version in effect, then a lift
under the rules the pause started under. It shares no code with core.versions.

Checked for every case: the certified state, epoch, effective time and the version each pause
started under agree with the reference; the view is the same in any order; and for every way of
withholding the end of one member's log (that member then unsynced), a proven answer is the
reference's state over the whole history (never NOT_PAUSED when unprovable, never a proven
answer more facts contradict). And no escape: when the amendment is ratified during a pause,
that pause lifts exactly as genesis alone says.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import pytest
from chains import amend, approvals, genesis
from helpers import T0, attest, lift, pause
from helpers import key_for as _key_for
from profiles import examples

from pausenet.core.approval import sign_approval
from pausenet.core.charter import Charter
from pausenet.core.governance import follow_chain
from pausenet.core.keys import SigningKey
from pausenet.core.records import Decision, SignedHeartbeat, SignedStatement
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.core.verify import Verified
from pausenet.core.versions import Versions, evaluate_versions, verify_versions
from pausenet.core.view import PauseState, View

key_for = cache(_key_for)
S = 1000
NOW = 9  # slots; now = T0 + NOW * S
LABS = ("lab-a", "lab-b", "lab-c")
OV = "overseer-a"
MEMBERS = (*LABS, OV)
G = genesis(min_pause_s=2)
KINDS = ("lower", "raise", "remove", "rekey")
RS = (2, 5)
DEEP = examples(10) >= 100  # HYPOTHESIS_PROFILE=deep


@cache
def amendment(kind: str) -> Charter:
    if kind == "lower":
        return amend(
            G, pause_threshold=1, lift_threshold=1, lift_overseer_threshold=0, min_pause_s=0
        )
    if kind == "raise":
        return amend(G, pause_threshold=3, lift_threshold=3)
    if kind == "remove":
        return amend(G, remove=["lab-c"])
    return amend(G, rekey={"lab-a": key_for("lab-a-2")})


@cache
def versions_for(kind: str, r: int) -> Versions:
    v2 = amendment(kind)
    envs = [sign_approval(key_for(m.id), G, m.id, T0 - S).envelope for m in G.members]
    envs += approvals(G, v2, T0 + r * S)
    return Versions.from_chain(follow_chain(G, [v2], envs), envs)


# A statement: (decision, epoch, slot). Logs per lab; the overseer's below.
P1, L1, P2 = (Decision.PAUSE, 1), (Decision.LIFT, 1), (Decision.PAUSE, 2)
LAB_LOGS: tuple[tuple[tuple[Decision, int, int], ...], ...] = (
    (),
    ((*P1, 1),),
    ((*P1, 4),),
    ((*P1, 1), (*L1, 4)),
    ((*P1, 3), (*L1, 6), (*P2, 7)),
)
OV_LOGS: tuple[tuple[tuple[Decision, int, int], ...], ...] = ((), ((*L1, 5),))


@dataclass(frozen=True)
class Case:
    kind: str
    r: int
    logs: tuple[tuple[tuple[Decision, int, int], ...], ...]  # per member of MEMBERS
    adopts: tuple[bool, ...]  # per member: signs under the amendment from R on

    def signer(self, member: str, slot: int) -> tuple[int, SigningKey]:
        """(version 1 or 2, key) a statement at slot is signed under and with."""
        if self.adopts[MEMBERS.index(member)] and slot >= self.r:
            if self.kind == "remove" and member == "lab-c":
                return 1, key_for(member)  # a removed member's node cannot sign under it
            if self.kind == "rekey" and member == "lab-a":
                return 2, key_for("lab-a-2")
            return 2, key_for(member)
        return 1, key_for(member)


def cases(kind: str, r: int) -> Iterator[Case]:
    if True:
        for labs in itertools.product(LAB_LOGS, repeat=3):
            for ov in OV_LOGS:
                logs = (*labs, ov)
                # the adoption flag matters only for members signing at or after R
                flags = [(True, False) if any(s >= r for *_x, s in lg) else (True,) for lg in logs]
                for adopts in itertools.product(*flags):
                    yield Case(kind, r, logs, adopts)


# -- the signed items -------------------------------------------------------------------------


@cache
def _signed(
    charter: Charter,
    key: SigningKey,
    member: str,
    seq: int,
    prev: bytes,
    at: int,
    d: Decision,
    e: int,
) -> SignedStatement:
    body = pause(e) if d is Decision.PAUSE else lift(e)
    return sign_statement(key, build_statement(charter, member, seq, prev, at, body))


def signed_log(case: Case, member: str) -> list[SignedStatement]:
    out: list[SignedStatement] = []
    v2 = amendment(case.kind)
    for d, e, slot in case.logs[MEMBERS.index(member)]:
        ver, key = case.signer(member, slot)
        prev = out[-1] if out else None
        out.append(
            _signed(
                G if ver == 1 else v2,
                key,
                member,
                len(out) + 1,
                prev.hash if prev else b"",
                T0 + slot * S,
                d,
                e,
            )
        )
    return out


@cache
def _heartbeat(
    charter: Charter, key: SigningKey, member: str, seq: int, head: bytes, at: int
) -> SignedHeartbeat:
    return sign_heartbeat(
        key, charter, member, head_seq=seq, head_hash=head, counter=1, issued_at_ms=at
    )


def heartbeat(
    case: Case, member: str, log: list[SignedStatement], at: int = T0 + NOW * S
) -> SignedHeartbeat:
    v2 = amendment(case.kind)
    listed = v2 if v2.member(member) is not None else G
    key = key_for("lab-a-2") if case.kind == "rekey" and member == "lab-a" else key_for(member)
    head = log[-1] if log else None
    return _heartbeat(listed, key, member, head.seq if head else 0, head.hash if head else b"", at)


def items_for(
    case: Case, withheld: str = "", keep: int = 0, beat_at: int | None = None
) -> list[Verified]:
    """Every member's log and a heartbeat at now; `withheld`'s log cut to `keep` statements and
    no heartbeat from it, or, with `beat_at` (a slot), cut to what it signed by then and a
    heartbeat half a slot later (its whole log at that time: the rest comes after it)."""
    versions = versions_for(case.kind, case.r)
    out: list[Verified] = []
    for m in MEMBERS:
        log = signed_log(case, m)
        if m == withheld and beat_at is not None:
            log = [s for s in log if s.statement.issued_at_ms <= T0 + beat_at * S]
            out.append(heartbeat(case, m, log, T0 + beat_at * S + S // 2))
        elif m == withheld:
            log = log[:keep]
        else:
            out.append(heartbeat(case, m, log))
        out += log
    for it in out:  # everything a node would accept (checked once per item)
        if (case.kind, case.r, it.hash) not in _accepted:
            assert verify_versions(versions, it.envelope, T0 + NOW * S) == it
            _accepted.add((case.kind, case.r, it.hash))
    return out


_accepted: set[tuple[str, int, bytes]] = set()


# -- the reference ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    labs: frozenset[str]
    overseers: frozenset[str]
    keys: dict[str, bytes]
    pause: int
    lift: int
    lift_ov: int
    min_pause: int  # slots


def rules_of(c: Charter) -> Rules:
    return Rules(
        frozenset(m.id for m in c.labs()),
        frozenset(m.id for m in c.overseers()),
        {m.id: m.public_key.raw for m in c.members},
        c.rules.pause_threshold,
        c.rules.lift_threshold,
        c.rules.lift_overseer_threshold,
        c.rules.min_pause_s * 1000 // S,
    )


@dataclass
class Outcome:
    state: PauseState
    epoch: int
    since: int | None  # slot
    governed: dict[int, int]  # epoch -> 1 or 2
    active2: int | None  # slot the amendment took effect, None if not (yet)
    history: list[tuple[int, PauseState, int]]  # (slot, state, epoch) at each transition


def reference(
    case: Case,
    logs: dict[str, list[tuple[Decision, int, int]]],
    *,
    amended: bool = True,
    forked: tuple[str, int] | None = None,
) -> Outcome:
    """Step through the slots, reading the rules directly (with `amended` false, as if the
    amendment never took effect: genesis alone, the same signed statements). `forked`: (member,
    seq) of a fork: that member's LIFT statements from that seq on do not count."""
    v1, v2 = rules_of(G), rules_of(amendment(case.kind))
    # (member, decision, epoch) -> [(slot, key)] of the statements held
    held: dict[tuple[str, Decision, int], list[tuple[int, bytes]]] = {}
    for m, log in logs.items():
        for seq, (d, e, slot) in enumerate(log, start=1):
            if d is Decision.LIFT and forked and forked[0] == m and seq >= forked[1]:
                continue
            _ver, key = case.signer(m, slot)
            held.setdefault((m, d, e), []).append((slot, key.public_key.raw))

    def voters(rules: Rules, d: Decision, e: int, t: int) -> set[str]:
        """Members of `rules` with a statement for (d, e) signed by t with their key there."""
        return {
            m
            for (m, dd, ee), sts in held.items()
            if (dd, ee) == (d, e)
            and m in rules.keys
            and any(slot <= t and key == rules.keys[m] for slot, key in sts)
        }

    state, epoch, since = PauseState.NOT_PAUSED, 0, None
    governed: dict[int, int] = {}
    active2: int | None = None
    paused_at, gov = 0, v1
    history: list[tuple[int, PauseState, int]] = []
    for t in range(NOW + 1):
        while True:
            if amended and active2 is None and t >= case.r and state is PauseState.NOT_PAUSED:
                active2 = t
            now_rules = v2 if active2 is not None else v1
            if state is PauseState.NOT_PAUSED:
                pv = voters(now_rules, Decision.PAUSE, epoch + 1, t)
                if len(pv & now_rules.labs) >= now_rules.pause:
                    state, epoch, since, paused_at = PauseState.PAUSED, epoch + 1, t, t
                    gov = now_rules
                    governed[epoch] = 2 if active2 is not None else 1
                    history.append((t, state, epoch))
                    continue
            else:
                lv = voters(gov, Decision.LIFT, epoch, t)
                if (
                    len(lv & gov.labs) >= gov.lift
                    and len(lv & gov.overseers) >= gov.lift_ov
                    and t >= paused_at + gov.min_pause
                ):
                    state, since = PauseState.NOT_PAUSED, t
                    history.append((t, state, epoch))
                    continue
            break
    return Outcome(state, epoch, since, governed, active2, history)


def state_at(out: Outcome, slot_ms: int) -> tuple[PauseState, int]:
    state, epoch = PauseState.NOT_PAUSED, 0
    for t, s, e in out.history:
        if T0 + t * S <= slot_ms:
            state, epoch = s, e
    return state, epoch


def full_logs(case: Case) -> dict[str, list[tuple[Decision, int, int]]]:
    return {m: list(case.logs[i]) for i, m in enumerate(MEMBERS)}


# -- the checks -------------------------------------------------------------------------------


def progress(view: View) -> tuple[int, int]:
    """Where the certified state is in NOT_PAUSED@0 < PAUSED@1 < NOT_PAUSED@1 < PAUSED@2 …"""
    return (view.epoch, 0 if view.certified_state is PauseState.PAUSED else 1)


def check_agrees(case: Case, view: View, out: Outcome) -> None:
    assert (view.certified_state, view.epoch) == (out.state, out.epoch), case
    assert view.certified_since_ms == (None if out.since is None else T0 + out.since * S), case
    digests = {1: G.digest, 2: amendment(case.kind).digest}
    for rec in view.epochs:
        if rec.pause is not None:
            assert rec.charter_digest == digests[out.governed[rec.epoch]], case
    a2 = view.versions[1].active_from_ms
    if out.active2 is not None:
        assert a2 == T0 + out.active2 * S, case
    else:
        assert a2 is None or a2 > T0 + NOW * S, case


@pytest.mark.parametrize(("kind", "r"), list(itertools.product(KINDS, RS)))
def test_one_amendment_exhaustively_against_the_reference(kind: str, r: int) -> None:
    now = T0 + NOW * S
    rnd = random.Random(9)
    n = disagreements = proven = withheld_views = deferred = forks = back = 0
    for case in cases(kind, r):
        n += 1
        versions = versions_for(case.kind, case.r)
        items = items_for(case)
        view = evaluate_versions(versions, items, now)
        out = reference(case, full_logs(case))
        try:
            check_agrees(case, view, out)
        except AssertionError:
            disagreements += 1
            raise
        # everyone synced at now: proven as of now
        assert (view.state, view.as_of_ms) == (view.certified_state, now), case
        if n % 7 == 0:  # deterministic: the same view in any order
            shuffled = items[:]
            rnd.shuffle(shuffled)
            assert evaluate_versions(versions, shuffled, now) == view
        # fail-safe: lab-b forks its last statement; its lifts from there on stop counting
        if n % 3 == 0 and case.logs[1]:
            seq = len(case.logs[1])
            ver, key = case.signer("lab-b", case.logs[1][-1][2])
            last = signed_log(case, "lab-b")[-1].statement
            twin = build_statement(
                G if ver == 1 else amendment(case.kind),
                "lab-b",
                seq,
                last.prev_hash,
                last.issued_at_ms,
                attest(note="fork"),
            )
            forked_view = evaluate_versions(versions, [*items, sign_statement(key, twin)], now)
            assert [m.id for m in forked_view.members if m.equivocator] == ["lab-b"]
            check_agrees(case, forked_view, reference(case, full_logs(case), forked=("lab-b", seq)))
            forks += 1
        # certified progress moves back only when an earlier pause under genesis comes to
        # light, changing the rules that lift it; the answer was then UNKNOWN (below)
        # no escape: ratified during a pause, the amendment changes nothing about its lift
        if out.governed:
            for e, ver in out.governed.items():
                rec = view.epochs[e - 1]
                assert rec.pause is not None
                lifted = rec.lift is not None and rec.lift.effective_at_ms <= now
                end = rec.lift.effective_at_ms if rec.lift is not None and lifted else None
                start = rec.pause.effective_at_ms
                if ver == 1 and start <= T0 + case.r * S and (end is None or end > T0 + case.r * S):
                    deferred += 1
                    alone = reference(case, full_logs(case), amended=False)
                    assert e in alone.governed
                    assert [h for h in alone.history if h[2] == e] == [
                        h for h in out.history if h[2] == e
                    ], case
        # withhold the end of a member's log: any proven answer is the whole history's. Each
        # case withholds from one member in turn (every member under the deep profile).
        for m in MEMBERS if DEEP else (MEMBERS[n % len(MEMBERS)],):
            log = case.logs[MEMBERS.index(m)]
            for keep in range(len(log)):
                less = evaluate_versions(versions, items_for(case, m, keep), now)
                withheld_views += 1
                if progress(less) > progress(view):
                    back += 1
                    assert less.state is PauseState.UNKNOWN
                if less.state is not PauseState.UNKNOWN:
                    proven += 1
                    assert less.as_of_ms is not None
                    assert (less.state, less.epoch) == state_at(out, less.as_of_ms), (case, m, keep)
            # or its last heartbeat was at an earlier slot, its later statements unseen
            for beat_at in sorted({case.r - 1, case.r, 6}):
                less = evaluate_versions(versions, items_for(case, m, beat_at=beat_at), now)
                withheld_views += 1
                if less.state is not PauseState.UNKNOWN:
                    proven += 1
                    assert less.as_of_ms is not None
                    got = (less.state, less.epoch)
                    assert got == state_at(out, less.as_of_ms), (case, m, beat_at)
    assert disagreements == 0
    print(
        f"{n} cases, {withheld_views} with part of a log withheld ({proven} of them proven),"
        f" {deferred} pauses with the amendment ratified during them, {forks} with a fork,"
        f" {back} steps back of the certified state (all from UNKNOWN); 0 disagreements"
    )
    assert proven > 0
