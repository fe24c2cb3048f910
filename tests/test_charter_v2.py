"""Charter format 2: versions, the previous digest, amendment rules and tripwires.

A charter that says nothing format 1 could not say keeps the format-1 canonical form (and so its
digest); any other charter is written in the format-2 form with every field spelled out.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import federation_data

from pausenet.core.charter import (
    CHARTER_FORMAT,
    CHARTER_FORMAT_V2,
    Tripwire,
    load_charter,
    parse_charter,
)
from pausenet.errors import CharterError

VECTORS = Path(__file__).resolve().parent / "vectors"
PREV = "ab" * 32


def _v2(**top: Any) -> dict[str, Any]:
    data = federation_data(3, 1)
    data["format"] = CHARTER_FORMAT_V2
    data.update(top)
    return data


def _refused(data: dict[str, Any]) -> str:
    with pytest.raises(CharterError) as exc:
        parse_charter(data, source="c.toml")
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_a_format_1_charter_keeps_its_canonical_form_and_digest() -> None:
    c = load_charter(VECTORS / "charter.toml")
    assert c.canonical_bytes == (VECTORS / "charter.canonical.json").read_bytes()
    assert (c.version, c.previous, c.amend_threshold, c.amend_overseer_threshold) == (1, b"", 2, 0)
    assert all(t.auto_pause is None for t in c.triggers)


def test_format_2_with_only_defaults_is_the_same_charter_as_format_1() -> None:
    v1 = parse_charter(federation_data(3, 1))
    spelled = _v2(version=1)
    spelled["rules"].update(amend_threshold=2, amend_overseer_threshold=0)
    same = parse_charter(spelled)
    assert same.digest == v1.digest
    assert json.loads(same.canonical_bytes)["format"] == CHARTER_FORMAT
    del spelled["format"]
    assert parse_charter(spelled).digest == v1.digest


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2, "previous": PREV},
        {"rules": {"amend_threshold": 3}},
        {"rules": {"amend_overseer_threshold": 1}},
        {"tripwire": True},
    ],
    ids=["version", "amend-threshold", "amend-overseer-threshold", "tripwire"],
)
def test_any_governance_field_selects_the_format_2_form_with_every_field(
    change: dict[str, Any],
) -> None:
    data = _v2()
    for k, v in change.items():
        if k == "rules":
            data["rules"].update(v)
        elif k == "tripwire":
            data["triggers"][0]["auto_pause"] = {"attest_threshold": 1, "attesters": ["overseer"]}
        else:
            data[k] = v
    c = parse_charter(data)
    doc = json.loads(c.canonical_bytes)
    assert doc["format"] == CHARTER_FORMAT_V2
    assert doc["version"] == c.version
    assert ("previous" in doc) is (c.version > 1)
    assert doc["rules"]["amend_threshold"] == c.amend_threshold
    assert doc["rules"]["amend_overseer_threshold"] == c.amend_overseer_threshold
    assert c.digest != parse_charter(federation_data(3, 1)).digest
    # the canonical form reads back as the same charter
    assert parse_charter(doc).canonical_bytes == c.canonical_bytes


def test_version_2_names_its_predecessor() -> None:
    c = parse_charter(_v2(version=2, previous=PREV))
    assert (c.version, c.previous.hex()) == (2, PREV)
    assert "previous" in _refused(_v2(version=2))
    assert "previous" in _refused(_v2(version=2, previous=PREV.upper()))
    assert "previous" in _refused(_v2(version=2, previous="ab"))
    assert "genesis" in _refused(_v2(version=1, previous=PREV))
    assert "version" in _refused(_v2(version=0))
    assert "version" in _refused(_v2(version=2**63, previous=PREV))
    assert "whole number" in _refused(_v2(version="2", previous=PREV))


def test_format_1_cannot_carry_governance_fields() -> None:
    data = federation_data(3, 1)
    data["rules"]["amend_threshold"] = 3
    assert "pausenet.charter.v2" in _refused(data)


@pytest.mark.parametrize(("labs", "lowest"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_the_amend_threshold_is_a_strict_majority_of_labs(labs: int, lowest: int) -> None:
    data = federation_data(labs, 1)
    assert parse_charter(data).amend_threshold == lowest
    data["format"] = CHARTER_FORMAT_V2
    data["rules"]["amend_threshold"] = lowest - 1
    assert "strict majority" in _refused(copy.deepcopy(data))
    data["rules"]["amend_threshold"] = labs + 1
    assert "strict majority" in _refused(copy.deepcopy(data))
    data["rules"]["amend_threshold"] = labs
    assert parse_charter(data).amend_threshold == labs


def test_the_amend_overseer_threshold_is_at_most_the_overseers() -> None:
    data = _v2()
    data["rules"]["amend_overseer_threshold"] = 2
    assert "0..1" in _refused(data)


def _tripwire(auto_pause: Any) -> dict[str, Any]:
    data = _v2()
    data["triggers"][0]["auto_pause"] = auto_pause
    return data


def test_a_tripwire_names_roles_and_members() -> None:
    c = parse_charter(
        _tripwire({"attest_threshold": 3, "attesters": ["overseer", "lab-b", "lab-a"]})
    )
    t = next(t for t in c.triggers if t.auto_pause is not None)
    assert t.auto_pause == Tripwire(3, ("lab-a", "lab-b", "overseer"))
    assert t.auto_pause.eligible(c.members) == ("lab-a", "lab-b", "overseer-a")
    sentence = c.explain_tripwire(t)
    assert "3 of the 3 eligible members" in sentence
    assert t.id in sentence
    assert any("Tripwire:" in line for line in c.explain())
    lab_role = parse_charter(_tripwire({"attest_threshold": 3, "attesters": ["lab"]}))
    t = next(t for t in lab_role.triggers if t.auto_pause is not None)
    assert t.auto_pause is not None
    assert t.auto_pause.eligible(lab_role.members) == ("lab-a", "lab-b", "lab-c")


@pytest.mark.parametrize(
    ("auto_pause", "words"),
    [
        ({"attest_threshold": 2, "attesters": ["overseer"]}, "outside 1..1"),
        ({"attest_threshold": 0, "attesters": ["overseer"]}, "outside 1..1"),
        ({"attest_threshold": 1, "attesters": ["lab-z"]}, "neither a role"),
        ({"attest_threshold": 1, "attesters": ["admin"]}, "neither a role"),
        ({"attest_threshold": 1, "attesters": []}, "need a list"),
        ({"attest_threshold": 1, "attesters": ["lab", "lab"]}, "twice"),
        ({"attest_threshold": 1, "attesters": [1]}, "strings"),
        ({"attesters": ["lab"]}, "missing"),
        ({"attest_threshold": 1, "attesters": ["lab"], "after": 1}, "unknown key"),
        ("overseer", "must be a table"),
    ],
)
def test_a_bad_tripwire_is_refused_naming_the_field(auto_pause: Any, words: str) -> None:
    msg = _refused(_tripwire(auto_pause))
    assert "auto_pause" in msg
    assert words in msg


def test_a_role_name_used_as_a_member_id_is_ambiguous_in_a_tripwire() -> None:
    data = _tripwire({"attest_threshold": 1, "attesters": ["lab"]})
    data["members"][0]["id"] = "lab"
    assert "both a role and a member id" in _refused(data)


def test_show_explains_the_version_and_the_amendment_rule() -> None:
    genesis = parse_charter(federation_data(3, 1)).explain()
    assert any("version 1 (genesis)" in line for line in genesis)
    assert any("2 of 3 labs" in line and "amendment" in line for line in genesis)
    data = _v2(version=2, previous=PREV)
    data["rules"]["amend_overseer_threshold"] = 1
    later = parse_charter(data).explain()
    assert any(f"version 2, amending version 1 (digest {PREV})" in line for line in later)
    assert any("and 1 of 1 overseers" in line for line in later)
