"""Prometheus metrics for a node: what it concludes, how gossip and its peers behave, its store.

    exporter = await start_metrics_server(node, "127.0.0.1:9464")   # node.py, when configured
    ...
    await exporter.stop(grace_s)

Nearly everything is read from the node when Prometheus scrapes (a custom collector), so the
node keeps no second set of books: the view, the gossip engine's counters, the peer guard's
rejections, refusals, scores and bans, the replica's item counts and the store file's size. The
one thing measured as it happens is propagation: for each statement and heartbeat first held
here, the time from its signed `issued_at` to now, by kind (the replica's `on_new` hook).

The HTTP server is prometheus_client's, on a thread of its own. A scrape reads the node on the
event loop's thread (the replica is not thread-safe), so a scrape of a node whose loop is stuck
times out and fails, and Prometheus's `up` says so. Label values are bounded: members come from
the charter, reasons and causes from fixed sets in the code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import platform
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from pausenet.core.charter import Charter, Role
from pausenet.core.records import Compliance, SignedHeartbeat, SignedStatement, Vote
from pausenet.core.verify import Verified
from pausenet.core.view import ComplianceStatus, PauseState, View
from pausenet.errors import ConfigError
from pausenet.node.config import NodeConfig, is_loopback, parse_host_port
from pausenet.node.gossip import GossipEngine
from pausenet.node.limits import PENALTIES, PeerGuard
from pausenet.node.replica import Replica

__all__ = [
    "PROPAGATION_BUCKETS_S",
    "MetricsExporter",
    "NodeCollector",
    "ObservedNode",
    "scrape",
    "start_metrics_server",
]

log = logging.getLogger("pausenet.node")

SCRAPE_TIMEOUT_S = 5.0
STORE_FILES = ("pausenet.db", "pausenet.db-wal")  # the store and its write-ahead log
# From one gossip round on one machine to minutes across a partition that heals.
PROPAGATION_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
_KINDS = ("vote", "compliance", "trigger_attestation", "heartbeat")
# Why a call is refused (PeerGuard.refused and the gRPC servers); "bans" is counted apart.
_REFUSAL_CAUSES = (
    "banned",
    "rate:auth",
    "rate:digest",
    "rate:exchange",
    "unauthenticated",
    "not-a-member",
    "bad-auth",
    "malformed-request",
)
_GOSSIP_TOTALS = (
    ("rounds", "gossip.rounds", "Gossip rounds started."),
    (
        "contacts",
        "gossip.contacted",
        "Peers contacted in gossip rounds and pushes this node started.",
    ),
    (
        "in_sync",
        "gossip.in_sync",
        "Contacts that ended at the first digest hash: the peer already held the same.",
    ),
    (
        "exchanges",
        "gossip.exchanges",
        "Exchanges of items in gossip rounds and pushes this node started.",
    ),
    ("pushes", "gossip.pushes", "News pushed to a peer as it arrived (docs/protocol.md §12.2)."),
    ("failures", "gossip.failures", "Contacts that failed (unreachable, refused, invalid items)."),
)


class ObservedNode(Protocol):
    """What the collector reads from a node (pausenet.node.node.Node)."""

    @property
    def member(self) -> str: ...
    @property
    def config(self) -> NodeConfig: ...
    @property
    def charter(self) -> Charter: ...
    @property
    def replica(self) -> Replica: ...
    @property
    def guard(self) -> PeerGuard: ...
    @property
    def engine(self) -> GossipEngine | None: ...
    @property
    def clock(self) -> Callable[[], int]: ...
    def view(self) -> View: ...
    def stats(self) -> dict[str, int]: ...


def _kind(item: Verified) -> str:
    if isinstance(item, SignedHeartbeat):
        return "heartbeat"
    body = item.statement.body
    if isinstance(body, Vote):
        return "vote"
    return "compliance" if isinstance(body, Compliance) else "trigger_attestation"


class NodeCollector(Collector):
    """Reads a node's state at scrape time; times the propagation of what it first ingests."""

    def __init__(self, node: ObservedNode, registry: CollectorRegistry) -> None:
        self.node = node
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.propagation = Histogram(
            "pausenet_propagation_seconds",
            "Time from a statement's or heartbeat's signed issued_at to its first ingest here,"
            " by kind (own items not counted; a clock behind the signer's counts as 0).",
            ["kind"],
            buckets=PROPAGATION_BUCKETS_S,
            registry=registry,
        )
        for k in _KINDS:
            self.propagation.labels(kind=k)  # every kind present from the first scrape
        registry.register(self)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the node on `loop`'s thread (the caller's, which must be running `loop`)."""
        self._loop = loop
        self._loop_thread = threading.get_ident()

    def observe(self, item: Verified) -> None:
        """The replica's `on_new` hook: one statement or heartbeat first held here."""
        with contextlib.suppress(Exception):  # metrics never break an ingest
            if item.member == self.node.member:
                return  # our own heartbeats reach the replica through ingest too
            issued = (
                item.heartbeat.issued_at_ms
                if isinstance(item, SignedHeartbeat)
                else item.statement.issued_at_ms
                if isinstance(item, SignedStatement)
                else None
            )
            if issued is not None:
                delay_s = max(0, self.node.clock() - issued) / 1000
                self.propagation.labels(kind=_kind(item)).observe(delay_s)

    def collect(self) -> Iterator[Metric]:
        loop = self._loop
        if loop is None or threading.get_ident() == self._loop_thread:
            yield from self.families()
            return
        fut: concurrent.futures.Future[list[Metric]] = concurrent.futures.Future()

        def run() -> None:
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(self.families())
                except BaseException as exc:
                    fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        yield from fut.result(timeout=SCRAPE_TIMEOUT_S)

    # -- the families, read on the event loop's thread ----------------------------------------

    def families(self) -> list[Metric]:
        node = self.node
        out: list[Metric] = []
        out += self._info(node)
        v = node.view()
        out += self._view(node, v)
        out += self._members(node, v)
        out += self._gossip(node.engine)
        out += self._guard(node)
        out += self._store(node)
        return out

    def _info(self, node: ObservedNode) -> list[Metric]:
        build = GaugeMetricFamily(
            "pausenet_build_info",
            "The running pausenet version and Python; always 1.",
            labels=["version", "python"],
        )
        build.add_metric([_version(), platform.python_version()], 1)
        me = node.charter.member(node.member)
        info = GaugeMetricFamily(
            "pausenet_node_info",
            "This node's member, role, federation and charter digest; always 1.",
            labels=["member", "role", "federation", "charter_digest"],
        )
        info.add_metric(
            [
                node.member,
                me.role.value if me else "",
                node.charter.federation_id,
                node.charter.digest_hex,
            ],
            1,
        )
        version = GaugeMetricFamily(
            "pausenet_charter_version",
            "The charter version this node runs under (docs/protocol.md §15.7); 0 while no"
            " version is in force.",
        )
        version.add_metric([], node.stats().get("charter.version", 0))
        return [build, info, version]

    def _view(self, node: ObservedNode, v: View) -> list[Metric]:
        state = GaugeMetricFamily(
            "pausenet_state",
            "The node's answer: 1 for the state it proves now (UNKNOWN when it cannot), else 0.",
            labels=["state"],
        )
        for s in PauseState:
            state.add_metric([s.value], 1 if v.state is s else 0)
        certified = GaugeMetricFamily(
            "pausenet_certified_state",
            "What the certificates in hand prove (shown beside an UNKNOWN answer): 1 or 0.",
            labels=["state"],
        )
        for s in (PauseState.PAUSED, PauseState.NOT_PAUSED):
            certified.add_metric([s.value], 1 if v.certified_state is s else 0)
        out: list[Metric] = [
            state,
            certified,
            GaugeMetricFamily(
                "pausenet_epoch",
                "The paused epoch, or the last lifted one (0: never paused).",
                value=v.epoch,
            ),
        ]
        if v.as_of_ms is not None:
            out.append(
                GaugeMetricFamily(
                    "pausenet_as_of_age_seconds",
                    "Seconds from the time the answer is proven as of to now (absent while"
                    " UNKNOWN).",
                    value=max(0, v.now_ms - v.as_of_ms) / 1000,
                )
            )
        if v.certified_since_ms is not None:
            out.append(
                GaugeMetricFamily(
                    "pausenet_certified_since_timestamp_seconds",
                    "When the certified state took effect, in Unix seconds.",
                    value=v.certified_since_ms / 1000,
                )
            )
        return out

    def _members(self, node: ObservedNode, v: View) -> list[Metric]:
        labels = ["member", "role"]
        fresh = GaugeMetricFamily(
            "pausenet_member_fresh",
            "1 if the member's latest heartbeat is within the charter's TTL.",
            labels=labels,
        )
        synced = GaugeMetricFamily(
            "pausenet_member_synced",
            "1 if the member is fresh, not an equivocator, and its log is held up to its"
            " heartbeat's head.",
            labels=labels,
        )
        equivocating = GaugeMetricFamily(
            "pausenet_member_equivocating",
            "1 if this node holds evidence that the member signed two conflicting entries.",
            labels=labels,
        )
        head = GaugeMetricFamily(
            "pausenet_member_head_seq", "The member's log head held here.", labels=labels
        )
        age = GaugeMetricFamily(
            "pausenet_member_heartbeat_age_seconds",
            "Seconds since the member's latest heartbeat held here was signed.",
            labels=labels,
        )
        compliance = GaugeMetricFamily(
            "pausenet_compliance",
            "While a pause is certified, each lab's compliance: 1 for its state, else 0.",
            labels=["member", "state"],
        )
        for m in v.members:
            lv = [m.id, m.role.value]
            fresh.add_metric(lv, int(m.fresh))
            synced.add_metric(lv, int(m.synced))
            equivocating.add_metric(lv, int(m.equivocator))
            head.add_metric(lv, m.head_seq)
            if m.heartbeat_at_ms is not None:
                age.add_metric(lv, max(0, v.now_ms - m.heartbeat_at_ms) / 1000)
            if m.compliance is not None and m.role is Role.LAB:
                for c in ComplianceStatus:
                    compliance.add_metric([m.id, c.value], int(m.compliance is c))
        return [fresh, synced, equivocating, head, age, compliance]

    def _gossip(self, engine: GossipEngine | None) -> list[Metric]:
        c: Counter[str] = engine.counters if engine is not None else Counter()
        out: list[Metric] = []
        for name, key, doc in _GOSSIP_TOTALS:
            out.append(CounterMetricFamily(f"pausenet_gossip_{name}", doc, value=c[key]))
        items = CounterMetricFamily(
            "pausenet_gossip_items",
            "Items sent and received in exchanges this node started, by direction.",
            labels=["direction"],
        )
        size = CounterMetricFamily(
            "pausenet_gossip_bytes",
            "Envelope bytes (payload, signatures, framing) sent and received in exchanges this"
            " node started, by direction.",
            labels=["direction"],
        )
        for d in ("sent", "received"):
            items.add_metric([d], c[f"gossip.items_{d}"])
            size.add_metric([d], c[f"gossip.bytes_{d}"])
        peers = engine.peers() if engine is not None else []
        backing_off = sum(1 for p in peers if engine is not None and engine.backoff(p) > 0)
        out += [
            items,
            size,
            GaugeMetricFamily(
                "pausenet_gossip_peers",
                "Peer addresses known (configured and from signed heartbeats).",
                value=len(peers),
            ),
            GaugeMetricFamily(
                "pausenet_gossip_peers_backing_off",
                "Known peers not tried until their backoff after failures ends.",
                value=backing_off,
            ),
        ]
        return out

    def _guard(self, node: ObservedNode) -> list[Metric]:
        guard = node.guard
        rejected: Counter[str] = Counter(guard.rejected)  # items peers sent us
        if node.engine is not None:  # items we fetched from peers
            for k, n in node.engine.counters.items():
                if k.startswith("rejected."):
                    rejected[k.removeprefix("rejected.")] += n
        rej = CounterMetricFamily(
            "pausenet_items_rejected",
            "Items from peers that failed verification or did not fit what is held, by reason.",
            labels=["reason"],
        )
        for reason in sorted(set(PENALTIES) | set(rejected)):
            rej.add_metric([reason], rejected[reason])
        refused = CounterMetricFamily(
            "pausenet_calls_refused",
            "Gossip calls refused, by cause (banned peer, rate limit, no session, ...).",
            labels=["cause"],
        )
        causes = set(_REFUSAL_CAUSES) | {k for k in guard.refused if k != "bans"}
        for cause in sorted(causes):
            refused.add_metric([cause], guard.refused[cause])
        bans = CounterMetricFamily(
            "pausenet_peer_bans",
            "Times a peer was refused for a while for sending too many invalid items.",
            value=guard.refused["bans"],
        )
        score = GaugeMetricFamily(
            "pausenet_peer_score",
            "Each peer member's score: invalid items cost points, news earns them back.",
            labels=["member"],
        )
        banned = GaugeMetricFamily(
            "pausenet_peer_banned", "1 while a peer member is refused.", labels=["member"]
        )
        now_s = node.clock() / 1000
        for m in node.charter.members:
            if m.id != node.member:
                score.add_metric([m.id], guard.score(m.id))
                banned.add_metric([m.id], int(guard.banned(m.id, now_s)))
        return [rej, refused, bans, score, banned]

    def _store(self, node: ObservedNode) -> list[Metric]:
        r = node.replica
        items = GaugeMetricFamily(
            "pausenet_store_items",
            "Items held (and stored), by kind: every member's statements, their latest"
            " heartbeats, evidence of equivocation.",
            labels=["kind"],
        )
        items.add_metric(["statement"], sum(r.head(m.id)[0] for m in node.charter.members))
        items.add_metric(["heartbeat"], len(r.heartbeats()))
        items.add_metric(["evidence"], len(r.evidence()))
        return [
            items,
            GaugeMetricFamily(
                "pausenet_store_size_bytes",
                "Size of the store's files (database and write-ahead log).",
                value=_store_bytes(node.config.data_dir),
            ),
        ]


def _store_bytes(data_dir: Path) -> int:
    total = 0
    for name in STORE_FILES:
        with contextlib.suppress(OSError):
            total += (data_dir / name).stat().st_size
    return total


class MetricsExporter:
    """The metrics HTTP endpoint of one node; `stop` is idempotent."""

    def __init__(self, collector: NodeCollector, registry: CollectorRegistry, listen: str) -> None:
        self.collector = collector
        self.registry = registry
        host, port = parse_host_port(listen)
        try:
            self._server, self._thread = start_http_server(port, host, registry)
        except OSError as exc:
            raise ConfigError(
                f"metrics_listen {listen}: cannot listen there: {exc.strerror or exc}"
            ) from exc
        bound = self._server.server_address[1]
        self.address = f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"
        self._stopped = False

    async def stop(self, grace_s: float = 0.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        # shutdown() waits for serve_forever's poll loop to notice (up to half a second)
        await asyncio.to_thread(self._server.shutdown)
        self._server.server_close()


async def start_metrics_server(
    node: ObservedNode, listen: str, *, allow_remote: bool | None = None
) -> MetricsExporter:
    """Serve the node's metrics on `listen` (host:port; port 0 picks one) until `stop`."""
    allow = node.config.metrics_allow_remote if allow_remote is None else allow_remote
    try:
        host, _ = parse_host_port(listen)
    except ValueError as exc:
        raise ConfigError(f"metrics_listen: {exc}") from exc
    if not allow and not is_loopback(host):
        # load_config refuses this too; a config built in code must not slip past it
        raise ConfigError(
            f"metrics_listen {listen} is not a loopback address (set metrics_allow_remote to"
            " expose metrics on purpose)"
        )
    # No *_created series: they double a scrape and alert on nothing. (The one function of
    # prometheus_client without annotations, hence the ignore.)
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)  # process_* (CPU, memory, open files) for the SRE
    collector = NodeCollector(node, registry)
    collector.bind(asyncio.get_running_loop())
    exporter = MetricsExporter(collector, registry, listen)
    node.replica.on_new = collector.observe
    log.info("metrics for Prometheus on http://%s/metrics", exporter.address)
    return exporter


def scrape(registry: CollectorRegistry) -> str:
    """The text a scrape of `registry` returns, without the HTTP (tests)."""
    return generate_latest(registry).decode("utf-8")


def _version() -> str:
    """pausenet's installed version (the package's own `__version__` lies a layer above)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pausenet")
    except PackageNotFoundError:
        return "unknown"
