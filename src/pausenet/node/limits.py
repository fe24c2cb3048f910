"""Per-peer rate limits and scores, so one flooding or lying peer cannot hurt the node.

Each peer (a member, once authenticated; an IP address before that) has a token bucket per kind
of call. Each authenticated peer also has a score: items that fail verification cost points by
reason, valid news earns a little back; a peer whose score falls below the floor is refused for a
cool-down that doubles each time. Every rejection is counted by reason for the operator.
All state is bounded: buckets and scores for at most `max_peers` keys, oldest dropped first.

Operators are told, at WARNING: each ban of a member, once, with the reasons that caused it; and
refusals, summed over a window of `report_every_s`, when they exceed `report_rate_per_s`
(`report_refusals`, called periodically by the node).
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from pausenet.errors import Reason

__all__ = ["PENALTIES", "PeerGuard", "RateLimit", "TokenBucket"]

log = logging.getLogger("pausenet.limits")

# Points an item costs by rejection reason. Honest nodes verify before they relay, so they never
# send forgeries; a clock-skew rejection can happen between honest nodes and costs little.
PENALTIES: Mapping[Reason, float] = {
    Reason.BAD_SIGNATURE: 10,
    Reason.UNKNOWN_MEMBER: 10,
    Reason.WRONG_CHARTER: 10,
    Reason.MEMBER_MISMATCH: 10,
    Reason.MALFORMED: 10,
    Reason.NON_CANONICAL: 10,
    Reason.UNKNOWN_PAYLOAD_TYPE: 10,
    Reason.TYPE_CONFUSION: 10,
    Reason.OVERSIZE: 10,
    Reason.INVALID: 10,
    Reason.BAD_EVIDENCE: 10,
    Reason.BROKEN_CHAIN: 5,
    Reason.GAP: 1,
    Reason.FROM_FUTURE: 1,
    Reason.SUPERSEDED: 0,
    Reason.UNKNOWN_VERSION: 0,  # a peer that adopted a version before us relays items under it
    Reason.QUOTA: 0,  # an honest relay may pass on more of an equivocator's branches than we keep
}


@dataclass(frozen=True)
class RateLimit:
    rate_per_s: float
    burst: float


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, limit: RateLimit, now_s: float) -> None:
        self.rate = limit.rate_per_s
        self.burst = limit.burst
        self.tokens = limit.burst
        self.stamp = now_s

    def take(self, now_s: float, n: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now_s - self.stamp) * self.rate)
        self.stamp = now_s
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


@dataclass
class _Peer:
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    score: float = 0.0
    banned_until: float = 0.0
    bans: int = 0
    # what it sent that failed since its last ban, for the operator when it is banned
    reasons: Counter[str] = field(default_factory=Counter)


class PeerGuard:
    """Rate limits, scores and counters for the peers of one node."""

    def __init__(
        self,
        limits: Mapping[str, RateLimit],
        *,
        floor: float = -100.0,
        reward: float = 1.0,
        ceiling: float = 20.0,
        ban_s: float = 30.0,
        max_ban_s: float = 3600.0,
        max_peers: int = 4096,
        report_every_s: float = 60.0,
        report_rate_per_s: float = 1.0,
    ) -> None:
        self.limits = dict(limits)
        self.floor = floor
        self.reward = reward
        self.ceiling = ceiling
        self.ban_s = ban_s
        self.max_ban_s = max_ban_s
        self.max_peers = max_peers
        self._peers: OrderedDict[str, _Peer] = OrderedDict()
        self._addresses: OrderedDict[str, _Peer] = OrderedDict()
        self.rejected: Counter[Reason] = Counter()  # items rejected, by reason
        self.refused: Counter[str] = Counter()  # calls refused, by cause
        self.report_every_s = report_every_s
        self.report_rate_per_s = report_rate_per_s
        self._reported: tuple[float, Counter[str]] | None = None  # when, and the counts then

    def _peer(self, key: str) -> _Peer:
        # Addresses ("ip:…", before authentication) and members live in separate tables, so a
        # flood from many addresses cannot push a banned member out and so lift its ban.
        table = self._addresses if key.startswith("ip:") else self._peers
        p = table.get(key)
        if p is None:
            p = table[key] = _Peer()
            while len(table) > self.max_peers:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        return p

    def admit(self, key: str, kind: str, now_s: float, cost: float = 1.0) -> str | None:
        """None if the call may go ahead, else why it is refused."""
        p = self._peer(key)
        if p.banned_until > now_s:
            self.refused["banned"] += 1
            return f"refused for {p.banned_until - now_s:.0f}s more: too many invalid items"
        limit = self.limits.get(kind)
        if limit is None:
            return None
        b = p.buckets.get(kind)
        if b is None:
            b = p.buckets[kind] = TokenBucket(limit, now_s)
        if not b.take(now_s, cost):
            self.refused[f"rate:{kind}"] += 1
            return f"rate limit for {kind}: {limit.rate_per_s:g}/s"
        return None

    def judge(self, key: str, rejected: Mapping[Reason, int], accepted: int, now_s: float) -> None:
        """Update a peer's score after one message: what it sent that failed, and what was news."""
        p = self._peer(key)
        penalty = 0.0
        for reason, n in rejected.items():
            self.rejected[reason] += n
            penalty += PENALTIES.get(reason, 5) * n
            if PENALTIES.get(reason, 5) > 0:
                p.reasons[reason] += n
        p.score = min(self.ceiling, p.score - penalty + self.reward * min(accepted, 10))
        if p.score < self.floor:
            p.bans += 1
            ban_s = min(self.max_ban_s, self.ban_s * 2 ** (p.bans - 1))
            p.banned_until = now_s + ban_s
            p.score = 0.0
            self.refused["bans"] += 1
            log.warning(
                "banned %s for %.0fs (ban %d): it sent invalid items: %s",
                key,
                ban_s,
                p.bans,
                _top(p.reasons),
            )
            p.reasons.clear()

    def score(self, key: str) -> float:
        p = (self._addresses if key.startswith("ip:") else self._peers).get(key)
        return p.score if p else 0.0

    def banned(self, key: str, now_s: float) -> bool:
        p = (self._addresses if key.startswith("ip:") else self._peers).get(key)
        return bool(p and p.banned_until > now_s)

    def report_refusals(self, now_s: float) -> None:
        """Once per `report_every_s`: if more calls were refused in that window than
        `report_rate_per_s` allows, say how many and why, in one line."""
        if self._reported is None:
            self._reported = (now_s, Counter(self.refused))
            return
        since, then = self._reported
        elapsed = now_s - since
        if elapsed < self.report_every_s:
            return
        delta = Counter(self.refused)
        delta.subtract(then)
        delta = +delta  # positive counts only
        self._reported = (now_s, Counter(self.refused))
        total = sum(delta.values())
        if total > self.report_rate_per_s * elapsed:
            log.warning("refused %d call(s) in the last %.0fs: %s", total, elapsed, _top(delta))

    def stats(self) -> dict[str, int]:
        out = {f"rejected.{k}": v for k, v in sorted(self.rejected.items())}
        out.update({f"refused.{k}": v for k, v in sorted(self.refused.items())})
        return out


def _top(counts: Counter[str], n: int = 5) -> str:
    """'bad-signature 12, gap 3' — the most frequent first, at most n of them."""
    items = counts.most_common()
    shown = ", ".join(f"{k} {v}" for k, v in items[:n])
    return shown + (f", and {len(items) - n} more" if len(items) > n else "")
