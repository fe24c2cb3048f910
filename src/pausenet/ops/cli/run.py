"""`pausenet run`: a node as a long-lived process, until SIGTERM or Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pausenet.errors import PausenetError
from pausenet.ops.cli.app import app

if TYPE_CHECKING:
    import asyncio
    import logging
    from collections.abc import Sequence

    from pausenet.node.config import NodeConfig
    from pausenet.node.node import Node
    from pausenet.ops.logging_setup import LogFormat, LogSetup

__all__ = ["run_node"]


def _logger() -> logging.Logger:
    import logging  # only here: the other commands start faster without it

    return logging.getLogger("pausenet.cli")


@app.command("run")
def run_node(
    config: Annotated[Path, typer.Option("--config", help="The node config (TOML).")],
    log_format: Annotated[
        str, typer.Option("--log-format", help="text for people, json (one object a line).")
    ] = "text",
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="debug, info, warning or error (default: the config's)."),
    ] = None,
) -> None:
    """Run a node: open its store, serve gossip, oversight and admin, until SIGTERM or Ctrl-C.

    Logs go to stderr. When the node is up, one ready line (JSON with --log-format json) naming
    the member, the gossip address and the admin address goes to stdout, and the bound addresses
    are written to <data_dir>/node.json ({"member", "address", "admin_address", "pid"}), which
    the vote and attest commands read (ports given as 0 in the config are only known then). On
    SIGTERM or SIGINT the node stops taking calls, finishes its loops, closes the store, removes
    node.json and exits 0. A config or start-up error is one line on stderr and exit code 2.
    """
    import asyncio

    from pausenet.node.config import LOG_LEVELS, load_config
    from pausenet.ops.logging_setup import LOG_FORMATS, setup_logging

    if log_format not in LOG_FORMATS:
        raise PausenetError(f"--log-format {log_format!r}: give text or json")
    if log_level is not None and log_level not in LOG_LEVELS:
        raise PausenetError(f"--log-level {log_level!r}: give one of {', '.join(LOG_LEVELS)}")
    cfg = load_config(config)
    fmt: LogFormat = "json" if log_format == "json" else "text"
    level = log_level or cfg.log_level
    # Until the node is up its log is held back, so a failed start is the one error line (at
    # debug level everything is shown at once).
    logs = setup_logging(level, fmt, member=cfg.member_id, hold=level != "debug")
    try:
        asyncio.run(_serve(cfg, fmt, logs))
    except PausenetError:
        logs.discard()
        raise
    finally:
        logs.release()


async def _serve(cfg: NodeConfig, fmt: LogFormat, logs: LogSetup) -> None:
    import asyncio
    import os
    import signal

    from pausenet.node.runfile import NodeFile, remove_node_file, write_node_file
    from pausenet.node.sdnotify import Supervisor

    log = _logger()
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not received:
            log.info("received %s; stopping", sig.name)
        received.append(sig.name)
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    from pausenet.node.node import Node

    try:
        log.info("starting node %s from %s", cfg.member_id, cfg.data_dir)
        try:
            node = Node(cfg)
            await node.start()
        except OSError as exc:
            raise PausenetError(f"cannot start node {cfg.member_id}: {exc}") from exc
        try:
            write_node_file(
                cfg.data_dir,
                NodeFile(node.member, node.address, node.admin_address, os.getpid()),
            )
            logs.release()
            _announce_ready(node, fmt)
            # under systemd (Type=notify): READY=1 now, WATCHDOG=1 while the node runs
            systemd = Supervisor.start(
                lambda: not node.stopping and node.failure is None,
                status=f"serving on {node.address}",
            )
            closed = asyncio.ensure_future(node.wait_closed())
            requested = asyncio.ensure_future(stop_requested.wait())
            try:
                await asyncio.wait({closed, requested}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                await systemd.stop()  # STOPPING=1 before the node drains
                for t in (closed, requested):
                    t.cancel()
                await asyncio.gather(closed, requested, return_exceptions=True)
        finally:
            await node.stop()
            remove_node_file(cfg.data_dir, os.getpid())
        if node.failure:
            raise PausenetError(f"node {cfg.member_id} stopped: {node.failure}")
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    if left:
        log.warning("%d task(s) still running at exit: %s", len(left), _task_names(left))
    log.info("node %s shut down cleanly", cfg.member_id)


def _task_names(tasks: Sequence[asyncio.Task[Any]]) -> str:
    return ", ".join(sorted(t.get_name() for t in tasks))


def _announce_ready(node: Node, fmt: LogFormat) -> None:
    """One line on stdout that scripts can wait for; the same words in the log."""
    import json
    import os
    import sys

    words = (
        f"node {node.member} ready: gossip and oversight on {node.address},"
        f" admin on {node.admin_address} (pid {os.getpid()})"
    )
    _logger().info("%s", words)
    if fmt == "json":
        line = json.dumps(
            {
                "event": "ready",
                "member": node.member,
                "address": node.address,
                "admin_address": node.admin_address,
                "pid": os.getpid(),
                "msg": words,
            }
        )
    else:
        line = words
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
