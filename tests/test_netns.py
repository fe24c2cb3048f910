"""Hosts apart: every node in its own network namespace with its own address on a bridge, TLS on,
no loopback shortcuts. The federation pauses and lifts, survives a partition (a cable pulled at
the switch) and its healing, and a kill -9 of one node.

The test makes everything it uses and removes it at the end, even on failure: a "switch"
namespace holding a bridge, one namespace per node and one for an observer, each joined to the
bridge by a veth pair. Addresses are in 10.250.0.0/24 inside those namespaces only; the host's
own namespace has no interface or route there, so no packet of this test leaves them. Linux and
root only (skipped with the reason elsewhere); .ci/run installs iproute2.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from netutil import set_heartbeat_ttl

from pausenet.errors import ConfigError
from pausenet.node.config import load_config
from pausenet.node.tls import make_test_ca
from pausenet.ops.federation import Federation, init_federation

SUBNET = "10.250.0"  # /24, inside this test's namespaces only
OBSERVER_ADDRESS = f"{SUBNET}.200"
PORT = 7400
DEADLINE_S = 90.0  # a loaded two-core machine; partitions wait out the TTL and peer backoff
HEARTBEAT_TTL_S = 8
IP = shutil.which("ip") or "ip"


# -- certificates for hosts apart (no root needed) --------------------------------------------


def test_test_certificates_can_name_extra_hosts(tmp_path: Path) -> None:
    from cryptography import x509

    made = make_test_ca(tmp_path, ["lab-a"], hosts=["10.250.0.1", "node-a.test"])
    cert = x509.load_pem_x509_certificate(made["lab-a"].cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "::1",
        "10.250.0.1",
    }
    assert set(san.get_values_for_type(x509.DNSName)) == {"localhost", "node-a.test"}


def test_a_bad_extra_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--host 'not a host': give an IP address or a DNS"):
        make_test_ca(tmp_path, ["lab-a"], hosts=["not a host"])


# -- the network ------------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)}: {out.stderr.strip()}")
    return out


def _why_not_here() -> str | None:
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "ip not installed (Debian package iproute2; .ci/run installs it)"
    probe = f"pnprobe{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


class Net:
    """A bridge in a switch namespace and one namespace per host, each with a cable (veth) to
    it. `close` deletes every namespace it made (and with them the bridge and the cables)."""

    def __init__(self) -> None:
        self.prefix = f"pn{os.getpid() % 100_000}{secrets.token_hex(2)}"
        self.namespaces: list[str] = []
        self.switch = self._namespace("sw")
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        self.hosts: dict[str, tuple[str, str]] = {}  # name -> (namespace, cable at the switch)

    def _namespace(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        return ns

    def add_host(self, name: str, address: str) -> str:
        ns = self._namespace(name)
        cable = f"v{len(self.hosts)}"
        _ip("-n", self.switch, "link", "add", cable, "type", "veth", "peer", "eth0", "netns", ns)
        _ip("-n", self.switch, "link", "set", cable, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")  # each node's admin API is on its own loopback
        self.hosts[name] = (ns, cable)
        return ns

    def cable(self, name: str, *, up: bool) -> None:
        """Plug a host's cable into the switch, or pull it."""
        _ip("-n", self.switch, "link", "set", self.hosts[name][1], "up" if up else "down")

    def run_in(self, name: str, *cmd: str) -> list[str]:
        return [IP, "netns", "exec", self.hosts[name][0], *cmd]

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            # anything still running in it was started by this test
            pids = _ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()


@pytest.fixture
def net() -> Iterator[Net]:
    why = _why_not_here()
    if why is not None:
        pytest.skip(why)
    n = Net()
    try:
        yield n
    finally:
        n.close()
        left = _ip("netns", "list").stdout
        assert n.prefix not in left, f"namespaces left behind: {left}"


# -- the federation ---------------------------------------------------------------------------


class Hosts:
    """One `pausenet run` per member, each in its member's namespace; an observer process in
    its own namespace polls every node's view over TLS and keeps the latest answers."""

    def __init__(self, net: Net, fed: Federation, addresses: dict[str, str]) -> None:
        self.net = net
        self.fed = fed
        self.addresses = addresses  # member -> host:port
        self.procs: dict[str, subprocess.Popen[str]] = {}
        self.logs = fed.dir / "logs"
        self.logs.mkdir()
        self.latest: dict[str, dict[str, Any]] = {}
        self.observer: subprocess.Popen[str] | None = None

    def config(self, member: str) -> Path:
        return self.fed.dir / "node_configs" / f"{member}.toml"

    def pausenet(self, member: str, *args: str) -> list[str]:
        return self.net.run_in(member, sys.executable, "-m", "pausenet", *args)

    def start(self, member: str) -> None:
        with (self.logs / f"{member}.log").open("a") as log:
            proc = subprocess.Popen(
                self.pausenet(member, "run", "--config", str(self.config(member))),
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.procs[member] = proc
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], DEADLINE_S)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith(f"node {member} ready:"), (
            f"{member} not ready: {line!r}\n{self.log(member)}"
        )

    def log(self, member: str) -> str:
        return (self.logs / f"{member}.log").read_text(encoding="utf-8")[-3000:]

    def kill9(self, member: str) -> None:
        proc = self.procs.pop(member)
        proc.send_signal(signal.SIGKILL)  # `ip netns exec` execs: this is the node itself
        proc.wait(timeout=30)

    def act(self, member: str, *args: str) -> None:
        """A lab's operator on the node's host: vote or attest through its admin API."""
        out = subprocess.run(
            self.pausenet(member, *args, "--config", str(self.config(member))),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, f"{member} {' '.join(args)}: {out.stderr}"

    def status_from_own_host(self, member: str) -> dict[str, Any]:
        """A partitioned node's answer, asked on its own host (the observer cannot reach it)."""
        tls = self.fed.dir / "tls"
        out = subprocess.run(
            self.pausenet(
                member,
                "--tls-ca",
                str(tls / "ca.crt"),
                "--tls-cert",
                str(tls / f"{member}.crt"),
                "--tls-key",
                str(tls / f"{member}.key"),
                "status",
                "--node",
                self.addresses[member],
                "--json",
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc

    def start_observer(self) -> None:
        tls = self.fed.dir / "tls"
        self.observer = subprocess.Popen(
            self.net.run_in(
                "observer",
                sys.executable,
                "-c",
                OBSERVER,
                str(tls / "ca.crt"),
                str(tls / "overseer-a.crt"),
                str(tls / "overseer-a.key"),
                *(f"{m}={a}" for m, a in self.addresses.items()),
            ),
            stdout=subprocess.PIPE,
            stderr=(self.logs / "observer.log").open("w"),
            text=True,
        )
        threading.Thread(target=self._follow, args=(self.observer,), daemon=True).start()

    def _follow(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.latest = json.loads(line)

    def until(self, what: str, pred: Callable[[dict[str, dict[str, Any]]], bool]) -> None:
        end = time.monotonic() + DEADLINE_S
        while time.monotonic() < end:
            if self.latest and pred(self.latest):
                return
            time.sleep(0.2)
        raise AssertionError(f"not true within {DEADLINE_S:g}s: {what}; last seen {self.latest}")

    def all_say(self, state: str, epoch: int, members: list[str] | None = None) -> None:
        who = members or list(self.addresses)

        def ok(seen: dict[str, dict[str, Any]]) -> bool:
            return all(seen[m].get("state") == state and seen[m].get("epoch") == epoch for m in who)

        self.until(f"{', '.join(who)} say {state} epoch {epoch}", ok)

    def close(self) -> None:
        for proc in [*self.procs.values(), *([self.observer] if self.observer else [])]:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)


# Runs in the observer's namespace: every 0.3 s, each node's answer as one JSON line.
OBSERVER = """
import asyncio, json, sys
from pathlib import Path
from pausenet.client import OversightClient
from pausenet.core.payload import pause_state_from_pb
from pausenet.node.tls import client_tls

async def ask(address, tls):
    try:
        async with OversightClient(address, timeout=2.0, tls=tls) as c:
            r = await c.get_view()
    except Exception as exc:
        return {"error": str(exc)[:200]}
    return {
        "state": pause_state_from_pb(r.state),
        "epoch": r.epoch,
        "by": r.answered_by,
        "fresh": sorted(m.id for m in r.members if m.fresh),
        "addresses": {m.id: m.address for m in r.members},
    }

async def main():
    ca, cert, key, *targets = sys.argv[1:]
    tls = client_tls(Path(ca), Path(cert), Path(key))
    nodes = dict(t.split("=", 1) for t in targets)
    while True:
        answers = await asyncio.gather(*(ask(a, tls) for a in nodes.values()))
        print(json.dumps(dict(zip(nodes, answers))), flush=True)
        await asyncio.sleep(0.3)

asyncio.run(main())
"""


def _federation(tmp_path: Path, addresses: dict[str, str]) -> Federation:
    fed = init_federation(tmp_path / "fed", 3, 1)
    set_heartbeat_ttl(fed.charter_path, HEARTBEAT_TTL_S)
    hosts = [a.rsplit(":", 1)[0] for a in addresses.values()]
    tls = subprocess.run(
        [sys.executable, "-m", "pausenet", "tls", "init", "--federation", str(fed.dir)]
        + [arg for h in hosts for arg in ("--host", h)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tls.returncode == 0, tls.stderr
    for m in fed.members:
        path = fed.dir / "node_configs" / f"{m.id}.toml"
        lines = path.read_text(encoding="utf-8").splitlines()
        others = [a for o, a in addresses.items() if o != m.id]
        out, skipping = [], False
        for line in lines:
            if skipping:  # the rest of the peers list
                skipping = not line.startswith("]")
                continue
            if line.startswith("listen ="):
                line = f'listen = "{addresses[m.id]}"'
            elif line.startswith("admin_listen ="):
                line = 'admin_listen = "127.0.0.1:7401"'
            elif line.startswith("peers ="):
                line, skipping = f"peers = {json.dumps(others)}", not line.endswith("]")
            out.append(line)
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        cfg = load_config(path)  # what the node will run with
        assert cfg.tls is not None
        assert cfg.listen == addresses[m.id]
        assert set(cfg.peers) == set(others)
    return fed


@pytest.mark.slow
def test_hosts_apart_pause_lift_partition_heal_and_kill_9(tmp_path: Path, net: Net) -> None:
    members = ["lab-a", "lab-b", "lab-c", "overseer-a"]
    addresses = {m: f"{SUBNET}.{i + 1}:{PORT}" for i, m in enumerate(members)}
    for m, a in addresses.items():
        net.add_host(m, a.rsplit(":", 1)[0])
    net.add_host("observer", OBSERVER_ADDRESS)
    fed = _federation(tmp_path, addresses)
    hosts = Hosts(net, fed, addresses)
    try:
        for m in members:
            hosts.start(m)
        hosts.start_observer()

        def everyone_fresh_at_their_addresses(seen: dict[str, dict[str, Any]]) -> bool:
            return all(
                seen[m].get("fresh") == members and seen[m].get("addresses") == addresses
                for m in members
            )

        # no loopback shortcuts: every node knows every other at its own host's address
        hosts.until("every node sees every member fresh", everyone_fresh_at_their_addresses)
        hosts.all_say("NOT_PAUSED", 0)

        # pause -> lift
        hosts.act("lab-a", "attest", "trigger", "--trigger", "rsi-detected")
        for m in ("lab-a", "lab-b"):
            hosts.act(m, "vote", "pause", "--trigger", "rsi-detected")
        hosts.all_say("PAUSED", 1)
        for m in ("lab-a", "lab-b", "overseer-a"):
            hosts.act(m, "vote", "lift")
        hosts.all_say("NOT_PAUSED", 1)

        # a partition: lab-c's cable is pulled; the others still prove their answer without it
        net.cable("lab-c", up=False)
        rest = ["lab-a", "lab-b", "overseer-a"]
        hosts.until(
            "the others see lab-c stale",
            lambda seen: all("lab-c" not in seen[m].get("fresh", ["lab-c"]) for m in rest),
        )
        hosts.until("lab-c unreachable", lambda seen: "error" in seen["lab-c"])
        for m in ("lab-a", "lab-b"):
            hosts.act(m, "vote", "pause", "--trigger", "rsi-detected")
        hosts.all_say("PAUSED", 2, rest)
        # cut off, lab-c cannot prove anything: it says UNKNOWN, never "not paused"
        deadline = time.monotonic() + DEADLINE_S
        while (alone := hosts.status_from_own_host("lab-c"))["state"] != "UNKNOWN":
            assert time.monotonic() < deadline, f"lab-c alone says {alone['state']}"
            time.sleep(1)
        assert alone["certified_state"] == "NOT_PAUSED"

        # heal: lab-c catches up with the pause it missed
        net.cable("lab-c", up=True)
        hosts.all_say("PAUSED", 2)
        hosts.until("every member fresh again", everyone_fresh_at_their_addresses)

        # kill -9 one node: the pause stands (one lab cannot lift it); back, it catches up
        hosts.kill9("lab-b")
        hosts.until(
            "the others see lab-b stale",
            lambda seen: all(
                "lab-b" not in seen[m].get("fresh", ["lab-b"]) for m in members if m != "lab-b"
            ),
        )
        hosts.all_say("PAUSED", 2, ["lab-a", "lab-c", "overseer-a"])
        hosts.start("lab-b")
        hosts.until("every member fresh after the restart", everyone_fresh_at_their_addresses)
        hosts.all_say("PAUSED", 2)
        for m in ("lab-a", "lab-b", "overseer-a"):  # the restarted node signs again
            hosts.act(m, "vote", "lift")
        hosts.all_say("NOT_PAUSED", 2)
    except BaseException:
        for m in members:
            print(f"--- {m} log ---\n{hosts.log(m)}")
        raise
    finally:
        hosts.close()
