"""The `pausenet` command line: what each command writes and prints, and its exit codes.

Errors are one red line on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import re
import stat
import tomllib
from pathlib import Path

import pytest
from helpers import (
    T0,
    Cli,
    heartbeat_for,
    key_for,
    log_for,
    one_line_error,
    pause,
    pausenet_command,
    quiet_console,
    run_command,
)

import pausenet.ops.cli.app
from pausenet.core.bundle import write_bundle
from pausenet.core.charter import load_charter
from pausenet.core.keys import load_signing_key
from pausenet.core.records import SignedStatement
from pausenet.node.config import load_config
from pausenet.ops.cli import cli_main
from pausenet.ops.demo import DemoResult, run_demo
from pausenet.ops.federation import init_federation


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(tmp_path_factory.mktemp("demo") / "fed", console=quiet_console()[0])


@pytest.fixture
def paused_bundle(tmp_path: Path) -> tuple[Path, Path]:
    """(charter, bundle): lab-a and lab-b voted PAUSE; everyone's heartbeat is fresh."""
    fed = init_federation(tmp_path / "fed", 3, 1)
    c = fed.charter
    keys = {m.id: m.key for m in fed.members}
    logs: dict[str, list[SignedStatement]] = {m: [] for m in keys}
    for m in ("lab-a", "lab-b"):
        logs[m] = log_for(c, keys[m], m, [pause(1)])
    hbs = [heartbeat_for(c, keys[m], m, logs[m], counter=1, issued_at_ms=T0 + 5000) for m in keys]
    bundle = tmp_path / "paused.json"
    envs = [s.envelope for log in logs.values() for s in log] + [h.envelope for h in hbs]
    write_bundle(bundle, envs, T0 + 6000)
    return fed.charter_path, bundle


# -- keygen ---------------------------------------------------------------------------------


def test_keygen_writes_an_owner_only_key_and_prints_the_public_key(
    cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "lab.key"
    r = cli("keygen", "--out", out)
    assert r.code == 0, r
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", r.out)
    assert load_signing_key(out).public_key.hex() == r.out.strip()


def test_keygen_refuses_to_overwrite(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "lab.key"
    first = cli("keygen", "--out", out).out
    one_line_error(cli("keygen", "--out", out), "already exists")
    assert load_signing_key(out).public_key.hex() == first.strip()
    again = cli("keygen", "--out", out, "--force")
    assert again.code == 0
    assert again.out != first
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_keygen_into_a_missing_directory(cli: Cli, tmp_path: Path) -> None:
    one_line_error(cli("keygen", "--out", tmp_path / "no" / "k"), "cannot create key file")


# -- charter show ---------------------------------------------------------------------------


def test_charter_show_prints_digest_and_rules(cli: Cli, tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 3, 1)
    r = cli("charter", "show", fed.charter_path)
    assert r.code == 0, r
    assert fed.charter.digest_hex in r.out
    assert "A pause starts when 2 of 3 labs vote PAUSE" in r.out
    assert "Overseers cannot start a pause." in r.out


def test_charter_show_json(cli: Cli, tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 3, 1)
    doc = json.loads(cli("charter", "show", fed.charter_path, "--json").out)
    assert doc["digest"] == fed.charter.digest_hex
    assert doc["charter"]["rules"]["pause_threshold"] == 2
    assert doc["explanation"] == fed.charter.explain()


def test_charter_show_bad_charter(cli: Cli, tmp_path: Path) -> None:
    one_line_error(cli("charter", "show", tmp_path / "nope.toml"), "charter file not found")
    bad = tmp_path / "bad.toml"
    bad.write_text('federation_id = "x"\n[rules]\npause_threshold = "two"\n')
    one_line_error(cli("charter", "show", bad), str(bad))


# -- federation init ------------------------------------------------------------------------


def test_federation_init_creates_keys_charter_and_configs(cli: Cli, tmp_path: Path) -> None:
    d = tmp_path / "fed"
    r = cli("federation", "init", "--labs", 3, "--overseers", 1, "--dir", d, "--base-port", 9000)
    assert r.code == 0, r
    charter = load_charter(d / "charter.toml")
    assert r.out.count(charter.digest_hex) == 1
    ids = ["lab-a", "lab-b", "lab-c", "overseer-a"]
    assert [m.id for m in charter.members] == ids
    assert not (d / "data").exists()
    assert stat.S_IMODE((d / "keys").stat().st_mode) & 0o077 == 0
    for i, mid in enumerate(ids):
        key = d / "keys" / f"{mid}.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        member = charter.member(mid)
        assert member is not None
        assert load_signing_key(key).public_key == member.public_key
        cfg = load_config(d / "node_configs" / f"{mid}.toml")
        assert cfg.member_id == mid
        assert cfg.listen == f"127.0.0.1:{9000 + 2 * i}"
        assert cfg.admin_listen == f"127.0.0.1:{9000 + 2 * i + 1}"
        others = [f"127.0.0.1:{9000 + 2 * j}" for j in range(len(ids)) if j != i]
        assert list(cfg.peers) == others
        assert cfg.data_dir == (d / "data" / mid).resolve()
    assert {t.id for t in charter.triggers} == {"rsi-detected", "eval-threshold"}


@pytest.mark.parametrize(
    ("labs", "overseers", "pause_t", "lift_t", "lift_ov"),
    [(3, 1, 2, 2, 1), (4, 1, 3, 3, 1), (4, 0, 3, 3, 0), (1, 2, 1, 1, 1), (5, 3, 3, 3, 1)],
)
def test_federation_init_default_thresholds(
    cli: Cli, tmp_path: Path, labs: int, overseers: int, pause_t: int, lift_t: int, lift_ov: int
) -> None:
    d = tmp_path / "fed"
    assert cli("federation", "init", "--labs", labs, "--overseers", overseers, "--dir", d).code == 0
    r = load_charter(d / "charter.toml").rules
    assert (r.pause_threshold, r.lift_threshold, r.lift_overseer_threshold) == (
        pause_t,
        lift_t,
        lift_ov,
    )
    assert r.overseer_pause_threshold == 0  # overseers cannot start a pause


def test_federation_init_charter_is_commented(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 2, 1)
    text = fed.charter_path.read_text()
    for rule in ("pause_threshold", "lift_threshold", "lift_overseer_threshold", "heartbeat_ttl_s"):
        before = text.split(f"\n{rule} =")[0]
        assert before.rstrip().splitlines()[-1].startswith("#"), rule


def test_the_generated_charter_is_the_same_charter_for_the_same_inputs(tmp_path: Path) -> None:
    """The charter's digest for fixed keys and rules is pinned: how the TOML is written may
    change, the charter it loads as may not."""
    from pausenet.core.charter import Role, parse_charter
    from pausenet.ops.federation import FederationMember, charter_toml, default_rules

    roles = [("lab-a", Role.LAB), ("lab-b", Role.LAB), ("lab-c", Role.LAB)]
    members = [
        FederationMember(
            mid, role, key_for(mid), tmp_path / mid, tmp_path / mid, tmp_path / mid, "x", "y"
        )
        for mid, role in [*roles, ("overseer-a", Role.OVERSEER)]
    ]
    text = charter_toml("local", members, default_rules(3, 1))
    assert parse_charter(tomllib.loads(text), source="t").digest_hex == (
        "db797b7a896ebb902d1168374acee29748eba5f942d003aaf8969bb69fbe6369"
    )
    two_labs = charter_toml("test-fed", members[:2], default_rules(2, 0))
    assert parse_charter(tomllib.loads(two_labs), source="t").digest_hex == (
        "df475ec4c404578fc0165f28174eed71ba6686b1dfb8a2fba59c9e1e4cb07913"
    )


def test_federation_init_refuses_a_non_empty_dir_unless_forced(cli: Cli, tmp_path: Path) -> None:
    d = tmp_path / "fed"
    assert cli("federation", "init", "--dir", d).code == 0
    old = load_charter(d / "charter.toml").digest
    (d / "data" / "lab-a").mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    one_line_error(cli("federation", "init", "--dir", d), "not empty", "--force")
    assert cli("federation", "init", "--dir", d, "--labs", 2, "--force").code == 0
    assert load_charter(d / "charter.toml").digest != old
    assert sorted(p.name for p in (d / "keys").iterdir()) == [
        "lab-a.key",
        "lab-b.key",
        "overseer-a.key",
    ]
    assert not (d / "data").exists()
    assert (d / "notes.txt").read_text() == "mine"  # only what init made is replaced


def test_federation_init_into_a_file(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    one_line_error(cli("federation", "init", "--dir", f), "not a directory")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--labs", "0"], "labs must be 1..100, got 0"),
        (["--labs", "101"], "labs must be 1..100, got 101"),
        (["--overseers", "-1"], "overseers must be 0..100, got -1"),
        (["--base-port", "65534"], "base port 65534"),
        (["--base-port", "0"], "base port 0"),
        (["--federation-id", "Bad Id"], "federation_id"),
    ],
)
def test_federation_init_validates_arguments(
    cli: Cli, tmp_path: Path, args: list[str], fragment: str
) -> None:
    one_line_error(cli("federation", "init", "--dir", tmp_path / "fed", *args), fragment)


# -- verify ---------------------------------------------------------------------------------


def test_verify_demo_bundle_not_paused(cli: Cli, demo_run: DemoResult) -> None:
    r = cli("verify", "--charter", demo_run.charter_path, demo_run.bundle_path)
    assert r.code == 0, r
    assert r.out.splitlines()[0].split() == ["State", "NOT_PAUSED"]
    assert "epoch 1 LIFT: labs lab-a, lab-b; overseers overseer-a" in r.out
    assert "Rejected" not in r.out


def test_verify_json(cli: Cli, demo_run: DemoResult) -> None:
    r = cli("verify", "--charter", demo_run.charter_path, demo_run.bundle_path, "--json")
    assert r.code == 0, r
    doc = json.loads(r.out)
    assert (doc["state"], doc["epoch"], doc["rejected"]) == ("NOT_PAUSED", 1, [])
    assert doc["now"] == json.loads(demo_run.bundle_path.read_text())["now"]


def test_verify_paused(cli: Cli, paused_bundle: tuple[Path, Path]) -> None:
    charter, bundle = paused_bundle
    r = cli("verify", "--charter", charter, bundle)
    assert r.code == 0, r
    assert r.out.splitlines()[0].split() == ["State", "PAUSED"]
    assert "epoch 1 PAUSE: labs lab-a, lab-b" in r.out
    assert "pending" in r.out  # compliance column while paused
    doc = json.loads(cli("verify", "--charter", charter, bundle, "--json").out)
    assert (doc["state"], doc["epoch"], doc["as_of"]) == ("PAUSED", 1, T0 + 5000)


def test_verify_now_beyond_the_ttl_is_unknown_but_still_exit_0(
    cli: Cli, paused_bundle: tuple[Path, Path]
) -> None:
    charter, bundle = paused_bundle
    r = cli("verify", "--charter", charter, bundle, "--json", "--now", T0 + 10 * 60_000)
    assert r.code == 0
    doc = json.loads(r.out)
    assert (doc["state"], doc["certified_state"], doc["as_of"]) == ("UNKNOWN", "PAUSED", None)


def test_verify_lists_rejected_envelopes_with_reasons(
    cli: Cli, paused_bundle: tuple[Path, Path]
) -> None:
    charter, bundle = paused_bundle
    doc = json.loads(bundle.read_text())
    sig = doc["envelopes"][0]["signatures"][0]
    sig["sig"] = doc["envelopes"][1]["signatures"][0]["sig"]  # lab-b's signature on lab-a's vote
    bundle.write_text(json.dumps(doc))
    r = cli("verify", "--charter", charter, bundle)
    assert r.code == 0, r
    assert "Rejected envelopes (1)" in r.out
    assert "bad-signature" in r.out
    rejected = json.loads(cli("verify", "--charter", charter, bundle, "--json").out)["rejected"]
    assert [(x["reason"], x["member"]) for x in rejected] == [("bad-signature", "lab-a")]


def test_verify_against_another_charter_rejects_everything(
    cli: Cli, demo_run: DemoResult, paused_bundle: tuple[Path, Path]
) -> None:
    other_charter, _ = paused_bundle
    r = cli("verify", "--charter", other_charter, demo_run.bundle_path, "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert doc["state"] == "UNKNOWN"
    assert {x["reason"] for x in doc["rejected"]} <= {"bad-signature", "wrong-charter"}
    assert len(doc["rejected"]) == len(json.loads(demo_run.bundle_path.read_text())["envelopes"])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{this is not json", "not JSON"),
        ('{"envelopes": [{"payloadType": "x", "payload": "%%%", "signatures": []}]}', "base64"),
        ('{"envelopes": [{"payload": "", "signatures": []}]}', "payloadType"),
        ('{"envelopes": [{"payloadType": "x", "payload": ""}]}', "signatures"),
        ('{"now": "soon", "envelopes": []}', "'now' must be a positive integer"),
        ("42", "expected a JSON object"),
    ],
)
def test_verify_malformed_bundle_exits_2_with_one_line(
    cli: Cli, demo_run: DemoResult, tmp_path: Path, content: str, fragment: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    r = cli("verify", "--charter", demo_run.charter_path, bad)
    one_line_error(r, str(bad), fragment)
    assert r.out == ""


def test_verify_missing_inputs(cli: Cli, demo_run: DemoResult, tmp_path: Path) -> None:
    one_line_error(
        cli("verify", "--charter", tmp_path / "no.toml", demo_run.bundle_path), "charter file not"
    )
    one_line_error(
        cli("verify", "--charter", demo_run.charter_path, tmp_path / "no.json"), "bundle file not"
    )
    one_line_error(
        cli("verify", "--charter", demo_run.charter_path, demo_run.bundle_path, "--now", "-5"),
        "--now -5",
    )


# -- demo, main, and the real console script ---------------------------------------------


def test_demo_command(cli: Cli, tmp_path: Path) -> None:
    r = cli("demo", "--dir", tmp_path / "d")
    assert r.code == 0, r.err
    assert "pausenet verify --charter" in r.out
    assert (tmp_path / "d" / "bundle.json").is_file()


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("verify").code == 2
    assert cli("no-such-command").code == 2


def test_keyboard_interrupt_exits_130_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pausenet.ops.cli.app, "app", interrupted)
    assert cli_main(["demo"]) == 130
    assert capsys.readouterr() == ("", "")


def test_errors_from_the_real_command_never_show_a_traceback(
    demo_run: DemoResult, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"envelopes": [{"payloadType": 1}]}')
    key = tmp_path / "k"
    key.write_text("x")
    for args in (
        ["verify", "--charter", str(demo_run.charter_path), str(bad)],
        ["verify", "--charter", str(bad), str(demo_run.bundle_path)],
        ["keygen", "--out", str(key)],
        ["federation", "init", "--dir", str(key)],
        ["charter", "show", str(tmp_path / "missing.toml")],
    ):
        one_line_error(run_command([*pausenet_command(), *args]))


def test_verify_with_a_nonce_refuses_a_bundle_without_a_signed_answer(
    cli: Cli, demo_run: DemoResult
) -> None:
    """An overseer who sent a nonce expects a fresh signed answer: a bundle stripped of it is
    not a valid answer, whatever its envelopes say."""
    r = cli(
        "verify", "--charter", demo_run.charter_path, demo_run.bundle_path, "--nonce", "ab" * 32
    )
    assert r.code == 1, r
    assert "carries no signed answer" in r.err


def test_numbers_beyond_64_bits_are_refused_without_a_traceback(cli: Cli, tmp_path: Path) -> None:
    huge = str(2**70)
    for args in (
        ("log", "--node", "127.0.0.1:1", "--member", "lab-a", "--from", huge),
        ("vote", "pause", "--config", tmp_path / "x.toml", "--trigger", "t", "--epoch", huge),
    ):
        r = cli(*args)
        assert r.code == 2, r
        assert "Traceback" not in r.out + r.err


def test_writing_a_bundle_into_a_directory_is_one_line(tmp_path: Path) -> None:
    from pausenet.core.bundle import write_bundle
    from pausenet.errors import BundleError

    (tmp_path / "dir").mkdir()
    with pytest.raises(BundleError, match="cannot write bundle"):
        write_bundle(tmp_path / "dir", [], None)


# -- checking a log as a node sent it (pausenet log --charter) ------------------------------


def test_check_log_flags_a_gap_a_broken_link_and_another_members_statement(
    paused_bundle: tuple[Path, Path],
) -> None:
    from pausenet.client import check_log
    from pausenet.core.dsse import Envelope

    charter = load_charter(paused_bundle[0])
    key = load_signing_key(paused_bundle[0].parent / "keys" / "lab-a.key")
    other = load_signing_key(paused_bundle[0].parent / "keys" / "lab-b.key")
    log = log_for(charter, key, "lab-a", [pause(1), pause(2), pause(3), pause(4)])
    envs = [s.envelope for s in log]
    now = T0 + 10_000

    good = check_log(envs, "lab-a", charter, now_ms=now)
    assert good
    assert good.verified
    assert [e.statement.seq for e in good.entries if e.statement] == [1, 2, 3, 4]

    gap = check_log([envs[0], envs[2]], "lab-a", charter, now_ms=now)
    assert not gap
    assert [e.problem for e in gap.entries] == ["", "seq 3 after 1"]

    # a validly signed seq 2 that does not link to the seq 1 before it
    fork = log_for(charter, key, "lab-a", [pause(9)], after=[log[0]], start_ms=T0 + 500)
    forged_first = log_for(charter, key, "lab-a", [pause(1, note="another")])[0]
    broken = check_log([forged_first.envelope, fork[0].envelope], "lab-a", charter, now_ms=now)
    assert [e.problem for e in broken.entries] == [
        "",
        "broken chain: prev_hash is not the hash of the statement before",
    ]

    theirs = log_for(charter, other, "lab-b", [pause(1)])[0].envelope
    mixed = check_log([theirs], "lab-a", charter, now_ms=now)
    assert mixed.entries[0].problem == "a statement of lab-b, not lab-a"

    junk = Envelope(envs[0].payload_type, b"\xff\xff", envs[0].signatures)
    unchecked = check_log([junk, envs[1]], "lab-a", None, now_ms=now)
    assert not unchecked.verified
    assert unchecked.entries[0].statement is None
    assert unchecked.entries[0].problem.startswith("malformed")
    assert unchecked.entries[1].problem == ""  # decoded, links not checked without a charter
