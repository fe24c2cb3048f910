"""The error tree: every deliberate error is a PausenetError, format errors are also ValueErrors,
and rejection reasons are one StrEnum whose strings never change."""

from __future__ import annotations

import inspect
import re

import pytest
from helpers import T0, make_federation

import pausenet.errors as errors_mod
from pausenet.core.answer import decode_answer, sign_answer
from pausenet.core.dsse import Envelope
from pausenet.core.keys import PublicKey, SigningKey
from pausenet.core.view import evaluate
from pausenet.errors import (
    AddressError,
    CodecError,
    EnvelopeFormatError,
    FormatError,
    KeyFormatError,
    NonceError,
    PausenetError,
    PeerError,
    Reason,
    VerificationError,
)
from pausenet.node import gossip
from pausenet.node.config import parse_host_port
from pausenet.node.limits import PENALTIES, PeerGuard
from pausenet.node.replica import IngestReport

ERROR_CLASSES = [
    obj
    for name in errors_mod.__all__
    if inspect.isclass(obj := getattr(errors_mod, name)) and issubclass(obj, BaseException)
]


def test_every_error_is_in_the_tree_and_drawn_in_the_docstring() -> None:
    doc = errors_mod.__doc__ or ""
    for cls in ERROR_CLASSES:
        assert issubclass(cls, PausenetError), cls
        assert cls.__name__.endswith("Error")
        assert re.search(rf"\b{cls.__name__}\b", doc), f"{cls.__name__} missing from the tree"
    drawn = set(re.findall(r"(?:── |^    )(\w+Error)\b", doc, flags=re.MULTILINE))
    assert drawn == {c.__name__ for c in ERROR_CLASSES}


@pytest.mark.parametrize(
    "cls", [FormatError, KeyFormatError, AddressError, NonceError, EnvelopeFormatError, CodecError]
)
def test_format_errors_are_also_value_errors(cls: type[Exception]) -> None:
    """Callers written against the builtin (`except ValueError`) keep working."""
    assert issubclass(cls, ValueError)
    assert issubclass(cls, FormatError)


def test_peer_error_is_the_tree_s_and_gossip_still_exports_it() -> None:
    assert gossip.PeerError is PeerError
    assert issubclass(PeerError, PausenetError)
    assert not issubclass(PeerError, ValueError)


def test_keys_raise_key_format_error() -> None:
    with pytest.raises(KeyFormatError, match="32 bytes"):
        PublicKey(b"x" * 31)
    with pytest.raises(KeyFormatError, match="not hex"):
        PublicKey.from_hex("zz" * 32)
    with pytest.raises(KeyFormatError, match="64 hex digits"):
        PublicKey.from_hex("ab" * 31)
    with pytest.raises(KeyFormatError, match="seed is 32 bytes"):
        SigningKey(b"x" * 33)


@pytest.mark.parametrize(
    "text",
    ["7400", "::1:7400", "[zz]:1", "bad_host:1", "host:port", "host:70000", "٧.٧:7400"],
)
def test_parse_host_port_raises_address_error(text: str) -> None:
    with pytest.raises(AddressError):
        parse_host_port(text)


@pytest.mark.parametrize(
    "obj",
    [
        [],
        {"payload": "", "signatures": []},
        {"payloadType": "t", "payload": "!!", "signatures": []},
        {"payloadType": "t", "payload": "", "signatures": {}},
        {"payloadType": "t", "payload": "", "signatures": [{"keyid": 1, "sig": ""}]},
    ],
)
def test_envelope_from_json_raises_envelope_format_error(obj: object) -> None:
    with pytest.raises(EnvelopeFormatError):
        Envelope.from_json(obj)


def test_answers_raise_codec_and_nonce_errors() -> None:
    charter, keys = make_federation()
    view = evaluate(charter, [], T0)
    with pytest.raises(NonceError, match="16 to 64 bytes, got 3"):
        sign_answer(keys["lab-a"], charter, "lab-a", b"abc", view)
    with pytest.raises(CodecError) as info:
        decode_answer(b"\xff\xff\xff")
    assert info.value.reason is Reason.MALFORMED
    with pytest.raises(CodecError) as info:
        decode_answer(b"")
    assert info.value.reason is Reason.INVALID


def test_codec_and_verification_errors_carry_a_reason() -> None:
    assert CodecError("non-canonical", "x").reason is Reason.NON_CANONICAL
    e = VerificationError(Reason.BAD_SIGNATURE, "does not verify")
    assert (e.reason, str(e)) == (Reason.BAD_SIGNATURE, "bad-signature: does not verify")


def test_reason_strings_never_change() -> None:
    """They appear in JSON output, counters (`rejected.<reason>`), logs and docs/protocol.md."""
    assert sorted(r.value for r in Reason) == sorted(
        [
            "oversize",
            "unknown-payload-type",
            "bad-signature",
            "unknown-member",
            "malformed",
            "non-canonical",
            "member-mismatch",
            "wrong-charter",
            "unknown-version",
            "from-future",
            "invalid",
            "duplicate",
            "missing-predecessor",
            "broken-chain",
            "superseded",
            "gap",
            "type-confusion",
            "bad-evidence",
            "quota",
        ]
    )


def test_penalties_are_keyed_by_reason_and_counters_and_logs_read_as_strings() -> None:
    assert all(isinstance(r, Reason) for r in PENALTIES)
    report = IngestReport()
    report.reject(Reason.GAP)
    report.reject(Reason.GAP)
    assert str(dict(report.rejected)) == "{'gap': 2}"  # as logged
    g = PeerGuard({})
    g.judge("lab-x", report.rejected, accepted=0, now_s=0.0)
    assert g.stats() == {"rejected.gap": 2}
    assert f"rejected.{Reason.TYPE_CONFUSION}" == "rejected.type-confusion"
