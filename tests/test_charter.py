"""Charter: loading TOML, the canonical digest, validation errors that name the field."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest
from helpers import federation_data, key_for, make_federation

from pausenet.core.charter import Charter, Limits, Rules, load_charter, parse_charter
from pausenet.core.dsse import sha256
from pausenet.errors import CharterError, PausenetError

KA, KB, KO = (key_for(m).public_key.hex() for m in ("lab-a", "lab-b", "overseer-a"))

BASE = f"""
federation_id = "demo"

[[members]]
id = "lab-a"
role = "lab"
public_key = "{KA}"
name = "Lab A"

[[members]]
id = "lab-b"
role = "lab"
public_key = "{KB}"

[[members]]
id = "overseer-a"
role = "overseer"
public_key = "{KO}"

[[triggers]]
id = "rsi-detected"
description = "Recursive self-improvement observed."

[[triggers]]
id = "eval-threshold"
description = "An evaluation crossed its threshold."

[rules]
pause_threshold = 2
lift_threshold = 1
lift_overseer_threshold = 1
"""

# Same content: keys reordered, members and triggers reordered, comments, literal strings,
# every default written out, dotted keys and inline tables.
REFORMATTED = f"""
# The demo federation.
[rules]  # thresholds first this time
lift_overseer_threshold = 1
lift_threshold = 1
pause_threshold = 2
overseer_pause_threshold = 0
min_pause_s = 0
heartbeat_ttl_s = 60
max_clock_skew_s = 30
compliance_grace_s = 86_400

[limits]
max_message_bytes = 4_194_304
max_statement_bytes = 16384
max_note_chars = 2000
max_triggers_per_vote = 16
max_items_per_message = 1000

[[triggers]]
description = 'An evaluation crossed its threshold.'
id = 'eval-threshold'

[[triggers]]
id = "rsi-detected"
description = \"\"\"Recursive self-improvement observed.\"\"\"

[[members]]
public_key = '{KO}'
role = 'overseer'
id = 'overseer-a'
name = ""

[[members]]
role = "lab"
id = "lab-b"
public_key = "{KB}"

[[members]]
name = 'Lab A'
public_key = "{KA}"  # lab A's key
id = "lab-a"
role = "lab"
"""

REFORMATTED_TOP = "format = \"pausenet.charter.v1\"\nfederation_id = 'demo'\n"


def _load(tmp_path: Path, text: str, name: str = "charter.toml") -> Charter:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_charter(path)


# -- the digest -----------------------------------------------------------------------------


def test_digest_is_sha256_of_canonical_bytes(tmp_path: Path) -> None:
    c = _load(tmp_path, BASE)
    assert c.digest == sha256(c.canonical_bytes)
    assert c.digest_hex == c.digest.hex()
    doc = json.loads(c.canonical_bytes)
    assert doc["format"] == "pausenet.charter.v1"
    assert [m["id"] for m in doc["members"]] == ["lab-a", "lab-b", "overseer-a"]
    assert [t["id"] for t in doc["triggers"]] == ["eval-threshold", "rsi-detected"]
    assert doc["rules"]["compliance_grace_s"] == 86_400  # defaults written out
    assert doc["limits"] == {f.name: getattr(Limits(), f.name) for f in fields(Limits)}
    # compact, sorted keys
    assert (
        c.canonical_bytes
        == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_digest_stable_under_formatting(tmp_path: Path) -> None:
    a = _load(tmp_path, BASE, "a.toml")
    b = _load(tmp_path, REFORMATTED_TOP + REFORMATTED, "b.toml")
    assert b.canonical_bytes == a.canonical_bytes
    assert b.digest == a.digest


def test_digest_stable_with_dotted_and_inline_tables(tmp_path: Path) -> None:
    a = _load(tmp_path, BASE, "a.toml")
    rules = "[rules]\npause_threshold = 2\nlift_threshold = 1\nlift_overseer_threshold = 1\n"
    assert rules in BASE
    dotted = BASE.replace(rules, "").replace(
        'federation_id = "demo"\n',
        'federation_id = "demo"\nlimits = {}\nrules.pause_threshold = 2\n'
        "rules.lift_threshold = 1\nrules.lift_overseer_threshold = 1\n",
    )
    inline = BASE.replace(rules, "").replace(
        'federation_id = "demo"\n',
        'federation_id = "demo"\n'
        "rules = { lift_threshold = 1, pause_threshold = 2, lift_overseer_threshold = 1 }\n",
    )
    assert _load(tmp_path, dotted, "b.toml").digest == a.digest
    assert _load(tmp_path, inline, "c.toml").digest == a.digest


def test_canonical_json_parses_to_the_same_charter(tmp_path: Path) -> None:
    a = _load(tmp_path, BASE)
    again = parse_charter(json.loads(a.canonical_bytes))
    assert again == a


def test_members_and_triggers_are_sorted(tmp_path: Path) -> None:
    c = _load(tmp_path, REFORMATTED_TOP + REFORMATTED)
    assert [m.id for m in c.members] == ["lab-a", "lab-b", "overseer-a"]
    assert [t.id for t in c.triggers] == ["eval-threshold", "rsi-detected"]


# A valid different value for every rule and limit (charter: 2 labs, 1 overseer).
_RULE_CHANGES = {
    "pause_threshold": 1,
    "lift_threshold": 2,
    "overseer_pause_threshold": 1,
    "lift_overseer_threshold": 0,
    "min_pause_s": 600,
    "heartbeat_ttl_s": 61,
    "max_clock_skew_s": 31,
    "compliance_grace_s": 3600,
}
_LIMIT_CHANGES = {
    "max_message_bytes": 1024 * 1024,
    "max_statement_bytes": 8192,
    "max_note_chars": 100,
    "max_triggers_per_vote": 4,
    "max_items_per_message": 10,
}


def test_every_rule_and_limit_is_covered() -> None:
    assert set(_RULE_CHANGES) == {f.name for f in fields(Rules)}
    assert set(_LIMIT_CHANGES) == {f.name for f in fields(Limits)}


def _base_data() -> dict[str, Any]:
    return tomllib.loads(BASE)


@pytest.mark.parametrize(("name", "value"), sorted(_RULE_CHANGES.items()))
def test_digest_changes_with_every_rule(name: str, value: int) -> None:
    base = parse_charter(_base_data())
    data = _base_data()
    data["rules"][name] = value
    changed = parse_charter(data)
    assert getattr(changed.rules, name) == value
    assert changed.digest != base.digest


@pytest.mark.parametrize(("name", "value"), sorted(_LIMIT_CHANGES.items()))
def test_digest_changes_with_every_limit(name: str, value: int) -> None:
    base = parse_charter(_base_data())
    data = _base_data()
    data["limits"] = {name: value}
    changed = parse_charter(data)
    assert getattr(changed.limits, name) == value
    assert changed.digest != base.digest


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(federation_id="demo2"),
        lambda d: d["members"][0].update(name="Lab A2"),
        lambda d: d["members"][1].update(role="overseer") or d["rules"].update(pause_threshold=1),
        lambda d: d["members"][1].update(public_key=key_for("other").public_key.hex()),
        lambda d: d["triggers"][0].update(description="Changed."),
        lambda d: d["triggers"].append({"id": "new-trigger", "description": "New."}),
    ],
)
def test_digest_changes_with_roster_and_triggers(edit: Callable[[dict[str, Any]], None]) -> None:
    data = _base_data()
    edit(data)
    base = _base_data()
    base["rules"]["pause_threshold"] = data["rules"]["pause_threshold"]
    assert parse_charter(data).digest != parse_charter(base).digest


# -- validation -----------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit that sets data[a][b]… = value; value _DEL deletes the key."""

    def edit(d: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for p in parents:
            d = d[int(p)] if isinstance(d, list) else d[p]
        if value is _DEL:
            del d[last]
        elif isinstance(d, list):
            d[int(last)] = value
        else:
            d[last] = value

    return edit


_DEL = object()
_KA = key_for("lab-a").public_key.hex()

# (edit of federation_data(labs=3, overseers=1), field the error names, words in the message)
_INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown-role", _set("members/0/role", "admin"), "members[lab-a].role", "unknown role"),
    ("role-not-string", _set("members/0/role", 1), "members[lab-a].role", "string"),
    ("duplicate-id", _set("members/1/id", "lab-a"), "members[lab-a]", "duplicate member id"),
    ("duplicate-key", _set("members/1/public_key", _KA), "members[lab-b].public_key", "same key"),
    ("bad-key-hex", _set("members/0/public_key", "xyz"), "members[lab-a].public_key", "hex"),
    ("short-key", _set("members/0/public_key", "ab" * 31), "members[lab-a].public_key", "64"),
    ("missing-key", _set("members/0/public_key", _DEL), "members[lab-a].public_key", "missing"),
    ("missing-id", _set("members/0/id", _DEL), "members[0].id", "missing"),
    ("member-not-table", _set("members/0", "lab-a"), "members[0]", "table"),
    ("no-members", _set("members", []), "members", "at least one"),
    ("no-labs", lambda d: d.update(members=d["members"][3:]), "members", "lab"),
    ("name-too-long", _set("members/0/name", "x" * 201), "members[lab-a].name", "200"),
    ("name-not-string", _set("members/0/name", 3), "members[lab-a].name", "string"),
    ("bad-member-slug-case", _set("members/0/id", "Lab-A"), "members[0].id", "member id"),
    ("bad-member-slug-dash", _set("members/0/id", "-lab"), "members[0].id", "member id"),
    ("bad-member-slug-long", _set("members/0/id", "a" * 33), "members[0].id", "member id"),
    ("bad-member-slug-empty", _set("members/0/id", ""), "members[0].id", "member id"),
    ("bad-trigger-slug", _set("triggers/0/id", "RSI"), "triggers[0].id", "trigger id"),
    ("dup-trigger", _set("triggers/1/id", "eval-threshold"), "triggers[eval-threshold]", "dup"),
    (
        "empty-trigger-desc",
        _set("triggers/0/description", " "),
        "triggers[eval-threshold].description",
        "empty",
    ),
    (
        "missing-trigger-desc",
        _set("triggers/0/description", _DEL),
        "triggers[eval-threshold].description",
        "missing",
    ),
    ("no-triggers", _set("triggers", []), "triggers", "at least one"),
    ("bad-federation-id", _set("federation_id", "Demo Fed"), "federation_id", "a-z"),
    ("missing-federation-id", _set("federation_id", _DEL), "federation_id", "missing"),
    ("bad-format", _set("format", "pausenet.charter.v3"), "format", "unsupported"),
    ("unknown-top-key", _set("rule", {}), "rule", "unknown key"),
    ("unknown-rule-key", _set("rules/pause_treshold", 2), "rules.pause_treshold", "unknown key"),
    ("unknown-member-key", _set("members/0/pubkey", _KA), "members[0].pubkey", "unknown key"),
    ("unknown-trigger-key", _set("triggers/0/desc", "x"), "triggers[0].desc", "unknown key"),
    ("unknown-limit-key", _set("limits/max_msg", 1), "limits.max_msg", "unknown key"),
    ("missing-rules", _set("rules", _DEL), "rules", "missing"),
    ("rules-not-table", _set("rules", 5), "rules", "table"),
    ("limits-not-table", _set("limits", 5), "limits", "table"),
    ("missing-pause", _set("rules/pause_threshold", _DEL), "rules.pause_threshold", "missing"),
    ("missing-lift", _set("rules/lift_threshold", _DEL), "rules.lift_threshold", "missing"),
    ("pause-zero", _set("rules/pause_threshold", 0), "rules.pause_threshold", "outside 1..3"),
    ("pause-above", _set("rules/pause_threshold", 4), "rules.pause_threshold", "3 labs"),
    ("lift-zero", _set("rules/lift_threshold", 0), "rules.lift_threshold", "outside 1..3"),
    ("lift-above", _set("rules/lift_threshold", 4), "rules.lift_threshold", "3 labs"),
    (
        "overseer-pause-above",
        _set("rules/overseer_pause_threshold", 2),
        "rules.overseer_pause_threshold",
        "1 overseers",
    ),
    (
        "overseer-lift-above",
        _set("rules/lift_overseer_threshold", 2),
        "rules.lift_overseer_threshold",
        "1 overseers",
    ),
    ("negative-threshold", _set("rules/pause_threshold", -1), "rules.pause_threshold", "outside"),
    ("bool-threshold", _set("rules/pause_threshold", True), "rules.pause_threshold", "whole"),
    ("bool-ttl", _set("rules/heartbeat_ttl_s", False), "rules.heartbeat_ttl_s", "whole"),
    ("string-ttl", _set("rules/heartbeat_ttl_s", "60"), "rules.heartbeat_ttl_s", "whole"),
    ("float-skew", _set("rules/max_clock_skew_s", 1.5), "rules.max_clock_skew_s", "whole"),
    ("ttl-zero", _set("rules/heartbeat_ttl_s", 0), "rules.heartbeat_ttl_s", "outside"),
    ("skew-negative", _set("rules/max_clock_skew_s", -1), "rules.max_clock_skew_s", "outside"),
    ("skew-huge", _set("rules/max_clock_skew_s", 86401), "rules.max_clock_skew_s", "outside"),
    ("grace-huge", _set("rules/compliance_grace_s", 10**9), "rules.compliance_grace_s", "outside"),
    ("min-pause-neg", _set("rules/min_pause_s", -5), "rules.min_pause_s", "outside"),
    ("bool-limit", _set("limits/max_note_chars", False), "limits.max_note_chars", "whole"),
    ("msg-too-small", _set("limits/max_message_bytes", 1), "limits.max_message_bytes", "outside"),
    (
        "msg-too-big",
        _set("limits/max_message_bytes", 2**40),
        "limits.max_message_bytes",
        "outside",
    ),
    (
        "stmt-too-small",
        _set("limits/max_statement_bytes", 10),
        "limits.max_statement_bytes",
        "outside",
    ),
    (
        "stmt-over-msg",
        lambda d: d.update(limits={"max_message_bytes": 65536, "max_statement_bytes": 65537}),
        "limits.max_statement_bytes",
        "max_message_bytes",
    ),
    (
        "triggers-zero",
        _set("limits/max_triggers_per_vote", 0),
        "limits.max_triggers_per_vote",
        "outside",
    ),
    (
        "items-zero",
        _set("limits/max_items_per_message", 0),
        "limits.max_items_per_message",
        "outside",
    ),
    ("notes-negative", _set("limits/max_note_chars", -1), "limits.max_note_chars", "outside"),
]


@pytest.mark.parametrize(
    ("edit", "field", "words"), [c[1:] for c in _INVALID], ids=[c[0] for c in _INVALID]
)
def test_invalid_charter_names_the_field(
    edit: Callable[[dict[str, Any]], None], field: str, words: str
) -> None:
    data = copy.deepcopy(federation_data(3, 1))
    edit(data)
    with pytest.raises(CharterError) as exc:
        parse_charter(data, source="c.toml")
    msg = str(exc.value)
    assert msg.startswith(f"c.toml: {field}: "), msg
    assert words in msg, msg
    assert "\n" not in msg


def test_no_overseers_means_overseer_thresholds_must_be_zero() -> None:
    with pytest.raises(CharterError, match=r"rules\.lift_overseer_threshold: 1 is outside 0\.\.0"):
        make_federation(labs=2, overseers=0, lift_overseer_threshold=1)
    charter, _ = make_federation(labs=2, overseers=0)
    assert charter.rules.lift_overseer_threshold == 0


def test_top_level_must_be_a_table() -> None:
    with pytest.raises(CharterError, match="table"):
        parse_charter([], source="c")  # type: ignore[arg-type]


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CharterError, match=r"absent\.toml: charter file not found"):
        load_charter(tmp_path / "absent.toml")


def test_load_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(CharterError, match=r"bad\.toml: not valid TOML"):
        _load(tmp_path, "federation_id = \n", "bad.toml")


def test_load_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"federation_id = '\xff'\n")
    with pytest.raises(CharterError, match="cannot read"):
        load_charter(path)


def test_load_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(CharterError, match=r"x\.toml: rules\.pause_threshold"):
        _load(tmp_path, BASE.replace("pause_threshold = 2", "pause_threshold = 3"), "x.toml")


def test_charter_error_is_a_pausenet_error() -> None:
    assert issubclass(CharterError, PausenetError)


# -- accessors and explain ------------------------------------------------------------------


def test_accessors(tmp_path: Path) -> None:
    c = _load(tmp_path, BASE)
    assert c.member("lab-a") is not None
    assert c.member("lab-a").name == "Lab A"  # type: ignore[union-attr]
    assert c.member("nobody") is None
    assert [m.id for m in c.labs()] == ["lab-a", "lab-b"]
    assert [m.id for m in c.overseers()] == ["overseer-a"]
    assert c.trigger_ids() == {"rsi-detected", "eval-threshold"}


def test_explain_mentions_thresholds(tmp_path: Path) -> None:
    c = _load(tmp_path, BASE)
    text = "\n".join(c.explain())
    assert "2 of 2 labs vote PAUSE" in text
    assert "1 of 2 labs vote LIFT and 1 of 1 overseers vote LIFT" in text
    assert "Overseers cannot start a pause." in text
    assert "1 day" in text  # compliance grace
    assert "1 minute" in text  # heartbeat TTL
    assert "30 seconds" in text  # skew
    for t in c.triggers:
        assert t.id in text
    for m in c.members:
        assert m.public_key.hex() in text


def test_explain_overseer_pause_and_min_pause() -> None:
    c, _ = make_federation(5, 2, overseer_pause_threshold=2, min_pause_s=7200)
    text = "\n".join(c.explain())
    assert "3 of 5 labs vote PAUSE" in text
    assert "2 of 2 overseers voting PAUSE" in text
    assert "at least 2 hours" in text


def test_load_charter_refuses_devices_directories_and_huge_files(tmp_path: Path) -> None:
    with pytest.raises(CharterError, match="not a regular file"):
        load_charter(Path("/dev/zero"))
    with pytest.raises(CharterError, match="not a regular file"):
        load_charter(tmp_path)
    big = tmp_path / "big.toml"
    with big.open("wb") as f:
        f.truncate(5 * 1024 * 1024)
    with pytest.raises(CharterError, match="too large"):
        load_charter(big)


# -- `pausenet charter show --canonical` ------------------------------------------------------

VECTORS = Path(__file__).resolve().parent / "vectors"


def _show(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pausenet", "charter", "show", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_charter_show_canonical_prints_exactly_the_canonical_bytes() -> None:
    p = _show(str(VECTORS / "charter.toml"), "--canonical")
    assert (p.returncode, p.stderr) == (0, b"")
    assert p.stdout == (VECTORS / "charter.canonical.json").read_bytes()
    assert sha256(p.stdout) == load_charter(VECTORS / "charter.toml").digest


def test_charter_show_canonical_and_json_are_exclusive() -> None:
    p = _show(str(VECTORS / "charter.toml"), "--canonical", "--json")
    assert (p.returncode, p.stdout) == (2, b"")
    assert p.stderr.decode().strip() == "error: --canonical and --json: give one of them"


# -- docs/protocol.md §2.1 states every default ----------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def _documented_keys() -> dict[str, tuple[bool, str]]:
    """key -> (required, default) from the table in docs/protocol.md §2.1."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### 2.1 TOML form") : text.index("### 2.2")]
    rows = re.findall(r"^\| `([\w.\[\]]+)` \| (yes|no) \|([^|]*)\|", section, re.MULTILINE)
    return {key: (req == "yes", default.strip()) for key, req, default in rows}


def test_the_protocol_doc_states_every_rule_and_limit_with_the_code_s_default() -> None:
    documented = _documented_keys()
    for table, cls, instance in (
        ("rules", Rules, Rules(pause_threshold=1, lift_threshold=1)),
        ("limits", Limits, Limits()),
    ):
        for f in fields(cls):
            required, default = documented[f"{table}.{f.name}"]
            has_default = f.default is not MISSING
            assert required is not has_default, f.name
            if has_default:
                assert default == str(getattr(instance, f.name)), f.name
    assert documented["rules"] == (True, "")
    assert documented["limits"][0] is False


def test_a_charter_with_only_the_required_keys_loads_with_the_documented_defaults() -> None:
    documented = _documented_keys()
    data = federation_data(1, 1)
    data["rules"] = {"pause_threshold": 1, "lift_threshold": 1}
    del data["limits"], data["format"]
    for m in data["members"]:
        m.pop("name", None)
    c = parse_charter(data)
    doc = json.loads(c.canonical_bytes)
    for key, (required, default) in documented.items():
        table, _, name = key.partition(".")
        if not required and table in ("rules", "limits") and name:
            assert str(doc[table][name]) == default, key
    assert doc["format"] == "pausenet.charter.v1"
    assert [m["name"] for m in doc["members"]] == ["", ""]
    # spelling a default out changes nothing; changing it changes the digest
    data["rules"]["lift_overseer_threshold"] = 0
    assert parse_charter(data).digest == c.digest
    data["rules"]["lift_overseer_threshold"] = 1
    assert parse_charter(data).digest != c.digest
