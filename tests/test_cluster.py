"""`python -m pausenet.ops.cluster` (scripts/cluster) end to end, with real node processes: up,
scenario, kill, start, status and down, each run as its own command like a user would."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from helpers import one_line_error, run_command

from pausenet.client import AdminClient, OversightClient, read_admin_token
from pausenet.core.payload import pause_state_from_pb
from pausenet.node.config import load_config
from pausenet.ops.cluster import CLUSTER_FILE, pid_is_node, rewrite_config
from pausenet.ops.federation import init_federation
from pausenet.v1 import oversight_pb2

MEMBERS = ["lab-a", "lab-b", "lab-c", "overseer-a"]


def cluster(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_command([sys.executable, "-m", "pausenet.ops.cluster", *args], timeout)


def nodes_of(d: Path) -> dict[str, dict[str, Any]]:
    info = json.loads((d / CLUSTER_FILE).read_text())
    return {n["member"]: n for n in info["nodes"]}


async def views(addresses: list[str]) -> list[oversight_pb2.ViewReply]:
    async def one(a: str) -> oversight_pb2.ViewReply:
        async with OversightClient(a) as c:
            r: oversight_pb2.ViewReply = await c.get_view()
            return r

    return list(await asyncio.gather(*(one(a) for a in addresses)))


async def attest_at(node: dict[str, Any]) -> int:
    token = read_admin_token(Path(node["admin_token"]))
    async with AdminClient(node["admin_address"], token) as admin:
        reply = await admin.attest_trigger("eval-threshold", note="while lab-b was down")
    return int(reply.seq)


def head(view: oversight_pb2.ViewReply, member: str) -> int:
    return next(m.head_seq for m in view.members if m.id == member)


@pytest.mark.slow
def test_up_scenario_kill_start_down(tmp_path: Path) -> None:
    d = tmp_path / "fed"
    up = cluster("up", "--labs", "3", "--overseers", "1", "--dir", str(d))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        nodes = nodes_of(d)
        assert sorted(nodes) == MEMBERS
        for n in nodes.values():
            assert n["running"]
            assert pid_is_node(n["pid"], Path(n["config"]))
            assert Path(n["log"]).is_file()
            assert n["address"].startswith("127.0.0.1:")
        assert len({n["address"] for n in nodes.values()}) == 4

        again = cluster("up", "--labs", "3", "--dir", str(d))
        one_line_error(again, "cluster already up", "down --dir")

        sc = cluster("scenario", "--dir", str(d))
        assert sc.returncode == 0, sc.stdout + sc.stderr
        assert "PAUSED on all 4 nodes" in sc.stdout
        assert "NOT_PAUSED (epoch 1 lifted) on all 4 nodes" in sc.stdout
        final = asyncio.run(views([nodes[m]["address"] for m in MEMBERS]))
        assert [(pause_state_from_pb(v.state), v.epoch) for v in final] == [("NOT_PAUSED", 1)] * 4

        # lab-b crashes, misses a statement, restarts on its own data and catches up
        old_pid = nodes["lab-b"]["pid"]
        k = cluster("kill", "lab-b", "--dir", str(d))
        assert k.returncode == 0, k.stdout + k.stderr
        assert not pid_is_node(old_pid, Path(nodes["lab-b"]["config"]))
        assert nodes_of(d)["lab-b"]["running"] is False
        seq = asyncio.run(attest_at(nodes["lab-a"]))

        st = cluster("start", "lab-b", "--dir", str(d))
        assert st.returncode == 0, st.stdout + st.stderr
        restarted = nodes_of(d)["lab-b"]
        assert restarted["running"]
        assert restarted["pid"] != old_pid
        (view,) = asyncio.run(views([restarted["address"]]))
        assert head(view, "lab-a") == seq
        assert (pause_state_from_pb(view.state), view.epoch) == ("NOT_PAUSED", 1)

        status = cluster("status", "--dir", str(d), "--json")
        assert status.returncode == 0, status.stderr
        rows = json.loads(status.stdout)["nodes"]
        assert [(r["member"], r["running"], r["state"]) for r in rows] == [
            (m, True, "NOT_PAUSED") for m in MEMBERS
        ]
    finally:
        pids = {m: (n["pid"], Path(n["config"])) for m, n in nodes_of(d).items()}
        down = cluster("down", "--dir", str(d))
    assert down.returncode == 0, down.stdout + down.stderr
    assert all(not n["running"] for n in nodes_of(d).values())
    assert [m for m, (pid, cfg) in pids.items() if pid_is_node(pid, cfg)] == []


def test_commands_need_a_cluster(tmp_path: Path) -> None:
    one_line_error(cluster("status", "--dir", str(tmp_path / "none")), "no cluster here")


def test_rewrite_config_changes_addresses_only(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 2, 0)
    path = fed.members[0].config_path
    before = load_config(path)
    rewrite_config(
        path, listen="127.0.0.1:1234", admin_listen="127.0.0.1:1235", peers=["127.0.0.1:1236"]
    )
    after = load_config(path)
    assert (after.listen, after.admin_listen, after.peers) == (
        "127.0.0.1:1234",
        "127.0.0.1:1235",
        ("127.0.0.1:1236",),
    )
    assert (after.member_id, after.key_path, after.data_dir, after.admin_token_file) == (
        before.member_id,
        before.key_path,
        before.data_dir,
        before.admin_token_file,
    )


def test_rewrite_config_keeps_paths_with_quotes_and_backslashes(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / 'we"ird\\dir', 2, 0)
    path = fed.members[0].config_path
    data_dir = fed.dir / 'da"ta\\lab-a'
    text = path.read_text().replace(
        'data_dir = "../data/lab-a"', tomli_w.dumps({"data_dir": str(data_dir)}).strip()
    )
    path.write_text(text)
    rewrite_config(path, listen="127.0.0.1:1", admin_listen="127.0.0.1:2", peers=[])
    after = load_config(path)
    assert after.data_dir == data_dir.resolve()
    assert after.key_path == fed.members[0].key_path.resolve()
    assert (after.listen, after.admin_listen, after.peers) == ("127.0.0.1:1", "127.0.0.1:2", ())


@pytest.mark.slow
def test_up_with_tls_runs_the_scenario_over_mutual_tls(tmp_path: Path) -> None:
    """`up --tls`: every node serves mutual TLS; the cluster's own commands (readiness, the
    scenario, status) talk TLS, and a client without a certificate is refused."""
    from pausenet.client import OversightClient
    from pausenet.errors import NodeError

    d = tmp_path / "fed"
    up = cluster("up", "--labs", "2", "--overseers", "0", "--tls", "--dir", str(d))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert (d / "tls" / "ca.crt").is_file()
        for config in sorted((d / "node_configs").glob("*.toml")):
            assert "[tls]" in config.read_text(), config
        sc = cluster("scenario", "--dir", str(d))
        assert sc.returncode == 0, sc.stdout + sc.stderr
        assert "PAUSED on all 2 nodes" in sc.stdout
        assert "--tls-ca" in sc.stdout  # the hint at the end names the TLS files
        status = cluster("status", "--dir", str(d), "--json")
        assert status.returncode == 0, status.stderr
        assert {r["state"] for r in json.loads(status.stdout)["nodes"]} == {"NOT_PAUSED"}
        address = nodes_of(d)["lab-a"]["address"]

        async def plain() -> None:
            async with OversightClient(address, timeout=3.0) as c:
                await c.get_view()

        with pytest.raises(NodeError):
            asyncio.run(plain())
    finally:
        down = cluster("down", "--dir", str(d))
    assert down.returncode == 0, down.stdout + down.stderr
