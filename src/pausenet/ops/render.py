"""Showing a View to people: rich text for the terminal (machines get `View.to_json`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pausenet.core.charter import Charter
from pausenet.core.records import Body, Compliance, TriggerAttestation, Vote
from pausenet.core.view import (
    PATH_LABS,
    Certificate,
    ComplianceStatus,
    PauseState,
    View,
    describe_path,
)

__all__ = [
    "describe_statement",
    "format_time",
    "iso_time",
    "reason_text",
    "render_epochs",
    "render_headline",
    "render_members",
    "render_view",
    "short_hash",
    "short_time",
    "state_text",
    "status_renderable",
]

_STATE_STYLE = {
    PauseState.PAUSED: "bold red",
    PauseState.NOT_PAUSED: "bold green",
    PauseState.UNKNOWN: "bold yellow",
}
_COMPLIANCE_STYLE = {
    ComplianceStatus.COMPLIANT: "green",
    ComplianceStatus.NON_COMPLIANT: "bold red",
    ComplianceStatus.PENDING: "yellow",
    ComplianceStatus.OVERDUE: "bold red",
}


def format_time(ms: int | None) -> str:
    """'2025-01-02T03:04:05.678Z (1735787045678)': ISO 8601 in UTC, then the exact Unix ms."""
    if ms is None:
        return "-"
    try:
        iso = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return f"{iso}.{ms % 1000:03d}Z ({ms})"


def iso_time(ms: int | None) -> str:
    """'2025-01-02T03:04:05Z': ISO 8601 in UTC to the second, for tables."""
    if ms is None:
        return "-"
    try:
        return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ms)


def short_time(ms: int | None) -> str:
    """'17:48:45 UTC': enough for a story told within one day."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S UTC")


def reason_text(view: View) -> str:
    """The view's explanation without its trailing raw as-of time (shown on its own)."""
    suffix = f"; proven as of {view.as_of_ms}"
    text = view.explanation
    return text[: -len(suffix)] if text.endswith(suffix) else text


def _ago(ms: int | None, now_ms: int) -> str:
    if ms is None:
        return "never"
    d = (now_ms - ms) // 1000
    if d < 0:
        return f"in {-d} s"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if d >= size:
            return f"{d // size} {unit} ago"
    return f"{d} s ago"


def state_text(state: PauseState) -> Text:
    return Text(state.value, style=_STATE_STYLE[state])


def render_headline(view: View, console: Console) -> None:
    """State, epoch, as-of time, certified state and the view's own explanation."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("State", state_text(view.state))
    grid.add_row("Epoch", str(view.epoch) if view.epoch else "0 (never paused)")
    grid.add_row("As of", format_time(view.as_of_ms) if view.as_of_ms is not None else "not proven")
    certified = state_text(view.certified_state)
    if view.certified_since_ms is not None:
        certified.append(f" since {format_time(view.certified_since_ms)}", style="default")
    grid.add_row("Certified", certified)
    grid.add_row("Why", Text(reason_text(view)))
    console.print(grid)


def render_members(view: View, console: Console) -> None:
    table = Table(title="Members", title_justify="left", title_style="bold")
    for col in ("member", "role", "head seq", "heartbeat", "fresh", "synced", "compliance"):
        table.add_column(col, justify="right" if col == "head seq" else "left")
    for m in view.members:
        synced = Text("EQUIVOCATED", style="bold red") if m.equivocator else _yes_no(m.synced)
        compliance = (
            Text(m.compliance.value, style=_COMPLIANCE_STYLE[m.compliance])
            if m.compliance
            else Text("-", style="dim")
        )
        table.add_row(
            m.id,
            m.role.value,
            str(m.head_seq),
            _ago(m.heartbeat_at_ms, view.now_ms),
            _yes_no(m.fresh),
            synced,
            compliance,
        )
    console.print(table)


def render_epochs(view: View, console: Console, charter: Charter | None = None) -> None:
    """Each epoch's certificates with their voters, and votes short of a certificate."""
    console.print(Text("Certificates", style="bold"))
    if not view.epochs:
        console.print("  none: no member has voted")
    rules = charter.rules if charter else None
    for e in view.epochs:
        for kind, cert, voters in (
            ("pause", e.pause, e.pause_votes),
            ("lift", e.lift, e.lift_votes),
        ):
            if cert is not None:
                console.print(f"  epoch {e.epoch} {kind.upper()}: {_cert_text(cert)}")
            elif voters:
                need = ""
                if rules is not None:
                    n = rules.pause_threshold if kind == "pause" else rules.lift_threshold
                    need = f"; {n} labs needed"
                    if kind == "lift" and rules.lift_overseer_threshold:
                        need += f" and {rules.lift_overseer_threshold} overseer(s)"
                console.print(
                    f"  epoch {e.epoch} {kind.upper()}: no certificate yet; votes from"
                    f" {', '.join(voters)}{need}"
                )
        if e.pause is None:
            for tid, attesters in e.tripwire_attesters:
                tw = (
                    next((t.auto_pause for t in charter.triggers if t.id == tid), None)
                    if charter
                    else None
                )
                need = f"; {tw.attest_threshold} needed" if tw else ""
                console.print(
                    f"  epoch {e.epoch} tripwire {tid}: no certificate yet; attested by"
                    f" {', '.join(attesters)}{need}"
                )


def _cert_text(c: Certificate) -> str:
    who = _who(c.labs, c.overseers, c.attesters)
    when = f"formed {format_time(c.formed_at_ms)}"
    if c.effective_at_ms != c.formed_at_ms:
        when += f", in effect {format_time(c.effective_at_ms)}"
    if c.path != PATH_LABS:  # lab votes, the usual path, go unsaid
        when = f"by {describe_path(c.path)}, {when}"
    return f"{who} ({when})"


def _who(labs: Sequence[str], overseers: Sequence[str], attesters: Sequence[str]) -> str:
    who = f"labs {', '.join(labs)}" if labs else "no labs"
    if overseers:
        who += f"; overseers {', '.join(overseers)}"
    if attesters:
        who += f"; attested by {', '.join(attesters)}"
    return who


def render_view(
    view: View, console: Console, *, charter: Charter | None = None, now_source: str = ""
) -> None:
    """The whole view for a person: headline, members, certificates, evidence, rejections."""
    render_headline(view, console)
    note = f" ({now_source})" if now_source else ""
    console.print(f"[dim]Evaluated at {format_time(view.now_ms)}{escape(note)}[/dim]")
    console.print()
    render_members(view, console)
    render_epochs(view, console, charter)
    if view.triggers_attested:
        console.print(Text("Triggers attested", style="bold"))
        for tid, members in view.triggers_attested:
            console.print(f"  {escape(tid)}: {', '.join(members)}")
    if view.evidence:
        console.print(Text("Evidence of equivocation", style="bold red"))
        for ev in view.evidence:
            console.print(
                f"  {ev.member} signed two different entries for seq {ev.seq}"
                f" (evidence {ev.id.hex()[:16]}…)"
            )
    if view.rejected:
        console.print(Text(f"Rejected envelopes ({len(view.rejected)})", style="bold yellow"))
        table = Table(show_edge=False, box=None, padding=(0, 2, 0, 2))
        for col in ("reason", "member", "payload sha256", "detail"):
            table.add_column(col)
        for r in view.rejected:
            table.add_row(
                r.reason.value, r.member or "-", r.payload_hash.hex()[:16] + "…", Text(r.detail)
            )
        console.print(table)


def _yes_no(flag: bool) -> Text:
    return Text("yes", style="green") if flag else Text("no", style="yellow")


# -- a node's reply (pausenet status, log) ---------------------------------------------------


def short_hash(h: bytes) -> str:
    """'1a2b3c4d…': enough of a hash to tell entries apart on screen."""
    return h.hex()[:8] + "…"


def describe_statement(body: Body) -> tuple[str, str]:
    """(kind, summary) of a statement body, e.g. ('vote', 'PAUSE epoch 1 (rsi-detected)')."""
    if isinstance(body, Vote):
        text = f"{body.decision.value.upper()} epoch {body.epoch}"
        if body.triggers:
            text += f" ({', '.join(body.triggers)})"
        if body.note:
            text += f": {body.note}"
        return "vote", text
    if isinstance(body, Compliance):
        text = f"{body.state.value} epoch {body.epoch}"
        if body.evidence_sha256:
            text += f", evidence sha256 {short_hash(body.evidence_sha256)}"
        return "compliance", text
    assert isinstance(body, TriggerAttestation)
    text = body.trigger_id
    if body.evidence_sha256:
        text += f", evidence sha256 {short_hash(body.evidence_sha256)}"
    if body.note:
        text += f": {body.note}"
    return "trigger", text


def _compliance_cell(value: object) -> Text:
    try:
        status = ComplianceStatus(str(value))
    except ValueError:
        return Text(str(value) if value else "-", style="" if value else "dim")
    return Text(status.value, style=_COMPLIANCE_STYLE[status])


def _state_of(name: str) -> PauseState:
    return PauseState(name) if name in PauseState.__members__ else PauseState.UNKNOWN


def status_renderable(doc: Mapping[str, Any], notes: Sequence[Text] = ()) -> RenderableType:
    """A node's view as `view_reply_to_json` gives it: the state large and in colour, the
    epoch, as-of time and age, the certified state, the explanation, then a members table.
    `notes` (e.g. whether the answer checked against a charter) go under the headline."""
    now = int(doc["now"])
    state = _state_of(str(doc["state"]))
    big = Panel(
        Text(f"  {state.value}  ", style=_STATE_STYLE[state]),
        expand=False,
        border_style=_STATE_STYLE[state].replace("bold ", ""),
    )
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Node", f"{doc.get('answered_by') or '?'}, its clock {format_time(now)}")
    epoch = int(doc["epoch"])
    grid.add_row("Epoch", str(epoch) if epoch else "0 (never paused)")
    as_of = doc.get("as_of")
    grid.add_row(
        "As of",
        f"{format_time(as_of)}, {_ago(as_of, now)}" if as_of is not None else "not proven",
    )
    certified = state_text(_state_of(str(doc["certified_state"])))
    since = doc.get("certified_since")
    if since is not None:
        certified.append(f" since {format_time(since)}", style="default")
    grid.add_row("Certified", certified)
    explanation = str(doc.get("explanation", ""))
    if as_of is not None:
        explanation = explanation.removesuffix(f"; proven as of {as_of}")
    grid.add_row("Why", Text(explanation))
    parts: list[RenderableType] = [big, grid, *notes]

    table = Table(
        title="Members",
        title_justify="left",
        title_style="bold",
        box=None,
        padding=(0, 1, 0, 0),
        header_style="bold underline",
    )
    for col in ("member", "role", "head seq", "heartbeat", "fresh", "synced", "compliance"):
        table.add_column(col, justify="right" if col == "head seq" else "left", no_wrap=True)
    table.add_column("equivocator", no_wrap=True)
    for m in doc.get("members", []):
        compliance = m.get("compliance")
        table.add_row(
            str(m["id"]),
            str(m["role"]),
            str(m["head_seq"]),
            _ago(m.get("heartbeat_at"), now),
            _yes_no(bool(m["fresh"])),
            _yes_no(bool(m["synced"])),
            _compliance_cell(compliance),
            Text("YES", style="bold red") if m.get("equivocator") else Text("no", style="dim"),
        )
    parts.append(table)
    certs = doc.get("certificates", [])
    if certs:
        parts.append(Text("Certificates", style="bold"))
        for c in certs:
            who = _who(c["labs"], c["overseers"], c.get("attesters", ()))
            path = str(c.get("path") or PATH_LABS)
            by = f"by {describe_path(path)}, " if path != PATH_LABS else ""
            parts.append(
                Text(
                    f"  epoch {c['epoch']} {str(c['decision']).upper()}: {who}"
                    f" ({by}in effect {iso_time(c['effective_at'])})"
                )
            )
    evidence = doc.get("evidence", [])
    if evidence:
        parts.append(Text("Evidence of equivocation", style="bold red"))
        for e in evidence:
            parts.append(
                Text(
                    f"  {e['member']} signed two different entries at seq {e['seq']}:"
                    f" {str(e['first'])[:16]}… and {str(e['second'])[:16]}…"
                    f" (evidence {str(e['id'])[:16]}…); its lift votes from there on do not count",
                    style="red",
                )
            )
    return Group(*parts)
