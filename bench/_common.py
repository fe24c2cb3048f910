"""Helpers shared by the benchmarks: rows, /proc readings, clusters with a pre-built log, and a
byte-counting TCP relay.

A log is built fast: statements are signed here with `pausenet.core.signing` and written once
into a store file (the store's own schema, one `executemany`), which is then copied into the data
directory of every node that should hold it. The nodes verify all of it when they start, as
after any restart. Nothing here changes how a node works.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pausenet.client import OversightClient
from pausenet.core.charter import Charter
from pausenet.core.keys import load_signing_key
from pausenet.core.quota import WINDOW_MS
from pausenet.core.records import SignedStatement, TriggerAttestation
from pausenet.core.signing import build_statement, sign_statement
from pausenet.errors import NodeError
from pausenet.node.config import load_config
from pausenet.node.node import STORE_FILE
from pausenet.node.store import Store
from pausenet.node.wire import encode_envelope
from pausenet.ops.cluster import Cluster, ClusterNode, create_cluster, free_ports, rewrite_config
from pausenet.ops.federation import DEFAULT_TRIGGERS

BENCH = Path(__file__).resolve().parent
TRIGGER = DEFAULT_TRIGGERS[0][0]


# -- rows ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a figure, its baseline from the same run, their ratio, the goal."""

    key: str
    label: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_label: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if v == 0 or abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip()


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_1_5_15": [round(x, 2) for x in load],
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def percentile(values: Sequence[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


# -- /proc ---------------------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- a cluster with a pre-built log --------------------------------------------------------------


def make_cluster(dir: Path, nodes: int, *, relayed: bool = False) -> tuple[Cluster, dict[int, int]]:
    """nodes-1 labs and one overseer on loopback ports. relayed: each node advertises a relay
    port and its peers are the others' relays, so all gossip crosses a `Relays` (returned as
    relay port -> node port; empty when not relayed)."""
    cluster = create_cluster(dir, nodes - 1, 1)
    if not relayed:
        return cluster, {}
    taken = {int(n.address.rpartition(":")[2]) for n in cluster.nodes}
    relay_ports = [p for p in free_ports(2 * nodes) if p not in taken][:nodes]
    relay = {n.member: p for n, p in zip(cluster.nodes, relay_ports, strict=True)}
    for n in cluster.nodes:
        peers = [f"127.0.0.1:{relay[o.member]}" for o in cluster.nodes if o is not n]
        rewrite_config(n.config, listen=n.address, admin_listen=n.admin_address, peers=peers)
        with n.config.open("a", encoding="utf-8") as f:
            f.write(f'advertise = "127.0.0.1:{relay[n.member]}"\n')
    return cluster, {relay[n.member]: int(n.address.rpartition(":")[2]) for n in cluster.nodes}


def sign_log(cluster: Cluster, count: int, members: Sequence[str]) -> list[SignedStatement]:
    """count trigger attestations spread evenly over members' logs, issued in the recent past:
    each member's k-th in hour k // quota, so no hour holds more than the charter's quota."""
    charter = cluster.charter()
    keys = {m: load_signing_key(load_config(cluster.node(m).config).key_path) for m in members}
    quota = charter.max_statements_per_hour
    hours = -(-count // (len(members) * quota))
    t0 = time.time_ns() // 1_000_000 - count - 60_000 - hours * WINDOW_MS
    out: list[SignedStatement] = []
    prev: dict[str, bytes] = {m: b"" for m in members}
    seq: dict[str, int] = {m: 0 for m in members}
    for i in range(count):
        m = members[i % len(members)]
        seq[m] += 1
        body = TriggerAttestation(TRIGGER, note=f"bench {i}")
        at = t0 + (seq[m] - 1) // quota * WINDOW_MS + i
        st = sign_statement(keys[m], build_statement(charter, m, seq[m], prev[m], at, body))
        prev[m] = st.hash
        out.append(st)
    return out


async def write_store(path: Path, charter: Charter, statements: Sequence[SignedStatement]) -> None:
    """A store file holding statements (created by the store itself, filled in one transaction)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = await Store.open(path, charter_digest=charter.digest)
    await store.close()
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO statements (member, seq, hash, prev_hash, issued_at_ms, envelope)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    s.member,
                    s.seq,
                    s.hash,
                    s.statement.prev_hash,
                    s.statement.issued_at_ms,
                    encode_envelope(s.envelope),
                )
                for s in statements
            ],
        )
    db.close()


async def preload(
    cluster: Cluster, nodes: Sequence[ClusterNode], statements: Sequence[SignedStatement]
) -> None:
    """Give each of nodes a store holding statements, before it starts."""
    if not statements:
        return
    template = cluster.dir / "log-template.db"
    await write_store(template, cluster.charter(), statements)
    for n in nodes:
        data = load_config(n.config).data_dir
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(template, data / STORE_FILE)


@contextlib.contextmanager
def running(cluster: Cluster, nodes: Sequence[ClusterNode]) -> Iterator[None]:
    """The nodes' processes, stopped at the end whatever happens."""
    try:
        for n in nodes:
            cluster.spawn(n)
        yield
    finally:
        cluster.stop(nodes, grace_s=5.0)


async def ready(cluster: Cluster, nodes: Sequence[ClusterNode], statements: int) -> None:
    """Wait until the nodes are up. Up to a few thousand statements: until every node sees every
    other fresh (`Cluster.wait_ready`). Beyond, only until each has loaded its store and answers:
    wait_ready asks for whole views over and over, which at 30,000 statements costs each node
    more than its peers' gossip deadlines allow (the nodes time out each other's calls)."""
    if statements <= 5000:
        await cluster.wait_ready(nodes, deadline_s=60 + statements / 50)
        return
    deadline = time.monotonic() + 60 + statements / 100
    for n in nodes:
        while True:
            if not cluster.is_running(n):
                raise RuntimeError(cluster.exit_note(n, " while loading its store"))
            try:
                async with OversightClient(n.address, timeout=2.0) as c:
                    await c.get_charter()
                break
            except NodeError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{n.member} not answering; see {n.log}") from None
                await asyncio.sleep(0.2)


# -- helper processes (bench/_peer.py) -----------------------------------------------------------


@contextlib.contextmanager
def helper_procs(argvs: Sequence[list[str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv in argvs:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(BENCH / "_peer.py"), *argv],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on 127.0.0.1:{port} after {timeout:g} s"
                ) from exc
            await asyncio.sleep(0.05)


# -- a TCP relay that counts bytes ---------------------------------------------------------------


class Relays:
    """One loopback relay per target: listen port -> target port, counting bytes both ways."""

    def __init__(self, targets: dict[int, int]) -> None:
        self.targets = targets
        self.bytes = 0
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Relays:
        for listen, target in self.targets.items():
            srv = await asyncio.start_server(
                lambda r, w, t=target: self._pipe(r, w, t), "127.0.0.1", listen
            )
            self._servers.append(srv)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for s in self._servers:
            s.close()
        for w in self._writers:
            w.close()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, target: int) -> None:
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            w.close()
            return
        self._writers.update((w, tw))

        async def copy(a: asyncio.StreamReader, b: asyncio.StreamWriter) -> None:
            try:
                while data := await a.read(65536):
                    self.bytes += len(data)
                    b.write(data)
                    await b.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                b.close()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(copy(r, tw), copy(tr, w))
        self._writers.difference_update((w, tw))


def ports(count: int) -> list[int]:
    return free_ports(count)
