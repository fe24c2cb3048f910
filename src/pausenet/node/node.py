"""A pausenet node: composes the store, the replica, gossip and the gRPC services, and owns
their lifecycle.

    async with Node(load_config(path)) as node:
        await node.wait_closed()          # until stop() or a fatal error

Start-up opens the store, finishes any statement a crash left journaled, re-verifies and loads
every stored item, binds the public (Gossip, Oversight, health, reflection) and admin servers,
signs a first heartbeat and starts the gossip and heartbeat loops. A failure part-way tears down
what had started. `stop()` is idempotent and bounded by a grace period: the servers say
NOT_SERVING and stop taking calls, calls in flight get the grace period, the loops are cancelled,
work that must finish (a signature, an ingest) finishes, then the transport and the store close.

Concurrency is structured (anyio on asyncio): the loops, and the work handed over by gRPC
handlers, run in one task group that a single task owns from start to stop; a loop that ends
or fails stops the node, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from pausenet.core.answer import sign_answer
from pausenet.core.charter import Charter, load_charter
from pausenet.core.dsse import Envelope
from pausenet.core.evidence import Evidence, check_evidence
from pausenet.core.keys import SigningKey, load_signing_key
from pausenet.core.policy import attestation_epoch, compliance_epoch, vote_epoch
from pausenet.core.quota import in_window, window_end_ms
from pausenet.core.records import (
    Body,
    Compliance,
    ComplianceState,
    Decision,
    SignedStatement,
    TriggerAttestation,
    Vote,
)
from pausenet.core.signing import sign_heartbeat
from pausenet.core.verify import (
    RECHECK_SLACK_MS,
    Rejection,
    Verified,
    is_valid_address,
    verify_envelope,
)
from pausenet.core.versions import verify_versions
from pausenet.core.view import PauseState, View
from pausenet.errors import ConfigError, PausenetError, SigningRefusedError, StoreError
from pausenet.node import rpc
from pausenet.node.concurrency import Changes, Completions, NotRunningError
from pausenet.node.config import NodeConfig, is_loopback, parse_host_port
from pausenet.node.gossip import (
    DigestReply,
    ExchangeReply,
    GossipConfig,
    GossipEngine,
    GossipService,
)
from pausenet.node.governance import GovernanceReport, approval_route
from pausenet.node.governor import GovernanceReply, Governor, GovernReply
from pausenet.node.limits import PeerGuard, RateLimit
from pausenet.node.messages import Digest, Items
from pausenet.node.peerauth import Authenticator, OwnAddresses
from pausenet.node.replica import IngestReport, Replica
from pausenet.node.runfile import load_or_create_admin_token, lock_data_dir
from pausenet.node.store import Store
from pausenet.node.tls import TlsFiles

if TYPE_CHECKING:
    from pausenet.node.metrics import MetricsExporter

__all__ = ["Node", "NodeOptions"]

log = logging.getLogger("pausenet.node")

STORE_FILE = "pausenet.db"
_FIRST_CONTACT_WAIT_S = 5.0
_WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104  # compared with, not bound


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class NodeOptions:
    gossip: GossipConfig = field(default_factory=GossipConfig.local)
    heartbeat_interval_s: float | None = None  # default: a third of the charter's TTL, <= 10 s
    shutdown_grace_s: float = 2.0
    server_limits: rpc.ServerLimits = field(default_factory=rpc.ServerLimits)
    # addresses peers may dial this node at besides its own and `advertise` (proxies, port
    # forwards in front of it): a gossip login names the address it was signed for
    dialled_at: tuple[str, ...] = ()
    # per peer: challenge/auth calls per address, digest and exchange calls per member; an
    # exchange costs 1 + items/50 tokens, so a flood of large messages is throttled too
    peer_limits: Mapping[str, RateLimit] = field(
        default_factory=lambda: {
            "auth": RateLimit(rate_per_s=5, burst=20),
            "digest": RateLimit(rate_per_s=50, burst=100),
            "exchange": RateLimit(rate_per_s=25, burst=50),
        }
    )
    clock: Callable[[], int] = wall_clock_ms


class Node:
    def __init__(self, config: NodeConfig, options: NodeOptions | None = None) -> None:
        self.config = config
        self.options = options or NodeOptions()
        self.clock = self.options.clock
        self.member = config.member_id
        self.charter: Charter
        self.key: SigningKey
        self.store: Store | None = None
        self.governor: Governor  # charter versions: the pin, adoption, the exchange
        self._in_force = anyio.Event()  # some charter version is in force here
        self.replica: Replica
        self.authenticator: Authenticator  # who may gossip with this node (sessions)
        self.engine: GossipEngine | None = None
        self._gossip: GossipService
        self.address = ""  # bound public address, host:port
        self.admin_address = ""
        self.admin_token = ""
        self._lock_fd: int | None = None
        self.tls: TlsFiles | None = None
        self._advertised = ""  # the address put in heartbeats
        self.failure: str | None = None  # why the node stopped on its own, if it did
        # heads and evidence already told to the operator (what the store held at start counts)
        self._seen: tuple[dict[str, int], frozenset[bytes]] = ({}, frozenset())
        self._servers: list[rpc.RpcServer] = []
        self._transport: rpc.GrpcTransport | None = None
        self._runner: asyncio.Task[None] | None = None  # owns the task group, start to stop
        self._work = Completions()  # work that must finish, run in that task group
        self._stopping = False
        self._started = False
        self._store_failing: str | None = None  # why the store last failed, until it works
        self._stop_requested = anyio.Event()
        self._closed = anyio.Event()
        self.changes = Changes()  # bumped whenever the facts change
        self._in_touch = anyio.Event()  # a gossip exchange with some peer has succeeded
        self._view_cache: tuple[int, int, View] | None = None
        self.guard = PeerGuard(self.options.peer_limits)
        # Own statements and heartbeats are signed one at a time, each later than the last: a
        # heartbeat signed while a statement is being signed, or a statement timed before the
        # last heartbeat, would be evidence against this member (docs/protocol.md §7).
        self._signing = anyio.Lock()
        self._signed_one = False  # a heartbeat signed since start
        self._metrics: MetricsExporter | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        cfg = self.config
        admin_host, _ = parse_host_port(cfg.admin_listen)
        if not is_loopback(admin_host) and not cfg.admin_allow_remote:
            # load_config refuses this too; a config built in code must not slip past it
            raise ConfigError(
                f"admin_listen {cfg.admin_listen} is not a loopback address; the admin API casts"
                " this member's votes (set admin_allow_remote to expose it on purpose)"
            )
        own = load_charter(cfg.charter_path)
        me = own.member(self.member)
        if me is None:
            raise ConfigError(f"member {self.member!r} is not in charter {cfg.charter_path}")
        self.key = load_signing_key(cfg.key_path)
        if self.key.public_key != me.public_key:
            raise ConfigError(
                f"{cfg.key_path}: this key is not {self.member}'s key in {cfg.charter_path}"
            )
        pin = load_charter(cfg.trust_path) if cfg.trust_path is not None else own
        _make_private_dir(cfg.data_dir)
        self._lock_fd = lock_data_dir(cfg.data_dir)
        self.store = await Store.open(
            cfg.data_dir / STORE_FILE, charter_digest=pin.digest, federation_id=pin.federation_id
        )
        self.governor = Governor(pin, own, self.member, self.key, self.store, self.clock)
        try:
            await self.governor.load(self._approval_dirs(pin))
        except PausenetError as exc:
            raise ConfigError(f"{cfg.charter_path}: {exc}") from exc
        self.charter = self.governor.newest
        recovered = await self.store.recover_pending(self.key, self.member)
        if recovered:
            log.info("finished %d statement(s) journaled before a crash", len(recovered))
        self.replica = Replica(self.charter, self.clock, self.store, own=self.member)
        held = self.governor.state.charters
        self.replica.upcoming = lambda d: d in held and held[d].version > self.charter.version
        if self.governor.in_force:
            self.replica.adopt(self.governor.versions, self.governor.state.approvals.values())
        await self._load()
        start_view = self.replica.view()
        self._seen = (_heads(start_view), frozenset(ev.id for ev in start_view.evidence))
        self.admin_token = load_or_create_admin_token(cfg.admin_token_file)

        self.tls = cfg.tls.read() if cfg.tls is not None else None
        # no login is taken until the node knows the address it is bound to (below)
        self.authenticator = Authenticator(self.charter, self.member, addresses=OwnAddresses())
        self._authenticate_under(self.governor.versions)
        self._gossip = GossipService(self.replica, on_change=self._notify)
        self._transport = rpc.GrpcTransport(
            self.charter, self.key, self.member, self.clock, self.tls, self._member_at
        )
        public = await rpc.start_public_server(
            self, cfg.listen, self.tls, self.options.server_limits
        )
        self._servers.append(public)
        self.address = public.address
        admin = await rpc.start_admin_server(self, cfg.admin_listen, self.tls)
        self._servers.append(admin)
        self.admin_address = admin.address
        self._advertised = self.address if cfg.advertise is None else cfg.advertise
        self.authenticator.addresses = self._own_addresses()
        if not is_valid_address(self._advertised):
            # e.g. an IPv6 listen address with a zone index: peers would reject every heartbeat
            log.warning(
                "not advertising %s in heartbeats (peers cannot use it); set 'advertise'",
                self._advertised,
            )
            self._advertised = ""
        self.engine = GossipEngine(
            self.replica,
            self._transport,
            self_address=self.address,
            bootstrap=cfg.peers,
            config=_gossip_config(self.options.gossip, self.charter.rules.heartbeat_ttl_s),
            on_change=self._notify,
            on_contact=self.mark_in_touch,
            on_local_error=self._store_failed,
        )
        if self._may_sign():
            await self.issue_heartbeat()
            self._signed_one = True
        if cfg.metrics_listen is not None:
            # imported only when wanted: prometheus_client is not needed to run a node
            from pausenet.node.metrics import start_metrics_server

            self._metrics = await start_metrics_server(self, cfg.metrics_listen)
        running = anyio.Event()
        self._runner = asyncio.get_running_loop().create_task(
            self._run(self.engine, running), name=f"node {self.member}"
        )
        await running.wait()
        self._started = True
        self._update_health()
        log.info(
            "node %s up: gossip and oversight on %s, admin on %s, %d peer(s) configured,"
            " charter %s",
            self.member,
            self.address,
            self.admin_address,
            len(cfg.peers),
            self.charter.digest_hex[:16],
        )

    def _own_addresses(self) -> OwnAddresses:
        """The addresses a gossip login may name: where this node is bound, what it advertises,
        what the options add; listening on every interface with no 'advertise', any host with
        its port (a relay on another host with that port could then pass logins on)."""
        cfg = self.config
        given = (self.address, cfg.advertise or "", *self.options.dialled_at)
        listen_host, _ = parse_host_port(cfg.listen)
        if cfg.advertise is None and listen_host in _WILDCARD_HOSTS:
            _, port = parse_host_port(self.address)
            log.warning(
                "listening on %s with no 'advertise': gossip logins for any host with port %d"
                " are taken; set 'advertise' to the address peers dial to take only those",
                cfg.listen,
                port,
            )
            return OwnAddresses(given, any_host_port=port)
        return OwnAddresses(given)

    async def _load(self) -> None:
        assert self.store is not None
        now = self.clock() + RECHECK_SLACK_MS
        bad = 0

        versions = self.replica.chain

        superseded = 0

        def verified(envs: list[Envelope], *, replaceable: bool = False) -> list[Verified]:
            nonlocal bad, superseded
            out: list[Verified] = []
            for env in envs:
                v = verify_versions(versions, env, now)
                if not isinstance(v, Rejection):
                    out.append(v)
                elif replaceable and _signed_under_a_version(versions.charters, env, now):
                    # a heartbeat signed with a key a later version replaced: it no longer
                    # counts, and the member's next heartbeat replaces it (not a corruption)
                    superseded += 1
                else:
                    bad += 1
            return out

        stmts = verified(await self.store.all_statement_envelopes())
        hbs = verified(await self.store.heartbeats(), replaceable=True)
        branches = verified(await self.store.branch_statements())
        kept = verified(await self.store.kept_heartbeats(), replaceable=True)
        if superseded:
            log.info("%d stored heartbeat(s) signed with replaced keys left out", superseded)
        evidence: list[Evidence] = []
        for _member, a, b in await self.store.evidence():
            for charter in reversed(versions.charters):
                ev = check_evidence(charter, a, b, now_ms=now)
                if not isinstance(ev, Rejection):
                    break
            if isinstance(ev, Rejection):
                bad += 1
            else:
                evidence.append(ev)
        if bad:
            raise StoreError(
                f"store {self.config.data_dir / STORE_FILE}: {bad} stored item(s) fail"
                " verification; the file was changed outside pausenet — restore it from a backup"
            )
        self.replica.load(stmts, hbs, evidence, branches=branches, kept=kept)
        log.info(
            "loaded %d statement(s), %d heartbeat(s), %d evidence item(s) from the store",
            len(stmts),
            len(hbs),
            len(evidence),
        )

    async def _run(self, engine: GossipEngine, running: anyio.Event) -> None:
        """The node's one task group: its loops, and work gRPC handlers hand over, from start
        until a stop is requested; then drain the servers, cancel the loops, let shielded work
        finish, and close what start opened."""
        try:
            async with anyio.create_task_group() as tg:
                self._work.attach(tg)
                tg.start_soon(self._keep, "gossip", lambda: self._gossip_once_in_force(engine))
                tg.start_soon(self._keep, "governance", self._governance_loop)
                tg.start_soon(self._keep, "heartbeat", self._heartbeat_loop)
                running.set()
                await self._stop_requested.wait()
                await self._drain()
                self._work.attach(None)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _keep(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run one of the node's loops. A loop that ends on its own is a failure: log it and
        stop the node, loudly."""
        exc: Exception | None = None
        try:
            await loop()
        except Exception as e:
            exc = e
        if self._stopping:
            return
        self.failure = f"{name} loop {'failed: ' + repr(exc) if exc else 'ended'}"
        log.error("node %s stopping: %s", self.member, self.failure, exc_info=exc)
        self._request_stop()

    def _request_stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self._update_health()
            self._stop_requested.set()
            self.changes.bump()  # watchers wake, see the node stopping, and end

    # -- health -----------------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        """What health says: fully started, not stopping, and its store working."""
        return self._started and not self._stopping and self._store_failing is None

    def _update_health(self) -> None:
        serving = self.serving
        for server in self._servers:
            server.set_serving(serving)

    def _store_failed(self, exc: PausenetError) -> None:
        """Our own store failed: the node cannot record what it learns or signs, so it says
        NOT_SERVING until a write works again."""
        if self._store_failing is None:
            log.error("node %s not serving: its store failed: %s", self.member, exc)
        self._store_failing = str(exc)
        self._update_health()

    def _store_works(self) -> None:
        if self._store_failing is not None:
            self._store_failing = None
            log.info("node %s serving again: its store works", self.member)
            self._update_health()

    async def stop(self) -> None:
        """Stop serving and close everything; safe to call more than once, bounded by the
        grace period (plus whatever signing or ingest is under way, which must finish)."""
        first = not self._stopping
        self._request_stop()
        if self._runner is None:
            if first:  # start failed before the loops ran: tear down what it opened
                with anyio.CancelScope(shield=True):
                    await self._drain()
                    await self._close()
        else:
            await asyncio.wait({self._runner})  # never raises; the runner logs its own failures
        await self._closed.wait()

    async def _drain(self) -> None:
        """The servers say NOT_SERVING and refuse new calls; calls in flight get the grace
        period, then they are cancelled."""
        grace = self.options.shutdown_grace_s
        with anyio.move_on_after(grace + 1.0):  # even a server that does not stop in time
            async with anyio.create_task_group() as tg:
                for server in self._servers:
                    tg.start_soon(_stop_server, server, grace)
                if self._metrics is not None:  # stopped before the store closes
                    tg.start_soon(self._metrics.stop, grace)

    async def _close(self) -> None:
        try:
            if self._transport is not None:
                with anyio.move_on_after(self.options.shutdown_grace_s):
                    with contextlib.suppress(Exception):
                        await self._transport.close()
            if self.store is not None:
                await self.store.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the data dir for the next node
                self._lock_fd = None
            self._closed.set()
            if self.address:
                log.info("node %s stopped", self.member)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- views and change notification ------------------------------------------------------

    def _notify(self) -> None:
        self._view_cache = None
        self.changes.bump()

    def view(self) -> View:
        now = self.clock()
        cached = self._view_cache
        # a view is reused within one millisecond-tick of the same facts
        if cached is not None and cached[0] == self.replica.version and cached[1] == now:
            return cached[2]
        v = self.replica.view(now)
        why = self.governor.not_in_force()
        if why is not None:  # nothing is proven under a charter that is not in force
            v = dataclasses.replace(
                v, state=PauseState.UNKNOWN, as_of_ms=None, explanation=why + "."
            )
        self._view_cache = (self.replica.version, now, v)
        return v

    def stats(self) -> dict[str, int]:
        """Counters for the operator: rejections by reason, refusals by cause, gossip totals."""
        out: Counter[str] = Counter(self.guard.stats())
        if self.engine is not None:
            out.update(self.engine.counters)
        out.update(self.governor.stats())
        return dict(sorted(out.items()))

    @property
    def facts_version(self) -> int:
        return self.replica.version

    def signed_view(self, nonce: bytes) -> tuple[View, Envelope]:
        v = self.view()
        return v, self.sign_answer(nonce, v)

    def sign_answer(self, nonce: bytes, view: View) -> Envelope:
        """This node's signed answer for an overseer's nonce, stating `view`."""
        return sign_answer(self.key, self.charter, self.member, nonce, view)

    @property
    def admin_token_file(self) -> Path:
        return self.config.admin_token_file

    # -- gossip, served --------------------------------------------------------------------

    def get_digest(
        self, summary_hash: bytes, level: int = 0, nodes: Sequence[int] = ()
    ) -> DigestReply:
        if not self.governor.in_force:
            return DigestReply(True, None)  # nothing to exchange before a charter is in force
        return self._gossip.expand(summary_hash, level, nodes)

    async def exchange(self, digest: Digest, items: Items) -> tuple[ExchangeReply, IngestReport]:
        """A peer's Exchange call: ingest its items, answer with what it lacks. The ingest runs
        to its end even if the caller is cancelled; raises NotRunningError once stopping."""

        if not self.governor.in_force:
            raise NotRunningError("no charter version is in force here yet")

        async def exchange() -> tuple[ExchangeReply, IngestReport]:
            try:
                got = await self._gossip.exchange_with_report(digest, items)
            except PausenetError as exc:
                self._store_failed(exc)
                raise
            if not digest.partial or self.member in digest.members():
                # the peer compared what it holds of our member with ours and sent what we
                # lacked of it (a push, or an exchange about other members, tells us nothing)
                self.mark_in_touch()
            return got

        return await self._work.run(exchange)

    # -- charter versions (docs/protocol.md §15.7) ------------------------------------------

    def _approval_dirs(self, pin: Charter) -> list[Path]:
        cfg = self.config
        if cfg.approvals_dir is not None:
            return [cfg.approvals_dir]
        dirs = [cfg.charter_path.parent / "approvals"]
        if cfg.trust_path is not None:
            dirs.append(cfg.trust_path.parent / "approvals")
        return list(dict.fromkeys(dirs))

    def _authenticate_under(self, versions: tuple[Charter, ...]) -> None:
        """Logins from the members of the newest version in force, under any version in force
        (or, before one is, the node's own charter)."""
        self.authenticator.charter = versions[-1] if versions else self.charter
        self.authenticator.digests = frozenset({c.digest for c in versions} | {self.charter.digest})

    async def _adopted(self, versions: tuple[Charter, ...]) -> None:
        """Count under newly adopted versions, without a restart."""
        self.charter = self.governor.newest
        self.replica.adopt(versions, self.governor.state.approvals.values())
        self._authenticate_under(versions)
        if self._transport is not None:
            self._transport.charter = self.charter
        self._in_force.set()
        self._notify()

    def _paused(self) -> bool:
        return self.view().certified_state is PauseState.PAUSED

    async def _gossip_once_in_force(self, engine: GossipEngine) -> None:
        """Statements and heartbeats are gossiped once some charter version is in force."""
        if self.governor.in_force:
            self._in_force.set()
        await self._in_force.wait()
        await engine.run()

    async def _governance_loop(self) -> None:
        assert self.engine is not None
        assert self._transport is not None
        engine, transport = self.engine, self._transport
        await self.governor.run(
            engine.peers,
            transport.peer,
            engine.config.interval_s,
            engine.config.call_timeout_s,
            self.charter.limits.max_message_bytes * 8 // 10,
            self._paused,
            self._adopted,
            engine.config.idle_interval_max_s,
        )

    async def get_governance(
        self,
        version: int,
        summary: bytes,
        offer: tuple[tuple[bytes, ...], tuple[Envelope, ...]] = ((), ()),
    ) -> tuple[GovernanceReply, GovernanceReport]:
        """A peer's GetGovernance: take what it offers; answer with what it lacks after its
        newest version, or in sync."""
        budget = self.charter.limits.max_message_bytes * 9 // 10
        reply, got = await self.governor.serve(version, summary, budget, offer)
        if got.changed:
            await self.governor.adopt_if_ready(self._paused, self._adopted)
        return reply, got

    async def govern(
        self, charter: bytes, approvals: tuple[Envelope, ...], approve: bool
    ) -> GovernReply:
        """The operator hands a proposed version and/or approvals over (Admin Govern)."""
        reply = await self.governor.govern(charter, approvals, approve, self._paused, self._adopted)
        if reply.approval is not None:
            log.info("approved a charter version: %s", reply.status)
        return reply

    def chain(self) -> tuple[tuple[Charter, ...], tuple[Envelope, ...]]:
        """The versions in force from the pin and the approvals that put them in force."""
        versions = self.governor.versions
        digests = {c.digest for c in versions}
        approvals = tuple(
            env
            for env in self.governor.state.approvals.values()
            if (a := approval_route(env)) is not None and a.charter_digest in digests
        )
        return versions, approvals

    # -- own statements -------------------------------------------------------------------

    async def _issue(self, body: Body) -> SignedStatement:
        if self._stopping:
            raise SigningRefusedError("the node is shutting down")
        why = self.governor.signing_refused()
        if why is not None:
            raise SigningRefusedError(why)
        await self._caught_up_with_own_log()
        # Once signing starts it runs to the end even if the caller is cancelled (an Admin client
        # that gives up cancels its handler): a store write cut off inside its transaction, or a
        # statement in the store but not in the replica, would leave the node unable to sign.
        try:
            return await self._work.run(lambda: self._issue_now(body))
        except NotRunningError:
            raise SigningRefusedError("the node is shutting down") from None

    async def _issue_now(self, body: Body) -> SignedStatement:
        assert self.store is not None
        async with self._signing:
            at = self._own_time(statement=True)
            quota = self.charter.max_statements_per_hour
            if in_window(self.replica.log(self.member), at) >= quota:
                raise SigningRefusedError(
                    f"{self.member} has signed {quota} statements this hour, the charter's"
                    " max_statements_per_hour; a statement signed now would not count: try"
                    f" again after {_utc(window_end_ms(at))}"
                )
            st = await self.store.issue_statement(self.key, self.charter, self.member, body, at)
            await self._sync_own_log()  # includes st, and any statement recovery finished first
        log.info("signed %s#%d: %s", self.member, st.seq, _describe(body))
        await self.issue_heartbeat()  # commit the new head at once, so peers see it is complete
        self._notify()
        return st

    def mark_in_touch(self) -> None:
        """A gossip exchange with a peer succeeded: this member's own latest statements and
        heartbeat have reached us if any peer had them. The first time, heartbeat at once."""
        if not self._in_touch.is_set():
            self._in_touch.set()
            self.changes.bump()

    def _may_sign(self) -> bool:
        """Whether this node may sign heartbeats: once in touch with a peer (or with none to
        hear from). A store restored from a backup does not know the member's latest head and
        heartbeat counter; a heartbeat signed from it would deny statements the member signed
        after the backup, which is evidence against it (docs/protocol.md §7). Never while its
        charter is not in force or does not list this member with this key (§15.7)."""
        if self.governor.signing_refused() is not None:
            return False
        return self._in_touch.is_set() or self.engine is None or not self.engine.peers()

    async def _caught_up_with_own_log(self) -> None:
        """Before the first statement after start, hear from at least one peer.

        A store restored from an older copy does not know the last statements this member
        signed; peers do, and one exchange brings them back. Signing before that could sign a
        second, different statement at a seq already used (evidence against our own member)."""
        if self._in_touch.is_set():
            return
        if self.engine is None or not self.engine.peers():
            self._in_touch.set()  # nobody to hear from: a federation of one, or no peers yet
            return
        with anyio.move_on_after(_FIRST_CONTACT_WAIT_S):
            await self._in_touch.wait()
        if not self._in_touch.is_set():
            raise SigningRefusedError(
                "not yet in touch with any peer since start; the node signs nothing until one"
                " exchange has shown it this member's latest statements (check its peers)"
            ) from None

    def _member_at(self, address: str) -> str | None:
        """The member whose latest signed heartbeat advertises `address`, if exactly one does."""
        owners = [m for m, a in self.replica.addresses().items() if a == address]
        return owners[0] if len(owners) == 1 else None

    async def _sync_own_log(self) -> None:
        """Give the replica every own statement the store holds beyond the replica's head.

        Usually that is the one just signed; after a failed write it also includes the journaled
        statement the store finished first, which would otherwise never be gossiped."""
        assert self.store is not None
        head, _ = self.replica.head(self.member)
        now = self.clock() + RECHECK_SLACK_MS
        for env in await self.store.statements(self.member, from_seq=head + 1):
            v = verify_versions(self.replica.chain, env, now)
            if isinstance(v, Rejection) or not isinstance(v, SignedStatement):
                raise StoreError(f"own statement in the store fails verification: {v}")
            self.replica.add_own_statement(v)

    async def cast_vote(
        self, decision: Decision, *, epoch: int = 0, triggers: tuple[str, ...] = (), note: str = ""
    ) -> SignedStatement:
        epoch = vote_epoch(self.charter, self.member, self.view(), decision, epoch, triggers)
        return await self._issue(Vote(epoch, decision, tuple(triggers), note))

    async def attest_compliance(
        self, state: ComplianceState, *, epoch: int = 0, evidence_sha256: bytes = b""
    ) -> SignedStatement:
        epoch = compliance_epoch(self.charter, self.member, self.view(), epoch)
        return await self._issue(Compliance(epoch, state, evidence_sha256))

    async def attest_trigger(
        self, trigger_id: str, *, evidence_sha256: bytes = b"", note: str = "", epoch: int = 0
    ) -> SignedStatement:
        epoch = attestation_epoch(self.charter, self.member, self.view(), trigger_id, epoch)
        return await self._issue(TriggerAttestation(trigger_id, evidence_sha256, note, epoch))

    # -- heartbeats -------------------------------------------------------------------------

    async def issue_heartbeat(self) -> None:
        """Sign and take in a heartbeat for our current head. The store is written each time,
        so this is also where a failed store is found, and found working again."""
        try:
            await self._issue_heartbeat()
        except PausenetError as exc:
            self._store_failed(exc)
            raise
        self._store_works()

    def _own_time(self, *, statement: bool = False) -> int:
        """The time for the next own item: never before the last one (a clock stepped back
        must not make a log's times go backwards), and a statement strictly after the last
        heartbeat, which said the log ended below it."""
        head, _ = self.replica.head(self.member)
        last_st = self.replica.log(self.member, head, 1)  # the head alone, not a copy of the log
        floor = last_st[0].statement.issued_at_ms if last_st else 0
        hb = self.replica.heartbeat(self.member)
        if hb is not None:
            floor = max(floor, hb.heartbeat.issued_at_ms + (1 if statement else 0))
        return max(self.clock(), floor)

    async def _issue_heartbeat(self) -> None:
        assert self.store is not None
        async with self._signing:
            counter = await self.store.next_heartbeat_counter(self.member)
            seq, h = self.replica.head(self.member)
            hb = sign_heartbeat(
                self.key,
                self.charter,
                self.member,
                head_seq=seq,
                head_hash=h,
                counter=counter,
                issued_at_ms=self._own_time(),
                address=self._advertised,
            )
            report = await self.replica.ingest(Items(heartbeats=(hb.envelope,)))
        if not report.heartbeats:
            log.warning("own heartbeat not accepted: %s", dict(report.rejected))
        self._notify()

    def _log_news(self, v: View) -> None:
        """Tell the operator what the federation did: statements learned, forks proven."""
        heads = _heads(v)
        seen_heads, seen_evidence = self._seen
        for member, seq in heads.items():
            if member != self.member and seq > seen_heads.get(member, 0):
                for st in self.replica.log(member, seen_heads.get(member, 0) + 1):
                    log.info("learned %s#%d: %s", member, st.seq, _describe(st.statement.body))
        for ev in v.evidence:
            if ev.id not in seen_evidence:
                log.warning(
                    "evidence: %s signed two different entries at seq %d; its lift votes from"
                    " there on do not count",
                    ev.member,
                    ev.seq,
                )
        self._seen = (heads, frozenset(ev.id for ev in v.evidence))

    async def _heartbeat_loop(self) -> None:
        """Heartbeat every interval, and at once when the certified state changes: a heartbeat
        issued after a change shows peers that this member signed nothing they have not seen,
        which is what lets them prove the new state (docs/protocol.md §8.3, §12.4)."""
        interval = self.options.heartbeat_interval_s or min(
            10.0, self.charter.rules.heartbeat_ttl_s / 3
        )
        seen = self.changes.version
        start = self.view()
        last = (start.certified_state, start.epoch)
        next_due = anyio.current_time() + interval
        while True:
            with anyio.move_on_after(max(0.0, next_due - anyio.current_time())):
                await self.changes.wait(seen)
            seen = self.changes.version  # the view below has every change up to here
            self.guard.report_refusals(self.clock() / 1000)
            v = self.view()
            now_certified = (v.certified_state, v.epoch)
            self._log_news(v)
            if anyio.current_time() < next_due and now_certified == last and self._signed_one:
                continue
            if not self._may_sign():
                continue
            if now_certified != last:
                log.info(
                    "certified state is now %s, epoch %d (answer: %s)",
                    v.certified_state.value,
                    v.epoch,
                    v.state.value,
                )
            last = now_certified
            try:
                await self.issue_heartbeat()
                self._signed_one = True
            except PausenetError as exc:
                log.error("could not sign a heartbeat: %s", exc)
            next_due = anyio.current_time() + interval
            await anyio.sleep(0.05)  # at most ~20 heartbeats a second, whatever the churn


def _gossip_config(cfg: GossipConfig, heartbeat_ttl_s: float) -> GossipConfig:
    """Rounds slow down while in sync at most to TTL / 15 apart: a heartbeat every pushed copy
    of which was lost still reaches every node within about 6 such rounds (log of the node count
    for a few hundred nodes), well within the TTL less the heartbeat interval (§12.2, §12.4)."""
    bound = max(cfg.interval_s, heartbeat_ttl_s / 15)
    if cfg.idle_interval_max_s <= bound:
        return cfg
    return dataclasses.replace(cfg, idle_interval_max_s=bound)


async def _stop_server(server: rpc.RpcServer, grace: float) -> None:
    try:
        await server.stop(grace)
    except Exception as exc:  # stopping goes on: the store must still be closed
        log.debug("server %s did not stop cleanly: %s", server.address, exc)


def _heads(v: View) -> dict[str, int]:
    return {m.id: m.head_seq for m in v.members}


def _describe(body: Body) -> str:
    if isinstance(body, Vote):
        t = f" ({', '.join(body.triggers)})" if body.triggers else ""
        return f"vote {body.decision.value.upper()} epoch {body.epoch}{t}"
    if isinstance(body, Compliance):
        return f"compliance {body.state.value} epoch {body.epoch}"
    return f"trigger attestation {body.trigger_id}"


def _make_private_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"data_dir {path}: cannot create it: {exc.strerror}") from exc


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _signed_under_a_version(charters: tuple[Charter, ...], env: Envelope, now_ms: int) -> bool:
    """Whether env verifies under one of the versions in force on its own (with the key that
    version gives its signer): genuine, if no longer counted."""
    return any(not isinstance(verify_envelope(c, env, now_ms=now_ms), Rejection) for c in charters)
