"""The `pausenet` command line. Errors reach the user as one red line and exit code 2."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pausenet.bundle import evaluate_bundle
from pausenet.charter import load_charter
from pausenet.config import LOG_LEVELS, NodeConfig, load_config
from pausenet.demo import run_demo
from pausenet.errors import PausenetError
from pausenet.federation import DEFAULT_BASE_PORT, DEFAULT_FEDERATION_ID, init_federation
from pausenet.keys import generate, write_signing_key
from pausenet.logging_setup import LOG_FORMATS, LogFormat, setup_logging
from pausenet.node import Node
from pausenet.render import render_view

__all__ = ["app", "cli_main", "main"]

EXIT_ERROR = 2  # a malformed input or a refused action; also click's code for usage errors
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="pausenet",
    help="Federated attestation of a coordinated pause in frontier AI development.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
charter_app = typer.Typer(help="Read a charter: the federation's rulebook and roster.")
federation_app = typer.Typer(help="Create a local federation: keys, charter and node configs.")
app.add_typer(charter_app, name="charter", no_args_is_help=True)
app.add_typer(federation_app, name="federation", no_args_is_help=True)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a new private key file readable only by its owner and print the public key.

    The public key (64 hex digits) goes to stdout alone, ready to paste into a charter.
    """
    key = generate()
    write_signing_key(out, key, overwrite=force)
    _err.print(f"Wrote a private key to {out} (mode 0600: only you can read it). Public key:")
    _out.print(key.public_key.hex(), soft_wrap=True)


@charter_app.command("show")
def charter_show(
    file: Annotated[Path, typer.Argument(help="The charter TOML file.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Print a charter's digest and explain its rules in plain sentences."""
    charter = load_charter(file)
    if as_json:
        _print_json(
            {
                "digest": charter.digest_hex,
                "charter": json.loads(charter.canonical_bytes),
                "explanation": charter.explain(),
            }
        )
        return
    _out.print(Text.assemble(("Charter ", "bold"), str(file)))
    _out.print(Text.assemble(("Digest  ", "bold"), charter.digest_hex), soft_wrap=True)
    _out.print()
    for line in charter.explain():
        _out.print(Text(line), style="bold" if line.endswith(":") else "")


@federation_app.command("init")
def federation_init(
    dir: Annotated[Path, typer.Option("--dir", help="Directory to create the federation in.")],
    labs: Annotated[int, typer.Option("--labs", help="Number of labs (1-100).")] = 3,
    overseers: Annotated[int, typer.Option("--overseers", help="Number of overseers (0-100).")] = 1,
    base_port: Annotated[
        int, typer.Option("--base-port", help="Member i listens on base+2i, admin on base+2i+1.")
    ] = DEFAULT_BASE_PORT,
    federation_id: Annotated[
        str, typer.Option("--federation-id", help="The federation's id in the charter.")
    ] = DEFAULT_FEDERATION_ID,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a federation already in DIR (data too).")
    ] = False,
) -> None:
    """Write keys, a charter and one node config per member.

    Default rules: a pause starts and lifts by a majority of labs; a lift also needs one
    overseer when there is one; overseers cannot start a pause.
    """
    fed = init_federation(
        dir, labs, overseers, base_port=base_port, federation_id=federation_id, force=force
    )
    c = fed.charter
    _out.print(
        Text.assemble(
            ("Created federation ", "bold"),
            (c.federation_id, "bold cyan"),
            f" in {dir}: {len(c.labs())} lab(s), {len(c.overseers())} overseer(s)",
        )
    )
    _out.print(f"Charter:       {fed.charter_path}")
    _out.print(f"Digest:        {c.digest_hex}", soft_wrap=True)
    table = Table(show_edge=False, box=None, padding=(0, 2, 0, 0))
    for col in ("member", "role", "gossip", "admin"):
        table.add_column(col, style="bold" if col == "member" else "")
    for m in fed.members:
        table.add_row(m.id, m.role.value, m.listen, m.admin_listen)
    _out.print(table)
    _out.print(f"Private keys:  {dir / 'keys'}/<member>.key (mode 0600; keep them to yourself)")
    _out.print(f"Node configs:  {dir / 'node_configs'}/<member>.toml")
    r = c.rules
    lift = f"{r.lift_threshold} labs"
    if r.lift_overseer_threshold:
        lift += f" and {r.lift_overseer_threshold} overseer(s)"
    _out.print(
        f"Rules: a pause needs {r.pause_threshold} of {len(c.labs())} labs; a lift needs {lift}."
    )
    _out.print(f"Read them all: pausenet charter show {shlex.quote(str(fed.charter_path))}")
    first = shlex.quote(str(dir / "node_configs" / f"{fed.members[0].id}.toml"))
    _out.print(f"Start a node:  pausenet run --config {first}")


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle JSON file.", show_default=False)],
    charter: Annotated[Path, typer.Option("--charter", help="The charter to check against.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the view as JSON.")] = False,
    now: Annotated[
        int | None,
        typer.Option(
            "--now",
            help="Evaluate at this Unix time in ms (default: the bundle's 'now', else the clock).",
        ),
    ] = None,
) -> None:
    """Check every envelope in a bundle against a charter and print the view.

    Exits 0 when the bundle was evaluated, whatever the answer (PAUSED, NOT_PAUSED or UNKNOWN);
    2 when the bundle or charter is malformed. Envelopes that fail a check are listed with the
    reason and not counted.
    """
    if now is not None and now <= 0:
        raise PausenetError(f"--now {now}: give a positive Unix time in milliseconds")
    ch = load_charter(charter)
    view, source = evaluate_bundle(ch, bundle, now_ms=now)
    if as_json:
        _print_json(view.to_json())
    else:
        render_view(view, _out, charter=ch, now_source=source)


@app.command()
def demo(
    dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Directory for the demo federation (default: a new temp dir)."),
    ] = None,
) -> None:
    """Walk a coordinated pause step by step, offline, with real keys and signatures."""
    run_demo(dir, console=_out, prog=_prog())


# -- running a node -------------------------------------------------------------------------

NODE_FILE = "node.json"
_log = logging.getLogger("pausenet.cli")


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
    if log_format not in LOG_FORMATS:
        raise PausenetError(f"--log-format {log_format!r}: give text or json")
    if log_level is not None and log_level not in LOG_LEVELS:
        raise PausenetError(f"--log-level {log_level!r}: give one of {', '.join(LOG_LEVELS)}")
    cfg = load_config(config)
    fmt: LogFormat = "json" if log_format == "json" else "text"
    setup_logging(log_level or cfg.log_level, fmt, member=cfg.member_id)
    asyncio.run(_serve(cfg, fmt))


async def _serve(cfg: NodeConfig, fmt: LogFormat) -> None:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        if not received:
            _log.info("received %s; stopping", sig.name)
        received.append(sig.name)
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    node_file = cfg.data_dir / NODE_FILE
    try:
        _log.info("starting node %s from %s", cfg.member_id, cfg.data_dir)
        try:
            node = Node(cfg)
            await node.start()
        except OSError as exc:
            raise PausenetError(f"cannot start node {cfg.member_id}: {exc}") from exc
        try:
            _write_node_file(
                node_file,
                {
                    "member": node.member,
                    "address": node.address,
                    "admin_address": node.admin_address,
                    "pid": os.getpid(),
                },
            )
            _announce_ready(node, fmt)
            closed = asyncio.ensure_future(node.wait_closed())
            requested = asyncio.ensure_future(stop_requested.wait())
            try:
                await asyncio.wait({closed, requested}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (closed, requested):
                    t.cancel()
                await asyncio.gather(closed, requested, return_exceptions=True)
        finally:
            await node.stop()
            _remove_node_file(node_file)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    if left:
        _log.warning("%d task(s) still running at exit: %s", len(left), _task_names(left))
    _log.info("node %s shut down cleanly", cfg.member_id)


def _task_names(tasks: Sequence[asyncio.Task[Any]]) -> str:
    return ", ".join(sorted(t.get_name() for t in tasks))


def _announce_ready(node: Node, fmt: LogFormat) -> None:
    """One line on stdout that scripts can wait for; the same words in the log."""
    words = (
        f"node {node.member} ready: gossip and oversight on {node.address},"
        f" admin on {node.admin_address} (pid {os.getpid()})"
    )
    _log.info("%s", words)
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


def _write_node_file(path: Path, doc: dict[str, Any]) -> None:
    """Write node.json atomically, readable by the owner only, like the rest of data_dir."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise PausenetError(f"{path}: cannot write: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove_node_file(path: Path) -> None:
    """Remove node.json if it is still ours (a second node on the same data_dir fails to start
    on the store lock before writing one, but be careful anyway)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(doc, dict) and doc.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def _prog() -> str:
    """How to run this very command again: 'pausenet' when that is on PATH, else its path."""
    me = Path(sys.argv[0])
    found = shutil.which("pausenet")
    if me.name != "pausenet" or (found and Path(found).resolve() == me.resolve()):
        return "pausenet"
    return str(me)


def cli_main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (main() exits with it)."""
    try:
        app(args=None if argv is None else list(argv), prog_name="pausenet")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except PausenetError as exc:
        line = " ".join(str(exc).split("\n"))
        _err.print(Text.assemble(("error: ", "bold red"), (line, "red")), soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


def main() -> None:
    sys.exit(cli_main())
