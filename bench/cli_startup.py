"""How long the `pausenet` command takes to start: offline commands should feel instant.

Runs each command N times as a new process and prints the median wall time in ms, its ratio
to `python -c pass` (the interpreter's own start-up), the fastest run, and the median CPU time
(user + system) of the process: on a busy machine the wall time grows with the wait for a CPU,
the CPU time and the fastest run much less; on a quiet one all are close. Two floor rows show what the libraries
under the command line cost on their own: a one-command typer app, and the same app importing
rich.console too. The offline commands work on a small federation and the offline demo's
bundle, made in a temporary directory first.

Byte-code is written and used (PYTHONDONTWRITEBYTECODE is removed from the children's
environment, and each command runs once before it is timed), as on an installed system.

    python bench/cli_startup.py --runs 20
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from pausenet.ops.demo import run_demo

_TYPER_FLOOR = """
import sys
from pathlib import Path
from typing import Annotated
import typer
{extra}
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
@app.command()
def keygen(out: Annotated[Path, typer.Option("--out")]) -> None:
    sys.stdout.write(str(out) + "\\n")
@app.command()
def other() -> None:
    pass
app(args=sys.argv[1:], prog_name="floor")
"""


def _pausenet() -> list[str]:
    script = Path(sys.executable).with_name("pausenet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pausenet"]


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def time_runs(cmd: list[str], runs: int, env: dict[str, str]) -> tuple[float, float, float]:
    """Median wall time, fastest wall time and median CPU time in ms of `runs` runs (after one
    untimed run); exits on a command that fails."""
    wall: list[float] = []
    cpu: list[float] = []
    for i in range(runs + 1):
        c0, t0 = _children_cpu_s(), time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, env=env, check=False)
        t1, c1 = time.perf_counter(), _children_cpu_s()
        if p.returncode != 0:
            sys.exit(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode()[-500:]}")
        if i:
            wall.append((t1 - t0) * 1000)
            cpu.append((c1 - c0) * 1000)
    return statistics.median(wall), min(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="timed runs per command (default 20)")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="pausenet-startup-") as tmp:
        d = Path(tmp)
        demo = run_demo(d / "fed", console=Console(file=io.StringIO()))
        floors = []
        for name, extra in (("typer", ""), ("typer+rich", "import rich.console")):
            f = d / f"floor_{name.replace('+', '_')}.py"
            f.write_text(_TYPER_FLOOR.format(extra=extra))
            floors.append((f"floor: {name} app, one command", [py, str(f), "keygen", "--out", "x"]))
        pn = _pausenet()
        rows = [
            ("python -c pass", [py, "-c", "pass"]),
            *floors,
            ('python -c "import pausenet.ops.cli"', [py, "-c", "import pausenet.ops.cli"]),
            ("pausenet --help", [*pn, "--help"]),
            ("pausenet keygen --out K --force", [*pn, "keygen", "--out", str(d / "k"), "--force"]),
            ("pausenet charter show CHARTER", [*pn, "charter", "show", str(demo.charter_path)]),
            (
                "pausenet verify --charter CHARTER BUNDLE",
                [*pn, "verify", "--charter", str(demo.charter_path), str(demo.bundle_path)],
            ),
        ]
        base = 0.0
        print(
            f"median of {args.runs} runs each; Python {sys.version.split()[0]}, {os.cpu_count()}"
            f" CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        print(f"{'command':<44} {'wall ms':>8} {'x pass':>7} {'fastest':>8} {'CPU ms':>7}")
        for label, cmd in rows:
            ms, fastest, cpu_ms = time_runs(cmd, args.runs, env)
            base = base or ms
            print(
                f"{label:<44} {ms:8.0f} {ms / base:7.1f} {fastest:8.0f} {cpu_ms:7.0f}", flush=True
            )


if __name__ == "__main__":
    main()
