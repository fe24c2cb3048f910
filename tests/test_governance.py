"""The chain of charter versions (core.governance): ratification, amendments, forks, bounds.

One test per named threat: forged or too few approvals, a non-member's approval, rollback, a fork
of the chain, an added member who did not approve, a replaced key approving with the old key, a
chain too long. Then properties over random approval sets, checked against a reference written
from the rules in docs/protocol.md.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable
from typing import Any

import pytest
from helpers import federation_data, key_for
from hypothesis import given, settings
from hypothesis import strategies as st

from pausenet.core.approval import sign_approval
from pausenet.core.charter import CHARTER_FORMAT_V2, Charter, parse_charter
from pausenet.core.dsse import Envelope
from pausenet.core.governance import (
    MAX_CHARTER_BYTES,
    ChainResult,
    follow_chain,
    ratification,
    require_chain,
)
from pausenet.core.keys import SigningKey
from pausenet.errors import GovernanceError, Reason

T = 1_700_000_000_000
LABS = ("lab-a", "lab-b", "lab-c")
EVERYONE = (*LABS, "overseer-a")


def genesis(**rules: int) -> Charter:
    data = federation_data(3, 1)
    if rules:
        data["format"] = CHARTER_FORMAT_V2
        data["rules"].update(rules)
    return parse_charter(data)


def amend(
    prev: Charter,
    *,
    add: Iterable[tuple[str, str]] = (),
    remove: Iterable[str] = (),
    rekey: dict[str, SigningKey] | None = None,
    **rules: int,
) -> Charter:
    """The next version of prev: members added (id, role), removed or re-keyed; rules changed."""
    data: dict[str, Any] = copy.deepcopy(federation_data(3, 1))
    data["members"] = [
        {"id": m.id, "role": m.role.value, "public_key": m.public_key.hex()}
        for m in prev.members
        if m.id not in set(remove)
    ]
    for mid, role in add:
        data["members"].append(
            {"id": mid, "role": role, "public_key": key_for(mid).public_key.hex()}
        )
    for m in data["members"]:
        if rekey and m["id"] in rekey:
            m["public_key"] = rekey[m["id"]].public_key.hex()
    data.update(format=CHARTER_FORMAT_V2, version=prev.version + 1, previous=prev.digest_hex)
    data["rules"].update(
        pause_threshold=prev.rules.pause_threshold,
        lift_threshold=prev.rules.lift_threshold,
        lift_overseer_threshold=prev.rules.lift_overseer_threshold,
    )
    data["rules"].update(rules)
    return parse_charter(data)


def approve(charter: Charter, *members: str, key: SigningKey | None = None) -> list[Envelope]:
    return [sign_approval(key or key_for(m), charter, m, T).envelope for m in members]


def ratified(**rules: int) -> tuple[Charter, list[Envelope]]:
    g = genesis(**rules)
    return g, approve(g, *EVERYONE)


# -- genesis -----------------------------------------------------------------------------------


def test_genesis_is_in_force_only_when_every_member_approved() -> None:
    g = genesis()
    for k in range(len(EVERYONE)):
        for who in itertools.combinations(EVERYONE, k):
            r = follow_chain(g, [], approve(g, *who))
            assert not r
            assert r.current is None
            assert r.pending[0].consents == tuple(sorted(who))
            lacking = sorted(set(EVERYONE) - set(who))
            assert ", ".join(lacking) in r.stopped
    r = follow_chain(g, [], approve(g, *EVERYONE))
    assert r
    assert r.current == g
    assert r.in_force[0].consents == EVERYONE
    assert require_chain(g, [], approve(g, *EVERYONE)) == g


def test_the_raising_wrapper_says_why_nothing_is_in_force() -> None:
    g = genesis()
    with pytest.raises(GovernanceError, match=r"genesis is not ratified yet: missing .*lab-c"):
        require_chain(g, [], approve(g, "lab-a", "lab-b", "overseer-a"))


def test_forged_and_foreign_genesis_approvals_do_not_count() -> None:
    g = genesis()
    forged = approve(g, "lab-c", key=key_for("mallory"))
    stranger = approve(g, "lab-z")
    r = follow_chain(g, [], approve(g, "lab-a", "lab-b", "overseer-a") + forged + stranger)
    assert not r
    assert [x.reason for x in r.rejected] == [Reason.BAD_SIGNATURE, Reason.UNKNOWN_MEMBER]
    assert ratification(g, forged).consents == ()


def test_a_pinned_later_version_is_in_force_by_the_pin() -> None:
    g, _ = ratified()
    v2 = amend(g, pause_threshold=3)
    r = follow_chain(v2, [g], [])
    assert r.current == v2
    assert r.in_force[0].pinned
    assert [x.reason for x in r.refused] == ["version 1 is not after the pinned version 2"]


# -- amendments --------------------------------------------------------------------------------


def test_an_amendment_takes_effect_with_the_threshold_of_the_version_amended() -> None:
    g, ok = ratified()
    v2 = amend(g, pause_threshold=3)
    assert g.amend_threshold == 2
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a"))
    assert r.current == g
    assert r.pending[0].missing() == ["1 more lab approval(s) of version 1's labs (2 needed)"]
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-c"))
    assert r.current == v2
    assert r.in_force[1].labs == ("lab-a", "lab-c")
    assert [c.charter.version for c in r.in_force] == [1, 2]


def test_overseer_threshold_of_the_version_amended_applies() -> None:
    g, ok = ratified(amend_overseer_threshold=1)
    v2 = amend(g, lift_threshold=3)
    assert not follow_chain(g, [v2], ok + approve(v2, *LABS)).pending[0]
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-b", "overseer-a"))
    assert r.current == v2
    assert r.in_force[1].overseers == ("overseer-a",)


def test_the_new_version_s_own_thresholds_do_not_ratify_it() -> None:
    """A successor that lowers amend_threshold still needs the old threshold to take effect."""
    g, ok = ratified(amend_threshold=3)
    v2 = amend(g, amend_threshold=2)
    assert follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-b")).current == g
    assert follow_chain(g, [v2], ok + approve(v2, *LABS)).current == v2


def test_an_added_member_must_approve_with_its_own_key() -> None:
    g, ok = ratified()
    v2 = amend(g, add=[("lab-d", "lab")])
    labs = approve(v2, "lab-a", "lab-b")
    r = follow_chain(g, [v2], ok + labs)
    assert r.current == g
    assert r.pending[0].missing() == ["approval with its new key of lab-d"]
    forged = approve(v2, "lab-d", key=key_for("mallory"))
    assert follow_chain(g, [v2], ok + labs + forged).current == g
    r = follow_chain(g, [v2], ok + labs + approve(v2, "lab-d"))
    assert r.current == v2
    assert r.in_force[1].consents == ("lab-d",)
    # an added member's approval does not count toward the threshold of the version amended
    assert follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-d")).current == g


def test_a_replaced_key_needs_the_new_key_and_the_old_key_counts_only_toward_the_threshold() -> (
    None
):
    g, ok = ratified()
    new_key = key_for("lab-b-2025")
    v2 = amend(g, rekey={"lab-b": new_key})
    # lab-b approving with its old key: counts for the threshold, is not consent
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-b"))
    assert r.current == g
    assert r.pending[0].labs == ("lab-a", "lab-b")
    assert r.pending[0].missing() == ["approval with its new key of lab-b"]
    with_new = approve(v2, "lab-b", key=new_key)
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-b") + with_new)
    assert r.current == v2
    # the new key alone does not count as lab-b's approval under version 1
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a") + with_new)
    assert r.current == g
    assert r.pending[0].labs == ("lab-a",)
    # a thief with the old key cannot approve version 3 once version 2 replaced it
    v3 = amend(v2, pause_threshold=1)
    stolen = approve(v3, "lab-b")
    r = follow_chain(
        g, [v2, v3], ok + approve(v2, "lab-a", "lab-c") + with_new + approve(v3, "lab-a") + stolen
    )
    assert r.current == v2
    assert r.pending[0].labs == ("lab-a",)
    assert [x.reason for x in r.rejected] == [Reason.BAD_SIGNATURE]


def test_a_removed_member_s_consent_is_not_needed_and_its_approval_counts_under_the_old_rules() -> (
    None
):
    g, ok = ratified()
    v2 = amend(g, remove=["lab-c"], pause_threshold=1, lift_threshold=1)
    envs = ok + approve(v2, "lab-a", "lab-c")
    r = follow_chain(g, [v2], envs)
    assert r.current == v2
    assert r.in_force[1].consents_needed == ()
    # once removed, its approval of a later version counts for nothing
    v3 = amend(v2, lift_threshold=2)
    r = follow_chain(g, [v2, v3], envs + approve(v3, "lab-c", "lab-a"))
    assert r.current == v2
    assert r.pending[0].labs == ("lab-a",)


def test_a_non_member_s_approval_counts_for_nothing() -> None:
    g, ok = ratified()
    v2 = amend(g, pause_threshold=3)
    r = follow_chain(g, [v2], ok + approve(v2, "lab-a", "lab-z"))
    assert r.current == g
    assert r.pending[0].labs == ("lab-a",)


def test_an_approval_of_another_charter_does_not_count() -> None:
    g, ok = ratified()
    v2 = amend(g, pause_threshold=3)
    other = amend(g, pause_threshold=1)
    r = follow_chain(g, [v2], ok + approve(other, "lab-a", "lab-b"))
    assert r.current == g
    assert r.pending[0].labs == ()


# -- never back, forks, bounds -----------------------------------------------------------------


def test_the_chain_never_goes_back() -> None:
    g, ok = ratified()
    v2 = amend(g, pause_threshold=3)
    v3 = amend(v2, pause_threshold=1)
    envs = ok + approve(v2, "lab-a", "lab-b") + approve(v3, "lab-a", "lab-b")
    r = follow_chain(g, [v3, v2], envs)
    assert [c.charter.version for c in r.in_force] == [1, 2, 3]
    # pinning the adopted version refuses everything older, approved or not
    r = follow_chain(v3, [g, v2], envs)
    assert r.current == v3
    assert {x.version for x in r.refused} == {1, 2}
    # a rival version 2 approved later does not replace the one in force
    rival = amend(g, lift_threshold=3)
    r = follow_chain(v3, [rival], envs + approve(rival, *LABS))
    assert r.current == v3
    assert "not after the pinned version 3" in r.refused[0].reason


def test_a_successor_that_names_the_wrong_previous_or_skips_a_version_is_refused() -> None:
    g, ok = ratified()
    v2 = amend(g, pause_threshold=3)
    data = json_of(v2)
    data["version"] = 3
    skip = parse_charter(data)
    r = follow_chain(g, [skip], ok + approve(skip, *LABS))
    assert r.current == g
    assert "does not follow a version in force" in r.refused[0].reason


def json_of(c: Charter) -> dict[str, Any]:
    return dict(json.loads(c.canonical_bytes))


def test_a_fork_is_evidence_and_the_chain_stops_at_the_last_unambiguous_version() -> None:
    g, ok = ratified()
    x = amend(g, pause_threshold=3)
    y = amend(g, pause_threshold=1)
    envs = ok + approve(x, "lab-a", "lab-b") + approve(y, "lab-b", "lab-c")
    for charters in ([x, y], [x], [y], []):  # the successors' text is not needed for evidence
        r = follow_chain(g, charters, envs)
        assert r.current == g
        assert len(r.evidence) == 1
        ev = r.evidence[0]
        assert (ev.member, ev.version) == ("lab-b", 1)
        assert {ev.first.approval.charter_digest, ev.second.approval.charter_digest} == {
            x.digest,
            y.digest,
        }
        assert ev.first.hash < ev.second.hash
        assert "two successors" in r.stopped
    # the evidence is the same whatever order the approvals come in
    again = follow_chain(g, [y, x], list(reversed(envs)))
    assert again.evidence[0].id == r.evidence[0].id


def test_a_fork_below_stops_the_chain_even_if_one_side_was_approved() -> None:
    g, ok = ratified()
    x = amend(g, pause_threshold=3)
    y = amend(g, pause_threshold=1)
    envs = ok + approve(x, *LABS) + approve(y, "lab-a")
    r = follow_chain(g, [x, y], envs)
    assert r.current == g
    assert [e.member for e in r.evidence] == ["lab-a"]


def test_a_chain_too_long_is_refused_with_a_reason() -> None:
    g, ok = ratified()
    chain, envs = [g], list(ok)
    for i in range(4):
        nxt = amend(chain[-1], min_pause_s=i + 1)
        chain.append(nxt)
        envs += approve(nxt, "lab-a", "lab-b")
    r = follow_chain(g, chain[1:], envs, max_length=3)
    assert [c.charter.version for c in r.in_force] == [1, 2, 3, 4]
    assert "too long" in r.stopped
    assert "version 5 is refused" in r.stopped
    assert follow_chain(g, chain[1:], envs, max_length=4).current == chain[-1]


def test_a_charter_too_large_to_gossip_is_refused() -> None:
    g, ok = ratified()
    data = json_of(amend(g))
    data["triggers"][0]["description"] = "x" * MAX_CHARTER_BYTES
    big = parse_charter(data)
    r = follow_chain(g, [big], ok + approve(big, *LABS))
    assert r.current == g
    assert "limit" in r.refused[0].reason
    assert r.pending == ()


def test_a_charter_of_another_federation_is_refused() -> None:
    g, ok = ratified()
    data = json_of(amend(g))
    data["federation_id"] = "elsewhere"
    other = parse_charter(data)
    r = follow_chain(g, [other], ok)
    assert "federation" in r.refused[0].reason


# -- properties --------------------------------------------------------------------------------

_G, _OK = ratified(amend_overseer_threshold=1)
_X = amend(_G, add=[("lab-d", "lab")], rekey={"lab-a": key_for("lab-a-new")})
_Y = amend(_G, pause_threshold=3)
# every approval an honest or dishonest member could sign for the two successors
_POOL: list[tuple[str, Charter, str, SigningKey]] = [
    (f"{m}/{key_name}>{name}", c, m, key_for(key_name))
    for name, c in (("x", _X), ("y", _Y))
    for m, key_name in [(m, m) for m in (*EVERYONE, "lab-d")]
    + [("lab-a", "lab-a-new"), ("lab-c", "mallory")]
]
_SIGNED = {label: sign_approval(k, c, m, T).envelope for label, c, m, k in _POOL}


def _key_in(c: Charter, member: str) -> bytes:
    m = c.member(member)
    return m.public_key.raw if m else b""


def reference(picked: set[tuple[str, Charter, str, SigningKey]]) -> Charter:
    """The rules, written once more directly: what is in force after _G given these approvals."""
    valid = {(c.digest, m) for _, c, m, k in picked if _key_in(_G, m) == k.public_key.raw}
    for m in EVERYONE:
        if len({d for d, who in valid if who == m}) > 1:
            return _G  # a fork: stop
    for c in (_X, _Y):
        labs = {m for d, m in valid if d == c.digest and m in LABS}
        ovs = {m for d, m in valid if d == c.digest and m == "overseer-a"}
        changed = {m.id for m in c.members if _key_in(_G, m.id) != m.public_key.raw}
        consents = {m for _, cc, m, k in picked if cc == c and _key_in(c, m) == k.public_key.raw}
        if len(labs) >= 2 and len(ovs) >= 1 and changed <= consents:
            return c
    return _G


@settings(max_examples=300, deadline=None)
@given(st.sets(st.sampled_from(sorted(_SIGNED))), st.randoms(use_true_random=False))
def test_the_chain_agrees_with_a_direct_reading_of_the_rules(picked: set[str], rnd: Any) -> None:
    envs = _OK + [_SIGNED[p] for p in sorted(picked)]
    rnd.shuffle(envs)
    r: ChainResult = follow_chain(_G, [_Y, _X], envs)
    chosen = {item for item in _POOL if item[0] in picked}
    assert r.current == reference(chosen)
    # never two successors in force; evidence iff some member of _G approved both
    assert len(r.in_force) <= 2

    def approvers(side: Charter) -> set[str]:  # members of _G approving with their key in _G
        return {m for _, c, m, k in chosen if c is side and _key_in(_G, m) == k.public_key.raw}

    forked = approvers(_X) & approvers(_Y)
    assert {e.member for e in r.evidence} == forked
    # monotone: more approvals of _X by members who did not approve _Y never un-adopt it
    if r.current == _X:
        y_members = {p.split("/")[0] for p in picked if p.endswith(">y")}
        more = envs + [
            _SIGNED[k] for k in _SIGNED if k.endswith(">x") and k.split("/")[0] not in y_members
        ]
        assert follow_chain(_G, [_X, _Y], more).current == _X
