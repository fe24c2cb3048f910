"""The processes of a local cluster and the files that describe it.

D/cluster.json records each node (member, role, addresses, pid, config, log, admin token file,
running) so that the cluster commands, `bench/cluster.py` and tests can find them.
`create_cluster` makes the federation and gives each node free loopback ports (rewriting its
node config); `Cluster` starts nodes as `python -m pausenet run --config ...` with their output
in D/logs/<member>.log, stops, kills and waits for them until every node is ready.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from pausenet.client import OversightClient
from pausenet.core.charter import Charter, load_charter
from pausenet.core.files import write_atomic
from pausenet.errors import ClusterError, NodeError
from pausenet.node.config import load_config
from pausenet.node.runfile import process_alive
from pausenet.node.tls import TlsFiles, client_tls
from pausenet.ops.federation import init_federation
from pausenet.v1 import oversight_pb2

__all__ = [
    "CLUSTER_FILE",
    "PROG",
    "STOP_GRACE_S",
    "Cluster",
    "ClusterNode",
    "create_cluster",
    "free_ports",
    "node_command",
    "pid_is_node",
    "rewrite_config",
]

ViewReply = oversight_pb2.ViewReply

CLUSTER_FILE = "cluster.json"
CLUSTER_FORMAT = "pausenet.cluster.v1"
READY_DEADLINE_S = 30.0
STOP_GRACE_S = 10.0
# How hints name this command: scripts/cluster sets it, so its users see what they typed.
PROG = os.environ.get("PAUSENET_CLUSTER_PROG", "python -m pausenet.ops.cluster")


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

    @property
    def tls_dir(self) -> Path | None:
        """DIR/tls when the cluster was made with --tls (a test CA and node certificates)."""
        d = self.dir / "tls"
        return d if (d / "ca.crt").is_file() else None

    @property
    def tls(self) -> TlsFiles | None:
        """What a client of this cluster's nodes presents: the CA and, for mutual TLS, the
        first member's certificate (any member's is accepted)."""
        d = self.tls_dir
        if d is None:
            return None
        first = self.nodes[0].member
        return client_tls(d / "ca.crt", d / f"{first}.crt", d / f"{first}.key")

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
        try:
            write_atomic(self.file, json.dumps(data, indent=2) + "\n")
        except OSError as exc:
            raise ClusterError(f"{self.file}: cannot write it: {exc.strerror}") from exc

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
        # the process may have exited (and its pid gone to another user's) since the check
        with contextlib.suppress(ProcessLookupError, PermissionError):
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
            tls = self.tls
            results = await asyncio.gather(*(_probe(byname[m], need, tls) for m in pending))
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


async def _probe(n: ClusterNode, need: set[str], tls: TlsFiles | None) -> str | None:
    """None when n sees every member in need fresh and synced; else what is missing."""
    try:
        async with OversightClient(n.address, timeout=1.0, tls=tls) as c:
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
    if not process_alive(pid):
        return False
    # alive, but a pid can be recycled: our node runs with its config in its command line
    proc = Path("/proc") / str(pid)
    if not Path("/proc/self").exists():
        return _ps_runs(pid, config)  # no /proc: ask ps, never trust a bare pid
    try:
        mine = proc.stat().st_uid == os.getuid()  # a node this user started runs as this user
        state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return False
    return mine and state != "Z" and str(config).encode() in argv


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


def create_cluster(
    dir: Path, labs: int, overseers: int, *, force: bool = False, tls: bool = False
) -> Cluster:
    """Create a federation in dir with a node config per member on free loopback ports, and
    write dir/cluster.json. Starts nothing. Refuses a dir whose cluster has live nodes. With
    tls, a test CA and a certificate per member, and mutual TLS in every node config."""
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
    if tls:
        from pausenet.node.tls import enable_tls_for_federation

        enable_tls_for_federation(root)  # after the rewrite, which keeps the [tls] table
    cluster = Cluster(dir, root / "charter.toml", nodes)
    cluster.save()
    return cluster


def rewrite_config(path: Path, *, listen: str, admin_listen: str, peers: list[str]) -> None:
    """Rewrite a node config with other addresses, keeping every other key as it was."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data.update(listen=listen, admin_listen=admin_listen, peers=peers)
    member = " ".join(str(data.get("member_id", "?")).split())  # one comment line, whatever
    header = (
        f"# pausenet node config for {member}, written by {' '.join(PROG.split())} up with free\n"
        "# loopback ports picked for this cluster. Paths are relative to this file.\n"
    )
    try:
        write_atomic(path, header + tomli_w.dumps(data))
    except OSError as exc:
        raise ClusterError(f"{path}: cannot write it: {exc.strerror}") from exc


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
