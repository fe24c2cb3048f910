"""A gossip session is good only on the connection its login came in on (docs/protocol.md §12.5):
a token read off one connection, or handed on by whoever held it, is worth nothing on another,
so a third party can neither act in a member's name nor get it refused."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from helpers import T0, key_for, make_federation
from netutil import Cluster
from test_node_integration import gossip_session

from pausenet.node.peerauth import Authenticator, OwnAddresses, sign_auth
from pausenet.v1 import gossip_pb2, gossip_pb2_grpc


def test_a_session_is_refused_on_another_connection_than_its_login() -> None:
    charter, _keys = make_federation()
    auth = Authenticator(charter, "lab-a", addresses=OwnAddresses(["127.0.0.1:7401"]))
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0, "127.0.0.1:7401")
    got = auth.authenticate(env, T0, "ipv4:127.0.0.1:50001")
    assert not isinstance(got, str)
    token, session = got
    assert auth.session(token, T0, "ipv4:127.0.0.1:50001") == session
    assert auth.session(token, T0, "ipv4:127.0.0.1:50002") is None
    assert auth.session(token, T0, "ipv4:10.0.0.9:50001") is None
    # the bare token check (before a call's body is read) still knows the token
    assert auth.session(token, T0) == session


async def test_a_token_replayed_on_a_new_connection_gets_unauthenticated(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        await cluster.converged()
        target = cluster["lab-b"]
        request = gossip_pb2.DigestRequest(summary_hash=bytes(32))
        async with grpc.aio.insecure_channel(target.address) as first:
            stub = gossip_pb2_grpc.GossipStub(first)
            session = await gossip_session(stub, cluster, "lab-a", target.address)
            await stub.GetDigest(request, timeout=5, metadata=session)  # good where granted
            # its own connection: channels in one process otherwise share one (as another
            # process, or another host, never would)
            own = [("grpc.use_local_subchannel_pool", 1)]
            async with grpc.aio.insecure_channel(target.address, options=own) as second:
                other = gossip_pb2_grpc.GossipStub(second)
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await other.GetDigest(request, timeout=5, metadata=session)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # the replay cost lab-a nothing: its own connection still works
            await stub.GetDigest(request, timeout=5, metadata=session)
        assert not target.guard.banned("lab-a", target.clock() / 1000)
