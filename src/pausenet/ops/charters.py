"""Offline charter governance for the command line: sign an approval, show a version's status,
explain what an amendment changes. No node and no network: a lab's key may live on an
air-gapped machine.

An approval file holds one DSSE envelope in the JSON form (docs/protocol.md §3); `status` also
takes a file holding a JSON array of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pausenet.core.approval import SignedApproval, sign_approval
from pausenet.core.charter import Charter, load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.governance import ChainResult, changed_members, follow_chain
from pausenet.core.keys import SigningKey
from pausenet.errors import EnvelopeFormatError, PausenetError

__all__ = [
    "SignOutcome",
    "charter_status",
    "describe_changes",
    "read_approvals",
    "sign_charter",
    "status_json",
    "status_lines",
]

_MAX_APPROVAL_FILE = 16 * 1024 * 1024
_DIGEST_RE = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class SignOutcome:
    approval: SignedApproval
    note: str  # a caveat for the signer, or ""


def sign_charter(charter: Charter, key: SigningKey, member: str | None, now_ms: int) -> SignOutcome:
    """Sign an approval of charter; member defaults to the one whose key this is."""
    holder = next((m for m in charter.members if m.public_key == key.public_key), None)
    if member is None:
        if holder is None:
            raise PausenetError(
                "this key is no member's key in the charter; give --member ID (a member that this"
                " version re-keys or removes signs with its key in the version it amends)"
            )
        member = holder.id
    note = ""
    listed = charter.member(member)
    if listed is None or listed.public_key != key.public_key:
        if holder is not None and holder.id != member:
            raise PausenetError(
                f"this key is {holder.id}'s key in the charter, not {member}'s; give the right"
                " --member or --key"
            )
        note = (
            f"this key is not {member}'s key in version {charter.version}: the approval counts"
            f" only as {member}'s approval under version {charter.version - 1}"
            if charter.version > 1
            else f"this key is not {member}'s key in this charter: the approval will not count"
        )
    return SignOutcome(sign_approval(key, charter, member, now_ms), note)


def read_approvals(paths: Sequence[Path]) -> list[Envelope]:
    """Approval envelopes from files, each one envelope or a JSON array of them."""
    out: list[Envelope] = []
    for path in paths:
        try:
            if path.stat().st_size > _MAX_APPROVAL_FILE:
                raise PausenetError(f"{path}: too large for an approvals file")
            doc = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError as exc:
            raise PausenetError(f"{path}: approval file not found") from exc
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise PausenetError(f"{path}: not a JSON approval file: {exc}") from exc
        items = doc if isinstance(doc, list) else [doc]
        for i, item in enumerate(items):
            try:
                out.append(Envelope.from_json(item))
            except EnvelopeFormatError as exc:
                where = f"{path}[{i}]" if isinstance(doc, list) else str(path)
                raise PausenetError(f"{where}: {exc}") from exc
    return out


def _pinned(trust: str | None, file: Charter, chain: Sequence[Charter]) -> Charter:
    if trust is None:
        if file.version != 1:
            raise PausenetError(
                f"version {file.version} amends another version: give --trust GENESIS.toml|DIGEST"
                " and the versions in between with --chain"
            )
        return file
    if _DIGEST_RE.fullmatch(trust) and not Path(trust).exists():
        want = trust.lower()
        for c in (file, *chain):
            if c.digest_hex == want:
                return c
        raise PausenetError(
            f"--trust {want[:16]}…: no charter given has this digest; add it with --chain"
        )
    return load_charter(Path(trust))


def charter_status(
    file: Path, approvals: Sequence[Path], trust: str | None, chain: Sequence[Path]
) -> tuple[Charter, ChainResult]:
    target = load_charter(file)
    others = [load_charter(p) for p in chain]
    pinned = _pinned(trust, target, others)
    return target, follow_chain(pinned, [target, *others], read_approvals(approvals))


def _state(target: Charter, r: ChainResult) -> tuple[str, Any]:
    """('in force' | 'pending' | 'refused' | 'not reached', the ratification or refusal)."""
    for x in r.in_force:
        if x.charter.digest == target.digest:
            return "in force", x
    for x in r.pending:
        if x.charter.digest == target.digest:
            return "pending", x
    for f in r.refused:
        if f.digest == target.digest:
            return "refused", f
    return "not reached", None


def status_lines(target: Charter, r: ChainResult) -> list[str]:
    state, x = _state(target, r)
    head = f"Version {target.version} ({target.digest_hex[:16]}…)"
    out = []
    if state == "in force":
        newest = r.current is not None and r.current.digest == target.digest
        out.append(f"{head} is in force" + ("." if newest else ", and a newer version is too."))
    elif state == "refused":
        out.append(f"{head} is not on the chain: {x.reason}.")
    elif state == "not reached":
        out.append(f"{head} is not reached: {r.stopped}.")
    else:
        out.append(f"{head} is NOT in force yet.")
    if x is not None and state in ("in force", "pending"):
        if x.pinned:
            out.append("  It is the pinned version: trusted by the pin.")
        elif x.amends is None:
            out.append(
                f"  Approved by: {', '.join(x.consents) or 'nobody yet'} (every member needed)."
            )
        else:
            out.append(
                f"  Labs of version {x.amends.version} approving: {', '.join(x.labs) or 'none'}"
                f" ({x.labs_needed} needed)."
            )
            if x.overseers_needed or x.overseers:
                out.append(
                    f"  Overseers approving: {', '.join(x.overseers) or 'none'}"
                    f" ({x.overseers_needed} needed)."
                )
            if x.consents_needed:
                out.append(
                    f"  Added or re-keyed members approving with their new key:"
                    f" {', '.join(x.consents) or 'none'} of {', '.join(x.consents_needed)}."
                )
        missing = x.missing()
        if missing:
            out.append("  Missing: " + "; ".join(missing) + ".")
    if r.current is not None and state != "in force":
        out.append(f"Newest version in force: {r.current.version} ({r.current.digest_hex[:16]}…).")
    for e in r.evidence:
        out.append(f"Evidence: {e}; the chain stops at version {e.version}.")
    for rej in r.rejected:
        out.append(f"Rejected approval: {rej}.")
    return out


def status_json(target: Charter, r: ChainResult) -> dict[str, Any]:
    state, x = _state(target, r)
    doc: dict[str, Any] = {
        "charter_digest": target.digest_hex,
        "version": target.version,
        "state": state,
        "in_force": state == "in force",
        "current": None
        if r.current is None
        else {"version": r.current.version, "digest": r.current.digest_hex},
        "stopped": r.stopped,
        "evidence": [
            {
                "member": e.member,
                "version": e.version,
                "id": e.id.hex(),
                "approvals": [e.first.envelope.to_json(), e.second.envelope.to_json()],
            }
            for e in r.evidence
        ],
        "rejected": [
            {"reason": j.reason.value, "member": j.member, "detail": j.detail} for j in r.rejected
        ],
    }
    if state == "refused":
        doc["refused"] = x.reason
    if state in ("in force", "pending"):
        doc.update(
            labs=list(x.labs),
            labs_needed=x.labs_needed,
            overseers=list(x.overseers),
            overseers_needed=x.overseers_needed,
            consents=list(x.consents),
            consents_needed=list(x.consents_needed),
            missing=x.missing(),
            pinned=x.pinned,
        )
    return doc


def describe_changes(old: Charter, new: Charter) -> list[str]:
    """What new changes relative to old, one sentence each."""
    out: list[str] = []
    if new.federation_id != old.federation_id:
        out.append(
            f"The federation id changes from {old.federation_id!r} to {new.federation_id!r}:"
            " no chain connects them."
        )
    if new.version == old.version + 1 and new.previous == old.digest:
        out.append(f"Version {new.version} amends version {old.version} (it names its digest).")
    else:
        out.append(
            f"Version {new.version} does not amend version {old.version} directly: an amendment"
            f" is version {old.version + 1} with previous = {old.digest_hex[:16]}…, and this one"
            f" names {new.previous.hex()[:16] or 'nothing'}…."
        )
    for m in new.members:
        before = old.member(m.id)
        if before is None:
            out.append(f"Member {m.id} joins as a {m.role.value}.")
            continue
        if before.public_key != m.public_key:
            out.append(
                f"Member {m.id}'s key is replaced ({before.public_key.hex()[:16]}… →"
                f" {m.public_key.hex()[:16]}…)."
            )
        if before.role != m.role:
            out.append(f"Member {m.id} changes role from {before.role.value} to {m.role.value}.")
        if before.name != m.name:
            out.append(f"Member {m.id}'s name changes from {before.name!r} to {m.name!r}.")
    out += [f"Member {m.id} ({m.role.value}) leaves." for m in old.members if not new.member(m.id)]
    for table, a, b in (("rules", old.rules, new.rules), ("limits", old.limits, new.limits)):
        da, db = asdict(a), asdict(b)
        out += [
            f"{table}.{k} changes from {da[k]} to {db[k]}." for k in sorted(da) if da[k] != db[k]
        ]
    for k in ("amend_threshold", "amend_overseer_threshold"):
        va, vb = getattr(old, k), getattr(new, k)
        if va != vb:
            out.append(f"rules.{k} (for the next amendment) changes from {va} to {vb}.")
    old_t = {t.id: t for t in old.triggers}
    for t in new.triggers:
        was = old_t.get(t.id)
        if was is None:
            out.append(f"Trigger {t.id} is added: {t.description}")
        elif was.description != t.description:
            out.append(f"Trigger {t.id}'s description changes to: {t.description}")
        if (was.auto_pause if was else None) != t.auto_pause:
            if t.auto_pause is None:
                out.append(f"Trigger {t.id}'s tripwire is removed: only votes pause for it now.")
            else:
                out.append(
                    ("Tripwire changes: " if was and was.auto_pause else "New tripwire: ")
                    + new.explain_tripwire(t)
                )
    out += [f"Trigger {t} is removed." for t in sorted(set(old_t) - new.trigger_ids())]
    if len(out) == 1 and new.digest == old.digest:
        return ["No change: the two files are the same charter."]
    needs = changed_members(old, new)
    rule = f"To take effect it needs {old.amend_threshold} of {len(old.labs())} labs of version {old.version}"
    if old.amend_overseer_threshold:
        rule += f" and {old.amend_overseer_threshold} overseer(s)"
    if needs:
        rule += f", and {', '.join(needs)} approving with the key this version lists"
    out.append(rule + ".")
    return out
