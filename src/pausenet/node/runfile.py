"""The files of a running node beside its store, and the one way to read and write each.

    <data_dir>/node.lock   locked (flock) while a node runs on this data_dir: one node per store
    <data_dir>/node.json   {"member", "address", "admin_address", "pid"}: where a running node
                           listens (ports given as 0 are only known then); written by `pausenet
                           run` once the node is up, removed when it stops
    admin token            (default <data_dir>/admin.token) the secret the admin API asks for;
                           owner-only, created on the node's first start

Plus whether a process is alive, for telling a node.json left by a killed node from a live one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pausenet.core.files import write_atomic
from pausenet.errors import ConfigError
from pausenet.node.config import NODE_FILE

__all__ = [
    "LOCK_FILE",
    "MIN_TOKEN_LENGTH",
    "NODE_FILE",
    "NodeFile",
    "create_admin_token",
    "load_or_create_admin_token",
    "lock_data_dir",
    "process_alive",
    "read_admin_token",
    "read_node_file",
    "remove_node_file",
    "write_node_file",
]

LOCK_FILE = "node.lock"
MIN_TOKEN_LENGTH = 32  # characters; a new token has 43 (32 random bytes, base64url)


# -- node.json ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeFile:
    """What node.json says about the node running on a data_dir."""

    member: str
    address: str  # gossip and oversight, HOST:PORT as bound
    admin_address: str
    pid: int

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "address": self.address,
            "admin_address": self.admin_address,
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, doc: object) -> NodeFile | None:
        """The node file in doc, or None when doc is not one (wrong shape or types)."""
        if not isinstance(doc, dict):
            return None
        member, address, admin, pid = (
            doc.get(k) for k in ("member", "address", "admin_address", "pid")
        )
        if not (isinstance(member, str) and isinstance(address, str) and isinstance(admin, str)):
            return None
        if not admin or isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        return cls(member, address, admin, pid)


def write_node_file(data_dir: Path, info: NodeFile) -> None:
    """Write <data_dir>/node.json atomically, readable by the owner only like the store."""
    path = data_dir / NODE_FILE
    try:
        write_atomic(path, json.dumps(info.to_json(), indent=1) + "\n", mode=0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from exc


def read_node_file(data_dir: Path) -> NodeFile | None:
    """The node file on data_dir: None when there is none (or it is not one). Raises
    ConfigError when it exists but cannot be read or is not JSON."""
    path = data_dir / NODE_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); remove it if no node is running") from exc
    return NodeFile.from_json(doc)


def remove_node_file(data_dir: Path, pid: int) -> None:
    """Remove node.json if process pid wrote it (a node on the same data_dir stops at node.lock
    before writing one, but a file left by a killed node may have been replaced)."""
    with contextlib.suppress(ConfigError):
        info = read_node_file(data_dir)
        if info is not None and info.pid == pid:
            with contextlib.suppress(OSError):
                (data_dir / NODE_FILE).unlink()


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (any user's: a permission error means it does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the data_dir lock ----------------------------------------------------------------------


def lock_data_dir(data_dir: Path) -> int:
    """Hold an exclusive lock on <data_dir>/node.lock while the node runs: two nodes on one
    store would each sign heartbeats blind to the other's statements (evidence of a fork).
    Returns the lock's file descriptor; closing it releases the lock."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(f"data_dir {data_dir}: cannot lock it: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise ConfigError(
            f"data_dir {data_dir} is in use by another node{_pid_note(data_dir)}; stop it first,"
            " or give this node its own data_dir"
        ) from exc
    return fd


def _pid_note(data_dir: Path) -> str:
    """' (pid N)' from the node.json beside the store, if there is a readable one."""
    try:
        info = read_node_file(data_dir)
    except ConfigError:
        return ""
    return f" (pid {info.pid})" if info is not None else ""


# -- the admin token ------------------------------------------------------------------------


def load_or_create_admin_token(path: Path) -> str:
    """The admin token at path, created (owner-only) if there is none yet: a node's first start."""
    if path.exists():
        return read_admin_token(path)
    return create_admin_token(path)


def create_admin_token(path: Path) -> str:
    """Write a new random admin token, owner-only, atomically: a crash cannot leave an empty or
    half-written token behind."""
    token = secrets.token_urlsafe(32)
    try:
        write_atomic(path, token + "\n", mode=0o600)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the admin token: {exc.strerror}") from exc
    return token


def read_admin_token(path: Path) -> str:
    """Read an admin token, refusing one that others can read or that is too short to be one
    this node made. Raises ConfigError saying how to fix it."""
    try:
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: admin token is readable by others; run 'chmod 600 {path}'")
        token = path.read_bytes().decode("ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: admin token not found; it is created when the node first starts"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the admin token: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: admin token is not ASCII text; delete the file to make a new one"
        ) from None
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{path}: admin token is too short; delete the file to make a new one")
    return token
