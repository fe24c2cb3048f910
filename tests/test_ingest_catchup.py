"""Catch-up ingest (docs/protocol.md §12.2, §12.3): what is held or being checked elsewhere is
not checked again, and a forged copy never shadows the real statement."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
from helpers import T0, attest, log_for, make_federation

import pausenet.node.replica as replica_mod
from pausenet.core.dsse import Envelope, Signature
from pausenet.node.messages import Items
from pausenet.node.replica import Replica


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> Counter[bytes]:
    """How many times each payload's signature is checked."""
    seen: Counter[bytes] = Counter()
    real = replica_mod.verify_versions

    def counting(versions: Any, env: Envelope, now_ms: int) -> Any:
        seen[env.payload_hash] += 1
        return real(versions, env, now_ms)

    monkeypatch.setattr(replica_mod, "verify_versions", counting)
    return seen


async def test_the_same_backlog_from_three_peers_at_once_is_checked_once(
    checks: Counter[bytes],
) -> None:
    charter, keys = make_federation(labs=4, overseers=0)
    log = log_for(
        charter, keys["lab-a"], "lab-a", [attest(note=f"s{i}") for i in range(200)], T0, step_ms=1
    )
    items = Items(tuple(s.envelope for s in log))
    rep = Replica(charter, lambda: T0 + 10_000)
    reports = []

    async def ingest() -> None:
        reports.append(await rep.ingest(items))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ingest)

    assert rep.head("lab-a") == (200, log[-1].hash)
    assert sorted(r.statements for r in reports) == [0, 0, 200]
    assert sum(r.duplicates for r in reports) == 400
    assert set(checks.values()) == {1}
    await rep.ingest(items)  # held now: dropped before any check
    assert set(checks.values()) == {1}


async def test_a_forged_copy_checked_first_does_not_shadow_the_real_statement(
    checks: Counter[bytes],
) -> None:
    charter, keys = make_federation(labs=4, overseers=0)
    log = log_for(
        charter, keys["lab-a"], "lab-a", [attest(note=f"s{i}") for i in range(100)], T0, step_ms=1
    )
    forged = tuple(
        Envelope(s.envelope.payload_type, s.envelope.payload, (Signature("lab-a", bytes(64)),))
        for s in log
    )
    rep = Replica(charter, lambda: T0 + 10_000)
    reports = []

    async def ingest(envs: tuple[Envelope, ...]) -> None:
        reports.append(await rep.ingest(Items(envs)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(ingest, forged)
        tg.start_soon(ingest, tuple(s.envelope for s in log))

    assert rep.head("lab-a") == (100, log[-1].hash)
    assert sorted(sum(r.rejected.values()) for r in reports) == [0, 100]
