"""Run the benchmark table: every figure next to its baseline from the same run, the ratio, the
goal and whether it is met. See `bench/run --help`; README.md's Benchmarks section shows a run.

Each row starts what it measures in a temporary directory (removed afterwards) and bounds its
time; node processes listen on 127.0.0.1 only. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rows_fleet
import rows_node
from _common import Row, fmt, machine

ROWS = ("getview", "catchup", "issue", "idle", "propagation", "latency")

# size of each row per mode: quick (a smoke run), default (the table), full (adds 30k issue
# rate and the 10-node idle run with a log)
PLANS: dict[str, dict[str, Any]] = {
    "quick": {
        "getview": ([0, 300], 1.5),
        "catchup": 300,
        "issue": [(300, 50)],
        "idle": ([(4, 0)], 4.0),
        "propagation": [200],
        "latency": (4, 8),
    },
    "default": {
        "getview": ([0, 3000, 30000], 5.0),
        "catchup": 3000,
        "issue": [(3000, 250)],
        "idle": ([(4, 0), (10, 0), (4, 3000)], 15.0),
        "propagation": [1000, 3000],
        "latency": (10, 40),
    },
}
PLANS["full"] = {
    **PLANS["default"],
    "issue": [(3000, 250), (30000, 250)],
    "idle": ([(4, 0), (10, 0), (4, 3000), (10, 3000)], 20.0),
}

Job = Callable[[Path], Coroutine[Any, Any, list[Row]]]


def jobs(row: str, plan: dict[str, Any]) -> list[tuple[str, Job]]:
    p = plan[row]
    if row == "getview":
        sizes, secs = p
        return [(f"getview {n}", lambda t, n=n: _one(rows_node.getview(t, n, secs))) for n in sizes]
    if row == "catchup":
        return [(f"catchup {p}", lambda t: _one(rows_node.catchup(t, p, 600.0)))]
    if row == "issue":
        return [(f"issue {n}", lambda t, n=n, k=k: _one(rows_node.issue(t, n, k))) for n, k in p]
    if row == "idle":
        combos, secs = p
        return [
            (f"idle {n} nodes {s} stmts", lambda t, n=n, s=s: rows_fleet.idle(t, n, s, secs))
            for n, s in combos
        ]
    if row == "propagation":
        return [(f"propagation N={n}", lambda t, n=n: _one(rows_fleet.spread(n, 1))) for n in p]
    nodes, votes = p
    return [
        (
            f"latency {nodes} nodes",
            lambda t: _one(asyncio.to_thread(rows_fleet.latency, nodes, votes, 600.0)),
        )
    ]


async def _one(c: Coroutine[Any, Any, Row]) -> list[Row]:
    return [await c]


def table(rows: list[Row]) -> str:
    head = ("figure", "value", "baseline", "ratio", "goal", "met")
    body = [
        (
            r.label,
            fmt(r.value, r.unit),
            f"{fmt(r.baseline, r.unit)} ({r.baseline_label})" if r.baseline is not None else "—",
            f"{fmt(r.ratio)}x" if r.ratio is not None else "—",
            r.goal,
            {True: "yes", False: "NO", None: "—"}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)) for x in [head, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(r: Row) -> str:
    """The detail a row's figure needs to be read: what it costs and why."""
    d = r.detail
    kind = r.key.partition(".")[0]
    if kind == "getview" and d.get("refused"):
        return (
            f"every call refused: the {d['reply_bytes'] / 1e6:.1f} MB reply is over the node's"
            f" 4 MiB gRPC send limit; {d['node_cpu_ms_per_call']:.0f} ms CPU a refused call"
        )
    if kind == "getview":
        return (
            f"{d['reply_bytes'] / 1000:,.1f} KB a reply; CPU {d['node_cpu_ms_per_call']:.2f} ms"
            f" a call (echo {d['echo_cpu_ms_per_call']:.2f})"
        )
    if kind == "catchup":
        return (
            f"{d['seconds']:.2f} s; each statement received {d['received_per_statement']:g}×,"
            f" verified {d['verified_per_statement']:g}×;"
            f" {d['sqlite_round_trips_per_statement']:g} SQLite round trips each"
        )
    if kind == "issue":
        return f"{d['calls']} Admin calls each, one at a time"
    if kind == "idle_cpu":
        return f"max {d['cpu_pct_max']:.2f}% over {d['seconds']:g} s"
    if kind == "rss":
        return f"max {d['rss_mib_max']:.1f} MiB"
    if kind == "idle_bytes":
        return (
            f"{d['in_sync_replies']}/{d['probe_calls']} probe calls in sync; idle window:"
            f" {d['contacts']} contacts ({d['pushes']} pushes), {d['in_sync']} in sync,"
            f" {d['bytes_per_contact_in_window']} B a contact all told"
        )
    if kind == "idle_rate":
        return "all bytes through the relays: pushed heartbeats, anti-entropy, HTTP/2 pings"
    if kind == "spread":
        return f"{d['rounds']:g} rounds (push-only to 99.99%: {d['push_only_rounds_99.99pct']:g})"
    if kind == "latency":
        return f"p99 {d['p99_ms']:.0f} ms over {d['votes']} votes"
    return ""


def markdown(report: dict[str, Any]) -> str:
    """The table as README.md shows it."""
    lines = [
        "| figure | value | baseline (same run) | ratio | goal | met | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in report["rows"]:
        r = Row(**d)
        base = f"{fmt(r.baseline, r.unit)}: {r.baseline_label}" if r.baseline is not None else "—"
        ratio = f"{fmt(r.ratio)}×" if r.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: "—"}[r.met]
        lines.append(
            f"| {r.label} | {fmt(r.value, r.unit)} | {base} | {ratio} | {r.goal} | {met}"
            f" | {notes(r)} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="bench/run", description=__doc__.splitlines()[0] if __doc__ else None
    )
    ap.add_argument(
        "rows", nargs="*", metavar="ROW", help=f"rows to run (default all): {', '.join(ROWS)}"
    )
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_true", help="small sizes, short windows (a smoke run)"
    )
    mode.add_argument(
        "--full", action="store_true", help="also 30k issue rate and 10 nodes idle with a log"
    )
    ap.add_argument("--json", action="store_true", help="print machine-readable JSON")
    ap.add_argument(
        "--render",
        metavar="FILE",
        help="print a saved --json report as a Markdown table; run nothing",
    )
    a = ap.parse_args()
    if a.render:
        try:
            print(markdown(json.loads(Path(a.render).read_text())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            ap.error(f"cannot render {a.render}: {exc} (give a file written by bench/run --json)")
        return 0
    bad = [r for r in a.rows if r not in ROWS]
    if bad:
        ap.error(f"unknown row {', '.join(bad)}; choose from {', '.join(ROWS)}")
    if not Path("/proc/self/stat").exists():
        ap.error("the benchmarks read /proc (Linux only)")

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so every row's clean-up runs: its node processes are stopped

    signal.signal(signal.SIGTERM, on_term)
    try:
        return _run(a)
    except KeyboardInterrupt:
        print("interrupted; the rows run so far are lost", file=sys.stderr)
        return 130


def _run(a: argparse.Namespace) -> int:
    plan = PLANS["quick" if a.quick else "full" if a.full else "default"]
    mach_before = machine()
    results: list[Row] = []
    errors: list[str] = []
    for row in a.rows or ROWS:
        for name, job in jobs(row, plan):
            print(f"== {name} ...", file=sys.stderr, flush=True)
            tmp = Path(tempfile.mkdtemp(prefix="pausenet-bench-"))
            t0 = time.monotonic()
            try:
                got = asyncio.run(job(tmp))
                results.extend(got)
                for r in got:
                    print(
                        f"   {r.label}: {fmt(r.value, r.unit)} vs {fmt(r.baseline, r.unit)}",
                        file=sys.stderr,
                    )
                shutil.rmtree(tmp, ignore_errors=True)
            except Exception as exc:  # one failed row must not lose the others
                errors.append(f"{name}: {type(exc).__name__}: {exc} (files kept in {tmp})")
                print(f"   error: {errors[-1]}", file=sys.stderr)
            print(f"   ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    report = {
        "mode": "quick" if a.quick else "full" if a.full else "default",
        "machine": {"before": mach_before, "after": machine()},
        "rows": [r.to_json() for r in results],
        "errors": errors,
    }
    if a.json:
        print(json.dumps(report, indent=2))
    else:
        m = report["machine"]
        print(f"{m['before']['cpus']} CPUs, Python {m['before']['python']}")
        print(f"load before: {m['before']['uptime']}\nload after:  {m['after']['uptime']}\n")
        print(table(results))
        for e in errors:
            print(f"error: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
