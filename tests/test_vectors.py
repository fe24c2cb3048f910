"""Known-answer vectors in tests/vectors/: checked independently (nacl, hashlib) and by pausenet.

The vectors are for other implementations; these tests make sure they stay true and current.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest

from pausenet.core.charter import load_charter, parse_charter
from pausenet.core.dsse import Envelope, Signature, pae
from pausenet.core.payload import decode_heartbeat, decode_statement
from pausenet.core.records import (
    HEARTBEAT_TYPE,
    STATEMENT_TYPE,
    Compliance,
    Heartbeat,
    SignedHeartbeat,
    SignedStatement,
    Statement,
    Vote,
)
from pausenet.core.verify import Rejection, verify_envelope

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
SCRIPT = ROOT / "scripts" / "make-vectors"
NAMES = [
    "statement-vote-pause",
    "statement-trigger-attestation",
    "statement-compliance",
    "statement-vote-lift",
    "heartbeat",
    "heartbeat-empty-log",
    "statement-trigger-attestation-epoch",
]
KEYS = {
    "description",
    "keyid",
    "seed",
    "public_key",
    "payload_type",
    "payload",
    "pae",
    "signature",
    "sha256",
    "charter_digest",
    "decoded",
    "envelope",
}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _independent_pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode("utf-8")
    return (
        b"DSSEv1 "
        + str(len(t)).encode()
        + b" "
        + t
        + b" "
        + str(len(payload)).encode()
        + b" "
        + payload
    )


def _render(obj: Statement | Heartbeat) -> dict[str, Any]:
    """The 'decoded' form: proto field names, bytes as hex, enums by proto name."""
    if isinstance(obj, Heartbeat):
        return {
            "federation_id": obj.federation_id,
            "charter_digest": obj.charter_digest.hex(),
            "member": obj.member,
            "head_seq": obj.head_seq,
            "head_hash": obj.head_hash.hex(),
            "counter": obj.counter,
            "issued_at_ms": obj.issued_at_ms,
            "address": obj.address,
        }
    b = obj.body
    body: dict[str, Any]
    if isinstance(b, Vote):
        decision = {"pause": "DECISION_PAUSE", "lift": "DECISION_LIFT"}[b.decision.value]
        body = {
            "vote": {
                "epoch": b.epoch,
                "decision": decision,
                "triggers": list(b.triggers),
                "note": b.note,
            }
        }
    elif isinstance(b, Compliance):
        state = {"halted": "COMPLIANCE_STATE_HALTED", "not_halted": "COMPLIANCE_STATE_NOT_HALTED"}
        body = {
            "compliance": {
                "epoch": b.epoch,
                "state": state[b.state.value],
                "evidence_sha256": b.evidence_sha256.hex(),
            }
        }
    else:
        body = {
            "trigger_attestation": {
                "trigger_id": b.trigger_id,
                "evidence_sha256": b.evidence_sha256.hex(),
                "note": b.note,
                "epoch": b.epoch,
            }
        }
    return {
        "federation_id": obj.federation_id,
        "charter_digest": obj.charter_digest.hex(),
        "member": obj.member,
        "seq": obj.seq,
        "prev_hash": obj.prev_hash.hex(),
        "issued_at_ms": obj.issued_at_ms,
        **body,
    }


def test_vector_files_present() -> None:
    files = {p.name for p in VECTORS.iterdir()}
    assert {f"{n}.json" for n in NAMES} | {"charter.toml", "charter.canonical.json"} <= files


@pytest.mark.parametrize("name", NAMES)
def test_vector_independently(name: str) -> None:
    v = _load(name)
    assert set(v) == KEYS
    # docs/protocol.md §10: test-only seeds anyone can derive
    seed = hashlib.sha256(f"pausenet test vector key {v['keyid']}".encode()).hexdigest()
    assert v["seed"] == seed
    payload = bytes.fromhex(v["payload"])
    signed = bytes.fromhex(v["pae"])
    assert signed == _independent_pae(v["payload_type"], payload)
    assert signed == pae(v["payload_type"], payload)
    assert v["sha256"] == hashlib.sha256(payload).hexdigest()
    sig = bytes.fromhex(v["signature"])
    # nacl directly: the signature verifies over the PAE bytes, and the seed reproduces it.
    assert nacl.signing.VerifyKey(bytes.fromhex(v["public_key"])).verify(signed, sig) == signed
    sk = nacl.signing.SigningKey(bytes.fromhex(v["seed"]))
    assert bytes(sk.verify_key).hex() == v["public_key"]
    assert sk.sign(signed).signature == sig
    # A changed payload does not verify.
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(bytes.fromhex(v["public_key"])).verify(signed + b"x", sig)


@pytest.mark.parametrize("name", NAMES)
def test_vector_verifies_with_pausenet(name: str) -> None:
    v = _load(name)
    charter = load_charter(VECTORS / "charter.toml")
    assert charter.digest_hex == v["charter_digest"]
    member = charter.member(v["keyid"])
    assert member is not None
    assert member.public_key.hex() == v["public_key"]
    env = Envelope(
        v["payload_type"],
        bytes.fromhex(v["payload"]),
        (Signature(v["keyid"], bytes.fromhex(v["signature"])),),
    )
    assert Envelope.from_json(v["envelope"]) == env
    result = verify_envelope(charter, env, now_ms=v["decoded"]["issued_at_ms"])
    assert not isinstance(result, Rejection), str(result)
    assert result.hash.hex() == v["sha256"]
    if v["payload_type"] == STATEMENT_TYPE:
        assert isinstance(result, SignedStatement)
    else:
        assert v["payload_type"] == HEARTBEAT_TYPE
        assert isinstance(result, SignedHeartbeat)


@pytest.mark.parametrize("name", NAMES)
def test_decoded_fields_match_codec(name: str) -> None:
    v = _load(name)
    payload = bytes.fromhex(v["payload"])
    obj = (
        decode_statement(payload)
        if v["payload_type"] == STATEMENT_TYPE
        else decode_heartbeat(payload)
    )
    assert _render(obj) == v["decoded"]
    assert v["decoded"]["charter_digest"] == v["charter_digest"]


def test_vectors_form_a_chain() -> None:
    # lab-a's log; lab-b's epoch-bound attestation is a log of its own
    statements = [_load(n) for n in NAMES if n.startswith("statement-")]
    statements = [v for v in statements if v["keyid"] == "lab-a"]
    prev = ""
    for seq, v in enumerate(statements, start=1):
        assert v["decoded"]["seq"] == seq
        assert v["decoded"]["prev_hash"] == prev
        prev = v["sha256"]
    hb = _load("heartbeat")["decoded"]
    assert (hb["head_seq"], hb["head_hash"]) == (len(statements), prev)
    empty = _load("heartbeat-empty-log")["decoded"]
    assert (empty["head_seq"], empty["head_hash"]) == (0, "")


def test_every_payload_kind_is_covered() -> None:
    kinds = {
        next(k for k in ("vote", "compliance", "trigger_attestation") if k in _load(n)["decoded"])
        for n in NAMES
        if n.startswith("statement-")
    }
    assert kinds == {"vote", "compliance", "trigger_attestation"}
    decisions = {
        _load(n)["decoded"]["vote"]["decision"] for n in NAMES if "vote" in _load(n)["decoded"]
    }
    assert decisions == {"DECISION_PAUSE", "DECISION_LIFT"}


def test_an_epoch_bound_attestation_carries_field_4() -> None:
    v = _load("statement-trigger-attestation-epoch")
    assert v["decoded"]["trigger_attestation"]["epoch"] == 1
    # the attestation (field 12) is the payload's last field, and epoch its last: field 4 = 1
    assert bytes.fromhex(v["payload"]).endswith(b"\x20\x01")
    assert _load("statement-trigger-attestation")["decoded"]["trigger_attestation"]["epoch"] == 0


def test_charter_files() -> None:
    charter = load_charter(VECTORS / "charter.toml")
    canonical = (VECTORS / "charter.canonical.json").read_bytes()
    assert canonical == charter.canonical_bytes
    assert hashlib.sha256(canonical).hexdigest() == charter.digest_hex
    assert parse_charter(json.loads(canonical)).digest == charter.digest
    for name in NAMES:
        assert _load(name)["charter_digest"] == charter.digest_hex


def test_generator_reproduces_vectors_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "vectors"
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, capture_output=True)
    committed = {p.name: p.read_bytes() for p in VECTORS.iterdir() if p.is_file()}
    regenerated = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(regenerated) == sorted(committed), "vector files differ; run scripts/make-vectors"
    for name, data in regenerated.items():
        assert data == committed[name], f"{name} is out of date; run scripts/make-vectors"


def test_protocol_doc_lists_every_vector_key_and_file() -> None:
    doc = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    section = doc[doc.index("## 10. Test vectors") : doc.index("## 11.")]
    for key in KEYS:
        assert f"| `{key}` |" in section, key
    for name in [*NAMES, "charter.toml", "charter.canonical.json"]:
        assert f"`{name}`" in section, name
    assert 'SHA-256(UTF-8("pausenet test vector key " + member' in section
