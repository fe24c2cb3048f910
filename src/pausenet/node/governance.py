"""A node's charter versions: the pin, the charters and approvals it holds, what it adopted.

The node pins one trusted version (its config's charter, or the version `trust` names) and
follows the chain forward (`pausenet.core.governance.follow_chain`) over every charter and
approval it holds: from files at start, from peers (the `GetGovernance` exchange,
docs/protocol.md §15.7) and from its operator (`charter propose`, `charter approve`). What it
holds is bounded and checked before it is kept, so a peer cannot fill the store or crowd out
real approvals with junk: a charter is at most 60 KiB in canonical form, at most
`MAX_PENDING_CHARTERS` charters beyond the adopted ones are held, none at or below the newest
adopted version (the chain never goes back), and each approval must verify with a key it could
count under (the version it amends, or, as a consent, the version it approves), at most
`APPROVALS_PER_MEMBER` per member and amended version.

Versions the node adopted are marked in the store and never given up: the walk goes on from the
newest adopted version, so evidence or rival versions that appear later never take it back.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pausenet.core.approval import MAX_APPROVAL_BYTES, SignedApproval, verify_approval_signature
from pausenet.core.charter import Charter, parse_charter
from pausenet.core.dsse import Envelope, sha256
from pausenet.core.governance import (
    MAX_CHAIN_LENGTH,
    MAX_CHARTER_BYTES,
    ChainResult,
    follow_chain,
)
from pausenet.core.payload import CodecError, decode_approval
from pausenet.core.records import APPROVAL_TYPE, CharterApproval
from pausenet.errors import CharterError, FormatError
from pausenet.node.wire import encode_envelope

__all__ = [
    "APPROVALS_PER_MEMBER",
    "MAX_PENDING_CHARTERS",
    "ChainState",
    "GovernanceReport",
    "GovernanceStore",
    "approval_route",
    "charter_from_canonical",
    "read_approval_files",
]

log = logging.getLogger("pausenet.governance")

# Charters held beyond the adopted ones: rival proposals and a few versions ahead.
MAX_PENDING_CHARTERS = 16
# Approvals kept per (member, version amended): its approvals of up to two successors (which
# is evidence of a fork) with its old key and as a consent with its new key.
APPROVALS_PER_MEMBER = 4
_DOMAIN = b"pausenet.governance.v1\n"


class GovernanceStore(Protocol):
    """What this module needs from durable storage (`pausenet.node.store.Store`)."""

    async def put_governance(
        self,
        charters: Sequence[tuple[bytes, int, bytes]],
        approvals: Sequence[tuple[bytes, int, bytes, Envelope]],
    ) -> None: ...

    async def governance(self) -> tuple[list[tuple[bytes, bool]], list[Envelope]]: ...

    async def adopt_charters(self, charters: Sequence[tuple[bytes, int, bytes]]) -> None: ...


def charter_from_canonical(data: bytes) -> Charter:
    """A charter from its canonical bytes (docs/protocol.md §2.2, §15.2); CharterError unless
    they are exactly the canonical form, within the size bound."""
    if len(data) > MAX_CHARTER_BYTES:
        raise CharterError(f"charter is {len(data)} bytes, limit {MAX_CHARTER_BYTES}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CharterError(f"charter is not canonical JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CharterError("charter is not a JSON object")
    charter = parse_charter(doc, source="gossiped charter")
    if charter.canonical_bytes != data:
        raise CharterError("charter bytes are not in canonical form")
    return charter


def approval_key(env: Envelope) -> bytes:
    """Identity of one approval envelope (payload and signature)."""
    return sha256(encode_envelope(env))


def read_approval_files(directory: Path) -> list[Envelope]:
    """Approval envelopes from `*.json` files in a directory (`federation init`, `charter
    sign`); FormatError naming the file for one that is not an envelope."""
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            out.append(Envelope.from_json(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, FormatError) as exc:
            raise FormatError(f"{path}: not an approval envelope ({exc})") from exc
    return out


@dataclass
class GovernanceReport:
    charters: int = 0  # new charters kept
    approvals: int = 0  # new approvals kept
    duplicates: int = 0
    refused: list[str] = field(default_factory=list)  # one sentence each

    @property
    def changed(self) -> bool:
        return bool(self.charters or self.approvals)

    def refuse(self, why: str) -> None:
        if len(self.refused) < 100:
            self.refused.append(why)


def approval_route(env: Envelope) -> CharterApproval | None:
    """What an approval claims (version, digests, member), unverified: for routing only."""
    if env.payload_type != APPROVAL_TYPE or len(env.payload) > MAX_APPROVAL_BYTES:
        return None
    try:
        return decode_approval(env.payload)
    except CodecError:
        return None


class ChainState:
    """The pin, the charters and approvals held, and the versions adopted (pinned first)."""

    def __init__(self, pin: Charter, store: GovernanceStore | None = None) -> None:
        self.pin = pin
        self.store = store
        self.charters: dict[bytes, Charter] = {pin.digest: pin}
        self.approvals: dict[bytes, Envelope] = {}
        self.adopted: tuple[Charter, ...] = ()  # versions adopted for good, pinned first
        self._per_member: dict[tuple[str, bytes], int] = {}  # (member, previous) -> kept
        self._summary: bytes | None = None
        self._chain: ChainResult | None = None

    # -- loading ------------------------------------------------------------------------

    async def load(self) -> None:
        """What the store holds: charters, approvals and the adopted versions from the pin."""
        if self.store is None:
            return
        charters, approvals = await self.store.governance()
        adopted: list[Charter] = []
        for data, was_adopted in charters:
            try:
                c = charter_from_canonical(data)
            except CharterError:
                continue  # kept only after this check; an edited store is not trusted
            if c.federation_id != self.pin.federation_id:
                continue
            self.charters[c.digest] = c
            if was_adopted:
                adopted.append(c)
        adopted.sort(key=lambda c: c.version)
        self.adopted = _from_pin(self.pin, adopted)
        self.add_approvals_unchecked(approvals)

    def add_approvals_unchecked(self, envs: Iterable[Envelope]) -> None:
        """Approvals from the store or the node's own files: the walk judges them."""
        for env in envs:
            a = approval_route(env)
            if a is not None and a.federation_id == self.pin.federation_id:
                self.approvals.setdefault(approval_key(env), env)
        self._changed()

    # -- the walk -----------------------------------------------------------------------

    @property
    def start(self) -> Charter:
        """Where the walk starts: the newest adopted version, or the pin."""
        return self.adopted[-1] if self.adopted else self.pin

    def chain(self) -> ChainResult:
        if self._chain is None:
            self._chain = follow_chain(self.start, self.charters.values(), self.approvals.values())
        return self._chain

    def versions(self) -> tuple[Charter, ...]:
        """Every version in force, pinned first: the adopted ones and those after them."""
        walked = tuple(r.charter for r in self.chain().in_force)
        if not self.adopted:
            return walked
        return self.adopted + walked[1:]

    async def adopt(self, versions: tuple[Charter, ...]) -> None:
        """Mark versions adopted, durably, before the node acts on them."""
        if self.store is not None:
            await self.store.adopt_charters(
                [(c.digest, c.version, c.canonical_bytes) for c in versions]
            )
        self.adopted = versions
        self._changed()

    def newest(self) -> Charter | None:
        v = self.versions()
        return v[-1] if v else None

    # -- the exchange -------------------------------------------------------------------

    def summary(self) -> bytes:
        """SHA-256 over the newest version in force and every charter and approval held: two
        nodes with equal summaries have nothing to tell each other."""
        if self._summary is None:
            newest = self.newest()
            held = b"".join(sorted(self.charters)) + b"".join(sorted(self.approvals))
            self._summary = sha256(_DOMAIN + (newest.digest if newest else b"") + sha256(held))
        return self._summary

    def missing_for(
        self, their_version: int, budget_bytes: int
    ) -> tuple[list[bytes], list[Envelope], bool]:
        """Charters (canonical bytes) and approvals of versions after their_version, in version
        order, within budget_bytes; and whether more remained."""
        charters: list[bytes] = []
        approvals: list[Envelope] = []
        more = False
        for c in sorted(self.charters.values(), key=lambda c: (c.version, c.digest)):
            if c.version <= their_version:
                continue
            if len(c.canonical_bytes) + 16 > budget_bytes:
                more = True
                break
            budget_bytes -= len(c.canonical_bytes) + 16
            charters.append(c.canonical_bytes)
        routed = []
        for k, env in self.approvals.items():
            a = approval_route(env)
            if a is not None and a.version > their_version:
                routed.append((a.version, k, env))
        for _v, _k, env in sorted(routed, key=lambda t: (t[0], t[1])):
            size = len(env.payload) + sum(len(s.sig) + len(s.keyid) for s in env.signatures) + 96
            if more or size > budget_bytes:
                more = True
                break
            budget_bytes -= size
            approvals.append(env)
        return charters, approvals, more

    async def ingest(
        self, charters: Sequence[bytes], approvals: Sequence[Envelope]
    ) -> GovernanceReport:
        """Check and keep what is new; never raises on bad input."""
        report = GovernanceReport()
        floor = self.start.version if self.adopted else self.pin.version - 1
        new_charters: list[Charter] = []
        for data in charters:
            why = self._charter_problem(data, floor)
            if isinstance(why, str):
                if why:
                    report.refuse(why)
                else:
                    report.duplicates += 1
                continue
            self.charters[why.digest] = why
            new_charters.append(why)
        new_approvals: list[tuple[bytes, CharterApproval, Envelope]] = []
        for env in approvals:
            got = self._approval_problem(env, floor)
            if isinstance(got, str):
                if got:
                    report.refuse(got)
                else:
                    report.duplicates += 1
                continue
            k, a = got
            self.approvals[k] = env
            slot = (a.member, a.previous_digest)
            self._per_member[slot] = self._per_member.get(slot, 0) + 1
            new_approvals.append((k, a, env))
        if new_charters or new_approvals:
            if self.store is not None:
                await self.store.put_governance(
                    [(c.digest, c.version, c.canonical_bytes) for c in new_charters],
                    [(k, a.version, a.charter_digest, env) for k, a, env in new_approvals],
                )
            report.charters = len(new_charters)
            report.approvals = len(new_approvals)
            self._changed()
        return report

    def _charter_problem(self, data: bytes, floor: int) -> Charter | str:
        if len(data) > MAX_CHARTER_BYTES:
            return f"a charter of {len(data)} bytes is over the limit of {MAX_CHARTER_BYTES}"
        try:
            c = charter_from_canonical(data)
        except CharterError as exc:
            return f"a charter that does not parse: {exc}"
        if c.digest in self.charters:
            return ""
        if c.federation_id != self.pin.federation_id:
            return (
                f"a charter of federation {c.federation_id[:64]!r}, not {self.pin.federation_id!r}"
            )
        if c.version <= floor:
            return (
                f"charter version {c.version} is not after version {floor} in force; the chain"
                " never goes back"
            )
        if c.version > self.start.version + MAX_CHAIN_LENGTH:
            return (
                f"charter version {c.version} is more than {MAX_CHAIN_LENGTH} versions after"
                f" version {self.start.version}: the chain is too long"
            )
        pending = sum(1 for h in self.charters.values() if h.version > self.start.version)
        if pending >= MAX_PENDING_CHARTERS:
            return (
                f"already {pending} charter versions held beyond version {self.start.version}"
                f" (limit {MAX_PENDING_CHARTERS})"
            )
        return c

    def _approval_problem(self, env: Envelope, floor: int) -> tuple[bytes, CharterApproval] | str:
        k = approval_key(env)
        if k in self.approvals:
            return ""
        a = approval_route(env)
        if a is None:
            return "an approval that is not a well-formed charter approval envelope"
        if a.federation_id != self.pin.federation_id:
            return f"an approval for federation {a.federation_id[:64]!r}"
        if a.version <= floor:
            return f"an approval of version {a.version}, not after version {floor} in force"
        # it must verify with a key it could count under: the amended version's, or (a
        # consent, or genesis) the approved version's
        sources = [self.charters.get(a.previous_digest), self.charters.get(a.charter_digest)]
        if a.version == 1:
            sources = [self.charters.get(a.charter_digest)]
        held = [c for c in sources if c is not None]
        if not held:
            return (
                f"an approval by {a.member[:64]} of version {a.version}, whose charters are not"
                " held here (send the charters first)"
            )
        if not any(isinstance(verify_approval_signature(c, env), SignedApproval) for c in held):
            return f"an approval by {a.member[:64]} of version {a.version} that no key verifies"
        if self._per_member.get((a.member, a.previous_digest), 0) >= APPROVALS_PER_MEMBER:
            return (
                f"more than {APPROVALS_PER_MEMBER} approvals by {a.member} of successors of one"
                " version"
            )
        return k, a

    def _changed(self) -> None:
        self._summary = None
        self._chain = None


def _from_pin(pin: Charter, adopted: list[Charter]) -> tuple[Charter, ...]:
    """The adopted versions from the pin on, linked; () when the store adopted nothing from
    this pin (a fresh store). Raises CharterError when it adopted another line of versions."""
    if not adopted:
        return ()
    digests = [c.digest for c in adopted]
    if pin.digest not in digests:
        raise CharterError(
            f"the store adopted charter versions {adopted[0].version}..{adopted[-1].version}"
            f" that do not start at the pinned version {pin.version} ({pin.digest_hex[:16]}…);"
            " pin the version it started from, or use a new data dir"
        )
    out = adopted[digests.index(pin.digest) :]
    for a, b in itertools.pairwise(out):
        if b.previous != a.digest or b.version != a.version + 1:
            raise CharterError(
                f"the store's adopted charter versions are not one chain at version {b.version};"
                " restore the data dir from a backup or use a new one"
            )
    return tuple(out)
