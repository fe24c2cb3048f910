"""Issue own statements forever; the crash test kills this process at random moments.

    python tests/crash_issuer.py DB_PATH SEED_HEX CHARTER_JSON

Prints "ready" once imported, then one line per event, each flushed at once:

    signed HEX      the store has just signed a statement (the signature exists from now on)
    recovered HEX   recovery at start finished a statement journaled before a crash
    issued HEX      issue_statement returned this statement

HEX is codec.encode_envelope of the envelope. "signed" lines treat every signature as public the
instant it exists, as if it leaked, so the test checks that none could ever fork the log.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import pausenet.node.store as store_module
from pausenet.core.charter import parse_charter
from pausenet.core.dsse import Envelope, Signature
from pausenet.core.keys import SigningKey
from pausenet.core.records import STATEMENT_TYPE, SignedStatement, TriggerAttestation
from pausenet.node.store import Store
from pausenet.node.wire import encode_envelope

_sign_payload = store_module.sign_statement_payload


def emit(kind: str, env: Envelope) -> None:
    print(kind, encode_envelope(env).hex(), flush=True)


def observed_sign(key: SigningKey, member: str, payload: bytes) -> bytes:
    sig = _sign_payload(key, member, payload)
    emit("signed", Envelope(STATEMENT_TYPE, payload, (Signature(member, sig),)))
    return sig


async def main(db_path: str, seed_hex: str, charter_json: str) -> None:
    key = SigningKey(bytes.fromhex(seed_hex))
    charter = parse_charter(json.loads(charter_json), source="crash-test charter")
    member = charter.members[0].id
    store_module.sign_statement_payload = observed_sign  # type: ignore[assignment]
    print("ready", flush=True)
    async with await Store.open(db_path, charter_digest=charter.digest) as store:
        signed: SignedStatement
        for signed in await store.recover_pending(key, member):
            emit("recovered", signed.envelope)
        i = 0
        while True:
            # the note differs per process, so a lost journal would show as a second payload
            body = TriggerAttestation("t1", b"", f"pid{os.getpid()}-n{i}")
            now_ms = int(time.time() * 1000)
            signed = await store.issue_statement(key, charter, member, body, now_ms)
            emit("issued", signed.envelope)
            i += 1


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
