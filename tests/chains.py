"""Builders for tests of the view across charter versions: a genesis charter, an amendment of
it, approvals signed at chosen times, and members' logs that carry across versions.

    g = genesis(min_pause_s=2)
    v2 = amend(g, rekey={"lab-a": key_for("lab-a-2")}, pause_threshold=1)
    versions = ratify(g, v2, at=T0 + 5_000)            # Versions with R(v2) = T0 + 5 s
    log = World(versions).say("lab-a", pause(1), at=T0, under=v2)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from helpers import T0, federation_data, key_for

from pausenet.core.approval import sign_approval
from pausenet.core.charter import CHARTER_FORMAT_V2, Charter, parse_charter
from pausenet.core.dsse import Envelope
from pausenet.core.governance import changed_members, follow_chain
from pausenet.core.keys import SigningKey
from pausenet.core.records import Body, SignedHeartbeat, SignedStatement
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.core.verify import Rejection, Verified
from pausenet.core.versions import Versions, evaluate_versions, verify_versions
from pausenet.core.view import View

__all__ = ["World", "amend", "approvals", "genesis", "listed_key", "ratify"]


def genesis(labs: int = 3, overseers: int = 1, **rules: int) -> Charter:
    data = federation_data(labs, overseers)
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
    """The next version of prev: members added (id, role), removed or re-keyed; rules changed
    (every rule not given is prev's)."""
    data: dict[str, Any] = copy.deepcopy(federation_data(3, 1))
    gone = set(remove)
    data["members"] = [
        {"id": m.id, "role": m.role.value, "public_key": m.public_key.hex()}
        for m in prev.members
        if m.id not in gone
    ]
    for mid, role in add:
        data["members"].append(
            {"id": mid, "role": role, "public_key": key_for(mid).public_key.hex()}
        )
    for m in data["members"]:
        if rekey and m["id"] in rekey:
            m["public_key"] = rekey[m["id"]].public_key.hex()
    data.update(format=CHARTER_FORMAT_V2, version=prev.version + 1, previous=prev.digest_hex)
    r = prev.rules
    data["rules"] = {
        "pause_threshold": r.pause_threshold,
        "lift_threshold": r.lift_threshold,
        "overseer_pause_threshold": r.overseer_pause_threshold,
        "lift_overseer_threshold": r.lift_overseer_threshold,
        "min_pause_s": r.min_pause_s,
        "heartbeat_ttl_s": r.heartbeat_ttl_s,
        "max_clock_skew_s": r.max_clock_skew_s,
        "compliance_grace_s": r.compliance_grace_s,
        **rules,
    }
    return parse_charter(data)


def approvals(
    prev: Charter,
    charter: Charter,
    at: int,
    *,
    keys: dict[str, SigningKey] | None = None,
    approvers: Sequence[str] | None = None,
) -> list[Envelope]:
    """Enough approvals of `charter` (an amendment of prev), all signed at `at`: the first
    amend_threshold labs of prev (or `approvers`), with their keys in prev, and the consent of
    every member added or re-keyed, with `keys` (default: key_for(id) or key_for(id + "-2"),
    whichever `charter` lists)."""
    labs = [m.id for m in prev.labs()][: prev.amend_threshold] if approvers is None else approvers
    out = [sign_approval(listed_key(prev, m), charter, m, at).envelope for m in labs]
    for m in changed_members(prev, charter):
        k = (keys or {}).get(m) or listed_key(charter, m)
        out.append(sign_approval(k, charter, m, at).envelope)
    return out


def listed_key(charter: Charter, member: str) -> SigningKey:
    """The member's key the charter lists: key_for(id), or key_for(id + "-2") once re-keyed."""
    listed = charter.member(member)
    assert listed is not None
    return next(
        k for k in (key_for(member), key_for(member + "-2")) if k.public_key == listed.public_key
    )


def ratify(
    g: Charter, *later: tuple[Charter, int], keys: dict[str, SigningKey] | None = None
) -> Versions:
    """Versions in force: genesis approved by everyone at T0 - 1 s, then each (charter, R)."""
    envs = [sign_approval(key_for(m.id), g, m.id, T0 - 1000).envelope for m in g.members]
    prev = g
    for c, at in later:
        envs += approvals(prev, c, at, keys=keys)
        prev = c
    chain = follow_chain(g, [c for c, _ in later], envs)
    assert len(chain.in_force) == 1 + len(later), chain.stopped
    return Versions.from_chain(chain, envs)


class World:
    """Members' logs across versions; every item goes through verify_versions."""

    def __init__(self, versions: Versions) -> None:
        self.versions = versions
        self.logs: dict[str, list[SignedStatement]] = {}
        self.items: list[Verified] = []
        self.rejected: list[Rejection] = []
        self.counters: dict[str, int] = {}

    def say(
        self,
        member: str,
        body: Body,
        *,
        at: int,
        under: Charter,
        key: SigningKey | None = None,
        keep: bool = True,
    ) -> Verified | Rejection:
        """Sign the member's next statement under `under` (with key_for(member) unless `key`),
        continuing its log; verify it against the versions and keep it if it verifies."""
        log = self.logs.setdefault(member, [])
        prev = log[-1] if log else None
        st = build_statement(
            under, member, prev.seq + 1 if prev else 1, prev.hash if prev else b"", at, body
        )
        signed = sign_statement(key or key_for(member), st)
        log.append(signed)
        return self.offer(signed.envelope, at, keep=keep)

    def beat(
        self, member: str, *, at: int, under: Charter, key: SigningKey | None = None
    ) -> Verified | Rejection:
        log = self.logs.get(member, [])
        self.counters[member] = self.counters.get(member, 0) + 1
        hb: SignedHeartbeat = sign_heartbeat(
            key or key_for(member),
            under,
            member,
            head_seq=log[-1].seq if log else 0,
            head_hash=log[-1].hash if log else b"",
            counter=self.counters[member],
            issued_at_ms=at,
        )
        return self.offer(hb.envelope, at)

    def offer(self, env: Envelope, at: int, *, keep: bool = True) -> Verified | Rejection:
        got = verify_versions(self.versions, env, at)
        if isinstance(got, Rejection):
            self.rejected.append(got)
        elif keep:
            self.items.append(got)
        return got

    def view(self, now: int) -> View:
        return evaluate_versions(self.versions, self.items, now)
