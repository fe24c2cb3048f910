"""The committed protobuf/gRPC code in src/pausenet/v1/ is exactly what scripts/gen-proto makes."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "src" / "pausenet" / "v1"
HINT = "generated code is out of date; run scripts/gen-proto"


def _generated_files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, f"scripts/gen-proto failed:\n{proc.stderr}"
    fresh = _generated_files(tmp_path / "pausenet" / "v1")
    committed = _generated_files(COMMITTED)
    assert any(name.endswith("_pb2.py") for name in fresh)
    missing = sorted(set(fresh) - set(committed))
    stale = sorted(n for n in set(committed) - set(fresh) if "_pb2" in n)
    assert not missing, f"{HINT} (missing: {', '.join(missing)})"
    assert not stale, f"{HINT} (no .proto makes: {', '.join(stale)})"
    for name, data in fresh.items():
        assert committed[name] == data, f"{HINT} ({name} differs)"
