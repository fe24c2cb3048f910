"""node_configs/: the example federation a lab's operator starts from, loaded with the real
loaders. The charter is read as it ships; each node config is loaded from a copy laid out under
a temp root (its /etc/pausenet and /var/lib/pausenet moved there, fresh keys in place of the
example keys whose private halves were thrown away), so every check `pausenet run` makes of a
config before it opens the store is made here too."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from pausenet.core.charter import Role, load_charter
from pausenet.core.keys import generate, write_signing_key
from pausenet.node.config import NodeConfig, is_loopback, load_config, parse_host_port

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "node_configs"
UNIT = ROOT / "deploy" / "systemd" / "pausenet@.service"
MEMBERS = sorted(p.stem for p in CONFIGS.glob("*.toml") if p.name != "charter.toml")


@dataclass(frozen=True)
class Installed:
    root: Path  # stands for /
    configs: dict[str, NodeConfig]

    def host_path(self, p: Path) -> str:
        """The path as it is on the lab's host."""
        return "/" + str(p.relative_to(self.root))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("host")
    etc = root / "etc" / "pausenet"
    (etc / "keys").mkdir(parents=True)
    charter = (CONFIGS / "charter.toml").read_text(encoding="utf-8")
    for m in MEMBERS:
        key = generate()
        write_signing_key(etc / "keys" / f"{m}.key", key)
        charter, n = re.subn(
            rf'(id = "{m}"\nrole = "\w+"\npublic_key = )"[0-9a-f]{{64}}"',
            rf'\1"{key.public_key.hex()}"',
            charter,
        )
        assert n == 1, f"{m}: no [[members]] entry in node_configs/charter.toml"
    (etc / "charter.toml").write_text(charter, encoding="utf-8")
    configs = {}
    for m in MEMBERS:
        text = (CONFIGS / f"{m}.toml").read_text(encoding="utf-8")
        text = text.replace('"/etc/pausenet/', f'"{etc}/')
        text = text.replace('"/var/lib/pausenet/', f'"{root}/var/lib/pausenet/')
        (etc / f"{m}.toml").write_text(text, encoding="utf-8")
        configs[m] = load_config(etc / f"{m}.toml")
    return Installed(root, configs)


def test_the_example_charter_loads_as_it_ships() -> None:
    charter = load_charter(CONFIGS / "charter.toml")
    assert charter.federation_id == "frontier-pause-example"
    roles = {m.id: m.role for m in charter.members}
    assert sorted(roles) == MEMBERS
    assert sorted(r.value for r in roles.values()) == ["lab", "lab", "lab", "overseer"]
    assert charter.rules.pause_threshold == 2
    assert charter.rules.lift_overseer_threshold == 1
    assert {t.id for t in charter.triggers} == {"rsi-detected", "eval-threshold"}


def test_every_config_loads_with_the_real_loader(installed: Installed) -> None:
    assert sorted(installed.configs) == MEMBERS
    for m, cfg in installed.configs.items():
        assert cfg.member_id == m, f"{m}.toml names {cfg.member_id}"


def test_paths_are_absolute_and_match_the_systemd_unit(installed: Installed) -> None:
    unit = UNIT.read_text(encoding="utf-8")
    assert "--config /etc/pausenet/%i.toml" in unit
    assert "StateDirectory=pausenet/%i" in unit
    for m, cfg in installed.configs.items():
        raw = tomllib.loads((CONFIGS / f"{m}.toml").read_text(encoding="utf-8"))
        for key in ("charter", "key", "data_dir"):
            assert raw[key].startswith("/"), f"{m}.toml: {key} is not absolute"
        for key in ("cert", "key", "ca"):
            assert raw["tls"][key].startswith("/etc/pausenet/tls/"), f"{m}.toml: tls.{key}"
        assert installed.host_path(cfg.charter_path) == "/etc/pausenet/charter.toml"
        assert installed.host_path(cfg.key_path) == f"/etc/pausenet/keys/{m}.key"
        # the unit's StateDirectory for instance m, where systemd lets the node write
        assert installed.host_path(cfg.data_dir) == f"/var/lib/pausenet/{m}"


def test_tls_metrics_and_admin_are_set_as_a_production_node_needs(installed: Installed) -> None:
    for m, cfg in installed.configs.items():
        assert cfg.tls is not None, f"{m}: TLS off"
        assert cfg.tls.client_auth, f"{m}: mutual TLS off"
        assert installed.host_path(cfg.tls.ca) == "/etc/pausenet/tls/federation-ca.crt"
        assert cfg.metrics_listen is not None, f"{m}: metrics off"
        assert is_loopback(parse_host_port(cfg.metrics_listen)[0])
        assert is_loopback(parse_host_port(cfg.admin_listen)[0])
        assert not cfg.admin_allow_remote
        assert not cfg.metrics_allow_remote


def test_each_node_advertises_its_host_and_knows_every_other_member(
    installed: Installed,
) -> None:
    charter = load_charter(CONFIGS / "charter.toml")
    advertised = {}
    for m, cfg in installed.configs.items():
        assert cfg.advertise, f"{m}: advertises no address"
        host, port = parse_host_port(cfg.advertise)
        assert host == f"pausenet.{m}.example", f"{m}: advertises {host}"
        assert port == parse_host_port(cfg.listen)[1], f"{m}: advertises another port"
        advertised[m] = cfg.advertise
    assert len(set(advertised.values())) == len(advertised), "two members advertise one address"
    for m, cfg in installed.configs.items():
        others = {a for o, a in advertised.items() if o != m}
        assert set(cfg.peers) == others, f"{m}.toml: peers are not the other members' addresses"
    overseers = [m.id for m in charter.members if m.role is Role.OVERSEER]
    assert overseers == ["oversight-board"]
