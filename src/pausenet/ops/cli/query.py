"""Commands that ask any node what it knows: status (once or --watch), log and view."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pausenet.errors import NodeError, PausenetError
from pausenet.ops.cli.app import EXIT_INVALID, app, client_tls, console, now_ms, print_json
from pausenet.ops.cli.offline import answer_signer, parse_nonce, print_answer_check

if TYPE_CHECKING:
    from rich.text import Text

    from pausenet.client import LogEntry, ReplyCheck
    from pausenet.core.charter import Charter
    from pausenet.core.dsse import Envelope
    from pausenet.v1.oversight_pb2 import ViewReply

__all__ = ["log_command", "status", "view_command"]

_NodeOpt = Annotated[
    str, typer.Option("--node", help="The node's public (gossip and oversight) address, HOST:PORT.")
]
_TimeoutOpt = Annotated[
    float, typer.Option("--timeout", help="Seconds to wait for the node's answer.", min=0.1)
]


def _node_address(node: str) -> str:
    from pausenet.node.config import parse_host_port

    try:
        parse_host_port(node, allow_port_zero=False)
    except ValueError as exc:
        raise PausenetError(f"--node: {exc}") from exc
    return node


def _load_charter(path: Path | None) -> Charter | None:
    if path is None:
        return None
    from pausenet.core.charter import load_charter

    return load_charter(path)


def _check_note(check: ReplyCheck) -> Text:
    """The line under a status that says whether the node's answer checked."""
    from rich.text import Text

    short = check.charter_digest[:16] + "…"
    if check:
        signed = f"; answer signed by {check.signed_by}" if check.signed_by else ""
        return Text(f"verified against charter {short}{signed}", style="green")
    return Text(
        f"NOT verified against charter {short}: {'; '.join(check.problems)}", style="bold red"
    )


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
    import asyncio
    import contextlib

    address = _node_address(node)
    if verify_ and charter is None:
        raise PausenetError("--verify needs --charter FILE: the charter to check against")
    ch = _load_charter(charter)
    if watch:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_watch_status(address, ch, as_json))
        return
    ok = asyncio.run(_status_once(address, ch, as_json, timeout))
    if not ok:
        raise typer.Exit(EXIT_INVALID)


async def _status_once(address: str, ch: Charter | None, as_json: bool, timeout: float) -> bool:
    import secrets

    from pausenet.client import OversightClient, check_view_reply
    from pausenet.node.wire import view_reply_to_json
    from pausenet.ops.render import status_renderable

    nonce = secrets.token_bytes(32) if ch is not None else b""
    async with OversightClient(address, timeout=timeout, tls=client_tls()) as client:
        reply = await client.get_view(nonce)
    check = check_view_reply(ch, reply, nonce) if ch is not None else None
    doc = view_reply_to_json(reply)
    if as_json:
        if check is not None:
            doc["verified"] = check.to_json()
        print_json(doc)
    else:
        console().print(status_renderable(doc, [_check_note(check)] if check is not None else []))
    return check is None or bool(check)


async def _watch_status(address: str, ch: Charter | None, as_json: bool) -> None:
    """Print (JSON) or show (a live screen) each update until the stream ends or Ctrl-C."""
    import asyncio
    import contextlib
    import json
    import sys
    import time

    from rich.console import RenderableType
    from rich.live import Live
    from rich.text import Text

    from pausenet.client import OversightClient, check_view_reply
    from pausenet.node.wire import view_reply_to_json
    from pausenet.ops.render import status_renderable

    out = console()
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
        async with OversightClient(address, tls=client_tls()) as client:
            async for reply in client.watch():
                check = check_view_reply(ch, reply, None) if ch is not None else None
                doc = view_reply_to_json(reply)
                if as_json:
                    if check is not None:
                        doc["verified"] = check.to_json()
                    sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
                    sys.stdout.flush()
                    continue
                notes = [_check_note(check)] if check is not None else []
                notes.append(Text("watching; Ctrl-C to stop", style="dim"))
                shown = (doc, notes, time.monotonic())
                if not out.is_terminal:
                    out.print(render(*shown))
                    out.print()
                elif live is None:
                    live = Live(render(*shown), console=out, auto_refresh=False)
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
    import asyncio

    from pausenet.client import check_log

    address = _node_address(node)
    ch = _load_charter(charter)
    envelopes = asyncio.run(_fetch_log(address, member, from_seq, limit, timeout))
    checked = check_log(envelopes, member, ch, now_ms=now_ms())
    rows = [_log_row(e) for e in checked.entries]
    bad = checked.problems
    if as_json:
        print_json(
            {
                "member": member,
                "node": address,
                "verified": ch is not None,
                "charter_digest": ch.digest_hex if ch else None,
                "statements": rows,
            }
        )
    else:
        _print_log(rows, member, from_seq, ch, bad)
    if bad and ch is not None:
        raise typer.Exit(EXIT_INVALID)


def _print_log(
    rows: list[dict[str, Any]], member: str, from_seq: int, ch: Charter | None, bad: int
) -> None:
    from rich.table import Table
    from rich.text import Text

    from pausenet.ops.render import iso_time

    out = console()
    if ch is None:
        out.print(
            Text(
                "unverified: these are what the node sent; give --charter FILE to check"
                " signatures and the hash chain",
                style="yellow",
            )
        )
    else:
        out.print(
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
        table.add_column(col, justify="right" if col == "seq" else "left", no_wrap=col != "summary")
    for r in rows:
        when = iso_time(r["issued_at"])
        summary = Text(r["summary"])
        if r["problem"]:
            summary = Text(f"{r['summary']} [{r['problem']}]", style="red")
        table.add_row(str(r["seq"] or "?"), when, r["kind"], summary, r["hash"][:8] + "…")
    out.print(table)
    if not rows:
        out.print(f"no statements from {member} at seq {from_seq} or later")


async def _fetch_log(
    address: str, member: str, from_seq: int, limit: int | None, timeout: float
) -> list[Envelope]:
    from pausenet.client import OversightClient

    out: list[Envelope] = []
    seq = from_seq
    async with OversightClient(address, timeout=timeout, tls=client_tls()) as client:
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


def _log_row(e: LogEntry) -> dict[str, Any]:
    from pausenet.ops.render import describe_statement

    st = e.statement
    kind, summary = describe_statement(st.body) if st is not None else ("?", "")
    return {
        "seq": st.seq if st else None,
        "issued_at": st.issued_at_ms if st else None,
        "kind": kind,
        "summary": summary,
        "hash": e.hash.hex(),
        "prev_hash": st.prev_hash.hex() if st else None,
        "problem": e.problem or None,
        "envelope": e.envelope.to_json(),
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
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Also fetch every member's whole log (paged), so the bundle needs no trust in"
            " the node.",
        ),
    ] = False,
    timeout: _TimeoutOpt = 5.0,
) -> None:
    """Save a node's signed answer, with its proof, as a bundle.

    The node signs its answer (state, epoch, as-of time, every member's log head, and the hashes
    of its proof envelopes) for your nonce; `pausenet verify --charter FILE BUNDLE` checks it
    offline later. The proof is bounded: it carries what the decision reads and elides the rest
    of each log, which the check then takes on the node's word. With --full the bundle holds the
    complete logs up to the signed heads instead, fetched page by page, and the check needs no
    trust in the node. Exits 1 if --charter is given and the answer does not check.
    """
    import asyncio
    import secrets
    import shlex

    from pausenet.client import OversightClient, fetch_full_logs
    from pausenet.core.bundle import check_bundle_answer, read_bundle, write_bundle
    from pausenet.core.payload import pause_state_from_pb
    from pausenet.node.wire import envelope_from_pb
    from pausenet.ops.render import format_time

    address = _node_address(node)
    n = parse_nonce(nonce) if nonce is not None else secrets.token_bytes(32)
    ch = _load_charter(charter)

    async def go() -> tuple[ViewReply, list[Envelope] | None, tuple[list[bytes], list[Envelope]]]:
        async with OversightClient(address, timeout=timeout, tls=client_tls()) as client:
            r: ViewReply = await client.get_view(n)
            logs = await fetch_full_logs(client, r) if full else None
            # the charter versions from the node's pin, so `verify --trust` needs one digest
            chain: tuple[list[bytes], list[Envelope]] = await client.get_chain()
        return r, logs, chain

    reply, logs, chain = asyncio.run(go())
    if not reply.HasField("signed_answer"):
        raise NodeError(f"view: the node at {address} did not sign its answer for the nonce")
    answer = envelope_from_pb(reply.signed_answer)
    if logs is not None:
        proof, counted, what = logs, None, "complete logs"
    else:
        proof = [envelope_from_pb(e) for e in reply.proof]
        counted = [bytes(h) for h in reply.proof_counted]
        what = (
            f"{reply.proof_elided} statement(s) elided; --full fetches them"
            if reply.proof_elided
            else "complete logs"
        )
    write_bundle(
        out,
        proof,
        reply.now_ms,
        nonce=n,
        answer=answer,
        counted=counted,
        chain=(tuple(chain[0]), tuple(chain[1])) if chain[0] else None,
    )
    as_of = format_time(reply.as_of_ms) if reply.as_of_ms else "not proven"
    console().print(
        f"wrote {out}: {pause_state_from_pb(reply.state)}, epoch {reply.epoch}, as of {as_of};"
        f" {len(proof)} envelope(s) ({what}), answer signed by {answer_signer(answer)}"
        f" for nonce {n.hex()[:16]}…",
        soft_wrap=True,
    )
    if ch is not None:
        check = check_bundle_answer(ch, read_bundle(out))
        assert check is not None
        print_answer_check(check, answer_signer(answer), nonce_checked=True)
        if not check:
            raise typer.Exit(EXIT_INVALID)
    else:
        console().print(
            f"check it offline: pausenet verify --charter CHARTER.toml {shlex.quote(str(out))}"
        )
