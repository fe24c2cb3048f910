"""Node configuration: one TOML file per node, loaded into a frozen, validated `NodeConfig`.

    member_id = "lab-a"                       # required: this node's member id in the charter
    charter = "../charter.toml"               # required: the charter file
    key = "../keys/lab-a.key"                 # required: this member's private key (mode 0600)
    data_dir = "../data/lab-a"                # required: where the node keeps its store
    listen = "127.0.0.1:7400"                 # gossip address (host:port; port 0 picks one)
    admin_listen = "127.0.0.1:7401"           # admin API; loopback unless admin_allow_remote
    admin_allow_remote = false
    admin_token = "../data/lab-a/admin.token" # default: <data_dir>/admin.token
    peers = ["127.0.0.1:7402"]                # bootstrap peers (host:port)
    advertise = "node-a.example:7400"         # address put in heartbeats; default: the bound
                                              # listen address; "" advertises none
    log_level = "info"                        # debug, info, warning or error
    metrics_listen = "127.0.0.1:9464"         # Prometheus metrics over HTTP; default: off;
    metrics_allow_remote = false              # loopback unless metrics_allow_remote
    trust = "../genesis.toml"                 # the pinned version (a file or the 64-hex digest
                                              # of `charter`); default: `charter` itself
    approvals = "../approvals"                # approval envelopes (*.json) read at start;
                                              # default: approvals/ beside charter and trust

    [tls]                                     # optional: TLS on both servers and for gossip
    cert = "../tls/lab-a.crt"                 # PEM chain; key = …, ca = …, client_auth = true
                                              # for mutual TLS (see pausenet.node.tls)

Relative paths are relative to the config file's directory. `load_config` checks every value,
that the member is in the charter and that the key file holds that member's key; each error is
one line naming the file, the key and the fix.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pausenet.core.address import parse_address
from pausenet.core.charter import SLUG_RE, load_charter
from pausenet.core.keys import load_signing_key
from pausenet.errors import AddressError, CharterError, ConfigError, KeyFileError
from pausenet.node.tls import TlsConfig

__all__ = [
    "LOCAL_DEFAULTS",
    "LOG_LEVELS",
    "NODE_FILE",
    "NodeConfig",
    "NodeDefaults",
    "is_loopback",
    "load_config",
    "parse_host_port",
]

LOG_LEVELS = ("debug", "info", "warning", "error")
NODE_FILE = "node.json"  # in data_dir: bound addresses and pid, written by `pausenet run`


@dataclass(frozen=True)
class NodeDefaults:
    """Values a config file may leave out."""

    listen: str
    admin_listen: str
    log_level: str


# A node on one machine: gossip and admin on loopback, ports picked by the OS.
LOCAL_DEFAULTS = NodeDefaults(listen="127.0.0.1:0", admin_listen="127.0.0.1:0", log_level="info")


@dataclass(frozen=True)
class NodeConfig:
    member_id: str
    charter_path: Path
    key_path: Path
    data_dir: Path
    listen: str = LOCAL_DEFAULTS.listen
    admin_listen: str = LOCAL_DEFAULTS.admin_listen
    peers: tuple[str, ...] = ()
    admin_token_path: Path | None = None  # None: <data_dir>/admin.token
    log_level: str = LOCAL_DEFAULTS.log_level
    admin_allow_remote: bool = False
    advertise: str | None = None  # None: the bound listen address; "": advertise none
    tls: TlsConfig | None = None  # None: plaintext (loopback clusters, tests)
    metrics_listen: str | None = None  # None: no metrics endpoint
    metrics_allow_remote: bool = False
    # The pinned, trusted charter version (docs/protocol.md §15.7): None pins `charter_path`
    # itself; a file pins that (earlier) version, `charter_path` being the version this member
    # runs under; a digest must be `charter_path`'s.
    trust_path: Path | None = None
    trust_digest: bytes | None = None
    # approval envelopes read at start; None: `approvals/` beside the charter and the trusted file
    approvals_dir: Path | None = None

    @property
    def admin_token_file(self) -> Path:
        return self.admin_token_path or self.data_dir / "admin.token"


_HEX64 = re.compile(r"[0-9a-f]{64}")

_KEYS = {
    "member_id",
    "charter",
    "key",
    "data_dir",
    "listen",
    "admin_listen",
    "admin_allow_remote",
    "admin_token",
    "peers",
    "log_level",
    "advertise",
    "tls",
    "metrics_listen",
    "metrics_allow_remote",
    "trust",
    "approvals",
}


def parse_host_port(text: str, *, allow_port_zero: bool = True) -> tuple[str, int]:
    """Split 'host:port' or '[v6]:port' (the grammar in `pausenet.core.address`); raises
    AddressError with a one-line reason."""
    return parse_address(text, allow_port_zero=allow_port_zero)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: Path) -> NodeConfig:
    """Read and validate a node config file, its charter and its key file."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return _Loader(path).load(data)


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def fail(self, key: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {msg}")

    def string(self, data: Mapping[str, Any], key: str, default: str | None = None) -> str:
        if key not in data:
            if default is None:
                raise self.fail(key, "missing; add it")
            return default
        v = data[key]
        if not isinstance(v, str):
            raise self.fail(key, f"must be a string, got {_kind(v)}")
        return v

    def file_path(self, data: Mapping[str, Any], key: str, default: str | None = None) -> Path:
        s = self.string(data, key, default)
        if not s.strip():
            raise self.fail(key, "empty; give a path")
        return self.resolve(key, s)

    def resolve(self, key: str, s: str) -> Path:
        if "\0" in s:
            raise self.fail(key, "contains a NUL character; give a path")
        try:
            return (self.base / Path(s).expanduser()).resolve()
        except (OSError, RuntimeError) as exc:  # unknown ~user, symlink loop
            raise self.fail(key, f"{s[:80]!r} is not a usable path: {exc}") from exc

    def address(self, key: str, value: str, *, peer: bool = False) -> tuple[str, int]:
        try:
            return parse_host_port(value, allow_port_zero=not peer)
        except AddressError as exc:
            raise self.fail(key, str(exc)) from exc

    def load(self, data: Mapping[str, Any]) -> NodeConfig:
        for k in data:
            if k not in _KEYS:
                raise self.fail(k, f"unknown key; known keys: {', '.join(sorted(_KEYS))}")

        member_id = self.string(data, "member_id")
        if not SLUG_RE.fullmatch(member_id):
            raise self.fail(
                "member_id", f"{member_id!r} is not a member id (1-32 of a-z, 0-9, '-')"
            )
        charter_path = self.file_path(data, "charter")
        key_path = self.file_path(data, "key")
        data_dir = self.file_path(data, "data_dir")
        try:
            not_a_dir = data_dir.exists() and not data_dir.is_dir()
        except OSError as exc:  # e.g. a name too long
            raise self.fail("data_dir", f"cannot use {data_dir}: {exc.strerror}") from exc
        if not_a_dir:
            raise self.fail("data_dir", f"{data_dir} exists and is not a directory")

        d = LOCAL_DEFAULTS
        listen = self.string(data, "listen", d.listen)
        self.address("listen", listen)
        admin_listen = self.string(data, "admin_listen", d.admin_listen)
        admin_host, _ = self.address("admin_listen", admin_listen)
        allow_remote = data.get("admin_allow_remote", False)
        if not isinstance(allow_remote, bool):
            raise self.fail(
                "admin_allow_remote", f"must be true or false, got {_kind(allow_remote)}"
            )
        if not allow_remote and not is_loopback(admin_host):
            raise self.fail(
                "admin_listen",
                f"{admin_host!r} is not a loopback address; the admin API casts this member's"
                " votes, so keep it on 127.0.0.1 (or set admin_allow_remote = true)",
            )

        raw_peers = data.get("peers", [])
        if not isinstance(raw_peers, list):
            raise self.fail(
                "peers", f'must be a list of "host:port" strings, got {_kind(raw_peers)}'
            )
        peers: list[str] = []
        for i, p in enumerate(raw_peers):
            if not isinstance(p, str):
                raise self.fail(f"peers[{i}]", f'must be a "host:port" string, got {_kind(p)}')
            self.address(f"peers[{i}]", p, peer=True)
            if p in peers:
                raise self.fail(f"peers[{i}]", f"{p!r} is listed twice; remove one")
            peers.append(p)

        advertise: str | None = None
        if "advertise" in data:
            advertise = self.string(data, "advertise")
            if advertise:
                self.address("advertise", advertise, peer=True)
        tls = self.tls(data.get("tls")) if "tls" in data else None
        metrics_listen, metrics_allow_remote = self.metrics(data)
        token = self.file_path(data, "admin_token") if "admin_token" in data else None
        log_level = self.string(data, "log_level", d.log_level)
        if log_level not in LOG_LEVELS:
            raise self.fail("log_level", f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}")

        self.check_member(member_id, charter_path, key_path)
        trust_path, trust_digest = self.trust(data, charter_path)
        approvals = self.file_path(data, "approvals") if "approvals" in data else None
        return NodeConfig(
            trust_path=trust_path,
            trust_digest=trust_digest,
            approvals_dir=approvals,
            member_id=member_id,
            charter_path=charter_path,
            key_path=key_path,
            data_dir=data_dir,
            listen=listen,
            admin_listen=admin_listen,
            peers=tuple(peers),
            admin_token_path=token,
            log_level=log_level,
            admin_allow_remote=allow_remote,
            advertise=advertise,
            tls=tls,
            metrics_listen=metrics_listen,
            metrics_allow_remote=metrics_allow_remote,
        )

    def metrics(self, data: Mapping[str, Any]) -> tuple[str | None, bool]:
        """metrics_listen (off unless given) and whether it may be a non-loopback address."""
        allow = data.get("metrics_allow_remote", False)
        if not isinstance(allow, bool):
            raise self.fail("metrics_allow_remote", f"must be true or false, got {_kind(allow)}")
        if "metrics_listen" not in data:
            return None, allow
        listen = self.string(data, "metrics_listen")
        host, _ = self.address("metrics_listen", listen)
        if not allow and not is_loopback(host):
            raise self.fail(
                "metrics_listen",
                f"{host!r} is not a loopback address; metrics show peer scores and bans, so keep"
                " them on 127.0.0.1 behind your scraper's proxy (or set metrics_allow_remote ="
                " true)",
            )
        return listen, allow

    def tls(self, raw: object) -> TlsConfig:
        if not isinstance(raw, Mapping):
            raise self.fail("tls", "must be a table with cert, key and ca (and client_auth)")
        for k in raw:
            if k not in ("cert", "key", "ca", "client_auth"):
                raise self.fail(f"tls.{k}", "unknown key; known keys: ca, cert, client_auth, key")
        client_auth = raw.get("client_auth", False)
        if not isinstance(client_auth, bool):
            raise self.fail("tls.client_auth", f"must be true or false, got {_kind(client_auth)}")
        paths = {}
        for k in ("cert", "key", "ca"):
            v = raw.get(k)
            if not isinstance(v, str) or not v.strip():
                raise self.fail(f"tls.{k}", "missing; give the path of a PEM file")
            paths[k] = self.resolve(f"tls.{k}", v)
        return TlsConfig(paths["cert"], paths["key"], paths["ca"], client_auth)

    def trust(
        self, data: Mapping[str, Any], charter_path: Path
    ) -> tuple[Path | None, bytes | None]:
        """`trust`: a charter file (the pinned version) or the 64-hex digest of `charter`."""
        if "trust" not in data:
            return None, None
        text = self.string(data, "trust")
        if _HEX64.fullmatch(text):
            digest = bytes.fromhex(text)
            have = load_charter(charter_path).digest
            if digest != have:
                raise self.fail(
                    "trust",
                    f"{charter_path} has digest {have.hex()[:16]}…, not the trusted"
                    f" {text[:16]}…; restore the charter file the federation approved",
                )
            return None, digest
        path = self.file_path(data, "trust")
        try:
            pinned = load_charter(path)
        except CharterError as exc:
            raise self.fail("trust", str(exc)) from exc
        mine = load_charter(charter_path)
        if pinned.federation_id != mine.federation_id or pinned.version > mine.version:
            raise self.fail(
                "trust",
                f"{path} is not an earlier version of {charter_path}'s federation; pin its"
                " genesis (or give the 64-hex digest of the charter file)",
            )
        return path, None

    def check_member(self, member_id: str, charter_path: Path, key_path: Path) -> None:
        """The member is in the charter and the key file holds the charter's key for it."""
        try:
            charter = load_charter(charter_path)
        except CharterError as exc:
            raise self.fail("charter", str(exc)) from exc
        member = charter.member(member_id)
        if member is None:
            ids = ", ".join(m.id for m in charter.members)
            raise self.fail(
                "member_id", f"{member_id!r} is not a member of {charter_path}; members: {ids}"
            )
        try:
            key = load_signing_key(key_path)
        except KeyFileError as exc:
            raise self.fail("key", str(exc)) from exc
        if key.public_key != member.public_key:
            raise self.fail(
                "key",
                f"{key_path} holds public key {key.public_key.hex()[:16]}…, but the charter gives"
                f" {member_id} {member.public_key.hex()[:16]}…; point 'key' at {member_id}'s key",
            )


def _kind(v: object) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string"}.get(
        type(v),
        "a list" if isinstance(v, list) else "a table" if isinstance(v, dict) else "a value",
    )
