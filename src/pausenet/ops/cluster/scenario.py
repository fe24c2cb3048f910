"""The scenario: a whole coordinated pause driven through a running cluster's nodes, each
statement signed at its member's own node, with every node's view shown as it converges.

Steps, each with a deadline: (1) a lab attests a trigger; (2) a majority of labs vote PAUSE and
every node says PAUSED; (3) every lab attests compliance HALTED and every node sees it; (4) labs
(and overseers) vote LIFT and every node says NOT_PAUSED.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from pausenet.client import AdminClient, read_admin_token
from pausenet.core.charter import Rules
from pausenet.core.records import ComplianceState, Decision
from pausenet.core.view import PauseState
from pausenet.errors import ClusterError, NodeError
from pausenet.ops.cluster.supervisor import PROG, Cluster, ClusterNode
from pausenet.ops.cluster.watcher import STEP_DEADLINE_S, Watcher, describe_view, state_of
from pausenet.ops.render import state_text
from pausenet.v1 import oversight_pb2

__all__ = ["SCENARIO_TRIGGER", "ScenarioResult", "plural", "run_scenario"]

ViewReply = oversight_pb2.ViewReply

SCENARIO_TRIGGER = "rsi-detected"


@dataclass
class ScenarioResult:
    epoch: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    statements: int = 0


async def run_scenario(cluster: Cluster, console: Console) -> ScenarioResult:
    """Drive a whole pause on a running cluster and show each node's view as it converges:
    a trigger attested, PAUSE votes, every node PAUSED, every lab's compliance, LIFT votes,
    every node NOT_PAUSED. Works on any cluster with no pause in effect (epoch e -> e+1)."""
    try:
        return await _scenario(cluster, console)
    except ClusterError as exc:
        raise ClusterError(f"{exc}; the nodes' logs are in {cluster.logs}/") from exc


async def _scenario(cluster: Cluster, console: Console) -> ScenarioResult:
    _require_every_node_running(cluster)
    charter = cluster.charter()
    async with Watcher(cluster.nodes, cluster.tls) as w:
        run = _Run(
            cluster,
            w,
            _Story(console, cluster.nodes),
            charter.rules,
            labs=[m.id for m in charter.labs()],
            overseers=[m.id for m in charter.overseers()],
        )
        await _introduce(run)
        await _attest_trigger(run)
        await _vote_pause(run)
        await _confirm_compliance(run)
        await _vote_lift(run)
    _summarize(run)
    return run.result


@dataclass
class _Run:
    """What the steps of one scenario share."""

    cluster: Cluster
    watcher: Watcher
    story: _Story
    rules: Rules
    labs: list[str]
    overseers: list[str]
    result: ScenarioResult = field(default_factory=lambda: ScenarioResult(epoch=0))

    @property
    def epoch(self) -> int:
        return self.result.epoch

    @property
    def n_nodes(self) -> int:
        return len(self.cluster.nodes)

    def lift_voters_text(self) -> str:
        """'2 labs and 1 overseer': who must vote LIFT."""
        lift = plural(self.rules.lift_threshold, "lab")
        if self.rules.lift_overseer_threshold:
            lift += f" and {plural(self.rules.lift_overseer_threshold, 'overseer')}"
        return lift


def _require_every_node_running(cluster: Cluster) -> None:
    down = [n for n in cluster.nodes if not cluster.is_running(n)]
    if down:
        names = " ".join(n.member for n in down)
        raise ClusterError(
            f"not every node is running ({names}); start them first:"
            f" {PROG} start --dir {shlex.quote(str(cluster.dir))}"
        )


async def _introduce(run: _Run) -> None:
    """Wait until every node says NOT_PAUSED at one epoch; the scenario pauses the next."""
    w, console = run.watcher, run.story.console
    not_paused = oversight_pb2.PAUSE_STATE_NOT_PAUSED
    await w.until(
        lambda r: r.state == not_paused,
        what="said NOT_PAUSED before the scenario",
        deadline_s=10.0,
        describe=lambda r: (
            describe_view(r)
            + (" — a pause is in effect already" if state_of(r) == "PAUSED" else "")
        ),
    )
    epochs = {w.latest[n.member].epoch for n in run.cluster.nodes}
    if len(epochs) != 1:
        raise ClusterError(f"the nodes disagree on the epoch ({sorted(epochs)}); try again")
    run.result.epoch = epoch = epochs.pop() + 1
    labs, overseers = run.labs, run.overseers
    console.print(
        Text.assemble(
            ("Scenario: ", "bold"),
            f"a coordinated pause on the {run.n_nodes} nodes in {run.cluster.dir}"
            f" ({plural(len(labs), 'lab')}, {plural(len(overseers), 'overseer')}).",
        )
    )
    console.print(
        f"Every node says NOT_PAUSED (epoch {epoch - 1}). A pause needs PAUSE votes from"
        f" {run.rules.pause_threshold} of {len(labs)} labs; a lift needs LIFT votes from"
        f" {run.lift_voters_text()}."
    )
    console.print(
        "Each statement is signed by its member's own node (Admin API) and gossiped; lab-a#2"
        " is statement 2 of lab-a's log; times are ms since the node signed it.",
        style="dim",
    )


async def _attest_trigger(run: _Run) -> None:
    """Step 1: the first lab attests the trigger; wait until every node holds it."""
    story, attester = run.story, run.labs[0]
    story.step(1, f"{attester} attests that trigger {SCENARIO_TRIGGER!r} occurred")
    t_call = time.perf_counter()
    seq, t0 = await _issue(
        run.cluster,
        attester,
        "trigger attestation",
        lambda a: a.attest_trigger(SCENARIO_TRIGGER, note="pausenet cluster scenario"),
    )
    story.line(f"{attester}'s node signed {attester}#{seq} in {(t0 - t_call) * 1000:.0f} ms")
    ms = await _converge_heads(run.watcher, story, t0, attester, seq, f"holds {attester}#{seq}")
    run.result.timings_ms["trigger attestation reached every node"] = ms
    story.line(Text(f"every node holds it after {ms:.0f} ms", style="bold"))
    run.result.statements += 1


async def _vote_pause(run: _Run) -> None:
    """Step 2: just enough labs vote PAUSE; wait until every node says PAUSED."""
    story, w, epoch = run.story, run.watcher, run.epoch
    voters = run.labs[: run.rules.pause_threshold]
    story.step(
        2,
        f"{plural(len(voters), 'lab')} vote PAUSE for epoch {epoch}, naming {SCENARIO_TRIGGER},"
        " each at its own node",
    )
    before = {n.member: _key(w.latest[n.member]) for n in w.nodes}
    t0 = time.perf_counter()
    for i, lab in enumerate(voters):
        seq, t0 = await _issue(
            run.cluster,
            lab,
            "PAUSE vote",
            lambda a: a.cast_vote(Decision.PAUSE, epoch=epoch, triggers=(SCENARIO_TRIGGER,)),
        )
        decisive = i == len(voters) - 1
        story.line(f"{lab} voted PAUSE ({lab}#{seq})" + (": the deciding vote" if decisive else ""))
    run.result.statements += len(voters)
    ms = await _converge_state(w, story, t0, PauseState.PAUSED, epoch, before, STEP_DEADLINE_S)
    run.result.timings_ms["pause in effect on every node (after the last vote)"] = ms
    story.line(Text(f"PAUSED on all {run.n_nodes} nodes {ms:.0f} ms after the deciding vote"))
    pending = _compliance_of(w.latest[run.cluster.nodes[0].member], run.labs)
    story.line("compliance now: " + ", ".join(f"{lab} {st}" for lab, st in pending.items()))


async def _confirm_compliance(run: _Run) -> None:
    """Step 3: every lab attests HALTED; wait until every node sees them all compliant."""
    story, labs, epoch = run.story, run.labs, run.epoch
    story.step(3, f"every lab confirms it has halted (compliance HALTED, epoch {epoch})")
    last_t0 = time.perf_counter()
    for lab in labs:
        seq, last_t0 = await _issue(
            run.cluster,
            lab,
            "compliance attestation",
            lambda a: a.attest_compliance(ComplianceState.HALTED, epoch=epoch),
        )
        story.line(f"{lab} attested HALTED ({lab}#{seq})")
    run.result.statements += len(labs)
    reached: dict[str, float] = {}

    def all_compliant(r: ViewReply) -> bool:
        return all(st == "compliant" for st in _compliance_of(r, labs).values())

    def on_compliance(node: str, r: ViewReply, arrived: float) -> None:
        if node not in reached and all_compliant(r):
            reached[node] = arrived
            story.node(last_t0, arrived, node, f"sees all {len(labs)} labs compliant")

    await run.watcher.until(
        all_compliant,
        what=f"saw all {len(labs)} labs compliant",
        on_reply=on_compliance,
        describe=lambda r: (
            "sees " + ", ".join(f"{k} {v}" for k, v in _compliance_of(r, labs).items())
        ),
    )
    ms = max(0.0, (max(reached.values(), default=last_t0) - last_t0) * 1000)
    run.result.timings_ms["all labs compliant on every node"] = ms
    story.line(
        "compliance on every node: "
        + ", ".join(f"{lab} compliant" for lab in labs)
        + f" ({ms:.0f} ms after the last attestation)"
    )


async def _vote_lift(run: _Run) -> None:
    """Step 4: just enough labs and overseers vote LIFT; wait until every node says
    NOT_PAUSED (a charter's minimum pause duration adds to the deadline)."""
    story, w, epoch, rules = run.story, run.watcher, run.epoch, run.rules
    voters = run.labs[: rules.lift_threshold] + run.overseers[: rules.lift_overseer_threshold]
    story.step(4, f"{run.lift_voters_text()} vote LIFT for epoch {epoch}, each at its own node")
    before = {n.member: _key(w.latest[n.member]) for n in w.nodes}
    t0 = time.perf_counter()
    for i, member in enumerate(voters):
        seq, t0 = await _issue(
            run.cluster,
            member,
            "LIFT vote",
            lambda a: a.cast_vote(Decision.LIFT, epoch=epoch),
        )
        decisive = i == len(voters) - 1
        story.line(
            f"{member} voted LIFT ({member}#{seq})" + (": the deciding vote" if decisive else "")
        )
    run.result.statements += len(voters)
    ms = await _converge_state(
        w, story, t0, PauseState.NOT_PAUSED, epoch, before, STEP_DEADLINE_S + rules.min_pause_s
    )
    run.result.timings_ms["lift in effect on every node (after the last vote)"] = ms
    story.line(
        Text(f"NOT_PAUSED (epoch {epoch} lifted) on all {run.n_nodes} nodes {ms:.0f} ms after")
        + Text(" the deciding vote")
    )


def _summarize(run: _Run) -> None:
    console, result = run.story.console, run.result
    console.print()
    console.print(
        Text.assemble(
            ("Summary: ", "bold"),
            f"{result.statements} statements signed at {run.n_nodes} nodes; epoch"
            f" {result.epoch} paused and lifted everywhere.",
        )
    )
    for k, v in result.timings_ms.items():
        console.print(f"  {k:<52} {v:6.0f} ms")


class _Story:
    """Prints one scenario step's progress: each node's change with the ms since the step's
    reference moment."""

    def __init__(self, console: Console, nodes: Sequence[ClusterNode]) -> None:
        self.console = console
        self.width = max(len(n.member) for n in nodes)
        self.explained_unknown = False

    def step(self, number: int, title: str) -> None:
        self.console.print()
        self.console.print(Text.assemble((f"{number}. ", "bold"), (title, "bold")))

    def line(self, text: Text | str) -> None:
        self.console.print(Text("   ") + (Text(text) if isinstance(text, str) else text))

    def node(self, t0: float, arrived: float, member: str, what: Text | str) -> None:
        ms = max(0.0, (arrived - t0) * 1000)
        self.console.print(
            Text.assemble(
                f"   {'+':>2}{ms:6.0f} ms  ",
                (f"{member:<{self.width}}", "bold"),
                "  ",
                what if isinstance(what, Text) else Text(what),
            )
        )


def state_label(r: ViewReply) -> Text:
    """The view's state, styled as `pausenet status` shows it."""
    s = state_of(r)
    return state_text(PauseState(s)) if s in PauseState.__members__ else Text(s)


async def _converge_state(
    watcher: Watcher,
    story: _Story,
    t0: float,
    want: PauseState,
    epoch: int,
    before: dict[str, tuple[int, int]],
    deadline_s: float,
) -> float:
    """Wait until every node says want at epoch; print each node's state changes as they come.
    Returns the ms from t0 until the last node got there."""
    last = dict(before)
    reached: dict[str, float] = {}
    want_pb = oversight_pb2.PauseState.Value("PAUSE_STATE_" + want.value)

    saw_unknown = False

    def on_reply(member: str, r: ViewReply, arrived: float) -> None:
        nonlocal saw_unknown
        key = _key(r)
        if last.get(member) != key:
            last[member] = key
            story.node(t0, arrived, member, Text.assemble(state_label(r), f" epoch {r.epoch}"))
            saw_unknown = saw_unknown or r.state == oversight_pb2.PAUSE_STATE_UNKNOWN
        if key == (int(want_pb), epoch):
            reached.setdefault(member, arrived)

    await watcher.until(
        lambda r: r.state == want_pb and r.epoch == epoch,
        what=f"said {want.value} (epoch {epoch})",
        deadline_s=deadline_s,
        on_reply=on_reply,
    )
    if saw_unknown and not story.explained_unknown:
        story.explained_unknown = True
        story.line(
            Text(
                "(UNKNOWN for a moment: a node that holds the new votes proves the new state only"
                " once enough members' heartbeats, signed after it took effect, show they signed"
                " nothing it has not seen.)",
                style="dim",
            )
        )
    return max(0.0, (max(reached.values(), default=t0) - t0) * 1000)


async def _converge_heads(
    watcher: Watcher, story: _Story, t0: float, member: str, seq: int, label: str
) -> float:
    """Wait until every node holds member's log up to seq; print when each node gets it."""
    reached: dict[str, float] = {}

    def on_reply(node: str, r: ViewReply, arrived: float) -> None:
        if node not in reached and watcher.head(node, member) >= seq:
            reached[node] = watcher.seen_at(node, member, seq) or arrived
            story.node(t0, reached[node], node, label)

    await watcher.until(
        lambda r: any(m.id == member and m.head_seq >= seq for m in r.members),
        what=f"held {member}#{seq}",
        on_reply=on_reply,
        describe=lambda r: f"holds {member} up to #{_head_of(r, member)}",
    )
    return max(0.0, (max(reached.values(), default=t0) - t0) * 1000)


def _key(r: ViewReply) -> tuple[int, int]:
    return int(r.state), int(r.epoch)


def _head_of(r: ViewReply, member: str) -> int:
    return next((m.head_seq for m in r.members if m.id == member), 0)


def _compliance_of(r: ViewReply, labs: Sequence[str]) -> dict[str, str]:
    got = {m.id: m.compliance for m in r.members}
    return {lab: got.get(lab) or "-" for lab in labs}


async def _issue(
    cluster: Cluster, member: str, what: str, call: Callable[[AdminClient], Awaitable[Any]]
) -> tuple[int, float]:
    """Run an Admin call at member's own node; returns (seq, perf_counter when it returned)."""
    n = cluster.node(member)
    token = read_admin_token(n.admin_token)
    async with AdminClient(n.admin_address, token, tls=cluster.tls) as admin:
        try:
            reply = await call(admin)
        except NodeError as exc:
            raise ClusterError(f"{what} at {member}'s node: {exc}") from exc
    return int(reply.seq), time.perf_counter()


def plural(n: int, word: str) -> str:
    """'1 lab', '2 labs'."""
    return f"{n} {word}" + ("" if n == 1 else "s")
