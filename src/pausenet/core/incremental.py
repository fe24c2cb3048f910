"""Facts kept up to date as items come and go, so a view costs the decision and not the log.

`IncrementalFacts` holds a multiset of verified items and the `Facts` that
`pausenet.core.facts.build_facts` would make of it, member by member. Most changes touch one
member in a way that is cheap to follow:

- a statement at head + 1 linking to the head, from a member whose items are one clean chain
  (no evidence, nothing refused, nothing out of order): counted in O(1) plus a look at the
  member's heartbeats, which may deny it;
- a heartbeat from such a member: its latest and committed head in O(1), after checking it
  against the member's other heartbeats and the two statements it could contradict (the one at
  its head and the one above it: a chain's times never go back, so the statement just above a
  head is the earliest one a heartbeat could deny);
- a heartbeat removed from such a member: no evidence can appear by taking an item away, so
  only the latest and the committed head are recomputed from the member's heartbeats.

Anything else (a fork, a gap, a gap filled, evidence, a statement removed) marks the member for
a rebuild with `member_facts`, done once at the next `facts()`: correct whatever
`member_facts` decides, and O(that member's items). The result always equals
`build_facts(charter, items)` (property tests check it against `pausenet.core.view.evaluate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pausenet.core.chain import Predecessor, link_problem
from pausenet.core.charter import Charter
from pausenet.core.evidence import find_conflict
from pausenet.core.facts import Facts, MemberFacts, count, member_facts
from pausenet.core.quota import window_of
from pausenet.core.records import SignedHeartbeat, SignedStatement
from pausenet.core.verify import Reason, Rejection, Verified
from pausenet.core.view import View, decide

__all__ = ["IncrementalFacts"]


@dataclass
class _Member:
    statements: dict[bytes, SignedStatement] = field(default_factory=dict)
    heartbeats: dict[bytes, SignedHeartbeat] = field(default_factory=dict)
    facts: MemberFacts | None = None  # None: to be rebuilt at the next facts()
    # facts are one chain 1..n holding every statement, no evidence, nothing refused: the fast
    # paths apply (facts.counted is then the chain, entry i at seq i + 1)
    clean: bool = False


class IncrementalFacts:
    """A multiset of verified items (from `verify_envelope` under `charter`) and its facts."""

    def __init__(self, charter: Charter) -> None:
        self.charter = charter
        self._members: dict[str, _Member] = {}
        self._strangers: dict[bytes, Verified] = {}  # items of non-members: refused
        self._extra: dict[bytes, tuple[Verified, int]] = {}  # copies beyond the first: refused
        self._count = 0
        self._facts: Facts | None = None
        self.version = 0  # bumps on every change
        self.rebuilds = 0  # members rebuilt with member_facts (the slow path), for tests

    def __len__(self) -> int:
        return self._count

    def _holds(self, item: Verified) -> bool:
        if item.hash in self._strangers:
            return True
        m = self._members.get(item.member)
        return m is not None and (item.hash in m.statements or item.hash in m.heartbeats)

    def add(self, item: Verified) -> None:
        self._changed()
        self._count += 1
        if self._holds(item):  # a duplicate: refused in the facts, changes nothing else
            _, n = self._extra.get(item.hash, (item, 0))
            self._extra[item.hash] = (item, n + 1)
            return
        if self.charter.member(item.member) is None:
            self._strangers[item.hash] = item
            return
        m = self._members.setdefault(item.member, _Member())
        if isinstance(item, SignedStatement):
            m.statements[item.hash] = item
            if not (m.clean and self._append(m, item)):
                m.facts, m.clean = None, False
        else:
            m.heartbeats[item.hash] = item
            if not (m.clean and self._heartbeat(m, item)):
                m.facts, m.clean = None, False

    def remove(self, item: Verified) -> None:
        """Take away one copy of `item`; KeyError if none is held."""
        if not self._holds(item):
            raise KeyError(item.hash.hex())
        self._changed()
        self._count -= 1
        extra = self._extra.get(item.hash)
        if extra is not None:
            if extra[1] > 1:
                self._extra[item.hash] = (extra[0], extra[1] - 1)
            else:
                del self._extra[item.hash]
            return
        if self._strangers.pop(item.hash, None) is not None:
            return
        m = self._members[item.member]
        if isinstance(item, SignedHeartbeat):
            del m.heartbeats[item.hash]
            if m.clean and m.facts is not None:
                # taking an item away proves nothing new: only the heartbeat summary changes
                _recount_heartbeats(m.facts, m.heartbeats.values())
            else:
                m.facts, m.clean = None, False
        else:
            del m.statements[item.hash]
            m.facts, m.clean = None, False
        if not m.statements and not m.heartbeats:
            del self._members[item.member]

    def facts(self) -> Facts:
        """The facts of the items held, as `build_facts` makes them. Valid until the next
        change: the member facts in it are updated in place."""
        if self._facts is None:
            rejected: list[Rejection] = []
            for h, (it, n) in self._extra.items():
                for _ in range(n):
                    rejected.append(
                        Rejection(
                            Reason.DUPLICATE, "the same signed item appears twice", h, it.member
                        )
                    )
            for h, it in self._strangers.items():
                rejected.append(
                    Rejection(Reason.UNKNOWN_MEMBER, f"{it.member!r} is not a member", h, it.member)
                )
            members: dict[str, MemberFacts] = {}
            for mid in sorted(self._members):
                members[mid] = self._member_facts(mid, self._members[mid])
            self._facts = Facts(members, rejected)
        return self._facts

    def view(self, now_ms: int) -> View:
        return decide(self.charter, self.facts(), now_ms)

    # -- the paths -----------------------------------------------------------------------

    def _changed(self) -> None:
        self._facts = None
        self.version += 1

    def _member_facts(self, mid: str, m: _Member) -> MemberFacts:
        if m.facts is None:
            self.rebuilds += 1
            mf = member_facts(
                mid,
                m.statements.values(),
                m.heartbeats.values(),
                quota=self.charter.max_statements_per_hour,
            )
            m.facts = mf
            m.clean = not mf.evidence and not mf.rejected and len(mf.counted) == len(m.statements)
        return m.facts

    def _append(self, m: _Member, st: SignedStatement) -> bool:
        """Count `st` if it extends a clean member's chain and no heartbeat contradicts it."""
        mf = m.facts
        assert mf is not None
        chain = mf.counted
        if st.seq != len(chain) + 1:
            return False
        if link_problem(st.statement, Predecessor.of(chain[-1]) if chain else None) is not None:
            return False
        if self._over_quota(chain, st):
            return False  # the rebuild refuses it with its reason
        if any(find_conflict(hb, st) is not None for hb in m.heartbeats.values()):
            return False
        mf.valid[st.seq] = [st]
        count(mf, st)
        return True

    def _over_quota(self, chain: list[SignedStatement], st: SignedStatement) -> bool:
        """Whether st's hour already holds the quota of the chain's statements: times along a
        chain never go back, so they are the last ones (at most quota + 1 looked at)."""
        quota = self.charter.max_statements_per_hour
        window = window_of(st.statement.issued_at_ms)
        for n, prev in enumerate(reversed(chain), 1):
            if window_of(prev.statement.issued_at_ms) != window:
                break
            if n >= quota:
                return True
        return False

    def _heartbeat(self, m: _Member, hb: SignedHeartbeat) -> bool:
        """Take `hb` into a clean member's facts if it contradicts none of its items."""
        mf = m.facts
        assert mf is not None
        chain = mf.counted
        head = hb.heartbeat.head_seq
        # the entry at its head (a fork) and the one above it (the earliest a heartbeat issued
        # before it could deny, since a chain's times never go back)
        near = chain[max(head - 1, 0) : head + 1]
        if any(find_conflict(st, hb) is not None for st in near):
            return False
        if any(
            find_conflict(other, hb) is not None
            for other in m.heartbeats.values()
            if other.hash != hb.hash
        ):
            return False
        if mf.latest is None or _hb_key(hb) > _hb_key(mf.latest):
            mf.latest = hb
        mf.committed = max(mf.committed, head)
        top = mf.committed_by
        if top is None or (head, hb.hash) > (top.heartbeat.head_seq, top.hash):
            mf.committed_by = hb
        return True


def _hb_key(hb: SignedHeartbeat) -> tuple[int, int, bytes]:
    h = hb.heartbeat
    return (h.counter, h.issued_at_ms, hb.hash)


def _recount_heartbeats(mf: MemberFacts, hbs: Iterable[SignedHeartbeat]) -> None:
    """Latest heartbeat and committed head as `member_facts` finds them."""
    items = list(hbs)
    mf.latest = max(items, key=_hb_key, default=None)
    mf.committed_by = max(items, key=lambda h: (h.heartbeat.head_seq, h.hash), default=None)
    mf.committed = mf.committed_by.heartbeat.head_seq if mf.committed_by is not None else 0
