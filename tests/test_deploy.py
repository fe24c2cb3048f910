"""What deploy/ ships, checked with the real tools: the Prometheus alert rules (`promtool check
rules`, and `promtool test rules` on deploy/prometheus/alerts_test.yml), the example Prometheus
config, and the systemd unit (`systemd-analyze verify` and its exposure score). Each test skips,
naming the package, where its tool is missing; .ci/run installs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
