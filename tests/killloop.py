"""kill -9 at random moments on every node of a three-node federation while votes are cast
(DESIGN.md §6; docs/protocol.md §5, §12.3, §14): the harness behind tests/test_kill_loop.py and
the soak in bench/kill_soak.py.

Three nodes run as their own processes (`python -m pausenet run`) on fixed ports, so a restarted
node is where its peers and the driver expect it. Two things run at once:

- drivers cast votes and attestations through the Admin API of randomly chosen nodes and
  record every statement a node acknowledged (member, seq, payload);
- a killer per node restarts it again and again and SIGKILLs it at a random moment: mostly 0 to
  300 ms after it said it was ready (so kills land while it signs, ingests, gossips and
  heartbeats), sometimes before (while it opens its store and recovers its journal).

Both stop once the nodes were killed `kills` times in all and at least `min_acknowledged`
statements were acknowledged. Then every node is started once more and left to converge, and
every member's log is fetched from every node (`GetLog`). `run_kill_loop` reports what it saw;
the caller asserts on it:

- no (member, seq) has two different payloads anywhere (acknowledged, or held by any node);
- every acknowledged statement is held by every node, with the same payload;
- every log is a valid hash chain of statements that verify, every node holds the same logs,
  and no node holds evidence.

Nothing here depends on how fast the machine is: the loop runs to its counts, within one
generous overall timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pausenet.client import AdminClient, OversightClient
from pausenet.core.charter import Charter, load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.payload import decode_statement, pause_state_from_pb
from pausenet.core.records import Body, ComplianceState, Decision, SignedStatement, Vote
from pausenet.core.verify import Rejection, verify_envelope
from pausenet.errors import NodeError
from pausenet.ops.federation import init_federation
from pausenet.v1 import oversight_pb2

MEMBERS = ("lab-a", "lab-b", "lab-c")
READY_TIMEOUT_S = 60.0  # one start; generous, so that a loaded machine is not a failure
KILL_AFTER_READY_S = 0.3
EARLY_KILLS = 0.15  # the share of kills aimed at start-up, before the ready line
RSI = ("rsi-detected",)
FAR_FUTURE = 10 * 365 * 86_400_000


def free_ports(n: int) -> list[int]:
    """n distinct ports that were free on 127.0.0.1 a moment ago (the OS picked them)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class NodeProcess:
    """One member's node, one process per life, in its own process group."""

    def __init__(self, member: str, config: Path, address: str, admin: str, logs: Path) -> None:
        self.member = member
        self.config = config
        self.address = address
        self.admin_address = admin
        self.logs = logs
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self.lives = 0
        self._reader: asyncio.Task[None] | None = None

    async def spawn(self) -> None:
        assert self.proc is None or self.proc.returncode is not None
        self.ready.clear()
        self.lives += 1
        with (self.logs / f"{self.member}.log").open("ab") as log:
            log.write(f"--- life {self.lives}\n".encode())
            log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "pausenet", "run", "--config", str(self.config), "--log-format", "json"),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # its own process group, killed as a whole
            )
        self._reader = asyncio.create_task(self._await_ready(self.proc))

    async def _await_ready(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            with contextlib.suppress(ValueError):
                if json.loads(line).get("event") == "ready":
                    self.ready.set()

    async def start(self) -> None:
        """Spawn and wait for the ready line."""
        await self.spawn()
        assert self.proc is not None
        exited = asyncio.create_task(self.proc.wait())
        became_ready = asyncio.create_task(self.ready.wait())
        try:
            await asyncio.wait(
                {exited, became_ready},
                timeout=READY_TIMEOUT_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            exited.cancel()
            became_ready.cancel()
        if not self.ready.is_set():
            tail = (self.logs / f"{self.member}.log").read_text(errors="replace")[-2000:]
            raise AssertionError(
                f"{self.member} (life {self.lives}) not ready within {READY_TIMEOUT_S:g}s"
                f" (exit code {self.proc.returncode}); log tail:\n{tail}"
            )

    async def kill(self) -> bool:
        """SIGKILL the process group; True if it was ready when killed."""
        was_ready = self.ready.is_set()
        self.ready.clear()
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        return was_ready

    def kill_now(self) -> None:
        """Last-resort cleanup, without awaiting (for finally blocks)."""
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)


def write_configs(fed_dir: Path, members: tuple[str, ...]) -> dict[str, NodeProcess]:
    """Configs on fixed free ports (a restart reuses them), every other node a peer."""
    fed = init_federation(fed_dir, len(members), 0)
    ports = free_ports(2 * len(members))
    addr = {m.id: f"127.0.0.1:{ports[2 * i]}" for i, m in enumerate(fed.members)}
    admin = {m.id: f"127.0.0.1:{ports[2 * i + 1]}" for i, m in enumerate(fed.members)}
    logs = fed_dir / "logs"
    logs.mkdir()
    out = {}
    for m in fed.members:
        path = fed_dir / f"{m.id}-kill-loop.toml"
        lines = [
            f"member_id = {json.dumps(m.id)}",
            f"charter = {json.dumps(str(fed.charter_path))}",
            f"key = {json.dumps(str(m.key_path))}",
            f"data_dir = {json.dumps(str(m.data_dir))}",
            f"listen = {json.dumps(addr[m.id])}",
            f"admin_listen = {json.dumps(admin[m.id])}",
            f"peers = {json.dumps([addr[p] for p in addr if p != m.id])}",
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[m.id] = NodeProcess(m.id, path, addr[m.id], admin[m.id], logs)
    return out


@dataclass(frozen=True)
class Ack:
    member: str
    seq: int
    hash: bytes
    payload: bytes


@dataclass
class Tally:
    kills: int = 0
    kills_before_ready: int = 0
    calls: int = 0
    refused: int = 0  # FAILED_PRECONDITION: the node's view did not allow that statement
    failed: int = 0  # unreachable, or killed during the call: not acknowledged
    acks: list[Ack] = field(default_factory=list)


async def cast_one(node: NodeProcess, token: str, rng: random.Random) -> Ack:
    """One random Admin call; the statement the node acknowledged."""
    async with AdminClient(node.admin_address, token, timeout=2.0) as admin:
        r = rng.random()
        if r < 0.25:
            reply = await admin.cast_vote(Decision.PAUSE, triggers=RSI)
        elif r < 0.5:
            reply = await admin.cast_vote(Decision.LIFT)
        elif r < 0.6:
            reply = await admin.attest_compliance(ComplianceState.HALTED)
        else:
            reply = await admin.attest_trigger("eval-threshold", note=f"{rng.random():.6f}")
    return Ack(node.member, reply.seq, bytes(reply.hash), bytes(reply.statement.payload))


async def drive(
    nodes: dict[str, NodeProcess],
    tokens: dict[str, str],
    rng: random.Random,
    tally: Tally,
    stop: asyncio.Event,
) -> None:
    """Cast statements at random running nodes until `stop`."""
    members = sorted(nodes)
    while not stop.is_set():
        node = nodes[rng.choice(members)]
        if not node.ready.is_set():
            await asyncio.sleep(0.005)
            continue
        tally.calls += 1
        try:
            ack = await cast_one(node, tokens[node.member], rng)
        except NodeError as exc:
            if "refused" in str(exc):
                tally.refused += 1
            else:
                tally.failed += 1
            continue
        tally.acks.append(ack)


async def chaos(node: NodeProcess, rng: random.Random, tally: Tally, enough: asyncio.Event) -> None:
    """Kill the (running) node at a random moment and restart it, until `enough`. Most kills
    come 0-300 ms after the ready line; some during start-up."""
    delay = rng.uniform(0, KILL_AFTER_READY_S)
    while not enough.is_set():
        await asyncio.sleep(delay)
        was_ready = await node.kill()
        tally.kills += 1
        tally.kills_before_ready += not was_ready
        if rng.random() < EARLY_KILLS:
            await node.spawn()  # opening the store, recovering the journal, binding
            delay = rng.uniform(0, 0.35)
        else:
            await node.start()
            delay = rng.uniform(0, KILL_AFTER_READY_S)


async def watch_counts(tally: Tally, kills: int, acks: int, enough: asyncio.Event) -> None:
    while tally.kills < kills or len(tally.acks) < acks:
        await asyncio.sleep(0.05)
    enough.set()


async def heads(node: NodeProcess) -> oversight_pb2.ViewReply | None:
    try:
        async with OversightClient(node.address, timeout=5.0) as client:
            return await client.get_view()
    except NodeError:
        return None


async def converged(nodes: dict[str, NodeProcess]) -> bool:
    """Every node sees every member fresh and synced, at the same heads."""
    replies = await asyncio.gather(*(heads(n) for n in nodes.values()))
    if any(r is None for r in replies):
        return False
    seen = {
        tuple((m.id, m.head_seq, bytes(m.head_hash)) for m in r.members)
        for r in replies
        if r is not None
    }
    synced = all(m.synced for r in replies if r is not None for m in r.members)
    return synced and len(seen) == 1


async def full_log(node: NodeProcess, member: str, limit: int) -> list[Envelope]:
    out: list[Envelope] = []
    async with OversightClient(node.address, timeout=30.0) as client:
        while True:
            page = await client.get_log(member, from_seq=len(out) + 1, limit=limit)
            if not page:
                return out
            out += page


def chain_problems(charter: Charter, member: str, log: list[Envelope]) -> list[str]:
    """Why `log` is not a valid hash chain of member's verified statements (empty if it is)."""
    problems = []
    prev: SignedStatement | None = None
    for i, env in enumerate(log, start=1):
        v = verify_envelope(charter, env, now_ms=time.time_ns() // 1_000_000 + FAR_FUTURE)
        if isinstance(v, Rejection) or not isinstance(v, SignedStatement):
            problems.append(f"{member}#{i}: {v}")
            break
        st = v.statement
        if (st.member, st.seq) != (member, i):
            problems.append(f"{member}#{i}: is {st.member}#{st.seq}")
        if prev is not None and (
            st.prev_hash != prev.hash or st.issued_at_ms < prev.statement.issued_at_ms
        ):
            problems.append(f"{member}#{i}: does not link to #{i - 1}")
        prev = v
    return problems


@dataclass
class Outcome:
    """What one kill loop saw. The invariants hold when forks, lost, chains, evidence and
    differing_logs are all empty."""

    tally: Tally
    figures: dict[str, Any]
    forks: dict[tuple[str, int], int]  # (member, seq) -> distinct payloads seen, if > 1
    lost: list[tuple[str, int, str]]  # (member, seq, node) acknowledged but not held there
    chains: list[str]
    evidence: list[str]  # nodes that hold evidence of a fork
    differing_logs: list[tuple[str, str]]  # (node, member) whose log differs from the first node's

    @property
    def violations(self) -> list[str]:
        return [
            *(f"two payloads for {m}#{s}" for (m, s) in self.forks),
            *(f"{m}#{s} acknowledged but missing on {n}" for m, s, n in self.lost),
            *self.chains,
            *(f"{n} holds evidence of a fork" for n in self.evidence),
            *(f"{n} holds another log of {m}" for n, m in self.differing_logs),
        ]


async def run_kill_loop(
    workdir: Path,
    *,
    kills: int,
    min_acknowledged: int,
    timeout_s: float,
    seed: int | None = None,
) -> Outcome:
    """Kill the three nodes `kills` times in all while statements are cast, until at least
    `min_acknowledged` were acknowledged; then restart, converge and collect. TimeoutError
    (saying how far it got) if all of it takes longer than `timeout_s`."""
    nodes = write_configs(workdir / "fed", MEMBERS)
    charter = load_charter(workdir / "fed" / "charter.toml")
    seed = seed if seed is not None else int.from_bytes(os.urandom(4))
    rng = random.Random(seed)
    tally = Tally()
    stop, enough = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    phase = "starting the nodes"
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            # first lives: every store and admin token created without interruption
            await asyncio.gather(*(n.start() for n in nodes.values()))
            tokens = {
                m: (workdir / "fed" / "data" / m / "admin.token").read_text().strip()
                for m in MEMBERS
            }
            phase = "killing"
            kills_from = loop.time()
            drivers = [
                asyncio.create_task(drive(nodes, tokens, random.Random(rng.random()), tally, stop))
                for _ in range(3)
            ]
            counter = asyncio.create_task(watch_counts(tally, kills, min_acknowledged, enough))
            try:
                await asyncio.gather(
                    *(chaos(n, random.Random(rng.random()), tally, enough) for n in nodes.values())
                )
            finally:
                stop.set()
                counter.cancel()
                await asyncio.gather(*drivers, counter, return_exceptions=True)
            chaos_s = loop.time() - kills_from

            phase = "converging"  # everyone up once more
            await asyncio.gather(*(n.kill() for n in nodes.values()))
            await asyncio.gather(*(n.start() for n in nodes.values()))
            t0 = loop.time()
            while not await converged(nodes):
                await asyncio.sleep(0.2)
            converge_s = loop.time() - t0
            final = await heads(nodes[MEMBERS[0]])
            assert final is not None
            final_state = f"{pause_state_from_pb(final.state)} epoch {final.epoch}"

            phase = "fetching the logs"
            limit = charter.limits.max_items_per_message
            held: dict[tuple[str, str], list[Envelope]] = {}
            evidence = []
            for n in nodes.values():
                for m in MEMBERS:
                    held[(n.member, m)] = await full_log(n, m, limit)
                async with OversightClient(n.address) as client:
                    reply = await client.stub.GetEvidence(
                        oversight_pb2.GetEvidenceRequest(), timeout=30
                    )
                if reply.evidence:
                    evidence.append(n.member)
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise TimeoutError(
            f"kill loop (seed {seed}) still {phase} after {timeout_s:g}s:"
            f" {tally.kills} of {kills} kills, {len(tally.acks)} of {min_acknowledged}"
            " statements acknowledged"
        ) from exc
    finally:
        stop.set()
        for n in nodes.values():
            n.kill_now()
        await asyncio.gather(*(n.kill() for n in nodes.values()), return_exceptions=True)
    duration_s = loop.time() - started
    acks = tally.acks

    # one payload per (member, seq), everywhere
    payloads: dict[tuple[str, int], set[bytes]] = defaultdict(set)
    for a in acks:
        payloads[(a.member, a.seq)].add(a.payload)
    for (_node, member), log in held.items():
        for i, env in enumerate(log, start=1):
            payloads[(member, i)].add(env.payload)
    forks = {k: len(v) for k, v in payloads.items() if len(v) > 1}

    # every acknowledged statement on every node
    lost = [
        (a.member, a.seq, n)
        for a in acks
        for n in MEMBERS
        if len(held[(n, a.member)]) < a.seq or held[(n, a.member)][a.seq - 1].payload != a.payload
    ]
    chains = [p for (_n, m), log in held.items() for p in chain_problems(charter, m, log)]
    first = MEMBERS[0]
    differing = [
        (n, m)
        for n in MEMBERS
        for m in MEMBERS
        if [e.payload for e in held[(n, m)]] != [e.payload for e in held[(first, m)]]
    ]
    kinds = Counter(_kind(decode_statement(a.payload).body) for a in acks)
    figures: dict[str, Any] = {
        "seed": seed,
        "kills": tally.kills,
        "kills_before_ready": tally.kills_before_ready,
        "lives": sum(n.lives for n in nodes.values()),
        "acknowledged": len(acks),
        "acknowledged_by_kind": dict(kinds),
        "final_state": final_state,
        "calls": tally.calls,
        "refused_by_view": tally.refused,
        "failed_calls": tally.failed,
        "seqs_signed_twice": len(forks),
        "acknowledged_lost": len(lost),
        "log_lengths": {m: len(held[(first, m)]) for m in MEMBERS},
        "chaos_s": round(chaos_s, 1),
        "kills_per_s": round(tally.kills / chaos_s, 2),
        "converge_s": round(converge_s, 2),
        "duration_s": round(duration_s, 1),
    }
    return Outcome(tally, figures, forks, lost, chains, evidence, differing)


def _kind(body: Body) -> str:
    if isinstance(body, Vote):
        return f"vote-{body.decision.value}"
    return type(body).__name__
