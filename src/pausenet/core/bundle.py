"""Bundles: a JSON file of DSSE envelopes that anyone can verify offline with the charter.

    {"now": 1700000000000, "envelopes": [{"payloadType": …, "payload": …, "signatures": […]}],
     "counted": ["<hex>", …],
     "nonce": "<hex>", "answer": {"payloadType": "application/vnd.pausenet.answer.v1+protobuf", …}}

`now` (Unix ms, optional) is the time the bundle's answer was taken; `nonce` and `answer`
(optional) are the overseer's nonce and the node's signed answer for it (`pausenet view --out`
writes them). `counted` (optional) makes the bundle a bounded proof with partial logs: the
payload hashes of its statements that the answering node counts (docs/protocol.md §8.5); without
it the bundle's logs are complete and every statement must link to seq 1. `chain` (optional)
carries the node's charter versions in force from its pin and their approvals,
`{"charters": [<base64 canonical bytes>], "approvals": [<envelope>]}`, so that
`pausenet verify --trust` needs one trusted digest (§15.7). A bare JSON list of envelopes is
accepted too. docs/protocol.md §9 is the spec.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pausenet.core.answer import MAX_NONCE, MIN_NONCE, AnswerCheck, check_answer
from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.files import write_atomic
from pausenet.core.view import View, evaluate_envelopes
from pausenet.errors import BundleError, EnvelopeFormatError

__all__ = [
    "MAX_BUNDLE_BYTES",
    "Bundle",
    "check_bundle_answer",
    "evaluate_bundle",
    "read_bundle",
    "view_of_bundle",
    "write_bundle",
]

MAX_BUNDLE_BYTES = 64 * 1024 * 1024
_KEYS = {"now", "envelopes", "counted", "nonce", "answer", "chain"}
_HASH_RE = re.compile("[0-9a-f]{64}")
_NONCE_RE = re.compile(f"(?:[0-9A-Fa-f]{{2}}){{{MIN_NONCE},{MAX_NONCE}}}")


@dataclass(frozen=True)
class Bundle:
    """What a bundle file holds; only its JSON shape has been checked."""

    envelopes: tuple[Envelope, ...]
    now_ms: int | None = None
    nonce: bytes | None = None
    answer: Envelope | None = None  # the node's signed answer, not yet checked
    chain: tuple[bytes, ...] = ()  # canonical bytes of charter versions, not yet checked
    chain_approvals: tuple[Envelope, ...] = ()
    # None: complete logs; else the statements a bounded proof's node counts (payload hashes)
    counted: frozenset[bytes] | None = None

    @property
    def complete(self) -> bool:
        return self.counted is None


def read_bundle(path: Path) -> Bundle:
    """The envelopes in a bundle file, its `now`, and its nonce and signed answer if present.

    Only the JSON shape is checked here; signatures and rules are the verifier's job.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BUNDLE_BYTES + 1)
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: bundle file not found") from exc
    except OSError as exc:
        raise BundleError(f"{path}: cannot read bundle: {exc.strerror}") from exc
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES // (1024 * 1024)} MiB")
    try:
        doc = json.loads(
            data.decode("utf-8"), object_pairs_hook=lambda pairs: _one_of_each(path, pairs)
        )
    except UnicodeDecodeError as exc:
        raise BundleError(f"{path}: not JSON (not UTF-8 text)") from exc
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from exc
    except (ValueError, RecursionError) as exc:  # huge numbers, absurd nesting
        raise BundleError(
            f"{path}: not usable JSON: {str(exc)[:120] or 'nested too deeply'}"
        ) from exc

    now: int | None = None
    nonce: bytes | None = None
    answer: Envelope | None = None
    chain: tuple[bytes, ...] = ()
    chain_approvals: tuple[Envelope, ...] = ()
    counted: frozenset[bytes] | None = None
    if isinstance(doc, list):
        raw = doc
    elif isinstance(doc, dict):
        unknown = sorted(set(doc) - _KEYS)
        if unknown:
            raise BundleError(
                f"{path}: unknown key {unknown[0][:64]!r}; a bundle has 'envelopes' and"
                " optionally 'now', 'counted', 'nonce', 'answer' and 'chain'"
            )
        if "envelopes" not in doc:
            raise BundleError(f"{path}: no 'envelopes' list")
        raw = doc["envelopes"]
        if not isinstance(raw, list):
            raise BundleError(f"{path}: 'envelopes' must be a list")
        if "now" in doc:
            n = doc["now"]
            if isinstance(n, bool) or not isinstance(n, int) or not 0 < n < 2**63:
                raise BundleError(f"{path}: 'now' must be a positive integer (Unix ms), got {n!r}")
            now = n
        if "nonce" in doc:
            nonce = _nonce(path, doc["nonce"])
        if "counted" in doc:
            counted = _counted(path, doc["counted"]) or None
        if "answer" in doc:
            try:
                answer = Envelope.from_json(doc["answer"])
            except EnvelopeFormatError as exc:
                raise BundleError(f"{path}: 'answer' is malformed: {exc}") from exc
        if "chain" in doc:
            chain, chain_approvals = _chain(path, doc["chain"])
    else:
        raise BundleError(
            f"{path}: expected a JSON object with 'envelopes' or a list of envelopes,"
            f" got {type(doc).__name__}"
        )

    envelopes = []
    for i, obj in enumerate(raw):
        try:
            envelopes.append(Envelope.from_json(obj))
        except EnvelopeFormatError as exc:
            raise BundleError(f"{path}: envelopes[{i}] is malformed: {exc}") from exc
    return Bundle(tuple(envelopes), now, nonce, answer, chain, chain_approvals, counted)


def _chain(path: Path, value: object) -> tuple[tuple[bytes, ...], tuple[Envelope, ...]]:
    if not isinstance(value, dict) or set(value) - {"charters", "approvals"}:
        raise BundleError(f"{path}: 'chain' must be an object with 'charters' and 'approvals'")
    charters = value.get("charters", [])
    approvals = value.get("approvals", [])
    if not isinstance(charters, list) or not isinstance(approvals, list):
        raise BundleError(f"{path}: 'chain' holds lists 'charters' and 'approvals'")
    out = []
    for i, c in enumerate(charters):
        try:
            out.append(base64.b64decode(c, validate=True))
        except (TypeError, ValueError) as exc:
            raise BundleError(f"{path}: chain.charters[{i}] is not base64") from exc
    envs = []
    for i, obj in enumerate(approvals):
        try:
            envs.append(Envelope.from_json(obj))
        except EnvelopeFormatError as exc:
            raise BundleError(f"{path}: chain.approvals[{i}] is malformed: {exc}") from exc
    return tuple(out), tuple(envs)


def _one_of_each(path: Path, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice: readers differ on which one wins (the first,
    the last, an error), so a bundle that relies on one could mean two things."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise BundleError(
                f"{path}: key {key[:64]!r} appears twice in one JSON object; a bundle says each"
                " thing once"
            )
        obj[key] = value
    return obj


def _nonce(path: Path, value: object) -> bytes:
    # The same bounds as GetView's, answer or not: a bundle's nonce is the one sent to the node.
    if not isinstance(value, str) or not _NONCE_RE.fullmatch(value):
        raise BundleError(
            f"{path}: 'nonce' must be {MIN_NONCE} to {MAX_NONCE} bytes in hex"
            f" ({2 * MIN_NONCE} to {2 * MAX_NONCE} hex digits)"
        )
    return bytes.fromhex(value)


def _counted(path: Path, value: object) -> frozenset[bytes]:
    if not isinstance(value, list) or not all(
        isinstance(h, str) and _HASH_RE.fullmatch(h) for h in value
    ):
        raise BundleError(
            f"{path}: 'counted' must be a list of payload hashes (64 lowercase hex digits each)"
        )
    return frozenset(bytes.fromhex(h) for h in value)


def view_of_bundle(
    charter: Charter, bundle: Bundle, *, now_ms: int | None = None
) -> tuple[View, str]:
    """Verify every envelope in a bundle and evaluate the view at now_ms if given, else at the
    bundle's `now`, else at this machine's clock. Returns the view and a few words saying which
    clock was used."""
    if now_ms is not None:
        now, source = now_ms, "the time given"
    elif bundle.now_ms is not None:
        now, source = bundle.now_ms, "the bundle's time"
    else:
        now, source = time.time_ns() // 1_000_000, "this machine's clock"
    return evaluate_envelopes(charter, bundle.envelopes, now, counted=bundle.counted), source


def evaluate_bundle(charter: Charter, path: Path, *, now_ms: int | None = None) -> tuple[View, str]:
    """Read a bundle file and evaluate its view (see `view_of_bundle`)."""
    return view_of_bundle(charter, read_bundle(path), now_ms=now_ms)


def check_bundle_answer(
    charter: Charter, bundle: Bundle, *, nonce: bytes | None = None
) -> AnswerCheck | None:
    """Check the bundle's signed answer against its envelopes; None when it carries none.

    The nonce checked is `nonce` if given (the one the overseer sent), else the bundle's own.
    """
    if bundle.answer is None:
        return None
    want = nonce if nonce is not None else bundle.nonce
    if bundle.counted is not None:
        # a partial bundle is checked with what the node signed it counts; say if that differs
        check = check_answer(charter, bundle.answer, bundle.envelopes, nonce=want)
        if check.answer is not None and frozenset(check.answer.counted) != bundle.counted:
            extra = ("the bundle's 'counted' differs from what its answer signed",)
            return replace(check, problems=check.problems + extra)
        return check
    return check_answer(
        charter, bundle.answer, bundle.envelopes, nonce=want, complete=bundle.complete
    )


def write_bundle(
    path: Path,
    envelopes: Iterable[Envelope],
    now_ms: int | None,
    *,
    nonce: bytes | None = None,
    answer: Envelope | None = None,
    counted: Iterable[bytes] | None = None,
    chain: tuple[tuple[bytes, ...], tuple[Envelope, ...]] | None = None,
) -> None:
    """Write a bundle atomically (a reader never sees half a file). `counted`: None (or empty)
    for complete logs, else the statements a bounded proof's node counts."""
    doc: dict[str, object] = {}
    if now_ms is not None:
        doc["now"] = now_ms
    hashes = sorted(h.hex() for h in counted or ())
    if hashes:
        doc["counted"] = hashes
    if nonce is not None:
        doc["nonce"] = nonce.hex()
    doc["envelopes"] = [e.to_json() for e in envelopes]
    if answer is not None:
        doc["answer"] = answer.to_json()
    if chain is not None:
        doc["chain"] = {
            "charters": [base64.b64encode(c).decode("ascii") for c in chain[0]],
            "approvals": [e.to_json() for e in chain[1]],
        }
    text = json.dumps(doc, indent=1) + "\n"
    if len(text) > MAX_BUNDLE_BYTES:  # ASCII: characters are bytes
        raise BundleError(
            f"{path}: the bundle would be {len(text) / 2**20:.0f} MiB, over the"
            f" {MAX_BUNDLE_BYTES // 2**20} MiB a verifier reads; check each log on its own with"
            " `pausenet log --member M --charter FILE` instead"
        )
    try:
        write_atomic(path, text, mode=0o644)
    except OSError as exc:
        raise BundleError(f"{path}: cannot write bundle: {exc.strerror}") from exc
