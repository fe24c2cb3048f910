"""The kill -9 soak: three real node processes killed at random moments, hundreds of times, while
votes are cast; then what was lost or signed twice, and how fast the loop went.

The same loop as tests/test_kill_loop.py (harness: tests/killloop.py) run to many more kills:
each node is restarted and SIGKILLed again and again, mostly 0-300 ms after it said it was
ready, sometimes during start-up, while drivers cast statements through the Admin APIs. Then the
nodes converge and every log is fetched from every node. Prints the figures (kills, statements
acknowledged, seqs signed twice, acknowledged statements lost, kills/s, duration) and exits 1 if
any invariant was broken. Linux (process groups, SIGKILL).

    python bench/kill_soak.py --kills 200
    python bench/kill_soak.py --kills 1000 --seed 7 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

# the harness is shared with the test suite, which keeps its helpers in tests/
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from killloop import Outcome, run_kill_loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=200, help="kills in all (default 200)")
    parser.add_argument(
        "--min-acknowledged",
        type=int,
        default=100,
        help="keep killing until at least this many statements were acknowledged (default 100)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="give up after this many seconds"
    )
    parser.add_argument("--seed", type=int, help="seed for the random kills and calls")
    parser.add_argument("--keep", action="store_true", help="keep the node data and logs")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    if args.kills < 1 or args.min_acknowledged < 0 or args.timeout <= 0:
        parser.error("--kills must be at least 1, --min-acknowledged >= 0, --timeout > 0")

    workdir = Path(tempfile.mkdtemp(prefix="pausenet-kill-soak-"))
    try:
        outcome = asyncio.run(
            run_kill_loop(
                workdir,
                kills=args.kills,
                min_acknowledged=args.min_acknowledged,
                timeout_s=args.timeout,
                seed=args.seed,
            )
        )
    except TimeoutError as exc:
        print(f"error: {exc}; node logs in {workdir / 'fed' / 'logs'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted; node logs in {workdir / 'fed' / 'logs'}", file=sys.stderr)
        return 130
    report(outcome, as_json=args.json)
    broken = outcome.violations
    if broken or args.keep:
        print(f"node data and logs kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if broken:
        for line in broken[:20]:
            print(f"violation: {line}", file=sys.stderr)
        return 1
    return 0


def report(outcome: Outcome, *, as_json: bool) -> None:
    f = outcome.figures
    if as_json:
        print(json.dumps({**f, "violations": len(outcome.violations)}, sort_keys=True))
        return
    print(
        f"kill -9 soak on {platform.node()} (python {platform.python_version()}), seed {f['seed']}"
    )
    print(
        f"  kills                    {f['kills']} ({f['kills_before_ready']} before the ready"
        f" line; {f['lives']} lives)"
    )
    print(
        f"  statements acknowledged  {f['acknowledged']} of {f['calls']} calls"
        f" ({f['refused_by_view']} refused by the view, {f['failed_calls']} cut off by a kill)"
    )
    print(f"  by kind                  {f['acknowledged_by_kind']}")
    print(f"  seqs signed twice        {f['seqs_signed_twice']}")
    print(f"  acknowledged but lost    {f['acknowledged_lost']}")
    print(f"  broken chains            {len(outcome.chains)}")
    print(f"  nodes holding evidence   {len(outcome.evidence)}")
    print(f"  logs differing by node   {len(outcome.differing_logs)}")
    print(f"  log lengths              {f['log_lengths']}; final state {f['final_state']}")
    print(f"  kills/s                  {f['kills_per_s']} over {f['chaos_s']} s of killing")
    print(f"  converged after          {f['converge_s']} s")
    print(f"  duration                 {f['duration_s']} s")


if __name__ == "__main__":
    sys.exit(main())
