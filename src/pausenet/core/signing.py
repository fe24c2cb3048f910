"""Building and signing statements and heartbeats (pure: no clock, no disk).

Callers supply the time and the log position; the store decides those durably before signing
(see `pausenet.node.store`), which is what keeps a node from signing two statements with one seq.
"""

from __future__ import annotations

from pausenet.core.charter import Charter
from pausenet.core.dsse import sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import encode_heartbeat, encode_statement
from pausenet.core.records import (
    HEARTBEAT_TYPE,
    STATEMENT_TYPE,
    Body,
    Heartbeat,
    SignedHeartbeat,
    SignedStatement,
    Statement,
)

__all__ = ["build_statement", "sign_heartbeat", "sign_statement", "sign_statement_payload"]


def build_statement(
    charter: Charter, member: str, seq: int, prev_hash: bytes, issued_at_ms: int, body: Body
) -> Statement:
    return Statement(
        federation_id=charter.federation_id,
        charter_digest=charter.digest,
        member=member,
        seq=seq,
        prev_hash=prev_hash,
        issued_at_ms=issued_at_ms,
        body=body,
    )


def sign_statement_payload(key: SigningKey, member: str, payload: bytes) -> bytes:
    """Sign exact statement payload bytes; returns the envelope's signature.

    Ed25519 is deterministic, so signing the same payload again yields the same envelope:
    recovery after a crash re-signs a durably recorded payload without any risk of a fork.
    """
    return sign_envelope(key, member, STATEMENT_TYPE, payload).signatures[0].sig


def sign_statement(key: SigningKey, statement: Statement) -> SignedStatement:
    payload = encode_statement(statement)
    env = sign_envelope(key, statement.member, STATEMENT_TYPE, payload)
    return SignedStatement(statement, env, env.payload_hash)


def sign_heartbeat(
    key: SigningKey,
    charter: Charter,
    member: str,
    *,
    head_seq: int,
    head_hash: bytes,
    counter: int,
    issued_at_ms: int,
    address: str = "",
) -> SignedHeartbeat:
    hb = Heartbeat(
        federation_id=charter.federation_id,
        charter_digest=charter.digest,
        member=member,
        head_seq=head_seq,
        head_hash=head_hash,
        counter=counter,
        issued_at_ms=issued_at_ms,
        address=address,
    )
    env = sign_envelope(key, member, HEARTBEAT_TYPE, encode_heartbeat(hb))
    return SignedHeartbeat(hb, env, env.payload_hash)
