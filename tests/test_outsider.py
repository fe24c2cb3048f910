"""Attacks an outsider runs on the public port with raw gRPC (no pausenet client): requests of
megabytes to methods that take a few bytes, odd arguments to the Oversight API, malformed
envelopes and admin calls with wrong tokens. Each test asserts the defence (docs/security.md).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import anyio
import grpc
import pytest
from google.protobuf.internal.encoder import _VarintBytes
from grpc_health.v1 import health_pb2
from netutil import Cluster
from test_floods import LOCAL_CONNECTION, STEP_TIMEOUT_S, head_of, two_nodes

from pausenet.client import AdminClient, OversightClient, read_admin_token
from pausenet.v1 import oversight_pb2, oversight_pb2_grpc

pytestmark = pytest.mark.slow

# Every public method but Exchange takes a request of a few bytes (an id, a nonce, a hash).
SMALL_METHODS = (
    "/pausenet.v1.Gossip/Challenge",
    "/pausenet.v1.Gossip/Authenticate",
    "/pausenet.v1.Oversight/GetView",
    "/pausenet.v1.Oversight/GetLog",
    "/pausenet.v1.Oversight/GetEvidence",
    "/pausenet.v1.Oversight/GetCharter",
    "/grpc.health.v1.Health/Check",
)
STREAMING_SMALL_METHODS = (
    "/pausenet.v1.Oversight/WatchView",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
_BIG = 64 << 20


def padded(size: int) -> bytes:
    """A request of `size` bytes that parses as any message: one unknown field (number 99)."""
    body = bytes(size)
    return _VarintBytes((99 << 3) | 2) + _VarintBytes(len(body)) + body


def raw_unary(ch: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    return ch.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)


async def test_a_request_of_megabytes_to_a_method_that_takes_bytes_is_refused_unparsed(
    tmp_path: Path,
) -> None:
    """A 1 MB request to any small public method is refused with the reason; a small one is
    still answered (a GetView carrying unknown fields included)."""
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        options = [("grpc.max_send_message_length", _BIG), *LOCAL_CONNECTION]
        async with grpc.aio.insecure_channel(node.address, options=options) as ch:
            for method in SMALL_METHODS:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await raw_unary(ch, method)(padded(1 << 20), timeout=STEP_TIMEOUT_S)
                assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, method
                why = err.value.details() or ""
                assert "this method takes at most 65536" in why, why
                assert "\n" not in why, why
            for method in STREAMING_SMALL_METHODS:
                call = ch.unary_stream(
                    method, request_serializer=lambda b: b, response_deserializer=lambda b: b
                )(padded(1 << 20), timeout=STEP_TIMEOUT_S)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    async for _ in call:
                        pass
                assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED, method
            # what the node answers is unchanged for requests of their size
            reply = await raw_unary(ch, "/pausenet.v1.Oversight/GetView")(
                padded(100), timeout=STEP_TIMEOUT_S
            )
            assert oversight_pb2.ViewReply.FromString(reply).answered_by == "lab-a"
            health = await raw_unary(ch, "/grpc.health.v1.Health/Check")(
                health_pb2.HealthCheckRequest().SerializeToString(), timeout=STEP_TIMEOUT_S
            )
            assert health_pb2.HealthCheckResponse.FromString(health).status == 1
        assert node.guard.refused["oversized-request"] == len(SMALL_METHODS) + len(
            STREAMING_SMALL_METHODS
        )


@pytest.mark.parametrize(
    "method",
    [
        "/pausenet.v1.Oversight/GetView",
        "/pausenet.v1.Gossip/Challenge",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ],
)
async def test_a_flood_of_megabyte_requests_to_small_methods_leaves_the_node_serving(
    tmp_path: Path, method: str
) -> None:
    """48 connections each keeping a ~3.9 MB GetView (or Challenge, no key needed) in flight:
    they were read and parsed (RSS 54 -> 745 MiB for GetView, 1259 MiB for Challenge); now each
    is read in turn and refused unparsed, an honest peer's news still arrives and honest
    overseers are served. (Memory under this flood: bench/flood.py --oversized-flood.)"""
    request = padded(3_900_000)
    with two_nodes(tmp_path) as (node, peer):
        ended: Counter[str] = Counter()
        details: set[str] = set()
        stop = asyncio.Event()

        async def flooder() -> None:
            options = [("grpc.max_send_message_length", _BIG), *LOCAL_CONNECTION]
            async with grpc.aio.insecure_channel(node.address, options=options) as ch:
                call = raw_unary(ch, method)
                while not stop.is_set():
                    try:
                        await call(request, timeout=STEP_TIMEOUT_S)
                        ended["OK"] += 1
                    except grpc.aio.AioRpcError as exc:
                        ended[exc.code().name] += 1
                        details.add(exc.details() or "")

        flood = [asyncio.create_task(flooder()) for _ in range(48)]
        try:
            token_file = peer.config.parent.parent / "data" / "lab-b" / "admin.token"
            async with AdminClient(peer.admin_address, read_admin_token(token_file)) as admin:
                st = await admin.attest_trigger("rsi-detected", note="during the flood")
            async with OversightClient(node.address, timeout=STEP_TIMEOUT_S) as client:
                with anyio.fail_after(STEP_TIMEOUT_S * 2):
                    while head_of(await client.get_view(), "lab-b") < st.seq:
                        await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*flood)
        assert ended["RESOURCE_EXHAUSTED"] >= 48, ended
        assert set(ended) <= {"RESOURCE_EXHAUSTED", "UNAVAILABLE", "CANCELLED"}, ended
        assert any("this method takes at most" in d for d in details), details
        assert node.stop() == 0


async def test_odd_oversight_arguments_get_clear_answers(tmp_path: Path) -> None:
    """Huge `from_seq` and `limit`, unknown and overlong member ids, nonces one byte short or
    long: each a clear answer or a one-line refusal, never a failure of the node."""
    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        node = cluster["lab-a"]
        await node.attest_trigger("rsi-detected", note="one")
        async with grpc.aio.insecure_channel(node.address) as ch:
            stub = oversight_pb2_grpc.OversightStub(ch)
            r = await stub.GetLog(
                oversight_pb2.GetLogRequest(member="lab-a", from_seq=2**64 - 1, limit=2**32 - 1),
                timeout=STEP_TIMEOUT_S,
            )
            assert list(r.statements) == []
            assert r.head_seq == 1
            r = await stub.GetLog(
                oversight_pb2.GetLogRequest(member="lab-a", from_seq=0, limit=0),
                timeout=STEP_TIMEOUT_S,
            )
            assert len(r.statements) == 1
            for member in ("", "LAB-A", "x" * 60_000, "lab-a\n"):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.GetLog(
                        oversight_pb2.GetLogRequest(member=member), timeout=STEP_TIMEOUT_S
                    )
                assert err.value.code() is grpc.StatusCode.NOT_FOUND
                assert len(err.value.details() or "") < 200
            for size in (1, 15, 65, 60_000):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.GetView(
                        oversight_pb2.GetViewRequest(nonce=bytes(size)), timeout=STEP_TIMEOUT_S
                    )
                assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, size
            for size in (16, 64):
                v = await stub.GetView(
                    oversight_pb2.GetViewRequest(nonce=bytes(size)), timeout=STEP_TIMEOUT_S
                )
                assert v.HasField("signed_answer")
        assert node.view().members  # still answering
