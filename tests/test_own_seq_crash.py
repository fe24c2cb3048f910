"""Threat: crash during a write. kill -9 at random instants never makes a node sign two
different statements with one seq, and never loses a statement it acknowledged.

A child process (tests/crash_issuer.py) issues statements in a loop. It prints every signature
the moment the store makes it (as if each one leaked at once) and every statement the store
returned. This test kills it with SIGKILL at a random moment 0-150 ms after it is ready (so kills
land while it opens the store, recovers, journals, signs or appends), restarts it, and at the end
checks every printed and every stored statement. It kills KILLS times, and more until at least one
kill has landed between journaling and appending, within one generous timeout: a slow machine
takes longer but does not fail.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pausenet.core.charter import parse_charter
from pausenet.core.dsse import Envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import decode_statement
from pausenet.core.records import SignedStatement
from pausenet.core.verify import verify_envelope
from pausenet.node.store import Store
from pausenet.node.wire import decode_envelope

ISSUER = Path(__file__).with_name("crash_issuer.py")
MEMBER = "lab-a"
KILLS = 100  # about 20 s on an idle machine
TIMEOUT_S = 600.0
MAX_DELAY_S = 0.150


def charter_data(key: SigningKey) -> dict[str, Any]:
    return {
        "federation_id": "crash-test",
        "members": [{"id": MEMBER, "role": "lab", "public_key": key.public_key.hex()}],
        "triggers": [{"id": "t1", "description": "d"}],
        "rules": {"pause_threshold": 1, "lift_threshold": 1},
    }


def run_and_kill(args: list[str], delay_s: float) -> list[str]:
    """Start the issuer, SIGKILL it delay_s after it is ready; return its complete lines."""
    proc = subprocess.Popen(
        [sys.executable, str(ISSUER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    chunks: list[bytes] = []
    ready = threading.Event()

    def drain() -> None:  # read stdout as it comes, so a full pipe never stalls the issuer
        assert proc.stdout is not None
        for line in proc.stdout:
            chunks.append(line)
            if line == b"ready\n":
                ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if ready.wait(timeout=30):
            time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=30)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, (
        f"issuer exited on its own ({proc.returncode}): {err.decode()[-2000:]}"
    )
    # a line cut off by the kill was never acknowledged as a whole; only complete lines count
    lines = b"".join(chunks).decode("ascii").split("\n")[:-1]
    return [ln for ln in lines if ln != "ready"]


@pytest.mark.slow
async def test_kill_9_never_forks_the_own_log_or_loses_an_acknowledged_statement(
    tmp_path: Path,
) -> None:
    key = SigningKey(os.urandom(32))
    data = charter_data(key)
    charter = parse_charter(data)
    db = tmp_path / "node.db"
    args = [str(db), key.seed_hex(), json.dumps(data)]
    seed = random.randrange(2**32)
    rng = random.Random(seed)

    printed: list[tuple[str, Envelope]] = []
    kills = quiet_runs = 0
    started = time.monotonic()

    def recovered() -> int:  # statements journaled before a kill and finished at a restart
        return sum(kind == "recovered" for kind, _ in printed)

    while kills < KILLS or not recovered():
        if time.monotonic() - started > TIMEOUT_S:
            pytest.fail(
                f"{kills} kills ({recovered()} statements recovered) in {TIMEOUT_S:g}s;"
                f" wanted {KILLS} and one recovered (rng seed {seed})"
            )
        lines = run_and_kill(args, rng.uniform(0, MAX_DELAY_S))
        kills += 1
        quiet_runs += not lines
        for line in lines:
            kind, hexenv = line.split(" ")
            printed.append((kind, decode_envelope(bytes.fromhex(hexenv))))
    elapsed = time.monotonic() - started

    async with await Store.open(db, charter_digest=charter.digest) as store:
        final_recovery = await store.recover_pending(key, MEMBER)
        stored = await store.statements(MEMBER)
        assert await store.recover_pending(key, MEMBER) == []

    # every stored statement verifies, and the log is one unbroken chain 1..head
    prev_hash, prev_at = b"", 0
    for seq, env in enumerate(stored, start=1):
        verified = verify_envelope(charter, env, now_ms=int(time.time() * 1000) + 60_000)
        assert isinstance(verified, SignedStatement), verified
        st = verified.statement
        assert (st.seq, st.prev_hash) == (seq, prev_hash)
        assert st.issued_at_ms >= prev_at
        prev_hash, prev_at = verified.hash, st.issued_at_ms

    # no seq was ever signed with two payloads, among everything printed and stored
    hashes_by_seq: dict[int, set[bytes]] = {}
    for env in [e for _, e in printed] + stored + [s.envelope for s in final_recovery]:
        hashes_by_seq.setdefault(decode_statement(env.payload).seq, set()).add(env.payload_hash)
    forks = {seq: hs for seq, hs in hashes_by_seq.items() if len(hs) > 1}
    assert not forks, f"seqs signed twice with different payloads: {sorted(forks)}"

    # every signature that ever existed, and so every acknowledged statement, is in the store
    stored_by_seq = {decode_statement(e.payload).seq: e for e in stored}
    for kind, env in printed:
        seq = decode_statement(env.payload).seq
        assert stored_by_seq.get(seq) == env, f"{kind} statement at seq {seq} is not stored"

    count = {k: sum(kind == k for kind, _ in printed) for k in ("signed", "issued", "recovered")}
    print(
        f"\ncrash test (rng seed {seed}): {kills} kills in {elapsed:.1f} s;"
        f" {count['issued'] + count['recovered']} statements acknowledged ({count['issued']}"
        f" issued, {count['recovered']} finished by recovery at restart), {count['signed']}"
        f" signatures made, {len(final_recovery)} finished by the final recovery;"
        f" {quiet_runs} runs killed before printing anything; {len(stored)} stored;"
        f" {len(forks)} seqs with two payloads"
    )
    assert kills >= KILLS
    assert count["recovered"] > 0, "no kill landed between journaling and appending"
