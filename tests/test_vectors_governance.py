"""Known-answer vectors for charter approvals and a two-version chain (tests/vectors/).

Checked with PyNaCl and hashlib directly (an independent reading of docs/protocol.md), then with
pausenet's verifier and chain walk.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.signing
import pytest

from pausenet.core.approval import verify_approval
from pausenet.core.charter import load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.governance import follow_chain

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
APPROVAL_TYPE = "application/vnd.pausenet.charter-approval.v1+protobuf"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num: int, wire: int, value: bytes | int) -> bytes:
    key = _varint(num << 3 | wire)
    if wire == 0:
        assert isinstance(value, int)
        return key + _varint(value)
    assert isinstance(value, bytes)
    return key + _varint(len(value)) + value


def _independent_payload(d: dict[str, Any]) -> bytes:
    """CharterApproval by hand: fields in number order, defaults omitted."""
    parts = [
        (1, 2, d["federation_id"].encode()),
        (2, 0, d["version"]),
        (3, 2, bytes.fromhex(d["charter_digest"])),
        (4, 2, bytes.fromhex(d["previous_digest"])),
        (5, 2, d["member"].encode()),
        (6, 0, d["issued_at_ms"]),
    ]
    return b"".join(_field(n, w, v) for n, w, v in parts if v)


@pytest.mark.parametrize(
    ("name", "charter"), [("approval-genesis", "charter.toml"), ("approval-v2", "charter-v2.toml")]
)
def test_approval_vector_independently(name: str, charter: str) -> None:
    v = _load(f"{name}.json")
    payload = bytes.fromhex(v["payload"])
    assert v["payload_type"] == APPROVAL_TYPE
    assert payload == _independent_payload(v["decoded"])
    t = APPROVAL_TYPE.encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)
    assert bytes.fromhex(v["pae"]) == signed
    sig = bytes.fromhex(v["signature"])
    seed = hashlib.sha256(f"pausenet test vector key {v['keyid']}".encode()).digest()
    sk = nacl.signing.SigningKey(seed)
    assert bytes(sk.verify_key).hex() == v["public_key"]
    assert sk.sign(signed).signature == sig
    assert nacl.signing.VerifyKey(bytes.fromhex(v["public_key"])).verify(signed, sig) == signed
    # the approved charter's digest is SHA-256 of its canonical bytes
    canonical = (VECTORS / charter.replace(".toml", ".canonical.json")).read_bytes()
    assert v["decoded"]["charter_digest"] == hashlib.sha256(canonical).hexdigest()
    assert v["charter_digest"] == v["decoded"]["charter_digest"]
    # and pausenet agrees, with the key of version 1 (lab-a's key is the same in both)
    c = load_charter(VECTORS / charter)
    assert verify_approval(
        c, load_charter(VECTORS / "charter.toml"), Envelope.from_json(v["envelope"])
    )


def test_version_2_names_genesis_and_canonicalizes_as_written() -> None:
    g = load_charter(VECTORS / "charter.toml")
    v2 = load_charter(VECTORS / "charter-v2.toml")
    assert v2.canonical_bytes == (VECTORS / "charter-v2.canonical.json").read_bytes()
    doc = json.loads(v2.canonical_bytes)
    assert doc["format"] == "pausenet.charter.v2"
    assert (doc["version"], doc["previous"]) == (2, g.digest_hex)
    assert doc["rules"]["amend_threshold"] == 2
    assert doc["rules"]["amend_overseer_threshold"] == 0
    rsi = next(t for t in doc["triggers"] if t["id"] == "rsi-detected")
    assert rsi["auto_pause"] == {"attest_threshold": 1, "attesters": ["overseer"]}


def test_the_two_version_chain() -> None:
    v = _load("chain-two-versions.json")
    charters = [load_charter(VECTORS / name) for name in v["charters"]]
    assert charters[0].digest_hex == v["pinned"]
    envs = [Envelope.from_json(e) for e in v["approvals"]]
    # every approval verifies over its PAE with the test key its keyid names
    for e in envs:
        seed = hashlib.sha256(f"pausenet test vector key {e.signatures[0].keyid}".encode()).digest()
        t = e.payload_type.encode()
        signed = b"DSSEv1 %d %s %d %s" % (len(t), t, len(e.payload), e.payload)
        nacl.signing.SigningKey(seed).verify_key.verify(signed, e.signatures[0].sig)
    r = follow_chain(charters[0], charters[1:], envs)
    assert [
        {"version": x.charter.version, "digest": x.charter.digest_hex} for x in r.in_force
    ] == v["in_force"]
    # one approval fewer for version 2, and only genesis is in force
    assert follow_chain(charters[0], charters[1:], envs[:-1]).current == charters[0]
