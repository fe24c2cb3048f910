"""A running node's files: node.json, the admin token, the data_dir lock, and whether a
process is alive."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from pausenet.errors import ConfigError
from pausenet.node import runfile
from pausenet.node.runfile import (
    NodeFile,
    create_admin_token,
    load_or_create_admin_token,
    lock_data_dir,
    process_alive,
    read_admin_token,
    read_node_file,
    remove_node_file,
    write_node_file,
)


def test_node_file_round_trip_owner_only(tmp_path: Path) -> None:
    info = NodeFile("lab-a", "127.0.0.1:7400", "127.0.0.1:7401", 4242)
    write_node_file(tmp_path, info)
    path = tmp_path / "node.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "member": "lab-a",
        "address": "127.0.0.1:7400",
        "admin_address": "127.0.0.1:7401",
        "pid": 4242,
    }
    assert read_node_file(tmp_path) == info
    assert [p.name for p in tmp_path.iterdir()] == ["node.json"]  # no temporary file left


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"member": "lab-a", "address": "a:1", "admin_address": "a:2"},
        {"member": "lab-a", "address": "a:1", "admin_address": "", "pid": 1},
        {"member": "lab-a", "address": "a:1", "admin_address": "a:2", "pid": "1"},
        {"member": "lab-a", "address": "a:1", "admin_address": "a:2", "pid": True},
        {"member": 7, "address": "a:1", "admin_address": "a:2", "pid": 1},
    ],
)
def test_a_node_file_of_another_shape_is_no_node_file(tmp_path: Path, doc: object) -> None:
    (tmp_path / "node.json").write_text(json.dumps(doc))
    assert read_node_file(tmp_path) is None


def test_an_absent_or_unreadable_node_file(tmp_path: Path) -> None:
    assert read_node_file(tmp_path) is None
    (tmp_path / "node.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"unreadable.*remove it if no node is running"):
        read_node_file(tmp_path)


def test_remove_node_file_only_removes_its_own(tmp_path: Path) -> None:
    write_node_file(tmp_path, NodeFile("lab-a", "a:1", "a:2", 100))
    remove_node_file(tmp_path, 101)
    assert (tmp_path / "node.json").exists()
    remove_node_file(tmp_path, 100)
    assert not (tmp_path / "node.json").exists()
    remove_node_file(tmp_path, 100)  # nothing to remove: no error


def test_admin_token_is_created_owner_only_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    token = load_or_create_admin_token(path)
    assert len(token) >= runfile.MIN_TOKEN_LENGTH
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_admin_token(path) == token
    assert read_admin_token(path) == token
    assert create_admin_token(path) != token


@pytest.mark.parametrize(
    ("content", "mode", "fragment"),
    [
        ("x" * 43, 0o644, "readable by others; run 'chmod 600"),
        ("x" * 31, 0o600, "too short; delete the file"),
        ("é" * 40, 0o600, "not ASCII"),
    ],
)
def test_one_reader_refuses_a_bad_admin_token(
    tmp_path: Path, content: str, mode: int, fragment: str
) -> None:
    path = tmp_path / "admin.token"
    path.write_text(content + "\n", encoding="utf-8")
    path.chmod(mode)
    with pytest.raises(ConfigError, match=fragment):
        read_admin_token(path)
    with pytest.raises(ConfigError, match=fragment):
        load_or_create_admin_token(path)


def test_a_missing_admin_token_says_when_it_is_made(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="created when the node first starts"):
        read_admin_token(tmp_path / "admin.token")


def test_the_client_reads_the_token_with_the_same_reader() -> None:
    from pausenet import client

    assert client.read_admin_token is read_admin_token


def test_the_data_dir_lock_admits_one_node_and_names_the_other(tmp_path: Path) -> None:
    fd = lock_data_dir(tmp_path)
    try:
        write_node_file(tmp_path, NodeFile("lab-a", "a:1", "a:2", 4242))
        with pytest.raises(ConfigError, match=r"in use by another node \(pid 4242\)"):
            lock_data_dir(tmp_path)
    finally:
        os.close(fd)
    os.close(lock_data_dir(tmp_path))  # released: the next node may take it


def test_process_alive() -> None:
    assert process_alive(os.getpid())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=10)
    assert not process_alive(gone.pid)


def test_a_process_we_may_not_signal_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another user's process exists: the one check says so (signalling it is another matter)."""

    def refused(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", refused)
    assert process_alive(12345)
