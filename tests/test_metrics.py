"""Prometheus metrics (pausenet.node.metrics): the config keys, a scrape of real nodes over HTTP,
the propagation histogram, `promtool check metrics` on a scrape, and the endpoint's lifecycle."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import T0, heartbeat_for, log_for, make_federation, pause
from netutil import Cluster, eventually
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pausenet.core.records import ComplianceState, Decision, SignedStatement
from pausenet.core.verify import Verified
from pausenet.errors import ConfigError
from pausenet.node.config import load_config
from pausenet.node.messages import Items
from pausenet.node.metrics import MetricsExporter, scrape, start_metrics_server
from pausenet.node.node import Node
from pausenet.node.replica import Replica
from pausenet.ops.federation import init_federation

RSI = ("rsi-detected",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fetch(address: str) -> tuple[str, str]:
    """GET /metrics from address; (content type, body)."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        return r.headers["Content-Type"], r.read().decode("utf-8")


def samples(text: str) -> list[Sample]:
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def value(text: str, name: str, **labels: str) -> float:
    found = [
        s.value for s in samples(text) if s.name == name and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def by_label(text: str, name: str, label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in samples(text) if s.name == name}


# -- config ---------------------------------------------------------------------------------


def _config_with(tmp_path: Path, extra: str) -> Path:
    fed = init_federation(tmp_path / "fed", 3, 1)
    path = fed.members[0].config_path
    path.write_text(path.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return path


def test_metrics_are_off_unless_configured(tmp_path: Path) -> None:
    cfg = load_config(_config_with(tmp_path, ""))
    assert cfg.metrics_listen is None
    assert cfg.metrics_allow_remote is False


def test_metrics_listen_on_loopback_is_accepted(tmp_path: Path) -> None:
    cfg = load_config(_config_with(tmp_path, 'metrics_listen = "127.0.0.1:9464"\n'))
    assert cfg.metrics_listen == "127.0.0.1:9464"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('metrics_listen = "0.0.0.0:9464"\n', "metrics_listen: '0.0.0.0' is not a loopback"),
        ('metrics_listen = "127.0.0.1"\n', "metrics_listen: '127.0.0.1' is not host:port"),
        ("metrics_listen = 9464\n", "metrics_listen: must be a string"),
        ("metrics_allow_remote = 1\n", "metrics_allow_remote: must be true or false"),
    ],
)
def test_bad_metrics_keys_are_refused_with_the_key_and_the_fix(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config_with(tmp_path, extra))


def test_a_remote_metrics_address_needs_metrics_allow_remote(tmp_path: Path) -> None:
    cfg = load_config(
        _config_with(tmp_path, 'metrics_listen = "0.0.0.0:9464"\nmetrics_allow_remote = true\n')
    )
    assert (cfg.metrics_listen, cfg.metrics_allow_remote) == ("0.0.0.0:9464", True)


# -- the propagation hook on the replica ----------------------------------------------------


async def test_the_replica_tells_its_hook_of_each_new_item_once() -> None:
    charter, keys = make_federation()
    replica = Replica(charter, lambda: T0 + 2_000)
    seen: list[Verified] = []
    replica.on_new = seen.append
    log = log_for(charter, keys["lab-b"], "lab-b", [pause(1)], T0)
    hb = heartbeat_for(charter, keys["lab-b"], "lab-b", log, 1, T0 + 1_000)
    items = Items(tuple(s.envelope for s in log), (hb.envelope,))

    await replica.ingest(items)
    await replica.ingest(items)  # duplicates are not new

    assert [type(v).__name__ for v in seen] == ["SignedStatement", "SignedHeartbeat"]
    assert isinstance(seen[0], SignedStatement)
    assert seen[0].seq == 1


# -- scraping real nodes --------------------------------------------------------------------


async def test_a_scrape_shows_the_answer_members_gossip_peers_store_and_propagation(
    tmp_path: Path,
) -> None:
    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        await cluster.converged()
        node = cluster["lab-c"]
        exporter = await start_metrics_server(node, "127.0.0.1:0")
        try:
            await cluster["lab-a"].attest_trigger("rsi-detected")
            for m in ("lab-a", "lab-b"):
                await cluster[m].cast_vote(Decision.PAUSE, triggers=RSI)
            await cluster.all_say("PAUSED", 1)
            await node.attest_compliance(ComplianceState.HALTED)

            ctype, text = await asyncio.to_thread(fetch, exporter.address)
        finally:
            await exporter.stop()

    assert ctype.startswith("text/plain")
    print(f"scrape of one node of 4: {len(text.encode())} bytes")
    assert by_label(text, "pausenet_state", "state") == {
        "PAUSED": 1,
        "NOT_PAUSED": 0,
        "UNKNOWN": 0,
    }
    assert by_label(text, "pausenet_certified_state", "state") == {"PAUSED": 1, "NOT_PAUSED": 0}
    assert value(text, "pausenet_epoch") == 1
    assert value(text, "pausenet_as_of_age_seconds") >= 0
    assert value(text, "pausenet_node_info", member="lab-c", role="lab") == 1
    assert value(text, "pausenet_build_info") == 1
    assert by_label(text, "pausenet_member_fresh", "member") == dict.fromkeys(cluster.ids, 1)
    assert by_label(text, "pausenet_member_equivocating", "member") == dict.fromkeys(cluster.ids, 0)
    assert by_label(text, "pausenet_member_head_seq", "member")["lab-a"] == 2
    assert value(text, "pausenet_compliance", member="lab-c", state="compliant") == 1
    assert value(text, "pausenet_compliance", member="lab-a", state="compliant") == 0
    # propagation: lab-a's attestation and both votes arrived over gossip; own items are not timed
    assert value(text, "pausenet_propagation_seconds_count", kind="vote") >= 2
    assert value(text, "pausenet_propagation_seconds_count", kind="trigger_attestation") >= 1
    assert value(text, "pausenet_propagation_seconds_count", kind="compliance") == 0
    assert value(text, "pausenet_propagation_seconds_count", kind="heartbeat") >= 1
    assert value(text, "pausenet_gossip_rounds_total") >= 1
    assert value(text, "pausenet_gossip_bytes_total", direction="received") > 0
    assert value(text, "pausenet_items_rejected_total", reason="bad-signature") == 0
    assert value(text, "pausenet_calls_refused_total", cause="banned") == 0
    assert set(by_label(text, "pausenet_peer_score", "member")) == {
        "lab-a",
        "lab-b",
        "overseer-a",
    }
    assert by_label(text, "pausenet_peer_banned", "member") == {
        "lab-a": 0,
        "lab-b": 0,
        "overseer-a": 0,
    }
    assert value(text, "pausenet_store_items", kind="statement") == 4
    assert value(text, "pausenet_store_items", kind="heartbeat") == 4
    assert value(text, "pausenet_store_size_bytes") > 0
    assert value(text, "process_resident_memory_bytes") > 0


async def test_a_scrape_on_the_event_loop_thread_does_not_wait_for_itself(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=2, overseers=0) as cluster:
        exporter = await start_metrics_server(cluster["lab-a"], "127.0.0.1:0")
        try:
            text = scrape(exporter.registry)
        finally:
            await exporter.stop()
    assert value(text, "pausenet_epoch") == 0


async def test_the_node_serves_metrics_when_configured_and_stops_them_with_it(
    tmp_path: Path,
) -> None:
    port = free_port()
    cluster = Cluster(tmp_path, labs=2, overseers=0, running=("lab-a",))
    cluster.configs["lab-a"] = replace(cluster.configs["lab-a"], metrics_listen=f"127.0.0.1:{port}")
    async with cluster:
        _, text = await asyncio.to_thread(fetch, f"127.0.0.1:{port}")
        assert value(text, "pausenet_node_info", member="lab-a") == 1
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        await asyncio.to_thread(fetch, f"127.0.0.1:{port}")


async def test_a_metrics_port_in_use_fails_start_with_one_line(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, labs=2, overseers=0, running=())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = f"127.0.0.1:{taken.getsockname()[1]}"
        node = Node(replace(cluster.config("lab-a"), metrics_listen=busy), cluster.options)
        with pytest.raises(ConfigError, match=f"metrics_listen {busy}: cannot listen there"):
            await node.start()
    assert node.stopping  # what had started was torn down


async def test_a_config_built_in_code_cannot_expose_metrics_remotely(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=2, overseers=0, running=("lab-a",)) as cluster:
        with pytest.raises(ConfigError, match="not a loopback address"):
            await start_metrics_server(cluster["lab-a"], "0.0.0.0:0")


async def test_stop_is_idempotent(tmp_path: Path) -> None:
    async with Cluster(tmp_path, labs=2, overseers=0, running=("lab-a",)) as cluster:
        exporter = await start_metrics_server(cluster["lab-a"], "127.0.0.1:0")
        assert isinstance(exporter, MetricsExporter)
        await exporter.stop()
        await exporter.stop()


# -- promtool -------------------------------------------------------------------------------


async def test_promtool_check_metrics_accepts_a_scrape(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus; .ci/run installs it)")
    async with Cluster(tmp_path, labs=3, overseers=1) as cluster:
        await cluster.converged()
        exporter = await start_metrics_server(cluster["lab-a"], "127.0.0.1:0")
        try:
            for m in ("lab-a", "lab-b"):
                await cluster[m].cast_vote(Decision.PAUSE, triggers=RSI)
            await eventually(
                lambda: cluster["lab-a"].view().certified_state.value == "PAUSED",
                what="lab-a certifies the pause",
            )
            _, text = await asyncio.to_thread(fetch, exporter.address)
        finally:
            await exporter.stop()
    out = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    # promtool prints lint findings and exits 3 when there are any; it finds none here
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == ""


# -- a real Prometheus server scraping a cluster ----------------------------------------------


class PrometheusServer:
    """`prometheus` on 127.0.0.1 with a temp config and storage, scraping `targets` every second
    and loading deploy/prometheus/alerts.yml; stopped (and awaited) on close."""

    def __init__(self, binary: str, workdir: Path, targets: dict[str, str]) -> None:
        self.port = free_port()
        workdir.mkdir()
        rules = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"
        static = "\n".join(
            f'      - targets: ["{address}"]\n        labels: {{node: "{member}"}}'
            for member, address in targets.items()
        )
        (workdir / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {rules}\n"
            f"scrape_configs:\n  - job_name: pausenet\n    static_configs:\n{static}\n",
            encoding="utf-8",
        )
        self.log = workdir / "prometheus.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )

    def get(self, path: str, **params: str) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as r:
            doc: dict[str, Any] = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, promql: str) -> dict[str, float]:
        """An instant query's vector as {node label: value}."""
        data = self.get("/api/v1/query", query=promql)
        return {r["metric"].get("node", ""): float(r["value"][1]) for r in data["result"]}

    async def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


async def until_query(prom: PrometheusServer, promql: str, want: dict[str, float]) -> None:
    async def ok() -> bool:
        return await asyncio.to_thread(prom.query, promql) == want

    try:
        await eventually(ok, timeout=60, interval=0.5, what=promql)
    except AssertionError:
        got = await asyncio.to_thread(prom.query, promql)
        raise AssertionError(f"{promql}: want {want}, got {got}") from None


@pytest.mark.slow
async def test_a_real_prometheus_sees_every_nodes_state_and_the_propagation_after_a_pause(
    tmp_path: Path,
) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (Debian package prometheus; .ci/run installs it)")
    cluster = Cluster(tmp_path / "cluster", labs=3, overseers=1)
    ports = {m: free_port() for m in cluster.ids}
    for m in cluster.ids:
        cluster.configs[m] = replace(cluster.configs[m], metrics_listen=f"127.0.0.1:{ports[m]}")
    targets = {m: f"127.0.0.1:{p}" for m, p in ports.items()}
    async with cluster:
        prom = PrometheusServer(binary, tmp_path / "prometheus", targets)
        try:
            await eventually(prom.ready, timeout=60, interval=0.2, what="prometheus ready")
            everyone = dict.fromkeys(cluster.ids, 1.0)
            await until_query(prom, 'up{job="pausenet"}', everyone)
            await until_query(prom, 'pausenet_state{state="NOT_PAUSED"}', everyone)

            await cluster["lab-a"].attest_trigger("rsi-detected")
            for m in ("lab-a", "lab-b"):
                await cluster[m].cast_vote(Decision.PAUSE, triggers=RSI)
            await cluster.all_say("PAUSED", 1)

            await until_query(prom, 'pausenet_state{state="PAUSED"}', everyone)
            await until_query(prom, "pausenet_epoch", everyone)
            # every node timed at least one vote from another member's node
            await until_query(
                prom, 'pausenet_propagation_seconds_count{kind="vote"} >= bool 1', everyone
            )
            median = await asyncio.to_thread(
                prom.query,
                'histogram_quantile(0.5, sum by (node, le) (pausenet_propagation_seconds_bucket{kind="vote"}))',
            )
            assert set(median) == set(cluster.ids)
            assert all(0 <= v <= 3600 for v in median.values()), median
            print(f"median vote propagation by node (bucket estimate, s): {median}")

            groups = (await asyncio.to_thread(prom.get, "/api/v1/rules"))["groups"]
            rules = [r for g in groups for r in g["rules"]]
            assert len(rules) == 6
            assert all(r["health"] == "ok" for r in rules), rules
            firing = {r["name"] for r in rules if r["state"] == "firing"}
            assert firing == set(), firing
        finally:
            prom.close()
