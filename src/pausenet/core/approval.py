"""Charter approvals: a member's signature that it agrees to one charter version.

An approval is a DSSE envelope of its own payload type over a canonical `CharterApproval`
(federation id, version, charter digest, previous digest, member, time). Which key must have
signed it depends on why it is counted (docs/protocol.md, governance): the key a member holds in
the version being amended (the amendment threshold) or in the version approved (consent of a
member added or re-keyed). So the verifier takes the charter being approved and, separately, the
charter whose roster supplies the key.

`verify_approval_signature` checks what an approval says about itself, which is all that evidence
of a fork needs (two approvals of different successors; the successors' text is not needed);
`verify_approval` also checks that it approves exactly the given charter.
"""

from __future__ import annotations

from dataclasses import dataclass

from pausenet.core.charter import SLUG_RE, Charter
from pausenet.core.dsse import Envelope, pae, sha256, sign_envelope
from pausenet.core.keys import PublicKey, SigningKey
from pausenet.core.payload import CodecError, decode_approval, encode_approval
from pausenet.core.records import APPROVAL_TYPE, HASH_BYTES, MAX_SEQ, CharterApproval
from pausenet.core.verify import Rejection
from pausenet.errors import Reason, VerificationError

__all__ = [
    "APPROVAL_TYPE",
    "MAX_APPROVAL_BYTES",
    "SignedApproval",
    "approval_for",
    "sign_approval",
    "verify_approval",
    "verify_approval_or_raise",
    "verify_approval_signature",
]

MAX_APPROVAL_BYTES = 1024
_MAX_KEYID = 64


@dataclass(frozen=True)
class SignedApproval:
    """An approval whose envelope verified; built only from the verified payload bytes."""

    approval: CharterApproval
    envelope: Envelope
    hash: bytes  # SHA-256 of the payload
    key: PublicKey  # the key that verified it

    @property
    def member(self) -> str:
        return self.approval.member


def approval_for(charter: Charter, member: str, issued_at_ms: int) -> CharterApproval:
    """The approval payload for member's approval of exactly this charter."""
    return CharterApproval(
        federation_id=charter.federation_id,
        version=charter.version,
        charter_digest=charter.digest,
        previous_digest=charter.previous,
        member=member,
        issued_at_ms=issued_at_ms,
    )


def sign_approval(key: SigningKey, charter: Charter, member: str, now: int) -> SignedApproval:
    """Sign member's approval of charter at time now (Unix ms). Pure: no clock, no disk.

    The key need not be the one charter lists for member: a re-keyed member approves with its old
    key (counted under the version amended) and with its new key (its consent).
    """
    payload = encode_approval(approval_for(charter, member, now))
    env = sign_envelope(key, member, APPROVAL_TYPE, payload)
    return SignedApproval(decode_approval(payload), env, env.payload_hash, key.public_key)


def verify_approval_signature(key_source: Charter, env: Envelope) -> SignedApproval | Rejection:
    """Check an approval's type, size, signature (with key_source's key for its keyid, before
    parsing), encoding and its own fields; not which charter it approves."""
    h = sha256(env.payload)

    def reject(reason: Reason, detail: str, member: str = "") -> Rejection:
        return Rejection(reason, detail, h, member)

    if env.payload_type != APPROVAL_TYPE:
        return reject(Reason.UNKNOWN_PAYLOAD_TYPE, f"payload type {env.payload_type[:100]!r}")
    if len(env.payload) > MAX_APPROVAL_BYTES:
        return reject(
            Reason.OVERSIZE, f"payload is {len(env.payload)} bytes, limit {MAX_APPROVAL_BYTES}"
        )
    if len(env.signatures) != 1:
        return reject(Reason.MALFORMED, f"expected exactly 1 signature, got {len(env.signatures)}")
    sig = env.signatures[0]
    keyid = sig.keyid
    if len(keyid) > _MAX_KEYID or not SLUG_RE.fullmatch(keyid):
        return reject(
            Reason.UNKNOWN_MEMBER, f"signature keyid {keyid[:_MAX_KEYID]!r} is not a member id"
        )
    member = key_source.member(keyid)
    if member is None:
        return reject(
            Reason.UNKNOWN_MEMBER,
            f"{keyid!r} is not a member of charter version {key_source.version}",
            keyid,
        )
    if not member.public_key.verify(pae(env.payload_type, env.payload), sig.sig):
        return reject(
            Reason.BAD_SIGNATURE,
            f"signature does not verify with {keyid}'s key in charter version {key_source.version}",
            keyid,
        )
    try:
        a = decode_approval(env.payload)
    except CodecError as exc:
        return reject(exc.reason, str(exc), keyid)
    if a.member != keyid:
        return reject(
            Reason.MEMBER_MISMATCH, f"payload names member {a.member[:64]!r} but {keyid} signed it"
        )
    if a.federation_id != key_source.federation_id:
        return reject(
            Reason.WRONG_CHARTER,
            f"approves a charter of federation {a.federation_id[:64]!r}, not"
            f" {key_source.federation_id!r}",
            keyid,
        )
    problem = _approval_problem(a)
    if problem:
        return reject(Reason.INVALID, problem, keyid)
    return SignedApproval(a, env, h, member.public_key)


def _approval_problem(a: CharterApproval) -> str:
    if not 1 <= a.version <= MAX_SEQ:
        return f"version must be in 1..{MAX_SEQ}"
    if len(a.charter_digest) != HASH_BYTES:
        return f"charter_digest must be {HASH_BYTES} bytes"
    if a.version == 1 and a.previous_digest:
        return "previous_digest must be empty for version 1"
    if a.version > 1 and len(a.previous_digest) != HASH_BYTES:
        return f"previous_digest must be {HASH_BYTES} bytes from version 2 on"
    if a.issued_at_ms <= 0:
        return "issued_at_ms must be a positive Unix time in ms"
    return ""


def verify_approval(
    approved: Charter, key_source: Charter, env: Envelope
) -> SignedApproval | Rejection:
    """Check env is a valid approval of exactly `approved`, signed with the key key_source lists
    for its signer. A Rejection (falsy) names the reason."""
    got = verify_approval_signature(key_source, env)
    if isinstance(got, Rejection):
        return got
    a = got.approval
    if (a.federation_id, a.version, a.charter_digest, a.previous_digest) != (
        approved.federation_id,
        approved.version,
        approved.digest,
        approved.previous,
    ):
        return Rejection(
            Reason.WRONG_CHARTER,
            f"approves version {a.version} with digest {a.charter_digest.hex()[:16]}…, not"
            f" version {approved.version} with digest {approved.digest_hex[:16]}…",
            got.hash,
            got.member,
        )
    return got


def verify_approval_or_raise(
    approved: Charter, key_source: Charter, env: Envelope
) -> SignedApproval:
    got = verify_approval(approved, key_source, env)
    if isinstance(got, Rejection):
        raise VerificationError(got.reason, got.detail)
    return got
