"""`pausenet verify --trust`: check a bundle trusting one charter digest and nothing else.

The bundle carries the node's chain (charter versions from its pin and their approvals,
docs/protocol.md §15.7). From the trusted version the chain is walked forward
(`follow_chain`); the bundle's envelopes are then verified under the versions in force and the
view evaluated under them, and the node's signed answer is checked under the newest.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from pausenet.core.answer import AnswerCheck, check_answer
from pausenet.core.bundle import Bundle
from pausenet.core.charter import Charter, load_charter
from pausenet.core.governance import ChainResult, follow_chain
from pausenet.core.verify import Rejection, Verified
from pausenet.core.versions import Versions, evaluate_versions, verify_versions
from pausenet.core.view import View
from pausenet.errors import CharterError, GovernanceError
from pausenet.node.governance import charter_from_canonical

__all__ = ["TrustedView", "verify_trusting"]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class TrustedView:
    chain: ChainResult
    versions: tuple[Charter, ...]  # in force, pinned first
    view: View
    source: str  # which clock the view was evaluated at
    answer: AnswerCheck | None


def _pin(trust: str, carried: list[Charter]) -> Charter:
    if _HEX64.fullmatch(trust):
        digest = bytes.fromhex(trust)
        for c in carried:
            if c.digest == digest:
                return c
        raise GovernanceError(
            f"--trust {trust[:16]}…: the bundle carries no charter with that digest; give the"
            " trusted charter file instead"
        )
    return load_charter(Path(trust))


def verify_trusting(
    trust: str, bundle: Bundle, *, now_ms: int | None = None, nonce: bytes | None = None
) -> TrustedView:
    """Walk the bundle's chain from the trusted version, then verify its view under the
    versions in force. GovernanceError when not even the trusted version is in force."""
    carried = []
    for i, data in enumerate(bundle.chain):
        try:
            carried.append(charter_from_canonical(data))
        except CharterError as exc:
            raise GovernanceError(f"the bundle's chain.charters[{i}]: {exc}") from exc
    pin = _pin(trust, carried)
    chain = follow_chain(pin, carried, bundle.chain_approvals)
    versions = tuple(r.charter for r in chain.in_force)
    if not versions:
        raise GovernanceError(f"the trusted charter is not in force: {chain.stopped}")
    ratified = Versions.from_chain(chain, bundle.chain_approvals)
    if now_ms is not None:
        now, source = now_ms, "the time given"
    elif bundle.now_ms is not None:
        now, source = bundle.now_ms, "the bundle's time"
    else:
        now, source = time.time_ns() // 1_000_000, "this machine's clock"
    items: list[Verified] = []
    rejected: list[Rejection] = []
    for env in bundle.envelopes:
        got = verify_versions(ratified, env, now)
        if isinstance(got, Rejection):
            rejected.append(got)
        else:
            items.append(got)
    view = evaluate_versions(ratified, items, now, rejected=rejected, counted=bundle.counted)
    return TrustedView(chain, versions, view, source, _answer(ratified, bundle, nonce))


def _answer(versions: Versions, bundle: Bundle, nonce: bytes | None) -> AnswerCheck | None:
    if bundle.answer is None:
        return None
    want = nonce if nonce is not None else bundle.nonce
    return check_answer(
        versions.newest,
        bundle.answer,
        bundle.envelopes,
        nonce=want,
        complete=bundle.complete,
        verify=lambda env, now: verify_versions(versions, env, now),
        evaluate_with=lambda items, now, bad, counted: evaluate_versions(
            versions, items, now, rejected=bad, counted=counted
        ),
    )
