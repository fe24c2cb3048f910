"""The chain of charter versions: which version is in force, as a pure function.

Given a pinned trusted charter (normally genesis), candidate charters and approvals, `follow_chain`
walks forward as TUF's clients walk root metadata (each new root signed by a threshold of the old
root's keys and by the new keys; never back):

- Version 1 (genesis) is in force only when every member it lists approved it with its own key.
  A pinned version above 1 is in force by the pin: whoever pinned it checked its chain.
- Version n+1 (with `previous` = digest(n)) takes effect when approved by version n's
  `amend_threshold` labs and `amend_overseer_threshold` overseers, with their keys in version n,
  and by every member it adds or whose key it changes, with their keys in version n+1 (consent
  and proof that they hold the new key).
- A member of version n approving two different successors of n (with its key in n) is evidence,
  a portable pair of approvals; the walk stops at n (fail-safe: ambiguity changes nothing).
- Bounded: at most `max_length` versions after the pinned one, each charter's canonical bytes at
  most MAX_CHARTER_BYTES; beyond that the walk stops with a reason.

The result is an object (in force or not, who approved, what is missing, evidence, what was
refused) with `__bool__`; `require_chain` is the raising wrapper. Nothing here reads a clock:
approval times are informational.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pausenet.core.approval import SignedApproval, verify_approval, verify_approval_signature
from pausenet.core.charter import Charter, Role
from pausenet.core.dsse import Envelope, sha256
from pausenet.core.payload import CodecError, decode_approval
from pausenet.core.verify import Rejection
from pausenet.errors import GovernanceError, Reason

__all__ = [
    "MAX_CHAIN_LENGTH",
    "MAX_CHARTER_BYTES",
    "ChainResult",
    "ForkEvidence",
    "Ratification",
    "Refusal",
    "changed_members",
    "follow_chain",
    "ratification",
    "require_chain",
]

# Like TUF's max_root_rotations: a client follows at most this many versions in one walk.
MAX_CHAIN_LENGTH = 256
# So that a charter, framed in one gossip message, fits the smallest message limit (64 KiB).
MAX_CHARTER_BYTES = 60 * 1024


@dataclass(frozen=True)
class ForkEvidence:
    """Two approvals by one member, with its key in version `version`, of two different
    successors of that version. Anyone holding that version can check it alone."""

    member: str
    version: int  # the version both approvals amend
    first: SignedApproval  # the one with the smaller payload hash
    second: SignedApproval

    @property
    def id(self) -> bytes:
        return sha256(self.first.hash + self.second.hash)

    def __str__(self) -> str:
        a, b = self.first.approval.charter_digest, self.second.approval.charter_digest
        return (
            f"{self.member} approved two different successors of version {self.version}"
            f" ({a.hex()[:16]}… and {b.hex()[:16]}…)"
        )


@dataclass(frozen=True)
class Ratification:
    """How far one charter version is approved, under the rules that apply to it."""

    charter: Charter
    amends: Charter | None  # the version it amends; None for genesis and a pinned version
    pinned: bool  # in force because it is the pinned version above 1
    labs_needed: int  # approvals needed from labs of the version amended (all members: genesis)
    overseers_needed: int
    labs: tuple[str, ...]  # who approved, with their keys in the version amended
    overseers: tuple[str, ...]
    consents_needed: tuple[str, ...]  # members added or re-keyed (genesis: every member)
    consents: tuple[str, ...]  # those of them who approved with their new key

    @property
    def in_force(self) -> bool:
        return self.pinned or (
            len(self.labs) >= self.labs_needed
            and len(self.overseers) >= self.overseers_needed
            and set(self.consents_needed) <= set(self.consents)
        )

    def missing(self) -> list[str]:
        """What is still missing, in sentences; empty when in force."""
        if self.in_force:
            return []
        out = []
        if len(self.labs) < self.labs_needed:
            out.append(
                f"{self.labs_needed - len(self.labs)} more lab approval(s) of version"
                f" {self.amends.version if self.amends else self.charter.version}'s labs"
                f" ({self.labs_needed} needed)"
            )
        if len(self.overseers) < self.overseers_needed:
            out.append(
                f"{self.overseers_needed - len(self.overseers)} more overseer approval(s)"
                f" ({self.overseers_needed} needed)"
            )
        lacking = sorted(set(self.consents_needed) - set(self.consents))
        if lacking:
            what = "approval" if self.amends is None else "approval with its new key"
            out.append(f"{what} of {', '.join(lacking)}")
        return out

    def __bool__(self) -> bool:
        return self.in_force


@dataclass(frozen=True)
class Refusal:
    """A charter given to the walk that is not on the chain, and why."""

    digest: bytes
    version: int
    reason: str


@dataclass(frozen=True)
class ChainResult:
    pinned: Charter
    in_force: tuple[Ratification, ...]  # the versions in force, oldest first
    pending: tuple[Ratification, ...]  # successors of the newest one, not (yet) in force
    evidence: tuple[ForkEvidence, ...]
    refused: tuple[Refusal, ...]
    rejected: tuple[Rejection, ...]  # approvals that no key they could count under verifies
    stopped: str  # why the walk ended there, one sentence

    @property
    def current(self) -> Charter | None:
        """The newest version in force; None when not even the pinned version is."""
        return self.in_force[-1].charter if self.in_force else None

    def __bool__(self) -> bool:
        return bool(self.in_force)


def changed_members(old: Charter, new: Charter) -> tuple[str, ...]:
    """Members of `new` that `old` lacks or lists with another key: their consent is needed."""
    return tuple(
        m.id
        for m in new.members
        if (before := old.member(m.id)) is None or before.public_key != m.public_key
    )


def ratification(charter: Charter, approvals: Iterable[Envelope]) -> Ratification:
    """Genesis: every member it lists, each with its own key."""
    ok = _approvers(charter, charter, approvals)
    everyone = tuple(m.id for m in charter.members)
    return Ratification(
        charter, None, False, 0, 0, (), (), everyone, tuple(m for m in everyone if m in ok)
    )


def _approvers(approved: Charter, key_source: Charter, envs: Iterable[Envelope]) -> set[str]:
    out = set()
    for env in envs:
        got = verify_approval(approved, key_source, env)
        if isinstance(got, SignedApproval):
            out.add(got.member)
    return out


def _route(env: Envelope) -> tuple[int, bytes, bytes] | None:
    """(version, charter digest, previous digest) an approval claims, to find the step and key
    that can check it. Routing only: nothing counts until verified with that key."""
    try:
        a = decode_approval(env.payload)
    except CodecError:
        return None
    return a.version, a.charter_digest, a.previous_digest


def follow_chain(
    pinned: Charter,
    charters: Iterable[Charter],
    approvals: Iterable[Envelope],
    *,
    max_length: int = MAX_CHAIN_LENGTH,
) -> ChainResult:
    """Walk from the pinned charter to the newest version in force. Pure and deterministic."""
    envs = list(
        {sha256(e.payload) + b"".join(s.sig for s in e.signatures): e for e in approvals}.values()
    )
    by_step: dict[bytes, list[Envelope]] = {}  # previous digest (b"" for genesis) -> approvals
    for env in envs:
        r = _route(env)
        if r is not None:
            by_step.setdefault(r[2], []).append(env)

    refused: dict[bytes, Refusal] = {}
    by_prev: dict[bytes, list[Charter]] = {}
    for c in {c.digest: c for c in charters}.values():
        if c.digest == pinned.digest:
            continue
        reason = ""
        if len(c.canonical_bytes) > MAX_CHARTER_BYTES:
            reason = (
                f"its canonical form is {len(c.canonical_bytes)} bytes, limit {MAX_CHARTER_BYTES}"
            )
        elif c.federation_id != pinned.federation_id:
            reason = f"it belongs to federation {c.federation_id!r}, not {pinned.federation_id!r}"
        elif c.version <= pinned.version:
            reason = f"version {c.version} is not after the pinned version {pinned.version}"
        if reason:
            refused[c.digest] = Refusal(c.digest, c.version, reason)
        else:
            by_prev.setdefault(c.previous, []).append(c)

    rejected: list[Rejection] = []
    if len(pinned.canonical_bytes) > MAX_CHARTER_BYTES:
        start = ratification(pinned, [])
        stopped = f"the pinned charter's canonical form is over {MAX_CHARTER_BYTES} bytes"
        return ChainResult(pinned, (), (start,), (), tuple(refused.values()), (), stopped)
    if pinned.version == 1:
        genesis_envs = by_step.get(b"", [])
        start = ratification(pinned, genesis_envs)
        for env in genesis_envs:
            got = verify_approval_signature(pinned, env)
            if isinstance(got, Rejection) and _route(env) == (1, pinned.digest, b""):
                rejected.append(got)
        if not start.in_force:
            stopped = "genesis is not ratified yet: missing " + "; ".join(start.missing())
            refusals = _refusals(refused, by_prev, [], (start,))
            return ChainResult(pinned, (), (start,), (), refusals, tuple(rejected), stopped)
    else:
        start = Ratification(pinned, None, True, 0, 0, (), (), (), ())

    in_force = [start]
    evidence: list[ForkEvidence] = []
    pending: tuple[Ratification, ...] = ()
    current = pinned
    while True:
        candidates = sorted(
            (c for c in by_prev.get(current.digest, []) if c.version == current.version + 1),
            key=lambda c: c.digest,
        )
        step_envs = by_step.get(current.digest, [])
        counted, consents, bad = _check_step(current, candidates, step_envs)
        rejected += bad
        found = _forks(current, counted)
        evidence += found
        pending = tuple(
            _successor(current, c, counted, consents.get(c.digest, set())) for c in candidates
        )
        approved = [r for r in pending if r.in_force]
        if found:
            stopped = (
                f"version {current.version} has two successors approved by one member"
                f" ({found[0]}): the chain stops here until the members settle it"
            )
            break
        if not approved:
            stopped = (
                f"no successor of version {current.version} is approved yet"
                if pending
                else f"no successor of version {current.version} is known"
            )
            break
        if len(approved) > 1:  # a strict majority of labs makes this impossible without evidence
            stopped = f"more than one successor of version {current.version} is approved"
            break
        if len(in_force) > max_length:
            stopped = (
                f"the chain is too long: more than {max_length} versions after the pinned one;"
                f" version {approved[0].charter.version} is refused"
            )
            break
        in_force.append(approved[0])
        current = approved[0].charter
    return ChainResult(
        pinned,
        tuple(in_force),
        pending,
        tuple(evidence),
        _refusals(refused, by_prev, in_force, pending),
        tuple(rejected),
        stopped,
    )


def _check_step(
    current: Charter, candidates: list[Charter], envs: list[Envelope]
) -> tuple[list[SignedApproval], dict[bytes, set[str]], list[Rejection]]:
    """Verify the approvals of successors of current: (those counted with current's keys,
    consents with the successors' keys by digest, approvals that verify with neither)."""
    by_digest = {c.digest: c for c in candidates}
    counted: list[SignedApproval] = []
    consents: dict[bytes, set[str]] = {}
    rejected: list[Rejection] = []
    for env in sorted(envs, key=lambda e: sha256(e.payload)):
        got = verify_approval_signature(current, env)
        route = _route(env)
        assert route is not None  # routed approvals decode
        candidate = by_digest.get(route[1])
        consent = None
        if candidate is not None:
            consent = verify_approval(candidate, candidate, env)
            if isinstance(consent, SignedApproval) and consent.member in changed_members(
                current, candidate
            ):
                consents.setdefault(candidate.digest, set()).add(consent.member)
        if isinstance(got, SignedApproval):
            if got.approval.version == current.version + 1:
                counted.append(got)
        elif consent is None and got.reason is Reason.UNKNOWN_MEMBER:
            pass  # perhaps a new member's consent to a successor not at hand: not judged yet
        elif not isinstance(consent, SignedApproval):
            rejected.append(got)
    return counted, consents, rejected


def _forks(current: Charter, counted: list[SignedApproval]) -> list[ForkEvidence]:
    """One piece of evidence per member: its two approvals of different successors whose
    payload hashes are smallest."""
    by_member: dict[str, dict[bytes, SignedApproval]] = {}
    for a in counted:
        seen = by_member.setdefault(a.member, {})
        d = a.approval.charter_digest
        if d not in seen or a.hash < seen[d].hash:
            seen[d] = a
    out = []
    for member in sorted(by_member):
        firsts = sorted(by_member[member].values(), key=lambda a: a.hash)
        if len(firsts) > 1:
            out.append(ForkEvidence(member, current.version, firsts[0], firsts[1]))
    return out


def _successor(
    current: Charter, candidate: Charter, counted: list[SignedApproval], consents: set[str]
) -> Ratification:
    roles = {m.id: m.role for m in current.members}
    who = sorted({a.member for a in counted if a.approval.charter_digest == candidate.digest})
    return Ratification(
        candidate,
        current,
        False,
        current.amend_threshold,
        current.amend_overseer_threshold,
        tuple(m for m in who if roles[m] is Role.LAB),
        tuple(m for m in who if roles[m] is Role.OVERSEER),
        changed_members(current, candidate),
        tuple(sorted(consents)),
    )


def _refusals(
    refused: dict[bytes, Refusal],
    by_prev: dict[bytes, list[Charter]],
    in_force: list[Ratification],
    pending: tuple[Ratification, ...],
) -> tuple[Refusal, ...]:
    out = dict(refused)
    on_chain = {r.charter.digest for r in (*in_force, *pending)}
    taken = {r.charter.previous: r.charter for r in in_force[1:]}  # previous -> successor
    for group in by_prev.values():
        for c in group:
            if c.digest in on_chain or c.digest in out:
                continue
            if c.previous in taken:
                reason = (
                    f"another version {taken[c.previous].version}"
                    f" ({taken[c.previous].digest_hex[:16]}…) took effect in its place; the chain"
                    " never goes back"
                )
            else:
                reason = (
                    f"version {c.version} does not follow a version in force (its previous is"
                    f" {c.previous.hex()[:16]}…)"
                )
            out[c.digest] = Refusal(c.digest, c.version, reason)
    return tuple(sorted(out.values(), key=lambda r: (r.version, r.digest)))


def require_chain(
    pinned: Charter,
    charters: Iterable[Charter],
    approvals: Iterable[Envelope],
    *,
    max_length: int = MAX_CHAIN_LENGTH,
) -> Charter:
    """The newest version in force, or GovernanceError saying why none is."""
    result = follow_chain(pinned, charters, approvals, max_length=max_length)
    if result.current is None:
        raise GovernanceError(result.stopped)
    return result.current
