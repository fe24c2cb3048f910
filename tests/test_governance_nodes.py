"""Charter versions on real nodes (issue 9): ratification, amendments gossiped and adopted, and
the node-level threats — forged or too few approvals, a non-member's approval, rollback, a fork
of the chain, an amendment approved during a pause, a chain too large to gossip."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import pausenet_command, run_command
from netutil import FAST_GOSSIP, Cluster, eventually

from pausenet.core.approval import sign_approval
from pausenet.core.charter import Charter, Role, load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.keys import generate, write_signing_key
from pausenet.core.records import Decision
from pausenet.core.view import PauseState
from pausenet.errors import SigningRefusedError
from pausenet.node.node import NodeOptions
from pausenet.ops.amend import amend_charter

OPTIONS = NodeOptions(gossip=FAST_GOSSIP, heartbeat_interval_s=0.3)


def versions_of(c: Cluster) -> dict[str, int]:
    return {
        m: (n.governor.versions[-1].version if n.governor.versions else 0)
        for m, n in c.nodes.items()
    }


async def all_on(c: Cluster, version: int) -> None:
    await eventually(
        lambda: set(versions_of(c).values()) == {version},
        20,
        what=f"every node runs charter version {version}",
    )


def approvals(charter: Charter, c: Cluster, *members: str) -> tuple[Envelope, ...]:
    return tuple(sign_approval(c.key(m), charter, m, 1_700_000_000_000).envelope for m in members)


def write_version(c: Cluster, charter: Charter, text: str) -> Path:
    path = c.fed.dir / f"charter-v{charter.version}.toml"
    path.write_text(text, encoding="utf-8")
    assert load_charter(path).digest == charter.digest
    return path


async def test_an_amendment_proposed_at_one_node_reaches_every_node_and_a_new_lab_joins(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=1, options=OPTIONS) as c:
        await c.converged()
        genesis = c.charter
        new_key = generate()
        v2, text = amend_charter(
            genesis, add=[("lab-d", Role.LAB, new_key.public_key)], rules={"pause_threshold": 3}
        )
        path = write_version(c, v2, text)
        # lab-a proposes and approves; lab-b approves at its own node; lab-d consents offline
        r = await c["lab-a"].govern(v2.canonical_bytes, (), True)
        assert r.refused == ()
        assert r.version == 1
        assert "missing" in r.status
        await eventually(lambda: v2.digest in c["lab-b"].governor.state.charters, 20)
        await c["lab-b"].govern(v2.canonical_bytes, (), True)
        assert versions_of(c) == {m: 1 for m in c.nodes}  # lab-d's consent is still missing
        consent = sign_approval(new_key, v2, "lab-d", 1_700_000_000_000).envelope
        # lab-d is no member of genesis: its consent checks only against version 2's roster,
        # so it is taken where version 2 is held (elsewhere refused with that reason)
        await eventually(lambda: v2.digest in c["lab-c"].governor.state.charters, 20)
        r = await c["lab-c"].govern(b"", (consent,), False)
        assert r.refused == ()
        await all_on(c, 2)
        assert all(n.view().charter_digest == v2.digest for n in c.running())

        # the new lab's node pins genesis and runs under version 2
        key_path = c.fed.dir / "keys" / "lab-d.key"
        write_signing_key(key_path, new_key)
        cfg = replace(
            c.configs["lab-a"],
            member_id="lab-d",
            charter_path=path,
            trust_path=c.fed.charter_path,
            key_path=key_path,
            data_dir=c.fed.dir / "data" / "lab-d",
        )
        c.configs["lab-d"] = cfg
        d = await c.start("lab-d")
        await all_on(c, 2)
        await c.converged()
        assert {m.id for m in d.view().members} == {
            "lab-a",
            "lab-b",
            "lab-c",
            "lab-d",
            "overseer-a",
        }
        st = await d.cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        assert st.statement.charter_digest == v2.digest
        # the new threshold (3 labs) applies: two more votes are needed
        await c["lab-a"].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await eventually(lambda: c["lab-b"].replica.head("lab-a")[0] >= 1, 20)
        assert c["lab-b"].view().certified_state is PauseState.NOT_PAUSED
        await c["lab-b"].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await c.all_say("PAUSED", 1)

        # adoption survives a restart: the node pins what it adopted
        await c.stop("lab-c")
        await c.start("lab-c")
        assert c["lab-c"].governor.versions[-1].digest == v2.digest


async def test_a_genesis_not_yet_approved_by_every_member_signs_nothing_and_answers_unknown(
    tmp_path: Path,
) -> None:
    c = Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS)
    missing = c.fed.dir / "approvals" / "lab-c.json"
    lab_c_approval = Envelope.from_json(json.loads(missing.read_text()))
    missing.unlink()
    async with c:
        a = c["lab-a"]
        assert not a.governor.in_force
        v = a.view()
        assert v.state is PauseState.UNKNOWN
        assert "not ratified" in v.explanation
        assert "lab-c" in v.explanation
        with pytest.raises(SigningRefusedError, match="charter not in force"):
            await a.cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        assert a.replica.heartbeat("lab-a") is None
        # the last approval, handed to one node, is gossiped; every node starts counting
        await c["lab-b"].govern(b"", (lab_c_approval,), False)
        await all_on(c, 1)
        await c.converged()
        await c.all_say("NOT_PAUSED", 0)


async def test_forged_and_non_member_approvals_put_nothing_in_force(tmp_path: Path) -> None:
    c = Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS)
    genesis = load_charter(c.fed.charter_path)
    stranger = generate()
    # lab-c's approval signed with a stranger's key, and an approval by a non-member
    (c.fed.dir / "approvals" / "lab-c.json").write_text(
        json.dumps(sign_approval(stranger, genesis, "lab-c", 1_700_000_000_000).envelope.to_json())
    )
    (c.fed.dir / "approvals" / "lab-x.json").write_text(
        json.dumps(sign_approval(stranger, genesis, "lab-x", 1_700_000_000_000).envelope.to_json())
    )
    async with c:
        for n in c.running():
            assert not n.governor.in_force
            assert n.view().state is PauseState.UNKNOWN
        forged = sign_approval(stranger, genesis, "lab-y", 1_700_000_000_000).envelope
        r = await c["lab-a"].govern(b"", (forged,), False)
        assert r.refused
        assert "no key verifies" in r.refused[0]
        assert not c["lab-a"].governor.in_force


async def test_too_few_amendment_approvals_and_an_older_version_change_nothing(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS) as c:
        await c.converged()
        genesis = c.charter
        v2, _ = amend_charter(genesis, rules={"pause_threshold": 3})
        await c["lab-a"].govern(v2.canonical_bytes, approvals(v2, c, "lab-a"), False)
        await eventually(
            lambda: all(v2.digest in n.governor.state.charters for n in c.running()), 20
        )
        assert versions_of(c) == {m: 1 for m in c.nodes}  # 1 of 2 labs
        await c["lab-c"].govern(b"", approvals(v2, c, "lab-b"), False)
        await all_on(c, 2)
        # rollback: the old genesis or a rival version 2 offered now is refused with a reason
        rival, _ = amend_charter(genesis, rules={"pause_threshold": 1})
        r = await c["lab-a"].govern(
            rival.canonical_bytes, approvals(rival, c, "lab-a", "lab-b"), False
        )
        assert any("never goes back" in why for why in r.refused)
        assert c["lab-a"].governor.versions[-1].digest == v2.digest


async def test_two_successors_approved_by_one_member_is_evidence_and_the_chain_stops(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS) as c:
        await c.converged()
        genesis = c.charter
        one, _ = amend_charter(genesis, rules={"pause_threshold": 3})
        two, _ = amend_charter(genesis, rules={"pause_threshold": 1})
        # lab-a approves the first, lab-c the second; then lab-b approves both at once: each
        # has two labs (a strict majority), which only a member approving both can bring about
        await c["lab-a"].govern(one.canonical_bytes, approvals(one, c, "lab-a"), False)
        await c["lab-a"].govern(two.canonical_bytes, approvals(two, c, "lab-c"), False)
        both = approvals(one, c, "lab-b") + approvals(two, c, "lab-b")
        await c["lab-a"].govern(b"", both, False)
        chain = c["lab-a"].governor.state.chain()
        assert chain.evidence[0].member == "lab-b"
        assert "two successors" in chain.stopped
        assert c["lab-a"].governor.versions[-1].digest == genesis.digest
        # the evidence (the two approvals) is gossiped to every node
        held = {a.payload_hash for a in both}
        await eventually(
            lambda: all(
                held <= {e.payload_hash for e in n.governor.state.approvals.values()}
                for n in c.running()
            ),
            20,
            what="every node holds both of lab-b's approvals",
        )
        assert c["lab-a"].governor.versions[-1].digest == genesis.digest


async def test_an_amendment_approved_during_a_pause_takes_effect_after_the_lift(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS) as c:
        await c.converged()
        genesis = c.charter
        for m in ("lab-a", "lab-b"):
            await c[m].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await c.all_say("PAUSED", 1)
        # an amendment that would make lifting easier, approved while paused, waits
        v2, _ = amend_charter(genesis, rules={"lift_threshold": 1})
        await c["lab-a"].govern(v2.canonical_bytes, approvals(v2, c, "lab-a", "lab-b"), False)
        await eventually(
            lambda: all(v2.digest in n.governor.state.charters for n in c.running()), 20
        )
        await eventually(
            lambda: all(len(n.governor.state.versions()) == 2 for n in c.running()), 20
        )
        assert versions_of(c) == {m: 1 for m in c.nodes}
        # one lift vote is not enough under the rules the pause started under
        await c["lab-a"].cast_vote(Decision.LIFT)
        await eventually(lambda: c["lab-c"].replica.head("lab-a")[0] >= 2, 20)
        assert c["lab-c"].view().certified_state is PauseState.PAUSED
        assert versions_of(c) == {m: 1 for m in c.nodes}
        await c["lab-b"].cast_vote(Decision.LIFT)
        await c.all_say("NOT_PAUSED", 1)
        await all_on(c, 2)


async def test_a_charter_too_large_to_gossip_is_refused_with_a_reason(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS) as c:
        r = await c["lab-a"].govern(b"{" + b" " * (61 * 1024) + b"}", (), False)
        assert any("over the limit" in why or "limit" in why for why in r.refused)
        assert c["lab-a"].governor.versions[-1].version == 1


async def test_a_bundle_carries_the_chain_and_verify_trusts_one_digest(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=3, overseers=0, options=OPTIONS) as c:
        await c.converged()
        genesis = c.charter
        await c["lab-a"].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await c["lab-b"].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await c.all_say("PAUSED", 1)
        await c["lab-a"].cast_vote(Decision.LIFT)
        await c["lab-b"].cast_vote(Decision.LIFT)
        await c.all_say("NOT_PAUSED", 1)
        v2, _ = amend_charter(genesis, rules={"pause_threshold": 3})
        await c["lab-a"].govern(v2.canonical_bytes, approvals(v2, c, "lab-a", "lab-b"), False)
        await all_on(c, 2)
        await c["lab-c"].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))  # under version 2
        await eventually(lambda: c["lab-a"].replica.head("lab-c")[0] == 1, 20)
        await c.converged()

        bundle = tmp_path / "bundle.json"
        r = await asyncio.to_thread(
            run_command,
            [*pausenet_command(), "view", "--node", c["lab-a"].address, "--out", bundle],
        )
        assert r.returncode == 0, r.stderr
        doc = json.loads(bundle.read_text())
        assert len(doc["chain"]["charters"]) == 2
        for trust in (str(c.fed.charter_path), genesis.digest_hex):
            r = await asyncio.to_thread(
                run_command, [*pausenet_command(), "verify", "--trust", trust, bundle]
            )
            assert r.returncode == 0, r.stdout + r.stderr
            assert "newest in force version 2" in r.stdout
            assert "answer" in r.stdout.lower()
        # with an approval of version 2 taken out the chain stops at genesis: the answer,
        # signed under version 2, no longer checks
        cut = tmp_path / "cut.json"
        v2_approvals = [
            a
            for a in json.loads(bundle.read_text())["chain"]["approvals"]
            if sign_free_version(a) == 2
        ]
        doc = json.loads(bundle.read_text())
        doc["chain"]["approvals"] = [
            a for a in doc["chain"]["approvals"] if a not in v2_approvals[:1]
        ]
        cut.write_text(json.dumps(doc))
        r = await asyncio.to_thread(
            run_command, [*pausenet_command(), "verify", "--trust", genesis.digest_hex, cut]
        )
        assert r.returncode == 1, r.stdout + r.stderr


def sign_free_version(approval_json: dict[str, object]) -> int:
    """The version an approval envelope (JSON) claims, read without checking it."""
    from pausenet.core.payload import decode_approval

    return decode_approval(Envelope.from_json(approval_json).payload).version
