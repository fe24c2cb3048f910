"""The fault-injecting proxy: pass, drop and cut a link between two endpoints."""

from __future__ import annotations

import asyncio

import pytest

from pausenet.testing.faultproxy import FaultProxy, Mode


async def _echo_server() -> asyncio.Server:
    async def echo(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(1024):
            w.write(data)
            await w.drain()
        w.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


async def _roundtrip(port: int, msg: bytes, timeout: float = 1.0) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(msg)
        await w.drain()
        return await asyncio.wait_for(r.readexactly(len(msg)), timeout)
    finally:
        w.close()


async def test_pass_forwards_both_ways() -> None:
    srv = await _echo_server()
    port = srv.sockets[0].getsockname()[1]
    async with FaultProxy("127.0.0.1", port) as proxy:
        assert await _roundtrip(proxy.port, b"hello") == b"hello"
        assert proxy.bytes_forwarded == 10
    srv.close()


async def test_drop_is_a_black_hole_and_pass_restores() -> None:
    srv = await _echo_server()
    port = srv.sockets[0].getsockname()[1]
    async with FaultProxy("127.0.0.1", port) as proxy:
        proxy.set_mode(Mode.DROP)
        with pytest.raises(TimeoutError):
            await _roundtrip(proxy.port, b"lost", timeout=0.3)
        proxy.set_mode(Mode.PASS)
        assert await _roundtrip(proxy.port, b"back") == b"back"
    srv.close()


async def test_cut_closes_open_connections_and_refuses_new_ones() -> None:
    srv = await _echo_server()
    port = srv.sockets[0].getsockname()[1]
    async with FaultProxy("127.0.0.1", port) as proxy:
        r, w = await asyncio.open_connection("127.0.0.1", proxy.port)
        w.write(b"x")
        assert await asyncio.wait_for(r.readexactly(1), 1.0) == b"x"
        proxy.set_mode(Mode.CUT)
        assert await asyncio.wait_for(r.read(10), 1.0) == b""  # closed under us
        w.close()
        with pytest.raises((asyncio.IncompleteReadError, ConnectionError, TimeoutError)):
            await _roundtrip(proxy.port, b"y", timeout=0.5)
    srv.close()


async def test_delay_slows_each_chunk() -> None:
    srv = await _echo_server()
    port = srv.sockets[0].getsockname()[1]
    async with FaultProxy("127.0.0.1", port, delay_s=0.1) as proxy:
        loop = asyncio.get_running_loop()
        t = loop.time()
        assert await _roundtrip(proxy.port, b"slow") == b"slow"
        assert loop.time() - t >= 0.2  # one delay each way
    srv.close()
