"""Real node processes on this machine: how fast a vote reaches every node, and what a node costs.

Starts a cluster of N node processes — N-1 labs and one overseer, each `python -m pausenet run`
with its own store and ports — in a temporary directory (`pausenet.ops.cluster`, as scripts/cluster
does). Then casts K votes one after another, each at a random member's own node through its
Admin API: PAUSE votes until a pause is in effect, LIFT votes (labs and the overseer) until it is
lifted, then the next epoch. For each vote it measures the time from the Admin call returning
until every node's view shows the voter's new log head (WatchView streams on every node).
Finally it leaves the cluster idle and reads each node's resident memory (VmRSS) and its CPU
time (utime + stime from /proc/<pid>/stat) over the idle window. The cluster is stopped at the
end, also on Ctrl-C or an error (the logs are kept then). Linux only (/proc).

    python bench/cluster.py --nodes 10 --votes 100 --idle 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from pausenet.client import AdminClient, read_admin_token
from pausenet.core.charter import Role
from pausenet.core.records import Decision
from pausenet.errors import PausenetError
from pausenet.ops.cluster import Cluster, Watcher, create_cluster

TRIGGER = "rsi-detected"


@dataclass(frozen=True)
class Sample:
    voter: str
    decision: Decision
    epoch: int
    call_ms: float  # the Admin call: sign, store durably, heartbeat
    all_ms: float  # call returned -> the last node's view shows it


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def cast_votes(cluster: Cluster, k: int, rng: random.Random) -> list[Sample]:
    charter = cluster.charter()
    rules = charter.rules
    role = {m.id: m.role for m in charter.members}
    admins = {
        n.member: AdminClient(n.admin_address, read_admin_token(n.admin_token))
        for n in cluster.nodes
    }
    samples: list[Sample] = []
    epoch, decision = 1, Decision.PAUSE
    voted: set[str] = set()
    try:
        async with Watcher(cluster.nodes) as w:
            while len(samples) < k:
                if decision is Decision.PAUSE:
                    candidates = [m for m, r in role.items() if r is Role.LAB and m not in voted]
                else:
                    labs = sum(1 for m in voted if role[m] is Role.LAB)
                    ovs = len(voted) - labs
                    candidates = [
                        m
                        for m, r in role.items()
                        if m not in voted
                        and (
                            (r is Role.LAB and labs < rules.lift_threshold)
                            or (r is Role.OVERSEER and ovs < rules.lift_overseer_threshold)
                        )
                    ]
                voter = rng.choice(sorted(candidates))
                triggers = (TRIGGER,) if decision is Decision.PAUSE else ()
                t_call = time.perf_counter()
                reply = await admins[voter].cast_vote(decision, epoch=epoch, triggers=triggers)
                t0 = time.perf_counter()
                seq = int(reply.seq)
                await w.until(
                    lambda r, v=voter, s=seq: any(m.id == v and m.head_seq >= s for m in r.members),
                    what=f"showed {voter}#{seq}",
                )
                last = max(w.seen_at(n.member, voter, seq) or t0 for n in cluster.nodes)
                samples.append(
                    Sample(voter, decision, epoch, (t0 - t_call) * 1000, max(0.0, last - t0) * 1000)
                )
                voted.add(voter)
                labs = sum(1 for m in voted if role[m] is Role.LAB)
                ovs = len(voted) - labs
                if decision is Decision.PAUSE and labs >= rules.pause_threshold:
                    decision, voted = Decision.LIFT, set()
                elif (
                    decision is Decision.LIFT
                    and labs >= rules.lift_threshold
                    and ovs >= rules.lift_overseer_threshold
                ):
                    epoch, decision, voted = epoch + 1, Decision.PAUSE, set()
                # start the next vote at a random point of the nodes' gossip rounds
                await asyncio.sleep(rng.uniform(0.0, 0.25))
    finally:
        for a in admins.values():
            await a.channel.close()
    return samples


def idle_usage(cluster: Cluster, idle_s: float) -> dict[str, tuple[int, float]]:
    """member -> (RSS KiB, CPU % of one core over idle_s)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = {n.member: n.pid for n in cluster.nodes if n.pid is not None}
    t0 = time.monotonic()
    before = {m: cpu_ticks(p) for m, p in pids.items()}
    time.sleep(idle_s)
    elapsed = time.monotonic() - t0
    after = {m: cpu_ticks(p) for m, p in pids.items()}
    return {m: (rss_kib(p), (after[m] - before[m]) / tick / elapsed * 100) for m, p in pids.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=10, help="node processes: N-1 labs + 1 overseer")
    ap.add_argument("--votes", type=int, default=100, help="votes to cast and time")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of the idle window")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.nodes < 2 or args.votes < 1 or args.idle <= 0:
        ap.error("need --nodes >= 2, --votes >= 1 and --idle > 0")
    if not Path("/proc/self/stat").exists():
        ap.error("this benchmark reads /proc (Linux)")

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="pausenet-bench-"))
    cluster: Cluster | None = None
    ok = False
    say = (lambda *a: None) if args.json else print
    try:
        cluster = create_cluster(tmp / "cluster", args.nodes - 1, 1)
        say(
            f"{args.nodes} node processes ({args.nodes - 1} labs, 1 overseer) on"
            f" {platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        for n in cluster.nodes:
            cluster.spawn(n)
        up_s = asyncio.run(cluster.wait_ready(cluster.nodes))
        say(f"up: every node sees every member fresh after {up_s:.1f} s")
        say(f"casting {args.votes} votes, one at a time...")
        samples = asyncio.run(cast_votes(cluster, args.votes, rng))
        time.sleep(2.0)  # let the last exchanges and view watchers settle
        say(f"idle for {args.idle:g} s...")
        usage = idle_usage(cluster, args.idle)
        ok = True
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except PausenetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if cluster is not None:
            cluster.stop(cluster.nodes, grace_s=5.0)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"the cluster's files and logs are kept in {tmp}", file=sys.stderr)

    lat = [s.all_ms for s in samples]
    calls = [s.call_ms for s in samples]
    report: dict[str, Any] = {
        "nodes": args.nodes,
        "labs": args.nodes - 1,
        "overseers": 1,
        "votes": len(samples),
        "epochs": max(s.epoch for s in samples),
        "up_s": round(up_s, 2),
        "vote_to_all_ms": {
            "median": round(statistics.median(lat), 1),
            "p99": round(percentile(lat, 99), 1),
            "min": round(min(lat), 1),
            "max": round(max(lat), 1),
            "mean": round(statistics.fmean(lat), 1),
        },
        "admin_call_ms": {
            "median": round(statistics.median(calls), 1),
            "p99": round(percentile(calls, 99), 1),
        },
        "idle_s": args.idle,
        "per_node": {
            m: {"rss_mib": round(rss / 1024, 1), "idle_cpu_pct": round(cpu, 2)}
            for m, (rss, cpu) in usage.items()
        },
        "total": {
            "rss_mib": round(sum(r for r, _ in usage.values()) / 1024, 1),
            "idle_cpu_pct": round(sum(c for _, c in usage.values()), 2),
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    v = report["vote_to_all_ms"]
    print()
    print(
        f"{len(samples)} votes over {report['epochs']} epoch(s); from the Admin call returning"
        " to every node's view showing the vote:"
    )
    print(
        f"  median {v['median']:.0f} ms   p99 {v['p99']:.0f} ms   min {v['min']:.0f} ms"
        f"   max {v['max']:.0f} ms   mean {v['mean']:.0f} ms"
    )
    a = report["admin_call_ms"]
    print(
        f"  the Admin call itself (sign, store, heartbeat): median {a['median']:.1f} ms,"
        f" p99 {a['p99']:.1f} ms"
    )
    print()
    print(f"each node over {args.idle:g} s idle:")
    width = max(len(m) for m in usage)
    print(f"  {'member':<{width}}  {'RSS MiB':>8}  {'CPU %':>6}")
    for m, d in report["per_node"].items():
        print(f"  {m:<{width}}  {d['rss_mib']:>8.1f}  {d['idle_cpu_pct']:>6.2f}")
    t = report["total"]
    print(f"  {'total':<{width}}  {t['rss_mib']:>8.1f}  {t['idle_cpu_pct']:>6.2f}")
    print("  (CPU % is of one core; the sum is what the whole cluster costs this machine idle)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
