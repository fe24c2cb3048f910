"""Verification of single envelopes: one test per offline threat of DESIGN.md §6.

Each test mounts the attack: it builds the hostile envelope (signing whatever bytes the attacker
can sign) and checks that verification rejects it for the right reason.
"""

from __future__ import annotations

import dataclasses

import pytest
from helpers import (
    T0,
    attest,
    comply,
    heartbeat_for,
    key_for,
    lift,
    log_for,
    make_federation,
    pause,
)

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, Signature, sha256, sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import encode_heartbeat, encode_statement
from pausenet.core.records import (
    HEARTBEAT_TYPE,
    MAX_SEQ,
    STATEMENT_TYPE,
    Body,
    Compliance,
    ComplianceState,
    Decision,
    Heartbeat,
    SignedHeartbeat,
    SignedStatement,
    Statement,
    TriggerAttestation,
    Vote,
)
from pausenet.core.signing import build_statement
from pausenet.core.verify import Reason, Rejection, verify_envelope, verify_or_raise
from pausenet.errors import VerificationError

NOW = T0 + 60_000
PREV = bytes(32)


def _stmt(
    charter: Charter,
    member: str = "lab-a",
    body: Body | None = None,
    *,
    seq: int = 1,
    prev: bytes | None = None,
    issued: int = T0,
) -> Statement:
    if prev is None:
        prev = b"" if seq == 1 else PREV
    return build_statement(charter, member, seq, prev, issued, body or pause(1))


def _signed(
    charter: Charter, member: str = "lab-a", body: Body | None = None, **kw: int
) -> Envelope:
    """A statement by member, signed by member's own key (the attacker is a member)."""
    payload = encode_statement(_stmt(charter, member, body, **kw))  # type: ignore[arg-type]
    return sign_envelope(key_for(member), member, STATEMENT_TYPE, payload)


def _hb(charter: Charter, member: str = "lab-a", **changes: object) -> Heartbeat:
    hb = Heartbeat(charter.federation_id, charter.digest, member, 0, b"", 1, T0)
    return dataclasses.replace(hb, **changes)  # type: ignore[arg-type]


def _signed_hb(charter: Charter, member: str = "lab-a", **changes: object) -> Envelope:
    payload = encode_heartbeat(_hb(charter, member, **changes))
    return sign_envelope(key_for(member), member, HEARTBEAT_TYPE, payload)


def _rejected(charter: Charter, env: Envelope, reason: Reason, now: int = NOW) -> Rejection:
    result = verify_envelope(charter, env, now_ms=now)
    assert isinstance(result, Rejection), f"expected {reason.value}, got accepted"
    assert result.reason is reason, str(result)
    assert result.payload_hash == sha256(env.payload)
    return result


def _accepted(charter: Charter, env: Envelope, now: int = NOW) -> SignedStatement | SignedHeartbeat:
    result = verify_envelope(charter, env, now_ms=now)
    assert not isinstance(result, Rejection), str(result)
    return result


# -- the honest case ------------------------------------------------------------------------


def test_valid_statements_and_heartbeat_accepted(
    charter: Charter, keys: dict[str, SigningKey]
) -> None:
    log = log_for(
        charter, keys["lab-a"], "lab-a", [pause(1), attest(evidence=b"e"), comply(1), lift(1)]
    )
    for s in log:
        got = _accepted(charter, s.envelope)
        assert isinstance(got, SignedStatement)
        assert got.statement == s.statement
        assert got.envelope is s.envelope
        assert got.hash == sha256(s.envelope.payload)
    hb = heartbeat_for(charter, keys["lab-a"], "lab-a", log, 3, T0, address="127.0.0.1:7400")
    got = _accepted(charter, hb.envelope)
    assert isinstance(got, SignedHeartbeat)
    assert got.heartbeat == hb.heartbeat
    assert got.heartbeat.head_seq == 4


def test_verify_or_raise(charter: Charter) -> None:
    env = _signed(charter)
    assert isinstance(verify_or_raise(charter, env, now_ms=NOW), SignedStatement)
    forged = dataclasses.replace(env, signatures=(Signature("lab-a", bytes(64)),))
    with pytest.raises(VerificationError) as exc:
        verify_or_raise(charter, forged, now_ms=NOW)
    assert exc.value.reason == "bad-signature"
    assert str(exc.value).startswith("bad-signature: ")


def test_rejection_is_falsy_and_readable(charter: Charter) -> None:
    r = _rejected(charter, _signed(charter, "lab-a", issued=NOW + 31_000), Reason.FROM_FUTURE)
    assert not r
    assert str(r).startswith("from-future from lab-a: ")


# -- forged and unknown-key statements ------------------------------------------------------


def test_forged_signature_rejected(charter: Charter) -> None:
    env = _signed(charter)
    sig = env.signatures[0].sig
    for bad in (bytes([sig[0] ^ 1]) + sig[1:], sig[:-1] + bytes([sig[-1] ^ 0x80]), bytes(64)):
        forged = dataclasses.replace(env, signatures=(Signature("lab-a", bad),))
        _rejected(charter, forged, Reason.BAD_SIGNATURE)


def test_tampered_payload_rejected(charter: Charter) -> None:
    env = _signed(charter, body=pause(1))
    other = encode_statement(_stmt(charter, body=lift(1)))
    _rejected(charter, dataclasses.replace(env, payload=other), Reason.BAD_SIGNATURE)


def test_signature_of_wrong_length_rejected(charter: Charter) -> None:
    env = _signed(charter)
    sig = env.signatures[0].sig
    for bad in (b"", sig[:63], sig + b"\x00"):
        _rejected(
            charter,
            dataclasses.replace(env, signatures=(Signature("lab-a", bad),)),
            Reason.BAD_SIGNATURE,
        )


def test_non_member_signer_rejected(charter: Charter) -> None:
    mallory = SigningKey(b"m" * 32)
    payload = encode_statement(_stmt(charter, "mallory"))
    _rejected(
        charter, sign_envelope(mallory, "mallory", STATEMENT_TYPE, payload), Reason.UNKNOWN_MEMBER
    )


@pytest.mark.parametrize("keyid", ["", "Lab-A", "lab a", "x" * 65, "lab-a\n", "🙂"])
def test_keyid_that_is_not_a_member_id_rejected(charter: Charter, keyid: str) -> None:
    payload = encode_statement(_stmt(charter))
    env = sign_envelope(key_for("lab-a"), keyid, STATEMENT_TYPE, payload)
    _rejected(charter, env, Reason.UNKNOWN_MEMBER)


def test_unknown_key_claiming_a_member_rejected(charter: Charter) -> None:
    mallory = SigningKey(b"m" * 32)
    payload = encode_statement(_stmt(charter, "lab-a"))
    env = sign_envelope(mallory, "lab-a", STATEMENT_TYPE, payload)
    _rejected(charter, env, Reason.BAD_SIGNATURE)


def test_keyid_names_a_but_signed_by_b(charter: Charter) -> None:
    payload = encode_statement(_stmt(charter, "lab-a"))
    env = sign_envelope(key_for("lab-b"), "lab-a", STATEMENT_TYPE, payload)
    _rejected(charter, env, Reason.BAD_SIGNATURE)


def test_member_b_signs_a_statement_naming_a(charter: Charter) -> None:
    # B signs honestly as B, but the payload claims to be A's statement.
    payload = encode_statement(_stmt(charter, "lab-a"))
    env = sign_envelope(key_for("lab-b"), "lab-b", STATEMENT_TYPE, payload)
    r = _rejected(charter, env, Reason.MEMBER_MISMATCH)
    assert r.member == "lab-b"
    hb = encode_heartbeat(_hb(charter, "lab-a"))
    env = sign_envelope(key_for("lab-b"), "lab-b", HEARTBEAT_TYPE, hb)
    _rejected(charter, env, Reason.MEMBER_MISMATCH)


# -- type confusion -------------------------------------------------------------------------


def test_payload_type_swapped_breaks_signature(charter: Charter) -> None:
    st = _signed(charter)
    hb = _signed_hb(charter)
    _rejected(charter, dataclasses.replace(st, payload_type=HEARTBEAT_TYPE), Reason.BAD_SIGNATURE)
    _rejected(charter, dataclasses.replace(hb, payload_type=STATEMENT_TYPE), Reason.BAD_SIGNATURE)


def test_statement_bytes_signed_as_heartbeat_rejected(charter: Charter) -> None:
    # Even a member who signs a statement payload under the heartbeat type gets nothing counted.
    payload = encode_statement(_stmt(charter))
    env = sign_envelope(key_for("lab-a"), "lab-a", HEARTBEAT_TYPE, payload)
    assert not verify_envelope(charter, env, now_ms=NOW)
    _rejected(charter, env, Reason.NON_CANONICAL)


def test_heartbeat_bytes_signed_as_statement_rejected(charter: Charter) -> None:
    payload = encode_heartbeat(_hb(charter, head_seq=1, head_hash=PREV))
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, payload)
    _rejected(charter, env, Reason.NON_CANONICAL)


@pytest.mark.parametrize(
    "ptype",
    [
        "",
        "application/vnd.pausenet.statement.v2+protobuf",
        "application/vnd.pausenet.statement.v1+json",
        STATEMENT_TYPE.upper(),
        STATEMENT_TYPE + " ",
        "x" * 10_000,
    ],
)
def test_unknown_payload_type_rejected(charter: Charter, ptype: str) -> None:
    payload = encode_statement(_stmt(charter))
    r = _rejected(
        charter,
        sign_envelope(key_for("lab-a"), "lab-a", ptype, payload),
        Reason.UNKNOWN_PAYLOAD_TYPE,
    )
    assert len(r.detail) < 200


# -- re-serialization tricks ----------------------------------------------------------------


def test_reencoded_statement_with_valid_signature_is_non_canonical(charter: Charter) -> None:
    canonical = encode_statement(_stmt(charter, seq=1))
    assert _accepted(charter, sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, canonical))
    # seq=1 is the 2-byte field b"\x20\x01"; write it with a padded varint instead.
    assert canonical.count(b"\x20\x01") == 1
    variants = [
        canonical.replace(b"\x20\x01", b"\x20\x81\x00"),  # non-minimal varint
        canonical + b"\x20\x01",  # field repeated (last one wins on parse)
        canonical + b"\xf8\x07\x00",  # unknown field 127
        b"\x20\x01" + canonical.replace(b"\x20\x01", b""),  # fields reordered
    ]
    hashes = {sha256(canonical)}
    for data in variants:
        env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, data)
        _rejected(charter, env, Reason.NON_CANONICAL)
        hashes.add(sha256(data))
    assert len(hashes) == len(variants) + 1  # each would otherwise be a second "same" statement


def test_reencoded_heartbeat_is_non_canonical(charter: Charter) -> None:
    data = encode_heartbeat(_hb(charter)) + b"\x30\x01"  # counter repeated
    _rejected(
        charter,
        sign_envelope(key_for("lab-a"), "lab-a", HEARTBEAT_TYPE, data),
        Reason.NON_CANONICAL,
    )


# -- mix-and-match across charters ----------------------------------------------------------


def test_wrong_charter_digest_rejected(charter: Charter) -> None:
    # Same federation id and the same keys, but a different rulebook.
    other, _ = make_federation(pause_threshold=1)
    assert other.federation_id == charter.federation_id
    assert other.digest != charter.digest
    _rejected(charter, _signed(other), Reason.WRONG_CHARTER)
    _rejected(charter, _signed_hb(other), Reason.WRONG_CHARTER)
    assert _accepted(other, _signed(other))


def test_wrong_federation_id_rejected(charter: Charter) -> None:
    st = dataclasses.replace(_stmt(charter), federation_id="other-federation")
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, encode_statement(st))
    _rejected(charter, env, Reason.WRONG_CHARTER)
    hb = _signed_hb(charter, federation_id="other-federation")
    _rejected(charter, hb, Reason.WRONG_CHARTER)


@pytest.mark.parametrize("digest", [b"", bytes(31), bytes(32)])
def test_malformed_charter_digest_rejected(charter: Charter, digest: bytes) -> None:
    st = dataclasses.replace(_stmt(charter), charter_digest=digest)
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, encode_statement(st))
    _rejected(charter, env, Reason.WRONG_CHARTER)


# -- fast-forward: seqs near 2^63 -----------------------------------------------------------


@pytest.mark.parametrize("seq", [2**63, 2**64 - 1, 0])
def test_out_of_range_seq_rejected(charter: Charter, seq: int) -> None:
    r = _rejected(charter, _signed(charter, seq=seq), Reason.INVALID)
    assert "seq" in r.detail


def test_max_seq_accepted(charter: Charter) -> None:
    got = _accepted(charter, _signed(charter, seq=MAX_SEQ))
    assert isinstance(got, SignedStatement)
    assert got.seq == 2**63 - 1


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"head_seq": 2**63, "head_hash": PREV}, "head_seq"),
        ({"head_seq": 2**64 - 1, "head_hash": PREV}, "head_seq"),
        ({"counter": 2**63}, "counter"),
        ({"counter": 2**64 - 1}, "counter"),
        ({"counter": 0}, "counter"),
    ],
)
def test_out_of_range_heartbeat_rejected(
    charter: Charter, changes: dict[str, object], words: str
) -> None:
    r = _rejected(charter, _signed_hb(charter, **changes), Reason.INVALID)
    assert words in r.detail


def test_max_heartbeat_values_accepted(charter: Charter) -> None:
    assert _accepted(
        charter, _signed_hb(charter, head_seq=MAX_SEQ, head_hash=PREV, counter=MAX_SEQ)
    )


@pytest.mark.parametrize("epoch", [0, 2**63, 2**64 - 1])
def test_out_of_range_epoch_rejected(charter: Charter, epoch: int) -> None:
    _rejected(charter, _signed(charter, body=pause(epoch)), Reason.INVALID)
    _rejected(charter, _signed(charter, body=lift(epoch)), Reason.INVALID)
    _rejected(charter, _signed(charter, body=comply(epoch)), Reason.INVALID)


@pytest.mark.parametrize("epoch", [2**63, 2**64 - 1])
def test_attestation_epoch_beyond_max_seq_rejected(charter: Charter, epoch: int) -> None:
    body = TriggerAttestation("rsi-detected", epoch=epoch)
    r = _rejected(charter, _signed(charter, body=body), Reason.INVALID)
    assert "attestation epoch" in r.detail


@pytest.mark.parametrize("epoch", [0, 1, MAX_SEQ])
def test_attestation_bound_to_no_epoch_or_any_epoch_in_range_is_valid(
    charter: Charter, epoch: int
) -> None:
    got = _accepted(charter, _signed(charter, body=TriggerAttestation("rsi-detected", epoch=epoch)))
    assert isinstance(got.statement.body, TriggerAttestation)
    assert got.statement.body.epoch == epoch


# -- timestamps from the future or far past, clock skew -------------------------------------


def test_timestamp_beyond_skew_rejected_within_skew_accepted(charter: Charter) -> None:
    skew = charter.rules.max_clock_skew_s * 1000
    assert skew == 30_000
    assert _accepted(charter, _signed(charter, issued=NOW + skew))
    r = _rejected(charter, _signed(charter, issued=NOW + skew + 1), Reason.FROM_FUTURE)
    assert "30000 ms" in r.detail
    assert _accepted(charter, _signed_hb(charter, issued_at_ms=NOW + skew))
    _rejected(charter, _signed_hb(charter, issued_at_ms=NOW + skew + 1), Reason.FROM_FUTURE)


def test_zero_skew_charter(charter: Charter) -> None:
    strict, _ = make_federation(max_clock_skew_s=0)
    assert _accepted(strict, _signed(strict, issued=NOW))
    _rejected(strict, _signed(strict, issued=NOW + 1), Reason.FROM_FUTURE)


@pytest.mark.parametrize("issued", [0, -1, -(2**63)])
def test_non_positive_timestamp_rejected(charter: Charter, issued: int) -> None:
    _rejected(charter, _signed(charter, issued=issued), Reason.INVALID)
    _rejected(charter, _signed_hb(charter, issued_at_ms=issued), Reason.INVALID)


def test_old_timestamp_is_not_rejected_here(charter: Charter) -> None:
    # Statements are kept forever: age alone does not invalidate one (staleness is the view's job).
    assert _accepted(charter, _signed(charter, issued=1))


# -- oversized or malformed payloads --------------------------------------------------------


def test_oversized_statement_rejected_at_the_limit() -> None:
    charter, _ = make_federation(limits={"max_note_chars": 100_000})
    limit = charter.limits.max_statement_bytes

    def env_with_note(n: int) -> Envelope:
        return _signed(charter, body=Vote(1, Decision.PAUSE, ("rsi-detected",), "x" * n))

    # The note's and the vote's length prefixes each grow by one byte past 127.
    n = limit - len(env_with_note(0).payload) - 2 - 2
    assert len(env_with_note(n).payload) == limit
    assert _accepted(charter, env_with_note(n))
    r = _rejected(charter, env_with_note(n + 1), Reason.OVERSIZE)
    assert str(limit) in r.detail


def test_oversize_checked_before_signature(charter: Charter) -> None:
    # A flood of huge junk costs no signature check and no parse.
    junk = Envelope(STATEMENT_TYPE, b"\xff" * (1024 * 1024), (Signature("lab-a", bytes(64)),))
    _rejected(charter, junk, Reason.OVERSIZE)
    junk_hb = Envelope(HEARTBEAT_TYPE, b"\x00" * 1025, (Signature("nobody", b""),))
    _rejected(charter, junk_hb, Reason.OVERSIZE)


def test_oversized_heartbeat_rejected(charter: Charter) -> None:
    env = _signed_hb(charter, address="a" * 1000 + ":1")
    _rejected(charter, env, Reason.OVERSIZE)


@pytest.mark.parametrize(
    "data", [b"\xff" * 11, b"\x0a\x05ab", b"\x0f", b"not protobuf at all", b"\x0a\x02\xff\xfe"]
)
def test_malformed_protobuf_with_valid_signature(charter: Charter, data: bytes) -> None:
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, data)
    r = _rejected(charter, env, Reason.MALFORMED)
    assert r.member == "lab-a"
    env = sign_envelope(key_for("lab-a"), "lab-a", HEARTBEAT_TYPE, data)
    _rejected(charter, env, Reason.MALFORMED)


def test_statement_without_body_with_valid_signature(charter: Charter) -> None:
    data = encode_statement(_stmt(charter))
    no_body = data[: data.index(b"\x52")]  # cut at field 10 (the vote)
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, no_body)
    r = _rejected(charter, env, Reason.INVALID)
    assert "no body" in r.detail


# -- signatures: exactly one ----------------------------------------------------------------


def test_multiple_signatures_rejected(charter: Charter) -> None:
    env = _signed(charter)
    # Even when every signature is valid, and even when both are the same member's.
    again = Signature("lab-a", env.signatures[0].sig)
    _rejected(
        charter, dataclasses.replace(env, signatures=(env.signatures[0], again)), Reason.MALFORMED
    )
    b_sig = sign_envelope(key_for("lab-b"), "lab-b", STATEMENT_TYPE, env.payload).signatures[0]
    _rejected(
        charter, dataclasses.replace(env, signatures=(env.signatures[0], b_sig)), Reason.MALFORMED
    )


def test_empty_signature_list_rejected(charter: Charter) -> None:
    env = dataclasses.replace(_signed(charter), signatures=())
    _rejected(charter, env, Reason.MALFORMED)


# -- statement rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (Vote(1, Decision.PAUSE, ("made-up",)), "unknown trigger"),
        (Vote(1, Decision.PAUSE, ("rsi-detected", "made-up")), "unknown trigger"),
        (Vote(1, Decision.PAUSE, ("RSI-DETECTED",)), "unknown trigger"),
        (Vote(1, Decision.PAUSE, ()), "at least one"),
        (Vote(1, Decision.PAUSE, ("rsi-detected", "rsi-detected")), "twice"),
        (Vote(1, Decision.LIFT, ("rsi-detected",)), "LIFT vote names no triggers"),
        (Vote(1, Decision.PAUSE, ("rsi-detected",), "n" * 2001), "note"),
        (TriggerAttestation("made-up"), "unknown trigger"),
        (TriggerAttestation("rsi-detected", bytes(31)), "evidence_sha256"),
        (TriggerAttestation("rsi-detected", b"", "n" * 2001), "note"),
        (Compliance(1, ComplianceState.HALTED, bytes(33)), "evidence_sha256"),
    ],
)
def test_invalid_bodies_rejected(charter: Charter, body: Body, words: str) -> None:
    r = _rejected(charter, _signed(charter, body=body), Reason.INVALID)
    assert words in r.detail


def test_too_many_triggers_rejected() -> None:
    charter, _ = make_federation(limits={"max_triggers_per_vote": 1})
    body = Vote(1, Decision.PAUSE, ("rsi-detected", "eval-threshold"))
    r = _rejected(charter, _signed(charter, body=body), Reason.INVALID)
    assert "limit 1" in r.detail
    assert _accepted(charter, _signed(charter, body=pause(1, "eval-threshold")))


def test_overseer_pause_vote_when_overseers_cannot_pause(charter: Charter) -> None:
    assert charter.rules.overseer_pause_threshold == 0
    r = _rejected(charter, _signed(charter, "overseer-a", body=pause(1)), Reason.INVALID)
    assert "overseers" in r.detail
    # …but an overseer may vote LIFT and attest triggers.
    assert _accepted(charter, _signed(charter, "overseer-a", body=lift(1)))
    assert _accepted(charter, _signed(charter, "overseer-a", body=attest()))


def test_overseer_pause_vote_when_charter_allows_it() -> None:
    charter, _ = make_federation(overseer_pause_threshold=1)
    assert _accepted(charter, _signed(charter, "overseer-a", body=pause(1)))


def test_compliance_from_overseer_rejected(charter: Charter) -> None:
    r = _rejected(charter, _signed(charter, "overseer-a", body=comply(1)), Reason.INVALID)
    assert "only labs" in r.detail
    assert _accepted(charter, _signed(charter, "lab-a", body=comply(1, ComplianceState.NOT_HALTED)))


@pytest.mark.parametrize(
    ("seq", "prev", "words"),
    [(1, PREV, "empty for seq 1"), (2, b"", "32 bytes"), (2, bytes(31), "32 bytes")],
)
def test_chain_link_shape_rejected(charter: Charter, seq: int, prev: bytes, words: str) -> None:
    r = _rejected(charter, _signed(charter, seq=seq, prev=prev), Reason.INVALID)
    assert words in r.detail


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"head_seq": 0, "head_hash": PREV}, "empty when head_seq is 0"),
        ({"head_seq": 3, "head_hash": b""}, "32 bytes"),
        ({"head_seq": 3, "head_hash": bytes(33)}, "32 bytes"),
        ({"address": "not an address"}, "host:port"),
        ({"address": "host"}, "host:port"),
        ({"address": "host:123456"}, "host:port"),
    ],
)
def test_invalid_heartbeats_rejected(
    charter: Charter, changes: dict[str, object], words: str
) -> None:
    r = _rejected(charter, _signed_hb(charter, **changes), Reason.INVALID)
    assert words in r.detail


@pytest.mark.parametrize("address", ["", "node-1.example.org:7400", "10.0.0.1:1", "[::1]:7400"])
def test_heartbeat_addresses_accepted(charter: Charter, address: str) -> None:
    assert _accepted(charter, _signed_hb(charter, address=address))


# -- which reason wins when several apply (docs/protocol.md §6) ------------------------------


def test_the_first_failing_step_gives_the_reason(charter: Charter) -> None:
    good = _signed(charter)
    huge = Envelope("application/x-other", b"x" * 10**6, good.signatures)
    _rejected(charter, huge, Reason.UNKNOWN_PAYLOAD_TYPE)  # step 1 before step 2
    no_sig = dataclasses.replace(good, payload=b"x" * 10**6, signatures=())
    _rejected(charter, no_sig, Reason.OVERSIZE)  # step 2 before step 3
    forged_junk = Envelope(STATEMENT_TYPE, good.payload + b"\x00", good.signatures)
    _rejected(charter, forged_junk, Reason.BAD_SIGNATURE)  # step 5 before parsing (step 6)
    other, _ = make_federation(federation_id="other")
    foreign_future = build_statement(other, "lab-a", 1, b"", NOW + 10**9, pause(1))
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, encode_statement(foreign_future))
    _rejected(charter, env, Reason.WRONG_CHARTER)  # step 8 before step 9
    imposter = dataclasses.replace(foreign_future, member="lab-b")
    env = sign_envelope(key_for("lab-a"), "lab-a", STATEMENT_TYPE, encode_statement(imposter))
    _rejected(charter, env, Reason.MEMBER_MISMATCH)  # step 7 before step 8
