"""The command line against running nodes: `pausenet run`, vote, attest, status, log, view, verify.

Nodes run as real `pausenet run` subprocesses on 127.0.0.1 with OS-chosen ports (the CLI finds
their admin addresses in <data_dir>/node.json); the client commands run in this process.
"""

from __future__ import annotations

import hashlib
import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import Cli, CliResult, node_command, one_line_error, run_command

from pausenet.ops.federation import Federation, init_federation

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
CONVERGE_TIMEOUT_S = 20.0


# -- nodes as subprocesses --------------------------------------------------------------------


def write_config(
    fed_dir: Path,
    member: str,
    *,
    peers: tuple[str, ...] = (),
    listen: str = "127.0.0.1:0",
    admin_listen: str = "127.0.0.1:0",
    name: str | None = None,
    extra: str = "",
) -> Path:
    path = fed_dir / "node_configs" / f"{name or member}.toml"
    path.write_text(
        f'member_id = "{member}"\n'
        'charter = "../charter.toml"\n'
        f'key = "../keys/{member}.key"\n'
        f'data_dir = "../data/{member}"\n'
        f'listen = "{listen}"\n'
        f'admin_listen = "{admin_listen}"\n'
        f"peers = {json.dumps(list(peers))}\n" + extra
    )
    return path


@dataclass
class RunningNode:
    member: str
    config: Path
    proc: subprocess.Popen[str]
    ready: str
    stderr_path: Path
    address: str = ""
    admin_address: str = ""

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise


def start_node(config: Path, member: str, *extra: str) -> RunningNode:
    err = config.with_suffix(f".{time.monotonic_ns()}.err")
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            node_command(config, *extra), stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
    if not ready:
        proc.kill()
        proc.wait(timeout=5)
        pytest.fail(f"{member} did not get ready in {START_TIMEOUT_S}s: {err.read_text()}")
    line = proc.stdout.readline()
    if not line:
        code = proc.wait(timeout=5)
        pytest.fail(f"{member} exited ({code}) before it was ready: {err.read_text()}")
    node = RunningNode(member, config, proc, line.strip(), err)
    info = json.loads((config.parent.parent / "data" / member / "node.json").read_text())
    node.address, node.admin_address = info["address"], info["admin_address"]
    return node


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Cluster:
    fed: Federation
    dir: Path
    nodes: dict[str, RunningNode]

    @property
    def charter(self) -> Path:
        return self.fed.charter_path

    def config(self, member: str) -> Path:
        return self.nodes[member].config

    def address(self, member: str) -> str:
        return self.nodes[member].address


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three labs and an overseer, each a `pausenet run` process; pause and lift need two labs
    (a lift also one overseer). lab-a starts first; the others find each other through it."""
    d = tmp_path_factory.mktemp("cluster") / "fed"
    fed = init_federation(d, 3, 1)
    nodes: dict[str, RunningNode] = {}
    try:
        nodes["lab-a"] = start_node(write_config(d, "lab-a"), "lab-a")
        seed = (nodes["lab-a"].address,)
        for m in ("lab-b", "lab-c", "overseer-a"):
            nodes[m] = start_node(write_config(d, m, peers=seed), m)
        yield Cluster(fed, d, nodes)
    finally:
        for n in nodes.values():
            if n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        for n in nodes.values():
            try:
                code = n.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait(timeout=5)
                code = -9
            assert code == 0, n.stderr()
            assert "Traceback" not in n.stderr()


def status_json(cli: Cli, address: str, *extra: object) -> dict[str, Any]:
    r = cli("status", "--node", address, "--json", *extra)
    assert r.code == 0, r
    doc: dict[str, Any] = json.loads(r.out)
    return doc


def wait_for_state(
    cli: Cli, address: str, state: str, epoch: int, *, synced: int = 4
) -> dict[str, Any]:
    """Poll status --json until the node says `state` for `epoch` with `synced` members synced."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = status_json(cli, address)
        if (
            doc["state"] == state
            and doc["epoch"] == epoch
            and sum(1 for m in doc["members"] if m["synced"]) >= synced
        ):
            return doc
        time.sleep(0.1)
    pytest.fail(f"{address} did not reach {state} epoch {epoch}: {doc}")


SIGNED = re.compile(
    r"signed (?P<member>[a-z0-9-]+)#(?P<seq>\d+): (?P<what>.+) \(hash [0-9a-f]{8}…\)"
)


def signed(r: CliResult) -> re.Match[str]:
    assert r.code == 0, r
    m = SIGNED.fullmatch(r.out.strip().splitlines()[-1])
    assert m is not None, r.out
    return m


# -- pausenet run -----------------------------------------------------------------------------


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return init_federation(tmp_path / "fed", 2, 0)


def test_run_prints_ready_writes_node_json_and_stops_cleanly_on_sigterm(fed: Federation) -> None:
    config = write_config(fed.dir, "lab-a")
    node = start_node(config, "lab-a")
    assert node.ready.startswith("node lab-a ready:")
    assert node.address in node.ready
    assert node.admin_address in node.ready
    node_file = fed.dir / "data" / "lab-a" / "node.json"
    info = json.loads(node_file.read_text())
    assert info["member"] == "lab-a"
    assert info["pid"] == node.proc.pid
    assert re.fullmatch(r"127\.0\.0\.1:\d+", info["address"])
    assert re.fullmatch(r"127\.0\.0\.1:\d+", info["admin_address"])
    assert not info["address"].endswith(":0")

    assert node.stop(signal.SIGTERM) == 0
    err = node.stderr()
    assert "Traceback" not in err
    assert "received SIGTERM; stopping" in err
    assert "node lab-a stopped" in err
    assert "shut down cleanly" in err
    assert "still running at exit" not in err  # no task left behind
    assert not node_file.exists()
    # every line reads: time, level, logger, message
    line_re = re.compile(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARNING|ERROR) \S+  .+"
    )
    for line in err.splitlines():
        assert line_re.fullmatch(line), line


def test_run_with_json_logs_and_sigint(fed: Federation) -> None:
    config = write_config(fed.dir, "lab-b")
    node = start_node(config, "lab-b", "--log-format", "json", "--log-level", "debug")
    ready = json.loads(node.ready)
    assert ready["event"] == "ready"
    assert (ready["member"], ready["address"], ready["admin_address"]) == (
        "lab-b",
        node.address,
        node.admin_address,
    )
    assert node.stop(signal.SIGINT) == 0
    records = [json.loads(line) for line in node.stderr().splitlines()]
    assert records
    for rec in records:
        assert {"ts", "level", "logger", "msg", "member"} <= set(rec), rec
        assert rec["member"] == "lab-b"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"])
    msgs = [r["msg"] for r in records]
    assert any(m.startswith("node lab-b up:") for m in msgs)
    assert "received SIGINT; stopping" in msgs
    assert msgs[-1] == "node lab-b shut down cleanly"
    assert {r["level"] for r in records} <= {"DEBUG", "INFO"}


def test_run_with_a_bad_config_is_one_line_and_exit_2(fed: Federation, tmp_path: Path) -> None:
    one_line_error(run_command(node_command(tmp_path / "missing.toml")), "config file not found")
    bad = write_config(fed.dir, "lab-a", extra='colour = "blue"\n')
    one_line_error(run_command(node_command(bad)), "colour", "unknown key")
    wrong_key = write_config(fed.dir, "lab-a", name="wrong-key")
    wrong_key.write_text(wrong_key.read_text().replace("keys/lab-a.key", "keys/lab-b.key"))
    one_line_error(run_command(node_command(wrong_key)), "key")
    good = write_config(fed.dir, "lab-a")
    one_line_error(run_command(node_command(good, "--log-format", "xml")), "--log-format")


def test_run_fails_in_one_line_when_the_port_or_the_data_dir_is_taken(fed: Federation) -> None:
    first = start_node(write_config(fed.dir, "lab-a"), "lab-a")
    try:
        clash = write_config(fed.dir, "lab-b", listen=first.address, name="lab-b-clash")
        one_line_error(run_command(node_command(clash)), "cannot listen", first.address)
        # another node on the same data dir (new ports) would sign blind to the first's log
        twin = write_config(fed.dir, "lab-a", name="lab-a-twin")
        one_line_error(
            run_command(node_command(twin)), "in use by another node", f"pid {first.proc.pid}"
        )
        info = json.loads((fed.dir / "data" / "lab-a" / "node.json").read_text())
        assert info["pid"] == first.proc.pid
    finally:
        assert first.stop() == 0


def test_run_refuses_a_store_made_for_another_charter(fed: Federation, tmp_path: Path) -> None:
    node = start_node(write_config(fed.dir, "lab-a"), "lab-a")
    assert node.stop() == 0
    other = init_federation(tmp_path / "other", 2, 0)
    config = write_config(other.dir, "lab-a")
    config.write_text(
        config.read_text().replace(
            'data_dir = "../data/lab-a"', f'data_dir = "{fed.dir / "data" / "lab-a"}"'
        )
    )
    one_line_error(
        run_command(node_command(config)), "was created for charter", "use a new data dir"
    )


# -- admin commands: refusals and failures --------------------------------------------------


def test_admin_commands_need_a_running_node(cli: Cli, fed: Federation) -> None:
    config = write_config(fed.dir, "lab-a")  # admin_listen port 0 and no node.json
    one_line_error(cli("vote", "lift", "--config", config), "not running", "port 0")
    (fed.dir / "data" / "lab-a").mkdir(parents=True)
    token = fed.dir / "data" / "lab-a" / "admin.token"
    token.write_text("x" * 43 + "\n")
    token.chmod(0o600)
    closed = f"127.0.0.1:{free_port()}"
    config = write_config(fed.dir, "lab-a", admin_listen=closed)
    line = one_line_error(
        cli("vote", "pause", "--config", config, "--trigger", "rsi-detected"), "unreachable"
    )
    assert closed in line


def test_a_stale_node_json_is_ignored(cli: Cli, fed: Federation) -> None:
    data = fed.dir / "data" / "lab-a"
    data.mkdir(parents=True)
    token = data / "admin.token"
    token.write_text("x" * 43 + "\n")
    token.chmod(0o600)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    (data / "node.json").write_text(
        json.dumps({"member": "lab-a", "address": "x:1", "admin_address": "x:1", "pid": dead.pid})
    )
    closed = f"127.0.0.1:{free_port()}"
    config = write_config(fed.dir, "lab-a", admin_listen=closed)
    one_line_error(cli("vote", "lift", "--config", config), "unreachable", closed)


def test_status_of_an_unreachable_node(cli: Cli) -> None:
    address = f"127.0.0.1:{free_port()}"
    for args in (["status"], ["status", "--json"], ["log", "--member", "lab-a"]):
        one_line_error(cli(*args, "--node", address), "unreachable", address)
    one_line_error(cli("status", "--node", "nonsense"), "--node")


@pytest.mark.slow
def test_refused_votes_say_why_in_one_line(cli: Cli, cluster: Cluster) -> None:
    lab_a = cluster.config("lab-a")
    one_line_error(
        cli("vote", "pause", "--config", lab_a, "--trigger", "no-such-trigger"),
        "refused",
        "unknown trigger 'no-such-trigger'",
    )
    one_line_error(cli("vote", "lift", "--config", lab_a), "refused", "no pause is in effect")
    one_line_error(
        cli("vote", "pause", "--config", lab_a, "--trigger", "rsi-detected", "--epoch", 7),
        "refused",
        "wrong epoch 7",
    )
    one_line_error(
        cli("attest", "trigger", "--config", lab_a, "--trigger", "nope"), "unknown trigger"
    )
    one_line_error(
        cli("attest", "compliance", "--config", cluster.config("overseer-a"), "--state", "halted"),
        "only labs",
    )
    one_line_error(cli("attest", "compliance", "--config", lab_a, "--state", "sleepy"), "--state")


@pytest.mark.slow
def test_a_wrong_admin_token_is_refused(cli: Cli, cluster: Cluster) -> None:
    wrong = cluster.dir / "wrong.token"
    wrong.write_text("y" * 43 + "\n")
    wrong.chmod(0o600)
    config = write_config(
        cluster.dir, "lab-a", name="lab-a-wrong-token", extra=f'admin_token = "{wrong}"\n'
    )
    one_line_error(
        cli("attest", "trigger", "--config", config, "--trigger", "rsi-detected"),
        "refused",
        "wrong admin token",
    )


@pytest.mark.slow
def test_stats_shows_counters_and_peer_scores(cli: Cli, cluster: Cluster) -> None:
    r = cli("stats", "--config", cluster.config("lab-a"), "--json")
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    assert doc["member"] == "lab-a"
    assert doc["counters"].get("gossip.rounds", 0) >= 1
    assert set(doc["peer_scores"]) == {"lab-a", "lab-b", "lab-c", "overseer-a"}
    human = cli("stats", "--config", cluster.config("lab-a"))
    assert human.code == 0
    assert "gossip.rounds" in human.out


# -- a pause and its lift, through the CLI --------------------------------------------------


@pytest.mark.slow
def test_pause_attest_verify_and_lift(cli: Cli, cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    watcher = c.address("lab-c")
    doc = wait_for_state(cli, watcher, "NOT_PAUSED", 0)
    assert {m["id"]: m["role"] for m in doc["members"]} == {
        "lab-a": "lab",
        "lab-b": "lab",
        "lab-c": "lab",
        "overseer-a": "overseer",
    }
    assert all({"head_seq", "fresh"} <= set(m) for m in doc["members"])

    # a trigger attestation sends only the evidence file's hash
    evidence = tmp_path / "eval-report.txt"
    evidence.write_bytes(b"the model improved itself overnight\n" * 1000)
    r = cli(
        "attest", "trigger", "--config", c.config("lab-a"), "--trigger", "rsi-detected",
        "--evidence", evidence,
    )  # fmt: skip
    assert signed(r)["what"].startswith("trigger rsi-detected, evidence sha256")
    assert hashlib.sha256(evidence.read_bytes()).hexdigest() in r.err

    m = signed(
        cli("vote", "pause", "--config", c.config("lab-a"), "--trigger", "rsi-detected",
            "--note", "see the report")
    )  # fmt: skip
    assert (m["member"], m["seq"]) == ("lab-a", "2")
    assert m["what"] == "vote PAUSE epoch 1 (rsi-detected): see the report"
    m = signed(cli("vote", "pause", "--config", c.config("lab-b"), "--trigger", "rsi-detected"))
    assert (m["member"], m["seq"], m["what"]) == ("lab-b", "1", "vote PAUSE epoch 1 (rsi-detected)")

    doc = wait_for_state(cli, watcher, "PAUSED", 1)
    assert doc["as_of"] is not None
    assert {x["id"]: x["head_seq"] for x in doc["members"]}["lab-a"] == 2
    assert [(x["epoch"], x["decision"]) for x in doc["certificates"]] == [(1, "pause")]

    # the human view and the view checked against the charter
    r = cli("status", "--node", watcher, "--charter", c.charter)
    assert r.code == 0, r
    assert "PAUSED" in r.out
    assert f"verified against charter {c.fed.charter.digest_hex[:16]}" in r.out
    verified = status_json(cli, watcher, "--charter", c.charter)["verified"]
    assert verified == {
        "charter_digest": c.fed.charter.digest_hex,
        "ok": True,
        "problems": [],
        "signed_by": "lab-c",
    }

    # lab-a's own node must know of the pause (lab-b's vote reaches it by gossip) to attest for it
    wait_for_state(cli, c.address("lab-a"), "PAUSED", 1)
    m = signed(cli("attest", "compliance", "--config", c.config("lab-a"), "--state", "halted"))
    assert m["what"] == "compliance halted epoch 1"

    # the log, checked against the charter and not
    r = cli("log", "--node", watcher, "--member", "lab-a", "--json", "--charter", c.charter)
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while len(json.loads(r.out)["statements"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        r = cli("log", "--node", watcher, "--member", "lab-a", "--json", "--charter", c.charter)
    log = json.loads(r.out)
    assert log["verified"] is True
    assert [(s["seq"], s["kind"], s["problem"]) for s in log["statements"]] == [
        (1, "trigger", None),
        (2, "vote", None),
        (3, "compliance", None),
    ]
    r = cli("log", "--node", watcher, "--member", "lab-a", "--from", 2, "--limit", 1)
    assert r.code == 0, r
    assert "unverified" in r.out
    assert "PAUSE epoch 1" in r.out
    assert "halted" not in r.out

    # a signed answer, saved and checked offline
    bundle = tmp_path / "bundle.json"
    nonce = "ab" * 32
    r = cli("view", "--node", c.address("lab-b"), "--nonce", nonce, "--out", bundle)
    assert r.code == 0, r
    saved = json.loads(bundle.read_text())
    assert saved["nonce"] == nonce
    assert saved["answer"]["signatures"][0]["keyid"] == "lab-b"
    r = cli("verify", "--charter", c.charter, bundle)
    assert r.code == 0, r
    assert re.search(r"answer signed by lab-b: VALID \(PAUSED, epoch 1, as of \d{4}-", r.out)
    doc = json.loads(cli("verify", "--charter", c.charter, bundle, "--json").out)
    assert doc["answer"]["valid"] is True
    assert (doc["state"], doc["answer"]["state"]) == ("PAUSED", "PAUSED")

    # ... for someone else's nonce: invalid
    r = cli("verify", "--charter", c.charter, bundle, "--nonce", "cd" * 32)
    assert r.code == 1, r
    assert "another nonce" in r.out

    # ... with a vote dropped from its proof: invalid, and says so
    votes = [
        i
        for i, e in enumerate(saved["envelopes"])
        if e["payloadType"].endswith("statement.v1+protobuf")
    ]
    tampered = dict(saved, envelopes=[e for i, e in enumerate(saved["envelopes"]) if i != votes[0]])
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    r = cli("verify", "--charter", c.charter, bad)
    assert r.code == 1, r
    assert "answer signed by lab-b: INVALID" in r.out
    assert "proof does not match the answer: 1 missing" in r.out

    # lift: two labs and the overseer
    for member in ("lab-a", "lab-b", "overseer-a"):
        m = signed(cli("vote", "lift", "--config", c.config(member), "--note", "fixed"))
        assert m["what"] == "vote LIFT epoch 1: fixed"
    doc = wait_for_state(cli, watcher, "NOT_PAUSED", 1)
    assert [(x["epoch"], x["decision"]) for x in doc["certificates"]] == [
        (1, "pause"),
        (1, "lift"),
    ]
    one_line_error(cli("vote", "lift", "--config", c.config("lab-c")), "no pause is in effect")


@pytest.mark.slow
def test_status_watch_json_prints_a_line_per_change_and_stops_quietly_on_ctrl_c(
    cluster: Cluster,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pausenet", "status", "--node", cluster.address("lab-a"),
         "--watch", "--json", "--charter", str(cluster.charter)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell starts background jobs with SIGINT ignored, and children inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        assert ready, "no update from --watch"
        first = json.loads(proc.stdout.readline())
        assert first["state"] in ("PAUSED", "NOT_PAUSED", "UNKNOWN")
        assert first["verified"]["ok"] is True
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=STOP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, err
    assert err == ""
    for line in out.splitlines():
        json.loads(line)
