"""Bundles: the JSON file overseers verify offline; every malformation is one clear line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import T0, heartbeat_for, log_for, pause

import pausenet.core.bundle
from pausenet.core.bundle import Bundle, evaluate_bundle, read_bundle, write_bundle
from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.keys import SigningKey
from pausenet.core.view import PauseState
from pausenet.errors import BundleError


@pytest.fixture
def envelopes(charter: Charter, keys: dict[str, SigningKey]) -> list[Envelope]:
    log = log_for(charter, keys["lab-a"], "lab-a", [pause(1)])
    hb = heartbeat_for(charter, keys["lab-a"], "lab-a", log, counter=1, issued_at_ms=T0 + 1000)
    return [log[0].envelope, hb.envelope]


def write_json(tmp_path: Path, doc: Any) -> Path:
    p = tmp_path / "bundle.json"
    p.write_text(json.dumps(doc))
    return p


def error_for(path: Path) -> str:
    with pytest.raises(BundleError) as info:
        read_bundle(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    return msg


def test_round_trip_with_now(tmp_path: Path, envelopes: list[Envelope]) -> None:
    p = tmp_path / "b.json"
    write_bundle(p, envelopes, T0 + 5000)
    assert read_bundle(p) == Bundle(tuple(envelopes), T0 + 5000)
    assert json.loads(p.read_text())["envelopes"] == [e.to_json() for e in envelopes]
    assert [x.name for x in tmp_path.iterdir()] == ["b.json"]  # no temp file left behind


def test_round_trip_without_now(tmp_path: Path, envelopes: list[Envelope]) -> None:
    p = tmp_path / "b.json"
    write_bundle(p, envelopes, None)
    assert "now" not in json.loads(p.read_text())
    assert read_bundle(p) == Bundle(tuple(envelopes), None)


def test_a_bare_list_of_envelopes_is_a_bundle(tmp_path: Path, envelopes: list[Envelope]) -> None:
    p = write_json(tmp_path, [e.to_json() for e in envelopes])
    assert read_bundle(p) == Bundle(tuple(envelopes), None)


def test_an_empty_bundle_is_valid(tmp_path: Path) -> None:
    assert read_bundle(write_json(tmp_path, {"envelopes": []})) == Bundle((), None)


def test_missing_file(tmp_path: Path) -> None:
    assert "bundle file not found" in error_for(tmp_path / "nope.json")


def test_not_json(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    p.write_text("{not json")
    assert "not JSON" in error_for(p)


def test_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    p.write_bytes(b'{"envelopes": ["\xff"]}')
    assert "not JSON (not UTF-8 text)" in error_for(p)


def test_absurd_nesting(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    p.write_text("[" * 100_000 + "]" * 100_000)
    assert "not usable JSON" in error_for(p)


@pytest.mark.parametrize("doc", [42, "envelopes", None, True])
def test_not_an_object_or_list(tmp_path: Path, doc: Any) -> None:
    assert "expected a JSON object with 'envelopes' or a list" in error_for(
        write_json(tmp_path, doc)
    )


def test_object_without_envelopes(tmp_path: Path) -> None:
    assert "no 'envelopes' list" in error_for(write_json(tmp_path, {"now": T0}))


def test_envelopes_not_a_list(tmp_path: Path) -> None:
    assert "'envelopes' must be a list" in error_for(write_json(tmp_path, {"envelopes": {}}))


def test_unknown_key(tmp_path: Path) -> None:
    msg = error_for(write_json(tmp_path, {"envelopes": [], "signature": "x"}))
    assert "unknown key 'signature'" in msg


@pytest.mark.parametrize("now", ["1700000000000", 1.5e12, True, 0, -1, 2**63, None])
def test_now_must_be_a_positive_integer(tmp_path: Path, now: Any) -> None:
    msg = error_for(write_json(tmp_path, {"now": now, "envelopes": []}))
    assert "'now' must be a positive integer (Unix ms)" in msg


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.pop("payloadType"), "needs a string 'payloadType'"),
        (lambda e: e.pop("payload"), "needs a base64 string 'payload'"),
        (lambda e: e.update(payload="!!not base64!!"), "'payload' is not valid base64"),
        (lambda e: e.update(signatures="sig"), "needs a 'signatures' list"),
        (lambda e: e["signatures"][0].update(sig="%%%"), "'sig' is not valid base64"),
        (lambda e: e["signatures"][0].update(keyid=7), "'keyid' must be a string"),
    ],
)
def test_malformed_envelope_is_named_by_index(
    tmp_path: Path, envelopes: list[Envelope], mutate: Any, expected: str
) -> None:
    docs = [e.to_json() for e in envelopes]
    mutate(docs[1])
    msg = error_for(write_json(tmp_path, {"envelopes": docs}))
    assert "envelopes[1] is malformed: " in msg
    assert expected in msg


def test_envelope_that_is_not_an_object(tmp_path: Path) -> None:
    assert "envelopes[0] is malformed: envelope must be a JSON object" in error_for(
        write_json(tmp_path, [[1, 2]])
    )


def test_too_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pausenet.core.bundle, "MAX_BUNDLE_BYTES", 1024 * 1024)
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"envelopes": [], "pad": "x" * (1024 * 1024)}))
    assert "larger than 1 MiB" in error_for(p)


def test_write_into_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="cannot write bundle"):
        write_bundle(tmp_path / "no" / "b.json", [], None)


def test_evaluate_uses_given_now_then_bundle_now_then_clock(
    tmp_path: Path, charter: Charter, envelopes: list[Envelope]
) -> None:
    p = tmp_path / "b.json"
    write_bundle(p, envelopes, T0 + 2000)
    view, source = evaluate_bundle(charter, p, now_ms=T0 + 3000)
    assert (view.now_ms, source) == (T0 + 3000, "the time given")
    view, source = evaluate_bundle(charter, p)
    assert (view.now_ms, source) == (T0 + 2000, "the bundle's time")
    write_bundle(p, envelopes, None)
    before = time.time_ns() // 1_000_000
    view, source = evaluate_bundle(charter, p)
    assert source == "this machine's clock"
    assert before <= view.now_ms <= time.time_ns() // 1_000_000


def test_evaluate_lists_rejected_envelopes(
    tmp_path: Path, charter: Charter, envelopes: list[Envelope]
) -> None:
    docs = [e.to_json() for e in envelopes]
    docs[0]["signatures"][0]["sig"] = envelopes[1].to_json()["signatures"][0]["sig"]
    p = write_json(tmp_path, {"now": T0 + 2000, "envelopes": docs})
    view, _ = evaluate_bundle(charter, p)
    assert [r.reason.value for r in view.rejected] == ["bad-signature"]
    assert view.state is PauseState.UNKNOWN  # the vote is not counted and nobody else is synced


# -- what rejects a whole bundle (docs/protocol.md §9) ---------------------------------------


def _unpadded(envelope_json: dict[str, Any]) -> str:
    sig: str = envelope_json["signatures"][0]["sig"]
    assert sig.endswith("==")  # 64 bytes
    return sig.rstrip("=")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda e: e.pop("signatures"), "envelope needs a 'signatures' list"),
        (lambda e: e["signatures"][0].update(sig=_unpadded(e)), "'sig' is not valid base64"),
        (lambda e: e.update(payload=e["payload"] + "\n"), "'payload' is not valid base64"),
        (lambda e: e["signatures"][0].pop("sig"), "envelope needs a base64 string 'sig'"),
    ],
    ids=["no-signatures", "unpadded-base64", "junk-in-base64", "no-sig"],
)
def test_one_malformed_envelope_rejects_the_whole_bundle(
    tmp_path: Path, envelopes: list[Envelope], mutate: Any, expected: str
) -> None:
    """Not a rejected envelope in an evaluated view: the file is not a bundle (exit 2)."""
    docs = [e.to_json() for e in envelopes]
    mutate(docs[0])
    msg = error_for(write_json(tmp_path, {"now": T0, "envelopes": docs}))
    assert f"envelopes[0] is malformed: {expected}" in msg


def test_a_malformed_answer_rejects_the_whole_bundle(
    tmp_path: Path, envelopes: list[Envelope]
) -> None:
    doc = {"envelopes": [e.to_json() for e in envelopes], "answer": {"payloadType": "x"}}
    assert "'answer' is malformed: envelope needs a base64 string 'payload'" in error_for(
        write_json(tmp_path, doc)
    )


@pytest.mark.parametrize(
    "text",
    [
        '{"envelopes": [], "envelopes": []}',
        '{"now": 1, "envelopes": [], "now": 2}',
        '{"envelopes": [{"payloadType": "a", "payloadType": "b", "payload": "", "signatures": []}]}',
        '{"envelopes": [{"payloadType": "a", "payload": "", "signatures": [{"sig": "", "sig": ""}]}]}',
    ],
    ids=["envelopes", "now", "in-an-envelope", "in-a-signature"],
)
def test_a_key_given_twice_rejects_the_bundle(tmp_path: Path, text: str) -> None:
    p = tmp_path / "b.json"
    p.write_text(text)
    assert "appears twice in one JSON object" in error_for(p)


@pytest.mark.parametrize("nonce", ["ab" * 16, "AB" * 16, "0f" * 64])
def test_a_nonce_is_16_to_64_bytes_of_hex(tmp_path: Path, nonce: str) -> None:
    bundle = read_bundle(write_json(tmp_path, {"nonce": nonce, "envelopes": []}))
    assert bundle.nonce == bytes.fromhex(nonce)


@pytest.mark.parametrize(
    "nonce", ["", "ab" * 15, "ab" * 65, "abc" * 11, "ab " * 16, "zz" * 16, 1234, None]
)
def test_a_nonce_without_an_answer_is_still_checked(tmp_path: Path, nonce: Any) -> None:
    msg = error_for(write_json(tmp_path, {"nonce": nonce, "envelopes": []}))
    assert "'nonce' must be 16 to 64 bytes in hex (32 to 128 hex digits)" in msg
