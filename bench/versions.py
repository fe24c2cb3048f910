"""What counting across charter versions costs: evaluate vs evaluate_versions (issue 9 item 4).

    .venv/bin/python bench/versions.py [--statements N]

A federation of 3 labs and 1 overseer; each member signs N/4 statements (votes and
attestations across many epochs, pauses and lifts), half of them after an amendment that
changes a threshold (so two versions are in force). Prints the median time of five runs of:
`evaluate` under genesis alone (every statement signed under genesis), `evaluate_versions` with
that one version, and `evaluate_versions` with two versions (the second half signed under the
amendment). Facts are rebuilt each run, as `evaluate` does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from chains import amend, genesis, ratify
from helpers import T0, attest, key_for, lift, pause

from pausenet.core.charter import Charter
from pausenet.core.records import Body, SignedStatement
from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
from pausenet.core.verify import Verified
from pausenet.core.versions import Versions, evaluate_versions
from pausenet.core.view import evaluate

MEMBERS = ("lab-a", "lab-b", "lab-c", "overseer-a")


def history(per_member: int, first: Charter, second: Charter) -> list[Verified]:
    """Each member: a pause vote, an attestation and a lift vote per epoch, the second half of
    its log signed under `second`; then a heartbeat from everyone."""
    out: list[Verified] = []
    half = per_member // 2
    for m in MEMBERS:
        prev: SignedStatement | None = None
        for k in range(per_member):
            epoch = k // 3 + 1
            body: Body = (
                attest(epoch=epoch)
                if k % 3 == 1 or (m.startswith("overseer") and k % 3 == 0)
                else pause(epoch)
                if k % 3 == 0
                else lift(epoch)
            )
            c = first if k < half else second
            st = build_statement(
                c, m, k + 1, prev.hash if prev else b"", T0 + k * 1000 + MEMBERS.index(m), body
            )
            prev = sign_statement(key_for(m), st)
            out.append(prev)
        out.append(
            sign_heartbeat(
                key_for(m),
                second,
                m,
                head_seq=per_member,
                head_hash=prev.hash if prev else b"",
                counter=1,
                issued_at_ms=T0 + per_member * 1000 + 10,
            )
        )
    return out


def median_ms(fn: object, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--statements", type=int, default=20_000)
    args = ap.parse_args()
    per_member = args.statements // len(MEMBERS)
    g = genesis(min_pause_s=0)
    v2 = amend(g, lift_overseer_threshold=0)
    ratified_at = T0 + (per_member // 2) * 1000
    two = ratify(g, (v2, ratified_at))
    now = T0 + per_member * 1000 + 20
    alone = history(per_member, g, g)
    across = history(per_member, g, v2)
    one = Versions.single(g)
    rows = [
        ("evaluate, genesis alone", lambda: evaluate(g, alone, now)),
        ("evaluate_versions, 1 version", lambda: evaluate_versions(one, alone, now)),
        ("evaluate_versions, 2 versions", lambda: evaluate_versions(two, across, now)),
    ]
    print(f"{len(alone) - len(MEMBERS)} statements, {len(MEMBERS)} members, median of 5 runs")
    for name, fn in rows:
        print(f"  {name:32} {median_ms(fn):8.1f} ms")
    v = evaluate_versions(two, across, now)
    print(f"  (two versions: {v.state.value}, epoch {v.epoch}, {len(v.epochs)} epochs)")


if __name__ == "__main__":
    main()
