"""Generated protobuf and gRPC code for pausenet.v1. Do not edit: run scripts/gen-proto."""
