"""Bare grpc.aio processes used as baselines (no pausenet code at all).

    _peer.py echo --port P --reply FILE
        answers /bench.Echo/Get with the bytes of FILE (a serialized ViewReply).
    _peer.py ring --port P --peers HOST:PORT,... [--interval 0.25 --fanout 3 --req 40 --reply 8]
        answers /bench.Ring/Digest with --reply bytes and, every interval (±25%), calls --fanout
        random peers with --req bytes: the calls an in-sync gossip round makes.
Listens on 127.0.0.1 only; runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
from pathlib import Path

import grpc

_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]


def _handler(service: str, method: str, reply: bytes) -> grpc.GenericRpcHandler:
    async def answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return reply

    return grpc.method_handlers_generic_handler(
        service, {method: grpc.unary_unary_rpc_method_handler(answer)}
    )


async def _serve(port: int, handler: grpc.GenericRpcHandler) -> grpc.aio.Server:
    server = grpc.aio.server(options=_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["echo", "ring"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--reply", default="8")
    ap.add_argument("--peers", default="")
    ap.add_argument("--interval", type=float, default=0.25)
    ap.add_argument("--fanout", type=int, default=3)
    ap.add_argument("--req", type=int, default=40)
    a = ap.parse_args()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    if a.mode == "echo":
        server = await _serve(a.port, _handler("bench.Echo", "Get", Path(a.reply).read_bytes()))
        await stop.wait()
        await server.stop(0)
        return
    server = await _serve(a.port, _handler("bench.Ring", "Digest", os.urandom(int(a.reply))))
    peers = [p for p in a.peers.split(",") if p]
    channels = {p: grpc.aio.insecure_channel(p, options=_OPTIONS) for p in peers}
    calls = {p: ch.unary_unary("/bench.Ring/Digest") for p, ch in channels.items()}
    rng = random.Random()
    inflight: dict[str, asyncio.Task[None]] = {}

    async def call(p: str) -> None:
        with contextlib.suppress(grpc.aio.AioRpcError):
            await calls[p](os.urandom(a.req), timeout=2.0)

    while not stop.is_set():
        free = [p for p in peers if p not in inflight]
        for p in rng.sample(free, min(a.fanout, len(free))):
            t = asyncio.create_task(call(p))
            inflight[p] = t
            t.add_done_callback(lambda _t, p=p: inflight.pop(p, None))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), a.interval * (1 + 0.25 * (2 * rng.random() - 1)))
    for ch in channels.values():
        await ch.close()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
