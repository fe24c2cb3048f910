"""Charter approvals: signing, verification against the charter approved and the key source."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from helpers import federation_data, key_for

from pausenet.core.approval import (
    APPROVAL_TYPE,
    SignedApproval,
    sign_approval,
    verify_approval,
    verify_approval_or_raise,
    verify_approval_signature,
)
from pausenet.core.charter import CHARTER_FORMAT_V2, Charter, parse_charter
from pausenet.core.dsse import Envelope, Signature, sign_envelope
from pausenet.core.payload import decode_approval, encode_approval
from pausenet.core.records import CharterApproval
from pausenet.core.verify import Rejection
from pausenet.errors import Reason, VerificationError
from pausenet.v1 import governance_pb2

T = 1_700_000_000_000


def _genesis() -> Charter:
    return parse_charter(federation_data(3, 1))


def _successor(prev: Charter, **rules: int) -> Charter:
    data: dict[str, Any] = copy.deepcopy(federation_data(3, 1))
    data.update(format=CHARTER_FORMAT_V2, version=prev.version + 1, previous=prev.digest_hex)
    data["rules"].update(rules)
    return parse_charter(data)


def _reason(got: SignedApproval | Rejection) -> Reason:
    assert isinstance(got, Rejection)
    assert not got
    return got.reason


def test_a_signed_approval_verifies_and_names_exactly_the_charter() -> None:
    g = _genesis()
    s = sign_approval(key_for("lab-a"), g, "lab-a", T)
    got = verify_approval(g, g, s.envelope)
    assert isinstance(got, SignedApproval)
    assert got
    assert got.approval == CharterApproval(g.federation_id, 1, g.digest, b"", "lab-a", T)
    assert got.hash == s.hash
    assert got.key == key_for("lab-a").public_key
    assert s.envelope.payload_type == APPROVAL_TYPE
    assert verify_approval_or_raise(g, g, s.envelope).member == "lab-a"


def test_an_approval_of_version_2_names_its_predecessor() -> None:
    g = _genesis()
    v2 = _successor(g, pause_threshold=3)
    s = sign_approval(key_for("lab-b"), v2, "lab-b", T)
    assert s.approval.previous_digest == g.digest
    assert s.approval.version == 2
    assert verify_approval(v2, g, s.envelope)
    # an approval of one version never counts for another
    assert _reason(verify_approval(g, g, s.envelope)) is Reason.WRONG_CHARTER
    other = _successor(g, lift_threshold=3)
    assert _reason(verify_approval(other, g, s.envelope)) is Reason.WRONG_CHARTER
    with pytest.raises(VerificationError, match="wrong-charter"):
        verify_approval_or_raise(other, g, s.envelope)


def test_the_key_must_be_the_one_the_key_source_lists() -> None:
    g = _genesis()
    forged = sign_approval(key_for("someone-else"), g, "lab-a", T)
    assert _reason(verify_approval(g, g, forged.envelope)) is Reason.BAD_SIGNATURE
    stranger = sign_approval(key_for("lab-z"), g, "lab-z", T)
    assert _reason(verify_approval(g, g, stranger.envelope)) is Reason.UNKNOWN_MEMBER


def _env(a: CharterApproval, *, keyid: str = "lab-a", payload: bytes | None = None) -> Envelope:
    body = encode_approval(a) if payload is None else payload
    return sign_envelope(key_for(keyid), keyid, APPROVAL_TYPE, body)


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ({"member": "lab-b"}, Reason.MEMBER_MISMATCH),
        ({"federation_id": "other"}, Reason.WRONG_CHARTER),
        ({"issued_at_ms": 0}, Reason.INVALID),
        ({"version": 0}, Reason.INVALID),
        ({"charter_digest": b"\x01" * 31}, Reason.INVALID),
        ({"previous_digest": b"\x01" * 32}, Reason.INVALID),
        ({"version": 2}, Reason.INVALID),  # version 2 with no previous digest
    ],
)
def test_bad_fields_are_rejected_with_a_reason(edit: dict[str, Any], reason: Reason) -> None:
    g = _genesis()
    fields: dict[str, Any] = {
        "federation_id": g.federation_id,
        "version": 1,
        "charter_digest": g.digest,
        "previous_digest": b"",
        "member": "lab-a",
        "issued_at_ms": T,
    }
    fields.update(edit)
    got = verify_approval_signature(g, _env(CharterApproval(**fields)))
    assert _reason(got) is reason


def test_envelope_shape_and_encoding_are_checked_before_use() -> None:
    g = _genesis()
    good = sign_approval(key_for("lab-a"), g, "lab-a", T).envelope
    other_type = sign_envelope(key_for("lab-a"), "lab-a", "application/x", good.payload)
    assert _reason(verify_approval(g, g, other_type)) is Reason.UNKNOWN_PAYLOAD_TYPE
    two = Envelope(good.payload_type, good.payload, good.signatures * 2)
    assert _reason(verify_approval(g, g, two)) is Reason.MALFORMED
    big = _env(CharterApproval(g.federation_id, 1, g.digest, b"", "lab-a", T), payload=b"x" * 1025)
    assert _reason(verify_approval(g, g, big)) is Reason.OVERSIZE
    junk = _env(CharterApproval("", 0, b"", b"", "", 0), payload=b"\xff\xff")
    assert _reason(verify_approval(g, g, junk)) is Reason.MALFORMED
    # an unknown field appended: parses, but is not the canonical encoding
    extra = _env(CharterApproval("", 0, b"", b"", "", 0), payload=good.payload + b"\x38\x01")
    assert _reason(verify_approval(g, g, extra)) is Reason.NON_CANONICAL
    bad_keyid = Envelope(good.payload_type, good.payload, (Signature("Lab A", b"x" * 64),))
    assert _reason(verify_approval(g, g, bad_keyid)) is Reason.UNKNOWN_MEMBER


def test_the_encoding_is_the_deterministic_protobuf_encoding() -> None:
    g = _genesis()
    a = CharterApproval(g.federation_id, 1, g.digest, b"", "lab-a", T)
    pb = governance_pb2.CharterApproval(
        federation_id=g.federation_id,
        version=1,
        charter_digest=g.digest,
        member="lab-a",
        issued_at_ms=T,
    )
    assert encode_approval(a) == pb.SerializeToString(deterministic=True)
    assert decode_approval(encode_approval(a)) == a
