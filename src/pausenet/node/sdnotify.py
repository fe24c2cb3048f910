"""The systemd notify protocol (sd_notify(3)) for `Type=notify` services, in a few lines.

    supervisor = Supervisor.start(healthy=lambda: not node.stopping, status="serving on ...")
    ...                                   # READY=1 sent; WATCHDOG=1 every half WATCHDOG_USEC
    await supervisor.stop()               # STOPPING=1, the watchdog task ended

Messages are newline-separated `KEY=VALUE` lines in one datagram to the AF_UNIX socket named by
$NOTIFY_SOCKET: a path, or `@name` for a socket in the abstract namespace. Everything here does
nothing when NOTIFY_SOCKET is unset (not started by systemd, or not `Type=notify`), and a send
that fails is logged, never raised: supervision must not take a healthy node down.

The watchdog pings only while `healthy()` holds and the event loop runs, so systemd restarts a
node whose loop is stuck or that can no longer decide (with `WatchdogSec=` in the unit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping

__all__ = ["Notifier", "Supervisor"]

log = logging.getLogger("pausenet.node")


class Notifier:
    """Sends notify messages to one socket address (None: does nothing)."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "")
        if env.get("WATCHDOG_USEC", "").isdigit() and pid in ("", str(os.getpid())):
            usec = int(env["WATCHDOG_USEC"]) or None  # WATCHDOG_PID names whom it is meant for
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to ping: half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2_000_000

    def notify(self, *fields: str) -> bool:
        """Send `fields` (e.g. "READY=1") in one datagram; True if it was sent."""
        if self.address is None:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]  # abstract namespace
        elif not target.startswith("/"):
            self._warn(f"NOTIFY_SOCKET={self.address!r} is not a socket path; not notifying")
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(target)
                s.sendall("\n".join(fields).encode("utf-8"))
        except OSError as exc:
            self._warn(f"cannot notify systemd at {self.address}: {exc.strerror or exc}")
            return False
        return True

    def _warn(self, msg: str) -> None:
        if not self._warned:  # once: a watchdog ping every few seconds must not flood the log
            self._warned = True
            log.warning("%s", msg)

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    async def watchdog(self, healthy: Callable[[], bool]) -> None:
        """Ping WATCHDOG=1 every interval while `healthy()`; returns at once if not enabled."""
        interval = self.watchdog_interval_s
        if interval is None:
            return
        while True:
            if healthy():
                self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)


class Supervisor:
    """READY=1 at start, WATCHDOG=1 while healthy, STOPPING=1 at stop: one node's lifecycle."""

    def __init__(self, notifier: Notifier, task: asyncio.Task[None] | None) -> None:
        self.notifier = notifier
        self._task = task
        self._stopped = False

    @classmethod
    def start(
        cls,
        healthy: Callable[[], bool],
        *,
        status: str = "",
        notifier: Notifier | None = None,
    ) -> Supervisor:
        """Tell systemd the service is ready and start the watchdog (on the running loop)."""
        n = notifier or Notifier.from_env()
        n.ready(status)
        task = None
        if n.watchdog_interval_s is not None:
            task = asyncio.get_running_loop().create_task(n.watchdog(healthy), name="watchdog")
        return cls(n, task)

    async def stop(self, status: str = "stopping") -> None:
        """Tell systemd the service is stopping and end the watchdog; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.notifier.stopping(status)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
