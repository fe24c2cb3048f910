"""A keyless relay between honest nodes (issue 8 item 1, docs/protocol.md §12.5), on real nodes.

The relay (tests/relay.py, its own process, no key) sits at an address every node has among its
peers. It answers each node's challenge request with a challenge from another node; a login
signed for that other node would give the relay a session in the signer's name there, and the
forgeries it sends under it would get an honest member banned by honest nodes.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest
from netutil import Cluster, eventually

pytestmark = pytest.mark.slow

RELAY = Path(__file__).with_name("relay.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_a_keyless_relay_gets_no_session_in_another_members_name(tmp_path: Path) -> None:
    relay_address = f"127.0.0.1:{free_port()}"
    targets = tmp_path / "targets"
    targets.write_text("")
    relay = await asyncio.create_subprocess_exec(
        sys.executable, str(RELAY), relay_address, str(targets), stdout=asyncio.subprocess.PIPE
    )
    assert relay.stdout is not None
    events: list[str] = []

    async def read() -> None:
        assert relay.stdout is not None
        async for line in relay.stdout:
            events.append(line.decode().strip())

    reader = asyncio.create_task(read())
    try:
        await eventually(lambda: "listening" in events, what="the relay listens")
        # lab-d's node is down; the relay sits at an address in every node's peers
        running = ("lab-a", "lab-b", "lab-c")
        async with Cluster(
            tmp_path, labs=4, overseers=0, running=running, extra_peers=(relay_address,)
        ) as cluster:
            targets.write_text("\n".join(n.address for n in cluster.running()))

            def relayed_logins() -> set[str]:
                """The members whose login the relay tried to use elsewhere."""
                return {e.split()[1] for e in events if e.startswith(("session ", "refused "))}

            await eventually(
                lambda: relayed_logins() == set(running),
                timeout=60,
                what="every node answered the relay's challenge",
            )
            news = await cluster["lab-a"].attest_trigger("rsi-detected", note="after the relay")
            await eventually(
                lambda: all(n.replica.head("lab-a")[0] == news.seq for n in cluster.running()),
                timeout=60,
                what="news still reaches every node",
            )
            captured = [e for e in events if e.startswith("session ")]
            assert not captured, events
            banned = [
                (n.member, m)
                for n in cluster.running()
                for m in running
                if n.guard.banned(m, n.clock() / 1000)
            ]
            assert not banned, banned  # honest members never ban each other on its word
            assert all(e.startswith(("challenge ", "refused ", "listening")) for e in events)
    finally:
        relay.kill()
        await relay.wait()
        reader.cancel()
