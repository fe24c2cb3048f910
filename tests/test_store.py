"""The SQLite store: append outcomes, reads, heartbeats, evidence, schema checks, own-seq journal."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from helpers import T0, attest, heartbeat_for, log_for, make_federation, pause

import pausenet.node.store as store_module
from pausenet.core.charter import Charter
from pausenet.core.keys import SigningKey
from pausenet.core.payload import decode_statement
from pausenet.core.records import SignedStatement
from pausenet.core.signing import build_statement, sign_statement
from pausenet.core.verify import verify_envelope
from pausenet.errors import SigningRefusedError, StoreError
from pausenet.node.store import SCHEMA_VERSION, AppendOutcome, Store

A = "lab-a"


@pytest.fixture
def fed() -> tuple[Charter, dict[str, SigningKey]]:
    return make_federation()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "node.db"


@pytest.fixture
async def store(db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]) -> AsyncIterator[Store]:
    async with await Store.open(db_path, charter_digest=fed[0].digest) as s:
        yield s


def chain(
    fed: tuple[Charter, dict[str, SigningKey]], n: int, member: str = A
) -> list[SignedStatement]:
    charter, keys = fed
    return log_for(charter, keys[member], member, [attest(note=f"n{i}") for i in range(n)])


def raw_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# -- append outcomes ------------------------------------------------------------------------


async def test_appends_a_chain_and_reports_heads(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    log = chain(fed, 3)
    for s in log:
        assert (await store.append_statement(s)).outcome is AppendOutcome.APPENDED
    other = chain(fed, 1, "lab-b")
    await store.append_statement(other[0])
    assert await store.head(A) == (3, log[-1].hash)
    assert await store.head("lab-c") == (0, b"")
    assert await store.heads() == {A: (3, log[-1].hash), "lab-b": (1, other[0].hash)}


async def test_same_statement_twice_is_a_duplicate(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    s = chain(fed, 1)[0]
    await store.append_statement(s)
    result = await store.append_statement(s)
    assert result.outcome is AppendOutcome.DUPLICATE
    assert result.stored
    assert len(await store.statements(A)) == 1


async def test_different_statement_at_a_stored_seq_is_a_conflict_with_the_stored_envelope(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    first = log_for(charter, keys[A], A, [attest(note="honest")])[0]
    fork = log_for(charter, keys[A], A, [attest(note="fork")])[0]
    await store.append_statement(first)
    result = await store.append_statement(fork)
    assert result.outcome is AppendOutcome.CONFLICT
    assert not result.stored
    assert result.existing == first.envelope
    assert await store.statements(A) == [first.envelope]


async def test_seq_beyond_head_plus_one_is_a_gap(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    log = chain(fed, 3)
    await store.append_statement(log[0])
    result = await store.append_statement(log[2])
    assert result.outcome is AppendOutcome.GAP
    assert await store.head(A) == (1, log[0].hash)


async def test_wrong_prev_hash_is_a_broken_chain(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    log = chain(fed, 1)
    await store.append_statement(log[0])
    bad = sign_statement(keys[A], build_statement(charter, A, 2, b"\x01" * 32, T0 + 1, attest()))
    assert (await store.append_statement(bad)).outcome is AppendOutcome.BROKEN_CHAIN


async def test_first_statement_with_a_prev_hash_is_a_broken_chain(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    bad = sign_statement(keys[A], build_statement(charter, A, 1, b"\x01" * 32, T0, attest()))
    assert (await store.append_statement(bad)).outcome is AppendOutcome.BROKEN_CHAIN
    assert await store.head(A) == (0, b"")


async def test_time_going_backwards_is_a_broken_chain(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    first = log_for(charter, keys[A], A, [attest()], start_ms=T0)[0]
    earlier = log_for(charter, keys[A], A, [attest()], start_ms=T0 - 1, after=[first])[0]
    await store.append_statement(first)
    assert (await store.append_statement(earlier)).outcome is AppendOutcome.BROKEN_CHAIN


async def test_batch_skips_duplicates_and_stops_at_the_first_failure(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    log = chain(fed, 5)
    await store.append_statements(log[:2])
    results = await store.append_statements([log[1], log[2], log[4], log[3]])
    assert [r.outcome for r in results] == [
        AppendOutcome.DUPLICATE,
        AppendOutcome.APPENDED,
        AppendOutcome.GAP,
    ]
    assert await store.head(A) == (3, log[2].hash)


# -- reads ----------------------------------------------------------------------------------


async def test_range_reads(store: Store, fed: tuple[Charter, dict[str, SigningKey]]) -> None:
    log = chain(fed, 6)
    await store.append_statements(log)
    envs = [s.envelope for s in log]
    assert await store.statements(A) == envs
    assert await store.statements(A, from_seq=3) == envs[2:]
    assert await store.statements(A, from_seq=2, to_seq=4) == envs[1:4]
    assert await store.statements(A, from_seq=2, limit=2) == envs[1:3]
    assert await store.statements(A, from_seq=7) == []
    assert await store.statements("lab-b") == []
    other = chain(fed, 2, "lab-b")
    await store.append_statements(other)
    assert await store.all_statement_envelopes() == envs + [s.envelope for s in other]


# -- heartbeats and evidence ----------------------------------------------------------------


async def test_heartbeat_latest_wins_and_rollback_is_ignored(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    hb1 = heartbeat_for(charter, keys[A], A, [], counter=1, issued_at_ms=T0)
    hb2 = heartbeat_for(charter, keys[A], A, [], counter=2, issued_at_ms=T0 + 1000)
    hb2_later = heartbeat_for(charter, keys[A], A, [], counter=2, issued_at_ms=T0 + 2000)
    other = heartbeat_for(charter, keys["lab-b"], "lab-b", [], counter=7, issued_at_ms=T0)
    assert await store.put_heartbeat(hb1)
    assert await store.put_heartbeat(hb2)
    assert not await store.put_heartbeat(hb1)  # rollback to an older counter
    assert not await store.put_heartbeat(hb2)  # same one again
    assert await store.put_heartbeat(hb2_later)  # same counter, later time
    assert await store.put_heartbeat(other)
    assert await store.heartbeats() == [hb2_later.envelope, other.envelope]


async def test_evidence_is_deduplicated_by_id(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    a = log_for(charter, keys[A], A, [attest(note="a")])[0].envelope
    b = log_for(charter, keys[A], A, [attest(note="b")])[0].envelope
    assert await store.add_evidence(b"\x07" * 32, A, a, b)
    assert not await store.add_evidence(b"\x07" * 32, A, a, b)
    assert await store.evidence() == [(A, a, b)]


async def test_heartbeat_counters_are_reserved_durably_and_never_reused(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    async with await Store.open(db_path, charter_digest=charter.digest) as s:
        assert await s.next_heartbeat_counter(A) == 1
        assert await s.next_heartbeat_counter(A) == 2
        assert await s.next_heartbeat_counter("lab-b") == 1
    async with await Store.open(db_path, charter_digest=charter.digest) as s:
        assert await s.next_heartbeat_counter(A) == 3
        # a heartbeat of ours with a higher counter (say, from before a restore) comes back
        await s.put_heartbeat(heartbeat_for(charter, keys[A], A, [], counter=10, issued_at_ms=T0))
        assert await s.next_heartbeat_counter(A) == 11


# -- lifecycle and refusals -----------------------------------------------------------------


async def test_data_survives_reopen_and_close_is_idempotent(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    log = chain(fed, 2)
    s = await Store.open(db_path, charter_digest=fed[0].digest)
    await s.append_statements(log)
    await s.close()
    await s.close()
    with pytest.raises(StoreError, match="closed"):
        await s.head(A)
    async with await Store.open(db_path, charter_digest=fed[0].digest) as s2:
        assert await s2.head(A) == (2, log[-1].hash)
    assert raw_rows(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_refuses_a_store_of_another_charter(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    await (await Store.open(db_path, charter_digest=fed[0].digest)).close()
    other, _ = make_federation(federation_id="other-federation")
    with pytest.raises(StoreError) as info:
        await Store.open(db_path, charter_digest=other.digest)
    msg = str(info.value)
    assert f"was created for charter {fed[0].digest_hex[:16]}…" in msg
    assert f"this node's charter is {other.digest_hex[:16]}…" in msg
    assert "use a new data dir" in msg
    assert "\n" not in msg


async def test_refuses_a_newer_schema(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    await (await Store.open(db_path, charter_digest=fed[0].digest)).close()
    con = sqlite3.connect(db_path)
    con.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),)
    )
    con.commit()
    con.close()
    with pytest.raises(
        StoreError,
        match=rf"schema version {SCHEMA_VERSION + 1}, newer than this pausenet supports"
        rf" \({SCHEMA_VERSION}\)",
    ):
        await Store.open(db_path, charter_digest=fed[0].digest)


async def test_migrates_an_older_schema(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = chain(fed, 1)
    async with await Store.open(db_path, charter_digest=fed[0].digest) as s:
        await s.append_statement(log[0])

    async def next_version(db: object) -> None:
        await db.execute("CREATE TABLE extra (x INTEGER)")  # type: ignore[attr-defined]

    monkeypatch.setattr(store_module, "_MIGRATIONS", [*store_module._MIGRATIONS, next_version])
    async with await Store.open(db_path, charter_digest=fed[0].digest) as s:
        assert await s.head(A) == (1, log[0].hash)
    want = str(SCHEMA_VERSION + 1)
    assert raw_rows(db_path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(want,)]
    assert raw_rows(db_path, "SELECT count(*) FROM extra") == [(0,)]


async def test_a_version_1_store_gains_branches_and_kept_heartbeats_and_keeps_its_log(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = chain(fed, 2)
    with monkeypatch.context() as m:
        m.setattr(store_module, "_MIGRATIONS", store_module._MIGRATIONS[:1])
        async with await Store.open(db_path, charter_digest=fed[0].digest) as s:
            await s.append_statements(log)
    assert raw_rows(db_path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    async with await Store.open(db_path, charter_digest=fed[0].digest) as s:
        assert await s.head(A) == (2, log[1].hash)
        assert await s.branch_statements() == []
        assert await s.kept_heartbeats() == []
    assert raw_rows(db_path, "SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]


async def test_refuses_a_garbage_file(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    db_path.write_bytes(b"this is not a database, just some bytes\x00\xff" * 200)
    with pytest.raises(
        StoreError, match=r"is unreadable: not an SQLite database, or corrupt"
    ) as info:
        await Store.open(db_path, charter_digest=fed[0].digest)
    assert str(db_path) in str(info.value)
    assert "\n" not in str(info.value)


async def test_refuses_an_sqlite_file_that_is_not_a_store(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    con = sqlite3.connect(db_path)
    con.execute("CREATE TABLE recipes (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="is not a pausenet store"):
        await Store.open(db_path, charter_digest=fed[0].digest)


async def test_unopenable_file_is_a_clear_error(
    tmp_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    (tmp_path / "a-dir").mkdir()
    with pytest.raises(StoreError, match="check that its directory exists and is writable"):
        await Store.open(tmp_path / "a-dir", charter_digest=fed[0].digest)


async def test_missing_directory_is_a_clear_error(
    tmp_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    with pytest.raises(StoreError, match="does not exist; create it first"):
        await Store.open(tmp_path / "nope" / "node.db", charter_digest=fed[0].digest)


async def test_disk_full_writes_nothing(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    big = log_for(charter, keys[A], A, [pause(1, note="x" * 2000) for _ in range(50)])
    db = store._db
    assert db is not None
    # cap the file at its current size: the next page sqlite needs makes it report SQLITE_FULL
    await db.execute("PRAGMA max_page_count = 1")
    with pytest.raises(StoreError, match="the disk is full; nothing was written"):
        await store.append_statements(big)
    assert await store.head(A) == (0, b"")


# -- own statements: the own-seq rule -------------------------------------------------------


async def test_issue_statement_chains_and_keeps_time_monotone(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    s1 = await store.issue_statement(keys[A], charter, A, attest(note="one"), T0)
    s2 = await store.issue_statement(keys[A], charter, A, attest(note="two"), T0 - 5000)
    assert (s1.seq, s1.statement.prev_hash) == (1, b"")
    assert (s2.seq, s2.statement.prev_hash) == (2, s1.hash)
    assert s2.statement.issued_at_ms == T0  # the clock went back; the log's time does not
    assert await store.head(A) == (2, s2.hash)
    assert await store.statements(A) == [s1.envelope, s2.envelope]
    for s in (s1, s2):
        assert verify_envelope(charter, s.envelope, now_ms=T0) == s
    assert raw_rows(store.path, "SELECT count(*) FROM own_pending") == [(0,)]


async def test_issue_refuses_a_statement_peers_would_reject_and_writes_nothing(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    with pytest.raises(SigningRefusedError, match="unknown trigger"):
        await store.issue_statement(keys[A], charter, A, attest("no-such-trigger"), T0)
    with pytest.raises(SigningRefusedError, match="bad-signature"):
        await store.issue_statement(keys["lab-b"], charter, A, attest(), T0)
    assert await store.head(A) == (0, b"")
    assert raw_rows(store.path, "SELECT count(*) FROM own_pending") == [(0,)]


async def test_crash_after_journaling_is_recovered_as_the_identical_statement(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    charter, keys = fed
    async with await Store.open(db_path, charter_digest=charter.digest) as s:
        first = await s.issue_statement(keys[A], charter, A, attest(note="one"), T0)

        def crash(*args: object) -> bytes:
            raise RuntimeError("simulated crash between journaling and signing")

        with monkeypatch.context() as m:
            m.setattr(store_module, "sign_statement_payload", crash)
            with pytest.raises(RuntimeError, match="simulated crash"):
                await s.issue_statement(keys[A], charter, A, attest(note="two"), T0 + 1000)
        assert await s.head(A) == (1, first.hash)

    [(payload,)] = raw_rows(db_path, "SELECT payload FROM own_pending")
    assert isinstance(payload, bytes)
    direct = sign_statement(keys[A], decode_statement(payload))

    async with await Store.open(db_path, charter_digest=charter.digest) as s:
        recovered = await s.recover_pending(keys[A], A)
        assert recovered == [direct]
        assert recovered[0].statement == build_statement(
            charter, A, 2, first.hash, T0 + 1000, attest(note="two")
        )
        assert await s.head(A) == (2, direct.hash)
        assert await s.recover_pending(keys[A], A) == []
        # issuing continues after the recovered statement
        third = await s.issue_statement(keys[A], charter, A, attest(note="three"), T0 + 2000)
        assert (third.seq, third.statement.prev_hash) == (3, direct.hash)
    assert raw_rows(db_path, "SELECT count(*) FROM own_pending") == [(0,)]


async def test_issue_finishes_a_journaled_statement_first(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    charter, keys = fed

    def crash(*args: object) -> bytes:
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(store_module, "sign_statement_payload", crash)
        with pytest.raises(RuntimeError):
            await store.issue_statement(keys[A], charter, A, attest(note="journaled"), T0)
    second = await store.issue_statement(keys[A], charter, A, attest(note="next"), T0 + 1)
    [env1, env2] = await store.statements(A)
    assert decode_statement(env1.payload).body == attest(note="journaled")
    assert env2 == second.envelope
    assert second.statement.prev_hash == env1.payload_hash


async def test_journaled_seq_refuses_a_different_statement_from_elsewhere(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    charter, keys = fed

    def crash(*args: object) -> bytes:
        raise RuntimeError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(store_module, "sign_statement_payload", crash)
        with pytest.raises(RuntimeError):
            await store.issue_statement(keys[A], charter, A, attest(note="journaled"), T0)
    # an old statement of ours at the same seq arrives by gossip (say, from before a restore)
    stranger = log_for(charter, keys[A], A, [attest(note="elsewhere")])[0]
    result = await store.append_statement(stranger)
    assert result.outcome is AppendOutcome.RESERVED
    [recovered] = await store.recover_pending(keys[A], A)
    assert recovered.statement.body == attest(note="journaled")


async def test_journaled_statement_that_arrives_by_gossip_is_not_appended_twice(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]], monkeypatch: pytest.MonkeyPatch
) -> None:
    charter, keys = fed
    signed: list[SignedStatement] = []

    def crash(key: SigningKey, member: str, payload: bytes) -> bytes:
        signed.append(sign_statement(key, decode_statement(payload)))
        raise RuntimeError("simulated crash after signing")

    with monkeypatch.context() as m:
        m.setattr(store_module, "sign_statement_payload", crash)
        with pytest.raises(RuntimeError):
            await store.issue_statement(keys[A], charter, A, attest(), T0)
    assert (await store.append_statement(signed[0])).outcome is AppendOutcome.APPENDED
    assert await store.recover_pending(keys[A], A) == signed
    assert await store.statements(A) == [signed[0].envelope]
    assert raw_rows(store.path, "SELECT count(*) FROM own_pending") == [(0,)]


async def test_issue_refuses_another_charter(store: Store) -> None:
    other, keys = make_federation(federation_id="other-federation")
    with pytest.raises(StoreError, match="belongs to charter"):
        await store.issue_statement(keys[A], other, A, attest(), T0)


async def test_a_write_cancelled_at_any_point_leaves_the_store_writable(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    """A caller that gives up mid-write (a peer hanging up, an admin client timing out) must not
    leave the connection inside a transaction: the next write still works."""
    charter, keys = fed
    log = log_for(charter, keys["lab-a"], "lab-a", [attest() for _ in range(30)])
    for i, st in enumerate(log[:-1]):
        task = asyncio.ensure_future(store.append_statement(st))
        for _ in range(i % 4):  # cancel after 0..3 event-loop turns: during BEGIN, INSERT, COMMIT
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    head_seq, _ = await store.head("lab-a")
    # whatever was cancelled, appending the rest in order works and the chain is intact
    results = await store.append_statements(log[head_seq:])
    assert all(r.stored for r in results), [r.outcome for r in results]
    assert (await store.head("lab-a"))[0] == len(log)


async def test_a_damaged_page_is_found_at_open_and_refused(
    db_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    """Damage SQLite does not notice on open (a page overwritten in the middle of the file)
    is found by the integrity check before the node serves anything from the store."""
    charter, keys = fed
    async with await Store.open(db_path, charter_digest=charter.digest) as s:
        await s.append_statements(
            log_for(charter, keys["lab-a"], "lab-a", [attest(note="x" * 500) for _ in range(40)])
        )
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(db_path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page : 2 * page + 12] = b"\xa5" * 12  # scribble over a b-tree page header
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"damaged|corrupt|malformed"):
        await Store.open(db_path, charter_digest=charter.digest)


async def test_peers_heartbeats_are_stored_without_an_fsync_and_durability_returns_after(
    tmp_path: Path, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    path = tmp_path / "s.db"
    hb = heartbeat_for(charter, keys[A], A, [], counter=3, issued_at_ms=T0)
    async with await Store.open(path, charter_digest=charter.digest) as s:
        assert await s.put_heartbeat(hb, durable=False)
        await s.put_kept_heartbeats(A, [hb], durable=False)
        async with s._use("checking") as db:
            assert (await store_module._row(db, "PRAGMA synchronous"))[0] == 2  # FULL again
    async with await Store.open(path, charter_digest=charter.digest) as s:
        assert await s.heartbeats() == [hb.envelope]
        assert await s.kept_heartbeats() == [hb.envelope]


async def test_a_batch_conflicting_with_itself_says_which_statement_holds_the_seq(
    store: Store, fed: tuple[Charter, dict[str, SigningKey]]
) -> None:
    charter, keys = fed
    log = chain(fed, 2)
    other = log_for(charter, keys[A], A, [attest(note="other")], start_ms=T0 + 5)[0]
    results = await store.append_statements([log[0], log[1], other, log[0]])
    assert [r.outcome for r in results] == [
        AppendOutcome.APPENDED,
        AppendOutcome.APPENDED,
        AppendOutcome.CONFLICT,
    ]
    assert results[2].existing == log[0].envelope
    assert await store.head(A) == (2, log[1].hash)
