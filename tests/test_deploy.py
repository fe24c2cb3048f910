"""What deploy/ ships, checked with the real tools: the Prometheus alert rules (`promtool check
rules`, and `promtool test rules` on deploy/prometheus/alerts_test.yml), the example Prometheus
config, the systemd unit (`systemd-analyze verify` and its exposure score), and the overseer's
check script. Each test skips,
naming the package, where its tool is missing; .ci/run installs them."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest
from netutil import Cluster

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
UNIT = ROOT / "deploy" / "systemd" / "pausenet@.service"
INSTALLED_PAUSENET = "/opt/pausenet/bin/pausenet"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian package {package}; .ci/run installs it)")
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, check=False, timeout=120)


# -- Prometheus -----------------------------------------------------------------------------


def test_promtool_checks_the_alert_rules() -> None:
    out = run(tool("promtool", "prometheus"), "check", "rules", "alerts.yml", cwd=PROMETHEUS_DIR)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 6 rules found" in out.stdout


def test_promtool_unit_tests_every_alert() -> None:
    out = run(
        tool("promtool", "prometheus"), "test", "rules", "alerts_test.yml", cwd=PROMETHEUS_DIR
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rules = (PROMETHEUS_DIR / "alerts.yml").read_text(encoding="utf-8")
    tests = (PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8")
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(alerts) == 6
    for name in alerts:
        assert f"alertname: {name}" in tests, f"{name} has no test in alerts_test.yml"


def test_promtool_checks_the_example_prometheus_config() -> None:
    out = run(
        tool("promtool", "prometheus"), "check", "config", "prometheus.yml", cwd=PROMETHEUS_DIR
    )
    assert out.returncode == 0, out.stdout + out.stderr


# -- systemd --------------------------------------------------------------------------------


def _unit_here(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at this venv's pausenet (verify checks that it exists)."""
    here = Path(sys.executable).with_name("pausenet")
    assert here.exists(), here
    text = UNIT.read_text(encoding="utf-8")
    assert f"ExecStart={INSTALLED_PAUSENET} run --config /etc/pausenet/%i.toml" in text
    path = tmp_path / name
    path.write_text(text.replace(INSTALLED_PAUSENET, str(here)), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["pausenet@.service", "pausenet@lab-a.service"])
def test_systemd_analyze_verifies_the_unit_without_a_warning(tmp_path: Path, name: str) -> None:
    analyze = tool("systemd-analyze", "systemd")
    out = run(analyze, "verify", str(_unit_here(tmp_path, name)))
    assert out.returncode == 0, out.stdout + out.stderr
    # unknown keys and bad values are only warnings to verify: there must be none
    assert out.stderr.strip() == "", out.stderr


def test_the_unit_is_hardened(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", "systemd")
    unit = _unit_here(tmp_path, "pausenet@lab-a.service")
    # exposure 0.0 (locked down) .. 10.0 (unprotected); the unit scores about 1.5
    out = run(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", str(unit))
    assert out.returncode == 0, out.stdout + out.stderr
    text = UNIT.read_text(encoding="utf-8")
    for line in (
        "Type=notify",
        "User=pausenet",
        "ProtectSystem=strict",
        "StateDirectory=pausenet/%i",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "Restart=on-failure",
        "WatchdogSec=",
    ):
        assert line in text, line


# -- the overseer's check -------------------------------------------------------------------

CHECK = ROOT / "deploy" / "overseer" / "pausenet-check"


async def _check(*args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PAUSENET": str(Path(sys.executable).with_name("pausenet"))}
    proc = await asyncio.create_subprocess_exec(
        str(CHECK), *args, stdout=PIPE, stderr=PIPE, env=env
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_pausenet_check_exits_0_only_for_a_proven_checked_answer(tmp_path: Path) -> None:
    async with Cluster(tmp_path / "all", labs=2, overseers=0) as cluster:
        await cluster.converged()
        charter = str(cluster.fed.charter_path)
        address = cluster["lab-a"].address
        assert await _check(address, charter) == (0, "NOT_PAUSED\n", "")
        code, out, err = await _check(address, charter, "PAUSED")
        assert (code, out) == (4, "NOT_PAUSED\n")
        assert f"{address} says NOT_PAUSED, not PAUSED" in err
        other = Cluster(tmp_path / "other", labs=2, overseers=0, running=())
        code, _, err = await _check(address, str(other.fed.charter_path))
        assert code == 1, err
        assert "does NOT check" in err
    # two labs of three unheard from could have paused unseen: lab-a cannot prove either answer
    async with Cluster(tmp_path / "alone", labs=3, overseers=0, running=("lab-a",)) as alone:
        code, out, err = await _check(alone["lab-a"].address, str(alone.fed.charter_path))
        assert (code, out) == (3, "UNKNOWN\n"), err
        assert "cannot prove an answer now" in err
    code, _, err = await _check(address, charter)  # that node has stopped
    assert code == 2, err
    assert (await _check("only-one-argument"))[0] == 2
