"""Shared fixtures and the hypothesis profiles. The builders live in tests/helpers.py
(`from helpers import ...`).

Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default `dev`, or `ci` when CI is set):

    dev    20 examples per property by default: for iterating, several times faster than ci
    ci     100 by default, derandomized (the same examples on every run, so a failure in CI
           reproduces anywhere), no example database: what .ci/run runs
    deep   1000 by default: a nightly or pre-release hunt

Tests that want more or fewer examples than the default say how many under ci with
`profiles.examples(n)`, which scales n like the loaded profile. No profile has a deadline: on a
loaded machine one slow example is not a bug.
"""

from __future__ import annotations

import os

import pytest
from helpers import T0, Cli, CliResult, make_federation
from hypothesis import HealthCheck, settings

from pausenet.core.charter import Charter
from pausenet.core.keys import SigningKey

_LOADED_MACHINE = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("dev", max_examples=20, print_blob=True, **_LOADED_MACHINE)
settings.register_profile(
    "ci", max_examples=100, derandomize=True, database=None, print_blob=True, **_LOADED_MACHINE
)
settings.register_profile("deep", max_examples=1000, print_blob=True, **_LOADED_MACHINE)


def pytest_configure(config: pytest.Config) -> None:
    # before the test modules are imported, so that their examples(n) see the profile; an
    # explicit --hypothesis-profile is loaded after this and wins
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    if name not in ("dev", "ci", "deep"):
        raise pytest.UsageError(
            f"HYPOTHESIS_PROFILE={name!r} is not a profile; use dev, ci or deep"
        )
    settings.load_profile(name)


def pytest_report_header() -> str:
    # --hypothesis-profile, if given, was loaded after this file: ask for the current one
    s = settings()
    return (
        f"hypothesis profile {settings.get_current_profile_name()!r}"
        f" (max_examples={s.max_examples}, derandomize={s.derandomize});"
        " HYPOTHESIS_PROFILE=dev|ci|deep chooses"
    )


@pytest.fixture
def federation() -> tuple[Charter, dict[str, SigningKey]]:
    """The default federation: labs lab-a..lab-c (pause and lift need 2), overseer-a."""
    return make_federation()


@pytest.fixture
def charter(federation: tuple[Charter, dict[str, SigningKey]]) -> Charter:
    return federation[0]


@pytest.fixture
def keys(federation: tuple[Charter, dict[str, SigningKey]]) -> dict[str, SigningKey]:
    return federation[1]


@pytest.fixture
def now_ms() -> int:
    """A fixed 'now' in Unix ms, the default start time of helpers.log_for."""
    return T0


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run the `pausenet` command line in this process: cli("status", "--node", addr)."""
    from pausenet.ops.cli import cli_main

    def invoke(*args: object) -> CliResult:
        code = cli_main([str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return invoke
