"""Two small concurrency tools the node is built on (anyio, on the asyncio backend).

`Changes` broadcasts "the facts changed" to any number of waiters. It is a version counter and
an event swapped on each change: a waiter remembers the version it has seen and waits until it
moves. Nothing is held while waiting, so a waiter cancelled at any instant leaves nothing
behind (a Condition waited on inside `wait_for` can be left with its lock taken by a cancelled
waiter, wedging every later waiter and shutdown).

`Completions` runs work that must not be cut in half (a signature and its store write, an
ingest) in a task group the node owns, shielded, and hands the result to the caller. gRPC
cancels a handler whose client hung up with a plain `Task.cancel()`, which an anyio shield in
that handler does not stop; the work then finishes in its own task, which the node's task group
waits for before it closes the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

__all__ = ["Changes", "Completions", "NotRunningError"]

T = TypeVar("T")


class Changes:
    """A change broadcast: `bump()` after a change, `await wait(seen)` for the next one."""

    def __init__(self) -> None:
        self.version = 0
        self._event: anyio.Event | None = None  # made on first wait, inside the event loop

    def bump(self) -> None:
        self.version += 1
        event, self._event = self._event, None
        if event is not None:
            event.set()

    async def wait(self, seen: int) -> int:
        """Wait until the version is no longer `seen`; return the new version."""
        while self.version == seen:
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
        return self.version


class NotRunningError(RuntimeError):
    """Work was handed to `Completions` that is not (or no longer) running."""


class _Outcome(Generic[T]):
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: list[T] = []  # the result, once there is one
        self.error: Exception | None = None


class Completions:
    """Runs awaitables to completion in a task group, whatever happens to their callers."""

    def __init__(self) -> None:
        self._tg: TaskGroup | None = None

    def attach(self, tg: TaskGroup | None) -> None:
        """Run work in `tg` from now on (None: refuse work, the group is closing)."""
        self._tg = tg

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Start `fn()` in the task group, shielded from cancellation, and wait for its result.

        If the caller is cancelled, `fn` still runs to its end; its result is then dropped (an
        error is still logged by whoever raised it, as before)."""
        tg = self._tg
        if tg is None:
            raise NotRunningError("not running")
        outcome: _Outcome[T] = _Outcome()
        tg.start_soon(_complete, fn, outcome)
        await outcome.done.wait()
        if outcome.error is not None:
            raise outcome.error
        return outcome.value[0]


async def _complete(fn: Callable[[], Awaitable[T]], outcome: _Outcome[T]) -> None:
    with anyio.CancelScope(shield=True):
        try:
            outcome.value.append(await fn())
        except Exception as exc:  # the caller re-raises it; the task group must not end
            outcome.error = exc
        finally:
            outcome.done.set()
