"""Network addresses: the one grammar for `host:port`, for heartbeats and node configs alike.

    address = host ":" port
    host    = name / "[" IPv6address "]"
    name    = alnum [ 0*251( alnum / "." / "-" ) alnum ]    ; 1..253 characters, IPv4 included
    alnum   = ALPHA / DIGIT                                 ; ASCII only
    port    = 1*5DIGIT                                      ; value 1..65535

IPv6address is RFC 3986's (§3.2.2): no zone identifier (`%eth0` means nothing to another host).
A heartbeat's address must match (docs/protocol.md §4.3), and so must every address in a node
config, so whatever a node advertises its peers can dial. Only a listen address may have port 0
(any free port).
"""

from __future__ import annotations

import ipaddress
import re

from pausenet.errors import AddressError

__all__ = ["MAX_ADDRESS", "is_valid_address", "parse_address"]

MAX_ADDRESS = 259  # a 253-character name, ":" and 5 digits
_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?")


def parse_address(text: str, *, allow_port_zero: bool) -> tuple[str, int]:
    """(host, port) of 'host:port' or '[ipv6]:port'; raises AddressError with a one-line reason."""
    host, sep, port_s = text.rpartition(":")
    if not sep or not host or not text.isascii():  # not isascii: '٧٤٠٠'.isdigit() is true
        raise AddressError(f"{text[:80]!r} is not host:port (e.g. 127.0.0.1:7400)")
    if host.startswith("[") and host.endswith("]"):
        if "%" in host:
            raise AddressError(
                f"{text[:80]!r}: a zone index (%...) means nothing to other hosts;"
                " give an address without one"
            )
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise AddressError(f"{host[:80]!r} is not an IPv6 address") from exc
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"{text[:80]!r}: write an IPv6 address in brackets, e.g. [::1]:7400")
    elif not _NAME_RE.fullmatch(host):
        raise AddressError(f"{host[:80]!r} is not a host name or IP address")
    if not port_s.isdigit() or len(port_s) > 5:
        raise AddressError(f"port {port_s[:80]!r} is not a number")
    port = int(port_s)
    lowest = 0 if allow_port_zero else 1
    if not lowest <= port <= 65535:
        raise AddressError(f"port {port} is outside {lowest}..65535")
    return host, port


def is_valid_address(text: str) -> bool:
    """Whether a heartbeat may carry this address (port 1..65535)."""
    if len(text) > MAX_ADDRESS:
        return False
    try:
        parse_address(text, allow_port_zero=False)
    except AddressError:
        return False
    return True
