"""Codec: round trips, and rejection of every non-canonical or malformed encoding.

The byte strings below are built by hand (with a tiny protobuf wire writer) so the tests do not
trust the code they check: `_statement_bytes` is first shown to match `encode_statement`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pausenet.core.dsse import Envelope, Signature
from pausenet.core.payload import (
    CodecError,
    decode_heartbeat,
    decode_statement,
    encode_heartbeat,
    encode_statement,
)
from pausenet.core.records import (
    Body,
    Compliance,
    ComplianceState,
    Decision,
    Heartbeat,
    Statement,
    TriggerAttestation,
    Vote,
)
from pausenet.node.wire import decode_envelope, encode_envelope

DIGEST = bytes(range(32))
PREV = bytes(range(32, 64))
EVIDENCE = bytes(range(64, 96))
T = 1_700_000_000_000

BODIES: dict[str, Body] = {
    "pause": Vote(1, Decision.PAUSE, ("rsi-detected", "eval-threshold"), "see report"),
    "pause-no-note": Vote(3, Decision.PAUSE, ("rsi-detected",)),
    "lift": Vote(2, Decision.LIFT),
    "halted": Compliance(1, ComplianceState.HALTED, EVIDENCE),
    "not-halted": Compliance(7, ComplianceState.NOT_HALTED),
    "attestation": TriggerAttestation("rsi-detected", EVIDENCE, "run 42 — ünïcode"),
    "attestation-bare": TriggerAttestation("eval-threshold"),
    "attestation-epoch": TriggerAttestation("rsi-detected", EVIDENCE, "tripwire", 3),
}


def _statement(body: Body, seq: int = 2, prev: bytes = PREV) -> Statement:
    return Statement("fed", DIGEST, "lab-a", seq, prev, T, body)


HEARTBEATS = {
    "full": Heartbeat("fed", DIGEST, "lab-a", 5, PREV, 9, T, "node.example:7400"),
    "empty-log": Heartbeat("fed", DIGEST, "lab-a", 0, b"", 1, T),
}


# -- a minimal protobuf wire writer -----------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vi(field: int, n: int) -> bytes:
    return varint(field << 3) + varint(n)


def ld(field: int, data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return varint(field << 3 | 2) + varint(len(raw)) + raw


def _head(seq: int = 2) -> list[bytes]:
    """Statement fields 1..6 of _statement(…), in canonical order."""
    return [ld(1, "fed"), ld(2, DIGEST), ld(3, "lab-a"), vi(4, seq), ld(5, PREV), vi(6, T)]


def _lift_vote() -> bytes:
    return ld(10, vi(1, 2) + vi(2, 2))


def _statement_bytes(*parts: bytes) -> bytes:
    return b"".join(parts)


CANONICAL_LIFT = _statement_bytes(*_head(), _lift_vote())


def test_hand_written_encoding_matches_codec() -> None:
    assert encode_statement(_statement(BODIES["lift"])) == CANONICAL_LIFT
    hb = HEARTBEATS["empty-log"]
    assert encode_heartbeat(hb) == ld(1, "fed") + ld(2, DIGEST) + ld(3, "lab-a") + vi(6, 1) + vi(
        7, T
    )


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BODIES))
def test_statement_round_trip(name: str) -> None:
    s = _statement(BODIES[name])
    data = encode_statement(s)
    assert decode_statement(data) == s
    assert encode_statement(decode_statement(data)) == data


def test_attestation_epoch_is_field_4_and_omitted_when_0() -> None:
    bound = encode_statement(_statement(TriggerAttestation("t", epoch=3)))
    unbound = encode_statement(_statement(TriggerAttestation("t")))
    assert bound == _statement_bytes(*_head(), ld(12, ld(1, "t") + vi(4, 3)))
    # an attestation bound to no epoch keeps the bytes (and hash) it had before the field existed
    assert unbound == _statement_bytes(*_head(), ld(12, ld(1, "t")))


def test_first_statement_round_trip() -> None:
    s = _statement(BODIES["pause"], seq=1, prev=b"")
    assert decode_statement(encode_statement(s)) == s


@pytest.mark.parametrize("name", sorted(HEARTBEATS))
def test_heartbeat_round_trip(name: str) -> None:
    hb = HEARTBEATS[name]
    data = encode_heartbeat(hb)
    assert decode_heartbeat(data) == hb
    assert encode_heartbeat(decode_heartbeat(data)) == data


def test_large_integers_round_trip() -> None:
    # The codec carries any uint64; range rules belong to verification.
    for seq in (2**63 - 1, 2**63, 2**64 - 1):
        s = _statement(BODIES["lift"], seq=seq)
        assert decode_statement(encode_statement(s)).seq == seq


def test_envelope_round_trip() -> None:
    env = Envelope("t", b"\x00payload", (Signature("lab-a", b"\x01" * 64),))
    assert decode_envelope(encode_envelope(env)) == env
    two = Envelope("t", b"p", (Signature("a", b"s"), Signature("b", b"t")))
    assert decode_envelope(encode_envelope(two)) == two


_text = st.text(max_size=40)
_hash = st.one_of(st.just(b""), st.binary(min_size=32, max_size=32))
_u63 = st.integers(min_value=0, max_value=2**63 - 1)
_bodies = st.one_of(
    st.builds(
        Vote,
        _u63,
        st.sampled_from(Decision),
        st.lists(_text, max_size=4).map(tuple),
        _text,
    ),
    st.builds(Compliance, _u63, st.sampled_from(ComplianceState), _hash),
    st.builds(TriggerAttestation, _text, _hash, _text, _u63),
)


@given(
    st.builds(
        Statement,
        _text,
        _hash,
        _text,
        _u63,
        _hash,
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        _bodies,
    )
)
def test_statement_round_trip_property(s: Statement) -> None:
    data = encode_statement(s)
    assert decode_statement(data) == s


@given(
    st.builds(Heartbeat, _text, _hash, _text, _u63, _hash, _u63, st.integers(0, 2**63 - 1), _text)
)
def test_heartbeat_round_trip_property(hb: Heartbeat) -> None:
    assert decode_heartbeat(encode_heartbeat(hb)) == hb


# -- non-canonical encodings ----------------------------------------------------------------


def _non_canonical(data: bytes) -> None:
    with pytest.raises(CodecError) as exc:
        decode_statement(data)
    assert exc.value.reason == "non-canonical", exc.value


NON_CANONICAL = {
    "unknown-field-appended": CANONICAL_LIFT + vi(99, 1),
    "unknown-field-in-vote": _statement_bytes(*_head(), ld(10, vi(1, 2) + vi(2, 2) + ld(9, "x"))),
    "field-duplicated": CANONICAL_LIFT + ld(3, "lab-a"),
    "field-duplicated-other-value": CANONICAL_LIFT + ld(3, "lab-b"),
    "body-duplicated": CANONICAL_LIFT + _lift_vote(),
    "non-minimal-varint": _statement_bytes(
        *_head()[:3], varint(4 << 3) + b"\x82\x00", *_head()[4:], _lift_vote()
    ),
    "non-minimal-length": _statement_bytes(
        varint(1 << 3 | 2) + b"\x83\x00" + b"fed", *_head()[1:], _lift_vote()
    ),
    "non-minimal-tag": _statement_bytes(
        b"\x8a\x00" + varint(3) + b"fed", *_head()[1:], _lift_vote()
    ),
    "non-minimal-varint-in-vote": _statement_bytes(*_head(), ld(10, vi(1, 2) + b"\x10\x82\x00")),
    "reordered-fields": _statement_bytes(
        _head()[2], _head()[0], _head()[1], *_head()[3:], _lift_vote()
    ),
    "body-first": _statement_bytes(_lift_vote(), *_head()),
    "reordered-in-vote": _statement_bytes(*_head(), ld(10, vi(2, 2) + vi(1, 2))),
    "explicit-default": _statement_bytes(*_head(), ld(10, vi(1, 2) + vi(2, 2) + ld(4, ""))),
    "explicit-zero": _statement_bytes(ld(1, "fed"), vi(4, 0), ld(10, vi(2, 2))),
    "negative-int64-as-wrong-width": _statement_bytes(*_head()[:5], vi(6, 2**64 + 5), _lift_vote()),
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
def test_non_canonical_statement_rejected(name: str) -> None:
    _non_canonical(NON_CANONICAL[name])


def test_non_canonical_heartbeat_rejected() -> None:
    data = encode_heartbeat(HEARTBEATS["full"])
    for bad in (data + vi(50, 1), data + ld(3, "lab-a"), vi(4, 0) + data):
        with pytest.raises(CodecError) as exc:
            decode_heartbeat(bad)
        assert exc.value.reason == "non-canonical"


# -- malformed and invalid ------------------------------------------------------------------

GARBAGE = [
    b"\xff" * 11,  # endless varint
    b"\x0a\x05ab",  # length runs past the end
    b"\x0a",  # truncated
    b"\x0f",  # wire type 7 does not exist
    b"\x00\x01",  # field number 0
    ld(1, b"\xff\xfe"),  # invalid UTF-8 in a string field
    b"garbage bytes that are not protobuf",
]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(CodecError) as exc:
        decode_statement(data)
    assert exc.value.reason == "malformed"
    with pytest.raises(CodecError) as exc:
        decode_heartbeat(data)
    assert exc.value.reason == "malformed"


@pytest.mark.parametrize(
    "data",
    [
        _statement_bytes(*_head(), ld(10, vi(1, 2) + vi(2, 2) + ld(4, b"\xff\xfe"))),
        _statement_bytes(*_head(), ld(10, b"\xff\xff")),
        _statement_bytes(*_head(), ld(12, ld(1, b"\xc0\x80"))),  # overlong UTF-8
    ],
)
def test_malformed_body_is_malformed(data: bytes) -> None:
    with pytest.raises(CodecError) as exc:
        decode_statement(data)
    assert exc.value.reason == "malformed"


def test_garbage_envelope_is_malformed() -> None:
    with pytest.raises(CodecError) as exc:
        decode_envelope(b"\xff" * 11)
    assert exc.value.reason == "malformed"


def test_codec_error_is_value_error() -> None:
    assert issubclass(CodecError, ValueError)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "no body"),
        (_statement_bytes(*_head()), "no body"),
        (_statement_bytes(*_head(), ld(10, vi(1, 2))), "decision"),  # UNSPECIFIED
        (_statement_bytes(*_head(), ld(10, vi(1, 2) + vi(2, 7))), "decision"),  # unknown enum
        (_statement_bytes(*_head(), ld(11, vi(1, 1))), "compliance state"),
        (_statement_bytes(*_head(), ld(11, vi(1, 1) + vi(2, 3))), "compliance state"),
    ],
)
def test_invalid_statement(data: bytes, words: str) -> None:
    with pytest.raises(CodecError, match=words) as exc:
        decode_statement(data)
    assert exc.value.reason == "invalid"


def test_a_view_reply_carries_evidence_for_status() -> None:
    from helpers import T0, attest, key_for, log_for, make_federation

    from pausenet.core.view import evaluate
    from pausenet.node.wire import view_reply_to_json, view_to_pb

    charter, _ = make_federation()
    a = log_for(charter, key_for("lab-a"), "lab-a", [attest(note="one")])
    b = log_for(charter, key_for("lab-a"), "lab-a", [attest(note="two")])
    view = evaluate(charter, [*a, *b], T0 + 1000)
    doc = view_reply_to_json(view_to_pb(view, answered_by="lab-b", signed_answer=None))
    assert [(e["member"], e["seq"]) for e in doc["evidence"]] == [("lab-a", 1)]
    assert {doc["evidence"][0]["first"], doc["evidence"][0]["second"]} == {
        a[0].hash.hex(),
        b[0].hash.hex(),
    }
    assert next(m for m in doc["members"] if m["id"] == "lab-a")["equivocator"]
