"""How statements signed under different charter versions count (core.versions, protocol §15.8).

One test per named threat: an amendment ratified during a pause, an amendment that lowers
thresholds while votes are in flight, a removed member's later statements, a replaced key used
after its replacement (with back-dated times). Then the rules around them: which key verifies
what, when a version takes effect, and when a member that left still has to be heard from.
"""

from __future__ import annotations

import pytest
from chains import World, amend, approvals, genesis, ratify
from helpers import T0, attest, federation_data, key_for, lift, pause

from pausenet.core.approval import sign_approval
from pausenet.core.charter import CHARTER_FORMAT_V2, parse_charter
from pausenet.core.governance import follow_chain
from pausenet.core.records import SignedHeartbeat, SignedStatement
from pausenet.core.verify import Rejection
from pausenet.core.versions import Version, Versions
from pausenet.core.view import PauseState
from pausenet.errors import GovernanceError, Reason

S = 1000
PAUSED, NOT_PAUSED, UNKNOWN = PauseState.PAUSED, PauseState.NOT_PAUSED, PauseState.UNKNOWN
EVERYONE = ("lab-a", "lab-b", "lab-c", "overseer-a")
G = genesis()  # 3 labs, 1 overseer: pause 2 labs, lift 2 labs + the overseer


def beat_all(w: World, at: int, members: tuple[str, ...] = EVERYONE) -> None:
    for m in members:
        newest = next(v.charter for v in reversed(w.versions.versions) if v.charter.member(m))
        key = None if m != "lab-a" or newest.member(m) == G.member(m) else key_for("lab-a-2")
        w.beat(m, at=at, under=newest, key=key)


# -- ratification and activation times ----------------------------------------------------------


def test_ratification_is_when_the_last_needed_approval_was_signed() -> None:
    v2 = amend(G, rekey={"lab-a": key_for("lab-a-2")})
    g_ok = [sign_approval(key_for(m), G, m, T0).envelope for m in EVERYONE]
    envs = [
        sign_approval(key_for("lab-b"), v2, "lab-b", T0 + 3 * S).envelope,
        sign_approval(key_for("lab-c"), v2, "lab-c", T0 + 9 * S).envelope,  # third: not needed
        sign_approval(key_for("lab-a"), v2, "lab-a", T0 + 5 * S).envelope,  # with its old key
        sign_approval(key_for("lab-a-2"), v2, "lab-a", T0 + 7 * S).envelope,  # consent: last
    ]
    chain = follow_chain(G, [v2], g_ok + envs)
    versions = Versions.from_chain(chain, g_ok + envs)
    assert [v.ratified_at_ms for v in versions.versions] == [0, T0 + 7 * S]
    without_consent = follow_chain(G, [v2], g_ok + envs[:3])
    assert len(without_consent.in_force) == 1


def test_versions_must_be_a_chain_and_the_approvals_must_ratify_it() -> None:
    v2 = amend(G, pause_threshold=3)
    with pytest.raises(GovernanceError, match="does not amend"):
        Versions((Version(v2, 0), Version(G, 0)))
    chain = follow_chain(G, [v2], [sign_approval(key_for(m), G, m, T0).envelope for m in EVERYONE])
    chain_envs = [sign_approval(key_for(m), G, m, T0).envelope for m in EVERYONE]
    chain_envs += approvals(G, v2, T0)
    chain = follow_chain(G, [v2], chain_envs)
    with pytest.raises(GovernanceError, match="do not ratify version 2"):
        Versions.from_chain(chain, chain_envs[:4])


# -- threat: an amendment ratified during a pause --------------------------------------------------


def test_an_amendment_ratified_during_a_pause_waits_for_its_lift_under_the_old_rules() -> None:
    v2 = amend(G, pause_threshold=1, lift_threshold=1, lift_overseer_threshold=0)  # easier
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-a", pause(1), at=T0 + 1 * S, under=G)
    w.say("lab-b", pause(1), at=T0 + 2 * S, under=G)
    w.say("lab-a", lift(1), at=T0 + 12 * S, under=v2)  # enough under v2 alone: not counted so
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epoch) == (PAUSED, 1)
    assert v.epochs[0].charter_digest == G.digest
    assert v.versions[1].active_from_ms is None  # waits for the lift
    assert v.charter_digest == G.digest
    # lifted exactly as genesis says: two labs and the overseer
    w.say("lab-b", lift(1), at=T0 + 13 * S, under=v2)
    assert w.view(T0 + 20 * S).certified_state is PAUSED
    w.say("overseer-a", lift(1), at=T0 + 14 * S, under=G)
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epoch, v.certified_since_ms) == (NOT_PAUSED, 1, T0 + 14 * S)
    assert v.versions[1].active_from_ms == T0 + 14 * S  # takes effect at the lift
    assert v.charter_digest == v2.digest
    # from then on v2 governs: one lab pauses and one lab lifts epoch 2
    w.say("lab-c", pause(2), at=T0 + 15 * S, under=v2)
    w.say("lab-c", lift(2), at=T0 + 16 * S, under=v2)
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epoch) == (NOT_PAUSED, 2)
    assert v.epochs[1].charter_digest == v2.digest


def test_a_rekey_during_a_pause_gives_the_new_key_no_say_in_its_lift() -> None:
    # Otherwise a majority could "replace" a minority lab's key with one it holds, and lift a
    # pause that needed that lab.
    v2 = amend(G, rekey={"lab-a": key_for("lab-a-2")})
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-a", pause(1), at=T0 + 1 * S, under=G)
    w.say("lab-b", pause(1), at=T0 + 2 * S, under=G)
    w.say("lab-a", lift(1), at=T0 + 12 * S, under=v2, key=key_for("lab-a-2"))
    w.say("lab-b", lift(1), at=T0 + 13 * S, under=v2)
    w.say("overseer-a", lift(1), at=T0 + 14 * S, under=v2)
    assert w.view(T0 + 20 * S).certified_state is PAUSED
    w.say("lab-c", lift(1), at=T0 + 15 * S, under=v2)
    assert w.view(T0 + 20 * S).certified_since_ms == T0 + 15 * S


# -- threat: an amendment that lowers thresholds while votes are in flight -----------------------


def test_votes_in_flight_count_under_lower_thresholds_only_from_the_amendment_on() -> None:
    v2 = amend(G, pause_threshold=1)
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-a", pause(1), at=T0 + 1 * S, under=G)
    v = w.view(T0 + 5 * S)
    assert v.certified_state is NOT_PAUSED  # genesis needs two labs
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epoch) == (PAUSED, 1)
    pause_cert = v.epochs[0].pause
    assert pause_cert is not None
    assert pause_cert.formed_at_ms == T0 + 1 * S  # when the vote was signed
    assert pause_cert.effective_at_ms == T0 + 10 * S  # but not before v2 took effect
    assert v.epochs[0].charter_digest == v2.digest


def test_a_raised_threshold_cannot_undo_a_pause_formed_before_it() -> None:
    v2 = amend(G, pause_threshold=3, lift_threshold=3)
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-a", pause(1), at=T0 + 1 * S, under=G)
    w.say("lab-b", pause(1), at=T0 + 2 * S, under=G)
    w.say("lab-a", lift(1), at=T0 + 11 * S, under=v2)
    w.say("lab-b", lift(1), at=T0 + 12 * S, under=v2)
    w.say("overseer-a", lift(1), at=T0 + 13 * S, under=v2)
    v = w.view(T0 + 20 * S)
    # genesis' rules lift it: two labs and the overseer; v2 then takes effect
    assert (v.certified_state, v.certified_since_ms) == (NOT_PAUSED, T0 + 13 * S)
    assert v.versions[1].active_from_ms == T0 + 13 * S


# -- threat: a removed member's later statements -------------------------------------------------


def test_a_removed_member_s_later_votes_count_for_nothing() -> None:
    v2 = amend(G, remove=["lab-c"])
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-c", pause(1), at=T0 + 12 * S, under=G)  # its node still runs genesis
    w.say("lab-a", pause(1), at=T0 + 13 * S, under=v2)
    refused = w.say("lab-c", pause(1), at=T0 + 14 * S, under=v2)
    assert isinstance(refused, Rejection)
    assert refused.reason is Reason.UNKNOWN_MEMBER
    v = w.view(T0 + 20 * S)
    assert v.certified_state is NOT_PAUSED
    assert v.epochs[0].pause_votes == ("lab-a",)


def test_a_removed_member_s_votes_from_before_its_removal_still_count() -> None:
    v2 = amend(G, remove=["lab-c"])
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-c", pause(1), at=T0 + 5 * S, under=G)
    w.say("lab-a", pause(1), at=T0 + 6 * S, under=G)
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epochs[0].charter_digest) == (PAUSED, G.digest)
    # lifted under genesis, whose labs include lab-c
    for m, t in (("lab-c", 11), ("lab-b", 12), ("overseer-a", 13)):
        w.say(m, lift(1), at=T0 + t * S, under=G)
    assert w.view(T0 + 20 * S).certified_since_ms == T0 + 13 * S


def test_a_member_that_left_is_heard_from_once_after_its_removal_then_never_again() -> None:
    g = genesis(pause_threshold=1, lift_threshold=1)
    v2 = amend(g, remove=["lab-c"])
    w = World(ratify(g, (v2, T0 + 10 * S)))
    beat_all(w, T0 + 5 * S)
    beat_all(w, T0 + 100 * S, ("lab-a", "lab-b", "overseer-a"))
    # lab-c's last word was before it was removed: it could have paused under genesis unseen
    v = w.view(T0 + 100 * S)
    assert (v.certified_state, v.state) == (NOT_PAUSED, UNKNOWN)
    assert "lab-c" in v.explanation
    # one heartbeat after its removal took effect shows its whole log: proven from then on,
    # though that heartbeat is long stale
    w.beat("lab-c", at=T0 + 11 * S, under=g)
    v = w.view(T0 + 100 * S)
    assert (v.state, v.as_of_ms) == (NOT_PAUSED, T0 + 100 * S)
    lab_c = v.member("lab-c")
    assert lab_c is not None
    assert not lab_c.fresh


# -- threat: a replaced key used after its replacement, with back-dated times -------------------


def test_a_replaced_key_counts_for_nothing_under_the_version_that_replaced_it() -> None:
    v2 = amend(G, rekey={"lab-a": key_for("lab-a-2")})
    w = World(ratify(G, (v2, T0 + 10 * S)))
    thief = key_for("lab-a")
    w.say("lab-a", pause(1), at=T0 + 15 * S, under=G, key=thief)
    w.say("lab-b", pause(1), at=T0 + 16 * S, under=v2)
    v = w.view(T0 + 20 * S)
    assert v.certified_state is NOT_PAUSED
    assert v.epochs[0].pause_votes == ("lab-b",)


def test_a_replaced_key_back_dated_into_its_version_can_only_add_to_a_pause() -> None:
    # The residual risk docs/security.md names: inside its own version's time a stolen key is
    # still that member's key. It can help start a pause; it cannot lift one alone.
    v2 = amend(G, rekey={"lab-a": key_for("lab-a-2")})
    w = World(ratify(G, (v2, T0 + 10 * S)))
    thief = key_for("lab-a")
    w.say("lab-b", pause(1), at=T0 + 6 * S, under=G)
    w.say("lab-a", pause(1), at=T0 + 5 * S, under=G, key=thief)  # signed later, back-dated
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epochs[0].charter_digest) == (PAUSED, G.digest)
    w.say("lab-a", lift(1), at=T0 + 7 * S, under=G, key=thief)
    w.say("overseer-a", lift(1), at=T0 + 8 * S, under=G)
    assert w.view(T0 + 20 * S).certified_state is PAUSED  # one lab's lift is not enough


def test_which_key_verifies_what_after_a_rekey() -> None:
    v2 = amend(G, rekey={"lab-a": key_for("lab-a-2")})
    versions = ratify(G, (v2, T0 + 10 * S))
    w = World(versions)
    new, old = key_for("lab-a-2"), key_for("lab-a")
    # a statement verifies with the key of the version it names
    assert isinstance(w.say("lab-a", pause(1), at=T0, under=G, key=old), SignedStatement)
    got = w.say("lab-a", pause(1), at=T0 + S, under=G, key=new, keep=False)
    assert isinstance(got, Rejection)
    assert got.reason is Reason.BAD_SIGNATURE
    w.logs["lab-a"].pop()
    assert isinstance(w.say("lab-a", lift(1), at=T0 + 2 * S, under=v2, key=new), SignedStatement)
    got = w.say("lab-a", lift(1), at=T0 + 3 * S, under=v2, key=old, keep=False)
    assert isinstance(got, Rejection)
    assert got.reason is Reason.BAD_SIGNATURE
    w.logs["lab-a"].pop()
    # a heartbeat only with the member's newest key, whatever version it names
    assert isinstance(w.beat("lab-a", at=T0 + 4 * S, under=v2, key=new), SignedHeartbeat)
    got = w.beat("lab-a", at=T0 + 5 * S, under=G, key=old)
    assert isinstance(got, Rejection)
    assert got.reason is Reason.BAD_SIGNATURE
    assert "newest" in got.detail
    # the log carries across the versions: both statements are counted
    v = w.view(T0 + 20 * S)
    lab_a = v.member("lab-a")
    assert lab_a is not None
    assert lab_a.head_seq == 2


def test_a_statement_naming_a_charter_not_in_force_is_wrong_charter() -> None:
    v2 = amend(G, pause_threshold=1)
    versions = ratify(G, (v2, T0 + 10 * S))
    v3 = amend(v2, lift_threshold=1)  # never ratified
    w = World(versions)
    got = w.say("lab-b", pause(1), at=T0, under=v3)
    assert isinstance(got, Rejection)
    assert got.reason is Reason.WRONG_CHARTER


def test_view_json_reports_the_versions_and_each_epoch_s_version() -> None:
    v2 = amend(G, pause_threshold=1)
    w = World(ratify(G, (v2, T0 + 10 * S)))
    w.say("lab-a", pause(1), at=T0 + 11 * S, under=v2)
    doc = w.view(T0 + 20 * S).to_json()
    assert doc["versions"] == [
        {"version": 1, "digest": G.digest_hex, "ratified_at": 0, "active_from": 0},
        {
            "version": 2,
            "digest": v2.digest_hex,
            "ratified_at": T0 + 10 * S,
            "active_from": T0 + 10 * S,
        },
    ]
    assert doc["epochs"][0]["charter_digest"] == v2.digest_hex


def test_an_unseen_earlier_lift_that_would_have_let_an_older_version_pause_keeps_it_unknown() -> (
    None
):
    # lab-b's lift of epoch 1 is withheld. Without it epoch 1 lifts at 6 s, after v2's
    # ratification at 5 s, so v2 (4 labs to pause) takes effect at 6 s and epoch 2's two votes
    # are too few. With it epoch 1 lifts at 3.5 s, v2 takes effect at 5 s, and the same two votes
    # paused epoch 2 under genesis at 4.5 s. Not knowing lab-b's log, nothing is proven.
    g = genesis(4, 1, pause_threshold=2, lift_threshold=2)
    v2 = amend(g, pause_threshold=4)
    w = World(ratify(g, (v2, T0 + 5 * S)))
    w.say("lab-a", pause(1), at=T0 + 1000, under=g)
    w.say("lab-b", pause(1), at=T0 + 1500, under=g)
    w.say("lab-a", lift(1), at=T0 + 3000, under=g)
    w.say("overseer-a", lift(1), at=T0 + 3000, under=g)
    withheld = w.say("lab-b", lift(1), at=T0 + 3500, under=g, keep=False)
    w.say("lab-a", pause(2), at=T0 + 4000, under=g)
    w.say("lab-c", pause(2), at=T0 + 4500, under=g)
    w.say("lab-c", lift(1), at=T0 + 6000, under=v2)
    beat_all(w, T0 + 20 * S, ("lab-a", "lab-c", "lab-d", "overseer-a"))
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epoch, v.certified_since_ms) == (NOT_PAUSED, 1, T0 + 6000)
    assert v.state is UNKNOWN
    assert not isinstance(withheld, Rejection)
    w.items.append(withheld)
    v = w.view(T0 + 20 * S)
    assert (v.certified_state, v.epoch, v.epochs[1].charter_digest) == (PAUSED, 2, g.digest)


def test_a_tripwire_an_amendment_removes_pauses_only_inside_the_time_of_its_version() -> None:
    data = federation_data(3, 1)
    data["format"] = CHARTER_FORMAT_V2
    for t in data["triggers"]:
        if t["id"] == "rsi-detected":
            t["auto_pause"] = {"attest_threshold": 1, "attesters": ["overseer"]}
    g = parse_charter(data)
    v2 = amend(g)  # the same roster and rules, no tripwire
    w = World(ratify(g, (v2, T0 + 10 * S)))
    w.say("overseer-a", attest(epoch=1), at=T0 + 12 * S, under=v2)
    assert w.view(T0 + 20 * S).certified_state is NOT_PAUSED
    w2 = World(ratify(g, (v2, T0 + 10 * S)))
    w2.say("overseer-a", attest(epoch=1), at=T0 + 5 * S, under=g)
    v = w2.view(T0 + 20 * S)
    pause_cert = v.epochs[0].pause
    assert pause_cert is not None
    assert (v.certified_state, pause_cert.path) == (PAUSED, "tripwire:rsi-detected")
    assert v.epochs[0].charter_digest == g.digest


def test_a_removed_member_heartbeats_under_the_newest_version_that_lists_it() -> None:
    v2 = amend(G, remove=["lab-c"])
    w = World(ratify(G, (v2, T0 + 10 * S)))
    assert isinstance(w.beat("lab-c", at=T0 + 11 * S, under=G), SignedHeartbeat)
    got = w.beat("lab-c", at=T0 + 12 * S, under=v2)
    assert isinstance(got, Rejection)
    assert got.reason is Reason.UNKNOWN_MEMBER
    v = w.view(T0 + 20 * S)
    lab_c = v.member("lab-c")
    assert lab_c is not None
    assert (lab_c.heartbeat_at_ms, lab_c.synced) == (T0 + 11 * S, True)
    assert [m.id for m in v.members] == ["lab-a", "lab-b", "overseer-a", "lab-c"]
