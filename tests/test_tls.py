"""Optional TLS and mutual TLS: nodes gossip over TLS, clients must verify the node (and, with
client authentication, present a certificate signed by the federation's CA)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from netutil import FAST_GOSSIP, eventually

from pausenet.client import OversightClient
from pausenet.core.records import Decision
from pausenet.core.view import PauseState
from pausenet.errors import ConfigError, NodeError
from pausenet.node.config import load_config
from pausenet.node.node import Node, NodeOptions
from pausenet.node.tls import TlsFiles, client_tls, enable_tls_for_federation
from pausenet.ops.federation import init_federation

pytestmark = pytest.mark.slow


async def _start(fed_dir: Path, members: list[str]) -> list[Node]:
    nodes: list[Node] = []
    first = ""
    for m in members:
        cfg = load_config(fed_dir / "node_configs" / f"{m}.toml")
        cfg = replace(
            cfg, listen="127.0.0.1:0", admin_listen="127.0.0.1:0", peers=(first,) if first else ()
        )
        node = Node(cfg, NodeOptions(gossip=FAST_GOSSIP, heartbeat_interval_s=0.5))
        await node.start()
        nodes.append(node)
        first = first or node.address
    return nodes


async def test_nodes_with_mutual_tls_converge_and_a_pause_reaches_every_node(
    tmp_path: Path,
) -> None:
    fed = init_federation(tmp_path / "fed", 2, 1)
    tls_dir = enable_tls_for_federation(fed.dir)
    assert load_config(fed.members[0].config_path).tls is not None
    nodes = await _start(fed.dir, [m.id for m in fed.members])
    try:
        await eventually(
            lambda: all(all(m.synced for m in n.view().members) for n in nodes),
            what="every node synced over TLS",
        )
        await nodes[0].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await nodes[1].cast_vote(Decision.PAUSE, triggers=("rsi-detected",))
        await eventually(
            lambda: all(n.view().state is PauseState.PAUSED for n in nodes),
            what="every node paused",
        )
        # an overseer's client with a member certificate reads the view over mutual TLS
        tls = client_tls(tls_dir / "ca.crt", tls_dir / "lab-a.crt", tls_dir / "lab-a.key")
        async with OversightClient(nodes[2].address, tls=tls) as c:
            reply = await c.get_view()
        assert reply.epoch == 1
    finally:
        for n in nodes:
            await n.stop()


async def test_plaintext_and_certificate_less_clients_are_refused(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 1, 0)
    tls_dir = enable_tls_for_federation(fed.dir)
    (node,) = await _start(fed.dir, ["lab-a"])
    try:
        async with OversightClient(node.address, timeout=2.0) as c:
            with pytest.raises(NodeError):
                await c.get_view()  # plaintext to a TLS port
        no_cert = TlsFiles(ca=(tls_dir / "ca.crt").read_bytes())
        async with OversightClient(node.address, timeout=2.0, tls=no_cert) as c:
            with pytest.raises(NodeError):
                await c.get_view()  # TLS, but no client certificate: mutual TLS refuses
    finally:
        await node.stop()


async def test_a_client_that_trusts_another_ca_refuses_the_node(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 1, 0)
    enable_tls_for_federation(fed.dir, client_auth=False)
    other = init_federation(tmp_path / "other", 1, 0)
    other_ca = enable_tls_for_federation(other.dir) / "ca.crt"
    (node,) = await _start(fed.dir, ["lab-a"])
    try:
        async with OversightClient(
            node.address, timeout=2.0, tls=client_tls(other_ca, None, None)
        ) as c:
            with pytest.raises(NodeError):
                await c.get_view()
    finally:
        await node.stop()


def test_tls_config_errors_are_one_line(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 1, 0)
    cfg = fed.members[0].config_path
    base = cfg.read_text()
    cfg.write_text(base + '\n[tls]\ncert = "x.crt"\n')
    with pytest.raises(ConfigError, match=r"tls\.key"):
        load_config(cfg)
    cfg.write_text(base + '\n[tls]\ncert = "a"\nkey = "b"\nca = "c"\nextra = 1\n')
    with pytest.raises(ConfigError, match=r"tls\.extra"):
        load_config(cfg)
    cfg.write_text(base + '\n[tls]\ncert = "a"\nkey = "b"\nca = "c"\n')
    with pytest.raises(ConfigError, match="not found"):
        load_config(cfg).tls.read()  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="--tls-ca"):
        client_tls(None, tmp_path / "a", None)


def test_tls_init_refuses_a_federation_that_already_has_tls(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 1, 0)
    enable_tls_for_federation(fed.dir)
    with pytest.raises(ConfigError, match="already"):
        enable_tls_for_federation(fed.dir)


def test_tls_paths_with_a_quote_and_a_backslash_are_escaped(tmp_path: Path) -> None:
    """Each node's certificate is named after its config file; a name with a quote and a
    backslash (and a federation directory named so) must still give configs that load."""
    fed = init_federation(tmp_path / 'we"ird\\dir', 2, 0)
    odd = fed.dir / "node_configs" / 'lab-a "2\\.toml'
    odd.write_text(fed.members[0].config_path.read_text())
    tls_dir = enable_tls_for_federation(fed.dir, client_auth=False)
    for config, m in [(odd, fed.members[0])] + [(m.config_path, m) for m in fed.members]:
        cfg = load_config(config)
        assert cfg.tls is not None
        assert cfg.tls.client_auth is False
        assert cfg.tls.ca == (tls_dir / "ca.crt").resolve()
        assert cfg.tls.cert == (tls_dir / f"{config.stem}.crt").resolve()
        assert cfg.tls.read().key is not None
        assert (cfg.member_id, cfg.listen, cfg.data_dir) == (m.id, m.listen, m.data_dir.resolve())
    with pytest.raises(ConfigError, match="already has a"):
        enable_tls_for_federation(fed.dir)
