"""A running node: the replica and its one ingest path, gossip, peer authentication and limits,
the SQLite store, config, TLS, the protobuf wire mapping, the gRPC services and the node that
composes them. Built on `pausenet.core`."""
