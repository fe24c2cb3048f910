"""A local federation on disk: keys, a charter and one node config per member.

    D/charter.toml               the rulebook and roster (TOML, commented rule by rule)
    D/keys/<member>.key          each member's private key (mode 0600, in a 0700 directory)
    D/node_configs/<member>.toml each member's node config (see `pausenet.node.config`)
    D/data/<member>/             each node's store (created by the node, not here)

Default rules: a pause starts and lifts by a majority of labs (floor(N/2)+1); a lift also needs
one overseer when there is one; overseers cannot start a pause.

The `pausenet` command reads this module's defaults for `federation init --help` whatever
command it runs, so the core and the TOML writer are imported by the functions that use them:
`pausenet keygen` does not load the charter code.
"""

from __future__ import annotations

import os
import shutil
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pausenet.errors import PausenetError

if TYPE_CHECKING:
    from pausenet.core.charter import Charter, Role, Rules
    from pausenet.core.keys import SigningKey

__all__ = [
    "DEFAULT_BASE_PORT",
    "DEFAULT_FEDERATION_ID",
    "DEFAULT_TRIGGERS",
    "MAX_MEMBERS_PER_ROLE",
    "Federation",
    "FederationMember",
    "approve_charter",
    "default_rules",
    "init_federation",
    "member_ids",
]

DEFAULT_BASE_PORT = 7400
DEFAULT_FEDERATION_ID = "local"
MAX_MEMBERS_PER_ROLE = 100
DEFAULT_TRIGGERS = (
    (
        "rsi-detected",
        "Recursive self-improvement observed: a system materially improved its own training or"
        " capabilities without human-directed changes",
    ),
    ("eval-threshold", "A dangerous-capability evaluation crossed the threshold the charter names"),
)
# What `init_federation` creates; `force` replaces exactly these and nothing else in the dir.
_OWNED = ("charter.toml", "keys", "node_configs", "data", "bundle.json", "approvals")


@dataclass(frozen=True)
class FederationMember:
    id: str
    role: Role
    key: SigningKey
    key_path: Path
    config_path: Path
    data_dir: Path
    listen: str
    admin_listen: str


@dataclass(frozen=True)
class Federation:
    dir: Path
    charter_path: Path
    charter: Charter
    members: tuple[FederationMember, ...]


def member_ids(labs: int, overseers: int) -> tuple[list[str], list[str]]:
    """(["lab-a", "lab-b", …], ["overseer-a", …]); after 'z' come 'aa', 'ab', …."""
    return [f"lab-{_suffix(i)}" for i in range(labs)], [
        f"overseer-{_suffix(i)}" for i in range(overseers)
    ]


def default_rules(labs: int, overseers: int) -> Rules:
    from pausenet.core.charter import Rules

    majority = labs // 2 + 1
    return Rules(
        pause_threshold=majority,
        lift_threshold=majority,
        overseer_pause_threshold=0,
        lift_overseer_threshold=1 if overseers else 0,
    )


def init_federation(
    dir: Path,
    labs: int,
    overseers: int,
    *,
    base_port: int = DEFAULT_BASE_PORT,
    federation_id: str = DEFAULT_FEDERATION_ID,
    force: bool = False,
) -> Federation:
    """Create a federation in dir. Refuses a non-empty dir unless force (which replaces the
    files and directories this function creates, node data included, and leaves others alone)."""
    import json
    import time
    import tomllib

    from pausenet.core.approval import sign_approval
    from pausenet.core.charter import Role, parse_charter
    from pausenet.core.keys import generate, write_signing_key

    if not 1 <= labs <= MAX_MEMBERS_PER_ROLE:
        raise PausenetError(f"labs must be 1..{MAX_MEMBERS_PER_ROLE}, got {labs}")
    if not 0 <= overseers <= MAX_MEMBERS_PER_ROLE:
        raise PausenetError(f"overseers must be 0..{MAX_MEMBERS_PER_ROLE}, got {overseers}")
    last_port = base_port + 2 * (labs + overseers) - 1
    if base_port < 1 or last_port > 65535:
        raise PausenetError(
            f"base port {base_port}: {labs + overseers} members need ports"
            f" {base_port}..{last_port}, which must lie within 1..65535"
        )
    lab_ids, ov_ids = member_ids(labs, overseers)
    roles = [(m, Role.LAB) for m in lab_ids] + [(m, Role.OVERSEER) for m in ov_ids]
    keys_dir, configs_dir = dir / "keys", dir / "node_configs"
    members = tuple(
        FederationMember(
            id=mid,
            role=role,
            key=generate(),
            key_path=keys_dir / f"{mid}.key",
            config_path=configs_dir / f"{mid}.toml",
            data_dir=dir / "data" / mid,
            listen=f"127.0.0.1:{base_port + 2 * i}",
            admin_listen=f"127.0.0.1:{base_port + 2 * i + 1}",
        )
        for i, (mid, role) in enumerate(roles)
    )
    # Check the charter exactly as it will be read back, before touching the disk.
    charter_path = dir / "charter.toml"
    charter_text = charter_toml(federation_id, members, default_rules(labs, overseers))
    charter = parse_charter(tomllib.loads(charter_text), source=str(charter_path))

    _prepare_dir(dir, force)
    try:
        keys_dir.mkdir(mode=0o700)
        configs_dir.mkdir()
    except OSError as exc:
        raise PausenetError(f"{dir}: cannot create the federation: {exc.strerror}") from exc
    for m in members:
        write_signing_key(m.key_path, m.key)
    _write(charter_path, charter_text)
    for m in members:
        _write(m.config_path, _config_toml(m, [p.listen for p in members if p is not m]))
    # Genesis is in force once every member approved it; this function holds every key.
    approvals_dir = dir / "approvals"
    try:
        approvals_dir.mkdir()
    except OSError as exc:
        raise PausenetError(f"{dir}: cannot create the federation: {exc.strerror}") from exc
    now_ms = time.time_ns() // 1_000_000
    for m in members:
        env = sign_approval(m.key, charter, m.id, now_ms).envelope
        _write(approvals_dir / f"{m.id}.json", json.dumps(env.to_json(), indent=2) + "\n")
    return Federation(dir, charter_path, charter, members)


def approve_charter(dir: Path) -> int:
    """Re-sign D/approvals/ for D/charter.toml with every key in D/keys/ whose member it lists
    (after the charter was edited, before anything is signed under it); returns how many."""
    import json
    import time

    from pausenet.core.approval import sign_approval
    from pausenet.core.charter import load_charter
    from pausenet.core.keys import load_signing_key

    charter = load_charter(dir / "charter.toml")
    approvals_dir = dir / "approvals"
    approvals_dir.mkdir(exist_ok=True)
    for old in approvals_dir.glob("*.json"):
        old.unlink()
    now_ms = time.time_ns() // 1_000_000
    n = 0
    for m in charter.members:
        key_path = dir / "keys" / f"{m.id}.key"
        if key_path.exists():
            env = sign_approval(load_signing_key(key_path), charter, m.id, now_ms).envelope
            _write(approvals_dir / f"{m.id}.json", json.dumps(env.to_json(), indent=2) + "\n")
            n += 1
    return n


def _prepare_dir(dir: Path, force: bool) -> None:
    if dir.exists() and not dir.is_dir():
        raise PausenetError(f"{dir}: exists and is not a directory; choose another --dir")
    if dir.is_dir() and any(dir.iterdir()):
        if not force:
            raise PausenetError(
                f"{dir}: directory is not empty; choose another --dir, or pass --force to"
                " replace the federation in it (its keys, configs and node data)"
            )
        for name in _OWNED:
            p = dir / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
    try:
        dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PausenetError(f"{dir}: cannot create directory: {exc.strerror}") from exc


def _write(path: Path, text: str) -> None:
    from pausenet.core.files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise PausenetError(f"{path}: cannot write it: {exc.strerror}") from exc


def _line(key: str, value: object) -> str:
    """`key = value` in TOML, quoted and escaped by tomli-w (which writes no comments: the
    generated files are these lines with comment lines and table headers between them)."""
    import tomli_w

    return tomli_w.dumps({key: value}).rstrip("\n")


def charter_toml(federation_id: str, members: Iterable[FederationMember], rules: Rules) -> str:
    """The charter as TOML, with a comment before each rule saying what it does."""
    from pausenet.core.charter import Role

    ms = list(members)
    labs = sum(1 for m in ms if m.role is Role.LAB)
    ovs = len(ms) - labs
    lift_ov = (
        f"# ...and LIFT votes from this many of the {ovs} overseer(s) too."
        if ovs
        else "# ...and LIFT votes from this many overseers (there are none here)."
    )
    out = [
        "# pausenet charter: the federation's rulebook and roster.",
        "# Every signed statement names this charter's digest ('pausenet charter show' prints it),",
        "# so changing anything here, even a description, makes a new, incompatible charter.",
        "",
        _line("format", "pausenet.charter.v1"),
        _line("federation_id", federation_id),
        "",
        "[rules]",
        f"# A pause starts when this many of the {labs} lab(s) vote PAUSE for the same epoch,",
        "# each vote naming at least one trigger below (default: a majority of labs).",
        _line("pause_threshold", rules.pause_threshold),
        f"# A pause is lifted when this many of the {labs} lab(s) vote LIFT for its epoch",
        _line("lift_threshold", rules.lift_threshold),
        lift_ov,
        _line("lift_overseer_threshold", rules.lift_overseer_threshold),
        "# Overseers voting PAUSE on their own start a pause only if this is above 0.",
        _line("overseer_pause_threshold", rules.overseer_pause_threshold),
        "# A pause lasts at least this many seconds, whatever the lift votes (0: no minimum).",
        _line("min_pause_s", rules.min_pause_s),
        "# A member whose latest heartbeat is older than this (seconds) is stale; while stale",
        "# members could change the answer, nodes answer UNKNOWN instead of guessing.",
        _line("heartbeat_ttl_s", rules.heartbeat_ttl_s),
        "# Signed times may run at most this many seconds ahead of a verifier's clock.",
        _line("max_clock_skew_s", rules.max_clock_skew_s),
        "# Once paused, each lab has this many seconds to sign that it has halted.",
        _line("compliance_grace_s", rules.compliance_grace_s),
        "",
        "# Named conditions a PAUSE vote must cite.",
    ]
    for tid, desc in DEFAULT_TRIGGERS:
        out += ["[[triggers]]", _line("id", tid), _line("description", desc), ""]
    out.append("# The members: labs vote to pause and lift; overseers help lift and watch.")
    for m in ms:
        out += [
            "[[members]]",
            _line("id", m.id),
            _line("role", m.role.value),
            _line("public_key", m.key.public_key.hex()),
            "",
        ]
    return "\n".join(out)


def _config_toml(m: FederationMember, peers: list[str]) -> str:
    base = m.config_path.parent

    def rel(p: Path) -> str:
        return os.path.relpath(p, base)

    return "\n".join(
        [
            f"# pausenet node config for {m.id} ({m.role.value}). Paths are relative to this file.",
            _line("member_id", m.id),
            _line("charter", rel(m.config_path.parent.parent / "charter.toml")),
            _line("key", rel(m.key_path)),
            "# Where the node keeps its store (created when the node first runs).",
            _line("data_dir", rel(m.data_dir)),
            "# Gossip address other members connect to.",
            _line("listen", m.listen),
            "# Admin API (casts this member's votes): loopback only.",
            _line("admin_listen", m.admin_listen),
            _line("admin_token", rel(m.data_dir / "admin.token")),
            "# Bootstrap peers: the other members' gossip addresses.",
            _line("peers", peers),
            _line("log_level", "info"),
            "",
        ]
    )


def _suffix(i: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa', …."""
    letters = string.ascii_lowercase
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = letters[r] + out
    return out
