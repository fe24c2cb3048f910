"""Real nodes in one process, over gRPC on 127.0.0.1 with OS-chosen ports, each with its SQLite
store in a temp dir (docs/protocol.md §5, §8, §12-14).

Every cluster is stopped on the way out of its `async with`, whatever happens inside.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from netutil import FAST_GOSSIP, Cluster, eventually

from pausenet.client import AdminClient, OversightClient
from pausenet.core.answer import check_answer
from pausenet.core.charter import load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.payload import decode_statement
from pausenet.core.records import ComplianceState, Decision, TriggerAttestation
from pausenet.core.signing import sign_heartbeat
from pausenet.core.view import ComplianceStatus, PauseState
from pausenet.errors import ConfigError, NodeError, StoreError
from pausenet.node.config import load_config
from pausenet.node.gossip import GossipEngine
from pausenet.node.node import Node, NodeOptions
from pausenet.node.peerauth import sign_auth
from pausenet.node.wire import envelope_from_pb, envelope_to_pb
from pausenet.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    envelope_pb2,
    gossip_pb2,
    gossip_pb2_grpc,
    oversight_pb2,
)

pytestmark = pytest.mark.slow

RSI = ("rsi-detected",)
PAUSED = oversight_pb2.PAUSE_STATE_PAUSED
UNKNOWN = oversight_pb2.PAUSE_STATE_UNKNOWN


def statements_of(node: Node, member: str) -> list[Envelope]:
    return [s.envelope for s in node.replica.log(member)]


async def pause_at(cluster: Cluster, *members: str) -> None:
    for m in members:
        await cluster[m].cast_vote(Decision.PAUSE, triggers=RSI)


# -- convergence and the pause decision -------------------------------------------------------


async def test_nodes_converge_every_node_sees_every_member_fresh_and_synced(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        took = await cluster.converged()

        print(f"4 nodes: every member fresh and synced everywhere {took:.2f}s after start")
        for node in cluster.running():
            view = node.view()
            assert view.state is PauseState.NOT_PAUSED
            assert view.epoch == 0
            assert {m.id: m.address for m in view.members} == {
                m: cluster[m].address for m in cluster.ids
            }


async def test_a_pause_quorum_cast_at_different_nodes_pauses_every_node_and_a_lift_ends_it(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        await cluster.converged()

        await cluster["lab-a"].cast_vote(Decision.PAUSE, triggers=RSI)
        async with AdminClient(cluster["lab-b"].admin_address, cluster["lab-b"].admin_token) as ad:
            reply = await ad.cast_vote(Decision.PAUSE, triggers=RSI, note="seen it too")
        assert reply.seq == 1
        took = await cluster.all_say("PAUSED", 1)
        print(f"second PAUSE vote to PAUSED on all 4 nodes: {took:.3f}s")

        await cluster["lab-a"].attest_compliance(ComplianceState.HALTED)

        def compliance_everywhere() -> bool:
            want = {
                "lab-a": ComplianceStatus.COMPLIANT,
                "lab-b": ComplianceStatus.PENDING,
                "lab-c": ComplianceStatus.PENDING,
                "overseer-a": None,
            }
            return all(
                {m.id: m.compliance for m in n.view().members} == want for n in cluster.running()
            )

        await eventually(compliance_everywhere, what="lab-a compliant, lab-b/c pending everywhere")

        for m in ("lab-a", "lab-b", "overseer-a"):
            await cluster[m].cast_vote(Decision.LIFT)
        took = await cluster.all_say("NOT_PAUSED", 1)
        print(f"last LIFT vote to NOT_PAUSED (epoch 1) on all 4 nodes: {took:.3f}s")
        for node in cluster.running():
            assert all(m.compliance is None for m in node.view().members)


async def test_a_restarted_node_keeps_its_log_catches_up_and_continues_its_seq(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        await cluster.converged()
        first = await cluster["lab-c"].attest_trigger("rsi-detected", note="before the restart")
        await eventually(lambda: all(n.replica.head("lab-c")[0] == 1 for n in cluster.running()))

        await cluster.stop("lab-c")
        await pause_at(cluster, "lab-a", "lab-b")
        await cluster.all_say("PAUSED", 1)

        lab_c = await cluster.start("lab-c")
        assert lab_c.replica.head("lab-c") == (1, first.hash)  # its own log, from its store
        took = await cluster.all_say("PAUSED", 1)
        print(f"restarted node caught up on the pause in {took:.3f}s")

        second = await lab_c.attest_compliance(ComplianceState.HALTED)
        assert second.seq == 2
        assert second.statement.prev_hash == first.hash
        await eventually(lambda: all(n.replica.head("lab-c")[0] == 2 for n in cluster.running()))

        payloads: dict[int, set[bytes]] = defaultdict(set)
        for node in cluster.running():
            async with OversightClient(node.address) as client:
                envelopes = statements_of(node, "lab-c") + await client.get_log("lab-c")
            for env in envelopes:
                payloads[decode_statement(env.payload).seq].add(env.payload)
            assert node.replica.evidence() == []
        assert {seq: len(p) for seq, p in payloads.items()} == {1: 1, 2: 1}


async def test_a_node_cut_off_from_every_peer_answers_unknown_once_its_view_is_stale(
    tmp_path: Path,
) -> None:
    ttl_s = 2
    options = NodeOptions(gossip=FAST_GOSSIP, heartbeat_interval_s=0.3)
    async with Cluster(tmp_path, labs=3, overseers=0, heartbeat_ttl_s=ttl_s, options=options) as c:
        assert c.charter.rules.heartbeat_ttl_s == ttl_s
        await c.converged()
        await c.all_say("NOT_PAUSED", 0)
        lone = c["lab-a"]

        stopped_at = time.monotonic()
        await c.stop("lab-b")
        await c.stop("lab-c")
        await eventually(
            lambda: lone.view().state is PauseState.UNKNOWN, what="the lone node says UNKNOWN"
        )
        print(f"cut-off node: UNKNOWN {time.monotonic() - stopped_at:.2f}s after its peers stopped")

        view = lone.view()
        assert view.certified_state is PauseState.NOT_PAUSED  # the last proven state, alongside
        assert view.as_of_ms is None
        assert {m.id for m in view.members if not m.fresh} == {"lab-b", "lab-c"}
        async with OversightClient(lone.address) as client:
            reply = await client.get_view(os.urandom(32))
        assert reply.state == UNKNOWN
        assert reply.as_of_ms == 0


# -- the admin API ----------------------------------------------------------------------------


async def test_admin_refuses_a_caller_without_the_token_or_with_a_wrong_one(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        request = admin_pb2.AttestTriggerRequest(trigger_id="rsi-detected")

        async with grpc.aio.insecure_channel(node.admin_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as no_token:
                await admin_pb2_grpc.AdminStub(channel).AttestTrigger(request, timeout=5)
        assert no_token.value.code() == grpc.StatusCode.UNAUTHENTICATED

        for token in ("", "x" * 43, node.admin_token[:-1] + "?"):
            async with AdminClient(node.admin_address, token) as admin:
                with pytest.raises(NodeError, match="token"):
                    await admin.attest_trigger("rsi-detected")
        assert node.replica.head("lab-a")[0] == 0  # nothing was signed

        # the token file is the owner's alone, and the right token works
        assert node.config.admin_token_file.stat().st_mode & 0o077 == 0
        async with AdminClient(node.admin_address, node.admin_token) as admin:
            reply = await admin.attest_trigger("rsi-detected")
        assert reply.seq == 1

        # the public port does not offer Admin, whatever the token
        async with AdminClient(node.address, node.admin_token) as admin:
            with pytest.raises(NodeError, match="does not offer this service"):
                await admin.attest_trigger("rsi-detected")


async def test_admin_listens_on_loopback_and_a_remote_admin_address_needs_explicit_consent(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        assert node.admin_address.startswith("127.0.0.1:")
        assert node.address.startswith("127.0.0.1:")
        generated = cluster.fed.members[0].config_path.read_text(encoding="utf-8")

    # a config beside the generated ones, so its relative paths resolve the same way
    path = tmp_path / "fed" / "node_configs" / "remote.toml"
    for remote in ("0.0.0.0:7401", "[::]:7401", "10.1.2.3:7401", "example.org:7401"):
        text = "".join(
            f'admin_listen = "{remote}"\n' if line.startswith("admin_listen") else line
            for line in generated.splitlines(keepends=True)
        )
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=r"admin_listen.*not a loopback address"):
            load_config(path)

        path.write_text(text + "admin_allow_remote = true\n", encoding="utf-8")
        config = load_config(path)
        assert config.admin_allow_remote
        assert config.admin_listen == remote

    # a NodeConfig built in code, bypassing load_config, is refused by the node itself
    loopback = load_config(cluster.fed.members[0].config_path)
    node = Node(replace(loopback, admin_listen="0.0.0.0:0", listen="127.0.0.1:0"))
    with pytest.raises(ConfigError, match="not a loopback address"):
        await node.start()


# -- oversight ----------------------------------------------------------------------------------


async def test_a_signed_answer_checks_against_the_charter_and_fails_when_tampered(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        await cluster.converged()
        await pause_at(cluster, "lab-a", "lab-b")
        await cluster.all_say("PAUSED", 1)
        charter = load_charter(cluster.fed.charter_path)
        nonce = os.urandom(32)

        async with OversightClient(cluster["lab-c"].address) as client:
            reply = await client.get_view(nonce)
            with pytest.raises(NodeError, match="INVALID_ARGUMENT"):
                await client.get_view(b"too short")
        answer = envelope_from_pb(reply.signed_answer)
        proof = [envelope_from_pb(e) for e in reply.proof]

        check = check_answer(charter, answer, proof, nonce=nonce)
        assert check, check.problems
        assert check.answer is not None
        assert check.answer.member == "lab-c"
        assert (check.answer.state, check.answer.epoch) == (PauseState.PAUSED, 1)
        assert reply.state == PAUSED

        votes = {bytes(v) for c in reply.certificates for v in c.votes}
        for i, env in enumerate(proof):
            if env.payload_hash in votes:  # leave out one of the votes the pause rests on
                assert not check_answer(charter, answer, proof[:i] + proof[i + 1 :], nonce=nonce)
                break
        else:
            pytest.fail("no vote of the pause certificate in the proof")
        assert not check_answer(charter, answer, proof[1:], nonce=nonce)
        replayed = check_answer(charter, answer, proof, nonce=os.urandom(32))
        assert not replayed
        assert "another nonce" in replayed.problems[0]


async def test_reflection_lists_the_services_and_health_says_serving(tmp_path: Path) -> None:
    async def services(address: str) -> set[str]:
        async with grpc.aio.insecure_channel(address) as channel:
            call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
            await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
            reply = await call.read()
            await call.done_writing()
        return {s.name for s in reply.list_services_response.service}

    async def health(address: str, service: str) -> int:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            r = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return r.status

    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        public, admin = await services(node.address), await services(node.admin_address)

        assert {"pausenet.v1.Gossip", "pausenet.v1.Oversight", "grpc.health.v1.Health"} <= public
        assert "pausenet.v1.Admin" not in public
        assert {"pausenet.v1.Admin", "grpc.health.v1.Health"} <= admin
        assert not {"pausenet.v1.Gossip", "pausenet.v1.Oversight"} & admin
        serving = health_pb2.HealthCheckResponse.SERVING
        for service in ("", "pausenet.v1.Gossip", "pausenet.v1.Oversight"):
            assert await health(node.address, service) == serving
        for service in ("", "pausenet.v1.Admin"):
            assert await health(node.admin_address, service) == serving


async def test_watch_view_streams_a_new_view_when_a_vote_changes_the_state(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=3, overseers=0) as cluster:
        await cluster.converged()
        async with OversightClient(cluster["lab-c"].address) as client:
            stream = client.watch()
            try:
                first = await asyncio.wait_for(anext(stream), 15)
                assert first.state == oversight_pb2.PAUSE_STATE_NOT_PAUSED

                await pause_at(cluster, "lab-a", "lab-b")

                async def until_paused() -> oversight_pb2.ViewReply:
                    async for reply in stream:
                        if reply.state == PAUSED:
                            return reply
                    raise AssertionError("the stream ended")

                reply = await asyncio.wait_for(until_paused(), 15)
            finally:
                await stream.aclose()
        assert reply.epoch == 1
        assert reply.answered_by == "lab-c"
        assert {c.decision for c in reply.certificates} == {"pause"}


async def test_get_log_returns_a_members_statements_by_range(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        await cluster.converged()
        for i in range(5):
            await cluster["lab-a"].attest_trigger("eval-threshold", note=f"run {i}")
        await eventually(lambda: cluster["lab-b"].replica.head("lab-a")[0] == 5)

        async with OversightClient(cluster["lab-b"].address) as client:
            middle = await client.get_log("lab-a", from_seq=2, limit=3)
            everything = await client.get_log("lab-a")
            past_the_end = await client.get_log("lab-a", from_seq=6)
            with pytest.raises(NodeError, match="not a member"):
                await client.get_log("mallory")

        assert [decode_statement(e.payload).seq for e in middle] == [2, 3, 4]
        assert [decode_statement(e.payload).body for e in middle] == [
            TriggerAttestation("eval-threshold", b"", f"run {i}") for i in (1, 2, 3)
        ]
        assert [e.payload for e in everything] == [
            e.payload for e in statements_of(cluster["lab-a"], "lab-a")
        ]
        assert past_the_end == []


# -- hostile input on the gossip port ---------------------------------------------------------


BIG = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]


async def gossip_session(
    stub: gossip_pb2_grpc.GossipStub, cluster: Cluster, member: str, address: str
) -> tuple[tuple[str, str], ...]:
    """Prove to be member's node to the node at `address` (sign its challenge, for that
    address); the metadata for later calls."""
    ch = await stub.Challenge(gossip_pb2.ChallengeRequest(client=member), timeout=5)
    signed = sign_auth(
        cluster.key(member),
        cluster.charter,
        member,
        ch.server,
        ch.challenge,
        int(time.time() * 1000),
        address,
    )
    reply = await stub.Authenticate(gossip_pb2.AuthRequest(auth=envelope_to_pb(signed)), timeout=5)
    return (("pausenet-session", reply.session),)


async def test_oversized_and_malformed_gossip_requests_are_refused_and_the_node_keeps_serving(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        await cluster.converged()
        target = cluster["lab-b"]
        one = envelope_pb2.Envelope(payload=b"x", payload_type="t")
        head = gossip_pb2.MemberHead(member="lab-a", head_seq=1, head_hash=b"short")
        refused = {
            "summary hash of 5 bytes": (
                "GetDigest",
                gossip_pb2.DigestRequest(summary_hash=b"12345"),
            ),
            "a digest request below the tree's depth": (
                "GetDigest",
                gossip_pb2.DigestRequest(summary_hash=bytes(32), level=1, nodes=[0]),
            ),
            "a digest request naming a node other than the root": (
                "GetDigest",
                gossip_pb2.DigestRequest(summary_hash=bytes(32), nodes=[3]),
            ),
            "a head with nine evidence ids": (
                "Exchange",
                gossip_pb2.ExchangeRequest(
                    digest=gossip_pb2.Digest(
                        heads=[gossip_pb2.MemberHead(member="lab-a", evidence_ids=[bytes(32)] * 9)]
                    )
                ),
            ),
            "a head hash of 5 bytes": (
                "Exchange",
                gossip_pb2.ExchangeRequest(digest=gossip_pb2.Digest(heads=[head])),
            ),
            "more heads than members": (
                "Exchange",
                gossip_pb2.ExchangeRequest(digest=gossip_pb2.Digest(heads=[head] * 50)),
            ),
            "more items than max_items_per_message": (
                "Exchange",
                gossip_pb2.ExchangeRequest(items=gossip_pb2.Items(statements=[one] * 1001)),
            ),
            "a message over max_message_bytes": (
                "Exchange",
                gossip_pb2.ExchangeRequest(
                    items=gossip_pb2.Items(
                        statements=[envelope_pb2.Envelope(payload=bytes(5 << 20))]
                    )
                ),
            ),
        }
        async with grpc.aio.insecure_channel(target.address, options=BIG) as channel:
            stub = gossip_pb2_grpc.GossipStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:  # gossip is for members only
                await stub.GetDigest(gossip_pb2.DigestRequest(summary_hash=bytes(32)), timeout=5)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            session = await gossip_session(stub, cluster, "lab-a", target.address)
            for what, (method, request) in refused.items():
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await getattr(stub, method)(request, timeout=10, metadata=session)
                assert err.value.code() in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                ), what

        async with OversightClient(target.address) as client:
            assert (await client.get_view()).answered_by == "lab-b"
        await cluster["lab-a"].attest_trigger("rsi-detected")
        await eventually(lambda: target.replica.head("lab-a")[0] == 1, what="gossip still works")


async def test_a_peer_hanging_up_mid_exchange_does_not_wedge_the_nodes_store(
    tmp_path: Path,
) -> None:
    """A cancelled call cancels its handler; an ingest cut off inside a store write must not
    leave the store in a transaction that refuses every later write."""
    async with Cluster(tmp_path, labs=3, overseers=0, running=("lab-a",)) as cluster:
        node, charter = cluster["lab-a"], cluster.charter
        rng = random.Random(5)
        async with grpc.aio.insecure_channel(node.address) as channel:
            stub = gossip_pb2_grpc.GossipStub(channel)
            # lab-c hangs up, 40 times
            session = await gossip_session(stub, cluster, "lab-c", node.address)
            for counter in range(1, 41):
                hb = sign_heartbeat(
                    cluster.key("lab-c"),
                    charter,
                    "lab-c",
                    head_seq=0,
                    head_hash=b"",
                    counter=counter,
                    issued_at_ms=int(time.time() * 1000),
                )
                items = gossip_pb2.Items(heartbeats=[envelope_to_pb(hb.envelope)])
                call = stub.Exchange(
                    gossip_pb2.ExchangeRequest(digest=gossip_pb2.Digest(), items=items),
                    metadata=session,
                    timeout=5,
                )
                await asyncio.sleep(rng.uniform(0, 0.004))  # hang up at a random instant
                call.cancel()

        statement = await node.attest_trigger("rsi-detected")  # the store still takes writes
        assert statement.seq == 1
        await node.issue_heartbeat()
        assert node.failure is None


async def test_an_admin_call_cut_off_mid_write_leaves_the_node_able_to_sign(
    tmp_path: Path,
) -> None:
    """An Admin caller that gives up (its deadline passes, it hangs up) cancels the handler at
    whatever await it reached; the node must still sign, with its replica and store agreeing."""
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        rng = random.Random(6)
        for i in range(40):
            call = asyncio.create_task(node.attest_trigger("rsi-detected", note=f"cut {i}"))
            await asyncio.sleep(rng.uniform(0, 0.004))  # give up at a random instant
            call.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await call

        statement = await node.attest_trigger("rsi-detected", note="after")
        assert node.replica.head("lab-a") == (statement.seq, statement.hash)
        assert [s.seq for s in node.replica.log("lab-a")] == list(range(1, statement.seq + 1))


async def test_a_request_that_is_not_protobuf_is_refused_as_invalid_argument(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        async with grpc.aio.insecure_channel(node.address) as channel:
            stub = gossip_pb2_grpc.GossipStub(channel)
            session = await gossip_session(stub, cluster, "lab-a", node.address)
            raw = channel.unary_unary(
                "/pausenet.v1.Gossip/Exchange",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await raw(b"\xff\xff\xff\xff", timeout=5, metadata=session)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


class _Tarpit(gossip_pb2_grpc.GossipServicer):
    """A peer that takes every call and never answers."""

    async def Challenge(self, request: object, context: object) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def Authenticate(self, request: object, context: object) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def GetDigest(self, request: object, context: object) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def Exchange(self, request: object, context: object) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@contextlib.asynccontextmanager
async def tarpit() -> AsyncIterator[str]:
    """A gossip server on 127.0.0.1 that takes every call and never answers; yields its address."""
    # it takes the nodes' keepalive pings as a node does, so a call hangs until its deadline
    # instead of ending in "too many pings"
    server = grpc.aio.server(
        options=[
            ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ]
    )
    gossip_pb2_grpc.add_GossipServicer_to_server(_Tarpit(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def test_a_peer_that_never_answers_backs_off_and_does_not_stop_news(tmp_path: Path) -> None:
    async with (
        tarpit() as address,
        Cluster(tmp_path, labs=3, overseers=0, extra_peers=(address,)) as cluster,
    ):
        await cluster.converged()
        await pause_at(cluster, "lab-a", "lab-b")
        took = await cluster.all_say("PAUSED", 1)
        print(f"with a tarpit peer: PAUSED on all 3 nodes {took:.3f}s after the vote")
        await eventually(
            lambda: any(
                n.engine is not None and n.engine.backoff(address) > 0 for n in cluster.running()
            ),
            what="the silent peer is backing off",
        )


async def test_a_peer_that_never_answers_does_not_slow_a_nodes_rounds(tmp_path: Path) -> None:
    # calls time out only after 10 minutes, so no call to the tarpit ends during the test: every
    # contact with the other peers is finished while one to the tarpit hangs
    options = NodeOptions(
        gossip=replace(FAST_GOSSIP, call_timeout_s=600.0), heartbeat_interval_s=0.5
    )
    async with (
        tarpit() as address,
        Cluster(tmp_path, labs=3, overseers=0, extra_peers=(address,), options=options) as cluster,
    ):
        engines = [n.engine for n in cluster.running() if n.engine is not None]

        def answered(e: GossipEngine) -> int:  # finished contacts with peers that answered
            return e.counters["gossip.contacted"] - e.counters["gossip.failures"]

        before = [answered(e) for e in engines]
        await eventually(
            lambda: all(answered(e) - b >= 10 for e, b in zip(engines, before, strict=True)),
            timeout=120,
            what="every node finishes 10 contacts with its answering peers",
        )
        assert [e.counters["gossip.failures"] for e in engines] == [0] * len(engines)


async def test_a_store_changed_outside_pausenet_is_refused_at_start(tmp_path: Path) -> None:
    """A stored envelope altered on disk (valid SQLite, wrong bytes) fails re-verification at
    start: the node refuses to serve a view from it rather than serve a wrong one."""
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        await cluster["lab-a"].attest_trigger("rsi-detected", note="original")
        config = cluster.config("lab-a")
    db = config.data_dir / "pausenet.db"
    con = sqlite3.connect(db)
    (blob,) = con.execute("SELECT envelope FROM statements WHERE seq = 1").fetchone()
    con.execute(
        "UPDATE statements SET envelope = ? WHERE seq = 1",
        (bytes(blob).replace(b"original", b"tampered"),),
    )
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="fail verification"):
        await Node(config).start()


async def test_a_node_signs_no_login_for_a_member_other_than_the_one_at_that_address(
    tmp_path: Path,
) -> None:
    """A member's node relaying a challenge from another node would get a session there in our
    name; the client signs only for the member whose signed heartbeat gives that address."""
    from pausenet.node.gossip import PeerError
    from pausenet.node.rpc import GrpcTransport

    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        node = cluster["lab-a"]
        key = cluster.key("lab-b")
        liar = GrpcTransport(node.charter, key, "lab-b", node.clock, None, lambda _a: "lab-c")
        honest = GrpcTransport(node.charter, key, "lab-b", node.clock, None, lambda _a: "lab-a")
        try:
            with pytest.raises(PeerError, match="says it is lab-a"):
                await liar.peer(node.address).get_digest(b"\0" * 32, timeout=5)
            reply = await honest.peer(node.address).get_digest(b"\0" * 32, timeout=5)
            assert reply.digest is not None
        finally:
            await liar.close()
            await honest.close()


async def test_own_statements_the_store_finished_outside_the_node_are_gossiped_too(
    tmp_path: Path,
) -> None:
    """If a statement reaches the store without reaching the replica (a failed write finished by
    recovery), the node's next statement brings both into its log, so neither is lost to peers."""
    from pausenet.core.records import TriggerAttestation

    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        assert node.store is not None
        await node.store.issue_statement(
            node.key, node.charter, "lab-a", TriggerAttestation("rsi-detected"), node.clock()
        )
        assert node.replica.head("lab-a")[0] == 0  # the replica missed it
        st = await node.attest_trigger("eval-threshold")
        assert st.seq == 2
        assert [s.seq for s in node.replica.log("lab-a")] == [1, 2]


async def test_a_node_restored_from_an_older_store_catches_up_before_it_signs(
    tmp_path: Path,
) -> None:
    """A store restored from a backup lacks this member's latest statements; the node hears
    from a peer before its first signature, so it continues the log instead of forking it."""
    import shutil

    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        await cluster.converged()  # each holds the other's heartbeat: its address, after restarts
        a = cluster["lab-a"]
        await a.attest_trigger("rsi-detected", note="one")
        await eventually(lambda: cluster["lab-b"].replica.head("lab-a")[0] == 1)
        config = cluster.config("lab-a")
        await cluster.stop("lab-a")
        db = config.data_dir / "pausenet.db"
        backup = tmp_path / "backup"
        backup.mkdir()
        for f in config.data_dir.glob("pausenet.db*"):
            shutil.copy2(f, backup / f.name)
        a = await cluster.start("lab-a")
        for note in ("two", "three"):
            await a.attest_trigger("rsi-detected", note=note)
        await eventually(lambda: cluster["lab-b"].replica.head("lab-a")[0] == 3)
        await cluster.stop("lab-a")
        for f in config.data_dir.glob("pausenet.db*"):
            f.unlink()
        for f in backup.iterdir():
            shutil.copy2(f, config.data_dir / f.name)
        assert db.exists()
        a = await cluster.start("lab-a")
        st = await a.attest_trigger("rsi-detected", note="four")
        assert st.seq == 4  # not a second seq 2
        await eventually(lambda: cluster["lab-b"].replica.head("lab-a")[0] == 4)
        assert cluster["lab-b"].replica.evidence() == []
