"""A node's lifecycle and concurrency: its change broadcast under cancellation, work that must
finish whoever gives up on it, loops that die, and stopping (idempotent, nothing left behind)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from netutil import Cluster, eventually

from pausenet.errors import StoreError
from pausenet.node.concurrency import Changes, Completions, NotRunningError
from pausenet.node.node import Node

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# -- the change broadcast -------------------------------------------------------------------


async def test_every_waiter_wakes_on_a_change_even_when_others_were_cancelled() -> None:
    changes = Changes()
    woke: list[int] = []

    async def waiter(i: int) -> None:
        await changes.wait(0)
        woke.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in range(200)]
    await asyncio.sleep(0)
    for t in tasks[::2]:  # half the waiters hang up, as watch streams do
        t.cancel()
    changes.bump()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(woke) == list(range(1, 200, 2))
    assert changes.version == 1


async def test_a_change_before_the_wait_is_not_missed() -> None:
    changes = Changes()
    seen = changes.version
    changes.bump()  # between reading the state and waiting
    with anyio.fail_after(5):
        assert await changes.wait(seen) == 1


async def test_a_waiter_cancelled_by_a_deadline_leaves_the_broadcast_working() -> None:
    changes = Changes()
    for _ in range(50):
        with anyio.move_on_after(0):
            await changes.wait(changes.version)
    later = asyncio.create_task(changes.wait(changes.version))
    await asyncio.sleep(0)
    changes.bump()
    with anyio.fail_after(5):
        assert await later == 1


# -- work that must finish ----------------------------------------------------------------


async def test_work_runs_to_its_end_when_its_caller_is_cancelled() -> None:
    work = Completions()
    finished: list[str] = []
    release = anyio.Event()

    async def job() -> str:
        await release.wait()
        finished.append("job")
        return "done"

    async with anyio.create_task_group() as tg:
        work.attach(tg)
        caller = asyncio.create_task(work.run(job))  # gRPC cancels handlers like this
        await asyncio.sleep(0.01)
        caller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await caller
        release.set()
        tg.cancel_scope.cancel()  # a shielded job still finishes before the group closes
    assert finished == ["job"]
    work.attach(None)
    with pytest.raises(NotRunningError):
        await work.run(job)


async def test_an_error_in_work_reaches_its_caller_and_not_the_task_group() -> None:
    work = Completions()

    async def job() -> None:
        raise ValueError("bad")

    async with anyio.create_task_group() as tg:
        work.attach(tg)
        with pytest.raises(ValueError, match="bad"):
            await work.run(job)
        assert await work.run(lambda: asyncio.sleep(0, "ok")) == "ok"
        tg.cancel_scope.cancel()


# -- the node ---------------------------------------------------------------------------


async def test_a_loop_that_dies_stops_the_node_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]

        def boom(_view: object) -> None:
            raise RuntimeError("boom")

        node._log_news = boom  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="pausenet.node"):
            await node.issue_heartbeat()  # a change: the heartbeat loop looks, and dies
            with anyio.fail_after(30):
                await node.wait_closed()
        assert node.failure == "heartbeat loop failed: RuntimeError('boom')"
        assert "node lab-a stopping: heartbeat loop failed: RuntimeError('boom')" in caplog.text
        await node.stop()  # idempotent after a failure too


async def test_stop_is_idempotent_concurrent_and_leaves_no_task_behind(tmp_path: Path) -> None:
    before = asyncio.all_tasks()
    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        await cluster.converged()
        a, b = cluster["lab-a"], cluster["lab-b"]
        await asyncio.gather(a.stop(), a.stop(), b.stop())
        await a.stop()
        assert a.stopping
        assert b.stopping

    def only_ours_left() -> bool:
        left = {t for t in asyncio.all_tasks() - before if not t.done()}
        left.discard(asyncio.current_task())  # type: ignore[arg-type]
        return not left

    await eventually(only_ours_left, what="every task the nodes started has ended")


async def test_a_node_refuses_to_sign_once_stopping(tmp_path: Path) -> None:
    from pausenet.errors import SigningRefusedError

    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        await node.stop()
        with pytest.raises(SigningRefusedError, match="shutting down"):
            await node.attest_trigger("rsi-detected")


# -- health -------------------------------------------------------------------------------


async def health_status(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return int(reply.status)


class _HeldAtStart(Node):
    """A node whose start pauses at its first heartbeat, after its servers are bound."""

    release: anyio.Event

    async def issue_heartbeat(self) -> None:
        await self.release.wait()
        await super().issue_heartbeat()


async def test_health_says_serving_only_once_the_node_has_fully_started(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0, running=()) as cluster:
        node = _HeldAtStart(cluster.config("lab-a"), cluster.options)
        node.release = anyio.Event()
        starting = asyncio.create_task(node.start())
        try:
            await eventually(lambda: bool(node.address and node.admin_address), what="bound")
            for address in (node.address, node.admin_address):
                assert await health_status(address) == NOT_SERVING
            node.release.set()
            await starting
            assert await health_status(node.address) == SERVING
            assert await health_status(node.address, "pausenet.v1.Oversight") == SERVING
            assert await health_status(node.admin_address, "pausenet.v1.Admin") == SERVING
        finally:
            node.release.set()
            await node.stop()


async def watch_health(address: str) -> AsyncIterator[int]:
    async with grpc.aio.insecure_channel(address) as channel:
        call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        async for reply in call:
            yield int(reply.status)


async def next_status(watch: AsyncIterator[int]) -> int:
    with anyio.fail_after(30):
        return await anext(watch)


async def test_health_says_not_serving_when_a_loop_dies(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        watch = watch_health(node.address)
        assert await next_status(watch) == SERVING

        def boom(_view: object) -> None:
            raise RuntimeError("boom")

        node._log_news = boom  # type: ignore[method-assign]
        await node.issue_heartbeat()
        assert await next_status(watch) == NOT_SERVING  # said while it drains
        await watch.aclose()
        with anyio.fail_after(30):
            await node.wait_closed()


async def test_health_says_not_serving_while_the_store_fails_and_serving_once_it_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with Cluster(tmp_path, labs=1, overseers=0) as cluster:
        node = cluster["lab-a"]
        assert node.store is not None
        watch = watch_health(node.address)
        assert await next_status(watch) == SERVING

        async def broken(member: str) -> int:
            raise StoreError("disk I/O error (simulated)")

        with caplog.at_level(logging.ERROR, logger="pausenet.node"):
            monkeypatch.setattr(node.store, "next_heartbeat_counter", broken)
            assert await next_status(watch) == NOT_SERVING  # the next heartbeat fails
        assert "node lab-a not serving: its store failed: disk I/O error" in caplog.text
        assert node.failure is None  # the node keeps trying

        monkeypatch.undo()
        assert await next_status(watch) == SERVING  # a heartbeat got through again
        await watch.aclose()


async def test_health_says_not_serving_while_a_node_drains_after_sigterm(tmp_path: Path) -> None:
    from test_cli_node import start_node, write_config

    from pausenet.ops.federation import init_federation

    d = tmp_path / "fed"
    init_federation(d, 1, 0)
    node = start_node(write_config(d, "lab-a"), "lab-a")
    try:
        watch = watch_health(node.address)
        assert await next_status(watch) == SERVING
        node.proc.send_signal(signal.SIGTERM)
        assert await next_status(watch) == NOT_SERVING
        await watch.aclose()
        assert await asyncio.to_thread(node.proc.wait, 60) == 0
    finally:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait(timeout=10)
