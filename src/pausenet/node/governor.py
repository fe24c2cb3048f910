"""The node's side of governance: which version it runs under, adopting newer ones, and the
`GetGovernance` exchange with peers (docs/protocol.md §15.7).

The node pins one version (its config's `trust`, else its `charter`) and follows the chain
forward. A version in force is adopted (persisted first, so it survives kill -9, and never given
up), logged once, and handed to the node, which counts items under it without a restart; but
not while the view says a pause is in effect: an amendment waits for the lift (§15.7). Until its
pinned version is in force the node signs nothing and answers UNKNOWN with the reason; while the
newest version in force does not list its member with its key, it signs nothing either.

Each gossip interval the node asks one random peer for what it lacks (one small call carrying a
32-byte summary; an in-sync peer answers with a flag).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from pausenet.core.approval import sign_approval
from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.keys import SigningKey
from pausenet.errors import CharterError, PausenetError, PeerError
from pausenet.node.governance import (
    ChainState,
    GovernanceReport,
    GovernanceStore,
    charter_from_canonical,
    read_approval_files,
)

__all__ = ["GovernReply", "GovernancePeer", "GovernanceReply", "Governor"]

log = logging.getLogger("pausenet.governance")


@dataclass(frozen=True)
class GovernanceReply:
    in_sync: bool
    charters: tuple[bytes, ...] = ()
    approvals: tuple[Envelope, ...] = ()
    more: bool = False
    version: int = 0  # the answering node's newest version in force


@dataclass(frozen=True)
class GovernReply:
    version: int
    digest: bytes
    refused: tuple[str, ...]
    status: str
    approval: Envelope | None


class GovernancePeer(Protocol):
    async def get_governance(
        self,
        version: int,
        digest: bytes,
        summary: bytes,
        *,
        timeout: float,
        offer: tuple[tuple[bytes, ...], tuple[Envelope, ...]] = ((), ()),
    ) -> GovernanceReply: ...


class Governor:
    def __init__(
        self,
        pin: Charter,
        own: Charter,
        member: str,
        key: SigningKey,
        store: GovernanceStore | None,
        clock: Callable[[], int],
    ) -> None:
        self.state = ChainState(pin, store)
        self.own = own  # the config's charter: the version this member runs under
        self.member = member
        self.key = key
        self.clock = clock
        self.versions: tuple[Charter, ...] = ()  # in force and adopted, pinned first
        self.unsigned = False  # not one approval anywhere at start: the pin was never signed
        self.counters: dict[str, int] = {}
        self._told: set[str] = set()  # one-time log lines already written
        self._lock = anyio.Lock()
        # set when something new arrives (a proposal, a peer's offer): the next exchange goes
        # out at once instead of after the idle interval
        self._news = anyio.Event()

    # -- state ----------------------------------------------------------------------------

    @property
    def in_force(self) -> bool:
        return bool(self.versions)

    @property
    def newest(self) -> Charter:
        """The version the node runs under: the newest in force if it lists this member with
        this key, else its config's charter."""
        if self.versions and self.lists_me(self.versions[-1]):
            return self.versions[-1]
        return self.own

    def lists_me(self, c: Charter) -> bool:
        m = c.member(self.member)
        return m is not None and m.public_key == self.key.public_key

    def not_in_force(self) -> str | None:
        """Why no version is in force here, or None."""
        if self.versions:
            return None
        why = f"charter not in force: {self.state.chain().stopped}"
        if self.unsigned and not self.state.approvals:
            why += "; sign it (pausenet charter sign) and put the approvals in approvals/"
        return why

    def signing_refused(self) -> str | None:
        """Why this node may not sign statements or heartbeats now, or None."""
        why = self.not_in_force()
        if why is not None:
            return why + "; the node signs nothing until it is"
        top = self.versions[-1]
        if not self.lists_me(top):
            if top.member(self.member) is None:
                if self.own.version > top.version:
                    return (
                        f"{self.member} is not a member of charter version {top.version} in"
                        f" force; its version {self.own.version} is not in force yet"
                        f" ({self.state.chain().stopped})"
                    )
                return f"{self.member} is not a member of charter version {top.version} in force"
            return (
                f"this node's key is not {self.member}'s key in charter version {top.version}"
                " in force; restart it with the member's new key"
            )
        return None

    # -- start ----------------------------------------------------------------------------

    async def load(self, approval_dirs: Sequence[Path]) -> None:
        """Load the store, the config's charter and approval files, then adopt what is in
        force. A charter no member has approved is never in force (docs/protocol.md §15.7)."""
        s = self.state
        await s.load()
        if self.own.digest != s.pin.digest:
            await s.ingest([self.own.canonical_bytes], [])
        files: list[Envelope] = []
        for d in approval_dirs:
            if d.is_dir():
                files += read_approval_files(d)
        # checked and kept like gossiped ones, so they are gossiped and survive a restart
        got = await s.ingest([], files)
        for why in got.refused:
            log.debug("approval file not taken: %s", why)
        if not s.adopted and not s.approvals and not files:
            self.unsigned = True
            log.warning(
                "charter %s has no approvals (none in the store or in %s): it is not in force,"
                " and this node signs nothing until it is; each member signs it (pausenet charter"
                " sign CHARTER --key KEY) and the approvals go in that directory",
                s.pin.digest_hex[:16],
                ", ".join(str(d) for d in approval_dirs) or "approvals/",
            )
        self.versions = s.adopted
        await self.reconsider(paused=False)

    # -- adoption -------------------------------------------------------------------------

    async def reconsider(self, *, paused: bool) -> tuple[Charter, ...] | None:
        """Adopt the versions now in force, unless a pause is in effect; returns the new
        versions when they changed."""
        async with self._lock:
            found = self.state.versions()
            if len(found) <= len(self.versions):
                self._tell_stopped()
                return None
            if self.versions and paused:
                key = f"wait:{found[-1].digest_hex}"
                if key not in self._told:
                    self._told.add(key)
                    log.warning(
                        "charter version %d (%s) is approved but a pause is in effect: it takes"
                        " effect once the pause is lifted",
                        found[-1].version,
                        found[-1].digest_hex[:16],
                    )
                return None
            await self.state.adopt(found)
            before = self.versions
            self.versions = found
            self.counters["governance.adoptions"] = self.counters.get("governance.adoptions", 0) + 1
            for c in found[len(before) :]:
                # genesis coming into force is routine at every start; a new version is news
                log.log(
                    logging.INFO if c is found[0] else logging.WARNING,
                    "charter version %d %s: %s (federation %s)",
                    c.version,
                    "in force" if c is found[0] else "adopted",
                    c.digest_hex[:16],
                    c.federation_id,
                )
            why = self.signing_refused()
            if why is not None:
                log.warning("%s", why)
            return found

    def _tell_stopped(self) -> None:
        chain = self.state.chain()
        for ev in chain.evidence:
            key = f"fork:{ev.id.hex()}"
            if key not in self._told:
                self._told.add(key)
                log.warning("charter chain stopped: %s", chain.stopped)

    # -- the exchange ---------------------------------------------------------------------

    async def serve(
        self,
        version: int,
        summary: bytes,
        budget_bytes: int,
        offer: tuple[Sequence[bytes], Sequence[Envelope]] = ((), ()),
    ) -> tuple[GovernanceReply, GovernanceReport]:
        """Take what the caller offers, answer with what it lacks after its version."""
        got = GovernanceReport()
        if offer[0] or offer[1]:
            got = await self.state.ingest(offer[0], offer[1])
            if got.changed:
                self._news.set()
            if got.refused:
                self._count_refused(got)
        mine = self.versions[-1].version if self.versions else 0
        if summary == self.state.summary():
            return GovernanceReply(True, version=mine), got
        charters, approvals, more = self.state.missing_for(version, budget_bytes)
        return GovernanceReply(False, tuple(charters), tuple(approvals), more, mine), got

    def request(self) -> tuple[int, bytes, bytes]:
        top = self.versions[-1] if self.versions else None
        return (top.version if top else 0, top.digest if top else b"", self.state.summary())

    async def sync_with(
        self, peer: GovernancePeer, timeout: float, budget_bytes: int
    ) -> GovernanceReport:
        """Ask one peer for what we lack (a few replies while it says `more`); when it is not
        ahead of us and not in sync, offer it what we hold after its version."""
        total = GovernanceReport()
        for _ in range(4):
            version, digest, summary = self.request()
            reply = await peer.get_governance(version, digest, summary, timeout=timeout)
            if reply.in_sync:
                break
            if reply.version <= version:
                charters, approvals, _more = self.state.missing_for(reply.version, budget_bytes)
                if charters or approvals:
                    await peer.get_governance(
                        version,
                        digest,
                        summary,
                        timeout=timeout,
                        offer=(tuple(charters), tuple(approvals)),
                    )
            got = await self.state.ingest(reply.charters, reply.approvals)
            total.charters += got.charters
            total.approvals += got.approvals
            total.refused += got.refused
            if got.refused:
                self._count_refused(got)
            if not reply.more or not got.changed:
                break
        return total

    def _count_refused(self, report: GovernanceReport) -> None:
        n = self.counters.get("governance.refused", 0)
        self.counters["governance.refused"] = n + len(report.refused)
        for why in report.refused[:3]:
            log.info("governance item refused: %s", why)

    async def run(
        self,
        peers: Callable[[], list[str]],
        peer: Callable[[str], GovernancePeer],
        interval_s: float,
        timeout: float,
        budget_bytes: int,
        paused: Callable[[], bool],
        on_adopt: Callable[[tuple[Charter, ...]], Awaitable[None]],
        idle_interval_max_s: float | None = None,
    ) -> None:
        """Until cancelled: one random peer per interval; adopt what comes into force. While
        exchanges find nothing new the interval doubles, up to `idle_interval_max_s` (as gossip
        rounds do); news (a proposal here, a peer's offer, an exchange that moved something)
        brings it back to `interval_s` at once."""
        rng = random.Random()
        idle_max = max(interval_s, idle_interval_max_s or interval_s)
        delay = interval_s
        while True:
            candidates = peers()
            moved = False
            if candidates:
                address = rng.choice(candidates)
                try:
                    got = await self.sync_with(peer(address), timeout, budget_bytes)
                except PeerError as exc:
                    log.debug("governance exchange with %s failed: %s", address, exc)
                except PausenetError as exc:
                    log.error("governance exchange with %s failed here: %s", address, exc)
                else:
                    moved = got.changed
                    if got.changed:
                        await self.adopt_if_ready(paused, on_adopt)
            await self.adopt_if_ready(paused, on_adopt)  # e.g. a pause lifted meanwhile
            delay = interval_s if moved or self._news.is_set() else min(idle_max, delay * 2)
            self._news = anyio.Event()
            with anyio.move_on_after(delay * (0.8 + 0.4 * rng.random())):
                await self._news.wait()
            if self._news.is_set():
                delay = interval_s

    async def adopt_if_ready(
        self,
        paused: Callable[[], bool],
        on_adopt: Callable[[tuple[Charter, ...]], Awaitable[None]],
    ) -> None:
        new = await self.reconsider(paused=paused())
        if new is not None:
            await on_adopt(new)

    # -- the operator's calls -------------------------------------------------------------

    async def govern(
        self,
        charter_bytes: bytes,
        approvals: Sequence[Envelope],
        approve: bool,
        paused: Callable[[], bool],
        on_adopt: Callable[[tuple[Charter, ...]], Awaitable[None]],
    ) -> GovernReply:
        """Keep a proposed version and approvals (and sign this member's approval)."""
        refused: list[str] = []
        target: Charter | None = None
        signed: Envelope | None = None
        envs = list(approvals)
        if charter_bytes:
            try:
                target = charter_from_canonical(charter_bytes)
            except CharterError as exc:
                refused.append(f"the charter: {exc}")
        if approve:
            if target is None:
                refused.append("approve needs a charter")
            else:
                signed = sign_approval(self.key, target, self.member, self.clock()).envelope
                envs.append(signed)
        got = await self.state.ingest([charter_bytes] if target else [], envs)
        refused += got.refused
        if got.changed:
            self._news.set()
            await self.adopt_if_ready(paused, on_adopt)
        status = ""
        if target is not None:
            status = self.status_of(target)
        top = self.versions[-1] if self.versions else None
        return GovernReply(
            top.version if top else 0, top.digest if top else b"", tuple(refused), status, signed
        )

    def status_of(self, target: Charter) -> str:
        chain = self.state.chain()
        for r in chain.in_force:
            if r.charter.digest == target.digest:
                return f"version {target.version} is in force"
        for r in chain.pending:
            if r.charter.digest == target.digest:
                missing = "; ".join(r.missing()) or "nothing"
                who = ", ".join(r.labs + r.overseers) or "no one"
                return f"version {target.version} is approved by {who}; missing: {missing}"
        return (
            f"version {target.version} is not a successor of the newest version in force"
            f" ({chain.stopped})"
        )

    def stats(self) -> dict[str, int]:
        top = self.versions[-1] if self.versions else None
        return {
            **self.counters,
            "charter.version": top.version if top else 0,
            "charter.in_force": 1 if top else 0,
        }
