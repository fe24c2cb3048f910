"""The gossip digest tree (docs/protocol.md §12.1, §12.2): its known-answer vector, checked
against an independent implementation; bounded requests; and what anti-entropy and pushes send."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import anyio
import pytest
from helpers import T0, attest, log_for, make_federation, pause
from netutil import Cluster, Sim, eventually

from pausenet.errors import CodecError, PeerError
from pausenet.node.gossip import (
    DigestReply,
    ExchangeReply,
    GossipConfig,
    GossipEngine,
    GossipService,
    PeerClient,
)
from pausenet.node.messages import (
    MAX_EXPAND,
    Digest,
    DigestTree,
    Items,
    MemberHead,
    check_expand,
    tree_depth,
)
from pausenet.node.replica import Replica
from pausenet.testing.memnet import MemoryNetwork

VECTOR = Path(__file__).resolve().parent / "vectors" / "digest-tree.json"


# -- the tree, from the spec alone ---------------------------------------------------------------


def _entry(member: str, seq: int, head: bytes, counter: int, tree: bytes, ev: list[bytes]) -> bytes:
    m = member.encode()
    out = bytes([len(m)]) + m
    if tree:
        out += struct.pack(">QQ", 2**64 - 1, counter) + tree
    else:
        out += struct.pack(">QQ", seq, counter) + head.ljust(32, b"\0")
    return out + bytes([len(ev)]) + b"".join(sorted(ev))


def _root(entries: dict[str, bytes]) -> tuple[bytes, list[bytes], dict[int, bytes], int]:
    """Root, root children, leaf hashes and depth, computed straight from §12.1."""
    n = len(entries)
    depth = 0
    while n > 16 * 16**depth:
        depth += 1
    leaves: dict[int, list[str]] = {}
    for m in sorted(entries):
        key = int.from_bytes(hashlib.sha256(b"pausenet.bucket.v1\n" + m.encode()).digest()[:8])
        leaves.setdefault(key >> (64 - 4 * depth) if depth else 0, []).append(m)
    level = [
        hashlib.sha256(
            b"pausenet.leaf.v1\n" + b"".join(entries[m] for m in leaves.get(i, []))
        ).digest()
        for i in range(16**depth)
    ]
    leaf_hashes = dict(enumerate(level))
    children: list[bytes] = []
    while len(level) > 1:
        children = level[:16] if len(level) == 16 else children
        level = [
            hashlib.sha256(b"pausenet.node.v1\n" + b"".join(level[i : i + 16])).digest()
            for i in range(0, len(level), 16)
        ]
    return level[0], children, leaf_hashes, depth


def test_the_vector_matches_the_spec_and_the_implementation() -> None:
    v: dict[str, Any] = json.loads(VECTOR.read_text(encoding="utf-8"))
    ids = [f"m{i:03d}" for i in range(300)]
    entries = {m: _entry(m, 0, b"", 0, b"", []) for m in ids}
    assert entries["m001"].hex() == v["empty_entry_m001"]
    tree = DigestTree(ids)
    for m in ids:
        tree.set(m, MemberHead(m, 0, b"", 0).entry())
    for h in v["held"]:
        ev = [bytes.fromhex(e) for e in h["evidence_ids"]]
        e = _entry(
            h["member"],
            h["head_seq"],
            bytes.fromhex(h["head_hash"]),
            h["heartbeat_counter"],
            bytes.fromhex(h["tree_hash"]),
            ev,
        )
        assert e.hex() == h["entry"]
        entries[h["member"]] = e
        head = MemberHead(
            h["member"],
            h["head_seq"],
            bytes.fromhex(h["head_hash"]),
            h["heartbeat_counter"],
            bytes.fromhex(h["tree_hash"]),
            tuple(sorted(ev)),
        )
        assert head.entry() == e
        tree.set(h["member"], e)
        assert tree.leaf(h["member"]) == h["leaf"]
    root, children, leaves, depth = _root(entries)
    assert depth == v["depth"] == tree.depth == 2
    assert root.hex() == v["summary_hash"] == tree.root().hex()
    assert [c.hex() for c in children] == v["root_children"]
    assert [c.hex() for c in tree.children(0, 0)] == v["root_children"]
    for i, leaf in v["leaves"].items():
        assert leaves[int(i)].hex() == leaf["hash"] == tree.hash(2, int(i)).hex()
        assert tree.leaf_members(int(i)) == leaf["members"]
    assert leaves[0].hex() == v["empty_leaf_hash"] or 0 in {int(i) for i in v["leaves"]}


def test_the_depth_keeps_leaves_at_about_16_members() -> None:
    assert [tree_depth(n) for n in (1, 4, 16, 17, 256, 257, 4096, 4097)] == [
        0,
        0,
        0,
        1,
        1,
        2,
        2,
        3,
    ]


def test_a_changed_entry_changes_the_root_and_only_its_path() -> None:
    ids = [f"m{i:03d}" for i in range(300)]
    tree = DigestTree(ids)
    for m in ids:
        tree.set(m, MemberHead(m, 0, b"", 0).entry())
    before = tree.root()
    children = tree.children(0, 0)
    tree.set("m042", MemberHead("m042", 1, bytes(32), 0).entry())
    after = tree.children(0, 0)
    assert tree.root() != before
    assert sum(a != b for a, b in zip(children, after, strict=True)) == 1
    tree.set("m042", MemberHead("m042", 0, b"", 0).entry())
    assert tree.root() == before  # a function of the entries only


# -- hostile requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "nodes", "why"),
    [
        (3, [0], "level 3"),
        (1, [], "names no node"),
        (0, [1], "other than 0"),
        (1, [2, 1], "ascending"),
        (1, [1, 1], "ascending"),
        (1, [16], "does not exist"),
        (2, list(range(MAX_EXPAND + 1)), "limit 256"),
    ],
)
def test_a_digest_request_no_honest_peer_makes_is_refused_with_the_reason(
    level: int, nodes: list[int], why: str
) -> None:
    problem = check_expand(2, level, nodes)
    assert problem is not None
    assert why in problem
    charter, _ = make_federation(labs=300, overseers=0)
    service = GossipService(Replica(charter, lambda: T0))
    with pytest.raises(CodecError, match=why):
        service.expand(bytes(32), level, nodes)


def test_good_requests_pass_and_expand_to_children_then_heads() -> None:
    assert check_expand(2, 0, []) is None
    assert check_expand(2, 2, list(range(MAX_EXPAND))) is None
    charter, _ = make_federation(labs=300, overseers=0)
    rep = Replica(charter, lambda: T0)
    service = GossipService(rep)
    root = service.get_digest(bytes(32))
    assert not root.in_sync
    assert root.digest is None
    assert len(root.children) == 16
    leaves = service.expand(bytes(32), 2, [0, 255])
    assert leaves.digest is not None
    assert leaves.digest.partial
    assert {h.member for h in leaves.digest.heads} == {
        m.id for m in charter.members if rep.leaf_of(m.id) in (0, 255)
    }
    assert service.get_digest(rep.summary_hash()).in_sync


# -- what a contact sends ------------------------------------------------------------------------


class _Recorder:
    """A PeerClient that records the calls it passes on."""

    def __init__(self, inner: PeerClient, calls: list[tuple[str, Any]]) -> None:
        self.inner, self.calls = inner, calls

    async def get_digest(
        self, summary_hash: bytes, *, timeout: float, level: int = 0, nodes: Any = ()
    ) -> DigestReply:
        self.calls.append(("digest", (level, tuple(nodes))))
        return await self.inner.get_digest(summary_hash, timeout=timeout, level=level, nodes=nodes)

    async def exchange(self, digest: Digest, items: Items, *, timeout: float) -> Any:
        self.calls.append(("exchange", digest))
        return await self.inner.exchange(digest, items, timeout=timeout)


async def test_one_new_statement_among_300_members_costs_one_path_of_hashes_and_one_head() -> None:
    sim = Sim(300, seed=3, gossip=GossipConfig(fanout=1, push_fanout=0))
    a, b = sim.ids[0], sim.ids[1]
    [st] = await sim.publish(a, pause(1))
    await sim.give(b, Items((st.envelope,), (sim.sign_heartbeat(a).envelope,)))
    calls: list[tuple[str, Any]] = []
    engine = sim.engines[a]
    transport = engine.transport
    engine.transport = type(  # type: ignore[assignment]
        "T", (), {"peer": lambda self, addr: _Recorder(transport.peer(addr), calls)}
    )()
    engine.bootstrap = (sim.address[b],)
    engine.replica.addresses = lambda: {}  # type: ignore[method-assign]

    await engine.run_round()
    for m in (a, b):
        await sim.replicas[m].flush()  # type: ignore[attr-defined]

    assert sim.replicas[a].summary_hash() == sim.replicas[b].summary_hash()
    digests = [c for kind, c in calls if kind == "digest"]
    assert digests[:3] == [(0, ()), (1, digests[1][1]), (2, digests[2][1])]
    assert len(digests[1][1]) == 1
    assert len(digests[2][1]) == 1
    [sent] = [c for kind, c in calls if kind == "exchange"]
    assert sent.partial
    assert [h.member for h in sent.heads] == [a]


async def test_news_is_pushed_to_three_peers_in_the_next_round_without_anti_entropy() -> None:
    sim = Sim(20, seed=5, gossip=GossipConfig(fanout=0, push_fanout=3))
    await sim.publish("lab-a", pause(1))
    await sim.round()
    assert sim.holders("lab-a", 1) == 1 + 3
    await sim.round()  # each of the three passes it on to three more
    assert sim.holders("lab-a", 1) > 4


async def test_a_catch_up_of_old_statements_is_not_pushed() -> None:
    charter, keys = make_federation(labs=4, overseers=0)
    rep = Replica(charter, lambda: T0 + 3_600_000)  # an hour later: older than the TTL
    log = log_for(charter, keys["lab-a"], "lab-a", [attest() for _ in range(5)], T0)
    pushed: list[Items] = []
    rep.on_news = pushed.append
    await rep.ingest(Items(tuple(s.envelope for s in log)))
    assert rep.head("lab-a")[0] == 5
    assert pushed == []


async def test_a_backlog_is_taken_once_however_many_peers_offer_it() -> None:
    sim = Sim(4, seed=8, replica_cls=Replica)
    new = await sim.publish("lab-a", *(attest(note=f"s{i}") for i in range(600)))
    envs = tuple(s.envelope for s in new)
    for m in ("lab-b", "lab-c"):
        await sim.give(m, Items(envs))
    fresh = sim.engines["lab-d"]
    stats = await fresh.run_round()
    held = sim.replicas["lab-d"].head("lab-a")[0]
    assert held > 0
    received = sum(r.statements + r.duplicates for r in stats.reports)
    assert received == held  # nothing fetched twice


async def test_rounds_slow_down_while_in_sync_and_news_still_arrives() -> None:
    net = MemoryNetwork(rng=random.Random(1))
    charter, keys = make_federation(labs=2, overseers=0)
    reps = {m: Replica(charter, lambda: T0, own=m) for m in ("lab-a", "lab-b")}
    cfg = GossipConfig(interval_s=0.01, idle_interval_max_s=0.08, jitter=0.0)
    engines = {}
    for m, rep in reps.items():
        net.register(f"{m}:1", GossipService(rep))
        engines[m] = GossipEngine(
            rep,
            net.transport(f"{m}:1"),
            self_address=f"{m}:1",
            bootstrap=("lab-a:1", "lab-b:1"),
            config=cfg,
        )
    async with anyio.create_task_group() as tg:
        for e in engines.values():
            tg.start_soon(e.run)
        await eventually(lambda: all(e.interval_s == 0.08 for e in engines.values()))
        [st] = log_for(charter, keys["lab-a"], "lab-a", [pause(1)], T0)
        await reps["lab-a"].ingest(Items((st.envelope,)))
        await eventually(lambda: reps["lab-b"].head("lab-a")[0] == 1, what="news arrived")
        assert engines["lab-a"].counters["gossip.pushes"] >= 1
        tg.cancel_scope.cancel()


class _Liar:
    """Answers the root with the given heads, and takes exchanges without sending anything."""

    def __init__(self, heads: tuple[MemberHead, ...]) -> None:
        self.heads = heads
        self.exchanged: list[Digest] = []

    async def get_digest(
        self, summary_hash: bytes, *, timeout: float, level: int = 0, nodes: Any = ()
    ) -> DigestReply:
        return DigestReply(False, Digest(self.heads, partial=True))

    async def exchange(self, digest: Digest, items: Items, *, timeout: float) -> Any:
        self.exchanged.append(digest)
        return ExchangeReply(Items(), more=False)


async def test_a_head_of_a_member_this_charter_lacks_is_ignored_and_a_misshapen_reply_refused() -> (
    None
):
    charter, _ = make_federation(labs=300, overseers=0)
    rep = Replica(charter, lambda: T0)
    stranger = MemberHead("lab-from-a-later-version", 1, bytes(32), 1)
    engine = GossipEngine(rep, None, self_address="me:1")  # type: ignore[arg-type]
    # the root of a 300-member tree expands to children, not heads: a reply of heads is refused
    with pytest.raises(PeerError, match="outside the leaves"):
        await engine._descend(_Liar((stranger,)))
    small, _ = make_federation(labs=4, overseers=0)
    rep4 = Replica(small, lambda: T0)
    engine4 = GossipEngine(rep4, None, self_address="me:1")  # type: ignore[arg-type]
    peer = _Liar((stranger, MemberHead("lab-a", 2, bytes(32), 3)))
    got = await engine4._descend(peer)
    assert isinstance(got, Digest)
    assert [h.member for h in got.heads] == ["lab-a"]


async def test_a_push_does_not_put_a_node_in_touch_and_a_full_exchange_does(tmp_path: Path) -> None:
    """A node signs only once a peer has shown it what it holds of its own member (§12.4): an
    exchange about that member, or a full digest, does; a push, which asks for nothing, does
    not."""
    async with Cluster(tmp_path, labs=3, overseers=0, running=("lab-a",)) as cluster:
        node = cluster["lab-a"]
        await node.exchange(Digest((), partial=True), Items())
        await node.exchange(Digest((MemberHead("lab-b", 0, b"", 0),), partial=True), Items())
        assert not node._in_touch.is_set()
        await node.exchange(Digest((MemberHead("lab-a", 0, b"", 0),), partial=True), Items())
        assert node._in_touch.is_set()
