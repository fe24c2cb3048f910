"""The offline demo runs end to end and leaves a bundle that verifies to NOT_PAUSED, epoch 1."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from helpers import quiet_console

from pausenet.core.bundle import read_bundle
from pausenet.core.charter import load_charter
from pausenet.core.view import PauseState, evaluate_envelopes
from pausenet.errors import PausenetError
from pausenet.ops.demo import DEMO_FEDERATION_ID, run_demo


def test_demo_runs_end_to_end_and_its_bundle_verifies(tmp_path: Path) -> None:
    console, buf = quiet_console()
    result = run_demo(tmp_path / "demo", console=console)
    out = buf.getvalue()

    assert result.final.state is PauseState.NOT_PAUSED
    assert result.final.epoch == 1
    assert result.final.rejected == ()

    # An independent check of the file on disk, with the charter alone.
    charter = load_charter(tmp_path / "demo" / "charter.toml")
    assert charter.federation_id == DEMO_FEDERATION_ID
    bundle = read_bundle(result.bundle_path)
    assert bundle.now_ms is not None
    view = evaluate_envelopes(charter, bundle.envelopes, bundle.now_ms)
    assert (view.state, view.epoch, view.rejected) == (PauseState.NOT_PAUSED, 1, ())
    (epoch,) = view.epochs
    assert epoch.pause is not None
    assert epoch.pause.labs == ("lab-a", "lab-b")
    assert epoch.lift is not None
    assert (epoch.lift.labs, epoch.lift.overseers) == (("lab-a", "lab-b"), ("overseer-a",))

    # The story, in order: not paused, paused, unknown when stale, paused, lifted.
    states = [line.split()[1] for line in out.splitlines() if line.strip().startswith("→")]
    assert states == [
        "NOT_PAUSED",
        "NOT_PAUSED",
        "NOT_PAUSED",
        "PAUSED",
        "PAUSED",
        "UNKNOWN",
        "PAUSED",
        "NOT_PAUSED",
    ]
    assert "PAUSE votes for epoch 1: lab-a (labs 1 of 2 needed)" in out
    assert "(labs 2 of 2 needed, overseers 0 of 1)" in out
    assert "compliance: lab-a compliant, lab-b compliant, lab-c pending" in out
    assert "last certified: PAUSED (epoch 1)" in out
    assert f"pausenet verify --charter {tmp_path / 'demo' / 'charter.toml'}" in out


def test_demo_without_dir_uses_a_new_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result = run_demo(console=quiet_console()[0])
    assert result.dir.parent == tmp_path
    assert result.dir.name.startswith("pausenet-demo-")
    assert result.bundle_path.is_file()


def test_demo_can_rerun_in_its_own_dir(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "d", console=quiet_console()[0])
    first_bundle = json.loads(first.bundle_path.read_text())
    second = run_demo(tmp_path / "d", console=quiet_console()[0])
    assert second.final.state is PauseState.NOT_PAUSED
    assert json.loads(second.bundle_path.read_text()) != first_bundle  # fresh keys


def test_demo_refuses_a_dir_holding_something_else(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "thesis.tex").write_text("precious")
    with pytest.raises(PausenetError, match="not empty and not an earlier demo"):
        run_demo(tmp_path / "d", console=quiet_console()[0])
    assert (tmp_path / "d" / "thesis.tex").read_text() == "precious"
