"""The one address grammar (pausenet.core.address), shared by heartbeats and node configs."""

from __future__ import annotations

import pytest

from pausenet.core.address import MAX_ADDRESS, is_valid_address, parse_address
from pausenet.core.verify import is_valid_address as verify_is_valid_address
from pausenet.errors import AddressError
from pausenet.node.config import parse_host_port

GOOD = {
    "node-1.example.org:7400": ("node-1.example.org", 7400),
    "10.0.0.1:1": ("10.0.0.1", 1),
    "[::1]:7400": ("::1", 7400),
    "[2001:db8::ffff:1.2.3.4]:65535": ("2001:db8::ffff:1.2.3.4", 65535),
    "a:00080": ("a", 80),
    "a" * 253 + ":1": ("a" * 253, 1),
}
BAD = [
    "",
    "host",
    "host:",
    ":7400",
    "host:port",
    "host:123456",
    "host:65536",
    "host:0",
    "-host:1",
    "host.:1",
    "ho st:1",
    "ho_st:1",
    "a" * 254 + ":1",
    "::1:7400",
    "[::::]:1",
    "[1.2.3.4]:1",
    "[fe80::1%eth0]:7400",
    "é.example:1",
    "127.0.0.1:\u0667\u0664\u0660\u0660",
]


@pytest.mark.parametrize("text", GOOD)
def test_addresses_in_the_grammar(text: str) -> None:
    assert parse_address(text, allow_port_zero=False) == GOOD[text]
    assert is_valid_address(text)
    assert len(text) <= MAX_ADDRESS


@pytest.mark.parametrize("text", BAD)
def test_addresses_outside_the_grammar(text: str) -> None:
    assert not is_valid_address(text)
    with pytest.raises(AddressError):
        parse_address(text, allow_port_zero=False)


def test_only_a_listen_address_may_have_port_zero() -> None:
    assert parse_address("127.0.0.1:0", allow_port_zero=True) == ("127.0.0.1", 0)
    assert parse_host_port("127.0.0.1:0") == ("127.0.0.1", 0)
    with pytest.raises(AddressError, match=r"port 0 is outside 1\.\.65535"):
        parse_host_port("127.0.0.1:0", allow_port_zero=False)


def test_heartbeats_and_configs_share_the_one_function() -> None:
    assert verify_is_valid_address is is_valid_address


def test_errors_say_what_to_fix() -> None:
    with pytest.raises(AddressError, match=r"write an IPv6 address in brackets"):
        parse_address("::1:7400", allow_port_zero=False)
    with pytest.raises(AddressError, match=r"zone index"):
        parse_address("[fe80::1%eth0]:7400", allow_port_zero=False)
    with pytest.raises(AddressError, match=r"'\[zz\]' is not an IPv6 address"):
        parse_address("[zz]:1", allow_port_zero=False)
