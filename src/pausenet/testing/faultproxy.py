"""A fault-injecting TCP proxy for partition tests between real nodes on one machine.

One proxy stands for one directed link: node A's config lists the proxy as its peer, the proxy
forwards to node B's real address. Its mode can change at any moment:

- `PASS`: bytes flow both ways (after `delay_s`, if set, on each chunk);
- `DROP`: connections are accepted and held but nothing is forwarded (a black hole: the caller
  sees timeouts, as with lost packets);
- `CUT`: every open connection is closed and new ones are refused (the caller sees failures).

It listens on 127.0.0.1 only and forwards only to the target it was given.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum

__all__ = ["FaultProxy", "Mode"]

_CHUNK = 64 * 1024


class Mode(StrEnum):
    PASS = "pass"  # noqa: S105 - a mode, not a password
    DROP = "drop"
    CUT = "cut"


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, delay_s: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.mode = Mode.PASS
        self.port = 0
        self.connections = 0
        self.bytes_forwarded = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode is not Mode.PASS:
            self._close_all()

    def _close_all(self) -> None:
        for w in list(self._open):
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._open.clear()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._close_all()
            for t in list(self._tasks):
                t.cancel()
            for t in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode is Mode.CUT:
            writer.transport.abort()
            return
        self._open.add(writer)
        if self.mode is Mode.DROP:
            # hold the connection open, read and discard, forward nothing
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                while await reader.read(_CHUNK):
                    pass
            finally:
                self._tasks.discard(task)
                self._open.discard(writer)
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            self._open.discard(writer)
            writer.transport.abort()
            return
        self._open.add(up_w)
        a = asyncio.create_task(self._pipe(reader, up_w))
        b = asyncio.create_task(self._pipe(up_r, writer))
        self._tasks.update((a, b))
        try:
            await asyncio.wait((a, b), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (a, b):
                t.cancel()
                self._tasks.discard(t)
            for w in (writer, up_w):
                self._open.discard(w)
                with contextlib.suppress(Exception):
                    w.transport.abort()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            data = await r.read(_CHUNK)
            if not data or self.mode is not Mode.PASS:
                return
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            w.write(data)
            self.bytes_forwarded += len(data)
            await w.drain()
