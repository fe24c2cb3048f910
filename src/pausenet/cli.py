"""The `pausenet` command line. Errors reach the user as one red line and exit code 2."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pausenet.bundle import evaluate_bundle
from pausenet.charter import load_charter
from pausenet.demo import run_demo
from pausenet.errors import PausenetError
from pausenet.federation import DEFAULT_BASE_PORT, DEFAULT_FEDERATION_ID, init_federation
from pausenet.keys import generate, write_signing_key
from pausenet.render import render_view

__all__ = ["app", "main", "run"]

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
    _out.print(
        Text(
            "The node configs are for the networked node, which arrives with the next milestone.",
            style="dim",
        )
    )


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


def _prog() -> str:
    """How to run this very command again: 'pausenet' when that is on PATH, else its path."""
    me = Path(sys.argv[0])
    found = shutil.which("pausenet")
    if me.name != "pausenet" or (found and Path(found).resolve() == me.resolve()):
        return "pausenet"
    return str(me)


def run(argv: Sequence[str] | None = None) -> int:
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
    sys.exit(run())
