"""Writing the next charter version: members added, removed or re-keyed, rules changed.

`amend_charter` starts from the version in force's canonical form, so nothing the amendment does
not name changes, and returns the new version checked exactly as a node will read it, with its
TOML text. `needed_approvers` lists whose approvals put it in force (docs/protocol.md §15.4): a
threshold of the amended version's labs and overseers, and every member added or re-keyed.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import tomli_w

from pausenet.core.charter import CHARTER_FORMAT_V2, Charter, Role, parse_charter
from pausenet.core.governance import changed_members
from pausenet.core.keys import PublicKey
from pausenet.errors import CharterError

__all__ = ["amend_charter", "needed_approvers"]


def amend_charter(
    old: Charter,
    *,
    add: Iterable[tuple[str, Role, PublicKey]] = (),
    remove: Iterable[str] = (),
    rekey: Mapping[str, PublicKey] | None = None,
    rules: Mapping[str, int] | None = None,
    tripwires: Mapping[str, tuple[int, Sequence[str]]] | None = None,
) -> tuple[Charter, str]:
    """The version after `old` with these changes, and its TOML text."""
    doc: dict[str, Any] = json.loads(old.canonical_bytes)
    doc["format"] = CHARTER_FORMAT_V2
    doc["version"] = old.version + 1
    doc["previous"] = old.digest_hex
    gone = set(remove)
    members = [m for m in doc["members"] if m["id"] not in gone]
    for m in members:
        if rekey and m["id"] in rekey:
            m["public_key"] = rekey[m["id"]].hex()
    for mid, role, key in add:
        members.append({"id": mid, "name": "", "role": role.value, "public_key": key.hex()})
    doc["members"] = members
    labs = sum(1 for m in members if m["role"] == Role.LAB.value)
    # The amendment threshold must stay a strict majority of the new roster's labs.
    doc["rules"]["amend_threshold"] = max(
        labs // 2 + 1, min(labs, int(doc["rules"].get("amend_threshold", 0)))
    )
    for k, v in (rules or {}).items():
        doc["rules"][k] = v
    for t in doc["triggers"]:
        if tripwires and t["id"] in tripwires:
            threshold, attesters = tripwires[t["id"]]
            t["auto_pause"] = {"attest_threshold": threshold, "attesters": list(attesters)}
    unknown = set(tripwires or {}) - {t["id"] for t in doc["triggers"]}
    if unknown:
        raise CharterError(f"no trigger {sorted(unknown)[0]!r} in version {old.version}")
    text = tomli_w.dumps(doc)
    new = parse_charter(tomllib.loads(text), source=f"version {old.version + 1}")
    if new.previous != old.digest:
        raise CharterError("the amended charter does not name the version it amends")
    return new, text


def needed_approvers(old: Charter, new: Charter) -> list[str]:
    """Members whose approvals are enough to put `new` in force: the first amend_threshold
    labs and amend_overseer_threshold overseers of `old` (by id), and every member `new`
    adds or re-keys."""
    labs = [m.id for m in old.labs()][: old.amend_threshold]
    overseers = [m.id for m in old.overseers()][: old.amend_overseer_threshold]
    return list(dict.fromkeys([*labs, *overseers, *changed_members(old, new)]))
