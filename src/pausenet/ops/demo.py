"""The offline demo: a coordinated pause walked step by step, with real keys and signatures.

It creates a federation on disk (3 labs, 1 overseer), signs statements and heartbeats as the
members' nodes would, evaluates the view after each step on a simulated clock, and ends by
writing a bundle and verifying it exactly as `pausenet verify` does. No network is involved.
"""

from __future__ import annotations

import shlex
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from pausenet.core.bundle import evaluate_bundle, write_bundle
from pausenet.core.charter import Charter, Role, load_charter
from pausenet.core.records import (
    Body,
    Compliance,
    ComplianceState,
    Decision,
    SignedHeartbeat,
    SignedStatement,
    TriggerAttestation,
    Vote,
)
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.core.view import PauseState, View, evaluate
from pausenet.errors import CharterError, PausenetError
from pausenet.ops.federation import Federation, FederationMember, init_federation
from pausenet.ops.render import reason_text, render_view, short_time, state_text

__all__ = ["DEMO_FEDERATION_ID", "DemoResult", "run_demo"]

DEMO_FEDERATION_ID = "pausenet-demo"


@dataclass(frozen=True)
class DemoResult:
    dir: Path
    charter_path: Path
    bundle_path: Path
    final: View  # the view of the bundle, as `pausenet verify` computes it


@dataclass
class _Node:
    """One member's signing state: its log and heartbeat counter (a node keeps these durably)."""

    member: FederationMember
    log: list[SignedStatement] = field(default_factory=list)
    counter: int = 0

    def sign(self, charter: Charter, body: Body, at_ms: int) -> SignedStatement:
        prev = self.log[-1] if self.log else None
        st = build_statement(
            charter,
            self.member.id,
            prev.seq + 1 if prev else 1,
            prev.hash if prev else b"",
            at_ms,
            body,
        )
        signed = sign_statement(self.member.key, st)
        self.log.append(signed)
        return signed

    def heartbeat(self, charter: Charter, at_ms: int) -> SignedHeartbeat:
        self.counter += 1
        head = self.log[-1] if self.log else None
        return sign_heartbeat(
            self.member.key,
            charter,
            self.member.id,
            head_seq=head.seq if head else 0,
            head_hash=head.hash if head else b"",
            counter=self.counter,
            issued_at_ms=at_ms,
            address=self.member.listen,
        )


class _Walkthrough:
    def __init__(self, fed: Federation, console: Console, start_ms: int) -> None:
        self.charter = fed.charter
        self.console = console
        self.start = start_ms
        self.now = start_ms
        self.nodes = {m.id: _Node(m) for m in fed.members}
        self.heartbeats: dict[str, SignedHeartbeat] = {}
        self.step_no = 0

    # -- acting -------------------------------------------------------------------------

    def advance(self, seconds: int) -> None:
        self.now += seconds * 1000

    def everyone_heartbeats(self) -> None:
        for mid, node in self.nodes.items():
            self.heartbeats[mid] = node.heartbeat(self.charter, self.now)

    def sign(self, member_id: str, body: Body) -> None:
        st = self.nodes[member_id].sign(self.charter, body, self.now)
        self.console.print(
            Text.assemble(
                "  ",
                (member_id, "bold"),
                f" signs statement #{st.seq}: ",
                (_describe(body), "cyan"),
                (f"  sha256 {st.hash.hex()[:8]}…", "dim"),
            )
        )

    def view(self) -> View:
        items: list[SignedStatement | SignedHeartbeat] = [
            st for node in self.nodes.values() for st in node.log
        ]
        items += self.heartbeats.values()
        return evaluate(self.charter, items, self.now)

    # -- telling ------------------------------------------------------------------------

    def step(self, title: str, *story: str) -> None:
        self.step_no += 1
        elapsed = (self.now - self.start) // 1000
        clock = f"t+{elapsed // 60}:{elapsed % 60:02d}"
        self.console.print()
        self.console.print(
            Rule(f"[bold]{self.step_no}. {title}[/bold]  [dim]{clock}[/dim]", align="left")
        )
        for line in story:
            self.console.print(Text("  " + line, style="dim"))

    def show(self, expect: PauseState, *, certified: PauseState | None = None) -> View:
        v = self.view()
        line = Text("  → ")
        line.append_text(state_text(v.state))
        if v.state is PauseState.UNKNOWN:
            line.append("  last certified: ")
            line.append_text(state_text(v.certified_state))
            line.append(f" (epoch {v.epoch})")
        else:
            line.append(f"  epoch {v.epoch}, proven as of {short_time(v.as_of_ms)}")
        self.console.print(line)
        self.console.print(Text(f"    {reason_text(v)}", style="italic"))
        if v.state is not expect or (certified and v.certified_state is not certified):
            raise PausenetError(
                f"demo: expected {expect.value} but the view says {v.state.value}: {v.explanation}"
            )
        return v

    def tally(self, v: View, epoch: int, decision: Decision) -> None:
        rec = next((e for e in v.epochs if e.epoch == epoch), None)
        voters = (
            () if rec is None else rec.pause_votes if decision is Decision.PAUSE else rec.lift_votes
        )
        rules = self.charter.rules
        labs = [m for m in voters if self.nodes[m].member.role is Role.LAB]
        ovs = [m for m in voters if m not in labs]
        if decision is Decision.PAUSE:
            need = f"labs {len(labs)} of {rules.pause_threshold} needed"
        else:
            need = f"labs {len(labs)} of {rules.lift_threshold} needed"
            if rules.lift_overseer_threshold:
                need += f", overseers {len(ovs)} of {rules.lift_overseer_threshold}"
        who = ", ".join(voters) or "nobody"
        self.console.print(f"    {decision.value.upper()} votes for epoch {epoch}: {who} ({need})")

    def compliance(self, v: View) -> None:
        parts = [f"{m.id} {m.compliance.value}" for m in v.members if m.compliance is not None]
        self.console.print(f"    compliance: {', '.join(parts)}")


def run_demo(
    dir: Path | None = None, *, console: Console | None = None, prog: str = "pausenet"
) -> DemoResult:
    """Run the walkthrough in dir (default: a new temporary directory, kept afterwards).

    prog is how the closing hint names the pausenet command (e.g. '.venv/bin/pausenet').
    """
    console = console or Console(highlight=False)
    fed_dir = _demo_dir(dir)
    fed = init_federation(fed_dir, 3, 1, federation_id=DEMO_FEDERATION_ID, force=True)
    c = fed.charter
    r = c.rules

    console.print(Text("pausenet demo: a coordinated pause, step by step, offline", style="bold"))
    console.print(
        f"A federation of {len(c.labs())} labs ({', '.join(m.id for m in c.labs())}) and"
        f" {len(c.overseers())} overseer ({', '.join(m.id for m in c.overseers())}), created in"
        f" {fed_dir}"
    )
    console.print(
        f"Rules: a pause needs {r.pause_threshold} of {len(c.labs())} labs; a lift needs"
        f" {r.lift_threshold} labs and {r.lift_overseer_threshold} overseer; a member silent for"
        f" more than {r.heartbeat_ttl_s} s is stale."
    )
    console.print(Text(f"Charter digest {c.digest_hex}", style="dim"))
    console.print(
        Text(
            "Each step signs real Ed25519 statements (hash-chained per member) and heartbeats,"
            " then evaluates the view a node would compute.",
            style="dim",
        )
    )

    w = _Walkthrough(fed, console, start_ms=time.time_ns() // 1_000_000)

    w.step(
        "Everyone is online; nobody has voted",
        "Each member's node signs a heartbeat (its log's head, and that it is alive) at every step.",
    )
    w.everyone_heartbeats()
    w.show(PauseState.NOT_PAUSED)

    w.advance(20)
    w.step("lab-a reports a trigger")
    w.sign("lab-a", TriggerAttestation("rsi-detected", note="run 42 rewrote its own optimizer"))
    w.everyone_heartbeats()
    v = w.show(PauseState.NOT_PAUSED)
    attested = "; ".join(f"{t} by {', '.join(ms)}" for t, ms in v.triggers_attested)
    console.print(f"    triggers attested: {attested}")

    w.advance(20)
    w.step("lab-a votes to pause", "One lab alone cannot start a pause.")
    w.sign("lab-a", Vote(1, Decision.PAUSE, ("rsi-detected",), "pause until we understand run 42"))
    w.everyone_heartbeats()
    v = w.show(PauseState.NOT_PAUSED)
    w.tally(v, 1, Decision.PAUSE)

    w.advance(20)
    w.step("lab-b votes to pause", "The second lab vote completes the pause certificate.")
    w.sign("lab-b", Vote(1, Decision.PAUSE, ("rsi-detected",)))
    w.everyone_heartbeats()
    v = w.show(PauseState.PAUSED)
    w.tally(v, 1, Decision.PAUSE)

    w.advance(20)
    w.step("lab-a and lab-b confirm they have halted", "Each lab has a grace period to comply.")
    w.sign("lab-a", Compliance(1, ComplianceState.HALTED))
    w.sign("lab-b", Compliance(1, ComplianceState.HALTED))
    w.everyone_heartbeats()
    v = w.show(PauseState.PAUSED)
    w.compliance(v)

    w.advance(3 * 60)
    w.step(
        "Silence: no heartbeat for 3 minutes",
        "No news reaches our node (a partition, or news withheld). The members could have lifted",
        "the pause meanwhile, so the node says UNKNOWN rather than repeat a stale answer.",
    )
    w.show(PauseState.UNKNOWN, certified=PauseState.PAUSED)

    w.advance(20)
    w.step(
        "Back online: lab-a and lab-b vote to lift",
        "Labs alone cannot lift: an overseer must agree.",
    )
    w.sign("lab-a", Vote(1, Decision.LIFT, note="run 42 explained and contained"))
    w.sign("lab-b", Vote(1, Decision.LIFT))
    w.everyone_heartbeats()
    v = w.show(PauseState.PAUSED)
    w.tally(v, 1, Decision.LIFT)

    w.advance(20)
    w.step("overseer-a agrees to lift")
    w.sign("overseer-a", Vote(1, Decision.LIFT))
    w.everyone_heartbeats()
    v = w.show(PauseState.NOT_PAUSED)
    w.tally(v, 1, Decision.LIFT)

    # What a node would hand an overseer: the envelopes that prove its answer.
    bundle_path = fed_dir / "bundle.json"
    write_bundle(bundle_path, v.envelopes, w.now)
    charter = load_charter(fed.charter_path)
    final, source = evaluate_bundle(charter, bundle_path)
    w.step(
        "An overseer checks the answer offline",
        f"The proof ({len(v.envelopes)} signed envelopes) is in {bundle_path};",
        "verifying it needs only the charter, as `pausenet verify` does:",
    )
    console.print()
    render_view(final, console, charter=charter, now_source=source)
    console.print()
    cmd = shlex.join([prog, "verify", "--charter", str(fed.charter_path), str(bundle_path)])
    console.print("Run the same check yourself:")
    console.print(Text("  " + cmd, style="bold"), soft_wrap=True)
    return DemoResult(fed_dir, fed.charter_path, bundle_path, final)


def _demo_dir(dir: Path | None) -> Path:
    if dir is None:
        return Path(tempfile.mkdtemp(prefix="pausenet-demo-"))
    if dir.is_dir() and any(dir.iterdir()):
        try:
            previous = load_charter(dir / "charter.toml").federation_id == DEMO_FEDERATION_ID
        except CharterError:
            previous = False
        if not previous:
            raise PausenetError(
                f"{dir}: not empty and not an earlier demo; choose an empty or new --dir"
            )
    return dir


def _describe(body: Body) -> str:
    if isinstance(body, Vote):
        what = f"Vote(epoch {body.epoch}, {body.decision.value.upper()}"
        if body.triggers:
            what += f", triggers {', '.join(body.triggers)}"
        return what + (f', "{body.note}")' if body.note else ")")
    if isinstance(body, Compliance):
        return f"Compliance(epoch {body.epoch}, {body.state.value.upper()})"
    return f"TriggerAttestation({body.trigger_id}" + (f', "{body.note}")' if body.note else ")")
