"""A node's in-memory replica of the federation's facts, and the one ingest path into it.

The replica holds, per member, the log as one hash chain, the latest heartbeat, and evidence of
forks. Everything that arrives — from gossip, from the store at start-up, from the node's own
signing — goes through `ingest`, which verifies each envelope against the charter, checks it
against what is held (chain link, seq continuity, conflicts), persists it through the optional
`Persistence` port, and only then adds it. A conflicting statement is never stored in the log;
the pair becomes evidence instead.

It also answers the two questions anti-entropy asks: "what do you hold?" (`digest`, with a
32-byte `summary_hash` for the cheap first exchange) and "what do I hold that you lack?"
(`missing_for`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.evidence import Evidence, check_evidence, evidence_id, find_conflict
from pausenet.core.records import SignedHeartbeat, SignedStatement
from pausenet.core.verify import Rejection, Verified, verify_envelope
from pausenet.core.view import View, evaluate
from pausenet.node.messages import Digest, Items, MemberHead

__all__ = [
    "IngestReport",
    "Persistence",
    "Replica",
    "envelope_size",
]

EVIDENCE_PER_MEMBER = 8  # proofs of equivocation kept per member (docs/protocol.md §12.3)

# Per-envelope framing overhead assumed when budgeting message bytes (protobuf tags, lengths).
_ENVELOPE_OVERHEAD = 96


@dataclass
class IngestReport:
    statements: int = 0
    heartbeats: int = 0
    evidence: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.statements or self.heartbeats or self.evidence)

    def reject(self, reason: str, r: Rejection | None = None) -> None:
        self.rejected[reason] += 1
        if r is not None and len(self.rejections) < 100:
            self.rejections.append(r)


class AppendResultLike(Protocol):
    @property
    def stored(self) -> bool: ...


class Persistence(Protocol):
    """What the replica needs from durable storage (implemented by `pausenet.node.store.Store`)."""

    async def append_statements(
        self, batch: Sequence[SignedStatement]
    ) -> Sequence[AppendResultLike]: ...

    async def put_heartbeat(self, signed: SignedHeartbeat) -> bool: ...

    async def add_evidence(self, id: bytes, member: str, a: Envelope, b: Envelope) -> bool: ...


def envelope_size(e: Envelope) -> int:
    return (
        len(e.payload) + sum(len(s.sig) + len(s.keyid) for s in e.signatures) + _ENVELOPE_OVERHEAD
    )


class Replica:
    def __init__(
        self,
        charter: Charter,
        clock: Callable[[], int],
        persistence: Persistence | None = None,
    ) -> None:
        self.charter = charter
        self.clock = clock
        self.persistence = persistence
        self._logs: dict[str, list[SignedStatement]] = {m.id: [] for m in charter.members}
        self._heartbeats: dict[str, SignedHeartbeat] = {}
        self._evidence: dict[bytes, Evidence] = {}
        self._evidence_by_member: dict[str, list[Evidence]] = {}
        self._fork_items: dict[
            bytes, Verified | None
        ] = {}  # evidence envelopes, verified  # lowest (seq, id) first
        self._digest: Digest | None = None
        self._summary: bytes | None = None
        # One ingest at a time: its checks and its appends are one transaction. Ingest awaits the
        # store, and a node ingests from its own rounds and from peers' Exchange calls at once;
        # two ingests checking against the same head would both append the same statement.
        self._ingest_lock = anyio.Lock()
        self.version = 0  # bumps on every change; lets callers cache views

    # -- reads ----------------------------------------------------------------------------

    def head(self, member: str) -> tuple[int, bytes]:
        log = self._logs.get(member) or []
        return (len(log), log[-1].hash) if log else (0, b"")

    def log(
        self, member: str, from_seq: int = 1, limit: int | None = None
    ) -> list[SignedStatement]:
        log = self._logs.get(member, [])
        start = max(from_seq, 1) - 1
        return log[start : start + limit] if limit is not None else log[start:]

    def heartbeat(self, member: str) -> SignedHeartbeat | None:
        return self._heartbeats.get(member)

    def heartbeats(self) -> list[SignedHeartbeat]:
        return [self._heartbeats[m] for m in sorted(self._heartbeats)]

    def evidence(self) -> list[Evidence]:
        return [self._evidence[k] for k in sorted(self._evidence)]

    def equivocators(self) -> frozenset[str]:
        return frozenset(e.member for e in self._evidence.values())

    def verified_items(self) -> list[Verified]:
        """Everything held, for the view: logs, latest heartbeats, both sides of each fork."""
        items: list[Verified] = [s for m in sorted(self._logs) for s in self._logs[m]]
        items += self.heartbeats()
        held = {i.hash for i in items}
        for ev in self.evidence():
            for env in (ev.first, ev.second):
                if env.payload_hash not in held:
                    v = self._verified_fork_item(env)
                    if v is not None:
                        items.append(v)
                        held.add(v.hash)
        return items

    def _verified_fork_item(self, env: Envelope) -> Verified | None:
        """An evidence envelope, verified once (evidence already checked on ingest; this only
        turns it into the object the view takes, without re-checking it on every view)."""
        h = env.payload_hash
        if h not in self._fork_items:
            v = verify_envelope(self.charter, env, now_ms=self.clock() + _FAR_FUTURE_SLACK)
            self._fork_items[h] = None if isinstance(v, Rejection) else v
        return self._fork_items[h]

    def view(self, now_ms: int | None = None) -> View:
        return evaluate(
            self.charter, self.verified_items(), self.clock() if now_ms is None else now_ms
        )

    def digest(self) -> Digest:
        if self._digest is None:
            heads = []
            for m in sorted(self._logs):
                seq, h = self.head(m)
                hb = self._heartbeats.get(m)
                heads.append(MemberHead(m, seq, h, hb.heartbeat.counter if hb else 0))
            self._digest = Digest(tuple(heads), tuple(sorted(self._evidence)))
        return self._digest

    def summary_hash(self) -> bytes:
        if self._summary is None:
            self._summary = self.digest().summary_hash()
        return self._summary

    def addresses(self) -> dict[str, str]:
        """Member id -> gossip address advertised in its latest signed heartbeat."""
        return {
            m: hb.heartbeat.address for m, hb in self._heartbeats.items() if hb.heartbeat.address
        }

    def missing_for(
        self, theirs: Digest, *, budget_bytes: int | None = None, max_items: int | None = None
    ) -> tuple[Items, bool]:
        """What we hold that a peer with digest `theirs` lacks, within the message bounds.

        Returns the items and whether more remained. Statements go in seq order per member with no
        gaps; small, urgent items (evidence, heartbeats) go first.
        """
        lim = self.charter.limits
        budget = budget_bytes if budget_bytes is not None else lim.max_message_bytes * 9 // 10
        room = max_items if max_items is not None else lim.max_items_per_message
        their_heads = {h.member: h for h in theirs.heads if self.charter.member(h.member)}
        their_ev = set(theirs.evidence_ids)
        statements: list[Envelope] = []
        heartbeats: list[Envelope] = []
        evidence: list[tuple[Envelope, Envelope]] = []
        more = False

        def fits(size: int) -> bool:
            nonlocal budget, room, more
            if size > budget or room <= 0:
                more = True
                return False
            budget -= size
            room -= 1
            return True

        for eid in sorted(self._evidence):
            if eid not in their_ev:
                ev = self._evidence[eid]
                if fits(envelope_size(ev.first) + envelope_size(ev.second)) and not more:
                    evidence.append((ev.first, ev.second))
        for m in sorted(self._heartbeats):
            hb = self._heartbeats[m]
            th = their_heads.get(m)
            if (th.heartbeat_counter if th else 0) < hb.heartbeat.counter and fits(
                envelope_size(hb.envelope)
            ):
                heartbeats.append(hb.envelope)
        for m in sorted(self._logs):
            log = self._logs[m]
            th = their_heads.get(m)
            start = min(th.head_seq, len(log)) if th else 0
            if th and 0 < th.head_seq <= len(log) and log[th.head_seq - 1].hash != th.head_hash:
                # Their log forks from ours at or before their head. Send only our entry at their
                # head: it conflicts with theirs, so they find the fork (evidence) even when both
                # logs are equally long and no heartbeat betrays it; the rest of our branch would
                # only be refused.
                if fits(envelope_size(log[th.head_seq - 1].envelope)):
                    statements.append(log[th.head_seq - 1].envelope)
                continue
            for st in log[start:]:
                if not fits(envelope_size(st.envelope)):
                    break
                statements.append(st.envelope)
        return Items(tuple(statements), tuple(heartbeats), tuple(evidence)), more

    # -- the one ingest path -------------------------------------------------------------

    async def ingest(self, items: Items) -> IngestReport:
        """Verify and add what is new; build evidence from conflicts. Never raises on bad input."""
        # Once started, an ingest finishes even if its caller is cancelled: a write cut in half
        # could leave the store inside a transaction, and the replica and the store disagreeing.
        # (The shield holds against anyio cancellation; a gRPC handler, which is cancelled with
        # a plain Task.cancel(), hands its ingest to the node's task group instead.)
        with anyio.CancelScope(shield=True):
            async with self._ingest_lock:
                report = await self._ingest(items)
        return report

    async def _ingest(self, items: Items) -> IngestReport:
        now = self.clock()
        report = IngestReport()
        for first, second in items.evidence:
            await self._ingest_evidence(first, second, now, report)
        # statements before heartbeats, so a heartbeat's head is usually already held
        by_member: dict[str, list[SignedStatement]] = {}
        for env in items.statements:
            v = verify_envelope(self.charter, env, now_ms=now)
            if isinstance(v, Rejection):
                report.reject(v.reason.value, v)
            elif isinstance(v, SignedHeartbeat):
                report.reject("type-confusion")
            else:
                by_member.setdefault(v.member, []).append(v)
        for member in sorted(by_member):
            batch = sorted(by_member[member], key=lambda s: (s.seq, s.hash))
            await self._ingest_statements(member, batch, report)
        for env in items.heartbeats:
            v = verify_envelope(self.charter, env, now_ms=now)
            if isinstance(v, Rejection):
                report.reject(v.reason.value, v)
            elif isinstance(v, SignedStatement):
                report.reject("type-confusion")
            else:
                await self._ingest_heartbeat(v, report)
        if report.changed:
            self._changed()
        return report

    async def _ingest_statements(
        self, member: str, batch: list[SignedStatement], report: IngestReport
    ) -> None:
        log = self._logs[member]
        to_append: list[SignedStatement] = []
        for st in batch:
            head = len(log) + len(to_append)
            tip = to_append[-1] if to_append else (log[-1] if log else None)
            if st.seq <= len(log):
                held = log[st.seq - 1]
                if held.hash == st.hash:
                    report.duplicates += 1
                else:
                    await self._record_fork(held, st, report)
                continue
            if st.seq <= head:  # within this batch already
                held = to_append[st.seq - len(log) - 1]
                if held.hash != st.hash:
                    await self._record_fork(held, st, report)
                else:
                    report.duplicates += 1
                continue
            if st.seq > head + 1:
                report.reject("gap")
                continue
            if tip is not None and st.statement.prev_hash != tip.hash:
                await self._record_fork(tip, st, report)  # n+1 contradicts our n: a fork
                break  # the rest of this batch is the other branch: nothing more to learn
            if tip is not None and st.statement.issued_at_ms < tip.statement.issued_at_ms:
                report.reject("broken-chain")
                continue
            hb = self._heartbeats.get(member)
            if hb is not None and find_conflict(hb, st) is not None:
                await self._record_fork(hb, st, report)
                continue
            to_append.append(st)
        if not to_append:
            return
        if self.persistence is not None:
            results = await self.persistence.append_statements(to_append)
            appended = [s for s, r in zip(to_append, results, strict=False) if r.stored]
            to_append = appended
        for st in to_append:
            if st.seq == len(log) + 1:
                log.append(st)
                report.statements += 1

    async def _ingest_heartbeat(self, hb: SignedHeartbeat, report: IngestReport) -> None:
        m = hb.member
        log = self._logs[m]
        head_seq = hb.heartbeat.head_seq
        if 0 < head_seq <= len(log) and log[head_seq - 1].hash != hb.heartbeat.head_hash:
            await self._record_fork(log[head_seq - 1], hb, report)
            return
        cur = self._heartbeats.get(m)
        if cur is not None:
            if cur.hash == hb.hash:
                report.duplicates += 1
                return
            if _hb_key(hb) <= _hb_key(cur):
                report.reject("superseded")  # replay or rollback of an older heartbeat
                return
        if self.persistence is not None:
            await self.persistence.put_heartbeat(hb)
        self._heartbeats[m] = hb
        report.heartbeats += 1

    async def _ingest_evidence(
        self, first: Envelope, second: Envelope, now: int, report: IngestReport
    ) -> None:
        eid = evidence_id(first, second)
        if eid in self._evidence:
            report.duplicates += 1
            return
        # Items of a fork may be old; the time check does not apply to evidence.
        ev = check_evidence(self.charter, first, second, now_ms=now + _FAR_FUTURE_SLACK)
        if isinstance(ev, Rejection):
            report.reject("bad-evidence", ev)
            return
        await self._store_evidence(ev, report)

    async def _record_fork(self, a: Verified, b: Verified, report: IngestReport) -> None:
        seq = find_conflict(a, b)
        if seq is None:  # not a fork after all (e.g. the same statement): nothing to record
            report.reject("broken-chain")
            return
        first, second = sorted((a, b), key=lambda v: v.hash)
        ev = Evidence(a.member, seq, first.envelope, second.envelope)
        if ev.id in self._evidence:
            report.duplicates += 1
            return
        await self._store_evidence(ev, report)

    async def _store_evidence(self, ev: Evidence, report: IngestReport) -> None:
        """Keep at most EVIDENCE_PER_MEMBER pieces of evidence per member: those with the
        lowest (seq, id). One proof makes a member an equivocator and only its lowest forked
        seq matters to the view (§8.1); the bound keeps memory and digests small however often
        a member forks, and every node keeps the same ones, so their digests agree."""
        held = self._evidence_by_member.setdefault(ev.member, [])
        if len(held) >= EVIDENCE_PER_MEMBER and (ev.seq, ev.id) >= (held[-1].seq, held[-1].id):
            report.duplicates += 1
            return
        if self.persistence is not None:
            await self.persistence.add_evidence(ev.id, ev.member, ev.first, ev.second)
        self._keep_evidence(ev)
        report.evidence += 1

    def _keep_evidence(self, ev: Evidence) -> None:
        held = self._evidence_by_member.setdefault(ev.member, [])
        held.append(ev)
        held.sort(key=lambda e: (e.seq, e.id))
        self._evidence[ev.id] = ev
        for dropped in held[EVIDENCE_PER_MEMBER:]:
            del self._evidence[dropped.id]
            self._fork_items.pop(dropped.first.payload_hash, None)
            self._fork_items.pop(dropped.second.payload_hash, None)
        del held[EVIDENCE_PER_MEMBER:]

    # -- loading and own items -------------------------------------------------------------

    def load(
        self,
        statements: Iterable[Verified],
        heartbeats: Iterable[Verified],
        evidence: Iterable[Evidence],
    ) -> None:
        """Fill from the store at start-up (items already verified by the caller)."""
        for st in sorted(
            (s for s in statements if isinstance(s, SignedStatement)),
            key=lambda s: (s.member, s.seq),
        ):
            log = self._logs.get(st.member)
            if log is not None and st.seq == len(log) + 1:
                log.append(st)
        for hb in heartbeats:
            if isinstance(hb, SignedHeartbeat):
                cur = self._heartbeats.get(hb.member)
                if cur is None or _hb_key(hb) > _hb_key(cur):
                    self._heartbeats[hb.member] = hb
        for ev in evidence:
            if ev.id not in self._evidence:
                self._keep_evidence(ev)
        self._changed()

    def add_own_statement(self, st: SignedStatement) -> None:
        """Add a statement this node signed and the store already appended."""
        log = self._logs[st.member]
        if st.seq == len(log) + 1:
            log.append(st)
            self._changed()

    def add_own_heartbeat(self, hb: SignedHeartbeat) -> None:
        cur = self._heartbeats.get(hb.member)
        if cur is None or _hb_key(hb) > _hb_key(cur):
            self._heartbeats[hb.member] = hb
            self._changed()

    def _changed(self) -> None:
        self._digest = None
        self._summary = None
        self.version += 1


# Evidence items and held forks are re-checked without the "from the future" rule's bite:
# they were within the skew when first verified.
_FAR_FUTURE_SLACK = 10 * 365 * 86_400_000


def _hb_key(hb: SignedHeartbeat) -> tuple[int, int, bytes]:
    h = hb.heartbeat
    return (h.counter, h.issued_at_ms, hb.hash)
