"""`scripts/cluster amend` on real node processes: a lab joins, a key is replaced and a threshold
changes on a running cluster; every node converges on the new version, and a node killed with
kill -9 after adopting comes back on it (it never goes back)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import run_command

from pausenet.client import OversightClient
from pausenet.core.charter import load_charter
from pausenet.ops.cluster import CLUSTER_FILE


def cluster(*args: str, timeout: float = 120) -> tuple[int, str]:
    r = run_command([sys.executable, "-m", "pausenet.ops.cluster", *args], timeout)
    return r.returncode, r.stdout + r.stderr


def nodes_of(d: Path) -> dict[str, dict[str, object]]:
    info = json.loads((d / CLUSTER_FILE).read_text())
    return {str(n["member"]): n for n in info["nodes"]}


async def digests(addresses: list[str]) -> list[bytes]:
    async def one(a: str) -> bytes:
        async with OversightClient(a) as c:
            return (await c.get_charter())[1]

    return list(await asyncio.gather(*(one(a) for a in addresses)))


@pytest.mark.slow
def test_amend_a_running_cluster_then_kill_a_node_and_it_stays_on_the_new_version(
    tmp_path: Path,
) -> None:
    d = tmp_path / "fed"
    code, out = cluster("up", "--labs", "3", "--overseers", "1", "--dir", str(d))
    assert code == 0, out
    try:
        code, out = cluster(
            "amend",
            "--dir",
            str(d),
            "--add-lab",
            "lab-d",
            "--rekey",
            "lab-b",
            "--set",
            "pause_threshold=3",
        )
        assert code == 0, out
        assert "Version 2 in force on every node" in out
        assert "Member lab-d joins as a lab." in out
        v2 = load_charter(d / "charters" / "v2.toml")
        nodes = nodes_of(d)
        assert set(nodes) == {"lab-a", "lab-b", "lab-c", "lab-d", "overseer-a"}
        addresses = [str(n["address"]) for n in nodes.values()]
        assert set(asyncio.run(digests(addresses))) == {v2.digest}

        # kill -9 the node that adopted it, start it again: it comes back on version 2
        code, out = cluster("kill", "lab-c", "--dir", str(d))  # SIGKILL
        assert code == 0, out
        code, out = cluster("start", "lab-c", "--dir", str(d))
        assert code == 0, out
        assert set(asyncio.run(digests(addresses))) == {v2.digest}

        # a second amendment, and lab-c killed with SIGKILL while it is being adopted: once
        # restarted it runs version 3 too
        amend = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pausenet.ops.cluster",
                "amend",
                "--dir",
                str(d),
                "--set",
                "lift_threshold=3",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(0.8)
        cluster("kill", "lab-c", "--dir", str(d))
        out = amend.communicate(timeout=120)[0]
        assert amend.returncode == 0, out
        code, out = cluster("start", "lab-c", "--dir", str(d))
        assert code == 0, out
        v3 = load_charter(d / "charters" / "v3.toml")
        deadline = time.monotonic() + 30
        while set(asyncio.run(digests(addresses))) != {v3.digest}:
            assert time.monotonic() < deadline, "not every node runs version 3"
            time.sleep(0.2)
        code, out = cluster("status", "--dir", str(d))
        assert code == 0, out
        assert "5/5" in out
    finally:
        cluster("down", "--dir", str(d))


def test_a_rewritten_config_names_absolute_paths(tmp_path: Path, monkeypatch: Any) -> None:
    """`scripts/demo` runs with a relative --dir: a config's relative paths would be read from
    the config's own directory, so the re-keyed node's config must name absolute ones."""
    import tomllib

    from pausenet.ops.cluster.amend import _rewrite_for

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fed" / "node_configs").mkdir(parents=True)
    config = tmp_path / "fed" / "node_configs" / "lab-b.toml"
    config.write_text('member_id = "lab-b"\n', encoding="utf-8")
    rel = Path("fed")
    _rewrite_for(config, rel / "charters" / "v2.toml", rel / "charter.toml", rel / "keys" / "k")
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    assert data["charter"] == str(tmp_path / "fed" / "charters" / "v2.toml")
    assert data["trust"] == str(tmp_path / "fed" / "charter.toml")
    assert data["key"] == str(tmp_path / "fed" / "keys" / "k")
