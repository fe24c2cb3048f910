"""DSSE: the pre-authentication encoding, signing, and the standard JSON form."""

from __future__ import annotations

import base64
import json
from typing import Any

import nacl.signing
import pytest

from pausenet.core.dsse import Envelope, Signature, pae, sha256, sign_envelope
from pausenet.core.keys import SigningKey

KEY = SigningKey(bytes(range(32)))


def test_pae_matches_spec_example() -> None:
    # The example from the DSSE v1 specification (protocol.md).
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_empty_and_binary() -> None:
    assert pae("", b"") == b"DSSEv1 0  0 "
    assert pae("t", b"\x00 \xff") == b"DSSEv1 1 t 3 \x00 \xff"


def test_pae_counts_utf8_bytes_not_characters() -> None:
    assert pae("é", b"x") == b"DSSEv1 2 \xc3\xa9 1 x"


def test_pae_separates_type_from_payload() -> None:
    # Moving bytes between type and payload changes the encoding.
    assert pae("a b", b"c") != pae("a", b"b c")


def test_sign_envelope_signs_pae() -> None:
    env = sign_envelope(KEY, "lab-a", "t/x", b"payload")
    assert env.payload_type == "t/x"
    assert env.payload == b"payload"
    assert len(env.signatures) == 1
    assert env.signatures[0].keyid == "lab-a"
    # Independent check with nacl directly.
    nacl.signing.VerifyKey(KEY.public_key.raw).verify(pae("t/x", b"payload"), env.signatures[0].sig)
    assert env.payload_hash == sha256(b"payload")


def test_json_round_trip() -> None:
    env = sign_envelope(KEY, "lab-a", "t/x", bytes(range(256)))
    obj = env.to_json()
    assert set(obj) == {"payloadType", "payload", "signatures"}
    assert base64.b64decode(obj["payload"]) == env.payload
    again = Envelope.from_json(json.loads(json.dumps(obj)))
    assert again == env


def test_json_multiple_signatures_and_empty_keyid() -> None:
    env = Envelope("t", b"p", (Signature("", b"\x01" * 64), Signature("k", b"\x02" * 64)))
    assert Envelope.from_json(env.to_json()) == env
    obj = env.to_json()
    del obj["signatures"][0]["keyid"]  # keyid is optional in DSSE
    assert Envelope.from_json(obj).signatures[0].keyid == ""


def test_json_accepts_url_safe_base64() -> None:
    payload = b"\xfb\xff\xfe"  # base64 '+//+' vs url-safe '-__-'
    obj = {
        "payloadType": "t",
        "payload": base64.urlsafe_b64encode(payload).decode(),
        "signatures": [{"keyid": "k", "sig": base64.urlsafe_b64encode(b"\xff" * 64).decode()}],
    }
    env = Envelope.from_json(obj)
    assert env.payload == payload
    assert env.signatures[0].sig == b"\xff" * 64


def _good() -> dict[str, Any]:
    return sign_envelope(KEY, "lab-a", "t", b"p").to_json()


def _with(**changes: Any) -> dict[str, Any]:
    obj = _good()
    for k, v in changes.items():
        if v is _DROP:
            del obj[k]
        else:
            obj[k] = v
    return obj


_DROP = object()


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        "envelope",
        42,
        _with(payloadType=_DROP),
        _with(payloadType=7),
        _with(payloadType=None),
        _with(payload=_DROP),
        _with(payload=12),
        _with(payload="not base64!!"),
        _with(payload="abc"),  # bad padding in both alphabets
        _with(payload="YWJj ZA=="),  # whitespace is not skipped
        _with(payload="YWJj*ZA=="),  # nor are other non-alphabet characters
        _with(payload="YQ==YQ=="),  # padding in the middle
        _with(payload="é"),
        _with(signatures=_DROP),
        _with(signatures={"keyid": "k"}),
        _with(signatures="sig"),
        _with(signatures=["sig"]),
        _with(signatures=[{"keyid": "k"}]),
        _with(signatures=[{"keyid": "k", "sig": 5}]),
        _with(signatures=[{"keyid": 5, "sig": "AAAA"}]),
        _with(signatures=[{"keyid": "k", "sig": "*"}]),
    ],
)
def test_malformed_json_raises_value_error(obj: object) -> None:
    with pytest.raises(ValueError, match=r"envelope|signature|base64"):
        Envelope.from_json(obj)
