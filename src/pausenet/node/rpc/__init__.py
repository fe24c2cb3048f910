"""The node's gRPC boundary: the gossip client and the public and admin servers.

Protobuf stops here: requests are converted to domain objects by `pausenet.node.wire` before
they reach the node, which the servers see only through the `NodeApi` protocol (`api`), and gRPC
errors are translated to `PeerError` at the client (`client`). Channel options live in
`channels`; each service in its own module; binding, registration and health in `servers`.
"""

from pausenet.node.rpc.api import NodeApi
from pausenet.node.rpc.bounds import ServerLimits
from pausenet.node.rpc.channels import channel_options, open_channel
from pausenet.node.rpc.client import GrpcTransport
from pausenet.node.rpc.servers import (
    SERVICE_NAMES,
    RpcServer,
    start_admin_server,
    start_public_server,
)

__all__ = [
    "SERVICE_NAMES",
    "GrpcTransport",
    "NodeApi",
    "RpcServer",
    "ServerLimits",
    "channel_options",
    "open_channel",
    "start_admin_server",
    "start_public_server",
]
