"""Rounds and messages until one new statement reaches every node, with the real gossip engine.

N simulated nodes (one per member of an N-member charter) run `GossipEngine` rounds over the
in-memory network. Rounds are synchronous: in round r every node pushes what was news to it in
round r - 1 (to 3 peers) and runs one anti-entropy round (fanout peers, descending the digest
tree where it differs).
Prints, per run: rounds to 100% of nodes, messages and bytes; and the rounds a push-only gossip
model of the same fanout needs for 99.99% (the baseline, computed in the same run).

    python bench/propagation.py --nodes 1000 --fanout 3 --loss 0.1 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import sys
import time

from pausenet.core.charter import parse_charter
from pausenet.core.keys import SigningKey
from pausenet.core.records import Decision, Vote
from pausenet.core.signing import build_statement, sign_statement
from pausenet.node.gossip import GossipConfig, GossipEngine, GossipService
from pausenet.node.messages import Items
from pausenet.testing.memnet import MemoryNetwork, RoundSyncReplica

T0 = 1_700_000_000_000


def _charter(n: int) -> tuple[object, list[str], dict[str, SigningKey]]:
    ids = [f"n{i:04d}" for i in range(n)]
    keys = {m: SigningKey(hashlib.sha256(m.encode()).digest()) for m in ids}
    charter = parse_charter(
        {
            "federation_id": "sim",
            "members": [
                {"id": m, "role": "lab", "public_key": keys[m].public_key.hex()} for m in ids
            ],
            "triggers": [{"id": "rsi-detected", "description": "simulated"}],
            "rules": {"pause_threshold": n // 2 + 1, "lift_threshold": n // 2 + 1},
            "limits": {"max_items_per_message": 100_000},
        }
    )
    return charter, ids, keys


def push_only_rounds(n: int, fanout: int, rng: random.Random, target: float = 0.9999) -> int:
    """Baseline: push-only gossip; each informed node pushes to `fanout` random nodes a round."""
    informed = {0}
    rounds = 0
    while len(informed) < target * n:
        rounds += 1
        new = set()
        for _ in informed:
            new.update(rng.randrange(n) for _ in range(fanout))
        informed |= new
    return rounds


async def one_run(n: int, fanout: int, loss: float, seed: int, max_rounds: int) -> dict[str, float]:
    rng = random.Random(seed)
    charter, ids, keys = _charter(n)
    net = MemoryNetwork(loss=loss, rng=rng)
    round_no = 0
    clock = lambda: T0 + round_no * 1000  # noqa: E731
    addresses = [f"sim:{i}" for i in range(n)]
    replicas, engines = [], []
    cfg = GossipConfig(fanout=fanout, backoff_base_s=1.0, backoff_max_s=4.0)
    for i in range(len(ids)):
        rep = RoundSyncReplica(charter, clock)
        net.register(addresses[i], GossipService(rep))
        eng = GossipEngine(
            rep,
            net.transport(addresses[i]),
            self_address=addresses[i],
            bootstrap=tuple(addresses),
            config=cfg,
            rng=random.Random(rng.random()),
            monotonic=lambda: float(round_no),
        )
        replicas.append(rep)
        engines.append(eng)
    # one new statement at node 0
    st = sign_statement(
        keys[ids[0]],
        build_statement(charter, ids[0], 1, b"", T0, Vote(1, Decision.PAUSE, ("rsi-detected",))),  # type: ignore[arg-type]
    )
    await replicas[0].ingest(Items(statements=(st.envelope,)))
    await replicas[0].flush()
    have = lambda: sum(1 for r in replicas if r.head(ids[0])[0] >= 1)  # noqa: E731
    t = time.perf_counter()
    while have() < n and round_no < max_rounds:
        round_no += 1
        await asyncio.gather(*(e.run_round() for e in engines))
        for r in replicas:
            await r.flush()
    return {
        "rounds": round_no if have() == n else float("inf"),
        "reached": have() / n,
        "messages": net.stats.messages,
        "bytes": net.stats.bytes,
        "lost": net.stats.lost,
        "seconds": time.perf_counter() - t,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--fanout", type=int, default=3)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-rounds", type=int, default=50)
    a = ap.parse_args()
    if a.nodes < 2 or a.fanout < 1 or not 0 <= a.loss < 1 or a.runs < 1:
        print(
            "error: need --nodes >= 2, --fanout >= 1, 0 <= --loss < 1, --runs >= 1", file=sys.stderr
        )
        return 2
    base = [push_only_rounds(a.nodes, a.fanout, random.Random(a.seed + i)) for i in range(20)]
    results = [
        asyncio.run(one_run(a.nodes, a.fanout, a.loss, a.seed + i, a.max_rounds))
        for i in range(a.runs)
    ]
    rounds = [r["rounds"] for r in results]
    print(f"propagation: nodes={a.nodes} fanout={a.fanout} loss={a.loss:.0%} runs={a.runs}")
    for i, r in enumerate(results):
        print(
            f"  run {i + 1}: 100% of nodes in {r['rounds']} rounds; {r['messages']:.0f} messages"
            f" ({r['messages'] / a.nodes:.1f}/node), {r['bytes'] / 1e6:.2f} MB, {r['lost']:.0f} lost,"
            f" {r['seconds']:.1f}s"
        )
    print(
        f"  push-pull (this engine): max {max(rounds)} rounds, median {statistics.median(rounds)}"
    )
    print(
        f"  push-only baseline, 99.99%: median {statistics.median(base)} rounds"
        f" (ratio {max(rounds) / statistics.median(base):.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
