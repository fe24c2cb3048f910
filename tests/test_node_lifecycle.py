"""A node's lifecycle and concurrency: its change broadcast under cancellation, work that must
finish whoever gives up on it, loops that die, and stopping (idempotent, nothing left behind)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import anyio
import pytest
from netutil import Cluster, eventually

from pausenet.node.concurrency import Changes, Completions, NotRunningError

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
