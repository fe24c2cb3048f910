"""The SQLite store: members' logs, latest heartbeats, evidence, and this node's own-seq journal.

One aiosqlite connection in WAL mode with `synchronous=FULL`, so a COMMIT is durable when it
returns. The store does not verify signatures: callers pass objects that already verified, and
reads decode the stored envelopes without checking them again.

The own-seq rule — a node never signs two different statements with one seq, even after kill -9
at any instant — rests on a write-ahead journal (`own_pending`):

1. the next statement (seq = head + 1) is built and its exact payload committed to `own_pending`;
2. only then is the payload signed (Ed25519 is deterministic: same payload, same envelope);
3. one transaction appends the statement and deletes the journal row.

A crash before (1) commits leaves nothing; after it, a journal row whose payload recovery signs
identically. A seq is therefore bound to one payload before any signature over it exists.

sqlite errors are translated here, once, into one-line `StoreError`s.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from pausenet.core.chain import Predecessor, link_problem
from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, Signature, sha256, sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import CodecError, decode_statement, encode_statement
from pausenet.core.records import (
    MAX_SEQ,
    STATEMENT_TYPE,
    Body,
    SignedHeartbeat,
    SignedStatement,
    Statement,
)
from pausenet.core.signing import build_statement, sign_statement_payload
from pausenet.core.verify import Rejection, verify_envelope
from pausenet.errors import SigningRefusedError, StoreError
from pausenet.node.wire import decode_envelope, encode_envelope

__all__ = ["SCHEMA_VERSION", "AppendOutcome", "AppendResult", "Head", "Store"]

Head = tuple[int, bytes]
"""A log head: (seq, hash) of its last statement, or (0, b"") for an empty log."""

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]

_BUSY_TIMEOUT_MS = 5000

# sqlite primary result codes (https://sqlite.org/rescode.html)
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26


class AppendOutcome(StrEnum):
    """What `Store.append_statement` did with a statement."""

    APPENDED = "appended"
    DUPLICATE = "duplicate"  # already stored, same hash; nothing written
    CONFLICT = "conflict"  # another statement holds this seq: equivocation; nothing written
    GAP = "gap"  # seq is not head + 1; nothing written
    BROKEN_CHAIN = (
        "broken-chain"  # prev_hash or issued_at does not follow the head; nothing written
    )
    RESERVED = "reserved"  # this node journaled a different own statement for this seq


@dataclass(frozen=True)
class AppendResult:
    outcome: AppendOutcome
    existing: Envelope | None = None  # the stored envelope, on CONFLICT (for evidence)
    detail: str = ""

    @property
    def stored(self) -> bool:
        """True when the statement is in the store now (appended, or was already there)."""
        return self.outcome in (AppendOutcome.APPENDED, AppendOutcome.DUPLICATE)


# -- schema ---------------------------------------------------------------------------------


async def _create_v1(db: aiosqlite.Connection) -> None:
    for sql in (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE statements (
            member TEXT NOT NULL,
            seq INTEGER NOT NULL,
            hash BLOB NOT NULL,
            prev_hash BLOB NOT NULL,
            issued_at_ms INTEGER NOT NULL,
            envelope BLOB NOT NULL,
            PRIMARY KEY (member, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE heartbeats (
            member TEXT PRIMARY KEY,
            counter INTEGER NOT NULL,
            issued_at_ms INTEGER NOT NULL,
            hash BLOB NOT NULL,
            envelope BLOB NOT NULL
        )""",
        """CREATE TABLE evidence (
            id BLOB PRIMARY KEY,
            member TEXT NOT NULL,
            envelope_a BLOB NOT NULL,
            envelope_b BLOB NOT NULL,
            received_at_ms INTEGER NOT NULL
        )""",
        """CREATE TABLE own_pending (
            member TEXT NOT NULL,
            seq INTEGER NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (member, seq)
        )""",
        "CREATE TABLE own_counter (member TEXT PRIMARY KEY, reserved INTEGER NOT NULL)",
    ):
        await db.execute(sql)


async def _v1_to_v2(db: aiosqlite.Connection) -> None:
    """Branches of equivocators' logs, and the earlier heartbeats kept as witnesses."""
    for sql in (
        """CREATE TABLE branch_statements (
            hash BLOB PRIMARY KEY,
            member TEXT NOT NULL,
            seq INTEGER NOT NULL,
            envelope BLOB NOT NULL
        )""",
        """CREATE TABLE kept_heartbeats (
            member TEXT NOT NULL,
            hash BLOB NOT NULL,
            envelope BLOB NOT NULL,
            PRIMARY KEY (member, hash)
        )""",
    ):
        await db.execute(sql)


async def _v2_to_v3(db: aiosqlite.Connection) -> None:
    """Charter versions and approvals (docs/protocol.md §15.7); `adopted` marks the versions
    this node adopted, which it never gives up."""
    for sql in (
        """CREATE TABLE gov_charters (
            digest BLOB PRIMARY KEY,
            version INTEGER NOT NULL,
            canonical BLOB NOT NULL,
            adopted INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE gov_approvals (
            hash BLOB PRIMARY KEY,
            version INTEGER NOT NULL,
            charter_digest BLOB NOT NULL,
            envelope BLOB NOT NULL
        )""",
    ):
        await db.execute(sql)


# _MIGRATIONS[v] turns a schema of version v into version v + 1; version 0 is an empty file.
# Append a function here for every schema change; never edit one that has shipped.
_MIGRATIONS: list[Migration] = [_create_v1, _v1_to_v2, _v2_to_v3]

SCHEMA_VERSION = len(_MIGRATIONS)


# -- helpers --------------------------------------------------------------------------------


async def _rows(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    return list(await db.execute_fetchall(sql, params))


async def _row(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    rows = await _rows(db, sql, params)
    return rows[0] if rows else None


async def _rollback_quietly(db: aiosqlite.Connection) -> None:
    # sqlite may already have rolled back (e.g. on SQLITE_FULL); then ROLLBACK fails harmlessly.
    with suppress(sqlite3.Error, ValueError):
        await db.execute("ROLLBACK")


def _translate(path: Path, exc: BaseException, action: str) -> StoreError:
    """One line for an sqlite (or value range) error, naming the file and what to do."""
    if isinstance(exc, OverflowError):
        return StoreError(f"store {path}: {action} failed: a number does not fit in 64 bits")
    msg = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary == _SQLITE_FULL or "database or disk is full" in msg:
        return StoreError(
            f"store {path}: the disk is full; nothing was written ({action}); free some space"
            " and retry"
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "not a database" in msg:
        return StoreError(
            f"store {path} is unreadable: not an SQLite database, or corrupt ({msg}); restore it"
            " from a backup or use a new data dir"
        )
    if primary == _SQLITE_CANTOPEN:
        return StoreError(
            f"cannot open store {path}: {msg}; check that its directory exists and is writable"
        )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreError(
            f"store {path} is locked ({action}); is another node using this data dir?"
        )
    if primary == _SQLITE_READONLY:
        return StoreError(f"store {path} is read-only ({msg}); check the file's permissions")
    if primary == _SQLITE_IOERR:
        return StoreError(f"store {path}: disk I/O error while {action} ({msg}); check the disk")
    return StoreError(f"store {path}: {action} failed: {msg}")


def _short(digest_hex: str) -> str:
    return digest_hex[:16] + "…"


async def _prepare(
    db: aiosqlite.Connection, path: Path, charter_digest: bytes, federation_id: str | None
) -> None:
    """Set the pragmas, then create, migrate and check the schema in one transaction."""
    mode = await _row(db, "PRAGMA journal_mode=WAL")
    if mode is None or str(mode[0]).lower() != "wal":
        raise StoreError(
            f"store {path}: cannot use WAL journal mode; put the data dir on a local filesystem"
        )
    await db.execute("PRAGMA synchronous=FULL")
    await db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    # Damage inside the file (a torn page, a bad sector) is found now, before the node serves
    # a view computed from it; quick_check reads every page once.
    check = await _rows(db, "PRAGMA quick_check(5)")
    if [str(r[0]) for r in check] != ["ok"]:
        first = str(check[0][0]) if check else "no answer"
        raise StoreError(
            f"store {path} is damaged ({first[:120]}); restore it from a backup or use a new data"
            " dir — the node will not serve a view from it"
        )
    await db.execute("BEGIN IMMEDIATE")
    try:
        version = await _schema_version(db, path)
        supported = len(_MIGRATIONS)
        if version > supported:
            raise StoreError(
                f"store {path} has schema version {version}, newer than this pausenet supports"
                f" ({supported}); upgrade pausenet or use a new data dir"
            )
        if version > 0:
            row = await _row(db, "SELECT value FROM meta WHERE key = 'charter_digest'")
            if row is None:
                raise StoreError(
                    f"{path} is not a pausenet store (no charter digest); use a new data dir"
                )
            if str(row[0]) != charter_digest.hex():
                # the pinned version is fixed for a data dir (the node records the versions it
                # adopts after it in the store); a store from before charter versions was
                # created for its one charter, which is then its pin
                pin = " (pin it: 'charter' or 'trust' in the node config)" if federation_id else ""
                raise StoreError(
                    f"store {path} was created for charter {_short(str(row[0]))}, this node's"
                    f" charter is {_short(charter_digest.hex())}; use a new data dir or the"
                    f" charter it was created for{pin}"
                )
            fed = await _row(db, "SELECT value FROM meta WHERE key = 'federation_id'")
            if federation_id is not None and fed is not None and str(fed[0]) != federation_id:
                raise StoreError(
                    f"store {path} belongs to federation {str(fed[0])[:64]!r}, this node's"
                    f" charter to {federation_id!r}; use a new data dir"
                )
        for migrate in _MIGRATIONS[version:]:
            await migrate(db)
        await db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(supported),),
        )
        if version == 0:
            await db.execute(
                "INSERT INTO meta (key, value) VALUES ('charter_digest', ?)",
                (charter_digest.hex(),),
            )
        if federation_id is not None:
            # from now on tied to the federation; the pinned and adopted versions are in
            # gov_charters (a store from before versions gets its federation here)
            await db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('federation_id', ?)",
                (federation_id,),
            )
        await db.execute("COMMIT")
    except BaseException:
        await _rollback_quietly(db)
        raise


async def _schema_version(db: aiosqlite.Connection, path: Path) -> int:
    tables = {r[0] for r in await _rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return 0
    not_ours = StoreError(
        f"{path} is not a pausenet store (an SQLite database with other contents);"
        " choose another data dir"
    )
    if "meta" not in tables:
        raise not_ours
    row = await _row(db, "SELECT value FROM meta WHERE key = 'schema_version'")
    if row is None:
        raise not_ours
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise not_ours from None
    if version < 1:
        raise not_ours
    return version


# -- the store ------------------------------------------------------------------------------


class Store:
    """The node's durable state. Open with `await Store.open(path, charter_digest=...)`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: Path,
        charter_digest: bytes,
        federation_id: str | None = None,
    ) -> None:
        self._db: aiosqlite.Connection | None = db
        self._path = path
        self._charter_digest = charter_digest
        self._federation_id = federation_id
        self._lock = asyncio.Lock()  # one user of the connection (and its transaction) at a time
        self._issue_lock = asyncio.Lock()  # own statements are issued one at a time

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        charter_digest: bytes,
        federation_id: str | None = None,
    ) -> Store:
        """Open (creating or migrating) the store at path for the charter with this digest.

        With federation_id (a node following charter versions) the store is tied to the
        federation, and charter_digest is the pinned version's: a store from before versions
        opens when it was created for that digest. Without it, to that one digest."""
        p = Path(path)
        if not p.parent.is_dir():
            raise StoreError(
                f"cannot open store {p}: directory {p.parent} does not exist; create it first"
            )
        conn = aiosqlite.connect(p, isolation_level=None)
        try:
            db = await conn
        except sqlite3.Error as exc:
            # After a failed connect aiosqlite stops its worker thread in the background; wait
            # for it, or it may report to an event loop that has closed meanwhile.
            worker = getattr(conn, "_thread", None)
            if isinstance(worker, threading.Thread):
                await asyncio.to_thread(worker.join, 5.0)
            raise _translate(p, exc, "opening") from exc
        try:
            try:
                await _prepare(db, p, charter_digest, federation_id)
            except sqlite3.Error as exc:
                raise _translate(p, exc, "opening") from exc
        except BaseException:
            with suppress(sqlite3.Error, ValueError):
                await db.close()
            raise
        return cls(db, p, charter_digest, federation_id)

    async def close(self) -> None:
        """Close the store; waits for the operation in progress. Safe to call twice."""
        if self._db is None:
            return
        async with self._lock:
            db, self._db = self._db, None
            if db is None:
                return
            try:
                await db.close()
            except sqlite3.Error as exc:
                raise _translate(self._path, exc, "closing") from exc

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self._path

    @asynccontextmanager
    async def _use(
        self, action: str, *, write: bool = False, durable: bool = True
    ) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection; with write=True, inside one IMMEDIATE transaction.

        durable=False commits without an fsync (synchronous=NORMAL, for this transaction only):
        for what is replaceable and gossiped again, such as peers' heartbeats. A crash may lose
        the last such commits, never the file's consistency; the next durable commit syncs them.
        """
        async with self._lock:
            db = self._db
            if db is None:
                raise StoreError(f"store {self._path} is closed")
            try:
                if not durable:
                    await db.execute("PRAGMA synchronous=NORMAL")
                try:
                    # BEGIN sits inside the try: a caller cancelled while BEGIN runs still rolls
                    # back (aiosqlite runs statements in order, so the rollback follows the
                    # BEGIN) instead of leaving the connection inside a transaction for good.
                    try:
                        if write:
                            await db.execute("BEGIN IMMEDIATE")
                        yield db
                        if write:
                            await db.execute("COMMIT")
                    except BaseException:
                        if write:
                            await _rollback_quietly(db)
                        raise
                finally:
                    if not durable:
                        await db.execute("PRAGMA synchronous=FULL")
            except (sqlite3.Error, OverflowError) as exc:
                raise _translate(self._path, exc, action) from exc

    def _decode(self, blob: bytes, what: str) -> Envelope:
        try:
            return decode_envelope(blob)
        except CodecError as exc:
            raise StoreError(
                f"store {self._path} is corrupt: {what} is not a valid envelope; restore it from"
                " a backup"
            ) from exc

    # -- logs -----------------------------------------------------------------------------

    async def append_statement(self, signed: SignedStatement) -> AppendResult:
        """Append a verified statement if it extends its member's log; see `AppendOutcome`."""
        return (await self.append_statements([signed]))[0]

    async def append_statements(self, batch: Iterable[SignedStatement]) -> list[AppendResult]:
        """Append many statements in one transaction, in order.

        Duplicates are skipped; the first other non-APPENDED outcome stops the batch (its
        result is the last one returned). Statements appended before it are kept.

        A catch-up appends thousands of statements: each member's head and journal are read
        once per batch and the rows inserted with one executemany, not a few round trips to
        the database thread per statement.
        """
        results: list[AppendResult] = []
        async with self._use("appending statements", write=True) as db:
            heads: dict[str, tuple[int, bytes, int]] = {}
            journal: dict[str, dict[int, bytes]] = {}
            added: dict[tuple[str, int], Envelope] = {}  # appended in this batch
            rows: list[tuple[str, int, bytes, bytes, int, bytes]] = []
            for signed in batch:
                st, h = signed.statement, signed.hash
                if st.member not in heads:
                    heads[st.member] = await self._head_row(db, st.member)
                    journal[st.member] = {
                        int(r[0]): sha256(bytes(r[1]))
                        for r in await _rows(
                            db,
                            "SELECT seq, payload FROM own_pending WHERE member = ?",
                            (st.member,),
                        )
                    }
                head = heads[st.member]
                result = await self._check_batched(db, st, h, head, journal[st.member], added)
                results.append(result)
                if result.outcome is AppendOutcome.APPENDED:
                    heads[st.member] = (st.seq, h, st.issued_at_ms)
                    added[(st.member, st.seq)] = signed.envelope
                    rows.append(
                        (
                            st.member,
                            st.seq,
                            h,
                            st.prev_hash,
                            st.issued_at_ms,
                            encode_envelope(signed.envelope),
                        )
                    )
                elif result.outcome is not AppendOutcome.DUPLICATE:
                    break
            if rows:
                await db.executemany(
                    "INSERT INTO statements (member, seq, hash, prev_hash, issued_at_ms, envelope)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return results

    async def _check_batched(
        self,
        db: aiosqlite.Connection,
        st: Statement,
        h: bytes,
        head: tuple[int, bytes, int],
        journal: dict[int, bytes],
        added: dict[tuple[str, int], Envelope],
    ) -> AppendResult:
        """`_check_append` against a head and journal read once for the batch."""
        head_seq, head_hash, head_at = head
        if st.seq <= head_seq:
            held = added.get((st.member, st.seq))
            if held is None:
                return await self._check_append(db, st, h)  # a row from before this batch
            if held.payload_hash == h:
                return AppendResult(AppendOutcome.DUPLICATE)
            return AppendResult(
                AppendOutcome.CONFLICT,
                held,
                f"{st.member} already has a different statement at seq {st.seq}",
            )
        pending = journal.get(st.seq)
        if pending is not None and pending != h:
            return AppendResult(
                AppendOutcome.RESERVED,
                None,
                f"this node journaled its own, different statement {st.member}#{st.seq}",
            )
        if st.seq != head_seq + 1:
            return AppendResult(
                AppendOutcome.GAP, None, f"{st.member}'s head is seq {head_seq}, got seq {st.seq}"
            )
        problem = link_problem(st, Predecessor(head_hash, head_at) if head_seq else None)
        if problem is not None:
            return AppendResult(
                AppendOutcome.BROKEN_CHAIN, None, f"{st.member}#{st.seq}: {problem.detail}"
            )
        return AppendResult(AppendOutcome.APPENDED)

    async def _check_append(
        self, db: aiosqlite.Connection, st: Statement, h: bytes
    ) -> AppendResult:
        row = await _row(
            db,
            "SELECT hash, envelope FROM statements WHERE member = ? AND seq = ?",
            (st.member, st.seq),
        )
        if row is not None:
            if bytes(row[0]) == h:
                return AppendResult(AppendOutcome.DUPLICATE)
            return AppendResult(
                AppendOutcome.CONFLICT,
                self._decode(bytes(row[1]), f"statement {st.member}#{st.seq}"),
                f"{st.member} already has a different statement at seq {st.seq}",
            )
        pending = await _row(
            db, "SELECT payload FROM own_pending WHERE member = ? AND seq = ?", (st.member, st.seq)
        )
        if pending is not None and sha256(bytes(pending[0])) != h:
            return AppendResult(
                AppendOutcome.RESERVED,
                None,
                f"this node journaled its own, different statement {st.member}#{st.seq}",
            )
        head_seq, head_hash, head_at = await self._head_row(db, st.member)
        if st.seq != head_seq + 1:
            return AppendResult(
                AppendOutcome.GAP, None, f"{st.member}'s head is seq {head_seq}, got seq {st.seq}"
            )
        problem = link_problem(st, Predecessor(head_hash, head_at) if head_seq else None)
        if problem is not None:
            return AppendResult(
                AppendOutcome.BROKEN_CHAIN, None, f"{st.member}#{st.seq}: {problem.detail}"
            )
        return AppendResult(AppendOutcome.APPENDED)

    @staticmethod
    async def _insert(db: aiosqlite.Connection, st: Statement, env: Envelope, h: bytes) -> None:
        await db.execute(
            "INSERT INTO statements (member, seq, hash, prev_hash, issued_at_ms, envelope)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (st.member, st.seq, h, st.prev_hash, st.issued_at_ms, encode_envelope(env)),
        )

    @staticmethod
    async def _head_row(db: aiosqlite.Connection, member: str) -> tuple[int, bytes, int]:
        row = await _row(
            db,
            "SELECT seq, hash, issued_at_ms FROM statements WHERE member = ?"
            " ORDER BY seq DESC LIMIT 1",
            (member,),
        )
        if row is None:
            return 0, b"", 0
        return int(row[0]), bytes(row[1]), int(row[2])

    async def head(self, member: str) -> Head:
        async with self._use("reading a head") as db:
            seq, h, _ = await self._head_row(db, member)
        return seq, h

    async def heads(self) -> dict[str, Head]:
        async with self._use("reading heads") as db:
            # sqlite returns the bare column `hash` from the row holding MAX(seq)
            rows = await _rows(db, "SELECT member, MAX(seq), hash FROM statements GROUP BY member")
        return {str(r[0]): (int(r[1]), bytes(r[2])) for r in rows}

    async def statements(
        self, member: str, from_seq: int = 1, to_seq: int | None = None, limit: int | None = None
    ) -> list[Envelope]:
        """Envelopes of member's statements with from_seq <= seq <= to_seq, in seq order."""
        async with self._use("reading statements") as db:
            rows = await _rows(
                db,
                "SELECT seq, envelope FROM statements WHERE member = ? AND seq >= ? AND seq <= ?"
                " ORDER BY seq LIMIT ?",
                (
                    member,
                    max(from_seq, 0),
                    MAX_SEQ if to_seq is None else min(to_seq, MAX_SEQ),
                    -1 if limit is None else limit,
                ),
            )
        return [self._decode(bytes(r[1]), f"statement {member}#{r[0]}") for r in rows]

    async def all_statement_envelopes(self) -> list[Envelope]:
        """Every stored statement, by member then seq."""
        async with self._use("reading statements") as db:
            rows = await _rows(
                db, "SELECT member, seq, envelope FROM statements ORDER BY member, seq"
            )
        return [self._decode(bytes(r[2]), f"statement {r[0]}#{r[1]}") for r in rows]

    # -- heartbeats and evidence ----------------------------------------------------------

    async def put_heartbeat(self, signed: SignedHeartbeat, *, durable: bool = True) -> bool:
        """Keep signed if it is newer (by counter, then issued_at) than member's stored one.

        durable=False: without an fsync; for peers' heartbeats, which are replaced within
        seconds and which peers send again if a crash loses them."""
        hb = signed.heartbeat
        async with self._use("storing a heartbeat", write=True, durable=durable) as db:
            row = await _row(
                db,
                "SELECT counter, issued_at_ms FROM heartbeats WHERE member = ?",
                (hb.member,),
            )
            if row is not None and (hb.counter, hb.issued_at_ms) <= (int(row[0]), int(row[1])):
                return False
            await db.execute(
                "INSERT OR REPLACE INTO heartbeats"
                " (member, counter, issued_at_ms, hash, envelope) VALUES (?, ?, ?, ?, ?)",
                (
                    hb.member,
                    hb.counter,
                    hb.issued_at_ms,
                    signed.hash,
                    encode_envelope(signed.envelope),
                ),
            )
        return True

    async def heartbeats(self) -> list[Envelope]:
        """The latest heartbeat of each member, by member."""
        async with self._use("reading heartbeats") as db:
            rows = await _rows(db, "SELECT member, envelope FROM heartbeats ORDER BY member")
        return [self._decode(bytes(r[1]), f"heartbeat of {r[0]}") for r in rows]

    async def add_branch_statements(self, batch: Sequence[SignedStatement]) -> None:
        """Keep statements of an equivocator's other branches (the replica checked them)."""
        async with self._use("storing branch statements", write=True) as db:
            for st in batch:
                await db.execute(
                    "INSERT OR IGNORE INTO branch_statements (hash, member, seq, envelope)"
                    " VALUES (?, ?, ?, ?)",
                    (st.hash, st.member, st.seq, encode_envelope(st.envelope)),
                )

    async def branch_statements(self) -> list[Envelope]:
        """Every stored branch statement, by member, seq and hash."""
        async with self._use("reading branch statements") as db:
            rows = await _rows(
                db, "SELECT member, seq, envelope FROM branch_statements ORDER BY member, seq, hash"
            )
        return [self._decode(bytes(r[2]), f"branch statement {r[0]}#{r[1]}") for r in rows]

    async def put_kept_heartbeats(
        self, member: str, kept: Sequence[SignedHeartbeat], *, durable: bool = True
    ) -> None:
        """Replace the earlier heartbeats kept as witnesses of member's timeline."""
        async with self._use("storing kept heartbeats", write=True, durable=durable) as db:
            await db.execute("DELETE FROM kept_heartbeats WHERE member = ?", (member,))
            await db.executemany(
                "INSERT INTO kept_heartbeats (member, hash, envelope) VALUES (?, ?, ?)",
                [(member, hb.hash, encode_envelope(hb.envelope)) for hb in kept],
            )

    async def kept_heartbeats(self) -> list[Envelope]:
        async with self._use("reading kept heartbeats") as db:
            rows = await _rows(
                db, "SELECT member, envelope FROM kept_heartbeats ORDER BY member, hash"
            )
        return [self._decode(bytes(r[1]), f"kept heartbeat of {r[0]}") for r in rows]

    async def add_evidence(
        self,
        id: bytes,
        member: str,
        a: Envelope,
        b: Envelope,
        *,
        received_at_ms: int | None = None,
    ) -> bool:
        """Store evidence against member; False when evidence with this id is already stored.

        id is the evidence's content hash, computed by the caller.
        """
        at = int(time.time() * 1000) if received_at_ms is None else received_at_ms
        async with self._use("storing evidence", write=True) as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO evidence"
                " (id, member, envelope_a, envelope_b, received_at_ms) VALUES (?, ?, ?, ?, ?)",
                (id, member, encode_envelope(a), encode_envelope(b), at),
            )
            added = cur.rowcount == 1
        return added

    async def evidence(self) -> list[tuple[str, Envelope, Envelope]]:
        """All evidence as (member, envelope_a, envelope_b), oldest first."""
        async with self._use("reading evidence") as db:
            rows = await _rows(
                db,
                "SELECT id, member, envelope_a, envelope_b FROM evidence"
                " ORDER BY received_at_ms, id",
            )
        return [
            (
                str(r[1]),
                self._decode(bytes(r[2]), f"evidence {bytes(r[0]).hex()[:16]}"),
                self._decode(bytes(r[3]), f"evidence {bytes(r[0]).hex()[:16]}"),
            )
            for r in rows
        ]

    # -- charter versions and approvals ---------------------------------------------------

    async def put_governance(
        self,
        charters: Sequence[tuple[bytes, int, bytes]],
        approvals: Sequence[tuple[bytes, int, bytes, Envelope]],
    ) -> None:
        """Keep charters (digest, version, canonical bytes) and approvals (hash, version,
        charter digest, envelope), verified by the caller; those already held are skipped."""
        async with self._use("storing charters and approvals", write=True) as db:
            for digest, version, canonical in charters:
                await db.execute(
                    "INSERT OR IGNORE INTO gov_charters (digest, version, canonical)"
                    " VALUES (?, ?, ?)",
                    (digest, version, canonical),
                )
            for h, version, charter_digest, env in approvals:
                await db.execute(
                    "INSERT OR IGNORE INTO gov_approvals (hash, version, charter_digest, envelope)"
                    " VALUES (?, ?, ?, ?)",
                    (h, version, charter_digest, encode_envelope(env)),
                )

    async def governance(self) -> tuple[list[tuple[bytes, bool]], list[Envelope]]:
        """(canonical bytes, adopted) of every charter held, by version, and every approval."""
        async with self._use("reading charters and approvals") as db:
            cs = await _rows(
                db, "SELECT canonical, adopted FROM gov_charters ORDER BY version, digest"
            )
            aps = await _rows(db, "SELECT hash, envelope FROM gov_approvals ORDER BY hash")
        return (
            [(bytes(r[0]), bool(r[1])) for r in cs],
            [self._decode(bytes(r[1]), f"approval {bytes(r[0]).hex()[:16]}") for r in aps],
        )

    async def adopt_charters(self, charters: Sequence[tuple[bytes, int, bytes]]) -> None:
        """Mark these versions adopted, for good, in one durable transaction."""
        async with self._use("adopting charter versions", write=True) as db:
            for digest, version, canonical in charters:
                await db.execute(
                    "INSERT OR IGNORE INTO gov_charters (digest, version, canonical)"
                    " VALUES (?, ?, ?)",
                    (digest, version, canonical),
                )
                await db.execute("UPDATE gov_charters SET adopted = 1 WHERE digest = ?", (digest,))

    # -- this node's own statements and heartbeat counters --------------------------------

    async def issue_statement(
        self, key: SigningKey, charter: Charter, member: str, body: Body, now_ms: int
    ) -> SignedStatement:
        """Sign and append member's next statement, journaling its payload before signing.

        issued_at is max(now_ms, the previous statement's issued_at), so the log's times never
        go backwards. Raises SigningRefusedError (nothing written) when the statement would not
        verify under charter, StoreError when the store fails. If this raises after the journal
        commit (or the process dies), the statement is appended by the next `recover_pending`
        or `issue_statement` — as the same signed bytes.
        """
        if (
            charter.federation_id != self._federation_id
            if self._federation_id is not None
            else charter.digest != self._charter_digest
        ):
            raise StoreError(
                f"store {self._path} belongs to charter {_short(self._charter_digest.hex())},"
                f" not {_short(charter.digest_hex)}"
            )
        async with self._issue_lock:
            await self._recover(key, member)
            # (1) bind the next seq to one exact payload, durably
            async with self._use("journaling an own statement", write=True) as db:
                if await _row(db, "SELECT 1 FROM own_pending WHERE member = ?", (member,)):
                    raise StoreError(
                        f"store {self._path}: another process is issuing statements for"
                        f" {member}; run one node per data dir"
                    )
                seq, prev_hash, last_at = await self._head_row(db, member)
                st = build_statement(
                    charter, member, seq + 1, prev_hash, max(now_ms, last_at), body
                )
                payload = encode_statement(st)
                _refuse_unless_valid(key, charter, st, payload)
                await db.execute(
                    "INSERT INTO own_pending (member, seq, payload) VALUES (?, ?, ?)",
                    (member, st.seq, payload),
                )
            # (2) sign only what is durably journaled; (3) append and clear the journal
            env = _sign(key, member, payload)
            async with self._use("appending an own statement", write=True) as db:
                await self._finish_pending(db, st, env)
            return SignedStatement(st, env, env.payload_hash)

    async def recover_pending(self, key: SigningKey, member: str) -> list[SignedStatement]:
        """Sign and append member's journaled statements left by a crash; call at node start.

        Returns the statements it completed (they may be news to peers).
        """
        async with self._issue_lock:
            return await self._recover(key, member)

    async def _recover(self, key: SigningKey, member: str) -> list[SignedStatement]:
        async with self._use("reading own pending statements") as db:
            rows = await _rows(
                db,
                "SELECT seq, payload FROM own_pending WHERE member = ? ORDER BY seq",
                (member,),
            )
        done: list[SignedStatement] = []
        for seq, payload in rows:
            payload = bytes(payload)
            try:
                st = decode_statement(payload)
            except CodecError as exc:
                raise StoreError(
                    f"store {self._path} is corrupt: own pending statement {member}#{seq} does not"
                    " decode; restore it from a backup"
                ) from exc
            env = _sign(key, member, payload)
            async with self._use("recovering an own statement", write=True) as db:
                await self._finish_pending(db, st, env)
            done.append(SignedStatement(st, env, env.payload_hash))
        return done

    async def _finish_pending(self, db: aiosqlite.Connection, st: Statement, env: Envelope) -> None:
        h = env.payload_hash
        result = await self._check_append(db, st, h)
        if result.outcome is AppendOutcome.APPENDED:
            await self._insert(db, st, env, h)
        elif result.outcome is not AppendOutcome.DUPLICATE:
            # Cannot happen while only this store writes this member's log; stop loudly
            # rather than sign anything else at this seq.
            raise StoreError(
                f"store {self._path}: own statement {st.member}#{st.seq} no longer fits the log"
                f" ({result.outcome.value}: {result.detail}); restore the store from a backup"
            )
        await db.execute(
            "DELETE FROM own_pending WHERE member = ? AND seq = ?", (st.member, st.seq)
        )

    async def next_heartbeat_counter(self, member: str) -> int:
        """Durably reserve member's next heartbeat counter before it is signed.

        Counters may skip (a reserved one whose heartbeat was never sent) but never repeat.
        """
        async with self._use("reserving a heartbeat counter", write=True) as db:
            reserved = await _row(
                db, "SELECT reserved FROM own_counter WHERE member = ?", (member,)
            )
            stored = await _row(db, "SELECT counter FROM heartbeats WHERE member = ?", (member,))
            counter = max(int(reserved[0]) if reserved else 0, int(stored[0]) if stored else 0) + 1
            if counter > MAX_SEQ:
                raise StoreError(f"store {self._path}: {member}'s heartbeat counter is exhausted")
            await db.execute(
                "INSERT OR REPLACE INTO own_counter (member, reserved) VALUES (?, ?)",
                (member, counter),
            )
        return counter


def _sign(key: SigningKey, member: str, payload: bytes) -> Envelope:
    sig = sign_statement_payload(key, member, payload)
    return Envelope(STATEMENT_TYPE, payload, (Signature(member, sig),))


def _refuse_unless_valid(key: SigningKey, charter: Charter, st: Statement, payload: bytes) -> None:
    """Raise SigningRefusedError unless the statement, once signed, verifies under charter.

    A journaled payload is signed and published by recovery whatever happens next, so it is
    checked before it is journaled: a statement peers would reject would break the chain of
    every later one. The trial signature stays in this function.
    """
    trial = sign_envelope(key, st.member, STATEMENT_TYPE, payload)
    result = verify_envelope(charter, trial, now_ms=st.issued_at_ms)
    if isinstance(result, Rejection):
        raise SigningRefusedError(f"refusing to sign {st.member}#{st.seq}: {result}")
