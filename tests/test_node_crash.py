"""Threat: a crash while the node signs (docs/protocol.md §5, DESIGN §6). A node run as its own
process (`python -m pausenet run`) is killed with SIGKILL while statements are being cast
through its Admin API, then restarted on the same data dir, again and again. Afterwards:

- it never signed two different statements with one seq (every envelope of its member seen
  anywhere — acknowledged to the caller, gossiped to a peer, served by itself — has one payload
  per seq, and no peer holds evidence against it);
- every statement the Admin API acknowledged is held by every node;
- after each restart it catches up from its peers on what it missed while down.

It is killed LIVES times (and more until more statements were acknowledged than it was killed),
within one generous timeout: a slow machine takes longer but does not fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from netutil import Cluster, eventually

from pausenet.client import AdminClient, OversightClient, read_admin_token
from pausenet.core.payload import decode_statement
from pausenet.core.records import ComplianceState, Decision
from pausenet.errors import NodeError

pytestmark = pytest.mark.slow

VICTIM = "lab-a"
LIVES = 10  # about 8 s on an idle machine
TIMEOUT_S = 600.0


class Victim:
    """The node under test, one process per life."""

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.proc: asyncio.subprocess.Process | None = None
        self.address = ""
        self.admin_address = ""
        self.lives = 0

    async def start(self) -> None:
        log = (self.log_dir / f"{VICTIM}-life{self.lives}.log").open("wb")
        self.lives += 1
        with log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *("-m", "pausenet", "run", "--config", str(self.config), "--log-format", "json"),
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        assert self.proc.stdout is not None
        async with asyncio.timeout(20):
            while True:
                line = await self.proc.stdout.readline()
                if not line:
                    raise AssertionError(f"{VICTIM} exited before it was ready; see {log.name}")
                event = json.loads(line)
                if event.get("event") == "ready":
                    break
        self.address, self.admin_address = event["address"], event["admin_address"]

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def terminate(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                await self.kill()


def write_victim_config(cluster: Cluster, peers: list[str]) -> Path:
    """The victim's config: its generated paths, ports picked by the OS, the live peers."""
    c = cluster.configs[VICTIM]
    path = cluster.fed.dir / f"{VICTIM}-crash.toml"
    lines = [
        f"member_id = {json.dumps(VICTIM)}",
        f"charter = {json.dumps(str(c.charter_path))}",
        f"key = {json.dumps(str(c.key_path))}",
        f"data_dir = {json.dumps(str(c.data_dir))}",
        'listen = "127.0.0.1:0"',
        'admin_listen = "127.0.0.1:0"',
        f"peers = {json.dumps(peers)}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def cast_until_killed(admin: AdminClient, life: int, acked: list[tuple[int, bytes]]) -> None:
    """Cast statements one after another; record each acknowledged (seq, payload)."""
    i = 0
    while True:
        try:
            if life == 0 and i == 0:
                reply = await admin.cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
            elif life > 0 and i % 3 == 0:
                reply = await admin.attest_compliance(ComplianceState.HALTED, epoch=1)
            else:
                reply = await admin.attest_trigger("eval-threshold", note=f"life {life} #{i}")
        except NodeError:
            return  # the node is gone (killed mid-call); whatever it did not acknowledge may be lost
        acked.append((reply.seq, bytes(reply.statement.payload)))
        i += 1


async def test_a_node_killed_while_signing_never_forks_and_keeps_every_acknowledged_statement(
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    rng = random.Random(2024)
    cluster = Cluster(tmp_path, labs=3, overseers=0)
    victim: Victim | None = None
    acked: list[tuple[int, bytes]] = []
    kills = 0
    try:
        async with asyncio.timeout(TIMEOUT_S):
            peers = [await cluster.start(m) for m in ("lab-b", "lab-c")]
            config = write_victim_config(cluster, [p.address for p in peers])
            victim = Victim(config, tmp_path)
            await peers[0].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))

            while True:
                await victim.start()
                token = read_admin_token(cluster.configs[VICTIM].admin_token_file)
                # it catches up from its peers on what they signed while it was down
                lab_b_head = peers[0].replica.head("lab-b")[0]
                async with OversightClient(victim.address) as oversight:

                    async def caught_up(
                        c: OversightClient = oversight, head: int = lab_b_head
                    ) -> bool:
                        return len(await c.get_log("lab-b")) == head

                    await eventually(caught_up, what=f"{VICTIM} caught up on lab-b")
                    # and it still holds everything it acknowledged before it was killed
                    held = {
                        decode_statement(e.payload).seq: e.payload
                        for e in await oversight.get_log(VICTIM)
                    }
                    assert all(held.get(seq) == payload for seq, payload in acked)

                # enough lives, and statements were really being cast when it died
                if kills >= LIVES and len(acked) > kills:
                    break
                async with AdminClient(victim.admin_address, token, timeout=5) as admin:
                    caster = asyncio.create_task(cast_until_killed(admin, kills, acked))
                    await asyncio.sleep(rng.uniform(0.05, 0.5))  # kill at a random instant
                    await victim.kill()
                    kills += 1
                    await caster
                await peers[0].attest_trigger("rsi-detected", note=f"while {VICTIM} is down")

            last_seq = max(seq for seq, _ in acked)

            # every node ends up holding every acknowledged statement
            def peers_hold_all() -> bool:
                return all(p.replica.head(VICTIM)[0] >= last_seq for p in peers)

            await eventually(peers_hold_all, what="the peers hold every acknowledged statement")
            async with OversightClient(victim.address) as oversight:
                victim_log = await oversight.get_log(VICTIM)
                victim_view = await oversight.get_view()
            logs = {
                "victim": [e.payload for e in victim_log],
                **{p.member: [s.envelope.payload for s in p.replica.log(VICTIM)] for p in peers},
            }
            for where, log in logs.items():
                by_seq = dict(enumerate(log, start=1))
                missing = [seq for seq, payload in acked if by_seq.get(seq) != payload]
                assert not missing, f"{where} lacks acknowledged seq {missing}"

            # one payload per seq, wherever it was seen
            seen: dict[int, set[bytes]] = defaultdict(set)
            for seq, payload in acked:
                seen[seq].add(payload)
            for log in logs.values():
                for payload in log:
                    seen[decode_statement(payload).seq].add(payload)
            forks = {seq: len(p) for seq, p in seen.items() if len(p) > 1}
            assert not forks, f"{VICTIM} signed different statements with one seq: {forks}"
            assert sorted(seen) == list(range(1, len(seen) + 1))
            for p in peers:
                assert p.replica.evidence() == []
            assert not any(m.equivocator for m in victim_view.members)
            print(
                f"{kills} SIGKILLs, {len(acked)} acknowledged statements, {len(seen)} in the log,"
                f" {time.monotonic() - started:.1f}s"
            )
    finally:
        if victim is not None:
            with contextlib.suppress(ProcessLookupError):
                await victim.terminate()
        await cluster.aclose()
