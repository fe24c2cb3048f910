"""The `python -m pausenet.ops.cluster` command line (scripts/cluster wraps it): up, status,
down, kill, start, scenario and demo."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pausenet.client import OversightClient
from pausenet.errors import ClusterError, NodeError
from pausenet.ops.cluster.scenario import plural, run_scenario, state_label
from pausenet.ops.cluster.supervisor import (
    CLUSTER_FILE,
    PROG,
    STOP_GRACE_S,
    Cluster,
    ClusterNode,
    create_cluster,
)
from pausenet.ops.cluster.watcher import state_of
from pausenet.v1 import oversight_pb2

__all__ = ["app", "main", "run"]

ViewReply = oversight_pb2.ViewReply

app = typer.Typer(
    name="cluster",
    help="Run a local cluster: one real pausenet node process per member, on this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)

DirOption = Annotated[
    Path, typer.Option("--dir", help="The cluster's directory (holds cluster.json).")
]
LabsOption = Annotated[int, typer.Option("--labs", help="Number of labs (1-100).")]
OverseersOption = Annotated[int, typer.Option("--overseers", help="Number of overseers (0-100).")]
TlsOption = Annotated[
    bool,
    typer.Option(
        "--tls", help="Mutual TLS between the nodes and for clients (a test CA in DIR/tls)."
    ),
]


def _q(p: Path) -> str:
    return shlex.quote(str(p))


def _bring_up(dir: Path, labs: int, overseers: int, force: bool, tls: bool = False) -> Cluster:
    """Create the federation, start every node and wait until all are ready; on failure or
    Ctrl-C, stop the nodes it started."""
    cluster = create_cluster(dir, labs, overseers, force=force, tls=tls)
    n = len(cluster.nodes)
    _out.print(
        Text.assemble(
            ("Created a federation ", "bold"),
            f"of {plural(labs, 'lab')} and {plural(overseers, 'overseer')} in {dir}"
            f" (charter {dir}/charter.toml)",
        )
    )
    _out.print(f"Starting {n} node processes (python -m pausenet run; logs in {dir}/logs/):")
    try:
        for node in cluster.nodes:
            cluster.spawn(node)
        cluster.save()
        table = Table(show_edge=False, box=None, padding=(0, 2, 0, 0))
        for col in ("member", "role", "pid", "gossip + oversight", "admin"):
            table.add_column(col, style="bold" if col == "member" else "")
        for node in cluster.nodes:
            table.add_row(node.member, node.role, str(node.pid), node.address, node.admin_address)
        _out.print(table)
        secs = asyncio.run(cluster.wait_ready(cluster.nodes))
    except BaseException:
        cluster.stop(cluster.nodes, grace_s=3.0)
        cluster.save()
        _err.print(f"Stopped the nodes again; their logs are in {dir}/logs/.")
        raise
    _out.print(
        f"Every node sees all {n} members fresh after {secs:.1f} s. Wrote {dir}/{CLUSTER_FILE}."
    )
    return cluster


@app.command()
def up(
    dir: DirOption,
    labs: LabsOption = 3,
    overseers: OverseersOption = 1,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a stopped cluster in DIR (keys and data too).")
    ] = False,
    tls: TlsOption = False,
) -> None:
    """Create a federation in DIR, start one node per member and wait until all are ready.

    Each node gets free ports on 127.0.0.1; its output goes to DIR/logs/<member>.log. Ready
    means every node sees every member fresh (deadline 30 s). Writes DIR/cluster.json.
    """
    _bring_up(dir, labs, overseers, force, tls)
    d = _q(dir)
    _out.print(f"Next: {PROG} scenario --dir {d}   (or status, kill MEMBER, start MEMBER, down)")


@app.command()
def status(
    dir: DirOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show each node: pid and whether it runs, address, state, epoch, as of, members fresh."""
    cluster = Cluster.load(dir)
    cluster.refresh()
    tls = cluster.tls

    async def views() -> list[ViewReply | str]:
        async def one(n: ClusterNode) -> ViewReply | str:
            if not n.running:
                return "not running"
            try:
                async with OversightClient(n.address, timeout=2.0, tls=tls) as c:
                    r: ViewReply = await c.get_view()
                    return r
            except NodeError:
                return "not answering"

        return list(await asyncio.gather(*(one(n) for n in cluster.nodes)))

    results = asyncio.run(views())
    if as_json:
        rows = []
        for n, r in zip(cluster.nodes, results, strict=True):
            row = n.to_json()
            if isinstance(r, str):
                row["error"] = r
            else:
                row.update(
                    state=state_of(r),
                    epoch=r.epoch,
                    as_of=r.as_of_ms or None,
                    members_fresh=sum(1 for m in r.members if m.fresh),
                    members=len(r.members),
                )
            rows.append(row)
        sys.stdout.write(json.dumps({"dir": str(dir), "nodes": rows}, indent=2) + "\n")
        return
    table = Table(show_edge=False, box=None, padding=(0, 1, 0, 0))
    for col in ("member", "pid", "alive", "address", "state", "epoch", "as of (UTC)", "fresh"):
        table.add_column(col, style="bold" if col == "member" else "", no_wrap=True)
    for n, r in zip(cluster.nodes, results, strict=True):
        alive = Text("yes", style="green") if n.running else Text("no", style="red")
        pid = str(n.pid) if n.pid else "-"
        if isinstance(r, str):
            table.add_row(n.member, pid, alive, n.address, Text(r, style="dim"))
            continue
        fresh = sum(1 for m in r.members if m.fresh)
        table.add_row(
            n.member,
            pid,
            alive,
            n.address,
            state_label(r),
            str(r.epoch),
            _as_of(r),
            f"{fresh}/{len(r.members)}",
        )
    _out.print(table)


def _as_of(r: ViewReply) -> str:
    if not r.as_of_ms:
        return "-"
    return datetime.fromtimestamp(r.as_of_ms / 1000, UTC).strftime("%H:%M:%S.") + (
        f"{r.as_of_ms % 1000:03d}"
    )


@app.command()
def down(dir: DirOption) -> None:
    """Stop every node: SIGTERM, then SIGKILL after 10 s. Keeps the federation, data and logs."""
    cluster = Cluster.load(dir)
    live = cluster.running()
    killed = cluster.stop(cluster.nodes)
    cluster.save()
    if not live:
        _out.print(f"No node of the cluster in {dir} was running.")
        return
    extra = f" ({', '.join(killed)} needed SIGKILL after {STOP_GRACE_S:g} s)" if killed else ""
    _out.print(
        f"Stopped {len(live)} node(s){extra}. The federation, node data and logs stay in {dir};"
        f" {PROG} start --dir {_q(dir)} starts the nodes again."
    )


@app.command()
def kill(
    member: Annotated[str, typer.Argument(help="The member whose node to kill.")],
    dir: DirOption,
) -> None:
    """Kill one node with SIGKILL, as a crash would."""
    cluster = Cluster.load(dir)
    n = cluster.node(member)
    if not cluster.is_running(n):
        raise ClusterError(f"{member}'s node is not running")
    pid = n.pid
    cluster.kill(n)
    cluster.save()
    _out.print(
        f"Killed {member} (pid {pid}) with SIGKILL. Restart it on its own data:"
        f" {PROG} start {member} --dir {_q(dir)}"
    )


@app.command()
def start(
    dir: DirOption,
    members: Annotated[
        list[str] | None,
        typer.Argument(help="Members whose nodes to start (default: every stopped node)."),
    ] = None,
) -> None:
    """Start stopped nodes on their own config and data, and wait until each is ready.

    Ready means the node sees every member whose node runs fresh and holds their logs up to
    their heads (it has caught up).
    """
    cluster = Cluster.load(dir)
    cluster.refresh()
    if members:
        nodes = [cluster.node(m) for m in members]
        for n in nodes:
            if n.running:
                raise ClusterError(f"{n.member}'s node is already running (pid {n.pid})")
    else:
        nodes = [n for n in cluster.nodes if not n.running]
        if not nodes:
            raise ClusterError(f"every node of the cluster in {dir} is already running")
    for n in nodes:
        cluster.spawn(n)
    cluster.save()
    names = ", ".join(f"{n.member} (pid {n.pid})" for n in nodes)
    _out.print(f"Started {names}; waiting until ready...")
    try:
        secs = asyncio.run(
            cluster.wait_ready(
                nodes,
                on_ready=lambda n, t: _out.print(f"  {n.member} ready and caught up ({t:.1f} s)"),
            )
        )
    except BaseException:  # not ready in time, or Ctrl-C: leave nothing running behind
        cluster.stop(nodes, grace_s=3)
        cluster.save()
        raise
    _out.print(f"Ready after {secs:.1f} s.")


@app.command()
def scenario(dir: DirOption) -> None:
    """Drive a whole pause on a running cluster and show each node's view as it converges.

    lab-a attests trigger rsi-detected; a majority of labs vote PAUSE, each at its own node;
    every node says PAUSED; every lab attests compliance HALTED; labs (and an overseer) vote
    LIFT; every node says NOT_PAUSED. Each wait has a deadline.
    """
    cluster = Cluster.load(dir)
    asyncio.run(run_scenario(cluster, _out))
    _out.print()
    _check_hint(cluster, _out)


@app.command()
def amend(
    dir: DirOption,
    add_lab: Annotated[
        list[str] | None, typer.Option("--add-lab", help="A lab to add (repeatable).")
    ] = None,
    add_overseer: Annotated[
        list[str] | None, typer.Option("--add-overseer", help="An overseer to add (repeatable).")
    ] = None,
    rekey: Annotated[
        list[str] | None,
        typer.Option("--rekey", help="A member whose key to replace (repeatable)."),
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="A member to remove (repeatable).")
    ] = None,
    set_rule: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="A rule to change, RULE=N, e.g. pause_threshold=3 (repeatable)."
        ),
    ] = None,
) -> None:
    """Amend the charter of the running cluster and wait until every node runs the new version.

    Writes DIR/charters/v<N>.toml, signs the approvals it needs with the members' keys the
    cluster holds (DIR/charters/v<N>-approvals/), proposes it at one node and waits for every
    node to adopt it; starts added members' nodes and restarts re-keyed ones on their new keys.
    """
    from pausenet.ops.cluster.amend import Amendment, amend_cluster

    rules: dict[str, int] = {}
    for item in set_rule or []:
        name, _, value = item.partition("=")
        if not name or not value.strip().isdigit():
            raise ClusterError(f"--set {item!r}: give RULE=N, e.g. pause_threshold=3")
        rules[name.strip()] = int(value)
    a = Amendment(
        tuple(add_lab or ()),
        tuple(add_overseer or ()),
        tuple(rekey or ()),
        tuple(remove or ()),
        rules,
    )
    if not (a.add_labs or a.add_overseers or a.rekey or a.remove or rules):
        raise ClusterError("nothing to amend: give --add-lab, --rekey, --remove or --set")
    cluster = Cluster.load(dir)
    result = asyncio.run(amend_cluster(cluster, a, lambda line: _out.print(Text(line))))
    _out.print(
        Text.assemble(
            ("Version ", "bold"),
            (f"{result.new.version} in force on every node", "bold green"),
            f" ({result.seconds:.1f} s after the proposal). What changed:",
        )
    )
    from pausenet.ops.charters import describe_changes

    for line in describe_changes(result.old, result.new):
        _out.print(Text(f"  {line}"))


@app.command()
def demo(
    dir: Annotated[
        Path,
        typer.Option("--dir", help="Directory for the demo cluster (replaced if it holds one)."),
    ] = Path("demo-federation"),
    labs: LabsOption = 3,
    overseers: OverseersOption = 1,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the cluster running afterwards.")
    ] = False,
    tls: TlsOption = False,
) -> None:
    """Start a local federation of real nodes, run the scenario on it, then stop it.

    A cluster left in DIR by an earlier demo is stopped and replaced.
    """
    force = False
    if dir.is_dir() and any(dir.iterdir()) and not (dir / CLUSTER_FILE).exists():
        raise ClusterError(f"{dir} is not empty and holds no cluster; choose another --dir")
    if (dir / CLUSTER_FILE).exists():
        old = Cluster.load(dir)
        if old.running():
            _out.print(f"Stopping the cluster still running in {dir} from an earlier demo.")
            old.stop(old.nodes)
            old.save()
        force = True
    cluster = _bring_up(dir, labs, overseers, force, tls)
    d = _q(dir)
    ok = False
    try:
        _out.print()
        asyncio.run(run_scenario(cluster, _out))
        _out.print()
        from pausenet.ops.cluster.amend import governance_act

        asyncio.run(governance_act(cluster, lambda line: _out.print(Text(line))))
        ok = True
    finally:
        _out.print()
        if keep:
            _out.print(
                Text.assemble(
                    ("The cluster is still running. ", "bold"),
                    f"Look at it: {PROG} status --dir {d}; stop it: {PROG} down --dir {d}",
                ),
                soft_wrap=True,
            )
            if ok:
                _check_hint(cluster, _out)
        else:
            cluster.stop(cluster.nodes)
            cluster.save()
            _out.print(
                f"Stopped the {len(cluster.nodes)} nodes (their logs are in {dir}/logs/)."
                " Run with --keep to leave them running and query them yourself."
            )
    _out.print(
        Text(
            "The same story told offline, one signed statement at a time:"
            f" {_pausenet_command()} demo",
            style="dim",
        )
    )


def _check_hint(cluster: Cluster, console: Console) -> None:
    node = cluster.nodes[0]
    charter = shlex.quote(str(_display(cluster.charter_path)))
    exe = _pausenet_command()
    d = cluster.tls_dir
    if d is not None:
        q = shlex.quote(str(_display(d)))
        exe += (
            f" --tls-ca {q}/ca.crt --tls-cert {q}/{node.member}.crt --tls-key {q}/{node.member}.key"
        )
    console.print("Ask a node for a signed answer and check it offline, without trusting it:")
    console.print(f"  {exe} view --node {node.address} --out bundle.json", soft_wrap=True)
    console.print(f"  {exe} verify --charter {charter} bundle.json", soft_wrap=True)


def _pausenet_command() -> str:
    """'pausenet' when that is on PATH and is this installation's; else its path (.venv/bin/…)."""
    mine = Path(sys.executable).parent / "pausenet"
    found = shutil.which("pausenet")
    if found and Path(found).resolve() == mine.resolve():
        return "pausenet"
    if mine.exists():
        return shlex.quote(str(_display(mine)))
    return "python -m pausenet"


def _display(p: Path) -> Path:
    """p relative to the working directory when it is under it (shorter hints)."""
    try:
        return p.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return p


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (main() exits with it)."""
    from pausenet.ops.cli import run_app

    return run_app(app, argv, PROG)


def main() -> None:
    sys.exit(run())
