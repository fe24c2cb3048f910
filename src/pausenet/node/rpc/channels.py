"""gRPC channel and server options shared by the node's client and servers, and the client's
channel factory (also used by `pausenet.client`)."""

from __future__ import annotations

from typing import Any

import grpc

from pausenet.node.tls import TlsFiles

__all__ = [
    "SERVER_OPTIONS",
    "SESSION_KEY",
    "channel_options",
    "open_channel",
    "rpc_error",
]

SESSION_KEY = "pausenet-session"  # metadata key of a gossip session token (docs/protocol.md §12.5)


def channel_options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_metadata_size", 16 * 1024),
        ("grpc.enable_retries", 0),
    ]


# A connection whose peer went silent (a black-holed link, a frozen host) is found by HTTP/2
# pings within ~15 s and replaced, instead of waiting for TCP to give up. Servers accept pings
# that often (gRPC's default would answer them with "too many pings").
_CLIENT_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
_SERVER_KEEPALIVE = [
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]

# gRPC sets SO_REUSEPORT by default on Linux: a second node would bind the same port and share
# its traffic instead of failing to start. Without BDP probing the server grants a stream more
# than the initial 64 KiB window only while a handler reads its message (and then as much as
# the message needs): a request refused unread (no session, over a bound) cannot make the
# server buffer megabytes of it. (48 refused 3.9 MB Exchanges in flight: RSS 6.8x idle with
# probing, 1.2x without; bench/flood.py.)
SERVER_OPTIONS = [("grpc.so_reuseport", 0), ("grpc.http2.bdp_probe", 0), *_SERVER_KEEPALIVE]


def open_channel(address: str, tls: TlsFiles | None, max_message_bytes: int) -> grpc.aio.Channel:
    """A channel to address: TLS (verifying the peer against tls.ca, presenting tls.cert) or not."""
    options = [*channel_options(max_message_bytes), *_CLIENT_KEEPALIVE]
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(
        root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert
    )
    return grpc.aio.secure_channel(address, creds, options=options)


def rpc_error(exc: grpc.aio.AioRpcError) -> str:
    """'CODE: first line of the details', at most 200 characters of them."""
    code = exc.code()
    name = code.name if code is not None else "UNKNOWN"
    return f"{name}: {(exc.details() or '').splitlines()[0][:200] if exc.details() else ''}"
