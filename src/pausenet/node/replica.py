"""A node's in-memory replica of the federation's facts, and the one ingest path into it.

The replica holds, per member: the log as one hash chain (the *main* log: the branch this node
saw first), the latest heartbeat and a few earlier ones that still witness something (the one
with the highest head, and the latest naming each head we do not hold past yet), and evidence
(docs/protocol.md §7). For an equivocator it also holds the statements of its other branches
(§12.3), so that every node counts the same PAUSE votes whichever branch it saw first.

Everything that arrives — from gossip, from the store at start-up, from the node's own signing —
goes through `ingest`, which verifies each envelope against the charter, checks it against what
is held (chain link, seq continuity, forks, timeline contradictions), persists it through the
optional `Persistence` port, and only then adds it.

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

from pausenet.core.chain import Predecessor, link_problem
from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, sha256
from pausenet.core.evidence import (
    Evidence,
    check_evidence,
    commitments,
    evidence_id,
    find_conflict,
)
from pausenet.core.incremental import IncrementalFacts
from pausenet.core.payload import CodecError, decode_heartbeat, decode_statement
from pausenet.core.quota import in_window
from pausenet.core.records import STATEMENT_TYPE, SignedHeartbeat, SignedStatement
from pausenet.core.verify import (
    RECHECK_SLACK_MS,
    Reason,
    Rejection,
    Verified,
)
from pausenet.core.versions import Versions, evaluate_versions, verify_versions
from pausenet.core.view import View
from pausenet.node.messages import ARITY, Digest, DigestTree, Items, MemberHead

__all__ = [
    "IngestReport",
    "Persistence",
    "Replica",
    "envelope_size",
    "items_size",
    "news_items",
]

EVIDENCE_PER_MEMBER = 8  # proofs of equivocation kept per member (docs/protocol.md §12.3)
BRANCH_STATEMENTS_PER_MEMBER = 1024  # statements of an equivocator's other branches (§12.3)
WITNESS_HEARTBEATS_PER_MEMBER = 16  # earlier heartbeats kept as witnesses of a member's timeline

# Statements in one message from which ingest checks signatures in a worker thread (the event
# loop stays free to serve; the batches of several peers are checked at once), and in how many
# threads per message: more did not measurably help on a loaded 2-core machine.
THREAD_VERIFY_MIN = 64
VERIFY_THREADS = 1

# Per-envelope framing overhead assumed when budgeting message bytes (protobuf tags, lengths).
_ENVELOPE_OVERHEAD = 96


@dataclass
class IngestReport:
    statements: int = 0
    heartbeats: int = 0
    evidence: int = 0
    duplicates: int = 0
    rejected: Counter[Reason] = field(default_factory=Counter)
    rejections: list[Rejection] = field(default_factory=list)
    # items that yielded evidence: counted there, not again as statements or heartbeats
    evidenced: set[bytes] = field(default_factory=set, repr=False)

    branched: int = 0  # of the evidence items, statements also kept on a branch (§12.3)
    new: list[Verified] = field(default_factory=list)  # statements and heartbeats first held here
    new_evidence: list[Evidence] = field(default_factory=list)  # evidence first held here

    @property
    def changed(self) -> bool:
        return bool(self.statements or self.heartbeats or self.evidence or self.branched)

    def reject(self, reason: Reason, r: Rejection | None = None) -> None:
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

    async def put_heartbeat(self, signed: SignedHeartbeat, *, durable: bool = True) -> bool: ...

    async def add_evidence(self, id: bytes, member: str, a: Envelope, b: Envelope) -> bool: ...

    async def add_branch_statements(self, batch: Sequence[SignedStatement]) -> None: ...

    async def put_kept_heartbeats(
        self, member: str, kept: Sequence[SignedHeartbeat], *, durable: bool = True
    ) -> None: ...


def envelope_size(e: Envelope) -> int:
    return (
        len(e.payload) + sum(len(s.sig) + len(s.keyid) for s in e.signatures) + _ENVELOPE_OVERHEAD
    )


def items_size(items: Items) -> int:
    """The bytes a message of `items` costs, as `missing_for` budgets them."""
    return (
        sum(envelope_size(e) for e in items.statements)
        + sum(envelope_size(e) for e in items.heartbeats)
        + sum(envelope_size(a) + envelope_size(b) for a, b in items.evidence)
    )


class Replica:
    def __init__(
        self,
        charter: Charter,
        clock: Callable[[], int],
        persistence: Persistence | None = None,
        *,
        own: str | None = None,
    ) -> None:
        self.charter = charter  # the newest version in force
        self.versions: tuple[Charter, ...] = (charter,)  # in force, pinned version first
        # the same with their ratification times: what verifying and counting go by
        self.chain = Versions.single(charter)
        self.clock = clock
        self.persistence = persistence
        # the member this node signs for: its heartbeats are stored durably, others' are not
        # (they are replaced within seconds and peers send them again)
        self.own = own
        self._logs: dict[str, list[SignedStatement]] = {m.id: [] for m in charter.members}
        # an equivocator's statements on branches other than its main log, by hash
        self._branches: dict[str, dict[bytes, SignedStatement]] = {}
        self._hashes: dict[bytes, SignedStatement] = {}  # every statement held, main or branch
        self._heartbeats: dict[str, SignedHeartbeat] = {}  # the latest, by counter
        self._kept: dict[str, dict[bytes, SignedHeartbeat]] = {}  # earlier ones, still witnesses
        self._kept_saved: dict[str, frozenset[bytes]] = {}  # what the store holds of them
        self._evidence: dict[bytes, Evidence] = {}
        self._evidence_by_member: dict[str, list[Evidence]] = {}  # lowest (seq, id) first
        self._fork_items: dict[bytes, Verified | None] = {}  # evidence envelopes, verified
        self._trees: dict[str, bytes] = {}  # cached tree hashes of equivocators
        self._digest: Digest | None = None
        self._tree = DigestTree(self._logs)
        self._dirty: set[str] = set(self._logs)  # members whose tree entries may be stale
        # One ingest at a time: its checks and its appends are one transaction. Ingest awaits the
        # store, and a node ingests from its own rounds and from peers' Exchange calls at once;
        # two ingests checking against the same head would both append the same statement.
        self._ingest_lock = anyio.Lock()
        self._verifying: dict[bytes, anyio.Event] = {}  # statements an ingest is checking now
        self.version = 0  # bumps on every change; lets callers cache views
        # The view's facts, fed lazily from what is held (view()): how much of each main log,
        # and which other items, they have been given, and a stamp of the latter.
        self._facts = IncrementalFacts(charter)
        self._fed_log: dict[str, int] = {}
        self._fed_extra: dict[str, dict[bytes, Verified]] = {}
        self._fed_stamp: dict[str, tuple[object, ...]] = {}
        # Told of each statement and heartbeat an ingest adds, once it is held (metrics time
        # their propagation); must not raise. Own statements (add_own_statement) and items
        # loaded from the store at start-up are not new arrivals and are not told.
        self.on_new: Callable[[Verified], None] | None = None
        # Whether a charter digest names a version held but not in force here yet (a peer that
        # adopted it first relays items signed under it): such items are rejected as
        # `unknown-version`, which is not the sender's fault (docs/protocol.md §15.7).
        self.upcoming: Callable[[bytes], bool] = lambda _digest: False
        # Told, after each ingest that added something and after each own statement, of what
        # is news to peers (gossip pushes it on); must not raise.
        self.on_news: Callable[[Items], None] | None = None

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

    def branch_statements(self, member: str) -> list[SignedStatement]:
        """An equivocator's statements on branches other than its main log, by (seq, hash)."""
        return sorted(self._branches.get(member, {}).values(), key=lambda s: (s.seq, s.hash))

    def heartbeat(self, member: str) -> SignedHeartbeat | None:
        return self._heartbeats.get(member)

    def heartbeats(self) -> list[SignedHeartbeat]:
        return [self._heartbeats[m] for m in sorted(self._heartbeats)]

    def kept_heartbeats(self, member: str) -> list[SignedHeartbeat]:
        """Earlier heartbeats kept as witnesses of member's timeline (the latest not included)."""
        return sorted(self._kept.get(member, {}).values(), key=lambda h: h.hash)

    def evidence(self) -> list[Evidence]:
        return [self._evidence[k] for k in sorted(self._evidence)]

    def equivocators(self) -> frozenset[str]:
        return frozenset(e.member for e in self._evidence.values())

    def verified_items(self) -> list[Verified]:
        """Everything held, for the view: logs and branches, the latest and the kept
        heartbeats, both sides of each piece of evidence."""
        items: list[Verified] = [s for m in sorted(self._logs) for s in self._logs[m]]
        for m in sorted(self._branches):
            items += self.branch_statements(m)
        items += self.heartbeats()
        for m in sorted(self._kept):
            items += self.kept_heartbeats(m)
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
            v = verify_versions(self.chain, env, self.clock() + RECHECK_SLACK_MS)
            self._fork_items[h] = None if isinstance(v, Rejection) else v
        return self._fork_items[h]

    def view(self, now_ms: int | None = None) -> View:
        """The view of `verified_items()` at `now_ms` (default: now), as `evaluate` makes it,
        from facts kept up to date between calls: a call costs the decision and what changed,
        not the length of the logs."""
        now = self.clock() if now_ms is None else now_ms
        if len(self.versions) > 1:  # counting across versions: the reference evaluation
            return evaluate_versions(self.chain, self.verified_items(), now)
        for m in self._logs:
            self._feed_view(m)
        return self._facts.view(now)

    def _feed_view(self, member: str) -> None:
        """Bring the view's facts in step with what is held of `member`: the main log only
        grows, so its new entries are added; the rest (branches, heartbeats, evidence items) is
        small and compared whole when any of it changed."""
        log = self._logs[member]
        fed = self._fed_log.get(member, 0)
        for st in log[fed:]:
            self._facts.add(st)
        self._fed_log[member] = len(log)
        latest = self._heartbeats.get(member)
        kept = self._kept.get(member, {})
        evidence = self._evidence_by_member.get(member, [])
        branches = self._branches.get(member, {})
        stamp = (
            latest.hash if latest is not None else b"",
            tuple(kept),
            len(branches),  # branches only grow
            tuple(ev.id for ev in evidence),
            len(log) if evidence else 0,  # an evidence item may since have joined the log
        )
        if self._fed_stamp.get(member) == stamp:
            return
        self._fed_stamp[member] = stamp
        extra: dict[bytes, Verified] = dict(branches)
        if latest is not None:
            extra[latest.hash] = latest
        extra.update(kept)
        for ev in evidence:
            for env in (ev.first, ev.second):
                h = env.payload_hash
                if h not in extra and h not in self._hashes:
                    v = self._verified_fork_item(env)
                    if v is not None:
                        extra[v.hash] = v
        old = self._fed_extra.get(member, {})
        for h, v in extra.items():
            if h not in old:
                self._facts.add(v)
        for h, v in old.items():
            if h not in extra:
                self._facts.remove(v)
        self._fed_extra[member] = extra

    def adopt(self, versions: tuple[Charter, ...], approvals: Iterable[Envelope] = ()) -> None:
        """Count items under these versions in force from now on (pinned first, newest last),
        ratified by `approvals` (which give each amendment's ratification time).

        Versions only ever extend: what verified before still verifies. A member the newest
        version adds gets an empty log."""
        self.chain = Versions.of(versions, approvals)
        self.versions = versions
        self.charter = versions[-1]
        for m in self.charter.members:
            self._logs.setdefault(m.id, [])
        # the incremental facts follow one charter: start them again under the new one
        self._facts = IncrementalFacts(self.charter)
        self._fed_log, self._fed_extra, self._fed_stamp = {}, {}, {}
        self._changed()

    def tree_hash(self, member: str) -> bytes:
        """For an equivocator, SHA-256 over the sorted hashes of every statement held of it
        (main log and branches): two nodes holding the same statements agree whichever branch
        each saw first (§12.1). Empty for a member with no evidence against it."""
        if not self._evidence_by_member.get(member):
            return b""
        cached = self._trees.get(member)
        if cached is None:
            hashes = sorted(
                [s.hash for s in self._logs.get(member, [])] + list(self._branches.get(member, {}))
            )
            cached = self._trees[member] = sha256(b"pausenet.tree.v1\n" + b"".join(hashes))
        return cached

    def member_head(self, member: str) -> MemberHead:
        """What this node holds of member, as its digest lists it (§12.1)."""
        seq, h = self.head(member)
        hb = self._heartbeats.get(member)
        return MemberHead(
            member,
            seq,
            h,
            hb.heartbeat.counter if hb else 0,
            self.tree_hash(member),
            tuple(sorted(e.id for e in self._evidence_by_member.get(member, ()))),
        )

    def digest(self) -> Digest:
        """The full digest: every member's head."""
        if self._digest is None:
            self._digest = Digest(tuple(self.member_head(m) for m in sorted(self._logs)))
        return self._digest

    def partial_digest(self, members: Iterable[str]) -> Digest:
        """The heads of these members only (others are not in question)."""
        return Digest(
            tuple(self.member_head(m) for m in sorted(set(members)) if m in self._logs),
            partial=True,
        )

    @property
    def tree_depth(self) -> int:
        return self._tree.depth

    def is_member(self, member: str) -> bool:
        return member in self._logs

    def leaf_of(self, member: str) -> int | None:
        """The leaf of the digest tree that holds member (None for a non-member)."""
        return self._tree.leaf(member) if member in self._tree else None

    def _fresh_tree(self) -> DigestTree:
        if len(self._tree) != len(self._logs):  # a charter version added members
            self._tree = DigestTree(self._logs)
            self._dirty = set(self._logs)
        for m in self._dirty:
            self._tree.set(m, self.member_head(m).entry())
        self._dirty.clear()
        return self._tree

    def summary_hash(self) -> bytes:
        """The root of the digest tree (§12.1)."""
        return self._fresh_tree().root()

    def subtree(self, level: int, nodes: Sequence[int]) -> tuple[list[bytes], Digest | None]:
        """Expand tree nodes at `level`: the ARITY child hashes of each (inner nodes), or the
        heads of the members in them as a partial digest (leaves). The caller checks bounds."""
        tree = self._fresh_tree()
        if level >= tree.depth:
            members = [m for i in nodes for m in tree.leaf_members(i)]
            return [], self.partial_digest(members)
        return [h for i in nodes for h in tree.children(level, i)], None

    def differing(self, level: int, nodes: Sequence[int], theirs: Sequence[bytes]) -> list[int]:
        """The children (at level + 1) of `nodes` whose hashes differ from `theirs` (ARITY per
        node, in order)."""
        tree = self._fresh_tree()
        out = []
        for k, i in enumerate(nodes):
            mine = tree.children(level, i)
            for j in range(ARITY):
                if mine[j] != theirs[k * ARITY + j]:
                    out.append(i * ARITY + j)
        return out

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
        # a partial digest asks only about the members it lists
        scope = sorted(their_heads) if theirs.partial else sorted(self._logs)
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

        for ev in sorted(
            (e for m in scope for e in self._evidence_by_member.get(m, ())), key=lambda e: e.id
        ):
            if (
                ev.id not in their_ev
                and fits(envelope_size(ev.first) + envelope_size(ev.second))
                and not more
            ):
                evidence.append((ev.first, ev.second))
        for m in scope:
            hb = self._heartbeats.get(m)
            if hb is None:
                continue
            th = their_heads.get(m)
            if (th.heartbeat_counter if th else 0) < hb.heartbeat.counter and fits(
                envelope_size(hb.envelope)
            ):
                heartbeats.append(hb.envelope)
        for m in scope:
            log = self._logs[m]
            th = their_heads.get(m)
            tree = self.tree_hash(m)
            if tree:
                # An equivocator: the peer may hold another branch as its main log. Unless it
                # holds the same statements, send ours from the fork (or its head) on, every
                # branch, in seq order; it keeps what it lacks.
                if th is not None and th.tree_hash == tree:
                    continue
                fork = self._evidence_by_member[m][0].seq
                start = min(fork, th.head_seq + 1 if th else 1)
                todo = [s for s in log[max(start, 1) - 1 :]]
                todo += [s for s in self._branches.get(m, {}).values() if s.seq >= start]
                for st in sorted(todo, key=lambda s: (s.seq, s.hash)):
                    if not fits(envelope_size(st.envelope)):
                        break
                    statements.append(st.envelope)
                continue
            start = min(th.head_seq, len(log)) if th else 0
            if th and 0 < th.head_seq <= len(log) and log[th.head_seq - 1].hash != th.head_hash:
                # Their log forks from ours at or before their head. Send our entry at their
                # head: it conflicts with theirs, so they find the fork (evidence) even when both
                # logs are equally long and no heartbeat betrays it.
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
            now = self.clock()
            # Signatures are checked before the lock (they depend on nothing held), so batches
            # from several peers are verified while another one is being stored.
            claimed: dict[bytes, anyio.Event] = {}
            try:
                checked = await self._check_statements(items.statements, now, claimed)
                async with self._ingest_lock:
                    report = await self._ingest(items, now, checked)
            finally:
                for h, done in claimed.items():
                    del self._verifying[h]
                    done.set()
        return report

    async def _check_statements(
        self, envs: Sequence[Envelope], now: int, claimed: dict[bytes, anyio.Event]
    ) -> list[tuple[Envelope, Verified | Rejection | None]]:
        """Each envelope verified, or None for one already held byte for byte: it is dropped
        before the signature check, the costly part of a catch-up that several peers feed at
        once (a copy with other signatures is checked: it may be a forgery, and counts as one).

        A statement another ingest is checking already is not checked twice: this one waits for
        that ingest to end, then takes it as held (or checks it, if it was not taken). Ingests
        claim their statements in the order they start, so none waits for a later one."""
        todo: list[Envelope] = []
        elsewhere: list[Envelope] = []
        for env in envs:
            h = env.payload_hash
            held = self._hashes.get(h)
            if held is not None and held.envelope == env:
                continue
            if h in self._verifying and h not in claimed:
                elsewhere.append(env)
                continue
            todo.append(env)
            if h not in claimed:
                claimed[h] = self._verifying[h] = anyio.Event()
        results = {id(e): v for e, v in zip(todo, await self._verify_many(todo, now), strict=True)}
        for env in elsewhere:
            done = self._verifying.get(env.payload_hash)
            if done is not None:
                await done.wait()
            held = self._hashes.get(env.payload_hash)
            if held is None or held.envelope != env:
                results[id(env)] = self._soften(verify_versions(self.chain, env, now), env)
        return [(env, results.get(id(env))) for env in envs]

    async def _ingest(
        self,
        items: Items,
        now: int,
        checked: Sequence[tuple[Envelope, Verified | Rejection | None]],
    ) -> IngestReport:
        report = IngestReport()
        for first, second in items.evidence:
            await self._ingest_evidence(first, second, now, report)
        # statements before heartbeats, so a heartbeat's head is usually already held
        by_member: dict[str, list[SignedStatement]] = {}
        seen: dict[bytes, Envelope] = {}
        for env, v in checked:
            h = env.payload_hash
            if v is None or seen.get(h) == env:
                report.duplicates += 1
                continue
            if isinstance(v, Rejection):
                report.reject(v.reason, v)
            elif isinstance(v, SignedHeartbeat):
                report.reject(Reason.TYPE_CONFUSION)
            else:
                seen[h] = env
                by_member.setdefault(v.member, []).append(v)
        for member in sorted(by_member):
            batch = sorted(by_member[member], key=lambda s: (s.seq, s.hash))
            await self._ingest_statements(member, batch, report)
        held_hbs = self._heartbeat_envelopes() if items.heartbeats else {}
        for env in items.heartbeats:
            if held_hbs.get(env.payload_hash) == env:
                report.duplicates += 1
                continue
            v = self._soften(verify_versions(self.chain, env, now), env)
            if isinstance(v, Rejection):
                report.reject(v.reason, v)
            elif isinstance(v, SignedStatement):
                report.reject(Reason.TYPE_CONFUSION)
            else:
                await self._ingest_heartbeat(v, report)
        if report.changed:
            self._changed()
        if self.on_new is not None:
            for v in report.new:
                self.on_new(v)
        if self.on_news is not None and (report.new or report.new_evidence):
            # items issued longer than a heartbeat TTL ago are a catch-up, not news
            fresh = news_items(report, since_ms=now - self.charter.rules.heartbeat_ttl_s * 1000)
            if fresh:
                self.on_news(fresh)
        return report

    def _soften(self, v: Verified | Rejection, env: Envelope) -> Verified | Rejection:
        if isinstance(v, Rejection) and v.reason is Reason.WRONG_CHARTER:
            digest = named_charter(env)
            if digest is not None and self.upcoming(digest):
                return Rejection(
                    Reason.UNKNOWN_VERSION,
                    "signed under a charter version held here but not in force here yet",
                    v.payload_hash,
                    v.member,
                )
        return v

    async def _verify_many(self, envs: list[Envelope], now: int) -> list[Verified | Rejection]:
        """verify_envelope for each, in order; a large batch (a catch-up) in worker threads
        (PyNaCl releases the GIL while it checks a signature)."""

        def run(chunk: list[Envelope]) -> list[Verified | Rejection]:
            return [self._soften(verify_versions(self.chain, e, now), e) for e in chunk]

        if len(envs) < THREAD_VERIFY_MIN:
            return run(envs)
        size = -(-len(envs) // VERIFY_THREADS)
        chunks = [envs[i : i + size] for i in range(0, len(envs), size)]
        done: list[list[Verified | Rejection]] = [[] for _ in chunks]

        async def one(i: int) -> None:
            done[i] = await anyio.to_thread.run_sync(run, chunks[i])

        async with anyio.create_task_group() as tg:
            for i in range(len(chunks)):
                tg.start_soon(one, i)
        return [v for part in done for v in part]

    def _heartbeat_envelopes(self) -> dict[bytes, Envelope]:
        held = {hb.hash: hb.envelope for hb in self._heartbeats.values()}
        for kept in self._kept.values():
            held.update((h, hb.envelope) for h, hb in kept.items())
        return held

    def _witnesses(self, member: str) -> list[SignedHeartbeat]:
        """The member's heartbeats held: the latest and the kept ones."""
        out = list(self._kept.get(member, {}).values())
        latest = self._heartbeats.get(member)
        if latest is not None:
            out.append(latest)
        return out

    async def _ingest_statements(
        self, member: str, batch: list[SignedStatement], report: IngestReport
    ) -> None:
        log = self._logs[member]
        to_append: list[SignedStatement] = []
        pending: set[bytes] = set()  # hashes in to_append (a batch may hold a thousand)
        late: list[tuple[SignedStatement, Reason]] = []
        for st in batch:
            if st.hash in self._hashes or st.hash in pending:
                report.duplicates += 1
                continue
            head = len(log) + len(to_append)
            tip = to_append[-1] if to_append else (log[-1] if log else None)
            if st.seq <= head:
                held = log[st.seq - 1] if st.seq <= len(log) else to_append[st.seq - len(log) - 1]
                await self._record_fork(held, st, report)
                await self._branch(st, to_append, report)
                continue
            if st.seq > head + 1:
                if not await self._branch(st, to_append, report):
                    report.reject(Reason.GAP)
                continue
            if tip is not None and st.statement.prev_hash != tip.hash:
                await self._record_fork(tip, st, report)  # n+1 contradicts our n: a fork
                await self._branch(st, to_append, report)
                continue
            problem = link_problem(st.statement, Predecessor.of(tip) if tip else None)
            if problem is not None:
                # judged after the batch: another statement at this seq may yet be appended,
                # and then this one is a fork, whatever its time (ingest is idempotent)
                late.append((st, problem.reason))
                continue
            if self._over_quota(log, to_append, st):
                late.append((st, Reason.QUOTA))  # judged like a broken link: it does not count
                continue
            forked = False
            for hb in self._witnesses(member):
                if find_conflict(hb, st) is None:
                    continue
                await self._record_fork(hb, st, report)
                # A heartbeat naming another entry at this seq (or its predecessor) is a fork:
                # the statement goes to a branch. A heartbeat that only denied it (issued later
                # naming a lower head) is a lie about the timeline: the statement is still the
                # next entry of the log, and counts.
                ch, cs = commitments(hb), commitments(st)
                forked = forked or any(s in ch and ch[s] != h for s, h in cs.items())
            if forked:
                await self._branch(st, to_append, report)
                continue
            to_append.append(st)
            pending.add(st.hash)
        for st, reason in late:
            at = len(log) + len(to_append)
            if st.seq <= at:
                held = log[st.seq - 1] if st.seq <= len(log) else to_append[st.seq - len(log) - 1]
                if held.hash != st.hash and find_conflict(held, st) is not None:
                    await self._record_fork(held, st, report)
                    continue
            report.reject(reason)
        if not to_append:
            return
        if self.persistence is not None:
            results = await self.persistence.append_statements(to_append)
            appended = [s for s, r in zip(to_append, results, strict=False) if r.stored]
            to_append = appended
        for st in to_append:
            if st.seq == len(log) + 1:
                log.append(st)
                self._hashes[st.hash] = st
                report.statements += st.hash not in report.evidenced
                report.new.append(st)
        self._touch(member)
        await self._prune_witnesses(member, persist=True)

    def _over_quota(
        self, log: list[SignedStatement], pending: list[SignedStatement], st: SignedStatement
    ) -> bool:
        """Whether `st`, the next statement after log + pending, is over the member's quota."""
        at = st.statement.issued_at_ms
        held = in_window(log, at) + in_window(pending, at)
        return held >= self.charter.max_statements_per_hour

    async def _branch(
        self, st: SignedStatement, pending: list[SignedStatement], report: IngestReport
    ) -> bool:
        """Keep `st` on a branch of an equivocator's log if it links to a statement held (or
        is a seq 1). True if kept or already held."""
        m = st.member
        if not self._evidence_by_member.get(m):
            return False  # branches are kept only once a fork is proven
        if st.hash in self._hashes:
            return True
        pred = self._hashes.get(st.statement.prev_hash) or next(
            (s for s in pending if s.hash == st.statement.prev_hash), None
        )
        if st.seq > 1 and (pred is None or pred.member != m or pred.seq != st.seq - 1):
            return False
        problem = link_problem(st.statement, Predecessor.of(pred) if pred else None)
        if problem is not None:
            report.reject(problem.reason)
            return True
        branch = self._branches.setdefault(m, {})
        if len(branch) >= BRANCH_STATEMENTS_PER_MEMBER:
            report.reject(Reason.QUOTA)
            return True
        for hb in self._witnesses(m):
            if find_conflict(hb, st) is not None:
                await self._record_fork(hb, st, report)
        if self.persistence is not None:
            await self.persistence.add_branch_statements([st])
        branch[st.hash] = st
        self._hashes[st.hash] = st
        self._touch(m)
        report.new.append(st)
        report.statements += st.hash not in report.evidenced
        if st.hash in report.evidenced:
            report.branched += 1
        return True

    async def _ingest_heartbeat(self, hb: SignedHeartbeat, report: IngestReport) -> None:
        m = hb.member
        cur = self._heartbeats.get(m)
        kept = self._kept.setdefault(m, {})
        if (cur is not None and cur.hash == hb.hash) or hb.hash in kept:
            report.duplicates += 1
            return
        # What this heartbeat contradicts: an entry we hold at its head (a fork), a statement
        # above its head issued at or before it, or another of the member's heartbeats.
        log = self._logs[m]
        h = hb.heartbeat
        if 0 < h.head_seq <= len(log) and log[h.head_seq - 1].hash != h.head_hash:
            await self._record_fork(log[h.head_seq - 1], hb, report)
        above = [log[h.head_seq]] if h.head_seq < len(log) else []
        above += [s for s in self._branches.get(m, {}).values() if s.seq > h.head_seq]
        for st in sorted(above, key=lambda s: (s.seq, s.hash)):
            if find_conflict(st, hb) is not None:
                await self._record_fork(st, hb, report)
                break
        for other in self._witnesses(m):
            if find_conflict(other, hb) is not None:
                await self._record_fork(other, hb, report)
        newest = cur is None or _hb_key(hb) > _hb_key(cur)
        if newest:
            if self.persistence is not None:
                await self.persistence.put_heartbeat(hb, durable=m == self.own)
            self._heartbeats[m] = hb
            self._touch(m)
            if cur is not None:
                kept[cur.hash] = cur  # a candidate witness; pruned below
            report.heartbeats += hb.hash not in report.evidenced
            report.new.append(hb)
        else:
            kept[hb.hash] = hb
        keeps = await self._prune_witnesses(m, persist=True)
        if not newest and hb.hash not in report.evidenced:
            if hb.hash in keeps:
                report.heartbeats += 1  # a commitment or witness we did not hold
            else:
                report.reject(Reason.SUPERSEDED)  # replay or rollback of an older heartbeat

    async def _prune_witnesses(self, member: str, *, persist: bool = False) -> frozenset[bytes]:
        """Keep, besides the latest heartbeat, the one with the highest head (the log may never
        shrink below it) and, for each head we do not hold past yet, the latest naming it (a
        statement above it issued before it would be a lie); at most a few, lowest heads first."""
        kept = self._kept.get(member)
        if not kept:
            return frozenset()
        latest = self._heartbeats.get(member)
        cands = [*kept.values(), *([latest] if latest is not None else [])]
        top = max(cands, key=lambda x: (x.heartbeat.head_seq, x.heartbeat.counter, x.hash))
        held = len(self._logs.get(member, []))
        by_head: dict[int, SignedHeartbeat] = {}
        for x in cands:
            hs = x.heartbeat.head_seq
            if hs < held:
                continue
            cur = by_head.get(hs)
            if cur is None or (x.heartbeat.issued_at_ms, x.hash) > (
                cur.heartbeat.issued_at_ms,
                cur.hash,
            ):
                by_head[hs] = x
        keep = {top.hash: top}
        for hs in sorted(by_head)[:WITNESS_HEARTBEATS_PER_MEMBER]:
            keep[by_head[hs].hash] = by_head[hs]
        if latest is not None:
            keep.pop(latest.hash, None)
        self._kept[member] = keep
        saved = self._kept_saved.get(member, frozenset())
        if persist and set(keep) != saved:
            if self.persistence is not None:
                await self.persistence.put_kept_heartbeats(
                    member, list(keep.values()), durable=False
                )
            self._kept_saved[member] = frozenset(keep)
        return frozenset(keep)

    async def _ingest_evidence(
        self, first: Envelope, second: Envelope, now: int, report: IngestReport
    ) -> None:
        eid = evidence_id(first, second)
        if eid in self._evidence:
            report.duplicates += 1
            return
        # Items of a fork may be old; the time check does not apply to evidence.
        for charter in reversed(self.versions):  # both items signed under one version in force
            ev = check_evidence(charter, first, second, now_ms=now + RECHECK_SLACK_MS)
            if not isinstance(ev, Rejection):
                break
        if isinstance(ev, Rejection):
            report.reject(Reason.BAD_EVIDENCE, ev)
            return
        await self._store_evidence(ev, report)

    async def _record_fork(self, a: Verified, b: Verified, report: IngestReport) -> None:
        seq = find_conflict(a, b)
        if seq is None:  # not a fork after all (e.g. the same statement): nothing to record
            report.reject(Reason.BROKEN_CHAIN)
            return
        first, second = sorted((a, b), key=lambda v: v.hash)
        ev = Evidence(a.member, seq, first.envelope, second.envelope)
        if b.hash in report.evidenced:
            return  # this item already counted as evidence once
        if ev.id in self._evidence:
            report.duplicates += 1
        else:
            await self._store_evidence(ev, report)
        report.evidenced.add(b.hash)

    async def _store_evidence(self, ev: Evidence, report: IngestReport) -> None:
        """Keep one piece of evidence per member and seq (the lowest id, as the view does) and at
        most EVIDENCE_PER_MEMBER per member: those with the lowest (seq, id). One proof makes a
        member an equivocator and only its lowest forked seq matters to the view (§8.1); the
        bound keeps memory and digests small however often a member forks, and every node keeps
        the same ones, so their digests agree."""
        held = self._evidence_by_member.setdefault(ev.member, [])
        same = next((e for e in held if e.seq == ev.seq), None)
        if same is not None and same.id <= ev.id:
            report.duplicates += 1
            return
        full = len(held) >= EVIDENCE_PER_MEMBER
        if same is None and full and (ev.seq, ev.id) >= (held[-1].seq, held[-1].id):
            report.duplicates += 1
            return
        if self.persistence is not None:
            await self.persistence.add_evidence(ev.id, ev.member, ev.first, ev.second)
        self._keep_evidence(ev)
        report.evidence += 1
        report.new_evidence.append(ev)

    def _keep_evidence(self, ev: Evidence) -> None:
        held = self._evidence_by_member.setdefault(ev.member, [])
        same = next((e for e in held if e.seq == ev.seq), None)
        if same is not None:
            if same.id <= ev.id:
                return
            held.remove(same)
            self._drop_evidence(same)
        held.append(ev)
        held.sort(key=lambda e: (e.seq, e.id))
        self._evidence[ev.id] = ev
        self._touch(ev.member)
        for dropped in held[EVIDENCE_PER_MEMBER:]:
            self._drop_evidence(dropped)
        del held[EVIDENCE_PER_MEMBER:]

    def _drop_evidence(self, ev: Evidence) -> None:
        del self._evidence[ev.id]
        self._fork_items.pop(ev.first.payload_hash, None)
        self._fork_items.pop(ev.second.payload_hash, None)

    # -- loading and own items -------------------------------------------------------------

    def load(
        self,
        statements: Iterable[Verified],
        heartbeats: Iterable[Verified],
        evidence: Iterable[Evidence],
        *,
        branches: Iterable[Verified] = (),
        kept: Iterable[Verified] = (),
    ) -> None:
        """Fill from the store at start-up (items already verified by the caller)."""
        for st in sorted(
            (s for s in statements if isinstance(s, SignedStatement)),
            key=lambda s: (s.member, s.seq),
        ):
            log = self._logs.get(st.member)
            if log is not None and st.seq == len(log) + 1:
                log.append(st)
                self._hashes[st.hash] = st
        for hb in heartbeats:
            if isinstance(hb, SignedHeartbeat):
                cur = self._heartbeats.get(hb.member)
                if cur is None or _hb_key(hb) > _hb_key(cur):
                    self._heartbeats[hb.member] = hb
        for ev in evidence:
            if ev.id not in self._evidence:
                self._keep_evidence(ev)
        for st in sorted(
            (s for s in branches if isinstance(s, SignedStatement)), key=lambda s: (s.seq, s.hash)
        ):
            if st.member in self._logs and st.hash not in self._hashes:
                self._branches.setdefault(st.member, {})[st.hash] = st
                self._hashes[st.hash] = st
        for hb in kept:
            if isinstance(hb, SignedHeartbeat) and hb.member in self._logs:
                latest = self._heartbeats.get(hb.member)
                if latest is None or latest.hash != hb.hash:
                    self._kept.setdefault(hb.member, {})[hb.hash] = hb
        self._kept_saved = {m: frozenset(k) for m, k in self._kept.items()}
        self._trees.clear()
        self._dirty.update(self._logs)
        self._changed()

    def add_own_statement(self, st: SignedStatement) -> None:
        """Add a statement this node signed and the store already appended."""
        log = self._logs[st.member]
        if st.seq == len(log) + 1:
            log.append(st)
            self._hashes[st.hash] = st
            self._touch(st.member)
            self._changed()
            if self.on_news is not None:
                self.on_news(Items(statements=(st.envelope,)))

    def _touch(self, member: str) -> None:
        """Member's log, branches, latest heartbeat or evidence changed."""
        self._trees.pop(member, None)
        self._dirty.add(member)

    def _changed(self) -> None:
        self._digest = None
        self.version += 1


def news_items(report: IngestReport, *, since_ms: int = 0) -> Items:
    """What an ingest first held, issued at or after since_ms (all its evidence), to pass on."""
    return Items(
        statements=tuple(
            v.envelope
            for v in report.new
            if isinstance(v, SignedStatement) and v.statement.issued_at_ms >= since_ms
        ),
        heartbeats=tuple(
            v.envelope
            for v in report.new
            if isinstance(v, SignedHeartbeat) and v.heartbeat.issued_at_ms >= since_ms
        ),
        evidence=tuple((ev.first, ev.second) for ev in report.new_evidence),
    )


def _hb_key(hb: SignedHeartbeat) -> tuple[int, int, bytes]:
    h = hb.heartbeat
    return (h.counter, h.issued_at_ms, hb.hash)


def named_charter(env: Envelope) -> bytes | None:
    """The charter digest a statement or heartbeat names, read without checking it (only to
    tell a version not in force yet from another charter)."""
    try:
        if env.payload_type == STATEMENT_TYPE:
            return decode_statement(env.payload).charter_digest
        return decode_heartbeat(env.payload).charter_digest
    except CodecError:
        return None
