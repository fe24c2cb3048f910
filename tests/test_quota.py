"""The statement quota (docs/protocol.md §5): at most `rules.max_statements_per_hour` statements
of one member count per fixed hour of issued_at; the view rejects the rest (reason `quota`), a
node's ingest refuses them, and a node refuses to sign one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from helpers import T0, attest, federation_data, heartbeat_for, key_for, log_for
from netutil import Cluster

from pausenet.core.charter import parse_charter
from pausenet.core.quota import DEFAULT_MAX_STATEMENTS_PER_HOUR, WINDOW_MS
from pausenet.core.view import evaluate
from pausenet.errors import CharterError, Reason, SigningRefusedError
from pausenet.node.messages import Items
from pausenet.node.replica import Replica
from pausenet.ops.federation import approve_charter

HOUR0 = (T0 // WINDOW_MS + 1) * WINDOW_MS  # the start of a window


def _charter(quota: int | None, fmt: str = "pausenet.charter.v2") -> Any:
    data = federation_data(3, 1)
    data["format"] = fmt
    if quota is not None:
        data["rules"]["max_statements_per_hour"] = quota
    return parse_charter(data, source="test charter")


def test_the_default_quota_leaves_format_1_digests_unchanged() -> None:
    v1 = parse_charter(federation_data(3, 1), source="v1")
    assert v1.max_statements_per_hour == DEFAULT_MAX_STATEMENTS_PER_HOUR == 600
    assert b"max_statements_per_hour" not in v1.canonical_bytes
    explicit = _charter(DEFAULT_MAX_STATEMENTS_PER_HOUR)
    assert b"max_statements_per_hour" not in explicit.canonical_bytes
    assert explicit.digest == _charter(None).digest
    three = _charter(3)
    assert three.max_statements_per_hour == 3
    assert b'"max_statements_per_hour":3' in three.canonical_bytes


@pytest.mark.parametrize(
    ("quota", "fmt", "message"),
    [
        (0, "pausenet.charter.v2", "rules.max_statements_per_hour: 0 is outside 1..1000000"),
        (3, "pausenet.charter.v1", "format: 'pausenet.charter.v1' has no version"),
    ],
)
def test_a_bad_quota_is_refused_with_the_key_and_the_fix(
    quota: int, fmt: str, message: str
) -> None:
    with pytest.raises(CharterError, match=re.escape(message)):
        _charter(quota, fmt)


def test_statements_over_the_quota_of_their_hour_do_not_count() -> None:
    charter = _charter(3)
    key = key_for("lab-a")
    # four in the first hour (the fourth is over), then the log can go on only after it
    first = log_for(charter, key, "lab-a", [attest() for _ in range(4)], HOUR0)
    view = evaluate(charter, first, HOUR0 + 10_000)
    assert view.member("lab-a").head_seq == 3  # type: ignore[union-attr]
    assert [(r.reason, r.payload_hash) for r in view.rejected] == [(Reason.QUOTA, first[3].hash)]
    assert "max_statements_per_hour (3)" in view.rejected[0].detail
    # the same fourth statement in the next hour counts
    later = log_for(charter, key, "lab-a", [attest()], HOUR0 + WINDOW_MS, after=first[:3])
    hb = heartbeat_for(charter, key, "lab-a", [*first[:3], *later], 1, HOUR0 + WINDOW_MS + 5)
    view = evaluate(charter, [*first[:3], *later, hb], HOUR0 + WINDOW_MS + 10)
    assert view.member("lab-a").head_seq == 4  # type: ignore[union-attr]
    assert not view.rejected


async def test_ingest_refuses_a_statement_over_quota_with_the_reason() -> None:
    charter = _charter(3)
    log = log_for(charter, key_for("lab-a"), "lab-a", [attest() for _ in range(5)], HOUR0)
    replica = Replica(charter, clock=lambda: HOUR0 + 10_000)
    report = await replica.ingest(Items(statements=tuple(s.envelope for s in log)))
    assert report.statements == 3
    assert report.rejected[Reason.QUOTA] == 1  # the fourth; the fifth then has a gap
    assert replica.head("lab-a")[0] == 3
    # one at a time, too
    replica = Replica(charter, clock=lambda: HOUR0 + 10_000)
    for st in log[:4]:
        report = await replica.ingest(Items(statements=(st.envelope,)))
    assert dict(report.rejected) == {Reason.QUOTA: 1}
    assert replica.head("lab-a")[0] == 3


async def test_a_node_refuses_to_sign_over_its_quota_with_one_line(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, running=("lab-a",))
    path = cluster.fed.charter_path
    text = path.read_text(encoding="utf-8")
    text = text.replace('format = "pausenet.charter.v1"', 'format = "pausenet.charter.v2"')
    text = text.replace("[rules]\n", "[rules]\nmax_statements_per_hour = 2\n", 1)
    path.write_text(text, encoding="utf-8")
    approve_charter(path.parent)  # the edited genesis is in force only once every member approved
    async with cluster:
        node = cluster["lab-a"]

        async def sign_six() -> None:
            for _ in range(6):  # two fit in an hour; more only if the hour turns meanwhile
                await node.attest_trigger("eval-threshold")

        with pytest.raises(SigningRefusedError) as info:
            await sign_six()
        msg = str(info.value)
        assert "\n" not in msg
        assert "lab-a has signed 2 statements this hour" in msg
        assert "max_statements_per_hour" in msg
        assert node.replica.head("lab-a")[0] % 2 == 0
