"""Commands that act through a member's own node: vote, attest and stats, and how they find
that node's admin API (node.json, else the config) and token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pausenet.errors import NodeError, PausenetError
from pausenet.ops.cli.app import app, attest_app, console, err_console, now_ms, print_json, vote_app

if TYPE_CHECKING:
    from pausenet.client import AdminClient
    from pausenet.core.charter import Charter
    from pausenet.core.dsse import Envelope
    from pausenet.core.records import SignedStatement
    from pausenet.core.verify import Rejection
    from pausenet.node.config import NodeConfig
    from pausenet.node.tls import TlsFiles
    from pausenet.v1.admin_pb2 import IssueReply

__all__ = ["attest_compliance", "attest_trigger", "stats", "vote_lift", "vote_pause"]

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
    key_path: Path | None = None


def _own_statement(target: _AdminTarget, env: Envelope) -> SignedStatement | Rejection:
    """A statement checked with the member's own key instead of a charter (the node runs a
    later version than its config's charter file)."""
    from pausenet.core.dsse import pae
    from pausenet.core.keys import load_signing_key
    from pausenet.core.payload import CodecError, decode_statement
    from pausenet.core.records import STATEMENT_TYPE, SignedStatement
    from pausenet.core.verify import Rejection
    from pausenet.errors import Reason

    def bad(detail: str) -> Rejection:
        return Rejection(Reason.BAD_SIGNATURE, detail, env.payload_hash, target.member)

    if target.key_path is None or env.payload_type != STATEMENT_TYPE or len(env.signatures) != 1:
        return bad("not a statement signed once")
    key = load_signing_key(target.key_path).public_key
    if not key.verify(pae(env.payload_type, env.payload), env.signatures[0].sig):
        return bad(f"signature does not verify with {target.member}'s key")
    try:
        st = decode_statement(env.payload)
    except CodecError as exc:
        return bad(str(exc))
    return SignedStatement(st, env, env.payload_hash)


def _admin_target(config: Path) -> _AdminTarget:
    from pausenet.core.charter import load_charter
    from pausenet.node.config import NODE_FILE, load_config, parse_host_port
    from pausenet.node.runfile import read_admin_token

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
        cfg.key_path,
    )


def _running_admin_address(cfg: NodeConfig) -> str | None:
    """The admin address in <data_dir>/node.json, if a node for this member is running."""
    from pausenet.node.runfile import process_alive, read_node_file

    info = read_node_file(cfg.data_dir)
    if info is None or info.member != cfg.member_id:
        return None
    if not process_alive(info.pid):
        return None  # left behind by a node that was killed
    return info.admin_address


def _issue(
    config: Path, what: str, call: Callable[[AdminClient], Awaitable[IssueReply]], as_json: bool
) -> None:
    import asyncio

    from rich.text import Text

    from pausenet.client import AdminClient
    from pausenet.core.records import SignedStatement
    from pausenet.core.verify import Rejection, verify_envelope
    from pausenet.errors import Reason
    from pausenet.node.wire import envelope_from_pb
    from pausenet.ops.render import describe_statement, short_hash

    target = _admin_target(config)

    async def go() -> IssueReply:
        async with AdminClient(target.address, target.token, tls=target.tls) as client:
            return await call(client)

    reply = asyncio.run(go())
    env = envelope_from_pb(reply.statement)
    got = verify_envelope(target.charter, env, now_ms=now_ms())
    if isinstance(got, Rejection) and got.reason is Reason.WRONG_CHARTER:
        # the node adopted a later charter version than its config's file: the statement is
        # checked with the member's own key (whose file the config names) instead
        got = _own_statement(target, env)
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
        print_json(
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
    console().print(
        Text(f"signed {st.member}#{st.seq}: {kind} {summary} (hash {short_hash(got.hash)})"),
        soft_wrap=True,
    )


def _sha256_file(path: Path) -> bytes:
    """SHA-256 of a file, read in chunks: the evidence itself never leaves this machine."""
    import hashlib

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
    err_console().print(
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
    from pausenet.core.records import Decision

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
    from pausenet.core.records import Decision

    _issue(
        config, "vote lift", lambda c: c.cast_vote(Decision.LIFT, epoch=epoch, note=note), as_json
    )


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
    from pausenet.core.records import ComplianceState

    states = {"halted": ComplianceState.HALTED, "not-halted": ComplianceState.NOT_HALTED}
    st = states.get(state.lower().replace("_", "-"))
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
    import asyncio

    from pausenet.client import AdminClient

    target = _admin_target(config)

    async def go() -> Any:
        async with AdminClient(target.address, target.token, tls=target.tls) as client:
            return await client.get_stats()

    reply = asyncio.run(go())
    counters = dict(sorted(reply.counters.items()))
    scores = dict(sorted(reply.peer_scores.items()))
    if as_json:
        print_json({"member": target.member, "counters": counters, "peer_scores": scores})
        return
    from rich.table import Table

    table = Table(title=f"{target.member}: counters since start", show_edge=False)
    table.add_column("counter")
    table.add_column("value", justify="right")
    for k, v in counters.items():
        style = "red" if k.startswith(("rejected.", "refused.")) and v else ""
        table.add_row(k, str(v), style=style)
    console().print(table)
    if scores:
        console().print(
            "peer scores: "
            + ", ".join(f"{m} {v:+.0f}" for m, v in scores.items() if m != target.member)
        )
