"""Deterministic builders shared by the tests: federations, signed logs and heartbeats; and
the tools of the command-line tests (the `cli` fixture in conftest.py runs on them).

Everything here is reproducible: member keys are derived from member ids, times are explicit.

    charter, keys = make_federation(labs=3, overseers=1, min_pause_s=600)
    log = log_for(charter, keys["lab-a"], "lab-a", [pause(1), comply(1)])
    hb = heartbeat_for(charter, keys["lab-a"], "lab-a", log, counter=1, issued_at_ms=T0 + 5_000)
    one_line_error(cli("keygen", "--out", path), "already exists")
"""

from __future__ import annotations

import hashlib
import io
import string
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from pausenet.core.charter import Charter, parse_charter
from pausenet.core.keys import SigningKey
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

__all__ = [
    "FEDERATION_ID",
    "T0",
    "TRIGGERS",
    "Cli",
    "CliResult",
    "attest",
    "comply",
    "federation_data",
    "heartbeat_for",
    "key_for",
    "lift",
    "log_for",
    "make_federation",
    "make_tripwire_federation",
    "member_ids",
    "node_command",
    "one_line_error",
    "pause",
    "pausenet_command",
    "quiet_console",
    "run_command",
]

FEDERATION_ID = "test-federation"
T0 = 1_700_000_000_000  # a fixed "now" in Unix ms (2023-11-14T22:13:20Z)
TRIGGERS = {
    "eval-threshold": "A dangerous-capability evaluation crossed its charter threshold.",
    "rsi-detected": "Recursive self-improvement was observed in a training run.",
}


def _suffix(i: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa', … (so any number of members gets a unique id)."""
    letters = string.ascii_lowercase
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = letters[r] + out
    return out


def member_ids(labs: int = 3, overseers: int = 1) -> tuple[list[str], list[str]]:
    """(["lab-a", "lab-b", …], ["overseer-a", …])."""
    return [f"lab-{_suffix(i)}" for i in range(labs)], [
        f"overseer-{_suffix(i)}" for i in range(overseers)
    ]


def key_for(member_id: str) -> SigningKey:
    """The member's signing key; its seed is SHA-256 of the member id."""
    return SigningKey(hashlib.sha256(member_id.encode("utf-8")).digest())


def federation_data(
    labs: int = 3,
    overseers: int = 1,
    *,
    federation_id: str = FEDERATION_ID,
    limits: Mapping[str, int] | None = None,
    **rule_overrides: int,
) -> dict[str, Any]:
    """The charter as the dict a TOML file would parse to (for tests that tweak raw charters)."""
    lab_ids, ov_ids = member_ids(labs, overseers)
    majority = labs // 2 + 1
    rules: dict[str, int] = {
        "pause_threshold": majority,
        "lift_threshold": majority,
        "lift_overseer_threshold": 1 if overseers else 0,
        "heartbeat_ttl_s": 60,
        "max_clock_skew_s": 30,
        "compliance_grace_s": 3600,
    }
    rules.update(rule_overrides)
    return {
        "format": "pausenet.charter.v1",
        "federation_id": federation_id,
        "members": [
            {"id": mid, "role": role, "public_key": key_for(mid).public_key.hex()}
            for ids, role in ((lab_ids, "lab"), (ov_ids, "overseer"))
            for mid in ids
        ],
        "triggers": [{"id": tid, "description": d} for tid, d in TRIGGERS.items()],
        "rules": rules,
        "limits": dict(limits or {}),
    }


def make_federation(
    labs: int = 3,
    overseers: int = 1,
    *,
    federation_id: str = FEDERATION_ID,
    limits: Mapping[str, int] | None = None,
    **rule_overrides: int,
) -> tuple[Charter, dict[str, SigningKey]]:
    """A valid charter and every member's key, keyed by member id.

    Defaults: majority pause and lift thresholds among labs, one overseer needed to lift when
    there are overseers, TTL 60 s, skew 30 s, grace 1 hour. Keyword arguments override rules.
    """
    data = federation_data(
        labs, overseers, federation_id=federation_id, limits=limits, **rule_overrides
    )
    charter = parse_charter(data, source="test charter")
    return charter, {m.id: key_for(m.id) for m in charter.members}


def make_tripwire_federation(
    tripwires: Mapping[str, tuple[int, Sequence[str]]],
    labs: int = 3,
    overseers: int = 2,
    *,
    federation_id: str = FEDERATION_ID,
    **rule_overrides: int,
) -> Charter:
    """A format-2 charter whose triggers carry tripwires: {trigger: (attest_threshold,
    attesters)}, attesters being role names and/or member ids."""
    data = federation_data(labs, overseers, federation_id=federation_id, **rule_overrides)
    data["format"] = "pausenet.charter.v2"
    for t in data["triggers"]:
        if t["id"] in tripwires:
            k, who = tripwires[t["id"]]
            t["auto_pause"] = {"attest_threshold": k, "attesters": list(who)}
    return parse_charter(data, source="test charter")


# -- bodies ---------------------------------------------------------------------------------


def pause(epoch: int = 1, *triggers: str, note: str = "") -> Vote:
    """A PAUSE vote; names 'rsi-detected' unless triggers are given."""
    return Vote(epoch, Decision.PAUSE, triggers or ("rsi-detected",), note)


def lift(epoch: int = 1, note: str = "") -> Vote:
    return Vote(epoch, Decision.LIFT, (), note)


def comply(epoch: int = 1, state: ComplianceState = ComplianceState.HALTED) -> Compliance:
    return Compliance(epoch, state)


def attest(
    trigger_id: str = "rsi-detected", evidence: bytes = b"", note: str = "", *, epoch: int = 0
) -> TriggerAttestation:
    """A trigger attestation, bound to `epoch` (0: none); evidence (any bytes) is hashed into
    evidence_sha256."""
    return TriggerAttestation(
        trigger_id, hashlib.sha256(evidence).digest() if evidence else b"", note, epoch
    )


# -- signed logs and heartbeats -------------------------------------------------------------


def log_for(
    charter: Charter,
    key: SigningKey,
    member: str,
    bodies: Iterable[Body],
    start_ms: int = T0,
    *,
    step_ms: int = 1000,
    after: Sequence[SignedStatement] = (),
) -> list[SignedStatement]:
    """Sign bodies as a valid hash chain: seq 1, 2, … issued at start_ms, start_ms + step_ms, ….

    With `after` (an existing log), the new statements continue it (seq and prev_hash follow its
    last statement) and only the new statements are returned.
    """
    out: list[SignedStatement] = []
    prev = after[-1] if after else None
    for i, body in enumerate(bodies):
        seq = prev.seq + 1 if prev else 1
        st = build_statement(
            charter, member, seq, prev.hash if prev else b"", start_ms + i * step_ms, body
        )
        prev = sign_statement(key, st)
        out.append(prev)
    return out


def heartbeat_for(
    charter: Charter,
    key: SigningKey,
    member: str,
    log: Sequence[SignedStatement],
    counter: int,
    issued_at_ms: int,
    *,
    address: str = "",
) -> SignedHeartbeat:
    """A heartbeat committing to the last statement of log (seq 0 and empty hash if log is empty)."""
    head = log[-1] if log else None
    return sign_heartbeat(
        key,
        charter,
        member,
        head_seq=head.seq if head else 0,
        head_hash=head.hash if head else b"",
        counter=counter,
        issued_at_ms=issued_at_ms,
        address=address,
    )


# -- the command line -----------------------------------------------------------------------


@dataclass(frozen=True)
class CliResult:
    """What a command did: its exit code and everything it printed."""

    code: int
    out: str
    err: str


Cli = Callable[..., CliResult]  # the `cli` fixture: cli("keygen", "--out", path) -> CliResult


def one_line_error(r: CliResult | subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Assert that a command failed the pausenet way, exit code 2 and one 'error: ' line on
    stderr naming each fragment, never a traceback; return that line."""
    if isinstance(r, subprocess.CompletedProcess):
        r = CliResult(r.returncode, r.stdout, r.stderr)
    assert r.code == 2, r
    assert "Traceback" not in r.out + r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: "), lines[0]
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def run_command(args: Sequence[object], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command as a user would, in its own process, capturing its output as text."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=timeout, check=False
    )


def pausenet_command() -> list[str]:
    """The installed `pausenet` console script (or the same entry point through python)."""
    script = Path(sys.executable).with_name("pausenet")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from pausenet.ops.cli import main; main()"]


def node_command(config: Path, *extra: str) -> list[str]:
    """The command that runs one node: `python -m pausenet run --config CONFIG ...`."""
    return [sys.executable, "-m", "pausenet", "run", "--config", str(config), *extra]


def quiet_console(width: int = 200) -> tuple[Console, io.StringIO]:
    """A console that prints into a buffer (for the demo and the cluster scenario)."""
    buf = io.StringIO()
    return Console(file=buf, width=width), buf
