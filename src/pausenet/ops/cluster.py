"""A local cluster: one real node process per member of a federation, on this machine.

    python -m pausenet.ops.cluster up --labs 3 --overseers 1 --dir D    (scripts/cluster wraps this)
    python -m pausenet.ops.cluster status --dir D
    python -m pausenet.ops.cluster scenario --dir D     # drive a whole pause and lift, watch it spread
    python -m pausenet.ops.cluster kill lab-b --dir D   # SIGKILL one node
    python -m pausenet.ops.cluster start lab-b --dir D  # restart it on its own data, wait until ready
    python -m pausenet.ops.cluster down --dir D
    python -m pausenet.ops.cluster demo                  # up + scenario (+ down unless --keep)

`up` creates the federation (`pausenet.ops.federation.init_federation`), gives every node free
loopback ports, starts each node as `python -m pausenet run --config D/node_configs/<member>.toml`
with its output in D/logs/<member>.log, and waits until every node sees every member fresh and
synced. D/cluster.json records each node (member, role, addresses, pid, config, log, admin token
file, running) so that the other commands, `bench/cluster.py` and tests can find them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pausenet.client import AdminClient, OversightClient, read_admin_token
from pausenet.core.charter import Charter, load_charter
from pausenet.core.payload import pause_state_from_pb
from pausenet.core.records import ComplianceState, Decision
from pausenet.core.view import PauseState
from pausenet.errors import NodeError, PausenetError
from pausenet.node.config import load_config
from pausenet.ops.federation import init_federation
from pausenet.ops.render import state_text
from pausenet.v1 import oversight_pb2

__all__ = [
    "CLUSTER_FILE",
    "Cluster",
    "ClusterError",
    "ClusterNode",
    "ScenarioResult",
    "Watcher",
    "app",
    "create_cluster",
    "free_ports",
    "main",
    "node_command",
    "pid_is_node",
    "run",
    "run_scenario",
]

ViewReply = oversight_pb2.ViewReply

CLUSTER_FILE = "cluster.json"
CLUSTER_FORMAT = "pausenet.cluster.v1"
READY_DEADLINE_S = 30.0
STOP_GRACE_S = 10.0
STEP_DEADLINE_S = 20.0
SCENARIO_TRIGGER = "rsi-detected"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
# How hints name this command: scripts/cluster sets it, so its users see what they typed.
PROG = os.environ.get("PAUSENET_CLUSTER_PROG", "python -m pausenet.ops.cluster")


class ClusterError(PausenetError):
    """A cluster command failed: no cluster, a node not ready in time, a step that timed out."""


def node_command(config: Path) -> list[str]:
    """The command that runs one node."""
    return [sys.executable, "-m", "pausenet", "run", "--config", str(config)]


# -- the cluster on disk ------------------------------------------------------------------------


@dataclass
class ClusterNode:
    member: str
    role: str
    address: str  # gossip and oversight, host:port
    admin_address: str
    config: Path
    log: Path
    admin_token: Path
    pid: int | None = None
    running: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "role": self.role,
            "address": self.address,
            "admin_address": self.admin_address,
            "pid": self.pid,
            "running": self.running,
            "config": str(self.config),
            "log": str(self.log),
            "admin_token": str(self.admin_token),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ClusterNode:
        return cls(
            member=str(d["member"]),
            role=str(d["role"]),
            address=str(d["address"]),
            admin_address=str(d["admin_address"]),
            config=Path(d["config"]),
            log=Path(d["log"]),
            admin_token=Path(d["admin_token"]),
            pid=int(d["pid"]) if d.get("pid") is not None else None,
            running=bool(d.get("running", False)),
        )


class Cluster:
    """The nodes of one local cluster, as recorded in D/cluster.json, and their processes."""

    def __init__(self, dir: Path, charter_path: Path, nodes: list[ClusterNode]) -> None:
        self.dir = dir
        self.charter_path = charter_path
        self.nodes = nodes
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # the nodes this process started

    @property
    def file(self) -> Path:
        return self.dir / CLUSTER_FILE

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @classmethod
    def load(cls, dir: Path) -> Cluster:
        path = dir / CLUSTER_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ClusterError(
                f"{dir}: no cluster here ({CLUSTER_FILE} not found); start one with"
                f" {PROG} up --labs 3 --dir {shlex.quote(str(dir))}"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ClusterError(f"{path}: cannot read it: {exc}") from exc
        try:
            if data.get("format") != CLUSTER_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {CLUSTER_FORMAT!r}")
            nodes = [ClusterNode.from_json(n) for n in data["nodes"]]
            return cls(dir, Path(data["charter"]), nodes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ClusterError(f"{path}: not a cluster file: {exc}") from exc

    def save(self) -> None:
        data = {
            "format": CLUSTER_FORMAT,
            "dir": str(self.dir.resolve()),
            "charter": str(self.charter_path),
            "nodes": [n.to_json() for n in self.nodes],
        }
        tmp = self.file.with_name(CLUSTER_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.file)

    def charter(self) -> Charter:
        return load_charter(self.charter_path)

    def node(self, member: str) -> ClusterNode:
        for n in self.nodes:
            if n.member == member:
                return n
        names = ", ".join(n.member for n in self.nodes)
        raise ClusterError(f"{member!r} is not a node of the cluster in {self.dir}; nodes: {names}")

    # -- processes --------------------------------------------------------------------------

    def is_running(self, n: ClusterNode) -> bool:
        proc = self._procs.get(n.member)
        if proc is not None and proc.pid == n.pid:
            return proc.poll() is None
        return n.pid is not None and pid_is_node(n.pid, n.config)

    def refresh(self) -> None:
        """Update every node's `running` from its process."""
        for n in self.nodes:
            n.running = self.is_running(n)

    def running(self) -> list[ClusterNode]:
        return [n for n in self.nodes if self.is_running(n)]

    def exit_note(self, n: ClusterNode, when: str = "") -> str:
        """'lab-b exited with code 2 <when>: <its last log line> (log: …)'."""
        proc = self._procs.get(n.member)
        code = proc.poll() if proc is not None and proc.pid == n.pid else None
        how = f"exited with code {code}" if code is not None else "is not running"
        last = last_log_line(n.log).removeprefix("error: ")
        return f"{n.member} {how}{when}" + (f": {last}" if last else "") + f" (log: {n.log})"

    def spawn(self, n: ClusterNode) -> None:
        """Start n's node process in the background, its output appended to its log."""
        self.logs.mkdir(exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with n.log.open("ab") as log:
            log.write(f"--- {_utc_now()} starting {n.member}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                node_command(n.config),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env,
                start_new_session=True,  # Ctrl-C in this terminal does not reach the nodes
            )
        self._procs[n.member] = proc
        n.pid = proc.pid
        n.running = True

    def stop(self, nodes: Sequence[ClusterNode], grace_s: float = STOP_GRACE_S) -> list[str]:
        """SIGTERM each running node, wait up to grace_s, then SIGKILL the rest. Marks them all
        not running and returns the members that needed SIGKILL."""
        live = [n for n in nodes if self.is_running(n)]
        for n in live:
            self._signal(n, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(self.is_running(n) for n in live):
            time.sleep(0.05)
        killed = [n for n in live if self.is_running(n)]
        for n in killed:
            self._signal(n, signal.SIGKILL)
        self._wait_gone(killed)
        for n in nodes:
            n.running = False
        return [n.member for n in killed]

    def kill(self, n: ClusterNode) -> None:
        """SIGKILL one node, as a crash would."""
        self._signal(n, signal.SIGKILL)
        self._wait_gone([n])
        n.running = False

    def _signal(self, n: ClusterNode, sig: signal.Signals) -> None:
        if n.pid is None or not self.is_running(n):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(n.pid, sig)

    def _wait_gone(self, nodes: Sequence[ClusterNode], timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        for n in nodes:
            proc = self._procs.get(n.member)
            if proc is not None and proc.pid == n.pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(max(0.0, deadline - time.monotonic()))
        while time.monotonic() < deadline and any(self.is_running(n) for n in nodes):
            time.sleep(0.02)

    # -- readiness --------------------------------------------------------------------------

    async def wait_ready(
        self,
        nodes: Sequence[ClusterNode],
        deadline_s: float = READY_DEADLINE_S,
        on_ready: Callable[[ClusterNode, float], None] | None = None,
    ) -> float:
        """Wait until each of nodes answers GetView and sees every member whose node is running
        fresh and synced. Returns the seconds it took; raises ClusterError naming the nodes that
        are not ready (and their logs) after deadline_s, or at once when a node exits."""
        t0 = time.monotonic()
        pending = {n.member: "has not answered yet" for n in nodes}
        byname = {n.member: n for n in nodes}
        while True:
            for m in pending:
                if not self.is_running(byname[m]):
                    raise ClusterError(self.exit_note(byname[m], " before it was ready"))
            need = {n.member for n in self.nodes if self.is_running(n)}
            results = await asyncio.gather(*(_probe(byname[m], need) for m in pending))
            elapsed = time.monotonic() - t0
            for m, why in zip(list(pending), results, strict=True):
                if why is None:
                    del pending[m]
                    if on_ready is not None:
                        on_ready(byname[m], elapsed)
                else:
                    pending[m] = why
            if not pending:
                return elapsed
            if elapsed > deadline_s:
                late = "; ".join(f"{m} {why}" for m, why in pending.items())
                logs = ", ".join(str(byname[m].log) for m in pending)
                raise ClusterError(
                    f"not ready after {deadline_s:g} s: {late}; see {logs}"
                    if len(pending) <= 3
                    else f"{len(pending)} nodes not ready after {deadline_s:g} s: {late};"
                    f" see their logs in {self.logs}"
                )
            await asyncio.sleep(0.1)


async def _probe(n: ClusterNode, need: set[str]) -> str | None:
    """None when n sees every member in need fresh and synced; else what is missing."""
    try:
        async with OversightClient(n.address, timeout=1.0) as c:
            r: ViewReply = await c.get_view()
    except NodeError:
        return "is not answering"
    bad = [m.id for m in r.members if m.id in need and not (m.fresh and m.synced)]
    if bad:
        return f"does not yet see {', '.join(bad)} fresh"
    return None


def _ps_runs(pid: int, config: Path) -> bool:
    try:
        out = subprocess.run(
            ["ps", "-p", str(pid), "-o", "command="],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return str(config) in out


def pid_is_node(pid: int, config: Path) -> bool:
    """True when pid is a live process running the node of this config (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process took the pid
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():
        return _ps_runs(pid, config)  # no /proc: ask ps, never trust a bare pid
    try:
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return state != "Z" and str(config).encode() in argv


def last_log_line(path: Path, limit: int = 240) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip() and not ln.startswith("--- ")]
    return lines[-1][:limit] if lines else ""


def free_ports(count: int) -> list[int]:
    """count distinct TCP ports free on 127.0.0.1 right now (all bound at once, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def create_cluster(dir: Path, labs: int, overseers: int, *, force: bool = False) -> Cluster:
    """Create a federation in dir with a node config per member on free loopback ports, and
    write dir/cluster.json. Starts nothing. Refuses a dir whose cluster has live nodes."""
    existing = dir / CLUSTER_FILE
    if existing.exists():
        old = Cluster.load(dir)
        live = old.running()
        if live:
            names = ", ".join(f"{n.member} (pid {n.pid})" for n in live)
            raise ClusterError(
                f"cluster already up in {dir}: {names}; stop it first:"
                f" {PROG} down --dir {shlex.quote(str(dir))}"
            )
        if not force:
            raise ClusterError(
                f"{dir} holds a cluster that is down; restart its nodes with"
                f" {PROG} start --dir {shlex.quote(str(dir))}, or pass --force to replace it"
                " (its keys and node data too)"
            )
    fed = init_federation(dir, labs, overseers, force=force)
    if force:
        shutil.rmtree(dir / "logs", ignore_errors=True)
        existing.unlink(missing_ok=True)
    root = dir.resolve()
    ports = free_ports(2 * len(fed.members))
    addrs = [f"127.0.0.1:{p}" for p in ports]
    nodes: list[ClusterNode] = []
    for i, m in enumerate(fed.members):
        listen, admin = addrs[2 * i], addrs[2 * i + 1]
        peers = [addrs[2 * j] for j in range(len(fed.members)) if j != i]
        config = root / "node_configs" / f"{m.id}.toml"
        rewrite_config(config, listen=listen, admin_listen=admin, peers=peers)
        cfg = load_config(config)  # checks the rewritten file as the node will read it
        nodes.append(
            ClusterNode(
                member=m.id,
                role=m.role.value,
                address=listen,
                admin_address=admin,
                config=config,
                log=root / "logs" / f"{m.id}.log",
                admin_token=cfg.admin_token_file,
            )
        )
    cluster = Cluster(dir, root / "charter.toml", nodes)
    cluster.save()
    return cluster


def rewrite_config(path: Path, *, listen: str, admin_listen: str, peers: list[str]) -> None:
    """Rewrite a node config with other addresses, keeping every other key as it was."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.update(listen=listen, admin_listen=admin_listen, peers=peers)
    lines = [
        f"# pausenet node config for {data.get('member_id', '?')}, written by {PROG} up with free",
        "# loopback ports picked for this cluster. Paths are relative to this file.",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items()]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ClusterError(f"cannot write {v!r} back into a node config")


# -- watching every node ------------------------------------------------------------------------


class Watcher:
    """A WatchView stream from every node: each node's latest view, and when each member's new
    head first reached it (for latency measurements)."""

    def __init__(self, nodes: Sequence[ClusterNode]) -> None:
        self.nodes = list(nodes)
        self.latest: dict[str, ViewReply] = {}
        self.arrived: dict[str, float] = {}  # time.perf_counter() of the latest reply
        self.failed: dict[str, str] = {}
        self._heads: dict[str, dict[str, int]] = {n.member: {} for n in self.nodes}
        self._first_seen: dict[tuple[str, str, int], float] = {}
        self._event = asyncio.Event()
        self._clients: list[OversightClient] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watcher:
        for n in self.nodes:
            c = OversightClient(n.address)
            self._clients.append(c)
            self._tasks.append(asyncio.create_task(self._follow(n.member, c)))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for c in self._clients:
            with contextlib.suppress(Exception):
                await c.channel.close()

    async def _follow(self, member: str, client: OversightClient) -> None:
        try:
            async for reply in client.watch():
                now = time.perf_counter()
                self.latest[member] = reply
                self.arrived[member] = now
                heads = self._heads[member]
                for m in reply.members:
                    old = heads.get(m.id, 0)
                    for s in range(old + 1, m.head_seq + 1):
                        self._first_seen[(member, m.id, s)] = now
                    heads[m.id] = max(old, m.head_seq)
                self._event.set()
            self.failed[member] = "its WatchView stream ended (is the node stopping?)"
        except NodeError as exc:
            self.failed[member] = str(exc)
        self._event.set()

    def seen_at(self, node: str, member: str, seq: int) -> float | None:
        """When node's view first showed member's log at seq or beyond (perf_counter)."""
        return self._first_seen.get((node, member, seq))

    def head(self, node: str, member: str) -> int:
        return self._heads[node].get(member, 0)

    async def until(
        self,
        done: Callable[[ViewReply], bool],
        *,
        what: str,
        deadline_s: float = STEP_DEADLINE_S,
        on_reply: Callable[[str, ViewReply, float], None] | None = None,
        describe: Callable[[ViewReply], str] | None = None,
    ) -> None:
        """Wait until done(view) holds on every node; on_reply sees each node's new view (with
        its arrival time) as it comes. Raises ClusterError after deadline_s, or when a node's
        stream fails, in one line naming the nodes that are not there."""
        deadline = time.monotonic() + deadline_s
        seen: dict[str, float] = {}
        while True:
            self._event.clear()
            for n in self.nodes:
                m = n.member
                if m in self.failed:
                    raise ClusterError(f"waiting for every node {what}: {self.failed[m]}")
                if on_reply is not None and m in self.latest and seen.get(m) != self.arrived[m]:
                    seen[m] = self.arrived[m]
                    on_reply(m, self.latest[m], self.arrived[m])
            if all(m.member in self.latest and done(self.latest[m.member]) for m in self.nodes):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                desc = describe or _describe_view
                late = ", ".join(
                    f"{n.member} {desc(self.latest[n.member])}"
                    if n.member in self.latest
                    else f"{n.member} has sent no view"
                    for n in self.nodes
                    if n.member not in self.latest or not done(self.latest[n.member])
                )
                raise ClusterError(f"not every node {what} within {deadline_s:g} s: {late}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), left)


def _state(r: ViewReply) -> str:
    return pause_state_from_pb(r.state)


def _describe_view(r: ViewReply) -> str:
    fresh = sum(1 for m in r.members if m.fresh)
    return f"says {_state(r)} (epoch {r.epoch}, {fresh}/{len(r.members)} members fresh)"


# -- the scenario -------------------------------------------------------------------------------


@dataclass
class ScenarioResult:
    epoch: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    statements: int = 0


class _Story:
    """Prints one scenario step's progress: each node's change with the ms since the step's
    reference moment."""

    def __init__(self, console: Console, nodes: Sequence[ClusterNode]) -> None:
        self.console = console
        self.width = max(len(n.member) for n in nodes)
        self.explained_unknown = False

    def step(self, number: int, title: str) -> None:
        self.console.print()
        self.console.print(Text.assemble((f"{number}. ", "bold"), (title, "bold")))

    def line(self, text: Text | str) -> None:
        self.console.print(Text("   ") + (Text(text) if isinstance(text, str) else text))

    def node(self, t0: float, arrived: float, member: str, what: Text | str) -> None:
        ms = max(0.0, (arrived - t0) * 1000)
        self.console.print(
            Text.assemble(
                f"   {'+':>2}{ms:6.0f} ms  ",
                (f"{member:<{self.width}}", "bold"),
                "  ",
                what if isinstance(what, Text) else Text(what),
            )
        )


def _state_only(r: ViewReply) -> Text:
    s = _state(r)
    return state_text(PauseState(s)) if s in PauseState.__members__ else Text(s)


def _state_label(r: ViewReply) -> Text:
    return Text.assemble(_state_only(r), f" epoch {r.epoch}")


async def _converge_state(
    watcher: Watcher,
    story: _Story,
    t0: float,
    want: PauseState,
    epoch: int,
    before: dict[str, tuple[int, int]],
    deadline_s: float,
) -> float:
    """Wait until every node says want at epoch; print each node's state changes as they come.
    Returns the ms from t0 until the last node got there."""
    last = dict(before)
    reached: dict[str, float] = {}
    want_pb = oversight_pb2.PauseState.Value("PAUSE_STATE_" + want.value)

    saw_unknown = False

    def on_reply(member: str, r: ViewReply, arrived: float) -> None:
        nonlocal saw_unknown
        key = _key(r)
        if last.get(member) != key:
            last[member] = key
            story.node(t0, arrived, member, _state_label(r))
            saw_unknown = saw_unknown or r.state == oversight_pb2.PAUSE_STATE_UNKNOWN
        if key == (int(want_pb), epoch):
            reached.setdefault(member, arrived)

    await watcher.until(
        lambda r: r.state == want_pb and r.epoch == epoch,
        what=f"said {want.value} (epoch {epoch})",
        deadline_s=deadline_s,
        on_reply=on_reply,
    )
    if saw_unknown and not story.explained_unknown:
        story.explained_unknown = True
        story.line(
            Text(
                "(UNKNOWN for a moment: a node that holds the new votes proves the new state only"
                " once enough members' heartbeats, signed after it took effect, show they signed"
                " nothing it has not seen.)",
                style="dim",
            )
        )
    return max(0.0, (max(reached.values(), default=t0) - t0) * 1000)


async def _converge_heads(
    watcher: Watcher, story: _Story, t0: float, member: str, seq: int, label: str
) -> float:
    """Wait until every node holds member's log up to seq; print when each node gets it."""
    reached: dict[str, float] = {}

    def on_reply(node: str, r: ViewReply, arrived: float) -> None:
        if node not in reached and watcher.head(node, member) >= seq:
            reached[node] = watcher.seen_at(node, member, seq) or arrived
            story.node(t0, reached[node], node, label)

    await watcher.until(
        lambda r: any(m.id == member and m.head_seq >= seq for m in r.members),
        what=f"held {member}#{seq}",
        on_reply=on_reply,
        describe=lambda r: f"holds {member} up to #{_head_of(r, member)}",
    )
    return max(0.0, (max(reached.values(), default=t0) - t0) * 1000)


def _key(r: ViewReply) -> tuple[int, int]:
    return int(r.state), int(r.epoch)


def _head_of(r: ViewReply, member: str) -> int:
    return next((m.head_seq for m in r.members if m.id == member), 0)


def _compliance_of(r: ViewReply, labs: Sequence[str]) -> dict[str, str]:
    got = {m.id: m.compliance for m in r.members}
    return {lab: got.get(lab) or "-" for lab in labs}


async def _issue(
    cluster: Cluster, member: str, what: str, call: Callable[[AdminClient], Any]
) -> tuple[int, float]:
    """Run an Admin call at member's own node; returns (seq, perf_counter when it returned)."""
    n = cluster.node(member)
    token = read_admin_token(n.admin_token)
    async with AdminClient(n.admin_address, token) as admin:
        try:
            reply = await call(admin)
        except NodeError as exc:
            raise ClusterError(f"{what} at {member}'s node: {exc}") from exc
    return int(reply.seq), time.perf_counter()


async def run_scenario(cluster: Cluster, console: Console) -> ScenarioResult:
    """Drive a whole pause on a running cluster and show each node's view as it converges:
    a trigger attested, PAUSE votes, every node PAUSED, every lab's compliance, LIFT votes,
    every node NOT_PAUSED. Works on any cluster with no pause in effect (epoch e -> e+1)."""
    try:
        return await _scenario(cluster, console)
    except ClusterError as exc:
        raise ClusterError(f"{exc}; the nodes' logs are in {cluster.logs}/") from exc


async def _scenario(cluster: Cluster, console: Console) -> ScenarioResult:
    down = [n for n in cluster.nodes if not cluster.is_running(n)]
    if down:
        names = " ".join(n.member for n in down)
        raise ClusterError(
            f"not every node is running ({names}); start them first:"
            f" {PROG} start --dir {shlex.quote(str(cluster.dir))}"
        )
    charter = cluster.charter()
    rules = charter.rules
    labs = [m.id for m in charter.labs()]
    overseers = [m.id for m in charter.overseers()]
    pause_voters = labs[: rules.pause_threshold]
    lift_voters = labs[: rules.lift_threshold] + overseers[: rules.lift_overseer_threshold]
    story = _Story(console, cluster.nodes)
    result = ScenarioResult(epoch=0)
    n_nodes = len(cluster.nodes)

    async with Watcher(cluster.nodes) as w:
        not_paused = oversight_pb2.PAUSE_STATE_NOT_PAUSED
        await w.until(
            lambda r: r.state == not_paused,
            what="said NOT_PAUSED before the scenario",
            deadline_s=10.0,
            describe=lambda r: (
                _describe_view(r)
                + (" — a pause is in effect already" if _state(r) == "PAUSED" else "")
            ),
        )
        epochs = {w.latest[n.member].epoch for n in cluster.nodes}
        if len(epochs) != 1:
            raise ClusterError(f"the nodes disagree on the epoch ({sorted(epochs)}); try again")
        epoch = epochs.pop() + 1
        result.epoch = epoch
        lift = _plural(rules.lift_threshold, "lab")
        if rules.lift_overseer_threshold:
            lift += f" and {_plural(rules.lift_overseer_threshold, 'overseer')}"
        console.print(
            Text.assemble(
                ("Scenario: ", "bold"),
                f"a coordinated pause on the {n_nodes} nodes in {cluster.dir}"
                f" ({_plural(len(labs), 'lab')}, {_plural(len(overseers), 'overseer')}).",
            )
        )
        console.print(
            f"Every node says NOT_PAUSED (epoch {epoch - 1}). A pause needs PAUSE votes from"
            f" {rules.pause_threshold} of {len(labs)} labs; a lift needs LIFT votes from {lift}."
        )
        console.print(
            "Each statement is signed by its member's own node (Admin API) and gossiped; lab-a#2"
            " is statement 2 of lab-a's log; times are ms since the node signed it.",
            style="dim",
        )

        # 1. a trigger is attested
        attester = labs[0]
        story.step(1, f"{attester} attests that trigger {SCENARIO_TRIGGER!r} occurred")
        t_call = time.perf_counter()
        seq, t0 = await _issue(
            cluster,
            attester,
            "trigger attestation",
            lambda a: a.attest_trigger(SCENARIO_TRIGGER, note="pausenet cluster scenario"),
        )
        story.line(f"{attester}'s node signed {attester}#{seq} in {(t0 - t_call) * 1000:.0f} ms")
        ms = await _converge_heads(w, story, t0, attester, seq, f"holds {attester}#{seq}")
        result.timings_ms["trigger attestation reached every node"] = ms
        story.line(Text(f"every node holds it after {ms:.0f} ms", style="bold"))
        result.statements += 1

        # 2. PAUSE votes
        story.step(
            2,
            f"{_plural(len(pause_voters), 'lab')} vote PAUSE for epoch {epoch}, naming {SCENARIO_TRIGGER},"
            " each at its own node",
        )
        before = {n.member: _key(w.latest[n.member]) for n in w.nodes}
        for i, lab in enumerate(pause_voters):
            seq, t0 = await _issue(
                cluster,
                lab,
                "PAUSE vote",
                lambda a: a.cast_vote(Decision.PAUSE, epoch=epoch, triggers=(SCENARIO_TRIGGER,)),
            )
            decisive = i == len(pause_voters) - 1
            story.line(
                f"{lab} voted PAUSE ({lab}#{seq})" + (": the deciding vote" if decisive else "")
            )
        result.statements += len(pause_voters)
        ms = await _converge_state(w, story, t0, PauseState.PAUSED, epoch, before, STEP_DEADLINE_S)
        result.timings_ms["pause in effect on every node (after the last vote)"] = ms
        story.line(Text(f"PAUSED on all {n_nodes} nodes {ms:.0f} ms after the deciding vote"))
        first = w.latest[cluster.nodes[0].member]
        pending = _compliance_of(first, labs)
        story.line(
            "compliance now: " + ", ".join(f"{lab} {st}" for lab, st in pending.items()),
        )

        # 3. compliance
        story.step(3, f"every lab confirms it has halted (compliance HALTED, epoch {epoch})")
        last_t0 = time.perf_counter()
        for lab in labs:
            seq, last_t0 = await _issue(
                cluster,
                lab,
                "compliance attestation",
                lambda a: a.attest_compliance(ComplianceState.HALTED, epoch=epoch),
            )
            story.line(f"{lab} attested HALTED ({lab}#{seq})")
        result.statements += len(labs)
        reached: dict[str, float] = {}

        def all_compliant(r: ViewReply) -> bool:
            return all(st == "compliant" for st in _compliance_of(r, labs).values())

        def on_compliance(node: str, r: ViewReply, arrived: float) -> None:
            if node not in reached and all_compliant(r):
                reached[node] = arrived
                story.node(last_t0, arrived, node, f"sees all {len(labs)} labs compliant")

        await w.until(
            all_compliant,
            what=f"saw all {len(labs)} labs compliant",
            on_reply=on_compliance,
            describe=lambda r: (
                "sees " + ", ".join(f"{k} {v}" for k, v in _compliance_of(r, labs).items())
            ),
        )
        ms = max(0.0, (max(reached.values(), default=last_t0) - last_t0) * 1000)
        result.timings_ms["all labs compliant on every node"] = ms
        story.line(
            "compliance on every node: "
            + ", ".join(f"{lab} compliant" for lab in labs)
            + f" ({ms:.0f} ms after the last attestation)"
        )

        # 4. LIFT votes
        who = _plural(rules.lift_threshold, "lab") + (
            f" and {_plural(rules.lift_overseer_threshold, 'overseer')}"
            if rules.lift_overseer_threshold
            else ""
        )
        story.step(4, f"{who} vote LIFT for epoch {epoch}, each at its own node")
        before = {n.member: _key(w.latest[n.member]) for n in w.nodes}
        for i, member in enumerate(lift_voters):
            seq, t0 = await _issue(
                cluster,
                member,
                "LIFT vote",
                lambda a: a.cast_vote(Decision.LIFT, epoch=epoch),
            )
            decisive = i == len(lift_voters) - 1
            story.line(
                f"{member} voted LIFT ({member}#{seq})"
                + (": the deciding vote" if decisive else "")
            )
        result.statements += len(lift_voters)
        ms = await _converge_state(
            w,
            story,
            t0,
            PauseState.NOT_PAUSED,
            epoch,
            before,
            STEP_DEADLINE_S + rules.min_pause_s,
        )
        result.timings_ms["lift in effect on every node (after the last vote)"] = ms
        story.line(
            Text(f"NOT_PAUSED (epoch {epoch} lifted) on all {n_nodes} nodes {ms:.0f} ms after")
            + Text(" the deciding vote")
        )

    console.print()
    console.print(
        Text.assemble(
            ("Summary: ", "bold"),
            f"{result.statements} statements signed at {n_nodes} nodes; epoch {epoch} paused and"
            " lifted everywhere.",
        )
    )
    for k, v in result.timings_ms.items():
        console.print(f"  {k:<52} {v:6.0f} ms")
    return result


def _check_hint(cluster: Cluster, console: Console) -> None:
    node = cluster.nodes[0]
    charter = shlex.quote(str(_display(cluster.charter_path)))
    exe = _pausenet_command()
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


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the command line ---------------------------------------------------------------------------

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


def _q(p: Path) -> str:
    return shlex.quote(str(p))


def _bring_up(dir: Path, labs: int, overseers: int, force: bool) -> Cluster:
    """Create the federation, start every node and wait until all are ready; on failure or
    Ctrl-C, stop the nodes it started."""
    cluster = create_cluster(dir, labs, overseers, force=force)
    n = len(cluster.nodes)
    _out.print(
        Text.assemble(
            ("Created a federation ", "bold"),
            f"of {_plural(labs, 'lab')} and {_plural(overseers, 'overseer')} in {dir}"
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
    labs: Annotated[int, typer.Option("--labs", help="Number of labs (1-100).")] = 3,
    overseers: Annotated[int, typer.Option("--overseers", help="Number of overseers (0-100).")] = 1,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a stopped cluster in DIR (keys and data too).")
    ] = False,
) -> None:
    """Create a federation in DIR, start one node per member and wait until all are ready.

    Each node gets free ports on 127.0.0.1; its output goes to DIR/logs/<member>.log. Ready
    means every node sees every member fresh (deadline 30 s). Writes DIR/cluster.json.
    """
    _bring_up(dir, labs, overseers, force)
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

    async def views() -> list[ViewReply | str]:
        async def one(n: ClusterNode) -> ViewReply | str:
            if not n.running:
                return "not running"
            try:
                async with OversightClient(n.address, timeout=2.0) as c:
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
                    state=_state(r),
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
            _state_only(r),
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
def demo(
    dir: Annotated[
        Path,
        typer.Option("--dir", help="Directory for the demo cluster (replaced if it holds one)."),
    ] = Path("demo-federation"),
    labs: Annotated[int, typer.Option("--labs", help="Number of labs (1-100).")] = 3,
    overseers: Annotated[int, typer.Option("--overseers", help="Number of overseers (0-100).")] = 1,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave the cluster running afterwards.")
    ] = False,
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
    cluster = _bring_up(dir, labs, overseers, force)
    d = _q(dir)
    ok = False
    try:
        _out.print()
        asyncio.run(run_scenario(cluster, _out))
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


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (main() exits with it)."""
    from pausenet.ops.cli import run_app

    return run_app(app, argv, PROG)


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
