"""The systemd notify protocol (pausenet.node.sdnotify), against a datagram socket the test listens
on: the module's messages, path and abstract sockets, the watchdog, and `pausenet run` under a
NOTIFY_SOCKET: READY=1 once it serves, WATCHDOG=1 while it runs, STOPPING=1 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pausenet.client import OversightClient
from pausenet.node.sdnotify import Notifier, Supervisor
from pausenet.ops.federation import init_federation

DEADLINE_S = 30.0


class Listener:
    """A bound AF_UNIX datagram socket, as systemd's manager holds one."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value  # what NOTIFY_SOCKET would say

    def receive(self, timeout: float = DEADLINE_S) -> list[str]:
        """The next datagram, split into its KEY=VALUE lines."""
        ready, _, _ = select.select([self.sock], [], [], timeout)
        assert ready, f"no notify message within {timeout:g}s"
        return self.sock.recv(4096).decode("utf-8").split("\n")

    def receive_until(self, field: str, timeout: float = DEADLINE_S) -> list[list[str]]:
        """Messages up to and including the first that carries `field`."""
        got: list[list[str]] = []
        end = time.monotonic() + timeout
        while not got or field not in got[-1]:
            left = end - time.monotonic()
            assert left > 0, f"no {field} within {timeout:g}s; got {got}"
            got.append(self.receive(left))
        return got

    def pending(self) -> list[list[str]]:
        out = []
        while select.select([self.sock], [], [], 0)[0]:
            out.append(self.sock.recv(4096).decode("utf-8").split("\n"))
        return out


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[Listener]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    with sock:
        yield Listener(sock, str(path))


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = f"pausenet-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    with sock:
        yield Listener(sock, "@" + name)


# -- the protocol -----------------------------------------------------------------------------


def test_ready_and_stopping_with_a_status_go_to_a_path_socket(listener: Listener) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": listener.env_value})
    assert n.enabled
    assert n.ready("serving on 127.0.0.1:7400")
    assert listener.receive() == ["READY=1", "STATUS=serving on 127.0.0.1:7400"]
    assert n.stopping()
    assert listener.receive() == ["STOPPING=1"]


def test_an_abstract_socket_is_named_with_an_at_sign(abstract_listener: Listener) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": abstract_listener.env_value})
    assert n.status("loading")
    assert abstract_listener.receive() == ["STATUS=loading"]


def test_without_notify_socket_nothing_is_sent() -> None:
    n = Notifier.from_env({})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert not n.ready()
    assert not n.stopping()


def test_an_unreachable_socket_is_logged_once_and_never_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "absent.sock")})
    with caplog.at_level(logging.WARNING, logger="pausenet.node"):
        assert not n.ready()
        assert not n.notify("WATCHDOG=1")
    assert [r.getMessage() for r in caplog.records] == [
        f"cannot notify systemd at {tmp_path / 'absent.sock'}: No such file or directory"
    ]


def test_a_notify_socket_that_is_no_unix_path_is_not_used() -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.ready()


def test_the_watchdog_interval_is_half_watchdog_usec_for_this_process_only() -> None:
    base = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(base).watchdog_interval_s == 15.0
    mine = Notifier.from_env({**base, "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval_s == 15.0
    assert Notifier.from_env({**base, "WATCHDOG_PID": "1"}).watchdog_interval_s is None
    assert Notifier.from_env({**base, "WATCHDOG_USEC": "0"}).watchdog_interval_s is None
    assert Notifier.from_env({**base, "WATCHDOG_USEC": "soon"}).watchdog_interval_s is None


async def test_supervisor_pings_the_watchdog_while_healthy_and_says_stopping(
    listener: Listener,
) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "40000"})
    healthy = True
    sup = Supervisor.start(lambda: healthy, status="up", notifier=n)
    assert listener.receive() == ["READY=1", "STATUS=up"]
    pings = await asyncio.to_thread(listener.receive_until, "WATCHDOG=1")
    assert pings[-1] == ["WATCHDOG=1"]
    assert await asyncio.to_thread(listener.receive) == ["WATCHDOG=1"]  # and again

    healthy = False  # a node that can no longer decide is left to the watchdog
    await asyncio.sleep(0.1)
    listener.pending()
    await asyncio.sleep(0.2)  # several intervals
    assert listener.pending() == []

    await sup.stop()
    await sup.stop()  # idempotent
    assert listener.receive() == ["STOPPING=1", "STATUS=stopping"]
    assert listener.pending() == []


# -- pausenet run under a NOTIFY_SOCKET ---------------------------------------------------------


def test_pausenet_run_notifies_ready_once_serving_watchdog_and_stopping(
    tmp_path: Path, listener: Listener
) -> None:
    fed = init_federation(tmp_path / "fed", 2, 0)
    config = fed.members[0].config_path
    env = {**os.environ, "NOTIFY_SOCKET": listener.env_value, "WATCHDOG_USEC": "200000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pausenet", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = listener.receive()
        assert first[0] == "READY=1", first
        # ready means serving: the node answers on the address it wrote down
        info = json.loads((fed.dir / "data" / "lab-a" / "node.json").read_text())
        assert first[1] == f"STATUS=serving on {info['address']}"

        async def ask() -> str:
            async with OversightClient(info["address"]) as c:
                return (await c.get_view()).answered_by

        assert asyncio.run(ask()) == "lab-a"
        pings = listener.receive_until("WATCHDOG=1")
        assert listener.receive() == ["WATCHDOG=1"]
        assert all("READY=1" not in m for m in pings)

        proc.send_signal(signal.SIGTERM)
        last = listener.receive_until("STOPPING=1")
        assert last[-1] == ["STOPPING=1", "STATUS=stopping"]
        assert proc.wait(timeout=DEADLINE_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=10)
    assert "Traceback" not in err
    assert "still running at exit" not in err
    assert "cannot notify" not in err
    assert out.startswith("node lab-a ready:")
