"""Commands that need no running node: keygen, charter show, federation init, tls init, verify
and the offline demo. Each imports what it uses when it runs (see app.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pausenet.errors import PausenetError
from pausenet.ops.cli.app import (
    EXIT_INVALID,
    app,
    charter_app,
    console,
    err_console,
    federation_app,
    print_json,
    prog,
    tls_app,
)
from pausenet.ops.federation import DEFAULT_BASE_PORT, DEFAULT_FEDERATION_ID

if TYPE_CHECKING:
    from pausenet.core.answer import AnswerCheck
    from pausenet.core.bundle import Bundle
    from pausenet.core.charter import Charter
    from pausenet.core.dsse import Envelope
    from pausenet.core.view import View

__all__ = ["answer_signer", "parse_nonce", "print_answer_check"]


@tls_app.command("init")
def tls_init(
    federation: Annotated[
        Path, typer.Option("--federation", help="A directory made by 'pausenet federation init'.")
    ],
    no_client_auth: Annotated[
        bool,
        typer.Option("--no-client-auth", help="Plain TLS: do not require client certificates."),
    ] = False,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host", help="Make the certificates valid for this IP or name too (repeatable)."
        ),
    ] = None,
) -> None:
    """Make a local test CA and a certificate per member, and switch every node config to TLS.

    For clusters on one machine and tests only: the certificates are valid for 127.0.0.1, ::1,
    localhost and each --host, and the CA key sits beside them. Needs the cryptography package
    (pip install 'pausenet[tls]'). Clients then pass --tls-ca DIR/tls/ca.crt (and, with client
    authentication, --tls-cert/--tls-key of a member).
    """
    from pausenet.node.tls import enable_tls_for_federation

    tls_dir = enable_tls_for_federation(
        federation, client_auth=not no_client_auth, hosts=host or ()
    )
    console().print(f"TLS on for every node in {federation}; CA and certificates in {tls_dir}")
    console().print(
        f"query a node with: pausenet --tls-ca {tls_dir / 'ca.crt'}"
        + (
            ""
            if no_client_auth
            else f" --tls-cert {tls_dir / '<member>.crt'} --tls-key {tls_dir / '<member>.key'}"
        )
        + " status --node HOST:PORT"
    )


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the private key.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a new private key file readable only by its owner and print the public key.

    The public key (64 hex digits) goes to stdout alone, ready to paste into a charter.
    """
    from pausenet.core.keys import generate, write_signing_key

    key = generate()
    write_signing_key(out, key, overwrite=force)
    err_console().print(
        f"Wrote a private key to {out} (mode 0600: only you can read it). Public key:"
    )
    console().print(key.public_key.hex(), soft_wrap=True)


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
    import json
    import sys

    from pausenet.core.charter import load_charter

    if canonical and as_json:
        raise PausenetError("--canonical and --json: give one of them")
    charter = load_charter(file)
    if canonical:
        sys.stdout.buffer.write(charter.canonical_bytes)
        sys.stdout.buffer.flush()
        return
    if as_json:
        print_json(
            {
                "digest": charter.digest_hex,
                "charter": json.loads(charter.canonical_bytes),
                "explanation": charter.explain(),
            }
        )
        return
    from rich.text import Text

    o = console()
    o.print(Text.assemble(("Charter ", "bold"), str(file)))
    o.print(Text.assemble(("Digest  ", "bold"), charter.digest_hex), soft_wrap=True)
    o.print()
    for line in charter.explain():
        o.print(Text(line), style="bold" if line.endswith(":") else "")


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
    import shlex

    from rich.table import Table
    from rich.text import Text

    from pausenet.ops.federation import init_federation

    fed = init_federation(
        dir, labs, overseers, base_port=base_port, federation_id=federation_id, force=force
    )
    c = fed.charter
    o = console()
    o.print(
        Text.assemble(
            ("Created federation ", "bold"),
            (c.federation_id, "bold cyan"),
            f" in {dir}: {len(c.labs())} lab(s), {len(c.overseers())} overseer(s)",
        )
    )
    o.print(f"Charter:       {fed.charter_path}")
    o.print(f"Digest:        {c.digest_hex}", soft_wrap=True)
    table = Table(show_edge=False, box=None, padding=(0, 2, 0, 0))
    for col in ("member", "role", "gossip", "admin"):
        table.add_column(col, style="bold" if col == "member" else "")
    for m in fed.members:
        table.add_row(m.id, m.role.value, m.listen, m.admin_listen)
    o.print(table)
    o.print(f"Private keys:  {dir / 'keys'}/<member>.key (mode 0600; keep them to yourself)")
    o.print(f"Node configs:  {dir / 'node_configs'}/<member>.toml")
    r = c.rules
    lift = f"{r.lift_threshold} labs"
    if r.lift_overseer_threshold:
        lift += f" and {r.lift_overseer_threshold} overseer(s)"
    o.print(
        f"Rules: a pause needs {r.pause_threshold} of {len(c.labs())} labs; a lift needs {lift}."
    )
    o.print(f"Read them all: pausenet charter show {shlex.quote(str(fed.charter_path))}")
    first = shlex.quote(str(dir / "node_configs" / f"{fed.members[0].id}.toml"))
    o.print(f"Start a node:  pausenet run --config {first}")


@app.command()
def verify(
    bundle: Annotated[Path, typer.Argument(help="The bundle JSON file.", show_default=False)],
    charter: Annotated[
        Path | None, typer.Option("--charter", help="The charter to check against.")
    ] = None,
    trust: Annotated[
        str | None,
        typer.Option(
            "--trust",
            help="Trust this charter version (a file or its 64-hex digest) and nothing else:"
            " check the chain the bundle carries from it, then the view under the newest"
            " version in force.",
        ),
    ] = None,
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
    malformed. Envelopes that fail a check are listed with the reason and not counted. With
    --trust, also 1 when the chain does not put the trusted version in force.
    """
    from pausenet.core.bundle import check_bundle_answer, read_bundle, view_of_bundle
    from pausenet.core.charter import load_charter

    if now is not None and now <= 0:
        raise PausenetError(f"--now {now}: give a positive Unix time in milliseconds")
    if (charter is None) == (trust is None):
        raise PausenetError("give exactly one of --charter FILE and --trust GENESIS.toml|DIGEST")
    want_nonce = parse_nonce(nonce) if nonce is not None else None
    b = read_bundle(bundle)
    if trust is not None:
        ch, view, source, check = _verify_trusting(trust, b, now, want_nonce, as_json)
    else:
        assert charter is not None
        ch = load_charter(charter)
        view, source = view_of_bundle(ch, b, now_ms=now)
        check = check_bundle_answer(ch, b, nonce=want_nonce)
    signer = answer_signer(b.answer)
    # Only a nonce the overseer gives proves the answer fresh; the bundle's own only has to match.
    fresh = want_nonce is not None
    if as_json:
        doc = view.to_json()
        doc["logs"] = {"complete": view.elided == 0, "elided": view.elided}
        if check is not None:
            doc["answer"] = _answer_json(check, signer, nonce_checked=want_nonce)
        elif fresh:
            doc["answer"] = None
        print_json(doc)
    else:
        from pausenet.ops.render import render_view

        render_view(view, console(), charter=ch, now_source=source)
        print_completeness(view)
        if check is not None:
            console().print()
            print_answer_check(check, signer, nonce_checked=fresh)
    if fresh and check is None:
        from rich.text import Text

        err_console().print(
            Text("error: --nonce given, but the bundle carries no signed answer", style="red")
        )
        raise typer.Exit(EXIT_INVALID)
    if check is not None and not check:
        raise typer.Exit(EXIT_INVALID)


def _verify_trusting(
    trust: str, b: Bundle, now: int | None, nonce: bytes | None, as_json: bool
) -> tuple[Charter, View, str, AnswerCheck | None]:
    """The chain from the trusted version, told in a few lines; exits 1 when it fails."""
    from rich.text import Text

    from pausenet.errors import GovernanceError
    from pausenet.ops.trust import verify_trusting

    try:
        got = verify_trusting(trust, b, now_ms=now, nonce=nonce)
    except GovernanceError as exc:
        err_console().print(Text(f"error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(EXIT_INVALID) from None
    if not as_json:
        first, newest = got.versions[0], got.versions[-1]
        console().print(
            Text(
                f"chain: trusted version {first.version} ({first.digest_hex[:16]}…), newest in"
                f" force version {newest.version} ({newest.digest_hex[:16]}…); {got.chain.stopped}"
            ),
            soft_wrap=True,
        )
        console().print()
    return got.versions[-1], got.view, got.source, got.answer


def parse_nonce(text: str) -> bytes:
    """--nonce HEX as bytes, of a length a node accepts."""
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


def answer_signer(env: Envelope | None) -> str:
    """Who signed a node's answer, as its envelope says (checked by the answer check)."""
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


def print_completeness(view: View) -> None:
    """Whether the bundle's logs are complete, and what a partial one leaves to the node."""
    from rich.text import Text

    from pausenet.core.view import PauseState

    o = console()
    if not view.elided:
        o.print(Text("logs: complete (every member from seq 1 to its head)", style="green"))
        return
    o.print(
        Text(
            f"logs: partial: {view.elided} statement(s) elided; this answer relies on the node"
            " for their contents: fetch full logs with `pausenet view --full` to check it"
            " without trusting the node",
            style="yellow",
        ),
        soft_wrap=True,
    )
    if view.certified_state is PauseState.PAUSED:
        o.print("a PAUSED answer is proven by the signatures alone", soft_wrap=True)
    else:
        o.print(
            "a NOT_PAUSED answer is complete only if the elided statements hold no vote that"
            " counts: full logs prove that",
            soft_wrap=True,
        )


def print_answer_check(check: AnswerCheck, signer: str, *, nonce_checked: bool) -> None:
    """'answer signed by X: VALID (…)' or INVALID with its problems, one a line."""
    from rich.text import Text

    from pausenet.ops.render import format_time

    o = console()
    a = check.answer
    if check and a is not None:
        as_of = format_time(a.as_of_ms) if a.as_of_ms is not None else "not proven"
        line = Text.assemble(
            f"answer signed by {signer}: ",
            ("VALID", "bold green"),
            f" ({a.state.value}, epoch {a.epoch}, as of {as_of})",
        )
        o.print(line, soft_wrap=True)
        if not nonce_checked:
            o.print(
                Text(
                    "freshness not checked: give --nonce with the nonce you sent the node"
                    " (the answer only matches the bundle's own nonce, if any)"
                )
            )
        return
    o.print(Text.assemble(f"answer signed by {signer}: ", ("INVALID", "bold red")))
    for problem in check.problems:
        o.print(Text(f"  - {problem}", style="red"), soft_wrap=True)


@app.command()
def demo(
    dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Directory for the demo federation (default: a new temp dir)."),
    ] = None,
) -> None:
    """Walk a coordinated pause step by step, offline, with real keys and signatures."""
    from pausenet.ops.demo import run_demo

    run_demo(dir, console=console(), prog=prog())
