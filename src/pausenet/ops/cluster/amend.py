"""`cluster amend`: amend the charter of a running local cluster, as its labs would.

The cluster holds every member's key, so it plays every member: it writes the next version
(D/charters/v<N>.toml), signs the approvals that put it in force (a threshold of the version
amended, and every member added or re-keyed with its new key; D/charters/v<N>-approvals/),
hands both to one running node (Admin Govern, as `pausenet charter propose` does) and waits
until every running node runs the new version. A member added gets a key, a node config that
pins genesis (`trust`) and runs the new version, and a node; a re-keyed member's node is
restarted on its new key once the others adopted the version; a removed member's node stops.
"""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from pausenet.client import AdminClient, OversightClient
from pausenet.core.approval import sign_approval
from pausenet.core.charter import Charter, Role, load_charter
from pausenet.core.keys import SigningKey, generate, load_signing_key, write_signing_key
from pausenet.errors import ClusterError, NodeError
from pausenet.node.config import load_config
from pausenet.node.runfile import read_admin_token
from pausenet.ops.amend import amend_charter, needed_approvers
from pausenet.ops.cluster.supervisor import Cluster, ClusterNode, free_ports

__all__ = ["AmendResult", "Amendment", "amend_cluster"]

ADOPT_DEADLINE_S = 60.0


@dataclass(frozen=True)
class Amendment:
    add_labs: tuple[str, ...] = ()
    add_overseers: tuple[str, ...] = ()
    rekey: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    rules: Mapping[str, int] | None = None
    tripwires: Mapping[str, tuple[int, tuple[str, ...]]] | None = None  # trigger -> (k, who)


@dataclass(frozen=True)
class AmendResult:
    old: Charter
    new: Charter
    path: Path
    approvers: tuple[str, ...]
    seconds: float  # from the proposal until every running node runs the new version


def _current(cluster: Cluster) -> tuple[Charter, Path]:
    """The newest version the cluster wrote (D/charters/v<N>.toml), else genesis."""
    best = cluster.charter_path
    found = sorted((cluster.dir / "charters").glob("v*.toml"), key=lambda p: int(p.stem[1:] or 0))
    if found:
        best = found[-1]
    return load_charter(best), best


def _key_of(n: ClusterNode) -> SigningKey:
    return load_signing_key(load_config(n.config).key_path)


async def _newest(n: ClusterNode, cluster: Cluster) -> bytes:
    async with OversightClient(n.address, timeout=2.0, tls=cluster.tls) as c:
        got: tuple[bytes, bytes] = await c.get_charter()
    return got[1]


async def amend_cluster(
    cluster: Cluster, a: Amendment, say: Callable[[str], None] = lambda _s: None
) -> AmendResult:
    cluster.refresh()
    running = cluster.running()
    if not running:
        raise ClusterError(f"no node of the cluster in {cluster.dir} is running; start it first")
    old, _old_path = _current(cluster)
    if await _newest(running[0], cluster) != old.digest:
        raise ClusterError(
            f"{running[0].member}'s node does not run {cluster.dir}'s newest charter version"
            f" {old.version}; wait until it has adopted it"
        )
    if cluster.tls_dir is not None and (a.add_labs or a.add_overseers):
        raise ClusterError(
            "cluster amend cannot add members to a --tls cluster yet (they need certificates)"
        )
    keys_dir = cluster.dir / "keys"
    new_keys: dict[str, SigningKey] = {}
    adds = [(m, Role.LAB) for m in a.add_labs] + [(m, Role.OVERSEER) for m in a.add_overseers]
    for mid, _role in adds:
        if old.member(mid) is not None:
            raise ClusterError(f"{mid} is already a member of version {old.version}")
        new_keys[mid] = generate()
    for mid in a.rekey:
        if old.member(mid) is None:
            raise ClusterError(f"{mid} is not a member of version {old.version}")
        new_keys[mid] = generate()
    new, text = amend_charter(
        old,
        add=[(m, r, new_keys[m].public_key) for m, r in adds],
        remove=a.remove,
        rekey={m: new_keys[m].public_key for m in a.rekey},
        rules=a.rules,
        tripwires=a.tripwires,
    )
    charters = cluster.dir / "charters"
    charters.mkdir(exist_ok=True)
    path = charters / f"v{new.version}.toml"
    path.write_text(
        f"# version {new.version} of the charter, amending version {old.version}"
        f" ({old.digest_hex[:16]}…); written by cluster amend\n" + text,
        encoding="utf-8",
    )
    if load_charter(path).digest != new.digest:
        raise ClusterError(f"{path}: the written charter does not read back the same")
    for mid, key in new_keys.items():
        write_signing_key(keys_dir / f"{mid}.v{new.version}.key", key)

    # approvals: the amended version's threshold with old keys, consents with the new ones
    approvers = needed_approvers(old, new)
    approvals_dir = charters / f"v{new.version}-approvals"
    approvals_dir.mkdir(exist_ok=True)
    now_ms = time.time_ns() // 1_000_000
    envs = []
    by_member = {n.member: n for n in cluster.nodes}
    for mid in approvers:
        signers = []
        if old.member(mid) is not None and mid not in a.add_labs + a.add_overseers:
            signers.append((_key_of(by_member[mid]), f"{mid}.json"))  # its key in the old version
        if mid in new_keys:
            signers.append((new_keys[mid], f"{mid}.consent.json"))  # consent with its new key
        for key, name in signers:
            env = sign_approval(key, new, mid, now_ms).envelope
            (approvals_dir / name).write_text(json.dumps(env.to_json(), indent=2) + "\n")
            envs.append(env)
    say(
        f"Wrote version {new.version} ({new.digest_hex[:16]}…) to {path}; approved by"
        f" {', '.join(approvers)}"
    )

    proposer = running[0]
    t0 = time.monotonic()
    token = read_admin_token(proposer.admin_token)
    async with AdminClient(proposer.admin_address, token, tls=cluster.tls) as admin:
        reply = await admin.govern(new.canonical_bytes, tuple(envs))
    if reply.refused:
        raise ClusterError(f"{proposer.member}'s node refused: {'; '.join(reply.refused)}")
    say(f"Proposed it at {proposer.member}'s node: {reply.status}")

    # re-keyed and removed members' nodes stop; added members get a node
    stay = [n for n in running if n.member not in a.rekey and n.member not in a.remove]
    await _wait_all_on(cluster, stay, new, t0)
    seconds = time.monotonic() - t0
    say(f"Every running node runs version {new.version} after {seconds:.1f} s")
    restart = [n for n in running if n.member in a.rekey or n.member in a.remove]
    if restart:
        cluster.stop(restart, grace_s=5.0)
    for mid in a.rekey:
        _rewrite_for(
            by_member[mid].config,
            path,
            cluster.charter_path,
            keys_dir / f"{mid}.v{new.version}.key",
        )
        cluster.spawn(by_member[mid])
        say(f"Restarted {mid}'s node on its new key")
    for mid, role in adds:
        node = _new_node(cluster, mid, role, path, keys_dir / f"{mid}.v{new.version}.key")
        cluster.nodes.append(node)
        cluster.spawn(node)
        say(
            f"Started {mid}'s node ({node.address}), pinned to genesis, running version {new.version}"
        )
    cluster.save()
    await _wait_all_on(cluster, cluster.running(), new, t0)
    return AmendResult(old, new, path, tuple(approvers), seconds)


async def _wait_all_on(
    cluster: Cluster, nodes: Sequence[ClusterNode], new: Charter, t0: float
) -> None:
    pending = {n.member: n for n in nodes}
    while pending:
        for m, n in list(pending.items()):
            if not cluster.is_running(n):  # stopped or killed meanwhile: it adopts on restart
                del pending[m]
                continue
            try:
                if await _newest(n, cluster) == new.digest:
                    del pending[m]
            except NodeError:
                pass
        if not pending:
            return
        if time.monotonic() - t0 > ADOPT_DEADLINE_S:
            raise ClusterError(
                f"not every node adopted version {new.version} after {ADOPT_DEADLINE_S:g} s:"
                f" {', '.join(pending)}; see their logs in {cluster.logs}"
            )
        await asyncio.sleep(0.1)


def _rewrite_for(config: Path, charter: Path, genesis: Path, key: Path) -> None:
    """A member's config: run `charter`, pin genesis, sign with `key`."""
    data = tomllib.loads(config.read_text(encoding="utf-8"))
    # absolute: a config's relative paths are read from the config's own directory
    data.update(
        charter=str(charter.resolve()), trust=str(genesis.resolve()), key=str(key.resolve())
    )
    config.write_text(tomli_w.dumps(data), encoding="utf-8")


def _new_node(cluster: Cluster, mid: str, role: Role, charter: Path, key: Path) -> ClusterNode:
    listen, admin = (f"127.0.0.1:{p}" for p in free_ports(2))
    root = cluster.dir.resolve()
    template = tomllib.loads(cluster.nodes[0].config.read_text(encoding="utf-8"))
    data = {k: v for k, v in template.items() if k == "log_level"}
    data.update(
        member_id=mid,
        charter=str(charter.resolve()),
        trust=str(cluster.charter_path.resolve()),
        key=str(key.resolve()),
        data_dir=str(root / "data" / mid),
        listen=listen,
        admin_listen=admin,
        peers=[n.address for n in cluster.nodes],
    )
    config = root / "node_configs" / f"{mid}.toml"
    config.write_text(
        f"# pausenet node config for {mid}, joined by cluster amend\n" + tomli_w.dumps(data),
        encoding="utf-8",
    )
    cfg = load_config(config)
    return ClusterNode(
        member=mid,
        role=role.value,
        address=listen,
        admin_address=admin,
        config=config,
        log=root / "logs" / f"{mid}.log",
        admin_token=cfg.admin_token_file,
    )


async def governance_act(cluster: Cluster, say: Callable[[str], None]) -> float:
    """The demo's final act: amend the running federation (a lab joins, a key is replaced, the
    pause threshold rises), then a second amendment gives a trigger a tripwire, and an overseer's
    attestation alone pauses every node. Returns the seconds the first amendment took to reach
    every node."""
    say("Act: the labs amend their charter while the federation runs: a lab joins, lab-b's")
    say("key is replaced, and every lab must now approve the next amendment.")
    labs = sum(1 for n in cluster.nodes if n.role == Role.LAB.value) + 1
    # (a threshold that past votes do not depend on: how statements signed under one version
    # count under another's thresholds is core/versions.py's rule)
    first = await amend_cluster(
        cluster,
        Amendment(add_labs=("lab-new",), rekey=("lab-b",), rules={"amend_threshold": labs}),
        say,
    )
    overseers = [n for n in cluster.nodes if n.role == Role.OVERSEER.value]
    if not overseers:
        say("(no overseer in this cluster: the tripwire part is skipped)")
        return first.seconds
    say("Act: an if-then commitment. Version 3 pauses on one overseer's attestation of")
    say("'eval-threshold', with no lab voting: every lab agreed to it by approving version 3.")
    third = await amend_cluster(
        cluster, Amendment(tripwires={"eval-threshold": (1, ("overseer",))}), say
    )
    for line in third.new.explain():
        if "eval-threshold" in line:
            say(f"  {line}")
    o = overseers[0]
    token = read_admin_token(o.admin_token)
    async with AdminClient(o.admin_address, token, tls=cluster.tls) as admin:
        r = await admin.attest_trigger("eval-threshold", note="capability eval crossed")
    say(f"{o.member} attests eval-threshold (its seq {r.seq}); no lab votes.")
    t0 = time.monotonic()
    while True:
        states = await _states(cluster)
        if all(s == "PAUSED" for s in states.values()):
            break
        if time.monotonic() - t0 > ADOPT_DEADLINE_S:
            raise ClusterError(f"not every node says PAUSED after the tripwire: {states}")
        await asyncio.sleep(0.1)
    say(
        f"Every node says PAUSED after {time.monotonic() - t0:.1f} s, formed by tripwire"
        " eval-threshold (no lab voted)."
    )
    return first.seconds


async def _states(cluster: Cluster) -> dict[str, str]:
    from pausenet.core.payload import pause_state_from_pb

    out = {}
    for n in cluster.running():
        try:
            async with OversightClient(n.address, timeout=2.0, tls=cluster.tls) as c:
                r = await c.get_view()
            out[n.member] = str(pause_state_from_pb(r.state)).upper()
        except NodeError:
            out[n.member] = "not answering"
    return out
