"""Verification of one envelope against a charter: signature first, then parse, then rules.

`verify_envelope` returns either the signed object (built only from the verified bytes) or a
`Rejection` naming the reason. `verify_or_raise` is the raising wrapper. Rules that need more
than one envelope live in `pausenet.core.chain` (links), `pausenet.core.evidence` (forks) and
`pausenet.core.view` (duplicates, counting).
"""

from __future__ import annotations

from dataclasses import dataclass

from pausenet.core.address import is_valid_address
from pausenet.core.charter import SLUG_RE, Charter, Role
from pausenet.core.dsse import Envelope, pae, sha256
from pausenet.core.payload import CodecError, decode_heartbeat, decode_statement
from pausenet.core.records import (
    HASH_BYTES,
    HEARTBEAT_TYPE,
    MAX_SEQ,
    STATEMENT_TYPE,
    Compliance,
    Decision,
    Heartbeat,
    SignedHeartbeat,
    SignedStatement,
    Statement,
    TriggerAttestation,
    Vote,
)
from pausenet.errors import Reason, VerificationError

__all__ = [
    "RECHECK_SLACK_MS",
    "Reason",
    "Rejection",
    "Verified",
    "is_valid_address",
    "verify_envelope",
    "verify_or_raise",
]

_MAX_KEYID = 64
_MAX_HEARTBEAT_BYTES = 1024

# An item verified once against the clock (a stored statement, an evidence envelope, a held
# fork) is verified again with `now` this far ahead: "from the future" judged the clock at
# arrival and must not bite a second time as it runs on, while every other rule still applies.
# Ten years is far beyond any clock skew a charter allows, and far inside int64 milliseconds.
RECHECK_SLACK_MS = 10 * 365 * 86_400_000


@dataclass(frozen=True)
class Rejection:
    reason: Reason
    detail: str
    payload_hash: bytes
    member: str = ""

    def __bool__(self) -> bool:  # a rejection is falsy, so `if result:` reads naturally
        return False

    def __str__(self) -> str:
        who = f" from {self.member}" if self.member else ""
        return f"{self.reason.value}{who}: {self.detail}"


Verified = SignedStatement | SignedHeartbeat


def verify_or_raise(charter: Charter, env: Envelope, *, now_ms: int) -> Verified:
    result = verify_envelope(charter, env, now_ms=now_ms)
    if isinstance(result, Rejection):
        raise VerificationError(result.reason, result.detail)
    return result


def verify_envelope(charter: Charter, env: Envelope, *, now_ms: int) -> Verified | Rejection:
    """Check one envelope: type, size, signature (before parsing), encoding, charter, rules."""
    h = sha256(env.payload)

    def reject(reason: Reason, detail: str, member: str = "") -> Rejection:
        return Rejection(reason, detail, h, member)

    if env.payload_type == STATEMENT_TYPE:
        limit = charter.limits.max_statement_bytes
    elif env.payload_type == HEARTBEAT_TYPE:
        limit = _MAX_HEARTBEAT_BYTES
    else:
        return reject(Reason.UNKNOWN_PAYLOAD_TYPE, f"payload type {env.payload_type[:100]!r}")
    if len(env.payload) > limit:
        return reject(Reason.OVERSIZE, f"payload is {len(env.payload)} bytes, limit {limit}")
    if len(env.signatures) != 1:
        return reject(Reason.MALFORMED, f"expected exactly 1 signature, got {len(env.signatures)}")
    sig = env.signatures[0]
    keyid = sig.keyid
    if len(keyid) > _MAX_KEYID or not SLUG_RE.fullmatch(keyid):
        return reject(
            Reason.UNKNOWN_MEMBER, f"signature keyid {keyid[:_MAX_KEYID]!r} is not a member id"
        )
    member = charter.member(keyid)
    if member is None:
        return reject(Reason.UNKNOWN_MEMBER, f"{keyid!r} is not a member of this charter", keyid)
    if not member.public_key.verify(pae(env.payload_type, env.payload), sig.sig):
        return reject(Reason.BAD_SIGNATURE, f"signature does not verify with {keyid}'s key", keyid)

    # Only now, with authenticated bytes, do we parse.
    try:
        obj: Statement | Heartbeat = (
            decode_statement(env.payload)
            if env.payload_type == STATEMENT_TYPE
            else decode_heartbeat(env.payload)
        )
    except CodecError as exc:
        return reject(exc.reason, str(exc), keyid)
    if obj.member != keyid:
        return reject(
            Reason.MEMBER_MISMATCH,
            f"payload names member {obj.member!r} but {keyid} signed it",
            keyid,
        )
    if obj.charter_digest != charter.digest or obj.federation_id != charter.federation_id:
        return reject(
            Reason.WRONG_CHARTER,
            f"signed under charter {obj.charter_digest.hex()[:16]}… of federation"
            f" {obj.federation_id[:64]!r}, not {charter.digest_hex[:16]}… of {charter.federation_id!r}",
            keyid,
        )
    issued = obj.issued_at_ms
    if issued <= 0:
        return reject(Reason.INVALID, "issued_at_ms must be a positive Unix time in ms", keyid)
    skew_ms = charter.rules.max_clock_skew_s * 1000
    if issued > now_ms + skew_ms:
        return reject(
            Reason.FROM_FUTURE,
            f"issued {issued - now_ms} ms in the future; the charter allows {skew_ms} ms of skew",
            keyid,
        )

    if isinstance(obj, Heartbeat):
        problem = _heartbeat_problem(obj)
        if problem:
            return reject(Reason.INVALID, problem, keyid)
        return SignedHeartbeat(obj, env, h)
    problem = _statement_problem(charter, obj, member.role)
    if problem:
        return reject(Reason.INVALID, problem, keyid)
    return SignedStatement(obj, env, h)


def _heartbeat_problem(hb: Heartbeat) -> str:
    if hb.head_seq > MAX_SEQ:
        return f"head_seq {hb.head_seq} exceeds {MAX_SEQ}"
    if hb.head_seq == 0 and hb.head_hash:
        return "head_hash must be empty when head_seq is 0"
    if hb.head_seq > 0 and len(hb.head_hash) != HASH_BYTES:
        return f"head_hash must be {HASH_BYTES} bytes"
    if not 1 <= hb.counter <= MAX_SEQ:
        return f"counter must be in 1..{MAX_SEQ}"
    if hb.address and not is_valid_address(hb.address):
        return "address must be empty or host:port"
    return ""


def _statement_problem(charter: Charter, s: Statement, role: Role) -> str:
    if not 1 <= s.seq <= MAX_SEQ:
        return f"seq must be in 1..{MAX_SEQ}"
    if s.seq == 1 and s.prev_hash:
        return "prev_hash must be empty for seq 1"
    if s.seq > 1 and len(s.prev_hash) != HASH_BYTES:
        return f"prev_hash must be {HASH_BYTES} bytes"
    lim = charter.limits
    b = s.body
    if isinstance(b, Vote):
        if not 1 <= b.epoch <= MAX_SEQ:
            return "vote epoch must be 1 or more"
        if len(b.note) > lim.max_note_chars:
            return f"note is {len(b.note)} characters, limit {lim.max_note_chars}"
        if b.decision is Decision.LIFT:
            return "a LIFT vote names no triggers" if b.triggers else ""
        if not b.triggers:
            return "a PAUSE vote must name at least one charter trigger"
        if len(b.triggers) > lim.max_triggers_per_vote:
            return f"vote names {len(b.triggers)} triggers, limit {lim.max_triggers_per_vote}"
        if len(set(b.triggers)) != len(b.triggers):
            return "vote names a trigger twice"
        unknown = [t for t in b.triggers if t not in charter.trigger_ids()]
        if unknown:
            return f"vote names unknown trigger {unknown[0][:64]!r}"
        if role is Role.OVERSEER and charter.rules.overseer_pause_threshold == 0:
            return "this charter does not let overseers vote to start a pause"
        return ""
    if isinstance(b, Compliance):
        if role is not Role.LAB:
            return "only labs attest compliance"
        if not 1 <= b.epoch <= MAX_SEQ:
            return "compliance epoch must be 1 or more"
        if b.evidence_sha256 and len(b.evidence_sha256) != HASH_BYTES:
            return f"evidence_sha256 must be empty or {HASH_BYTES} bytes"
        return ""
    assert isinstance(b, TriggerAttestation)
    if b.trigger_id not in charter.trigger_ids():
        return f"attests unknown trigger {b.trigger_id[:64]!r}"
    if b.evidence_sha256 and len(b.evidence_sha256) != HASH_BYTES:
        return f"evidence_sha256 must be empty or {HASH_BYTES} bytes"
    if len(b.note) > lim.max_note_chars:
        return f"note is {len(b.note)} characters, limit {lim.max_note_chars}"
    if b.epoch > MAX_SEQ:
        return f"attestation epoch must be 0 (no epoch) or in 1..{MAX_SEQ}"
    return ""
