"""Node config: loading, defaults, relative paths, and one clear error per kind of mistake."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pausenet.errors import ConfigError
from pausenet.node.config import (
    LOCAL_DEFAULTS,
    NodeConfig,
    is_loopback,
    load_config,
    parse_host_port,
)
from pausenet.ops.federation import Federation, init_federation


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return init_federation(tmp_path / "fed", 3, 1)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_config(fed: Federation, member: str = "lab-a", **changes: Any) -> Path:
    """Rewrite member's generated config with changes (a value of None removes the key)."""
    path = fed.dir / "node_configs" / f"{member}.toml"
    data = tomllib.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    path.write_text("".join(f"{k} = {_toml(v)}\n" for k, v in data.items()))
    return path


def error_for(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(str(path)), msg
    return msg


def test_generated_config_loads_with_absolute_paths(fed: Federation) -> None:
    cfg = load_config(fed.dir / "node_configs" / "lab-b.toml")
    root = fed.dir.resolve()
    assert cfg == NodeConfig(
        member_id="lab-b",
        charter_path=root / "charter.toml",
        key_path=root / "keys" / "lab-b.key",
        data_dir=root / "data" / "lab-b",
        listen="127.0.0.1:7402",
        admin_listen="127.0.0.1:7403",
        peers=("127.0.0.1:7400", "127.0.0.1:7404", "127.0.0.1:7406"),
        admin_token_path=root / "data" / "lab-b" / "admin.token",
        log_level="info",
    )
    assert cfg.admin_token_file == root / "data" / "lab-b" / "admin.token"


def test_paths_are_relative_to_the_config_file_not_the_cwd(
    fed: Federation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path(os.path.relpath(fed.dir / "node_configs" / "lab-a.toml")))
    assert cfg.charter_path == (fed.dir / "charter.toml").resolve()


def test_optional_keys_take_the_local_defaults(fed: Federation) -> None:
    path = write_config(
        fed, listen=None, admin_listen=None, admin_token=None, peers=None, log_level=None
    )
    cfg = load_config(path)
    assert cfg.listen == LOCAL_DEFAULTS.listen == "127.0.0.1:0"
    assert cfg.admin_listen == LOCAL_DEFAULTS.admin_listen
    assert cfg.log_level == LOCAL_DEFAULTS.log_level
    assert cfg.peers == ()
    assert cfg.admin_token_path is None
    assert cfg.admin_token_file == cfg.data_dir / "admin.token"


def test_missing_file(tmp_path: Path) -> None:
    assert "config file not found" in error_for(tmp_path / "nope.toml")


def test_not_toml(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("member_id = \n")
    assert "not valid TOML" in error_for(p)


def test_unknown_key_names_the_known_ones(fed: Federation) -> None:
    msg = error_for(write_config(fed, listn="127.0.0.1:1"))
    assert "listn: unknown key" in msg
    assert "listen" in msg


@pytest.mark.parametrize("key", ["member_id", "charter", "key", "data_dir"])
def test_required_key_missing(fed: Federation, key: str) -> None:
    assert f"{key}: missing; add it" in error_for(write_config(fed, **{key: None}))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("listen", 7400, "listen: must be a string, got a number"),
        ("charter", ["a"], "charter: must be a string, got a list"),
        ("log_level", True, "log_level: must be a string, got a boolean"),
        ("admin_allow_remote", "yes", "admin_allow_remote: must be true or false"),
        ("peers", "127.0.0.1:7402", "peers: must be a list"),
        ("peers", [7402], 'peers[0]: must be a "host:port" string'),
    ],
)
def test_wrong_types(fed: Federation, key: str, value: Any, expected: str) -> None:
    assert expected in error_for(write_config(fed, **{key: value}))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("listen", "127.0.0.1", "listen: '127.0.0.1' is not host:port"),
        ("listen", "127.0.0.1:65536", "port 65536 is outside 0..65535"),
        ("listen", "127.0.0.1:http", "port 'http' is not a number"),
        ("listen", "::1:7400", "write an IPv6 address in brackets"),
        ("listen", "[zz::1]:7400", "is not an IPv6 address"),
        ("listen", "bad host:7400", "is not a host name or IP address"),
        ("admin_listen", ":7401", "is not host:port"),
        ("peers", ["127.0.0.1:0"], "peers[0]: port 0 is outside 1..65535"),
        (
            "peers",
            ["127.0.0.1:7402", "127.0.0.1:7402"],
            "peers[1]: '127.0.0.1:7402' is listed twice",
        ),
    ],
)
def test_bad_addresses(fed: Federation, key: str, value: Any, expected: str) -> None:
    assert expected in error_for(write_config(fed, **{key: value}))


def test_member_id_must_be_a_slug(fed: Federation) -> None:
    assert "member_id: 'Lab A' is not a member id" in error_for(
        write_config(fed, member_id="Lab A")
    )


def test_member_must_be_in_the_charter(fed: Federation) -> None:
    msg = error_for(write_config(fed, member_id="lab-z"))
    assert "member_id: 'lab-z' is not a member of" in msg
    assert "lab-a, lab-b, lab-c, overseer-a" in msg


def test_key_must_be_the_charters_key_for_the_member(fed: Federation) -> None:
    msg = error_for(write_config(fed, key="../keys/lab-b.key"))
    assert "key: " in msg
    assert "but the charter gives lab-a" in msg
    assert "point 'key' at lab-a's key" in msg


def test_key_file_readable_by_others(fed: Federation) -> None:
    (fed.dir / "keys" / "lab-a.key").chmod(0o644)
    msg = error_for(write_config(fed))
    assert "key: " in msg
    assert "chmod 600" in msg


def test_key_file_missing(fed: Federation) -> None:
    msg = error_for(write_config(fed, key="../keys/nobody.key"))
    assert "key: " in msg
    assert "pausenet keygen" in msg


def test_charter_missing_or_invalid(fed: Federation) -> None:
    assert "charter: " in error_for(write_config(fed, charter="../nope.toml"))
    (fed.dir / "charter.toml").write_text("federation_id = 1\n")
    assert "charter: " in error_for(write_config(fed))


def test_data_dir_must_not_be_a_file(fed: Federation) -> None:
    (fed.dir / "afile").write_text("x")
    assert "data_dir: " in error_for(write_config(fed, data_dir="../afile"))


def test_empty_path(fed: Federation) -> None:
    assert "data_dir: empty" in error_for(write_config(fed, data_dir=" "))


def test_admin_listen_must_be_loopback(fed: Federation) -> None:
    msg = error_for(write_config(fed, admin_listen="0.0.0.0:7401"))
    assert "admin_listen: '0.0.0.0' is not a loopback address" in msg
    assert "admin_allow_remote = true" in msg


def test_admin_allow_remote_permits_a_remote_admin_address(fed: Federation) -> None:
    cfg = load_config(write_config(fed, admin_listen="0.0.0.0:7401", admin_allow_remote=True))
    assert cfg.admin_listen == "0.0.0.0:7401"
    assert cfg.admin_allow_remote is True


@pytest.mark.parametrize("addr", ["localhost:7401", "[::1]:7401", "127.0.0.2:7401"])
def test_loopback_admin_addresses(fed: Federation, addr: str) -> None:
    assert load_config(write_config(fed, admin_listen=addr)).admin_listen == addr


def test_log_level(fed: Federation) -> None:
    assert "log_level: 'loud' is not one of debug, info, warning, error" in error_for(
        write_config(fed, log_level="loud")
    )
    assert load_config(write_config(fed, log_level="debug")).log_level == "debug"


def test_parse_host_port_and_loopback() -> None:
    assert parse_host_port("[::1]:80") == ("::1", 80)
    assert parse_host_port("node-1.example.org:7400") == ("node-1.example.org", 7400)
    for host in ("127.0.0.1", "127.9.9.9", "::1", "localhost"):
        assert is_loopback(host), host
    for host in ("10.0.0.1", "192.168.1.1", "example.org", "localhost.example.org"):
        assert not is_loopback(host), host


def test_advertise_defaults_to_none_and_accepts_empty_or_host_port(tmp_path: Path) -> None:
    fed = init_federation(tmp_path / "fed", 2, 0)
    path = fed.members[0].config_path
    assert load_config(path).advertise is None
    text = path.read_text()
    path.write_text(text + '\nadvertise = ""\n')
    assert load_config(path).advertise == ""
    path.write_text(text + '\nadvertise = "proxy.example:9000"\n')
    assert load_config(path).advertise == "proxy.example:9000"
    path.write_text(text + '\nadvertise = "no-port"\n')
    with pytest.raises(ConfigError, match="advertise"):
        load_config(path)
