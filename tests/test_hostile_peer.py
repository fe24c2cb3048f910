"""A hostile gossip *server*: a member's node gone bad answering honest nodes that dial it.

Honest nodes dial every address in their peers; the process at one of them answers the
handshake with values no honest node sends (a session token that is not a valid header value,
one too long to send back). An honest node must treat that as a failing peer: back off from it,
log one line, and never a traceback per round (docs/security.md, "A slow, dead or hostile peer").
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from netutil import Cluster, eventually

from pausenet.v1 import gossip_pb2, gossip_pb2_grpc

pytestmark = pytest.mark.slow

# Header values gRPC refuses to send (a newline, a non-ASCII character, a NUL), and one
# longer than any peer accepts in its metadata.
BAD_TOKENS = ("bad\ntoken", "s\u00e9ance", "nul\x00", "x" * 100_000)


class HostileServer(gossip_pb2_grpc.GossipServicer):
    """Speaks for lab-d (down, so no signed heartbeat names its address): a challenge like any
    other, then a session token honest clients cannot send back."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.logins = 0

    async def Challenge(
        self, request: gossip_pb2.ChallengeRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.ChallengeReply:
        return gossip_pb2.ChallengeReply(challenge=secrets.token_bytes(32), server="lab-d")

    async def Authenticate(
        self, request: gossip_pb2.AuthRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.AuthReply:
        self.logins += 1
        return gossip_pb2.AuthReply(session=self.token, expires_at_ms=2**62)

    async def GetDigest(
        self, request: gossip_pb2.DigestRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.DigestResponse:
        return gossip_pb2.DigestResponse(in_sync=True)


@asynccontextmanager
async def hostile_server(token: str) -> AsyncIterator[tuple[str, HostileServer]]:
    servicer = HostileServer(token)
    server = grpc.aio.server()
    gossip_pb2_grpc.add_GossipServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(0)


@pytest.mark.parametrize("token", BAD_TOKENS, ids=["newline", "non-ascii", "nul", "100kB"])
async def test_a_peer_handing_out_an_unusable_session_token_is_backed_off_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    caplog.set_level(logging.DEBUG, logger="pausenet")
    async with hostile_server(token) as (address, servicer):
        running = ("lab-a", "lab-b", "lab-c")
        async with Cluster(
            tmp_path, labs=4, overseers=0, running=running, extra_peers=(address,)
        ) as cluster:
            await eventually(lambda: servicer.logins >= 3, timeout=30, what="nodes log in")
            node = cluster["lab-a"]
            engine = node.engine
            assert engine is not None
            await eventually(
                lambda: engine.backoff(address) > 0,
                timeout=30,
                what="lab-a backs off from the hostile peer",
            )
            # honest gossip goes on meanwhile
            news = await node.attest_trigger("rsi-detected", note="beside a hostile peer")
            await eventually(
                lambda: all(n.replica.head("lab-a")[0] == news.seq for n in cluster.running()),
                timeout=30,
                what="news reaches every honest node",
            )
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("pausenet")]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
