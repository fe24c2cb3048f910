"""One member signs hundreds of large, valid statements (issue 8, item 2), on real nodes.

Before the proof was bounded, 600 trigger attestations with 2000-character notes made every
GetView reply exceed the message limit: the call failed with a traceback in the node's log, for
good, since statements are kept forever. Now the view's proof carries only what the decision
reads, the reply stays small, a verifier checks the bounded bundle (and says which statements it
took on the node's word), and `pausenet view --full` fetches the whole log page by page.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from byzantine import Attacker
from helpers import attest, pausenet_command, run_command
from netutil import Cluster, eventually
from test_cli_node import start_node, write_config

from pausenet.client import OversightClient, check_view_reply, fetch_full_logs
from pausenet.core.bundle import check_bundle_answer, read_bundle
from pausenet.core.charter import load_charter
from pausenet.core.keys import load_signing_key
from pausenet.errors import NodeError
from pausenet.ops.federation import approve_charter, init_federation

pytestmark = pytest.mark.slow

STATEMENTS = 600
NOTE = "n" * 2000
MAX_MESSAGE = 1 << 20  # 1 MiB: the flood is over it several times, so logs take pages


def _cli(*args: object) -> tuple[int, str]:
    r = run_command([*pausenet_command(), *args], timeout=120)
    return r.returncode, r.stdout + r.stderr


async def test_a_member_signing_hundreds_of_large_statements_cannot_break_get_view(
    tmp_path: Path,
) -> None:
    d = tmp_path / "fed"
    fed = init_federation(d, 3, 0)
    with fed.charter_path.open("a", encoding="utf-8") as f:
        f.write(f"\n[limits]\nmax_message_bytes = {MAX_MESSAGE}\n")
    approve_charter(d)  # the edited genesis is in force only once every member approved it
    charter = load_charter(fed.charter_path)
    key = load_signing_key(d / "keys" / "lab-c.key")
    node = start_node(write_config(d, "lab-a"), "lab-a")
    try:
        async with Attacker(charter, key, "lab-c") as atk:
            # the attacker's own signing code, pushed in batches under the message limit
            flood = [atk.sign(attest("eval-threshold", note=NOTE)) for _ in range(STATEMENTS)]
            for i in range(0, STATEMENTS, 200):
                out = await atk.push(node.address, *flood[i : i + 200])
                assert out.ok, out
            await atk.push(node.address, heartbeats=[atk.heartbeat()])

        nonce = os.urandom(32)
        async with OversightClient(node.address, timeout=30) as client:

            async def has_all() -> bool:
                reply = await client.get_view()
                return any(m.id == "lab-c" and m.head_seq == STATEMENTS for m in reply.members)

            await eventually(has_all, what="the node holds the whole flood")
            reply = await client.get_view(nonce)
            # bounded: the earliest attestation and the head, not 600 statements
            assert reply.ByteSize() < 64 * 1024
            assert reply.proof_elided == STATEMENTS - 2
            assert check_view_reply(charter, reply, nonce)
            full = await fetch_full_logs(client, reply, page_bytes=256 * 1024)
            assert len([e for e in full if e.payload_type.endswith("statement.v1+protobuf")]) == (
                STATEMENTS
            )
        assert "Traceback" not in node.stderr()

        # a verifier checks the bounded bundle, and says what it took on the node's word
        bundle = tmp_path / "bounded.json"
        code, out = _cli(
            "view", "--node", node.address, "--out", bundle, "--charter", fed.charter_path
        )
        assert code == 0, out
        assert bundle.stat().st_size < 64 * 1024
        code, out = _cli("verify", "--charter", fed.charter_path, bundle)
        assert code == 0, out
        assert f"partial: {STATEMENTS - 2} statement(s) elided" in " ".join(out.split())
        assert "view --full" in out
        code, out = _cli("verify", "--json", "--charter", fed.charter_path, bundle)
        assert json.loads(out)["logs"] == {"complete": False, "elided": STATEMENTS - 2}

        # view --full pages through the log: a complete bundle, checked with no trust in the node
        complete = tmp_path / "full.json"
        code, out = _cli(
            "view", "--full", "--node", node.address, "--out", complete,
            "--charter", fed.charter_path,
        )  # fmt: skip
        assert code == 0, out
        b = read_bundle(complete)
        assert b.complete
        check = check_bundle_answer(charter, b)
        assert check is not None
        assert check, check.problems
        code, out = _cli("verify", "--charter", fed.charter_path, complete)
        assert code == 0, out
        assert "logs: complete" in out
        assert "Traceback" not in node.stderr()
    finally:
        node.stop()


async def test_a_view_over_the_message_limit_is_refused_with_its_size_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Only a charter with tiny messages and huge notes allows it: two 50 KB statements in the
    # proof of a 64 KiB message limit.
    cluster = Cluster(tmp_path, running=("lab-a",))
    with cluster.fed.charter_path.open("a", encoding="utf-8") as f:
        f.write(
            "\n[limits]\nmax_message_bytes = 65536\nmax_statement_bytes = 60000\n"
            "max_note_chars = 50000\n"
        )
    approve_charter(cluster.fed.charter_path.parent)
    async with cluster:
        node = cluster["lab-a"]
        key = cluster.key("lab-c")
        async with Attacker(node.charter, key, "lab-c") as atk:
            for _ in range(2):
                out = await atk.push(
                    node.address, atk.sign(attest("eval-threshold", note="z" * 50_000))
                )
                assert out.ok, out
        await eventually(lambda: node.replica.head("lab-c")[0] == 2, what="both held")
        async with OversightClient(node.address, timeout=30) as client:
            with pytest.raises(NodeError, match=r"RESOURCE_EXHAUSTED.*the view is \d+ bytes, over"):
                await client.get_view(os.urandom(32))
            # the log still comes, a page at a time
            page = await client.get_log_page("lab-c", 1)
            assert len(page.statements) == 1
            assert page.more
    assert "Traceback" not in caplog.text
