"""Rows about a federation's costs: idle CPU/RSS/bytes, propagation bytes, vote latency.

idle: N real node processes (0.25 s rounds, 3 peers, as `pausenet run` does on one machine)
whose gossip all crosses byte-counting relays, vs a ring of N bare grpc.aio processes making
the same calls (`_peer.py ring`). propagation: the in-memory simulation of bench/propagation.py.
latency: bench/cluster.py, run as it is.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import propagation
from _common import (
    BENCH,
    Relays,
    Row,
    cpu_s,
    helper_procs,
    make_cluster,
    ports,
    preload,
    ready,
    rss_mib,
    running,
    sign_log,
    wait_port,
)

from pausenet.client import AdminClient, read_admin_token
from pausenet.core.keys import load_signing_key
from pausenet.core.records import Decision, Vote
from pausenet.core.signing import build_statement, sign_statement
from pausenet.node.config import load_config
from pausenet.node.messages import DigestTree
from pausenet.node.replica import envelope_size
from pausenet.node.rpc import GrpcTransport
from pausenet.ops.cluster import Cluster

SETTLE_S = 3.0
FANOUT, INTERVAL_S = 3, 0.25
# what an in-sync round sends: GetDigest with a 32-byte summary hash; the answer "in sync"
DIGEST_REQUEST_BYTES, IN_SYNC_REPLY_BYTES = 34, 2


async def _window(pids: list[int], relays: Relays, seconds: float) -> dict[str, Any]:
    c0 = {p: cpu_s(p) for p in pids}
    b0 = relays.bytes
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(seconds)
    dt = loop.time() - t0
    cpu = [(cpu_s(p) - c0[p]) / dt * 100 for p in pids]
    rss = [rss_mib(p) for p in pids]
    return {
        "cpu_pct_mean": statistics.fmean(cpu),
        "cpu_pct_max": max(cpu),
        "rss_mib_mean": statistics.fmean(rss),
        "rss_mib_max": max(rss),
        "bytes": relays.bytes - b0,
        "seconds": dt,
    }


async def _gossip_counts(cluster: Cluster) -> dict[str, int]:
    total: dict[str, int] = {}
    for n in cluster.nodes:
        async with AdminClient(n.admin_address, read_admin_token(n.admin_token)) as a:
            r = await a.get_stats()
        for k, v in r.counters.items():
            if k.startswith("gossip."):
                total[k] = total.get(k, 0) + int(v)
    return total


PROBE_CALLS = 80  # within the per-member GetDigest burst (100) of node.py's rate limits


async def _probe_in_sync(
    cluster: Cluster, relays: Relays, targets: dict[int, int], background_b_s: float
) -> dict[str, Any]:
    """Wire bytes of one in-sync contact, measured: a second member's gossip client (session
    set up first) sends the target node its own summary hash PROBE_CALLS times through the
    target's relay; the relays' background rate (the idle window's) is taken off."""
    target, client = cluster.nodes[0], cluster.nodes[1]
    port = int(target.address.rpartition(":")[2])
    relay = next(r for r, t in targets.items() if t == port)
    charter = cluster.charter()
    key = load_signing_key(load_config(client.config).key_path)
    transport = GrpcTransport(charter, key, client.member, lambda: time.time_ns() // 1_000_000)
    peer = transport.peer(f"127.0.0.1:{relay}")
    tree = DigestTree(m.id for m in charter.members)

    async def root() -> bytes:
        reply = await peer.get_digest(bytes(32), timeout=5.0)  # not in sync: all heads (d = 0)
        assert reply.digest is not None
        for h in reply.digest.heads:
            tree.set(h.member, h.entry())
        return tree.root()

    try:
        summary = await root()  # also logs in
        in_sync = 0
        b0, t0 = relays.bytes, time.perf_counter()
        for _ in range(PROBE_CALLS):
            if (await peer.get_digest(summary, timeout=5.0)).in_sync:
                in_sync += 1
            else:
                summary = await root()  # a heartbeat arrived meanwhile
        dt = time.perf_counter() - t0
        probe = relays.bytes - b0 - background_b_s * dt
    finally:
        await transport.close()
    return {"bytes_per_in_sync_call": max(0.0, probe) / PROBE_CALLS, "in_sync_replies": in_sync}


async def _nodes_idle(tmp: Path, nodes: int, statements: int, seconds: float) -> dict[str, Any]:
    cluster, targets = make_cluster(tmp, nodes, relayed=True)
    log = sign_log(cluster, statements, [n.member for n in cluster.nodes])
    await preload(cluster, cluster.nodes, log)
    async with Relays(targets) as relays:
        with running(cluster, cluster.nodes):
            await ready(cluster, cluster.nodes, statements)
            await asyncio.sleep(SETTLE_S)
            g0 = await _gossip_counts(cluster)
            pids = [n.pid for n in cluster.nodes if n.pid is not None]
            w = await _window(pids, relays, seconds)
            g1 = await _gossip_counts(cluster)
            w.update(await _probe_in_sync(cluster, relays, targets, w["bytes"] / w["seconds"]))
    d = {k: g1.get(k, 0) - g0.get(k, 0) for k in g1}
    w["contacts"] = d.get("gossip.contacted", 0)
    w["in_sync"] = d.get("gossip.in_sync", 0)
    w["exchanges"] = d.get("gossip.exchanges", 0)
    w["pushes"] = d.get("gossip.pushes", 0)
    w["bytes_per_contact"] = w["bytes"] / max(1, w["contacts"])
    w["bytes_per_node_s"] = w["bytes"] / nodes / w["seconds"]
    return w


async def _ring_idle(nodes: int, seconds: float) -> dict[str, Any]:
    own = ports(2 * nodes)
    serve, relay = own[:nodes], own[nodes:]
    argvs = [
        [
            "ring",
            "--port",
            str(serve[i]),
            "--peers",
            ",".join(f"127.0.0.1:{relay[j]}" for j in range(nodes) if j != i),
            "--interval",
            str(INTERVAL_S),
            "--fanout",
            str(FANOUT),
            "--req",
            str(DIGEST_REQUEST_BYTES),
            "--reply",
            str(IN_SYNC_REPLY_BYTES),
        ]
        for i in range(nodes)
    ]
    async with Relays(dict(zip(relay, serve, strict=True))) as relays:
        with helper_procs(argvs) as procs:
            for p in serve:
                await wait_port(p)
            await asyncio.sleep(SETTLE_S)
            w = await _window([p.pid for p in procs], relays, seconds)
    calls = w["seconds"] / INTERVAL_S * FANOUT * nodes
    w["bytes_per_contact"] = w["bytes"] / calls
    w["bytes_per_node_s"] = w["bytes"] / nodes / w["seconds"]
    return w


async def idle(tmp: Path, nodes: int, statements: int, seconds: float) -> list[Row]:
    """Idle CPU % and RSS per node, and wire bytes per contact, vs a bare-gRPC ring."""
    node = await _nodes_idle(tmp, nodes, statements, seconds)
    ring = await _ring_idle(nodes, seconds)
    tag = f"{nodes} nodes" + (f", {statements:,}-statement log" if statements else "")
    key = f"{nodes}.{statements}"
    common = {"nodes": nodes, "statements": statements, "seconds": round(node["seconds"], 1)}
    cpu_ratio = node["cpu_pct_mean"] / max(ring["cpu_pct_mean"], 1e-9)
    rows = [
        Row(
            key=f"idle_cpu.{key}",
            label=f"idle CPU per node, {tag}",
            value=round(node["cpu_pct_mean"], 2),
            unit="% of a core",
            baseline=round(ring["cpu_pct_mean"], 2),
            baseline_label="bare grpc.aio ring, same calls",
            ratio=round(cpu_ratio, 2),
            goal="<= 1%",
            met=node["cpu_pct_mean"] <= 1.0,
            detail={**common, "cpu_pct_max": round(node["cpu_pct_max"], 2)},
        ),
        Row(
            key=f"rss.{key}",
            label=f"RSS per node, {tag}",
            value=round(node["rss_mib_mean"], 1),
            unit="MiB",
            baseline=round(ring["rss_mib_mean"], 1),
            baseline_label="bare grpc.aio ring process",
            ratio=round(node["rss_mib_mean"] / ring["rss_mib_mean"], 2),
            goal="<= 70 MiB",
            met=node["rss_mib_max"] <= 70,
            detail={**common, "rss_mib_max": round(node["rss_mib_max"], 1)},
        ),
    ]
    if statements == 0:
        rows.append(
            Row(
                key=f"idle_bytes.{key}",
                label=f"wire bytes per in-sync gossip exchange, {tag}",
                value=round(node["bytes_per_in_sync_call"]),
                unit="B",
                baseline=round(ring["bytes_per_contact"]),
                baseline_label="bare grpc.aio ring call (34 B request, 2 B reply)",
                ratio=round(node["bytes_per_in_sync_call"] / ring["bytes_per_contact"], 2),
                goal="<= 256 B",
                met=node["bytes_per_in_sync_call"] <= 256,
                detail={
                    **common,
                    "probe_calls": PROBE_CALLS,
                    "in_sync_replies": node["in_sync_replies"],
                    "contacts": node["contacts"],
                    "in_sync": node["in_sync"],
                    "exchanges": node["exchanges"],
                    "pushes": node["pushes"],
                    "bytes_per_contact_in_window": round(node["bytes_per_contact"]),
                    "note": "measured: GetDigest calls with the node's own summary hash through"
                    " its relay, session already set up, less the relays' background rate;"
                    " bytes_per_contact_in_window is every relay byte of the idle window over"
                    " every contact (pushes included), where pings and heartbeats weigh on"
                    " 5-10x fewer contacts than before",
                },
            )
        )
        rows.append(
            Row(
                key=f"idle_rate.{key}",
                label=f"wire bytes per node per second when idle, {tag}",
                value=round(node["bytes_per_node_s"]),
                unit="B/s",
                baseline=round(ring["bytes_per_node_s"]),
                baseline_label="bare grpc.aio ring (3 calls every 0.25 s)",
                ratio=round(node["bytes_per_node_s"] / ring["bytes_per_node_s"], 2),
                goal="—",
                met=None,
                detail={**common, "note": "everything: pushed heartbeats, anti-entropy, pings"},
            )
        )
    return rows


def _statement_bytes(n: int) -> int:
    charter, ids, keys = propagation._charter(n)
    body = Vote(1, Decision.PAUSE, ("rsi-detected",))
    st = sign_statement(
        keys[ids[0]],
        build_statement(charter, ids[0], 1, b"", propagation.T0, body),  # type: ignore[arg-type]
    )
    return envelope_size(st.envelope)


async def spread(n: int, seed: int) -> Row:
    """Bytes per node for one statement to reach all n simulated nodes, vs ideal push."""
    r = await propagation.one_run(n, FANOUT, 0.0, seed, 50)
    base_rounds = statistics.median(
        propagation.push_only_rounds(n, FANOUT, random.Random(seed + i)) for i in range(20)
    )
    per_node = r["bytes"] / n
    ideal = _statement_bytes(n) * FANOUT  # each node forwards the statement to fanout peers once
    return Row(
        key=f"spread.{n}",
        label=f"bytes per node for one statement to reach all of N={n:,} (simulated)",
        value=round(per_node),
        unit="B",
        baseline=ideal,
        baseline_label=f"ideal push: the statement to {FANOUT} peers once",
        ratio=round(per_node / ideal, 1),
        goal="<= 20 KB per node, rounds <= 6",
        met=per_node <= 20_000 and r["rounds"] <= 6,
        detail={
            "rounds": r["rounds"],
            "push_only_rounds_99.99pct": base_rounds,
            "messages_per_node": round(r["messages"] / n, 1),
            "sim_seconds": round(r["seconds"], 1),
        },
    )


def latency(nodes: int, votes: int, timeout: float) -> Row:
    """Vote -> every node median at `nodes` real processes (bench/cluster.py as it is)."""
    argv = ["--nodes", str(nodes), "--votes", str(votes), "--idle", "1", "--json"]
    out = subprocess.run(
        [sys.executable, str(BENCH / "cluster.py"), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    )
    rep = json.loads(out.stdout)
    v = rep["vote_to_all_ms"]
    return Row(
        key=f"latency.{nodes}",
        label=f"vote -> every node, median, {nodes} nodes",
        value=v["median"],
        unit="ms",
        baseline=INTERVAL_S * 1000,
        baseline_label="one gossip round interval",
        ratio=round(v["median"] / (INTERVAL_S * 1000), 2),
        goal="<= 300 ms",
        met=v["median"] <= 300,
        detail={"votes": rep["votes"], "p99_ms": v["p99"], "admin_call_ms": rep["admin_call_ms"]},
    )
