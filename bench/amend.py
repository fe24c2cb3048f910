"""Real node processes on this machine: how long a charter amendment takes to reach every node.

Starts a cluster of N node processes (N-1 labs and one overseer, `python -m pausenet run` each,
as scripts/cluster does) in a temporary directory, then amends its charter K times in a row
(`pausenet.ops.cluster.amend`: the next version written, approved with the members' keys,
proposed at one node). For each it measures the time from the proposal (the Admin Govern call)
until every node's GetCharter names the new version. Each node asks one random peer per gossip
interval (0.25 s) for what it lacks (docs/protocol.md §15.7). Prints one line per amendment and
the median, then stops the cluster (also on Ctrl-C or an error; the logs are kept then).

    python bench/amend.py --nodes 10 --amendments 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from pausenet.ops.cluster.amend import Amendment, amend_cluster
from pausenet.ops.cluster.supervisor import create_cluster


async def run(nodes: int, amendments: int) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix="pausenet-bench-amend-"))
    cluster = create_cluster(tmp / "fed", nodes - 1, 1)
    ok = False
    try:
        for n in cluster.nodes:
            cluster.spawn(n)
        cluster.save()
        await cluster.wait_ready(cluster.nodes, deadline_s=120)
        times = []
        for i in range(amendments):
            # a rule no vote depends on, so each version is a real amendment and nothing else
            r = await amend_cluster(cluster, Amendment(rules={"compliance_grace_s": 86_400 + i}))
            times.append(r.seconds)
            print(
                f"amendment to version {r.new.version}: every node runs it after {r.seconds:.2f} s"
            )
        ok = True
        return times
    finally:
        cluster.stop(cluster.nodes, grace_s=3.0)
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"logs kept in {tmp}/fed/logs", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--amendments", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()
    times = asyncio.run(run(a.nodes, a.amendments))
    med = statistics.median(times)
    if a.json:
        print(json.dumps({"nodes": a.nodes, "seconds": times, "median_s": med}))
    else:
        print(
            f"{a.nodes} nodes: an amendment reaches every node in {med:.2f} s (median of {len(times)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
