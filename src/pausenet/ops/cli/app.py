"""The `pausenet` typer app: its global options, sub-command groups, consoles and the runner
that turns errors into one red line and an exit code.

Start-up time matters for the offline commands (keygen, charter show, verify), so this module
and the command modules import only typer at load time; rich, asyncio, gRPC and the core are
imported by the commands that use them.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pausenet.errors import PausenetError

if TYPE_CHECKING:
    from rich.console import Console

    from pausenet.node.tls import TlsFiles

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "app",
    "attest_app",
    "charter_app",
    "cli_main",
    "client_tls",
    "console",
    "err_console",
    "federation_app",
    "main",
    "now_ms",
    "print_json",
    "prog",
    "run_app",
    "tls_app",
    "vote_app",
]

EXIT_INVALID = 1  # a signed answer or statement that does not check against the charter
EXIT_ERROR = 2  # a malformed input or a refused action; also click's code for usage errors
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="pausenet",
    help="Federated attestation of a coordinated pause in frontier AI development.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_client_tls: TlsFiles | None = None  # set by the global --tls-* options


@app.callback()
def _global_options(
    tls_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-ca",
            envvar="PAUSENET_TLS_CA",
            help="Talk TLS to nodes, verifying them against this CA certificate (PEM).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", envvar="PAUSENET_TLS_CERT", help="Client certificate for mutual TLS."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", envvar="PAUSENET_TLS_KEY", help="Client key for mutual TLS."),
    ] = None,
) -> None:
    """Federated attestation of a coordinated pause in frontier AI development."""
    global _client_tls
    if tls_ca is None and tls_cert is None and tls_key is None:
        _client_tls = None
        return
    from pausenet.node.tls import client_tls as read_client_tls

    _client_tls = read_client_tls(tls_ca, tls_cert, tls_key)


def client_tls() -> TlsFiles | None:
    """The TLS settings the global --tls-* options gave (None: plain connections)."""
    return _client_tls


# The groups are added here, in the order `pausenet --help` lists them (after the commands).
charter_app = typer.Typer(
    help="Read, approve and compare charters: the federation's rulebook and roster."
)
tls_app = typer.Typer(help="TLS for local federations: a test CA and node certificates.")
federation_app = typer.Typer(help="Create a local federation: keys, charter and node configs.")
vote_app = typer.Typer(help="Cast your member's vote through your node's admin API.")
attest_app = typer.Typer(help="Attest compliance or a trigger through your node's admin API.")
app.add_typer(charter_app, name="charter", no_args_is_help=True)
app.add_typer(federation_app, name="federation", no_args_is_help=True)
app.add_typer(tls_app, name="tls", no_args_is_help=True)
app.add_typer(vote_app, name="vote", no_args_is_help=True)
app.add_typer(attest_app, name="attest", no_args_is_help=True)


@functools.cache
def console() -> Console:
    """The console for what a command prints on purpose (stdout)."""
    from rich.console import Console

    return Console(highlight=False)


@functools.cache
def err_console() -> Console:
    """The console for notes and errors (stderr)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def print_json(obj: Any) -> None:
    import json

    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def now_ms() -> int:
    import time

    return time.time_ns() // 1_000_000


def prog() -> str:
    """How to run this very command again: 'pausenet' when that is on PATH, else its path."""
    import shutil

    me = Path(sys.argv[0])
    found = shutil.which("pausenet")
    if me.name != "pausenet" or (found and Path(found).resolve() == me.resolve()):
        return "pausenet"
    return str(me)


def cli_main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (main() exits with it)."""
    return run_app(app, argv, "pausenet")


def run_app(typer_app: typer.Typer, argv: Sequence[str] | None, prog: str) -> int:
    """Run a typer app the pausenet way: a PausenetError is one red line and exit code 2,
    Ctrl-C is exit code 130, never a traceback. Shared by `pausenet` and `pausenet.ops.cluster`."""
    # gRPC's core logs its own errors (a port in use, ...) straight to stderr, beside the one
    # line pausenet prints; GRPC_VERBOSITY=info (or debug) in the environment shows them.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    try:
        typer_app(args=None if argv is None else list(argv), prog_name=prog)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except PausenetError as exc:
        _error_line(" ".join(str(exc).split("\n")))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, and not exit 1 ("answer invalid")
        line = " ".join(f"{type(exc).__name__}: {exc}".split("\n"))
        _error_line(f"unexpected failure ({line})")
        return EXIT_ERROR
    return 0


def _error_line(line: str) -> None:
    from rich.text import Text

    err_console().print(Text.assemble(("error: ", "bold red"), (line, "red")), soft_wrap=True)


def main() -> None:
    sys.exit(cli_main())
