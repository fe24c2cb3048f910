"""The `pausenet` command line. Errors reach the user as one red line and exit code 2."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pausenet.core.answer import AnswerCheck
from pausenet.core.bundle import check_bundle_answer, read_bundle, view_of_bundle, write_bundle
from pausenet.core.charter import Charter, load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.keys import generate, load_signing_key, write_signing_key
from pausenet.core.records import ComplianceState, Decision, SignedStatement, Statement
from pausenet.core.verify import Rejection, verify_envelope
from pausenet.core.view import evaluate_envelopes
from pausenet.errors import NodeError, PausenetError
from pausenet.node.config import LOG_LEVELS, NODE_FILE, NodeConfig, load_config, parse_host_port
from pausenet.node.tls import TlsFiles, client_tls
from pausenet.ops.charters import (
    charter_status,
    describe_changes,
    sign_charter,
    status_json,
    status_lines,
)
from pausenet.ops.demo import run_demo
from pausenet.ops.federation import DEFAULT_BASE_PORT, DEFAULT_FEDERATION_ID, init_federation
from pausenet.ops.logging_setup import LOG_FORMATS, LogFormat, LogSetup, setup_logging
from pausenet.ops.render import (
    describe_statement,
    format_time,
    iso_time,
    render_view,
    short_hash,
    status_renderable,
)

if TYPE_CHECKING:
    # gRPC is imported only when a command talks to a node, after GRPC_VERBOSITY is set
    from pausenet.client import AdminClient
    from pausenet.node.node import Node
    from pausenet.v1.admin_pb2 import IssueReply
    from pausenet.v1.oversight_pb2 import ViewReply

__all__ = ["app", "cli_main", "main"]

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
    _client_tls = client_tls(tls_ca, tls_cert, tls_key)


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


@tls_app.command("init")
def tls_init(
    federation: Annotated[
        Path, typer.Option("--federation", help="A directory made by 'pausenet federation init'.")
    ],
    no_client_auth: Annotated[
        bool,
        typer.Option("--no-client-auth", help="Plain TLS: do not require client certificates."),
    ] = False,
) -> None:
    """Make a local test CA and a certificate per member, and switch every node config to TLS.

    For clusters on one machine and tests only: the certificates are valid for 127.0.0.1, ::1
    and localhost, and the CA key sits beside them. Needs the cryptography package
    (pip install 'pausenet[tls]'). Clients then pass --tls-ca DIR/tls/ca.crt (and, with client
    authentication, --tls-cert/--tls-key of a member).
    """
    from pausenet.node.tls import enable_tls_for_federation

    tls_dir = enable_tls_for_federation(federation, client_auth=not no_client_auth)
    _out.print(f"TLS on for every node in {federation}; CA and certificates in {tls_dir}")
    _out.print(
        f"query a node with: pausenet --tls-ca {tls_dir / 'ca.crt'}"
        + (
            ""
            if no_client_auth
            else f" --tls-cert {tls_dir / '<member>.crt'} --tls-key {tls_dir / '<member>.key'}"
        )
        + " status --node HOST:PORT"
    )


app.add_typer(vote_app, name="vote", no_args_is_help=True)
app.add_typer(attest_app, name="attest", no_args_is_help=True)

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
    canonical: Annotated[
        bool,
        typer.Option(
            "--canonical",
            help="Print exactly the charter's canonical bytes and nothing else (no newline):"
            " their SHA-256 is the digest.",
        ),
    ] = False,
) -> None:
    """Print a charter's digest and explain its rules in plain sentences."""
    if canonical and as_json:
        raise PausenetError("--canonical and --json: give one of them")
    charter = load_charter(file)
    if canonical:
        sys.stdout.buffer.write(charter.canonical_bytes)
        sys.stdout.buffer.flush()
        return
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


@charter_app.command("sign")
def charter_sign(
    file: Annotated[
        Path, typer.Argument(help="The charter version to approve.", show_default=False)
    ],
    key: Annotated[Path, typer.Option("--key", help="Your private key file.")],
    member: Annotated[
        str | None,
        typer.Option(
            "--member",
            help="Whose approval this is (default: the member whose key it is in FILE). A member"
            " this version re-keys or removes signs with its key in the version amended.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the approval here (default: stdout).")
    ] = None,
) -> None:
    """Sign your approval of a charter version, offline (no node, no network).

    The approval is a DSSE envelope in JSON; hand it to whoever collects approvals.
    """
    charter = load_charter(file)
    signed = sign_charter(charter, load_signing_key(key), member, _now_ms())
    text = json.dumps(signed.approval.envelope.to_json(), indent=2) + "\n"
    if signed.note:
        _err.print(Text(f"note: {signed.note}", style="yellow"))
    if out is None:
        sys.stdout.write(text)
        return
    _write_new_file(out, text)
    _err.print(
        f"Wrote {signed.approval.member}'s approval of version {charter.version}"
        f" ({charter.digest_hex[:16]}…) to {out}"
    )


def _write_new_file(path: Path, text: str) -> None:
    try:
        with path.open("x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError as exc:
        raise PausenetError(f"{path}: already exists; choose another path or remove it") from exc
    except OSError as exc:
        raise PausenetError(f"{path}: cannot write: {exc.strerror}") from exc


@charter_app.command("status")
def charter_status_command(
    file: Annotated[Path, typer.Argument(help="The charter version to check.", show_default=False)],
    approvals: Annotated[
        list[Path],
        typer.Option("--approvals", help="Approval files (repeatable; a file may hold a list)."),
    ],
    trust: Annotated[
        str | None,
        typer.Option(
            "--trust",
            help="The pinned version, as a file or a digest (default: FILE, which must be"
            " version 1).",
        ),
    ] = None,
    chain: Annotated[
        list[Path] | None,
        typer.Option("--chain", help="The charter versions between --trust and FILE (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Say who has approved a charter version, whether it is in force, and what is missing.

    Exits 0 when FILE is in force, 1 when it is not.
    """
    target, result = charter_status(file, approvals, trust, chain or [])
    doc = status_json(target, result)
    if as_json:
        _print_json(doc)
    else:
        for line in status_lines(target, result):
            _out.print(Text(line), soft_wrap=True)
    if not doc["in_force"]:
        raise typer.Exit(EXIT_INVALID)


@charter_app.command("diff")
def charter_diff(
    old: Annotated[Path, typer.Argument(help="The version in force.", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The proposed version.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Explain in sentences what NEW changes relative to OLD."""
    lines = describe_changes(load_charter(old), load_charter(new))
    if as_json:
        _print_json({"changes": lines})
        return
    for line in lines:
        _out.print(Text(line), soft_wrap=True)


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
    nonce: Annotated[
        str | None,
        typer.Option(
            "--nonce",
            help="The nonce you sent (hex); the signed answer must be for it (default: the"
            " bundle's 'nonce').",
        ),
    ] = None,
) -> None:
    """Check every envelope in a bundle against a charter and print the view.

    When the bundle carries a node's signed answer (`pausenet view --out` writes one), also
    check it: signed by a member, under this charter, for the nonce, over exactly these
    envelopes, and with the state, epoch and as-of time the envelopes give.

    Exits 0 when the bundle was evaluated, whatever the answer (PAUSED, NOT_PAUSED or UNKNOWN);
    1 when it carries a signed answer that does not check; 2 when the bundle or charter is
    malformed. Envelopes that fail a check are listed with the reason and not counted.
    """
    if now is not None and now <= 0:
        raise PausenetError(f"--now {now}: give a positive Unix time in milliseconds")
    want_nonce = _parse_nonce(nonce) if nonce is not None else None
    ch = load_charter(charter)
    b = read_bundle(bundle)
    view, source = view_of_bundle(ch, b, now_ms=now)
    check = check_bundle_answer(ch, b, nonce=want_nonce)
    signer = _answer_signer(b.answer)
    # Only a nonce the overseer gives proves the answer fresh; the bundle's own only has to match.
    fresh = want_nonce is not None
    if as_json:
        doc = view.to_json()
        if check is not None:
            doc["answer"] = _answer_json(check, signer, nonce_checked=want_nonce)
        elif fresh:
            doc["answer"] = None
        _print_json(doc)
    else:
        render_view(view, _out, charter=ch, now_source=source)
        if check is not None:
            _out.print()
            _print_answer_check(check, signer, nonce_checked=fresh)
    if fresh and check is None:
        _err.print(
            Text("error: --nonce given, but the bundle carries no signed answer", style="red")
        )
        raise typer.Exit(EXIT_INVALID)
    if check is not None and not check:
        raise typer.Exit(EXIT_INVALID)


def _answer_signer(env: Envelope | None) -> str:
    if env is None or not env.signatures:
        return "?"
    return env.signatures[0].keyid[:64]


def _answer_json(check: AnswerCheck, signer: str, *, nonce_checked: bytes | None) -> dict[str, Any]:
    a = check.answer
    return {
        "valid": bool(check),
        "signed_by": signer,
        "problems": list(check.problems),
        "state": a.state.value if a else None,
        "epoch": a.epoch if a else None,
        "as_of": a.as_of_ms if a else None,
        "now": a.now_ms if a else None,
        "nonce": a.nonce.hex() if a else None,
        "nonce_checked": nonce_checked is not None,
    }


def _print_answer_check(check: AnswerCheck, signer: str, *, nonce_checked: bool) -> None:
    a = check.answer
    if check and a is not None:
        as_of = format_time(a.as_of_ms) if a.as_of_ms is not None else "not proven"
        line = Text.assemble(
            f"answer signed by {signer}: ",
            ("VALID", "bold green"),
            f" ({a.state.value}, epoch {a.epoch}, as of {as_of})",
        )
        _out.print(line, soft_wrap=True)
        if not nonce_checked:
            _out.print(
                Text(
                    "freshness not checked: give --nonce with the nonce you sent the node"
                    " (the answer only matches the bundle's own nonce, if any)"
                )
            )
        return
    _out.print(Text.assemble(f"answer signed by {signer}: ", ("INVALID", "bold red")))
    for problem in check.problems:
        _out.print(Text(f"  - {problem}", style="red"), soft_wrap=True)


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
    from pausenet.node.node import Node

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
            logs.release()
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
        if node.failure:
            raise PausenetError(f"node {cfg.member_id} stopped: {node.failure}")
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
    """Remove node.json if it is still ours (a second node on the same data_dir stops at
    node.lock before writing one, but a file left by a killed node may have been replaced)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(doc, dict) and doc.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


# -- talking to a running node ----------------------------------------------------------------

_ADMIN_NOTE = (
    "The node's admin address is read from <data_dir>/node.json, which `pausenet run` writes"
    " while the node runs (the only way to find it when admin_listen has port 0), else from"
    " admin_listen in the config; the token from the config's admin token file. A refusal"
    " (wrong epoch, unknown trigger, wrong token) or an unreachable node is one line on stderr"
    " and exit code 2."
)


@dataclass(frozen=True)
class _AdminTarget:
    member: str
    address: str
    token: str
    charter: Charter
    tls: TlsFiles | None


def _admin_target(config: Path) -> _AdminTarget:
    from pausenet.client import read_admin_token

    cfg = load_config(config)
    address = _running_admin_address(cfg)
    if address is None:
        host_port = parse_host_port(cfg.admin_listen)
        if host_port[1] == 0:
            raise NodeError(
                f"{cfg.member_id}'s node is not running ({cfg.data_dir / NODE_FILE} is absent)"
                f" and admin_listen {cfg.admin_listen} has port 0, so its admin address is"
                f" unknown; start it with 'pausenet run --config {config}'"
            )
        address = cfg.admin_listen
    return _AdminTarget(
        cfg.member_id,
        address,
        read_admin_token(cfg.admin_token_file),
        load_charter(cfg.charter_path),
        cfg.tls.read() if cfg.tls is not None else None,
    )


def _running_admin_address(cfg: NodeConfig) -> str | None:
    """The admin address in <data_dir>/node.json, if a node for this member is running."""
    path = cfg.data_dir / NODE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NodeError(f"{path}: unreadable ({exc}); remove it if no node is running") from exc
    if not isinstance(doc, dict):
        return None
    pid, address = doc.get("pid"), doc.get("admin_address")
    if doc.get("member") != cfg.member_id or not isinstance(address, str) or not address:
        return None
    if isinstance(pid, int) and pid > 0 and not _process_alive(pid):
        return None  # left behind by a node that was killed
    return address


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _issue(
    config: Path, what: str, call: Callable[[AdminClient], Awaitable[IssueReply]], as_json: bool
) -> None:
    from pausenet.client import AdminClient
    from pausenet.node.wire import envelope_from_pb

    target = _admin_target(config)

    async def go() -> IssueReply:
        async with AdminClient(target.address, target.token, tls=target.tls) as client:
            return await call(client)

    reply = asyncio.run(go())
    env = envelope_from_pb(reply.statement)
    got = verify_envelope(target.charter, env, now_ms=_now_ms())
    if (
        not isinstance(got, SignedStatement)
        or got.statement.member != target.member
        or got.hash != bytes(reply.hash)
    ):
        detail = str(got) if isinstance(got, Rejection) else "not this member's statement"
        raise NodeError(f"{what}: the node returned a statement that does not check: {detail}")
    st = got.statement
    kind, summary = describe_statement(st.body)
    if as_json:
        _print_json(
            {
                "member": st.member,
                "seq": st.seq,
                "hash": got.hash.hex(),
                "kind": kind,
                "summary": summary,
                "issued_at": st.issued_at_ms,
                "envelope": env.to_json(),
            }
        )
        return
    _out.print(
        Text(f"signed {st.member}#{st.seq}: {kind} {summary} (hash {short_hash(got.hash)})"),
        soft_wrap=True,
    )


def _sha256_file(path: Path) -> bytes:
    """SHA-256 of a file, read in chunks: the evidence itself never leaves this machine."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                h.update(chunk)
    except FileNotFoundError as exc:
        raise PausenetError(f"--evidence {path}: file not found") from exc
    except OSError as exc:
        raise PausenetError(f"--evidence {path}: cannot read it: {exc.strerror}") from exc
    return h.digest()


def _evidence_hash(evidence: Path | None) -> bytes:
    if evidence is None:
        return b""
    digest = _sha256_file(evidence)
    _err.print(
        f"evidence {evidence}: sha256 {digest.hex()} (only this hash is sent)", soft_wrap=True
    )
    return digest


_ConfigOpt = Annotated[
    Path, typer.Option("--config", help="Your node's config (TOML): finds its admin API.")
]
_EpochOpt = Annotated[
    int,
    typer.Option(
        "--epoch", help="The epoch (0: let the node pick the right one).", min=0, max=2**63 - 1
    ),
]
_JsonOpt = Annotated[bool, typer.Option("--json", help="Print the signed statement as JSON.")]
_NoteOpt = Annotated[str, typer.Option("--note", help="A short note, signed with the statement.")]


@vote_app.command("pause", epilog=_ADMIN_NOTE)
def vote_pause(
    config: _ConfigOpt,
    trigger: Annotated[
        list[str],
        typer.Option("--trigger", help="A charter trigger this vote names (repeatable)."),
    ],
    note: _NoteOpt = "",
    epoch: _EpochOpt = 0,
    as_json: _JsonOpt = False,
) -> None:
    """Have your node sign a PAUSE vote naming one or more of the charter's triggers."""
    _issue(
        config,
        "vote pause",
        lambda c: c.cast_vote(Decision.PAUSE, epoch=epoch, triggers=tuple(trigger), note=note),
        as_json,
    )


@vote_app.command("lift", epilog=_ADMIN_NOTE)
def vote_lift(
    config: _ConfigOpt, note: _NoteOpt = "", epoch: _EpochOpt = 0, as_json: _JsonOpt = False
) -> None:
    """Have your node sign a LIFT vote for the pause in effect."""
    _issue(
        config, "vote lift", lambda c: c.cast_vote(Decision.LIFT, epoch=epoch, note=note), as_json
    )


_STATES = {"halted": ComplianceState.HALTED, "not-halted": ComplianceState.NOT_HALTED}


@attest_app.command("compliance", epilog=_ADMIN_NOTE)
def attest_compliance(
    config: _ConfigOpt,
    state: Annotated[str, typer.Option("--state", help="halted or not-halted.")],
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="A file backing the claim; only its SHA-256 is sent."),
    ] = None,
    epoch: _EpochOpt = 0,
    as_json: _JsonOpt = False,
) -> None:
    """Have your node sign that your lab has halted (or not) for a pause."""
    st = _STATES.get(state.lower().replace("_", "-"))
    if st is None:
        raise PausenetError(f"--state {state!r}: give halted or not-halted")
    digest = _evidence_hash(evidence)
    _issue(
        config,
        "attest compliance",
        lambda c: c.attest_compliance(st, epoch=epoch, evidence_sha256=digest),
        as_json,
    )


@attest_app.command("trigger", epilog=_ADMIN_NOTE)
def attest_trigger(
    config: _ConfigOpt,
    trigger: Annotated[str, typer.Option("--trigger", help="The charter trigger that occurred.")],
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", help="A file backing the claim; only its SHA-256 is sent."),
    ] = None,
    note: _NoteOpt = "",
    epoch: Annotated[
        int,
        typer.Option(
            "--epoch",
            help="The epoch a tripwire would pause (0: the next one where the trigger has a"
            " tripwire you may attest, else none).",
            min=0,
            max=2**63 - 1,
        ),
    ] = 0,
    as_json: _JsonOpt = False,
) -> None:
    """Have your node sign that a charter trigger occurred.

    Where the charter gives the trigger a tripwire (auto_pause) and you are eligible, the
    attestation is bound to the next epoch: enough of them pause it without a vote.
    """
    digest = _evidence_hash(evidence)
    _issue(
        config,
        "attest trigger",
        lambda c: c.attest_trigger(trigger, evidence_sha256=digest, note=note, epoch=epoch),
        as_json,
    )


@app.command("stats", epilog=_ADMIN_NOTE)
def stats(config: _ConfigOpt, as_json: _JsonOpt = False) -> None:
    """Your node's counters: items rejected by reason, calls refused, gossip totals, peer scores.

    Rejections and refusals show what hostile or broken peers are sending and how the node is
    throttling them (docs/security.md).
    """
    from pausenet.client import AdminClient

    target = _admin_target(config)

    async def go() -> Any:
        async with AdminClient(target.address, target.token, tls=target.tls) as client:
            return await client.get_stats()

    reply = asyncio.run(go())
    counters = dict(sorted(reply.counters.items()))
    scores = dict(sorted(reply.peer_scores.items()))
    if as_json:
        _print_json({"member": target.member, "counters": counters, "peer_scores": scores})
        return
    from rich.table import Table

    table = Table(title=f"{target.member}: counters since start", show_edge=False)
    table.add_column("counter")
    table.add_column("value", justify="right")
    for k, v in counters.items():
        style = "red" if k.startswith(("rejected.", "refused.")) and v else ""
        table.add_row(k, str(v), style=style)
    _out.print(table)
    if scores:
        _out.print(
            "peer scores: "
            + ", ".join(f"{m} {v:+.0f}" for m, v in scores.items() if m != target.member)
        )


# -- asking a node: status, log, view ---------------------------------------------------------

_NodeOpt = Annotated[
    str, typer.Option("--node", help="The node's public (gossip and oversight) address, HOST:PORT.")
]
_TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the node's answer.", min=0.1)
]


def _node_address(node: str) -> str:
    try:
        parse_host_port(node, allow_port_zero=False)
    except ValueError as exc:
        raise PausenetError(f"--node: {exc}") from exc
    return node


def _parse_nonce(text: str) -> bytes:
    from pausenet.core.answer import MAX_NONCE, MIN_NONCE

    try:
        nonce = bytes.fromhex(text)
    except ValueError as exc:
        raise PausenetError(f"--nonce: {text[:80]!r} is not hex") from exc
    if not MIN_NONCE <= len(nonce) <= MAX_NONCE:
        raise PausenetError(
            f"--nonce: {len(nonce)} bytes; give {MIN_NONCE} to {MAX_NONCE} bytes"
            f" ({2 * MIN_NONCE} to {2 * MAX_NONCE} hex digits)"
        )
    return nonce


@dataclass(frozen=True)
class _Check:
    """Whether a node's reply matches what the charter gives for its proof envelopes."""

    digest: str
    problems: tuple[str, ...]
    signed_by: str | None = None

    def __bool__(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "charter_digest": self.digest,
            "ok": not self.problems,
            "problems": list(self.problems),
            "signed_by": self.signed_by,
        }

    def note(self) -> Text:
        short = self.digest[:16] + "…"
        if not self.problems:
            signed = f"; answer signed by {self.signed_by}" if self.signed_by else ""
            return Text(f"verified against charter {short}{signed}", style="green")
        return Text(
            f"NOT verified against charter {short}: {'; '.join(self.problems)}", style="bold red"
        )


def _check_reply(charter: Charter, reply: ViewReply, nonce: bytes | None) -> _Check:
    """Recompute the view from the reply's proof envelopes at the node's time, compare it with
    what the node says, and, when it signed an answer for `nonce`, check that answer too."""
    from pausenet.core.answer import check_answer
    from pausenet.core.payload import pause_state_from_pb
    from pausenet.node.wire import envelope_from_pb

    digest = charter.digest_hex
    if bytes(reply.charter_digest) != charter.digest:
        return _Check(
            digest,
            (f"the node runs under another charter ({bytes(reply.charter_digest).hex()[:16]}…)",),
        )
    proof = [envelope_from_pb(e) for e in reply.proof]
    local = evaluate_envelopes(charter, proof, reply.now_ms)
    problems: list[str] = []
    said = (
        pause_state_from_pb(reply.state),
        reply.epoch,
        reply.as_of_ms or None,
        pause_state_from_pb(reply.certified_state),
    )
    mine = (local.state.value, local.epoch, local.as_of_ms, local.certified_state.value)
    if said != mine:
        problems.append(
            f"the node says {said[0]} epoch {said[1]} as of {said[2]} (certified {said[3]}), but"
            f" its proof gives {mine[0]} epoch {mine[1]} as of {mine[2]} (certified {mine[3]})"
        )
    if local.rejected:
        problems.append(f"{len(local.rejected)} proof envelope(s) rejected: {local.rejected[0]}")
    signed_by = None
    if nonce is not None:
        if not reply.HasField("signed_answer"):
            problems.append("the node did not sign its answer")
        else:
            answer_env = envelope_from_pb(reply.signed_answer)
            check = check_answer(charter, answer_env, proof, nonce=nonce)
            problems.extend(check.problems)
            signed_by = _answer_signer(answer_env) if check else None
    return _Check(digest, tuple(problems), signed_by)


@app.command()
def status(
    node: _NodeOpt,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the view as one JSON object (a line each).")
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep showing the view as it changes, until Ctrl-C.")
    ] = False,
    verify_: Annotated[
        bool, typer.Option("--verify", help="Check the node's answer; needs --charter.")
    ] = False,
    charter: Annotated[
        Path | None,
        typer.Option(
            "--charter",
            help="Recompute the view from the node's proof envelopes with this charter and say"
            " whether the node's answer matches (implies --verify).",
        ),
    ] = None,
    timeout: _TimeoutOpt = 5.0,
) -> None:
    """Ask a node whether a pause is in effect: state, epoch, as-of time, members.

    With --charter the answer is checked locally, so you need not trust the node: the view is
    recomputed from the signed envelopes the node sent, and the node signs its answer for a
    fresh nonce. Exits 0 when the node answered (whatever the state), 1 when its answer does not
    check against the charter, 2 when it cannot be reached. --watch exits 0 on Ctrl-C.
    """
    address = _node_address(node)
    if verify_ and charter is None:
        raise PausenetError("--verify needs --charter FILE: the charter to check against")
    ch = load_charter(charter) if charter is not None else None
    if watch:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_watch_status(address, ch, as_json))
        return
    ok = asyncio.run(_status_once(address, ch, as_json, timeout))
    if not ok:
        raise typer.Exit(EXIT_INVALID)


async def _status_once(address: str, ch: Charter | None, as_json: bool, timeout: float) -> bool:
    from pausenet.client import OversightClient
    from pausenet.node.wire import view_reply_to_json

    nonce = secrets.token_bytes(32) if ch is not None else b""
    async with OversightClient(address, timeout=timeout, tls=_client_tls) as client:
        reply = await client.get_view(nonce)
    check = _check_reply(ch, reply, nonce) if ch is not None else None
    doc = view_reply_to_json(reply)
    if as_json:
        if check is not None:
            doc["verified"] = check.to_json()
        _print_json(doc)
    else:
        _out.print(status_renderable(doc, [check.note()] if check is not None else []))
    return check is None or bool(check)


async def _watch_status(address: str, ch: Charter | None, as_json: bool) -> None:
    """Print (JSON) or show (a live screen) each update until the stream ends or Ctrl-C."""
    from pausenet.client import OversightClient
    from pausenet.node.wire import view_reply_to_json

    live: Live | None = None
    shown: tuple[dict[str, Any], list[Text], float] | None = None

    def render(doc: dict[str, Any], notes: list[Text], received: float) -> RenderableType:
        # between updates the ages keep counting: shift the node's clock by the time elapsed
        elapsed_ms = int((time.monotonic() - received) * 1000)
        return status_renderable(dict(doc, now=doc["now"] + elapsed_ms), notes)

    async def tick() -> None:
        while True:
            await asyncio.sleep(1.0)
            if live is not None and shown is not None:
                live.update(render(*shown), refresh=True)

    ticker = asyncio.create_task(tick(), name="status-ticker")
    try:
        async with OversightClient(address, tls=_client_tls) as client:
            async for reply in client.watch():
                check = _check_reply(ch, reply, None) if ch is not None else None
                doc = view_reply_to_json(reply)
                if as_json:
                    if check is not None:
                        doc["verified"] = check.to_json()
                    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                    continue
                notes = [check.note()] if check is not None else []
                notes.append(Text("watching; Ctrl-C to stop", style="dim"))
                shown = (doc, notes, time.monotonic())
                if not _out.is_terminal:
                    _out.print(render(*shown))
                    _out.print()
                elif live is None:
                    live = Live(render(*shown), console=_out, auto_refresh=False)
                    live.start(refresh=True)
                else:
                    live.update(render(*shown), refresh=True)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        if live is not None:
            live.stop()
    raise NodeError(f"watch: the node at {address} ended the stream (shutting down?)")


@app.command("log")
def log_command(
    node: _NodeOpt,
    member: Annotated[str, typer.Option("--member", help="Whose log to list.")],
    from_seq: Annotated[
        int, typer.Option("--from", help="First seq to list.", min=1, max=2**63 - 1)
    ] = 1,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="At most this many statements.", min=1, max=1_000_000),
    ] = None,
    charter: Annotated[
        Path | None,
        typer.Option("--charter", help="Check each statement's signature and chain with it."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    timeout: _TimeoutOpt = 5.0,
) -> None:
    """List a member's signed statements, as held by a node: seq, time, kind, summary, hash.

    Without --charter the statements are decoded but not verified (the node could have made
    them up), and the output says so; with it, each is checked against the charter and a
    statement that fails, or a break in the hash chain, is flagged. Exits 1 when any fails.
    """
    address = _node_address(node)
    ch = load_charter(charter) if charter is not None else None
    envelopes = asyncio.run(_fetch_log(address, member, from_seq, limit, timeout))
    rows = _log_rows(envelopes, member, ch)
    bad = sum(1 for r in rows if r["problem"])
    if as_json:
        _print_json(
            {
                "member": member,
                "node": address,
                "verified": ch is not None,
                "charter_digest": ch.digest_hex if ch else None,
                "statements": rows,
            }
        )
    else:
        if ch is None:
            _out.print(
                Text(
                    "unverified: these are what the node sent; give --charter FILE to check"
                    " signatures and the hash chain",
                    style="yellow",
                )
            )
        else:
            _out.print(
                Text(f"checked against charter {ch.digest_hex[:16]}…", style="green")
                if not bad
                else Text(f"{bad} statement(s) fail the check against the charter", style="red")
            )
        table = Table(
            title=f"Log of {member}",
            title_justify="left",
            title_style="bold",
            box=None,
            padding=(0, 2, 0, 0),
            header_style="bold underline",
        )
        for col in ("seq", "time", "kind", "summary", "hash"):
            table.add_column(
                col, justify="right" if col == "seq" else "left", no_wrap=col != "summary"
            )
        for r in rows:
            when = iso_time(r["issued_at"])
            summary = Text(r["summary"])
            if r["problem"]:
                summary = Text(f"{r['summary']} [{r['problem']}]", style="red")
            table.add_row(str(r["seq"] or "?"), when, r["kind"], summary, r["hash"][:8] + "…")
        _out.print(table)
        if not rows:
            _out.print(f"no statements from {member} at seq {from_seq} or later")
    if bad and ch is not None:
        raise typer.Exit(EXIT_INVALID)


async def _fetch_log(
    address: str, member: str, from_seq: int, limit: int | None, timeout: float
) -> list[Envelope]:
    from pausenet.client import OversightClient

    out: list[Envelope] = []
    seq = from_seq
    async with OversightClient(address, timeout=timeout, tls=_client_tls) as client:
        while limit is None or len(out) < limit:
            page = await client.get_log(member, seq, 0 if limit is None else limit - len(out))
            if not page:
                break
            out.extend(page)
            seq += len(page)  # a log has no gaps: the page is seq .. seq+len-1
            if len(out) > _MAX_LOG_FETCH:  # a node that never stops sending pages
                raise NodeError(
                    f"log: {address} sent more than {_MAX_LOG_FETCH} statements; give --limit"
                )
    return out if limit is None else out[:limit]


_MAX_LOG_FETCH = 1_000_000


def _log_rows(
    envelopes: Sequence[Envelope], member: str, ch: Charter | None
) -> list[dict[str, Any]]:
    from pausenet.core.payload import CodecError, decode_statement

    rows: list[dict[str, Any]] = []
    now = _now_ms()
    prev: Statement | None = None
    prev_hash = b""
    for env in envelopes:
        problem = ""
        st: Statement | None = None
        if ch is not None:
            got = verify_envelope(ch, env, now_ms=now)
            if isinstance(got, SignedStatement):
                st = got.statement
            else:
                problem = str(got) if isinstance(got, Rejection) else "not a statement"
        else:
            try:
                st = decode_statement(env.payload)
            except CodecError as exc:
                problem = f"malformed: {exc}"
        h = env.payload_hash
        if st is None:
            rows.append(_log_row(None, h, env, problem or "unreadable"))
            prev = None
            continue
        if st.member != member:
            problem = problem or f"a statement of {st.member}, not {member}"
        elif ch is not None and prev is not None and st.seq == prev.seq + 1:
            if st.prev_hash != prev_hash:
                problem = "broken chain: prev_hash is not the hash of the statement before"
        elif ch is not None and prev is not None:
            problem = f"seq {st.seq} after {prev.seq}"
        rows.append(_log_row(st, h, env, problem))
        prev, prev_hash = st, h
    return rows


def _log_row(st: Statement | None, h: bytes, env: Envelope, problem: str) -> dict[str, Any]:
    kind, summary = describe_statement(st.body) if st is not None else ("?", "")
    return {
        "seq": st.seq if st else None,
        "issued_at": st.issued_at_ms if st else None,
        "kind": kind,
        "summary": summary,
        "hash": h.hex(),
        "prev_hash": st.prev_hash.hex() if st else None,
        "problem": problem or None,
        "envelope": env.to_json(),
    }


@app.command("view")
def view_command(
    node: _NodeOpt,
    out: Annotated[Path, typer.Option("--out", help="Where to write the bundle (JSON).")],
    nonce: Annotated[
        str | None,
        typer.Option("--nonce", help="Your nonce, 16-64 bytes in hex (default: 32 random bytes)."),
    ] = None,
    charter: Annotated[
        Path | None, typer.Option("--charter", help="Also check the answer now with this charter.")
    ] = None,
    timeout: _TimeoutOpt = 5.0,
) -> None:
    """Save a node's signed answer, with every envelope it counted, as a bundle.

    The node signs its answer (state, epoch, as-of time, and the hashes of its proof envelopes)
    for your nonce; `pausenet verify --charter FILE BUNDLE` checks it offline later, without
    trusting the node. Exits 1 if --charter is given and the answer does not check.
    """
    from pausenet.client import OversightClient
    from pausenet.core.payload import pause_state_from_pb
    from pausenet.node.wire import envelope_from_pb

    address = _node_address(node)
    n = _parse_nonce(nonce) if nonce is not None else secrets.token_bytes(32)
    ch = load_charter(charter) if charter is not None else None

    async def go() -> ViewReply:
        async with OversightClient(address, timeout=timeout, tls=_client_tls) as client:
            r: ViewReply = await client.get_view(n)
        return r

    reply = asyncio.run(go())
    if not reply.HasField("signed_answer"):
        raise NodeError(f"view: the node at {address} did not sign its answer for the nonce")
    answer = envelope_from_pb(reply.signed_answer)
    proof = [envelope_from_pb(e) for e in reply.proof]
    write_bundle(out, proof, reply.now_ms, nonce=n, answer=answer)
    as_of = format_time(reply.as_of_ms) if reply.as_of_ms else "not proven"
    _out.print(
        f"wrote {out}: {pause_state_from_pb(reply.state)}, epoch {reply.epoch}, as of {as_of};"
        f" {len(proof)} envelope(s), answer signed by {_answer_signer(answer)}"
        f" for nonce {n.hex()[:16]}…",
        soft_wrap=True,
    )
    if ch is not None:
        check = check_bundle_answer(ch, read_bundle(out))
        assert check is not None
        _print_answer_check(check, _answer_signer(answer), nonce_checked=True)
        if not check:
            raise typer.Exit(EXIT_INVALID)
    else:
        _out.print(
            f"check it offline: pausenet verify --charter CHARTER.toml {shlex.quote(str(out))}"
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _prog() -> str:
    """How to run this very command again: 'pausenet' when that is on PATH, else its path."""
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
        line = " ".join(str(exc).split("\n"))
        _err.print(Text.assemble(("error: ", "bold red"), (line, "red")), soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, and not exit 1 ("answer invalid")
        line = " ".join(f"{type(exc).__name__}: {exc}".split("\n"))
        _err.print(
            Text.assemble(("error: ", "bold red"), (f"unexpected failure ({line})", "red")),
            soft_wrap=True,
        )
        return EXIT_ERROR
    return 0


def main() -> None:
    sys.exit(cli_main())
