"""Example counts that scale with the hypothesis profile (tests/conftest.py registers them)."""

from __future__ import annotations

from hypothesis import settings


def examples(under_ci: int) -> int:
    """`under_ci` examples under the ci profile, scaled like the loaded profile's default
    (dev: a fifth, deep: ten times); at least 10, so that every property still gets a few."""
    factor = settings().max_examples / settings.get_profile("ci").max_examples
    return max(10, round(under_ci * factor))
