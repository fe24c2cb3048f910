"""`pausenet charter sign | status | diff`: offline governance from the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import key_for

from pausenet.core.charter import load_charter
from pausenet.core.keys import SigningKey, write_signing_key
from pausenet.ops.cli import cli_main
from pausenet.ops.federation import init_federation


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def invoke(*args: object) -> Result:
        code = cli_main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return Result(code, out, err)

    return invoke


def _amend(genesis: Path, out: Path, *, add_key: SigningKey | None = None, **rules: int) -> Path:
    """A version 2 of genesis: rules changed, and lab-d added when add_key is given."""
    text = genesis.read_text(encoding="utf-8")
    c = load_charter(genesis)
    text = text.replace('format = "pausenet.charter.v1"', 'format = "pausenet.charter.v2"')
    text = text.replace("[rules]", f'version = 2\nprevious = "{c.digest_hex}"\n\n[rules]', 1)
    for k, v in rules.items():
        old = f"{k} = {getattr(c.rules, k)}"
        assert old in text
        text = text.replace(old, f"{k} = {v}")
    if add_key is not None:
        text += f'\n[[members]]\nid = "lab-d"\nrole = "lab"\npublic_key = "{add_key.public_key.hex()}"\n'
    out.write_text(text, encoding="utf-8")
    return out


def test_federation_init_writes_genesis_approved_by_every_member(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fed = init_federation(tmp_path / "f", 3, 1, base_port=20000)
    approvals = sorted((tmp_path / "f" / "approvals").glob("*.json"))
    assert [p.stem for p in approvals] == ["lab-a", "lab-b", "lab-c", "overseer-a"]
    r = cli(
        "charter", "status", fed.charter_path, *[a for p in approvals for a in ("--approvals", p)]
    )
    assert r.code == 0, r
    assert "is in force" in r.out
    r = cli("charter", "status", fed.charter_path, "--approvals", approvals[0], "--json")
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["in_force"] is False
    assert doc["consents"] == ["lab-a"]
    assert "lab-b, lab-c, overseer-a" in doc["missing"][0]


def test_sign_status_and_diff_of_an_amendment(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fed = init_federation(tmp_path / "f", 3, 1, base_port=20000)
    genesis = fed.charter_path
    d_key = key_for("lab-d")
    d_path = tmp_path / "lab-d.key"
    write_signing_key(d_path, d_key)
    v2 = _amend(genesis, tmp_path / "v2.toml", add_key=d_key, pause_threshold=3)

    r = cli("charter", "diff", genesis, v2)
    assert r.code == 0, r
    assert "Version 2 amends version 1" in r.out
    assert "Member lab-d joins as a lab." in r.out
    assert "rules.pause_threshold changes from 2 to 3." in r.out
    assert "lab-d approving with the key this version lists" in r.out
    assert json.loads(cli("charter", "diff", genesis, v2, "--json").out)["changes"]

    approvals = [tmp_path / "approvals-v1.json"]
    approvals[0].write_text(
        json.dumps(
            [json.loads(p.read_text()) for p in sorted((tmp_path / "f" / "approvals").iterdir())]
        )
    )
    keys = tmp_path / "f" / "keys"
    for who in ("lab-a", "lab-b"):
        out = tmp_path / f"{who}-v2.json"
        r = cli("charter", "sign", v2, "--key", keys / f"{who}.key", "--out", out)
        assert r.code == 0, r
        assert f"Wrote {who}'s approval of version 2" in r.err
        approvals.append(out)
    args = [a for p in approvals for a in ("--approvals", p)]
    r = cli("charter", "status", v2, *args, "--trust", genesis)
    assert r.code == 1
    assert "NOT in force" in r.out
    assert "lab-a, lab-b (2 needed)" in r.out
    assert "approval with its new key of lab-d" in r.out
    # lab-d signs on its air-gapped machine: stdout is the approval
    r = cli("charter", "sign", v2, "--key", d_path)
    assert r.code == 0
    (tmp_path / "lab-d-v2.json").write_text(r.out)
    args += ["--approvals", tmp_path / "lab-d-v2.json"]
    r = cli(
        "charter",
        "status",
        v2,
        *args,
        "--trust",
        load_charter(genesis).digest_hex,
        "--chain",
        genesis,
    )
    assert r.code == 0, r
    assert "Version 2" in r.out
    assert "is in force." in r.out
    # without a pin, a version 2 cannot be judged
    r = cli("charter", "status", v2, *args)
    assert r.code == 2
    assert r.err.startswith("error: version 2 amends another version")


def test_sign_refuses_a_key_that_is_no_member_s_without_member(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fed = init_federation(tmp_path / "f", 3, 1, base_port=20000)
    stranger = tmp_path / "x.key"
    write_signing_key(stranger, key_for("mallory"))
    r = cli("charter", "sign", fed.charter_path, "--key", stranger)
    assert r.code == 2
    assert "give --member ID" in r.err
    r = cli(
        "charter",
        "sign",
        fed.charter_path,
        "--key",
        tmp_path / "f" / "keys" / "lab-a.key",
        "--member",
        "lab-b",
    )
    assert r.code == 2
    assert "lab-a's key in the charter, not lab-b's" in r.err
    r = cli("charter", "sign", fed.charter_path, "--key", stranger, "--member", "lab-b")
    assert r.code == 0
    assert "will not count" in r.err
    r = cli("charter", "status", fed.charter_path, "--approvals", tmp_path / "missing.json")
    assert r.code == 2
    assert "approval file not found" in r.err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = cli("charter", "status", fed.charter_path, "--approvals", bad)
    assert r.code == 2
    assert "payloadType" in r.err
