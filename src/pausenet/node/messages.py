"""Anti-entropy messages as plain data: what a node holds (`Digest`) and what it sends (`Items`)."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from pausenet.core.dsse import Envelope

__all__ = ["Digest", "Items", "MemberHead"]

_TREE = 2**64 - 1  # stands for head_seq in the summary of an equivocator's tree hash


@dataclass(frozen=True)
class MemberHead:
    member: str
    head_seq: int
    head_hash: bytes
    heartbeat_counter: int
    tree_hash: bytes = b""  # for an equivocator: every statement held of it (§12.1)


@dataclass(frozen=True)
class Digest:
    heads: tuple[MemberHead, ...]  # sorted by member
    evidence_ids: tuple[bytes, ...] = ()  # sorted

    def summary_hash(self) -> bytes:
        """SHA-256 over a fixed binary form of the digest (docs/protocol.md §12.1)."""
        h = hashlib.sha256(b"pausenet.digest.v1\n")
        for mh in self.heads:
            m = mh.member.encode("utf-8")
            h.update(struct.pack(">B", len(m)) + m)
            if mh.tree_hash:  # an equivocator: nodes may hold different branches as main logs
                h.update(struct.pack(">QQ", _TREE, mh.heartbeat_counter))
                h.update(mh.tree_hash.ljust(32, b"\0")[:32])
                continue
            h.update(struct.pack(">QQ", mh.head_seq, mh.heartbeat_counter))
            h.update(mh.head_hash.ljust(32, b"\0")[:32])
        for eid in self.evidence_ids:
            h.update(eid)
        return h.digest()


@dataclass(frozen=True)
class Items:
    statements: tuple[Envelope, ...] = ()
    heartbeats: tuple[Envelope, ...] = ()
    evidence: tuple[tuple[Envelope, Envelope], ...] = ()

    def __len__(self) -> int:
        return len(self.statements) + len(self.heartbeats) + len(self.evidence)

    def __bool__(self) -> bool:
        return len(self) > 0
