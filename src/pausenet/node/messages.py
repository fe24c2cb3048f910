"""Anti-entropy messages as plain data: what a node holds (`Digest`, `DigestTree`) and what it
sends (`Items`).

A node's digest is a hash tree over one *entry* per charter member (docs/protocol.md §12.1):
members are hashed into `ARITY ** depth` leaf buckets, a leaf hashes its members' entries, an
inner node its `ARITY` children, and the root is the 32-byte summary hash. Two nodes compare
roots, then descend only where children differ, so finding one changed member costs a few
hashes per level however many members the charter lists.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pausenet.core.dsse import Envelope

__all__ = [
    "ARITY",
    "MAX_EVIDENCE_PER_HEAD",
    "MAX_EXPAND",
    "Digest",
    "DigestTree",
    "Items",
    "MemberHead",
    "bucket_key",
    "check_expand",
    "tree_depth",
]

ARITY = 16  # children per inner node of the digest tree
LEAF_MEMBERS = (
    16  # the depth is the least that puts at most this many members in a leaf, on average
)
MAX_EXPAND = 256  # tree nodes one digest request may ask to expand (§12.2)
MAX_EVIDENCE_PER_HEAD = 8  # evidence ids one member's head lists (a node keeps at most 8, §12.3)
_TREE = 2**64 - 1  # stands for head_seq in the entry of an equivocator (its tree hash follows)


@dataclass(frozen=True)
class MemberHead:
    member: str
    head_seq: int
    head_hash: bytes
    heartbeat_counter: int
    tree_hash: bytes = b""  # for an equivocator: every statement held of it (§12.1)
    evidence_ids: tuple[bytes, ...] = ()  # sorted ids of the evidence held against the member

    def entry(self) -> bytes:
        """The member's entry in the digest tree, in the fixed binary form of §12.1."""
        m = self.member.encode("utf-8")
        out = struct.pack(">B", len(m)) + m
        if self.tree_hash:  # an equivocator: nodes may hold different branches as main logs
            out += struct.pack(">QQ", _TREE, self.heartbeat_counter)
            out += self.tree_hash.ljust(32, b"\0")[:32]
        else:
            out += struct.pack(">QQ", self.head_seq, self.heartbeat_counter)
            out += self.head_hash.ljust(32, b"\0")[:32]
        out += struct.pack(">B", len(self.evidence_ids))
        return out + b"".join(self.evidence_ids)


@dataclass(frozen=True)
class Digest:
    """Heads by member. A full digest describes every member (one not listed holds nothing); a
    partial one (`partial=True`) only the members it lists: the rest are not in question."""

    heads: tuple[MemberHead, ...]  # sorted by member
    partial: bool = False

    @property
    def evidence_ids(self) -> tuple[bytes, ...]:
        return tuple(sorted(e for h in self.heads for e in h.evidence_ids))

    def members(self) -> frozenset[str]:
        return frozenset(h.member for h in self.heads)


def tree_depth(members: int) -> int:
    """Levels below the root: the least d with members <= LEAF_MEMBERS * ARITY**d (0 for up to
    16 members, where the root is the only leaf; 2 for 257 to 4096)."""
    d = 0
    while members > LEAF_MEMBERS * ARITY**d:
        d += 1
    return d


def check_expand(depth: int, level: int, nodes: Sequence[int]) -> str | None:
    """Why a request to expand `nodes` at `level` of a tree of this depth is refused, or None."""
    if level > depth:
        return f"digest request for level {level}; the tree has {depth} levels below the root"
    if level == 0:
        return (
            None
            if list(nodes) in ([], [0])
            else "digest request for level 0 names a node other than 0"
        )
    if not nodes:
        return f"digest request for level {level} names no node"
    if len(nodes) > MAX_EXPAND:
        return f"digest request names {len(nodes)} nodes, limit {MAX_EXPAND}"
    if any(b <= a for a, b in itertools.pairwise(nodes)):
        return "digest request nodes must be ascending, without repeats"
    if nodes[-1] >= ARITY**level or nodes[0] < 0:
        return f"digest request node {nodes[-1]} does not exist at level {level}"
    return None


def bucket_key(member: str) -> int:
    """The first 8 bytes of SHA-256("pausenet.bucket.v1\\n" || member id), big-endian: a
    member's leaf at depth d is this key's top 4·d bits."""
    h = hashlib.sha256(b"pausenet.bucket.v1\n" + member.encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def _leaf_hash(entries: Iterable[bytes]) -> bytes:
    h = hashlib.sha256(b"pausenet.leaf.v1\n")
    for e in entries:
        h.update(e)
    return h.digest()


def _node_hash(children: Sequence[bytes]) -> bytes:
    return hashlib.sha256(b"pausenet.node.v1\n" + b"".join(children)).digest()


class DigestTree:
    """The digest tree over a fixed set of members, updated one entry at a time.

    Hashes are recomputed lazily, only on the paths of leaves whose entries changed.
    """

    def __init__(self, members: Iterable[str]) -> None:
        ids = sorted(set(members))
        self.depth = tree_depth(len(ids))
        shift = 64 - 4 * self.depth
        self._leaf_of = {m: (bucket_key(m) >> shift if self.depth else 0) for m in ids}
        self._leaves: dict[int, list[str]] = {}
        for m in ids:  # sorted, so each leaf lists its members in order
            self._leaves.setdefault(self._leaf_of[m], []).append(m)
        self._entries: dict[str, bytes] = dict.fromkeys(ids, b"")
        # hashes by (level, index), dropped on the path of each changed entry
        self._hashes: dict[tuple[int, int], bytes] = {}

    def __contains__(self, member: object) -> bool:
        return member in self._leaf_of

    def __len__(self) -> int:
        return len(self._leaf_of)

    def set(self, member: str, entry: bytes) -> None:
        if self._entries.get(member) == entry:
            return
        self._entries[member] = entry
        index = self._leaf_of[member]
        for level in range(self.depth, -1, -1):
            self._hashes.pop((level, index), None)
            index //= ARITY

    def leaf(self, member: str) -> int:
        return self._leaf_of[member]

    def leaf_members(self, index: int) -> list[str]:
        return self._leaves.get(index, [])

    def hash(self, level: int, index: int) -> bytes:
        key = (level, index)
        got = self._hashes.get(key)
        if got is not None:
            return got
        if level == self.depth:
            members = self._leaves.get(index)
            got = _leaf_hash(self._entries[m] for m in members or ())
        else:
            got = _node_hash(self.children(level, index))
        self._hashes[key] = got
        return got

    def children(self, level: int, index: int) -> list[bytes]:
        """The ARITY child hashes of an inner node (level < depth)."""
        return [self.hash(level + 1, index * ARITY + j) for j in range(ARITY)]

    def root(self) -> bytes:
        return self.hash(0, 0)


@dataclass(frozen=True)
class Items:
    statements: tuple[Envelope, ...] = ()
    heartbeats: tuple[Envelope, ...] = ()
    evidence: tuple[tuple[Envelope, Envelope], ...] = ()

    def __len__(self) -> int:
        return len(self.statements) + len(self.heartbeats) + len(self.evidence)

    def __bool__(self) -> bool:
        return len(self) > 0
