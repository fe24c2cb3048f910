"""Fuzzing of every decoder and verifier reachable from the network (hypothesis).

Each target gets random input (bytes, JSON, dicts, TOML) and structure-aware mutations of valid
inputs built with tests/helpers.py: bit flips, truncation, splicing, protobuf fields duplicated,
dropped, reordered, retagged or of another wire type, unknown fields, non-minimal varints, field
values set to edge cases, payload types swapped, signatures dropped, corrupted or doubled, and
mutated payloads re-signed with a member key so that the parser and the rules behind the signature
check are reached. The contract (docs/protocol.md §3-§7, §9, §12, DESIGN.md §6):

- decoders raise only the project's own error (`PausenetError`: `CodecError`, `BundleError`,
  `CharterError`, `ConfigError`); `decode_answer` and `Envelope.from_json` raise only `ValueError`,
  which their callers translate (`check_answer` into a problem, `read_bundle` into `BundleError`);
- verifiers never raise, and accept exactly what an independent oracle written from the spec
  accepts: a mutated payload under its original signature never, a re-signed one only when it is
  canonical and valid;
- evidence never frames an honest member, and ingest never changes what is held for one.

300 examples per target under the `ci` hypothesis profile, 60 under `dev`, 3000 under `deep`
(HYPOTHESIS_PROFILE=deep for a longer hunt; tests/conftest.py). Examples run per target are
counted in EXAMPLES and kept in pytest's cache: `pytest --cache-show 'pausenet/fuzz*'`.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import ipaddress
import itertools
import json
import re
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from helpers import (
    T0,
    attest,
    comply,
    federation_data,
    heartbeat_for,
    lift,
    log_for,
    make_federation,
    pause,
)
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from profiles import examples

from pausenet.core.answer import (
    ANSWER_TYPE,
    Answer,
    AnswerCheck,
    check_answer,
    decode_answer,
    sign_answer,
)
from pausenet.core.bundle import check_bundle_answer, read_bundle, view_of_bundle, write_bundle
from pausenet.core.charter import Role, parse_charter
from pausenet.core.dsse import Envelope, Signature, pae, sha256, sign_envelope
from pausenet.core.evidence import Evidence, check_evidence
from pausenet.core.payload import (
    CodecError,
    decode_heartbeat,
    decode_statement,
    encode_heartbeat,
    encode_statement,
)
from pausenet.core.records import (
    HEARTBEAT_TYPE,
    MAX_SEQ,
    STATEMENT_TYPE,
    ComplianceState,
    SignedHeartbeat,
    SignedStatement,
)
from pausenet.core.signing import sign_heartbeat
from pausenet.core.verify import Reason, Rejection, verify_envelope
from pausenet.core.view import PauseState, View, evaluate, evaluate_envelopes
from pausenet.errors import BundleError, CharterError, ConfigError
from pausenet.node.config import load_config
from pausenet.node.messages import Digest, Items
from pausenet.node.peerauth import AUTH_TYPE, Authenticator, sign_auth
from pausenet.node.replica import Replica
from pausenet.node.wire import (
    decode_envelope,
    digest_from_pb,
    digest_to_pb,
    encode_envelope,
    envelope_from_pb,
    items_from_pb,
    items_to_pb,
)
from pausenet.ops.federation import Federation, init_federation
from pausenet.v1 import envelope_pb2, gossip_pb2, oversight_pb2, statement_pb2

FUZZ = settings(
    max_examples=examples(300),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EXAMPLES: Counter[str] = Counter()  # target -> examples run (shrinking and replays included)


@pytest.fixture(scope="module", autouse=True)
def _count_examples(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    yield EXAMPLES
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        cache.set("pausenet/fuzz_examples", dict(sorted(EXAMPLES.items())))


# -- a fixed federation and valid inputs to mutate ------------------------------------------------

CHARTER, KEYS = make_federation(labs=3, overseers=1)
MEMBERS = tuple(m.id for m in CHARTER.members)  # lab-a, lab-b, lab-c, overseer-a
HONEST = ("lab-a", "overseer-a")  # their keys sign nothing but the logs below
ATTACKERS = ("lab-b", "lab-c")  # their keys re-sign mutants
NOW = T0 + 90_000
SKEW_MS = CHARTER.rules.max_clock_skew_s * 1000
LIMITS = CHARTER.limits
I64_MAX = 2**63 - 1

# Statement j (seq j + 1) is signed between heartbeats j and j + 1 (below), as an honest node
# signs them: a heartbeat never denies a statement its member had already signed (§7).
STMT_T0 = T0 + 60_500
LOGS = {
    "lab-a": log_for(
        CHARTER,
        KEYS["lab-a"],
        "lab-a",
        [
            attest("rsi-detected", b"logs", note="seen"),
            pause(1, "rsi-detected", "eval-threshold", note="why"),
            comply(1),
        ],
        STMT_T0,
    ),
    "lab-b": log_for(
        CHARTER,
        KEYS["lab-b"],
        "lab-b",
        [pause(1), comply(1, ComplianceState.NOT_HALTED), lift(1)],
        STMT_T0,
    ),
    "lab-c": log_for(
        CHARTER,
        KEYS["lab-c"],
        "lab-c",
        [attest("eval-threshold"), pause(1)],
        STMT_T0,
    ),
    "overseer-a": log_for(
        CHARTER,
        KEYS["overseer-a"],
        "overseer-a",
        [attest("eval-threshold", b"x"), lift(1)],
        STMT_T0,
    ),
}
# Every member's heartbeats as its log grew: counter i + 1 commits to the first i statements.
HEARTBEATS = {
    m: [
        heartbeat_for(
            CHARTER,
            KEYS[m],
            m,
            log[:i],
            counter=i + 1,
            issued_at_ms=T0 + 60_000 + 1000 * i,
            address=f"{m}.example:7400" if i % 2 else "",
        )
        for i in range(len(log) + 1)
    ]
    for m, log in LOGS.items()
}
# lab-c also signed a second seq 1: a genuine fork.
FORK_C = log_for(CHARTER, KEYS["lab-c"], "lab-c", [pause(1, "eval-threshold")], STMT_T0)[0]

STATEMENTS: list[SignedStatement] = [s for log in LOGS.values() for s in log]
ALL_HEARTBEATS: list[SignedHeartbeat] = [h for hbs in HEARTBEATS.values() for h in hbs]
VALID_ENVELOPES = tuple(
    [s.envelope for s in STATEMENTS] + [h.envelope for h in ALL_HEARTBEATS] + [FORK_C.envelope]
)
HONEST_ENVELOPES = tuple(
    e for e in VALID_ENVELOPES if e.signatures[0].keyid in HONEST
)  # never conflicting

VIEW = evaluate(CHARTER, [*STATEMENTS, *(hbs[-1] for hbs in HEARTBEATS.values())], NOW)
NONCE = bytes(range(16, 48))
ANSWER = sign_answer(KEYS["lab-a"], CHARTER, "lab-a", NONCE, VIEW)
PROOF = VIEW.envelopes
AUTH_SAMPLE = sign_auth(KEYS["lab-a"], CHARTER, "lab-a", "lab-b", bytes(32), NOW)

PB_TYPES: dict[str, type[Message]] = {
    STATEMENT_TYPE: statement_pb2.Statement,
    HEARTBEAT_TYPE: statement_pb2.Heartbeat,
    ANSWER_TYPE: oversight_pb2.Answer,
    AUTH_TYPE: gossip_pb2.GossipAuth,
}
DONORS = (*(e.payload for e in VALID_ENVELOPES), ANSWER.payload, AUTH_SAMPLE.payload)


def _preloaded_replica() -> Replica:
    """Honest members fully held; lab-b held up to seq 1, so more of its log may still arrive."""
    r = Replica(CHARTER, clock=lambda: NOW)
    held = [*LOGS["lab-a"], *LOGS["overseer-a"], *LOGS["lab-c"], LOGS["lab-b"][0]]
    hbs = [HEARTBEATS["lab-a"][-1], HEARTBEATS["overseer-a"][-1], HEARTBEATS["lab-b"][1]]
    r.load(held, hbs, [])
    return r


DIGEST_PB = digest_to_pb(_preloaded_replica().digest()).SerializeToString()
ITEMS_PB = items_to_pb(
    Items(
        statements=tuple(s.envelope for s in LOGS["lab-b"]),
        heartbeats=(HEARTBEATS["lab-a"][-1].envelope,),
        evidence=((LOGS["lab-c"][0].envelope, FORK_C.envelope),),
    )
).SerializeToString()


# -- edge values ----------------------------------------------------------------------------------

# Each mixes plausible values (so re-signed mutants often stay valid), edge cases and anything.
U64 = st.one_of(
    st.integers(0, 5),
    st.sampled_from([0, 1, 2, 3, 4, 2**31, 2**32, MAX_SEQ - 1, MAX_SEQ, MAX_SEQ + 1, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)
I64 = st.one_of(
    st.integers(T0 - 60_000, NOW + 2 * SKEW_MS),
    st.sampled_from(
        [-(2**63), -1, 0, 1, T0, NOW, NOW + SKEW_MS, NOW + SKEW_MS + 1, NOW + 10**12, I64_MAX]
    ),
    st.integers(-(2**63), I64_MAX),
)
HASH_LIKE = st.one_of(
    st.sampled_from([b"", bytes(32), CHARTER.digest, NONCE, *sorted({sha256(p) for p in DONORS})]),
    st.binary(min_size=31, max_size=33),
    st.binary(max_size=70),
)
_NOTE = LIMITS.max_note_chars
ADDRESSES = [
    "",
    "lab-a.example:7400",
    "127.0.0.1:0",
    "[::1]:7400",
    "[fe80::1%eth0]:7400",
    "[::1%\u00e9]:1",
    "127.0.0.1:\u0667\u0664\u0660\u0660",  # Arabic-Indic digits
    "localhost:1",
    "0.0.0.0:7401",
    "h:65536",
    "h:-1",
    ":1",
    "h:",
    "::1:1",
    "a" * 253 + ":1",
    "a" * 254 + ":1",
    "x.example:000001",
]
WORDS = sorted(
    {
        *MEMBERS,
        *CHARTER.trigger_ids(),
        CHARTER.federation_id,
        "",
        "LAB-A",
        "lab-a ",
        "lab-z",
        "x" * 33,
        "x" * 65,
        *ADDRESSES,
    }
)
TEXT = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([*MEMBERS, *CHARTER.trigger_ids()]),
    st.text(max_size=40),
    st.sampled_from(["x" * _NOTE, "x" * (_NOTE + 1), "\u00e9" * _NOTE, "\U0001d54f" * (_NOTE + 1)]),
    st.text(st.sampled_from("ab:.[]%-09\u0667"), max_size=20),
)
# Text with lone surrogates too: JSON can carry them ("\ud800"), protobuf and TOML cannot.
ANY_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),
    st.sampled_from(["\ud800", "a\udfff", "\udc80\ud83d"]),
)


# -- protobuf wire-level mutations ----------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    number: int
    wire_type: int
    value: int | bytes  # int for varints, bytes otherwise
    pad: int = 0  # extra bytes in the value's (or length's) varint: a non-minimal encoding


def _varint(n: int, pad: int = 0) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if not n:
            out.append(byte)
            break
        out.append(byte | 0x80)
    if pad:
        out[-1] |= 0x80
        out += b"\x80" * (pad - 1) + b"\x00"
    return bytes(out)


def _read_varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("bad varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def _split(b: bytes) -> list[_Field] | None:
    """The fields of a protobuf message, or None when b is not a well-formed message."""
    out: list[_Field] = []
    i = 0
    try:
        while i < len(b):
            key, i = _read_varint(b, i)
            number, wt = key >> 3, key & 7
            value: int | bytes
            if wt == 0:
                value, i = _read_varint(b, i)
            elif wt in (1, 5):
                size = 8 if wt == 1 else 4
                value, i = b[i : i + size], i + size
            elif wt == 2:
                size, i = _read_varint(b, i)
                value, i = b[i : i + size], i + size
            else:
                return None
            if i > len(b):
                return None
            out.append(_Field(number, wt, value))
    except ValueError:
        return None
    return out


def _join(fields: Sequence[_Field]) -> bytes:
    out = bytearray()
    for f in fields:
        out += _varint((f.number << 3) | f.wire_type)
        v = f.value
        if f.wire_type == 0:
            out += _varint(v if isinstance(v, int) else len(v), f.pad)
        elif f.wire_type in (1, 5):
            raw = v if isinstance(v, bytes) else (v % 2**64).to_bytes(8, "little")
            size = 8 if f.wire_type == 1 else 4
            out += raw[:size].ljust(size, b"\0")
        elif f.wire_type == 2:
            raw = v if isinstance(v, bytes) else _varint(v)
            out += _varint(len(raw), f.pad) + raw
    return bytes(out)


_BYTE_OPS = ("flip", "truncate", "insert", "delete", "overwrite", "splice", "concat")
_FIELD_OPS = (
    "dup",
    "drop",
    "swap",
    "retag",
    "rewire",
    "setint",
    "setbytes",
    "unknown",
    "nested",
    "nonminimal",
)


def _wire_op(draw: st.DrawFn, b: bytes, depth: int = 0) -> bytes:
    op = draw(st.sampled_from(_BYTE_OPS + _FIELD_OPS))
    fields = _split(b)
    if not b and op not in ("insert", "splice", "concat"):
        op = "insert"
    elif op in _FIELD_OPS and not fields:
        op = "flip"
    n = len(b)
    if op == "flip":
        i, bit = draw(st.integers(0, n - 1)), draw(st.integers(0, 7))
        return b[:i] + bytes([b[i] ^ (1 << bit)]) + b[i + 1 :]
    if op == "truncate":
        return b[: draw(st.integers(0, max(n - 1, 0)))]
    if op == "insert":
        i = draw(st.integers(0, n))
        return b[:i] + draw(st.binary(min_size=1, max_size=8)) + b[i:]
    if op == "delete":
        i, j = sorted((draw(st.integers(0, n)), draw(st.integers(0, n))))
        return b[:i] + b[j:]
    if op == "overwrite":
        i, chunk = draw(st.integers(0, n)), draw(st.binary(min_size=1, max_size=8))
        return b[:i] + chunk + b[i + len(chunk) :]
    if op == "splice":
        donor = draw(st.sampled_from(DONORS))
        return b[: draw(st.integers(0, n))] + donor[draw(st.integers(0, len(donor))) :]
    if op == "concat":
        return b + draw(st.sampled_from((b, *DONORS)))

    assert fields
    k = len(fields)
    i = draw(st.integers(0, k - 1))
    f = fields[i]
    if op == "dup":
        fields.insert(draw(st.integers(0, k)), f)
    elif op == "drop":
        del fields[i]
    elif op == "swap":
        j = draw(st.integers(0, k - 1))
        fields[i], fields[j] = fields[j], fields[i]
    elif op == "retag":
        number = draw(st.one_of(st.integers(1, 16), st.sampled_from([0, 99, 2**29 - 1])))
        fields[i] = replace(f, number=number)
    elif op == "rewire":
        fields[i] = replace(f, wire_type=draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7])))
    elif op == "setint":
        fields[i] = _Field(f.number, 0, draw(U64))
    elif op == "setbytes":
        value = draw(
            st.one_of(
                HASH_LIKE,
                st.sampled_from(DONORS),
                TEXT.map(lambda s: s.encode("utf-8")),
                st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"a\x00b"]),  # not UTF-8
            )
        )
        fields[i] = _Field(f.number, 2, value)
    elif op == "unknown":
        wt = draw(st.sampled_from([0, 1, 2, 5]))
        extra = _Field(
            draw(st.sampled_from([7, 9, 13, 15, 16, 99, 2**29 - 1])),
            wt,
            draw(U64) if wt == 0 else draw(st.binary(max_size=12)),
        )
        fields.insert(draw(st.integers(0, k)), extra)
    elif op == "nested":
        if f.wire_type == 2 and isinstance(f.value, bytes) and f.value and depth < 2:
            fields[i] = replace(f, value=_wire_op(draw, f.value, depth + 1))
        else:
            fields.append(f)
    elif op == "nonminimal":
        if f.wire_type in (0, 2):
            fields[i] = replace(f, pad=draw(st.integers(1, 4)))
        else:
            fields.insert(i, f)
    return _join(fields)


@st.composite
def wire_mutant(draw: st.DrawFn, base: bytes) -> bytes:
    out = base
    for _ in range(draw(st.integers(1, 3))):
        out = _wire_op(draw, out)
    return out


# -- protobuf field-level mutations (the result is canonical: made to be re-signed) ---------------


def _pb_value(f: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = f.type
    if t == FieldDescriptor.TYPE_STRING:
        return TEXT
    if t == FieldDescriptor.TYPE_BYTES:
        return HASH_LIKE
    if t == FieldDescriptor.TYPE_UINT64:
        return U64
    if t == FieldDescriptor.TYPE_INT64:
        return I64
    if t == FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([0, 1, 2, 3, 4, -1, 2**31 - 1])
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    raise AssertionError(f"no strategy for {f.full_name}")


# Fields that say whose and under which charter an object is: mutated less often, so that more
# mutants reach the rules behind them.
_IDENTITY = {"federation_id", "charter_digest", "member", "client", "server"}


def _mutate_pb(draw: st.DrawFn, pb: Message, depth: int = 0) -> None:
    fields = [f for f in pb.DESCRIPTOR.fields for _ in range(1 if f.name in _IDENTITY else 3)]
    f = draw(st.sampled_from(fields))
    name = f.name
    if f.type == FieldDescriptor.TYPE_MESSAGE:
        if f.is_repeated:
            items = getattr(pb, name)
            op = draw(st.sampled_from(("add", "copy", "drop", "mutate", "clear")))
            if op in ("add", "copy"):
                new = items.add()
                if op == "copy" and len(items) > 1:
                    new.CopyFrom(items[draw(st.integers(0, len(items) - 2))])
            elif op == "drop" and items:
                del items[draw(st.integers(0, len(items) - 1))]
            elif op == "mutate" and items and depth < 3:
                _mutate_pb(draw, items[draw(st.integers(0, len(items) - 1))], depth + 1)
            else:
                pb.ClearField(name)
        else:
            op = draw(st.sampled_from(("mutate", "clear", "empty")))
            if op == "mutate" and depth < 3:
                _mutate_pb(draw, getattr(pb, name), depth + 1)
            elif op == "clear":
                pb.ClearField(name)
            else:
                getattr(pb, name).SetInParent()  # switches a oneof to an empty body
    elif f.is_repeated:
        values = getattr(pb, name)
        op = draw(st.sampled_from(("add", "dup", "drop", "set", "clear")))
        if op == "add":
            values.append(draw(_pb_value(f)))
        elif op == "dup" and values:
            values.append(values[draw(st.integers(0, len(values) - 1))])
        elif op == "drop" and values:
            del values[draw(st.integers(0, len(values) - 1))]
        elif op == "set":
            pb.ClearField(name)
            values = getattr(pb, name)
            values.extend(draw(st.lists(_pb_value(f), max_size=LIMITS.max_triggers_per_vote + 2)))
        else:
            pb.ClearField(name)
    elif draw(st.integers(0, 5)) == 0:
        pb.ClearField(name)
    else:
        setattr(pb, name, draw(_pb_value(f)))


@st.composite
def pb_mutant(draw: st.DrawFn, cls: type[Message], base: bytes) -> bytes:
    pb = cls()
    try:
        pb.ParseFromString(base)
    except DecodeError:  # a mutant of a mutant: mutate its bytes instead
        return draw(wire_mutant(base))
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        _mutate_pb(draw, pb)
    return pb.SerializeToString(deterministic=True)


def payload_mutant(cls: type[Message], bases: Sequence[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, other payload kinds, and wire- and field-level mutants of valid payloads."""
    base = st.sampled_from(list(bases))
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from(DONORS),
        base.flatmap(wire_mutant),
        base.flatmap(lambda b: pb_mutant(cls, b)),
    )


# -- envelope mutations ---------------------------------------------------------------------------

PAYLOAD_TYPES = [
    *PB_TYPES,
    "",
    STATEMENT_TYPE.upper(),
    STATEMENT_TYPE + " ",
    "application/vnd.pausenet.statement.v2+protobuf",
]


def _mutate_bytes(draw: st.DrawFn, b: bytes) -> bytes:
    return _wire_op(draw, b) if b else draw(st.binary(max_size=80))


@st.composite
def envelope_mutant(draw: st.DrawFn, base: Envelope, signers: Sequence[str] = MEMBERS) -> Envelope:
    """base with its payload, payload type and/or signatures changed.

    Re-signing uses only `signers`' keys, mostly as the payload's own author when it is one of
    them, so re-signed mutants get past the signature to the parser and the field rules.
    """
    ptype, payload, sigs = base.payload_type, base.payload, base.signatures
    how = draw(st.sampled_from(("keep", "wire", "wire", "pb", "pb", "pb", "random", "other")))
    if how == "wire":
        payload = draw(wire_mutant(payload))
    elif how == "pb" and ptype in PB_TYPES:
        payload = draw(pb_mutant(PB_TYPES[ptype], payload))
    elif how == "random":
        payload = draw(st.binary(max_size=200))
    elif how == "other":
        payload = draw(st.sampled_from(DONORS))
    if draw(st.integers(0, 5)) == 0:
        ptype = draw(st.one_of(st.sampled_from(PAYLOAD_TYPES), st.text(max_size=30)))
    author = base.signatures[0].keyid if base.signatures else ""
    signer = draw(
        st.sampled_from(list(signers))
        if author not in signers
        else st.one_of(st.just(author), st.sampled_from(list(signers)))
    )
    sig_how = draw(
        st.sampled_from(
            ("keep", "keep", *["resign"] * 4, "resign-other", "corrupt", "keyid", "none", "two")
        )
    )
    if sig_how == "resign":
        sigs = sign_envelope(KEYS[signer], signer, ptype, payload).signatures
    elif sig_how == "resign-other":  # a member's signature under another member's keyid
        keyid = draw(st.sampled_from(MEMBERS))
        sigs = (Signature(keyid, KEYS[signer].sign(pae(ptype, payload))),)
    elif sig_how == "corrupt" and sigs:
        sigs = (Signature(sigs[0].keyid, _mutate_bytes(draw, sigs[0].sig)),)
    elif sig_how == "keyid" and sigs:
        keyid = draw(st.one_of(st.sampled_from(WORDS), st.text(max_size=70)))
        sigs = (Signature(keyid, sigs[0].sig),)
    elif sig_how == "none":
        sigs = ()
    elif sig_how == "two":
        own = sign_envelope(KEYS[signer], signer, ptype, payload).signatures
        sigs = (*own, *draw(st.sampled_from([own, sigs])))
    return Envelope(ptype, payload, tuple(sigs))


def envelopes_from(
    bases: Sequence[Envelope], signers: Sequence[str] = MEMBERS
) -> st.SearchStrategy[Envelope]:
    """Valid envelopes (a quarter) and mutants of them."""
    valid = st.sampled_from(list(bases))
    mutant = valid.flatmap(lambda e: envelope_mutant(e, signers))
    return st.one_of(valid, mutant, mutant, mutant)


def _proto_bytes_envelope() -> st.SearchStrategy[Envelope]:
    """Envelopes parsed from random or mutated protobuf bytes (what the wire can deliver)."""

    def parse(b: bytes) -> Envelope:
        try:
            return decode_envelope(b)
        except CodecError:  # refused at the transport; use the bytes as a payload instead
            return Envelope(STATEMENT_TYPE, b, ())

    raw = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([encode_envelope(e) for e in VALID_ENVELOPES]).flatmap(wire_mutant),
    )
    return raw.map(parse)


ANY_ENVELOPE = st.one_of(envelopes_from(VALID_ENVELOPES), _proto_bytes_envelope())


# -- the oracle: docs/protocol.md §3, §4 and §6, written independently of pausenet.core.verify --------

ADDRESS_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?")


def _address_ok(address: str) -> bool:
    """§4.3's address grammar: a name or a bracketed IPv6 address (no zone), port 1..65535."""
    m = re.fullmatch(r"(.+):([0-9]{1,5})", address)
    if m is None or not address.isascii() or not 1 <= int(m[2]) <= 65535:
        return False
    host = m[1]
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return "%" not in host
    return ADDRESS_NAME_RE.fullmatch(host) is not None


def _sig_ok(keyid: str, ptype: str, payload: bytes, sig: bytes) -> bool:
    member = CHARTER.member(keyid)
    if member is None:
        return False
    try:
        nacl.signing.VerifyKey(member.public_key.raw).verify(pae(ptype, payload), sig)
    except (nacl.exceptions.CryptoError, ValueError):
        return False
    return True


def _canonical(cls: type[Message], payload: bytes) -> Any:
    """The parsed message if payload is its canonical encoding (§4.1), else None."""
    pb = cls()
    try:
        pb.ParseFromString(payload)
    except DecodeError:
        return None
    pb.DiscardUnknownFields()
    return pb if pb.SerializeToString(deterministic=True) == payload else None


def _common_ok(pb: Any, signer: str, now: int) -> bool:
    return bool(
        pb.member == signer
        and pb.charter_digest == CHARTER.digest
        and pb.federation_id == CHARTER.federation_id
        and 0 < pb.issued_at_ms <= now + SKEW_MS
    )


def _statement_ok(pb: Any, signer: str, now: int) -> bool:
    member = CHARTER.member(signer)
    assert member is not None
    kind = pb.WhichOneof("body")
    if kind is None or not _common_ok(pb, signer, now) or not 1 <= pb.seq <= MAX_SEQ:
        return False
    if len(pb.prev_hash) != (0 if pb.seq == 1 else 32):
        return False
    triggers = CHARTER.trigger_ids()
    if kind == "vote":
        v = pb.vote
        if not 1 <= v.epoch <= MAX_SEQ or len(v.note) > LIMITS.max_note_chars:
            return False
        named = list(v.triggers)
        if v.decision == statement_pb2.DECISION_LIFT:
            return not named
        return bool(
            v.decision == statement_pb2.DECISION_PAUSE
            and 1 <= len(named) <= LIMITS.max_triggers_per_vote
            and len(set(named)) == len(named)
            and set(named) <= triggers
            and (member.role is Role.LAB or CHARTER.rules.overseer_pause_threshold > 0)
        )
    if kind == "compliance":
        c = pb.compliance
        return bool(
            member.role is Role.LAB
            and 1 <= c.epoch <= MAX_SEQ
            and c.state
            in (statement_pb2.COMPLIANCE_STATE_HALTED, statement_pb2.COMPLIANCE_STATE_NOT_HALTED)
            and len(c.evidence_sha256) in (0, 32)
        )
    t = pb.trigger_attestation
    return bool(
        t.trigger_id in triggers
        and len(t.evidence_sha256) in (0, 32)
        and len(t.note) <= LIMITS.max_note_chars
    )


def _heartbeat_ok(pb: Any, signer: str, now: int) -> bool:
    return bool(
        _common_ok(pb, signer, now)
        and pb.head_seq <= MAX_SEQ
        and len(pb.head_hash) == (0 if pb.head_seq == 0 else 32)
        and 1 <= pb.counter <= MAX_SEQ
        and (not pb.address or _address_ok(pb.address))
    )


def oracle(env: Envelope, now: int = NOW) -> Any:
    """The payload's parsed message if a verifier must accept env at `now`, else None."""
    if env.payload_type == STATEMENT_TYPE:
        limit, cls, ok = LIMITS.max_statement_bytes, statement_pb2.Statement, _statement_ok
    elif env.payload_type == HEARTBEAT_TYPE:
        limit, cls, ok = 1024, statement_pb2.Heartbeat, _heartbeat_ok
    else:
        return None
    if len(env.payload) > limit or len(env.signatures) != 1:
        return None
    sig = env.signatures[0]
    if not _sig_ok(sig.keyid, env.payload_type, env.payload, sig.sig):
        return None
    pb = _canonical(cls, env.payload)
    return pb if pb is not None and ok(pb, sig.keyid, now) else None


def commitments(env: Envelope, pb: Any) -> dict[int, bytes]:
    """§7: the log entries a verified item commits its signer to."""
    if env.payload_type == STATEMENT_TYPE:
        out = {pb.seq: sha256(env.payload)}
        if pb.seq > 1:
            out[pb.seq - 1] = pb.prev_hash
        return out
    return {pb.head_seq: pb.head_hash} if pb.head_seq > 0 else {}


def is_fork(a: Envelope, b: Envelope, now: int) -> bool:
    pa, pb = oracle(a, now), oracle(b, now)
    if pa is None or pb is None or pa.member != pb.member or a.payload == b.payload:
        return False
    ca, cb = commitments(a, pa), commitments(b, pb)
    if any(s in cb and cb[s] != h for s, h in ca.items()):
        return True
    kinds = (a.payload_type, b.payload_type)
    if kinds == (STATEMENT_TYPE, HEARTBEAT_TYPE):
        return bool(pa.seq > pb.head_seq and pa.issued_at_ms <= pb.issued_at_ms)
    if kinds == (HEARTBEAT_TYPE, STATEMENT_TYPE):
        return bool(pb.seq > pa.head_seq and pb.issued_at_ms <= pa.issued_at_ms)
    if kinds == (HEARTBEAT_TYPE, HEARTBEAT_TYPE):
        lo, hi = (pa, pb) if pa.head_seq < pb.head_seq else (pb, pa)
        return bool(lo.head_seq < hi.head_seq and lo.counter >= hi.counter)
    return False


def _count(target: str) -> None:
    EXAMPLES[target] += 1


def _one_line(exc: Exception) -> None:
    """Errors reach users as one line (STYLE.md 3)."""
    assert "\n" not in str(exc), repr(exc)


# -- the valid inputs are valid (else every mutant below would be a mutant of garbage) ------------


def test_the_inputs_to_mutate_are_valid(files: Path) -> None:
    for env in VALID_ENVELOPES:
        assert not isinstance(verify_envelope(CHARTER, env, now_ms=NOW), Rejection)
        assert oracle(env) is not None
    assert isinstance(
        check_evidence(CHARTER, LOGS["lab-c"][0].envelope, FORK_C.envelope, now_ms=NOW), Evidence
    )
    assert check_answer(CHARTER, ANSWER, PROOF, nonce=NONCE)
    bundle = files / "valid.json"
    write_bundle(bundle, PROOF, NOW, nonce=NONCE, answer=ANSWER)
    assert json.loads(bundle.read_text(encoding="utf-8")) == BUNDLE_DOC
    auth = Authenticator(CHARTER, "lab-b")
    c = auth.challenge("lab-a", NOW)
    assert isinstance(c, bytes)
    assert not isinstance(
        auth.authenticate(sign_auth(KEYS["lab-a"], CHARTER, "lab-a", "lab-b", c, NOW), NOW), str
    )


# -- pausenet.codec -------------------------------------------------------------------------------

STATEMENT_PAYLOADS = [s.envelope.payload for s in STATEMENTS] + [FORK_C.envelope.payload]
HEARTBEAT_PAYLOADS = [h.envelope.payload for h in ALL_HEARTBEATS]


@FUZZ
@given(data=payload_mutant(statement_pb2.Statement, STATEMENT_PAYLOADS))
def test_decode_statement_raises_only_codec_error_and_accepts_only_canonical(data: bytes) -> None:
    _count("codec.decode_statement")
    try:
        s = decode_statement(data)
    except CodecError as exc:
        event(f"decode_statement: {exc.reason}")
        return
    assert encode_statement(s) == data  # one statement, one encoding


@FUZZ
@given(data=payload_mutant(statement_pb2.Heartbeat, HEARTBEAT_PAYLOADS))
def test_decode_heartbeat_raises_only_codec_error_and_accepts_only_canonical(data: bytes) -> None:
    _count("codec.decode_heartbeat")
    try:
        h = decode_heartbeat(data)
    except CodecError as exc:
        event(f"decode_heartbeat: {exc.reason}")
        return
    assert encode_heartbeat(h) == data


ENVELOPE_BYTES = [encode_envelope(e) for e in (*VALID_ENVELOPES, ANSWER, AUTH_SAMPLE)]


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.sampled_from(ENVELOPE_BYTES).flatmap(wire_mutant),
        st.sampled_from(ENVELOPE_BYTES).flatmap(lambda b: pb_mutant(envelope_pb2.Envelope, b)),
    )
)
def test_decode_envelope_raises_only_codec_error(data: bytes) -> None:
    _count("codec.decode_envelope")
    try:
        env = decode_envelope(data)
    except CodecError:
        return
    assert isinstance(env.payload, bytes)
    assert decode_envelope(encode_envelope(env)) == env


@FUZZ
@given(
    data=st.one_of(st.binary(max_size=200), st.sampled_from(ENVELOPE_BYTES).flatmap(wire_mutant))
)
def test_envelope_from_pb_never_raises_on_a_parsed_envelope(data: bytes) -> None:
    _count("codec.envelope_from_pb")
    pb = envelope_pb2.Envelope()
    try:
        pb.ParseFromString(data)
    except DecodeError:
        return  # gRPC refuses the message before any pausenet code runs
    env = envelope_from_pb(pb)
    assert env.payload == pb.payload
    assert [s.keyid for s in env.signatures] == [s.keyid for s in pb.signatures]


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.just(DIGEST_PB).flatmap(wire_mutant),
        st.just(DIGEST_PB).flatmap(lambda b: pb_mutant(gossip_pb2.Digest, b)),
    )
)
def test_digest_from_pb_raises_only_codec_error(data: bytes) -> None:
    _count("codec.digest_from_pb")
    pb = gossip_pb2.Digest()
    try:
        pb.ParseFromString(data)
    except DecodeError:
        return
    limit = len(CHARTER.members)
    try:
        d = digest_from_pb(pb, max_heads=limit)
    except CodecError as exc:
        event(f"digest_from_pb: {exc.reason}")
        return
    assert isinstance(d, Digest)
    assert len(d.heads) <= limit
    assert all(len(h.head_hash) in (0, 32) for h in d.heads)
    assert all(len(e) == 32 for e in d.evidence_ids)
    # what a server then does with a peer's digest
    items, _more = _preloaded_replica().missing_for(d)
    assert isinstance(items, Items)


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.just(ITEMS_PB).flatmap(wire_mutant),
        st.just(ITEMS_PB).flatmap(lambda b: pb_mutant(gossip_pb2.Items, b)),
    ),
    max_items=st.integers(1, 8),
)
def test_items_from_pb_raises_only_codec_error(data: bytes, max_items: int) -> None:
    _count("codec.items_from_pb")
    pb = gossip_pb2.Items()
    try:
        pb.ParseFromString(data)
    except DecodeError:
        return
    n = len(pb.statements) + len(pb.heartbeats) + len(pb.evidence)
    try:
        items = items_from_pb(pb, max_items=max_items)
    except CodecError:
        assert n > max_items
        return
    assert len(items) == n <= max_items
    assert [e.payload for e in items.statements] == [s.payload for s in pb.statements]


# -- pausenet.core.verify ------------------------------------------------------------------------------

ORIGINAL = {(e.payload_type, e.payload): e.signatures[0].sig for e in VALID_ENVELOPES}


@FUZZ
@given(env=ANY_ENVELOPE)
def test_verify_envelope_never_raises_and_accepts_exactly_what_the_spec_accepts(
    env: Envelope,
) -> None:
    _count("verify.verify_envelope")
    result = verify_envelope(CHARTER, env, now_ms=NOW)
    assert isinstance(result, SignedStatement | SignedHeartbeat | Rejection)
    expected = oracle(env)
    if isinstance(result, Rejection):
        event(f"verify: {result.reason.value}")
        assert result.payload_hash == sha256(env.payload)
        assert isinstance(result.reason, Reason)
        assert "\n" not in str(result)
        assert expected is None, f"rejected a valid envelope: {result}"
        return
    event(f"verify: accepted {type(result).__name__}")
    assert expected is not None, "accepted an envelope the spec rejects"
    # A mutated payload under an original signature never verifies.
    assert all(
        s.sig != sig or (env.payload_type, env.payload) == key
        for key, sig in ORIGINAL.items()
        for s in env.signatures
    )
    assert result.envelope is env
    assert result.hash == sha256(env.payload)
    if isinstance(result, SignedStatement):
        assert encode_statement(result.statement) == env.payload  # canonical, so one hash
    else:
        assert encode_heartbeat(result.heartbeat) == env.payload


# -- pausenet.core.evidence ----------------------------------------------------------------------------

# One honest member's valid, never-conflicting items; attackers' genuine items (lab-c forked);
# mutants of all of them, re-signed only with attackers' keys.
FRAMING_POOL = st.one_of(
    st.sampled_from(HONEST_ENVELOPES),
    envelopes_from(VALID_ENVELOPES, ATTACKERS),
)


def _with_mutant(e: Envelope) -> st.SearchStrategy[tuple[Envelope, Envelope]]:
    """e and a mutant of it: a framing attempt when e is honest, often a real fork when not."""
    return envelope_mutant(e, ATTACKERS).flatmap(lambda m: st.sampled_from([(e, m), (m, e)]))


@st.composite
def _self_fork(draw: st.DrawFn) -> tuple[Envelope, Envelope]:
    """An attacker's item and a field-level mutant of it that the attacker signed too."""
    e = draw(st.sampled_from([e for e in VALID_ENVELOPES if e.signatures[0].keyid in ATTACKERS]))
    author = e.signatures[0].keyid
    payload = draw(pb_mutant(PB_TYPES[e.payload_type], e.payload))
    return e, sign_envelope(KEYS[author], author, e.payload_type, payload)


PAIRS = st.one_of(
    st.tuples(FRAMING_POOL, FRAMING_POOL),
    st.sampled_from(VALID_ENVELOPES).flatmap(_with_mutant),
    _self_fork(),
)


@FUZZ
@given(pair=PAIRS)
def test_check_evidence_never_raises_and_cannot_frame_an_honest_member(
    pair: tuple[Envelope, Envelope],
) -> None:
    _count("evidence.check_evidence")
    a, b = pair
    result = check_evidence(CHARTER, a, b, now_ms=NOW)
    assert isinstance(result, Evidence | Rejection)
    genuine = is_fork(a, b, NOW)
    if isinstance(result, Rejection):
        event(f"evidence: rejected {result.reason.value}")
        assert not genuine, f"missed a fork: {result}"
        return
    event("evidence: accepted")
    assert genuine
    assert result.member not in HONEST
    assert {result.first.payload, result.second.payload} == {a.payload, b.payload}
    pa, pb = oracle(result.first), oracle(result.second)
    ca, cb = commitments(result.first, pa), commitments(result.second, pb)
    if result.seq in ca and result.seq in cb and ca[result.seq] != cb[result.seq]:
        return  # a fork at result.seq
    # otherwise a timeline contradiction: result.seq is head + 1 of the denying heartbeat
    heads = [
        p.head_seq
        for e, p in ((result.first, pa), (result.second, pb))
        if e.payload_type == HEARTBEAT_TYPE
    ]
    assert result.seq - 1 in heads


# -- pausenet.core.answer ------------------------------------------------------------------------------


@FUZZ
@given(data=payload_mutant(oversight_pb2.Answer, [ANSWER.payload]))
def test_decode_answer_raises_only_value_error(data: bytes) -> None:
    _count("answer.decode_answer")
    try:
        ans = decode_answer(data)
    except ValueError:
        return
    assert isinstance(ans, Answer)
    assert isinstance(ans.state, PauseState)


@st.composite
def proof_mutant(draw: st.DrawFn) -> list[Envelope]:
    proof = list(PROOF)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 3]))):
        op = draw(st.sampled_from(("drop", "dup", "add", "mutate", "reverse")))
        i = draw(st.integers(0, max(len(proof) - 1, 0)))
        if op == "drop" and proof:
            del proof[i]
        elif op == "dup" and proof:
            proof.insert(i, proof[i])
        elif op == "add":
            proof.insert(i, draw(envelopes_from(VALID_ENVELOPES)))
        elif op == "mutate" and proof:
            proof[i] = draw(envelope_mutant(proof[i]))
        else:
            proof.reverse()
    return proof


@FUZZ
@given(
    answer=st.one_of(
        st.just(ANSWER),
        envelopes_from([ANSWER]),
        envelopes_from([AUTH_SAMPLE, *VALID_ENVELOPES[:2]]),
    ),
    proof=proof_mutant(),
    nonce=st.one_of(st.none(), st.just(NONCE), st.binary(min_size=16, max_size=64)),
)
def test_check_answer_never_raises_and_holds_only_for_a_true_signed_answer(
    answer: Envelope, proof: list[Envelope], nonce: bytes | None
) -> None:
    _count("answer.check_answer")
    result = check_answer(CHARTER, answer, proof, nonce=nonce)
    assert isinstance(result, AnswerCheck)
    assert all(isinstance(p, str) and "\n" not in p for p in result.problems)
    unchanged = answer == ANSWER and set(proof) == set(PROOF)
    if unchanged and nonce in (None, NONCE):
        assert result, result.problems
    if not result:
        event("answer: refused")
        return
    event("answer: holds")
    sig = answer.signatures[0]
    assert answer.payload_type == ANSWER_TYPE
    assert len(answer.signatures) == 1
    assert _sig_ok(sig.keyid, ANSWER_TYPE, answer.payload, sig.sig)
    pb = oversight_pb2.Answer()
    pb.ParseFromString(answer.payload)
    assert pb.member == sig.keyid
    assert pb.charter_digest == CHARTER.digest
    assert pb.federation_id == CHARTER.federation_id
    assert nonce is None or pb.nonce == nonce
    assert set(pb.proof_hashes) == {e.payload_hash for e in proof}
    view = evaluate_envelopes(CHARTER, proof, pb.now_ms)
    assert (view.state.value, view.epoch, view.as_of_ms or 0) == (
        PauseState[oversight_pb2.PauseState.Name(pb.state).removeprefix("PAUSE_STATE_")].value,
        pb.epoch,
        pb.as_of_ms,
    )


# -- pausenet.node.peerauth ----------------------------------------------------------------------------

CHALLENGE_TTL_MS = 30_000


@FUZZ
@given(data=st.data(), client=st.one_of(st.sampled_from(WORDS), st.text(max_size=80)))
def test_authenticator_never_raises_and_admits_only_a_correct_auth(
    data: st.DataObject, client: str
) -> None:
    _count("peerauth.Authenticator")
    auth = Authenticator(CHARTER, "lab-b", challenge_ttl_ms=CHALLENGE_TTL_MS)
    c = auth.challenge(client, NOW)
    assert isinstance(c, bytes) == (CHARTER.member(client) is not None)
    assert isinstance(c, bytes) or "\n" not in c
    mine = auth.challenge("lab-a", NOW)
    other = auth.challenge("lab-c", NOW)
    assert isinstance(mine, bytes)
    assert isinstance(other, bytes)
    issued = {mine: "lab-a", other: "lab-c"}
    if isinstance(c, bytes):
        issued[c] = client

    signer = data.draw(st.sampled_from(MEMBERS), label="signer")
    base = sign_auth(
        KEYS[signer],
        CHARTER,
        signer,
        data.draw(st.sampled_from(["lab-b", "lab-a", "lab-b "]), label="server"),
        data.draw(st.sampled_from([mine, other, bytes(32), mine[:31]]), label="challenge"),
        data.draw(
            st.sampled_from([NOW, NOW - SKEW_MS - CHALLENGE_TTL_MS - 1, NOW + 45_000]),
            label="issued_at",
        ),
    )
    env = data.draw(st.one_of(st.just(base), envelope_mutant(base)), label="auth")
    at = data.draw(
        st.sampled_from([NOW, NOW + 1, NOW + CHALLENGE_TTL_MS - 1, NOW + CHALLENGE_TTL_MS]),
        label="at",
    )
    got = auth.authenticate(env, at)

    pb = gossip_pb2.GossipAuth()
    parsed = True
    try:
        pb.ParseFromString(env.payload)
    except DecodeError:
        parsed = False
    correct = bool(
        env.payload_type == AUTH_TYPE
        and len(env.payload) <= 512
        and len(env.signatures) == 1
        and _sig_ok(env.signatures[0].keyid, AUTH_TYPE, env.payload, env.signatures[0].sig)
        and parsed
        and pb.client == env.signatures[0].keyid
        and pb.charter_digest == CHARTER.digest
        and pb.federation_id == CHARTER.federation_id
        and pb.server == "lab-b"
        and abs(pb.issued_at_ms - at) <= SKEW_MS + CHALLENGE_TTL_MS
        and issued.get(bytes(pb.challenge)) == pb.client
        and at < NOW + CHALLENGE_TTL_MS
    )
    if isinstance(got, str):
        event("auth: refused")
        assert "\n" not in got
        assert not correct, f"refused a correct auth: {got}"
        return
    event("auth: admitted")
    assert correct
    token, session = got
    assert session.member == pb.client
    assert auth.session(token, at) == session
    assert isinstance(auth.authenticate(env, at), str)  # each challenge is single-use


# -- pausenet.node.replica -----------------------------------------------------------------------------

INGEST_POOL = envelopes_from(VALID_ENVELOPES, ATTACKERS)


def _status(view: View, member: str) -> Any:
    s = view.member(member)
    assert s is not None
    return replace(s, compliance=None)


@FUZZ
@given(
    items=st.builds(
        Items,
        statements=st.lists(INGEST_POOL, max_size=6).map(tuple),
        heartbeats=st.lists(INGEST_POOL, max_size=3).map(tuple),
        evidence=st.lists(PAIRS, max_size=2).map(tuple),
    )
)
def test_replica_ingest_never_raises_counts_every_rejection_and_spares_honest_members(
    items: Items,
) -> None:
    _count("replica.ingest")

    async def run() -> tuple[Replica, View, Any, Any]:
        replica = _preloaded_replica()
        view = replica.view(NOW)
        version = replica.version
        first = await replica.ingest(items)
        assert replica.version != version or not first.changed
        again = await replica.ingest(items)
        return replica, view, first, again

    before = _preloaded_replica()
    replica, view_before, report, again = asyncio.run(run())

    # every item lands in exactly one bucket
    counted = report.statements + report.heartbeats + report.evidence + report.duplicates
    assert counted + sum(report.rejected.values()) == len(items)
    # every envelope the verifier refuses is counted as rejected, under its reason
    expected: Counter[str] = Counter()
    for envs, kind in ((items.statements, SignedStatement), (items.heartbeats, SignedHeartbeat)):
        for env in envs:
            v = verify_envelope(CHARTER, env, now_ms=NOW)
            if isinstance(v, Rejection):
                expected[v.reason.value] += 1
            elif not isinstance(v, kind):
                expected["type-confusion"] += 1
    assert not expected - report.rejected, (expected, report.rejected)
    for r in report.rejected:
        event(f"ingest: rejected {r}")
    for what in ("statements", "heartbeats", "evidence", "duplicates"):
        if getattr(report, what):
            event(f"ingest: {what}")
    # honest members' logs, heartbeats and status are untouched; no evidence against them
    view_after = replica.view(NOW)
    # the view, kept up to date between calls, is the reference evaluation of what is held
    reference = evaluate(CHARTER, replica.verified_items(), NOW)
    assert view_after.to_json() == reference.to_json()
    assert view_after.envelopes == reference.envelopes
    for m in HONEST:
        assert replica.log(m) == before.log(m)
        assert replica.heartbeat(m) == before.heartbeat(m)
        assert _status(view_after, m) == _status(view_before, m)
    assert not replica.equivocators() & set(HONEST)
    # every piece of evidence held is a genuine fork (evidence items may be old: no time rule)
    for ev in replica.evidence():
        assert is_fork(ev.first, ev.second, I64_MAX - SKEW_MS)
        assert ev.member in ATTACKERS
    # every log held is still one hash chain from seq 1, in time order
    for m in MEMBERS:
        log = replica.log(m)
        assert [s.seq for s in log] == list(range(1, len(log) + 1))
        for a, b in itertools.pairwise(log):
            assert b.statement.prev_hash == a.hash
            assert b.statement.issued_at_ms >= a.statement.issued_at_ms
    # ingesting the same items again changes nothing
    assert not again.changed


def test_ingesting_a_fork_and_a_broken_link_in_one_batch_again_changes_nothing() -> None:
    """Found by the deep profile: of two statements at the next seq in one batch, one signed
    before its predecessor is a fork once the other is appended, in the first ingest too."""
    seq2 = LOGS["lab-b"][1]  # the preloaded replica holds lab-b up to seq 1
    earlier = log_for(
        CHARTER,
        KEYS["lab-b"],
        "lab-b",
        [attest("eval-threshold")],
        T0 - 60_000,
        after=LOGS["lab-b"][:1],
    )[0]  # also seq 2 after seq 1, but signed before it
    items = Items(statements=(seq2.envelope, earlier.envelope))

    async def run() -> tuple[Any, Any]:
        replica = _preloaded_replica()
        return await replica.ingest(items), await replica.ingest(items)

    first, again = asyncio.run(run())
    assert not again.changed, (first, again)
    assert first.evidence == 1, first


# -- pausenet.core.view --------------------------------------------------------------------------------


@FUZZ
@given(
    envs=st.one_of(
        st.lists(ANY_ENVELOPE, max_size=12),
        st.tuples(proof_mutant(), st.lists(ANY_ENVELOPE, max_size=4)).map(lambda t: t[0] + t[1]),
    ),
    now=st.one_of(st.just(NOW), I64),
)
def test_evaluate_envelopes_never_raises_and_ignores_order(envs: list[Envelope], now: int) -> None:
    _count("view.evaluate_envelopes")
    view = evaluate_envelopes(CHARTER, envs, now)
    event(f"view: {view.state.value}")
    given_hashes = {e.payload_hash for e in envs}
    assert {r.payload_hash for r in view.rejected} <= given_hashes
    assert all(e in envs for e in view.envelopes)
    back = evaluate_envelopes(CHARTER, list(reversed(envs)), now)

    def key(v: View) -> tuple[Any, ...]:
        return (
            v.state,
            v.epoch,
            v.as_of_ms,
            v.certified_state,
            v.certified_since_ms,
            tuple(e.id for e in v.evidence),
            sorted(e.payload_hash for e in v.envelopes),
            v.members,
        )

    assert key(back) == key(view)


# -- files: bundles, charters, configs ------------------------------------------------------------

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, -1, 2**63 - 1, 2**63, NOW, 10**30]),
    st.floats(),
    ANY_TEXT,
    st.sampled_from(WORDS),
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(ANY_TEXT, st.sampled_from(WORDS)), inner, max_size=4)
    ),
    max_leaves=12,
)


def _json_mutant(base: Any, values: st.SearchStrategy[Any], keys: Sequence[str]) -> Any:
    @st.composite
    def mutant(draw: st.DrawFn) -> Any:
        doc = copy.deepcopy(base)
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
            doc = _json_op(draw, doc, values, keys)
        return doc

    return mutant()


ODD_TEXT = [
    "",
    " ",
    "x\ud800",
    "\udfff",
    "line\nbreak",
    "nul\x00",
    "\u202eevil",
    "\u00e9",
    "x" * 300,
]


def _leaves(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _tweaked(draw: st.DrawFn, v: Any) -> Any:
    """A value of the same kind as v: odd text for text, nearby or extreme numbers for numbers."""
    if isinstance(v, str):
        if ":" in v and draw(st.booleans()):  # an address: try the odd ones
            return draw(st.sampled_from(ADDRESSES))
        return draw(
            st.one_of(
                st.sampled_from(ODD_TEXT),
                st.sampled_from(WORDS),
                ANY_TEXT,
                st.sampled_from([v + "\ud800", v.upper(), v + "\n", v * 2]),
            )
        )
    if isinstance(v, bool):
        return draw(st.sampled_from([not v, 0, 1, "true"]))
    if isinstance(v, int):
        as_float = float(v) if abs(v) < 2**1023 else float("inf")  # 10**400 is beyond a float
        return draw(st.sampled_from([v - 1, v + 1, 0, -1, -v, 2**63, 2**64, 10**400, as_float]))
    return draw(JSON_LEAF)


def _json_op(draw: st.DrawFn, doc: Any, values: st.SearchStrategy[Any], keys: Sequence[str]) -> Any:
    """Tweak a leaf, or replace, delete, add, rename or duplicate one thing somewhere in doc."""
    if not isinstance(doc, dict | list) or draw(st.integers(0, 9)) == 0:
        return copy.deepcopy(draw(values))
    if draw(st.booleans()):
        paths = list(_leaves(doc))
        if paths:
            *parents, last = draw(st.sampled_from(paths))
            node = doc
            for p in parents:
                node = node[p]
            node[last] = _tweaked(draw, node[last])
            return doc
    node = doc
    while True:  # walk down to a random container
        children = [
            c
            for c in (node.values() if isinstance(node, dict) else node)
            if isinstance(c, dict | list)
        ]
        if not children or draw(st.booleans()):
            break
        node = draw(st.sampled_from(children))
    op = draw(st.sampled_from(("set", "delete", "add", "rename", "dup")))
    if isinstance(node, dict):
        names = list(node)
        name = draw(st.sampled_from(names)) if names else None
        if op == "set" and name is not None:
            node[name] = copy.deepcopy(draw(values))
        elif op == "delete" and name is not None:
            del node[name]
        elif op == "rename" and name is not None:
            node[draw(st.one_of(st.sampled_from(list(keys)), ANY_TEXT))] = node.pop(name)
        elif op == "dup" and name is not None:
            node[name] = [node[name], node[name]]
        else:
            node[draw(st.one_of(st.sampled_from(list(keys)), ANY_TEXT))] = copy.deepcopy(
                draw(values)
            )
    else:
        i = draw(st.integers(0, max(len(node) - 1, 0)))
        if op == "set" and node:
            node[i] = copy.deepcopy(draw(values))
        elif op == "delete" and node:
            del node[i]
        elif op == "dup" and node:
            node.insert(i, copy.deepcopy(node[i]))
        else:
            node.insert(i, copy.deepcopy(draw(values)))
    return doc


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# What `pausenet view --out` writes (test_the_inputs_to_mutate_are_valid checks it)
BUNDLE_DOC = {
    "now": NOW,
    "nonce": NONCE.hex(),
    "envelopes": [e.to_json() for e in PROOF],
    "answer": ANSWER.to_json(),
}
BUNDLE_KEYS = [
    "now",
    "envelopes",
    "nonce",
    "answer",
    "payloadType",
    "payload",
    "signatures",
    "keyid",
    "sig",
]
ENVELOPE_JSON_VALUES = st.one_of(
    JSON,
    st.sampled_from([e.to_json() for e in (*VALID_ENVELOPES[:3], ANSWER)]),
    st.sampled_from(["", "=", "AA==", "AA", "AA=", "-_-_", "ab cd", "\u00e9", "a\n", NONCE.hex()]),
)


def _bundle_bytes() -> st.SearchStrategy[bytes]:
    text = json.dumps(BUNDLE_DOC).encode()
    return st.one_of(
        st.binary(max_size=300),
        JSON.map(lambda v: json.dumps(v).encode()),
        _json_mutant(BUNDLE_DOC, ENVELOPE_JSON_VALUES, BUNDLE_KEYS).map(
            lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ),
        wire_mutant(text),
        st.sampled_from(
            [
                b"[" * 100_000,
                b"1" * 5000,
                b"\xef\xbb\xbf" + text,
                b'{"envelopes": [], "now": 1e400}',
                b'{"envelopes": [], "now": NaN}',
                b'{"envelopes": [], "nonce": "\\ud800"}',
                b'{"envelopes": [{"payloadType": "\\udfff", "payload": "", "signatures": []}]}',
                b'{"envelopes": [], "envelopes": 1}',
                b'{"now": 1, "now": 2, "envelopes": []}',
            ]
        ),
    )


@FUZZ
@given(raw=_bundle_bytes())
def test_read_bundle_raises_only_bundle_error_and_what_it_reads_checks_without_raising(
    files: Path, raw: bytes
) -> None:
    _count("bundle.read_bundle")
    path = files / "bundle.json"
    path.write_bytes(raw)
    try:
        bundle = read_bundle(path)
    except BundleError as exc:
        _one_line(exc)
        event("bundle: refused")
        return
    event("bundle: read")
    view, _source = view_of_bundle(CHARTER, bundle, now_ms=NOW)
    assert isinstance(view, View)
    check = check_bundle_answer(CHARTER, bundle)
    assert check is None or isinstance(check, AnswerCheck)


@FUZZ
@given(obj=st.one_of(JSON, _json_mutant(ANSWER.to_json(), ENVELOPE_JSON_VALUES, BUNDLE_KEYS)))
def test_envelope_from_json_raises_only_value_error(obj: Any) -> None:
    """Callers translate the ValueError (read_bundle into BundleError), so it stays a ValueError."""
    _count("dsse.Envelope.from_json")
    try:
        env = Envelope.from_json(obj)
    except ValueError as exc:
        _one_line(exc)
        return
    assert Envelope.from_json(env.to_json()) == env


TOML_LEAF = st.one_of(
    JSON_LEAF,
    st.datetimes(),
    st.dates(),
    st.times(),
    st.sampled_from(
        [KEYS[m].public_key.hex() for m in MEMBERS] + ["AB" * 32, "ab" * 31, "ab" * 33]
    ),
)
TOML_VALUES = st.recursive(
    TOML_LEAF,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(ANY_TEXT, st.sampled_from(WORDS)), inner, max_size=4)
    ),
    max_leaves=10,
)
# plausible values first, so that mutants often still parse and reach the later checks
CHARTER_VALUES = st.one_of(
    st.integers(-1, 5),
    st.sampled_from(
        [
            *WORDS,
            "lab",
            "overseer",
            "pausenet.charter.v1",
            "a trigger",
            " ",
            "x\ud800",  # JSON can carry a lone surrogate, UTF-8 cannot
            "line\nbreak",
            "nul\x00",
            "\u202eevil",
            *(KEYS[m].public_key.hex() for m in MEMBERS),
            KEYS["lab-a"].public_key.hex().upper(),
            600,
            86_400,
            10**9,
            1024,
            64 * 1024,
            True,
            1.0,
        ]
    ),
    st.builds(
        lambda i, r: {"id": i, "role": r, "public_key": KEYS["lab-c"].public_key.hex()},
        st.sampled_from(WORDS),
        st.sampled_from(["lab", "overseer", "LAB"]),
    ),
    TOML_VALUES,
)
CHARTER_KEYS = [
    "format",
    "federation_id",
    "members",
    "triggers",
    "rules",
    "limits",
    "id",
    "role",
    "public_key",
    "name",
    "description",
    *federation_data()["rules"],
    "overseer_pause_threshold",
    "min_pause_s",
    "max_message_bytes",
    "max_statement_bytes",
    "max_note_chars",
    "max_triggers_per_vote",
    "max_items_per_message",
]


# Found by this test: the first raised UnicodeEncodeError from the canonical bytes, the second
# made a two-line error message.
_SURROGATE = federation_data()
_SURROGATE["triggers"][0]["description"] = "x\ud800"


@FUZZ
@example(doc=_SURROGATE)
@example(doc={"\n": None})
@given(
    doc=st.one_of(
        TOML_VALUES,
        st.dictionaries(st.sampled_from(CHARTER_KEYS[:6]), TOML_VALUES, max_size=6),
        _json_mutant(federation_data(), CHARTER_VALUES, CHARTER_KEYS),
        # well-formed charters of other sizes and rules, around the bounds
        st.builds(
            federation_data,
            labs=st.integers(0, 4),
            overseers=st.integers(0, 2),
            pause_threshold=st.integers(1, 3),
            lift_threshold=st.integers(1, 3),
            overseer_pause_threshold=st.integers(0, 1),
            max_clock_skew_s=st.sampled_from([0, 30, 86_400, 86_401]),
            limits=st.fixed_dictionaries(
                {},
                optional={
                    "max_statement_bytes": st.sampled_from([1024, 4 * 1024 * 1024 + 1]),
                    "max_triggers_per_vote": st.integers(0, 2),
                },
            ),
        ),
        _json_mutant(json.loads(CHARTER.canonical_bytes), CHARTER_VALUES, CHARTER_KEYS),
    )
)
def test_parse_charter_raises_only_charter_error(doc: Any) -> None:
    _count("charter.parse_charter")
    try:
        charter = parse_charter(doc, source="fuzz")
    except CharterError as exc:
        _one_line(exc)
        event("charter: refused")
        return
    event("charter: parsed")
    # the canonical form parses back to the same charter
    again = parse_charter(json.loads(charter.canonical_bytes), source="canonical")
    assert again.digest == charter.digest


class _OnDisk:
    """A federation on disk (random keys): its generated configs are the valid inputs."""

    def __init__(self, fed: Federation) -> None:
        self.fed = fed

    def __repr__(self) -> str:  # hypothesis shows it with every failing example
        return f"<federation in {self.fed.dir}>"


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> _OnDisk:
    return _OnDisk(init_federation(tmp_path_factory.mktemp("fed") / "fed", 2, 1))


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(v), repr(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON strings are TOML basic strings
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml(x)}" for k, x in v.items()) + "}"
    return json.dumps(str(v))


CONFIG_KEYS = [
    "member_id",
    "charter",
    "key",
    "data_dir",
    "listen",
    "admin_listen",
    "admin_allow_remote",
    "admin_token",
    "peers",
    "log_level",
    "advertise",
    "tls",
    "cert",
    "ca",
    "client_auth",
    "Listen",
    "peer",
]
PATHS = [
    "",
    " ",
    "a\x00b",
    "a" * 300,
    "a/" * 3000,
    ".",
    "/",
    "~",
    "~/x",
    "~nosuchuser-pausenet/x",
    "../charter.toml",
    "../keys",
    "../keys/lab-a.key",
    "../keys/lab-b.key",
    "../data/lab-a",
    "lab-a.toml",
    "/proc/self/status",
    "no/such/file",
]
CONFIG_VALUES = st.one_of(
    st.sampled_from(["127.0.0.1:7400", "[::1]:7401", "lab-a.example:7400", "../data/lab-a", True]),
    st.sampled_from(PATHS + ADDRESSES + list(MEMBERS) + ["debug", "INFO", "trace"]),
    st.lists(st.sampled_from(ADDRESSES), max_size=3),
    st.fixed_dictionaries(
        {
            "cert": st.sampled_from(PATHS),
            "key": st.sampled_from(PATHS),
            "ca": st.sampled_from(PATHS),
        },
        optional={"client_auth": st.one_of(st.booleans(), JSON_LEAF)},
    ),
    TOML_VALUES,
)


def _render_config(d: Any) -> bytes:
    """d as a TOML file (lone surrogates, which TOML cannot hold, become '?')."""
    if not isinstance(d, dict):
        return _toml(d).encode("utf-8", "replace")
    lines = [f"{json.dumps(str(k), ensure_ascii=False)} = {_toml(v)}" for k, v in d.items()]
    return "\n".join(lines).encode("utf-8", "replace") + b"\n"


def _config_bytes(base: dict[str, Any]) -> st.SearchStrategy[bytes]:
    mutated = _json_mutant(base, CONFIG_VALUES, CONFIG_KEYS).map(_render_config)
    return st.one_of(mutated, mutated, mutated.flatmap(wire_mutant), st.binary(max_size=200))


@FUZZ
@given(data=st.data())
def test_load_config_raises_only_config_error_and_loads_only_usable_addresses(
    fed: _OnDisk, data: st.DataObject
) -> None:
    _count("config.load_config")
    configs = fed.fed.dir / "node_configs"
    base = tomllib.loads((configs / "lab-a.toml").read_text(encoding="utf-8"))
    extra = {
        "advertise": "lab-a.example:7400",
        "tls": {"cert": "../tls/lab-a.crt", "key": "../tls/lab-a.key", "ca": "../tls/ca.crt"},
    }
    base |= data.draw(st.sampled_from([{}, extra]), label="with advertise and tls")
    raw = data.draw(_config_bytes(base), label="config")
    path = configs / "fuzz.toml"  # beside the valid ones, so relative paths resolve alike
    path.write_bytes(raw)
    try:
        cfg = load_config(path)
    except ConfigError:  # not checked for one line: messages show paths, which may hold "\n"
        event("config: refused")
        return
    event("config: loaded")
    for address in (cfg.listen, cfg.admin_listen, *cfg.peers, cfg.advertise or ""):
        assert address.isascii(), address
    if cfg.advertise:
        # the address the node puts in its heartbeats must pass every verifier
        member = next(m for m in fed.fed.members if m.id == cfg.member_id)
        hb = sign_heartbeat(
            member.key,
            fed.fed.charter,
            member.id,
            head_seq=0,
            head_hash=b"",
            counter=1,
            issued_at_ms=NOW,
            address=cfg.advertise,
        )
        verdict = verify_envelope(fed.fed.charter, hb.envelope, now_ms=NOW)
        assert not isinstance(verdict, Rejection), f"advertise {cfg.advertise!r}: {verdict}"


# What this test found: each raised a foreign error, or loaded an address that cannot be used.
CONFIG_FOUND = {
    "charter": "a\x00b",  # ValueError: embedded null byte
    "key": "~nosuchuser-pausenet/lab-a.key",  # RuntimeError: could not determine home directory
    "data_dir": "x" * 300,  # OSError: file name too long
    "tls": {"cert": "c\x00", "key": "k", "ca": "a"},  # ValueError: embedded null byte
    "peers": ["[::1%\u00e9]:1"],  # loaded: a non-ASCII zone index
    "listen": "127.0.0.1:\u0667\u0664\u0660\u0660",  # loaded: '٧٤٠٠'.isdigit() is true
    "advertise": "[fe80::1%eth0]:7400",  # loaded, but every heartbeat carrying it is invalid
}


@pytest.mark.parametrize(("key", "value"), CONFIG_FOUND.items(), ids=list(CONFIG_FOUND))
def test_config_inputs_the_fuzzer_found_are_refused(fed: _OnDisk, key: str, value: Any) -> None:
    configs = fed.fed.dir / "node_configs"
    doc = tomllib.loads((configs / "lab-a.toml").read_text(encoding="utf-8")) | {key: value}
    path = configs / f"found-{key}.toml"
    path.write_bytes(_render_config(doc))
    with pytest.raises(ConfigError, match=re.escape(f"toml: {key}")):
        load_config(path)
