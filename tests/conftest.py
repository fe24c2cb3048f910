"""Shared fixtures. The builders live in tests/helpers.py (`from helpers import ...`)."""

from __future__ import annotations

import pytest
from helpers import T0, Cli, CliResult, make_federation

from pausenet.core.charter import Charter
from pausenet.core.keys import SigningKey


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
