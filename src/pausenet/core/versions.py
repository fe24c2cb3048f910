"""Statements signed under several charter versions: verifying and counting them.

interim; govview replaces it. This minimal version verifies an item under the version in force
whose digest it names (its keys and rules at that version) and evaluates the view with the
latest version's rules and roster only. The exact counting rule across versions (a removed
member's later statements, a replaced key with back-dated times, thresholds of which version)
is specified and built in govview's version of this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope
from pausenet.core.verify import Reason, Rejection, Verified, verify_envelope
from pausenet.core.view import View, evaluate

__all__ = ["evaluate_versions", "verify_versions"]


def verify_versions(
    versions: Sequence[Charter], env: Envelope, now_ms: int
) -> Verified | Rejection:
    """Verify env under the version in force it was signed under (pinned version first in
    `versions`, newest last). The rejection reported, when none accepts it, is the newest
    version's unless an older one found something more specific than another charter."""
    if not versions:
        raise ValueError("verify_versions needs at least one charter version")
    first: Rejection | None = None
    specific: Rejection | None = None
    for charter in reversed(versions):
        got = verify_envelope(charter, env, now_ms=now_ms)
        if not isinstance(got, Rejection):
            return got
        first = first or got
        if specific is None and got.reason not in (Reason.WRONG_CHARTER, Reason.UNKNOWN_MEMBER):
            specific = got
    assert first is not None
    if specific is not None and first.reason is Reason.WRONG_CHARTER:
        return specific
    return first


def evaluate_versions(
    versions: Sequence[Charter],
    items: Iterable[Verified],
    now_ms: int,
    *,
    rejected: Iterable[Rejection] = (),
    counted: Set[bytes] | None = None,
) -> View:
    """The view over items verified by `verify_versions`, under the newest version's rules
    (`rejected` and `counted` as for `pausenet.core.view.evaluate`)."""
    if not versions:
        raise ValueError("evaluate_versions needs at least one charter version")
    return evaluate(versions[-1], items, now_ms, rejected=rejected, counted=counted)
