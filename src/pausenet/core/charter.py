"""The charter: the federation's roster and rulebook, loaded from TOML, with a stable digest.

The digest is SHA-256 over the canonical bytes: compact JSON with sorted keys, members and
triggers sorted by id, every default written out. Two charters that say the same thing have the
same digest whatever their TOML formatting; docs/protocol.md gives the exact form.

Two canonical forms exist. A charter that says nothing a format-1 charter could not say (version 1,
the default amendment rules, no tripwire) keeps the format-1 form, so every charter written before
governance keeps its digest and everything signed under it still counts. Any other charter has the
format-2 form, which writes out the version, the previous digest (from version 2 on), the amendment
rules and each trigger's tripwire. Which form applies follows from the values alone, never from the
`format` key the file spelled, so two files that say the same thing still share one digest.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from pausenet.core.dsse import sha256
from pausenet.core.keys import PublicKey
from pausenet.core.quota import DEFAULT_MAX_STATEMENTS_PER_HOUR
from pausenet.errors import CharterError, KeyFormatError

__all__ = [
    "CHARTER_FORMAT",
    "CHARTER_FORMAT_V2",
    "SLUG_RE",
    "Charter",
    "Limits",
    "Member",
    "Role",
    "Rules",
    "Trigger",
    "Tripwire",
    "default_amend_threshold",
    "load_charter",
    "parse_charter",
]

CHARTER_FORMAT = "pausenet.charter.v1"
CHARTER_FORMAT_V2 = "pausenet.charter.v2"
_MAX_VERSION = 2**63 - 1  # like every counter in the protocol: fits a signed 64-bit integer
_ROLE_NAMES = frozenset({"lab", "overseer"})
_MAX_CHARTER_BYTES = 4 * 1024 * 1024
SLUG_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_FED_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class Role(StrEnum):
    LAB = "lab"
    OVERSEER = "overseer"


@dataclass(frozen=True)
class Member:
    id: str
    role: Role
    public_key: PublicKey
    name: str = ""


@dataclass(frozen=True)
class Tripwire:
    """An if-then commitment: when attest_threshold eligible members attest the trigger, pause.

    `attesters` holds role names ("lab", "overseer") and/or member ids, sorted; a member is
    eligible when its role or its id is listed.
    """

    attest_threshold: int
    attesters: tuple[str, ...]

    def eligible(self, members: tuple[Member, ...]) -> tuple[str, ...]:
        """Ids of the members that may attest for this tripwire, sorted."""
        named = set(self.attesters)
        return tuple(sorted(m.id for m in members if m.id in named or m.role.value in named))


@dataclass(frozen=True)
class Trigger:
    id: str
    description: str
    auto_pause: Tripwire | None = None


@dataclass(frozen=True)
class Rules:
    pause_threshold: int
    lift_threshold: int
    overseer_pause_threshold: int = 0
    lift_overseer_threshold: int = 0
    min_pause_s: int = 0
    heartbeat_ttl_s: int = 60
    max_clock_skew_s: int = 30
    compliance_grace_s: int = 86_400


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = 4 * 1024 * 1024
    max_statement_bytes: int = 16 * 1024
    max_note_chars: int = 2000
    max_triggers_per_vote: int = 16
    max_items_per_message: int = 1000


_MAX_QUOTA = 1_000_000

# (lowest, highest) accepted for each limit
_LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "max_message_bytes": (64 * 1024, 64 * 1024 * 1024),
    "max_statement_bytes": (1024, 1024 * 1024),
    "max_note_chars": (0, 100_000),
    "max_triggers_per_vote": (1, 1000),
    "max_items_per_message": (1, 100_000),
}


@dataclass(frozen=True)
class Charter:
    federation_id: str
    members: tuple[Member, ...]
    triggers: tuple[Trigger, ...]
    rules: Rules
    limits: Limits
    canonical_bytes: bytes
    digest: bytes
    version: int = 1
    previous: bytes = b""  # digest of version - 1; empty for version 1
    amend_threshold: int = 1  # labs of this version whose approval an amendment needs
    amend_overseer_threshold: int = 0  # overseers of this version it needs too
    # statements a member may sign per one-hour window (pausenet.core.quota); format 2 only,
    # and in the canonical form only when not the default, so format-1 digests are unchanged
    max_statements_per_hour: int = DEFAULT_MAX_STATEMENTS_PER_HOUR

    def member(self, member_id: str) -> Member | None:
        return self._by_id().get(member_id)

    def _by_id(self) -> dict[str, Member]:
        cache: dict[str, Member] | None = self.__dict__.get("_members_by_id")
        if cache is None:
            cache = {m.id: m for m in self.members}
            object.__setattr__(self, "_members_by_id", cache)
        return cache

    def trigger_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.triggers)

    def labs(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.role is Role.LAB)

    def overseers(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.role is Role.OVERSEER)

    @property
    def digest_hex(self) -> str:
        return self.digest.hex()

    def explain(self) -> list[str]:
        """The rules in plain sentences, one per line."""
        r = self.rules
        labs, ovs = len(self.labs()), len(self.overseers())
        out = [
            f"Federation '{self.federation_id}' has {labs} lab(s) and {ovs} overseer(s).",
            self._explain_version(),
            f"A pause starts when {r.pause_threshold} of {labs} labs vote PAUSE for the same epoch,"
            " each naming at least one trigger below.",
        ]
        if r.overseer_pause_threshold:
            out.append(
                f"Overseers can also start a pause: {r.overseer_pause_threshold} of {ovs}"
                " overseers voting PAUSE is enough on its own."
            )
        else:
            out.append("Overseers cannot start a pause.")
        lift = f"A pause is lifted when {r.lift_threshold} of {labs} labs vote LIFT"
        if r.lift_overseer_threshold:
            lift += f" and {r.lift_overseer_threshold} of {ovs} overseers vote LIFT too"
        out.append(lift + ".")
        if r.min_pause_s:
            out.append(f"A pause lasts at least {_dur(r.min_pause_s)}, whatever the lift votes.")
        out += [
            "A member proven to have equivocated can still add to a pause, but its lift votes do"
            " not count.",
            f"Once paused, each lab must attest that it has halted within {_dur(r.compliance_grace_s)}.",
            f"A member whose latest heartbeat is older than {_dur(r.heartbeat_ttl_s)} is stale;"
            " a node answers UNKNOWN rather than guess while stale members could change the answer.",
            f"Signed times may run at most {_dur(r.max_clock_skew_s)} ahead of the verifier's clock.",
            self._explain_amendment(),
            "Triggers:",
        ]
        for t in self.triggers:
            out.append(f"  {t.id}: {t.description}")
            if t.auto_pause is not None:
                out.append(f"    Tripwire: {self.explain_tripwire(t)}")
        out.append("Members:")
        out += [
            f"  {m.id} ({m.role.value}){' ' + m.name if m.name else ''}: {m.public_key.hex()}"
            for m in self.members
        ]
        return out

    def _explain_version(self) -> str:
        if self.version == 1:
            return (
                "This is version 1 (genesis): it is in force once every member listed below"
                " has approved it."
            )
        return (
            f"This is version {self.version}, amending version {self.version - 1}"
            f" (digest {self.previous.hex()}); it is in force once version {self.version - 1}'s"
            " amendment rule and every member it adds or re-keys have approved it."
        )

    def _explain_amendment(self) -> str:
        labs, ovs = len(self.labs()), len(self.overseers())
        rule = f"An amendment (the next version) needs the approval of {self.amend_threshold} of"
        rule += f" {labs} labs"
        if self.amend_overseer_threshold:
            rule += f" and {self.amend_overseer_threshold} of {ovs} overseers"
        return rule + (
            ", plus every member it adds or whose key it changes (with the new key); a member"
            " approving two different amendments of one version freezes the chain there."
        )

    def explain_tripwire(self, trigger: Trigger) -> str:
        """One sentence: what the trigger's pre-committed pause rule does."""
        tw = trigger.auto_pause
        if tw is None:
            return f"Trigger {trigger.id} has no tripwire: only votes start a pause for it."
        who = [f"{a}s" for a in tw.attesters if a in _ROLE_NAMES]
        who += [a for a in tw.attesters if a not in _ROLE_NAMES]
        eligible = len(tw.eligible(self.members))
        return (
            f"If {tw.attest_threshold} of the {eligible} eligible members ({', '.join(who)})"
            f" attest trigger {trigger.id} for the next epoch, a pause starts without a vote,"
            " because every lab agreed to it by ratifying this charter."
        )


def default_amend_threshold(labs: int) -> int:
    """The smallest strict majority of the labs."""
    return labs // 2 + 1


def _dur(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def load_charter(path: Path) -> Charter:
    """Read and validate a charter TOML file. Errors name the file, the field and the fix."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise CharterError(f"{path}: not a regular file; give the charter's TOML file")
        if st.st_size > _MAX_CHARTER_BYTES:
            raise CharterError(
                f"{path}: {st.st_size} bytes is too large for a charter (limit {_MAX_CHARTER_BYTES})"
            )
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise CharterError(f"{path}: charter file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CharterError(f"{path}: cannot read charter: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CharterError(f"{path}: not valid TOML: {exc}") from exc
    return parse_charter(data, source=str(path))


def parse_charter(data: Mapping[str, Any], *, source: str = "charter") -> Charter:
    """Validate charter data (as parsed from TOML or from canonical JSON)."""
    p = _Parser(source)
    p.keys(
        data,
        "",
        {
            "format",
            "federation_id",
            "version",
            "previous",
            "members",
            "triggers",
            "rules",
            "limits",
        },
    )
    fmt = data.get("format", CHARTER_FORMAT_V2)
    if fmt not in (CHARTER_FORMAT, CHARTER_FORMAT_V2):
        p.fail(
            "format",
            f"unsupported charter format {fmt!r}; expected {CHARTER_FORMAT!r} or"
            f" {CHARTER_FORMAT_V2!r}",
        )
    fed = p.string(data, "federation_id", required=True)
    if not _FED_RE.fullmatch(fed):
        p.fail(
            "federation_id", "use 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )

    version, previous = _parse_version(p, data)
    members = _parse_members(p, data.get("members"))
    triggers = _parse_triggers(p, data.get("triggers"), members)
    raw_rules = data.get("rules")
    rules = _parse_rules(p, raw_rules, members)
    amend, amend_ov = _parse_amend_rules(p, raw_rules, members)
    assert isinstance(raw_rules, Mapping)  # _parse_rules has checked it
    quota = p.integer(
        raw_rules, "max_statements_per_hour", "rules", DEFAULT_MAX_STATEMENTS_PER_HOUR
    )
    if not 1 <= quota <= _MAX_QUOTA:
        p.fail(
            "rules.max_statements_per_hour",
            f"{quota} is outside 1..{_MAX_QUOTA} (default {DEFAULT_MAX_STATEMENTS_PER_HOUR})",
        )
    limits = _parse_limits(p, data.get("limits", {}))

    members = tuple(sorted(members, key=lambda m: m.id))
    triggers = tuple(sorted(triggers, key=lambda t: t.id))
    uses_v2 = (
        version != 1
        or amend != default_amend_threshold(len([m for m in members if m.role is Role.LAB]))
        or amend_ov != 0
        or any(t.auto_pause is not None for t in triggers)
        or quota != DEFAULT_MAX_STATEMENTS_PER_HOUR
    )
    if uses_v2 and fmt == CHARTER_FORMAT and "format" in data:
        p.fail(
            "format",
            f"{CHARTER_FORMAT!r} has no version, amendment rules, statement quota or tripwires;"
            f" write format = {CHARTER_FORMAT_V2!r} (or leave format out)",
        )
    governance = (version, previous, amend, amend_ov) if uses_v2 else None
    canonical = canonical_bytes(fed, members, triggers, rules, limits, governance, quota=quota)
    return Charter(
        fed,
        members,
        triggers,
        rules,
        limits,
        canonical,
        sha256(canonical),
        version,
        previous,
        amend,
        amend_ov,
        quota,
    )


def canonical_bytes(
    federation_id: str,
    members: tuple[Member, ...],
    triggers: tuple[Trigger, ...],
    rules: Rules,
    limits: Limits,
    governance: tuple[int, bytes, int, int] | None = None,
    *,
    quota: int = DEFAULT_MAX_STATEMENTS_PER_HOUR,
) -> bytes:
    """The canonical JSON; `governance` = (version, previous, amend_threshold,
    amend_overseer_threshold) selects the format-2 form, None the format-1 form. A `quota`
    (max_statements_per_hour) other than the default needs the format-2 form."""
    rules_doc: dict[str, Any] = asdict(rules)
    doc: dict[str, Any] = {
        "format": CHARTER_FORMAT,
        "federation_id": federation_id,
        "members": [
            {"id": m.id, "role": m.role.value, "public_key": m.public_key.hex(), "name": m.name}
            for m in sorted(members, key=lambda m: m.id)
        ],
        "triggers": [_trigger_doc(t) for t in sorted(triggers, key=lambda t: t.id)],
        "rules": rules_doc,
        "limits": asdict(limits),
    }
    if governance is not None:
        version, previous, amend, amend_ov = governance
        doc["format"] = CHARTER_FORMAT_V2
        doc["version"] = version
        if version > 1:
            doc["previous"] = previous.hex()
        rules_doc["amend_threshold"] = amend
        rules_doc["amend_overseer_threshold"] = amend_ov
        if quota != DEFAULT_MAX_STATEMENTS_PER_HOUR:
            rules_doc["max_statements_per_hour"] = quota
    else:
        assert quota == DEFAULT_MAX_STATEMENTS_PER_HOUR, "a quota needs the format-2 form"
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def _trigger_doc(t: Trigger) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": t.id, "description": t.description}
    if t.auto_pause is not None:
        doc["auto_pause"] = {
            "attest_threshold": t.auto_pause.attest_threshold,
            "attesters": list(t.auto_pause.attesters),
        }
    return doc


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, msg: str) -> None:
        raise CharterError(f"{self.source}: {field}: {msg}")

    def keys(self, table: Mapping[str, Any], where: str, known: set[str]) -> None:
        if not isinstance(table, Mapping):
            self.fail(where or "(top level)", "must be a table")
        for k in table:
            if k not in known:
                name = f"{where}.{k}" if where else str(k)
                if not name.isprintable():  # a quoted TOML key may hold a newline
                    name = repr(name)
                self.fail(name, f"unknown key; known keys here: {', '.join(sorted(known))}")

    def string(self, table: Mapping[str, Any], key: str, *, where: str = "", required: bool) -> str:
        name = f"{where}.{key}" if where else key
        if key not in table:
            if required:
                self.fail(name, "missing; add it")
            return ""
        v = table[key]
        if not isinstance(v, str):
            self.fail(name, f"must be a string, got {type(v).__name__}")
        if not v.isascii():
            try:
                v.encode("utf-8")  # a lone surrogate (from JSON "\ud800") has no canonical bytes
            except UnicodeEncodeError:
                self.fail(name, "is not valid Unicode text (it holds a lone surrogate)")
        return str(v)

    def integer(self, table: Mapping[str, Any], key: str, where: str, default: int | None) -> int:
        name = f"{where}.{key}" if where else key
        if key not in table:
            if default is None:
                self.fail(name, "missing; add it")
            return int(default)  # type: ignore[arg-type]
        v = table[key]
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail(name, f"must be a whole number, got {v!r}")
        return int(v)


def _parse_members(p: _Parser, raw: object) -> tuple[Member, ...]:
    if not isinstance(raw, list) or not raw:
        p.fail("members", "need at least one [[members]] entry with id, role and public_key")
    assert isinstance(raw, list)
    out: list[Member] = []
    ids: set[str] = set()
    keys: dict[bytes, str] = {}
    for i, m in enumerate(raw):
        where = f"members[{i}]"
        p.keys(m, where, {"id", "role", "public_key", "name"})
        mid = p.string(m, "id", where=where, required=True)
        if not SLUG_RE.fullmatch(mid):
            p.fail(f"{where}.id", f"{mid!r} is not a member id; use 1-32 of a-z, 0-9, '-'")
        where = f"members[{mid}]"
        if mid in ids:
            p.fail(where, f"duplicate member id {mid!r}; each member needs its own id")
        ids.add(mid)
        role_s = p.string(m, "role", where=where, required=True)
        try:
            role = Role(role_s)
        except ValueError:
            p.fail(f"{where}.role", f"unknown role {role_s!r}; use 'lab' or 'overseer'")
        key_s = p.string(m, "public_key", where=where, required=True)
        try:
            pk = PublicKey.from_hex(key_s)
        except KeyFormatError as exc:
            p.fail(f"{where}.public_key", f"{exc}; paste the hex printed by 'pausenet keygen'")
        if pk.raw in keys:
            p.fail(
                f"{where}.public_key",
                f"same key as member {keys[pk.raw]!r}; each member needs its own key",
            )
        keys[pk.raw] = mid
        name = p.string(m, "name", where=where, required=False)
        if len(name) > 200:
            p.fail(f"{where}.name", "longer than 200 characters")
        out.append(Member(mid, role, pk, name))
    return tuple(out)


def _parse_version(p: _Parser, data: Mapping[str, Any]) -> tuple[int, bytes]:
    version = p.integer(data, "version", "", 1)
    if not 1 <= version <= _MAX_VERSION:
        p.fail("version", f"{version} is outside 1..{_MAX_VERSION}; genesis is version 1")
    if version == 1:
        if "previous" in data:
            p.fail("previous", "version 1 (genesis) has no previous version; remove it")
        return 1, b""
    if "previous" not in data:
        p.fail(
            "previous",
            f"missing; version {version} must name the digest of version {version - 1}"
            " (as 'pausenet charter show' prints it)",
        )
    prev = data["previous"]
    if not isinstance(prev, str) or not re.fullmatch(r"[0-9a-f]{64}", prev):
        p.fail("previous", "must be 64 lowercase hex digits: the previous version's digest")
    return version, bytes.fromhex(prev)


def _parse_tripwire(p: _Parser, raw: object, where: str, members: tuple[Member, ...]) -> Tripwire:
    if not isinstance(raw, Mapping):
        p.fail(where, 'must be a table like { attest_threshold = 2, attesters = ["overseer"] }')
    assert isinstance(raw, Mapping)
    p.keys(raw, where, {"attest_threshold", "attesters"})
    attesters = raw.get("attesters")
    if not isinstance(attesters, list) or not attesters:
        p.fail(f"{where}.attesters", "need a list of roles ('lab', 'overseer') and/or member ids")
    assert isinstance(attesters, list)
    ids = {m.id for m in members}
    seen: set[str] = set()
    for a in attesters:
        if not isinstance(a, str):
            p.fail(f"{where}.attesters", f"must hold strings, got {type(a).__name__}")
        if a in seen:
            p.fail(f"{where}.attesters", f"{a!r} is listed twice")
        seen.add(a)
        if a in _ROLE_NAMES and a in ids:
            p.fail(
                f"{where}.attesters",
                f"{a!r} is both a role and a member id; rename that member",
            )
        if a not in _ROLE_NAMES and a not in ids:
            shown = repr(a[:64]) if a.isprintable() else repr(a[:64].encode("utf-8", "replace"))
            p.fail(
                f"{where}.attesters",
                f"{shown} is neither a role ('lab', 'overseer') nor a member id of this charter",
            )
    tw = Tripwire(0, tuple(sorted(seen)))
    eligible = len(tw.eligible(members))
    threshold = p.integer(raw, "attest_threshold", where, None)
    if not 1 <= threshold <= eligible:
        p.fail(
            f"{where}.attest_threshold",
            f"{threshold} is outside 1..{eligible} (the members eligible to attest)",
        )
    return Tripwire(threshold, tw.attesters)


def _parse_triggers(p: _Parser, raw: object, members: tuple[Member, ...]) -> tuple[Trigger, ...]:
    if not isinstance(raw, list) or not raw:
        p.fail("triggers", "need at least one [[triggers]] entry with id and description")
    assert isinstance(raw, list)
    out: list[Trigger] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        where = f"triggers[{i}]"
        p.keys(t, where, {"id", "description", "auto_pause"})
        tid = p.string(t, "id", where=where, required=True)
        if not SLUG_RE.fullmatch(tid):
            p.fail(f"{where}.id", f"{tid!r} is not a trigger id; use 1-32 of a-z, 0-9, '-'")
        if tid in seen:
            p.fail(f"triggers[{tid}]", f"duplicate trigger id {tid!r}")
        seen.add(tid)
        desc = p.string(t, "description", where=f"triggers[{tid}]", required=True)
        if not desc.strip():
            p.fail(f"triggers[{tid}].description", "empty; say what the trigger means")
        tw = None
        if "auto_pause" in t:
            tw = _parse_tripwire(p, t["auto_pause"], f"triggers[{tid}].auto_pause", members)
        out.append(Trigger(tid, desc, tw))
    return tuple(out)


def _parse_rules(p: _Parser, raw: object, members: tuple[Member, ...]) -> Rules:
    if raw is None:
        p.fail(
            "rules", "missing [rules] table; it needs at least pause_threshold and lift_threshold"
        )
    if not isinstance(raw, Mapping):
        p.fail("rules", "must be a table")
    assert isinstance(raw, Mapping)
    names = {f.name for f in fields(Rules)}
    p.keys(
        raw,
        "rules",
        names | {"amend_threshold", "amend_overseer_threshold", "max_statements_per_hour"},
    )
    defaults = Rules(pause_threshold=0, lift_threshold=0)
    vals = {
        f.name: p.integer(
            raw,
            f.name,
            "rules",
            None if f.name in ("pause_threshold", "lift_threshold") else getattr(defaults, f.name),
        )
        for f in fields(Rules)
    }
    rules = Rules(**vals)
    labs = sum(1 for m in members if m.role is Role.LAB)
    ovs = sum(1 for m in members if m.role is Role.OVERSEER)
    if labs == 0:
        p.fail("members", "no member has role 'lab'; a federation needs labs to vote")
    for name, lo, hi, who in (
        ("pause_threshold", 1, labs, "labs"),
        ("lift_threshold", 1, labs, "labs"),
        ("overseer_pause_threshold", 0, ovs, "overseers"),
        ("lift_overseer_threshold", 0, ovs, "overseers"),
    ):
        v = vals[name]
        if not lo <= v <= hi:
            p.fail(f"rules.{name}", f"{v} is outside {lo}..{hi} (the charter has {hi} {who})")
    for name, lo, hi in (
        ("min_pause_s", 0, 10 * 365 * 86400),
        ("heartbeat_ttl_s", 1, 30 * 86400),
        ("max_clock_skew_s", 0, 86400),
        ("compliance_grace_s", 0, 365 * 86400),
    ):
        v = vals[name]
        if not lo <= v <= hi:
            p.fail(f"rules.{name}", f"{v} is outside {lo}..{hi} seconds")
    return rules


def _parse_amend_rules(p: _Parser, raw: object, members: tuple[Member, ...]) -> tuple[int, int]:
    """(amend_threshold, amend_overseer_threshold); _parse_rules has checked the table."""
    assert isinstance(raw, Mapping)
    labs = sum(1 for m in members if m.role is Role.LAB)
    ovs = sum(1 for m in members if m.role is Role.OVERSEER)
    majority = default_amend_threshold(labs)
    amend = p.integer(raw, "amend_threshold", "rules", majority)
    if not majority <= amend <= labs:
        # A strict majority: two different successors of one version cannot both gather it
        # unless some lab approves both, and that approval pair is evidence that stops the chain.
        p.fail(
            "rules.amend_threshold",
            f"{amend} is outside {majority}..{labs}: an amendment needs a strict majority of"
            f" the {labs} labs",
        )
    amend_ov = p.integer(raw, "amend_overseer_threshold", "rules", 0)
    if not 0 <= amend_ov <= ovs:
        p.fail(
            "rules.amend_overseer_threshold",
            f"{amend_ov} is outside 0..{ovs} (the charter has {ovs} overseers)",
        )
    return amend, amend_ov


def _parse_limits(p: _Parser, raw: object) -> Limits:
    if not isinstance(raw, Mapping):
        p.fail("limits", "must be a table")
    assert isinstance(raw, Mapping)
    p.keys(raw, "limits", set(_LIMIT_RANGES))
    d = Limits()
    vals = {f.name: p.integer(raw, f.name, "limits", getattr(d, f.name)) for f in fields(Limits)}
    for name, (lo, hi) in _LIMIT_RANGES.items():
        if not lo <= vals[name] <= hi:
            p.fail(f"limits.{name}", f"{vals[name]} is outside {lo}..{hi}")
    if vals["max_statement_bytes"] > vals["max_message_bytes"]:
        p.fail("limits.max_statement_bytes", "must not exceed limits.max_message_bytes")
    return Limits(**vals)
