"""The one error tree of pausenet, and the reasons a signed item is refused.

    PausenetError                 root; every error pausenet raises on purpose
    ├── FormatError               a value is not in the form expected (also a ValueError)  [input]
    │   ├── KeyFormatError        not an Ed25519 key or seed: wrong length, not hex        [input]
    │   ├── AddressError          not host:port or [ipv6]:port                             [input]
    │   ├── NonceError            an overseer's nonce is not 16 to 64 bytes                [input]
    │   ├── EnvelopeFormatError   JSON that is not a DSSE envelope                         [input]
    │   └── CodecError            signed bytes that are not a canonical encoding; .reason   [peer]
    ├── KeyFileError              a key file is missing, malformed or readable by others   [local]
    ├── CharterError              a charter file or value is invalid                       [local]
    ├── ConfigError               a node config file is invalid                            [local]
    ├── BundleError               a bundle file is malformed                               [input]
    ├── GovernanceError           no charter version is in force on the chain given        [input]
    ├── VerificationError         a signed object failed verification; .reason             [peer]
    ├── PeerError                 a call to a peer failed, or the peer misbehaved          [peer]
    ├── StoreError                this node's on-disk store is unusable                    [local]
    ├── SigningRefusedError       the node refuses to sign a statement that would not count [input]
    ├── NodeError                 a call to a node failed: unreachable, refused, bad reply [remote]
    └── ClusterError              a local cluster command failed (no cluster, a node not ready) [local]

Whose fault each one is:
- [input]: a value or file handed to pausenet by its user (a CLI argument, a bundle, an API call's
  argument); the message says what to change.
- [peer]: another member's node sent, or a member signed, something wrong. A node holds it against
  that peer (backs off, lowers its score); it is never a reason to stop.
- [local]: this machine's own files or store. A node logs it and stops or retries; a peer is
  never blamed for it. In the gossip engine `except PeerError` therefore comes before
  `except PausenetError`: whatever else in the tree escapes an ingest is local (the store failed).
- [remote]: the node a client called (`pausenet status`, admin commands) did not answer usefully.

FormatError and its subclasses are also ValueErrors (as PyNaCl's errors are), so callers written
against the builtin keep working. Messages are one line, name what was wrong, and say how to fix
it where there is a fix.

`Reason` names why a signed item is not counted or not stored. Its string values appear in JSON
output, in counters (`rejected.<reason>`) and in docs/protocol.md, so they never change.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AddressError",
    "BundleError",
    "CharterError",
    "ClusterError",
    "CodecError",
    "ConfigError",
    "EnvelopeFormatError",
    "FormatError",
    "GovernanceError",
    "KeyFileError",
    "KeyFormatError",
    "NodeError",
    "NonceError",
    "PausenetError",
    "PeerError",
    "Reason",
    "SigningRefusedError",
    "StoreError",
    "VerificationError",
]


class Reason(StrEnum):
    """Why a signed item is not counted or not stored."""

    # one envelope on its own (docs/protocol.md §6)
    OVERSIZE = "oversize"
    UNKNOWN_PAYLOAD_TYPE = "unknown-payload-type"
    BAD_SIGNATURE = "bad-signature"
    UNKNOWN_MEMBER = "unknown-member"
    MALFORMED = "malformed"
    NON_CANONICAL = "non-canonical"
    MEMBER_MISMATCH = "member-mismatch"
    WRONG_CHARTER = "wrong-charter"
    # signed under a charter of this federation that is not (yet) in force here (§15.7)
    UNKNOWN_VERSION = "unknown-version"
    FROM_FUTURE = "from-future"
    INVALID = "invalid"
    # a set of envelopes, assigned by the view (§6, §8)
    DUPLICATE = "duplicate"
    MISSING_PREDECESSOR = "missing-predecessor"
    BROKEN_CHAIN = "broken-chain"
    SUPERSEDED = "superseded"  # a heartbeat no newer than the one held: replay or rollback
    # ingest into a node's replica (§12.3)
    GAP = "gap"  # a statement beyond head + 1: the sender must send in seq order
    TYPE_CONFUSION = "type-confusion"  # a heartbeat sent as a statement, or the reverse
    BAD_EVIDENCE = "bad-evidence"  # an evidence pair that does not check on its own
    QUOTA = "quota"  # more of an equivocator's branches than a node keeps

    def __repr__(self) -> str:
        # Logs print counts by reason as dicts ({'gap': 2}); they read as they did when reasons
        # were plain strings, and as the counters and JSON output name them.
        return repr(self.value)


class PausenetError(Exception):
    """Root of every error pausenet raises on purpose."""


class FormatError(PausenetError, ValueError):
    """A value is not in the form pausenet expects."""


class KeyFormatError(FormatError):
    """Bytes or hex that are not an Ed25519 public key or seed."""


class AddressError(FormatError):
    """Text that is not host:port or [ipv6]:port."""


class NonceError(FormatError):
    """An overseer's nonce that is not 16 to 64 bytes."""


class EnvelopeFormatError(FormatError):
    """JSON that is not a DSSE envelope (missing fields, bad base64)."""


class CodecError(FormatError):
    """Bytes that are not a valid, canonical encoding of the expected message."""

    def __init__(self, reason: Reason | str, detail: str) -> None:
        super().__init__(detail)
        self.reason = Reason(reason)


class KeyFileError(PausenetError):
    """A key file is missing, malformed, of the wrong length or readable by others."""


class CharterError(PausenetError):
    """A charter file or charter value is invalid."""


class ConfigError(PausenetError):
    """A node config file is invalid."""


class BundleError(PausenetError):
    """A bundle file is malformed."""


class GovernanceError(PausenetError):
    """No charter version is in force: genesis not ratified, or the pinned charter unusable."""


class VerificationError(PausenetError):
    """A signed object failed verification."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class PeerError(PausenetError):
    """A call to a peer failed (unreachable, timed out, refused) or it answered nonsense."""


class StoreError(PausenetError):
    """The on-disk store cannot be opened or used."""


class SigningRefusedError(PausenetError):
    """The node refuses to sign a statement."""


class NodeError(PausenetError):
    """A call to a node failed: unreachable, refused, or answered with something unusable."""


class ClusterError(PausenetError):
    """A cluster command failed: no cluster, a node not ready in time, a step that timed out."""
