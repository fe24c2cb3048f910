"""The one error tree of pausenet.

    PausenetError                 root; every error the project raises on purpose
    ├── KeyFileError              a key file is missing, malformed or too readable
    ├── CharterError              a charter file or value is invalid
    ├── ConfigError               a node config file is invalid
    ├── CodecError                bytes that are not a canonical encoding (also a ValueError)
    ├── VerificationError         a signed object failed verification (carries a Rejection)
    ├── BundleError               a bundle file is malformed
    ├── StoreError                the on-disk store is unusable
    │   └── ConflictError         an append conflicts with what is stored
    ├── SigningRefusedError       the node refuses to sign a statement (wrong epoch, …)
    ├── NodeError                 a call to a node failed (unreachable, refused, bad reply)
    └── ClusterError              a local cluster command failed (no cluster, a node not ready)

Messages are one line, name what was wrong, and say how to fix it where there is a fix.
"""

from __future__ import annotations

__all__ = [
    "BundleError",
    "CharterError",
    "ClusterError",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "KeyFileError",
    "NodeError",
    "PausenetError",
    "SigningRefusedError",
    "StoreError",
    "VerificationError",
]


class PausenetError(Exception):
    """Root of every error pausenet raises on purpose."""


class KeyFileError(PausenetError):
    """A key file is missing, malformed, of the wrong length or readable by others."""


class CharterError(PausenetError):
    """A charter file or charter value is invalid."""


class ConfigError(PausenetError):
    """A node config file is invalid."""


class CodecError(PausenetError, ValueError):
    """Bytes that are not a valid, canonical encoding of the expected message."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class VerificationError(PausenetError):
    """A signed object failed verification."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class BundleError(PausenetError):
    """A bundle file is malformed."""


class StoreError(PausenetError):
    """The on-disk store cannot be opened or used."""


class ConflictError(StoreError):
    """An append conflicts with what the store already holds."""


class SigningRefusedError(PausenetError):
    """The node refuses to sign a statement."""


class NodeError(PausenetError):
    """A call to a node failed: unreachable, refused, or answered with something unusable."""


class ClusterError(PausenetError):
    """A cluster command failed: no cluster, a node not ready in time, a step that timed out."""
