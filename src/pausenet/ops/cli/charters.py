"""`pausenet charter sign | status | diff`: approving charter versions and comparing them,
offline (a lab's key may live on an air-gapped machine). The rules are in `pausenet.ops.charters`
and `pausenet.core.governance`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pausenet.errors import PausenetError
from pausenet.ops.cli.app import (
    EXIT_INVALID,
    charter_app,
    console,
    err_console,
    now_ms,
    print_json,
)

if TYPE_CHECKING:
    from pausenet.v1.admin_pb2 import GovernReply

__all__ = [
    "charter_approve",
    "charter_diff",
    "charter_propose",
    "charter_sign",
    "charter_status_command",
    "charter_submit",
]


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
    import json
    import sys

    from rich.text import Text

    from pausenet.core.charter import load_charter
    from pausenet.core.keys import load_signing_key
    from pausenet.ops.charters import sign_charter

    charter = load_charter(file)
    signed = sign_charter(charter, load_signing_key(key), member, now_ms())
    text = json.dumps(signed.approval.envelope.to_json(), indent=2) + "\n"
    if signed.note:
        err_console().print(Text(f"note: {signed.note}", style="yellow"))
    if out is None:
        sys.stdout.write(text)
        return
    _write_new_file(out, text)
    err_console().print(
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
    from rich.text import Text

    from pausenet.ops.charters import charter_status, status_json, status_lines

    target, result = charter_status(file, approvals, trust, chain or [])
    doc = status_json(target, result)
    if as_json:
        print_json(doc)
    else:
        out = console()
        for line in status_lines(target, result):
            out.print(Text(line), soft_wrap=True)
    if not doc["in_force"]:
        raise typer.Exit(EXIT_INVALID)


@charter_app.command("diff")
def charter_diff(
    old: Annotated[Path, typer.Argument(help="The version in force.", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The proposed version.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Explain in sentences what NEW changes relative to OLD."""
    from rich.text import Text

    from pausenet.core.charter import load_charter
    from pausenet.ops.charters import describe_changes

    lines = describe_changes(load_charter(old), load_charter(new))
    if as_json:
        print_json({"changes": lines})
        return
    out = console()
    for line in lines:
        out.print(Text(line), soft_wrap=True)


_NODE_NOTE = (
    "The node is found as for `pausenet vote` (its node.json, else the config's admin_listen)"
    " and the call carries its admin token. The node keeps what it takes and gossips it to its"
    " peers; every node adopts a version once it is approved (docs/protocol.md §15.7)."
)


def _govern(config: Path, file: Path | None, approvals: list[Path], approve: bool) -> None:
    import asyncio
    import json

    from rich.text import Text

    from pausenet.client import AdminClient
    from pausenet.core.charter import load_charter
    from pausenet.core.dsse import Envelope
    from pausenet.errors import FormatError
    from pausenet.ops.cli.admin import _admin_target

    target = _admin_target(config)
    canonical = load_charter(file).canonical_bytes if file is not None else b""
    envs: list[Envelope] = []
    for path in approvals:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            for one in doc if isinstance(doc, list) else [doc]:
                envs.append(Envelope.from_json(one))
        except (OSError, ValueError, FormatError) as exc:
            raise PausenetError(f"{path}: not an approval envelope in JSON ({exc})") from exc

    async def go() -> GovernReply:
        async with AdminClient(target.address, target.token, tls=target.tls) as client:
            r: GovernReply = await client.govern(canonical, tuple(envs), approve=approve)
            return r

    reply = asyncio.run(go())
    out = console()
    for why in reply.refused:
        err_console().print(Text(f"refused: {why}", style="yellow"), soft_wrap=True)
    if reply.status:
        out.print(Text(f"{target.member}'s node: {reply.status}"), soft_wrap=True)
    out.print(
        Text(
            f"{target.member}'s node runs charter version {reply.version}"
            f" ({bytes(reply.digest).hex()[:16]}…)"
        )
    )
    if reply.refused:
        raise typer.Exit(EXIT_INVALID)


_ConfigOpt = Annotated[
    Path, typer.Option("--config", help="Your node's config file.", show_default=False)
]


@charter_app.command("propose", epilog=_NODE_NOTE)
def charter_propose(
    file: Annotated[Path, typer.Argument(help="The new charter version.", show_default=False)],
    config: _ConfigOpt,
    approvals: Annotated[
        list[Path] | None,
        typer.Option("--approvals", help="Approval files to hand over with it (repeatable)."),
    ] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Your node also signs your approval of it.")
    ] = False,
) -> None:
    """Hand a new charter version to your node, which keeps it and gossips it for approval."""
    _govern(config, file, approvals or [], approve)


@charter_app.command("approve", epilog=_NODE_NOTE)
def charter_approve(
    file: Annotated[
        Path, typer.Argument(help="The charter version to approve.", show_default=False)
    ],
    config: _ConfigOpt,
) -> None:
    """Approve a charter version with your node's key, and hand it and the approval to the node."""
    _govern(config, file, [], True)


@charter_app.command("submit", epilog=_NODE_NOTE)
def charter_submit(
    approvals: Annotated[
        list[Path],
        typer.Argument(help="Approval files (`charter sign` output).", show_default=False),
    ],
    config: _ConfigOpt,
) -> None:
    """Hand approvals signed offline (`pausenet charter sign`) to your node to gossip."""
    _govern(config, None, approvals, False)
