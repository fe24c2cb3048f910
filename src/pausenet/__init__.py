"""pausenet: federated attestation nodes that coordinate a pause in frontier AI development.

The names below are the library's public API: enough to load a charter, sign and verify
statements, evaluate the view, check a node's signed answer or a bundle offline, query a node,
and catch pausenet's errors. Everything else (`pausenet.core.*`, `pausenet.node.*`, …) may change
between releases.

    import pausenet
    charter = pausenet.load_charter(Path("charter.toml"))
    bundle = pausenet.read_bundle(Path("bundle.json"))
    view, _ = pausenet.view_of_bundle(charter, bundle)
    print(view.state)

Names are imported on first use, so `import pausenet` stays cheap (the command line starts
faster; protobuf, PyNaCl and gRPC load only when something needs them).
"""

from __future__ import annotations

import importlib

# Not typing.TYPE_CHECKING: importing typing alone would cost `import pausenet` ~10 ms. Type
# checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pausenet.client import AdminClient, OversightClient
    from pausenet.core.answer import Answer, AnswerCheck, check_answer
    from pausenet.core.bundle import Bundle, check_bundle_answer, read_bundle, view_of_bundle
    from pausenet.core.charter import (
        Charter,
        Limits,
        Member,
        Role,
        Rules,
        Trigger,
        load_charter,
        parse_charter,
    )
    from pausenet.core.dsse import Envelope, Signature
    from pausenet.core.evidence import Evidence, check_evidence
    from pausenet.core.keys import PublicKey, SigningKey, load_signing_key, write_signing_key
    from pausenet.core.records import (
        Compliance,
        ComplianceState,
        Decision,
        Heartbeat,
        SignedHeartbeat,
        SignedStatement,
        Statement,
        TriggerAttestation,
        Vote,
    )
    from pausenet.core.signing import build_statement, sign_heartbeat, sign_statement
    from pausenet.core.verify import Rejection, verify_envelope, verify_or_raise
    from pausenet.core.view import (
        Certificate,
        ComplianceStatus,
        EpochRecord,
        MemberStatus,
        PauseState,
        View,
        evaluate,
        evaluate_envelopes,
    )
    from pausenet.errors import (
        AddressError,
        BundleError,
        CharterError,
        ClusterError,
        CodecError,
        ConfigError,
        EnvelopeFormatError,
        FormatError,
        GovernanceError,
        KeyFileError,
        KeyFormatError,
        NodeError,
        NonceError,
        PausenetError,
        PeerError,
        Reason,
        SigningRefusedError,
        StoreError,
        VerificationError,
    )

__version__ = "0.1.0"

__all__ = [
    "AddressError",
    "AdminClient",
    "Answer",
    "AnswerCheck",
    "Bundle",
    "BundleError",
    "Certificate",
    "Charter",
    "CharterError",
    "ClusterError",
    "CodecError",
    "Compliance",
    "ComplianceState",
    "ComplianceStatus",
    "ConfigError",
    "Decision",
    "Envelope",
    "EnvelopeFormatError",
    "EpochRecord",
    "Evidence",
    "FormatError",
    "GovernanceError",
    "Heartbeat",
    "KeyFileError",
    "KeyFormatError",
    "Limits",
    "Member",
    "MemberStatus",
    "NodeError",
    "NonceError",
    "OversightClient",
    "PauseState",
    "PausenetError",
    "PeerError",
    "PublicKey",
    "Reason",
    "Rejection",
    "Role",
    "Rules",
    "Signature",
    "SignedHeartbeat",
    "SignedStatement",
    "SigningKey",
    "SigningRefusedError",
    "Statement",
    "StoreError",
    "Trigger",
    "TriggerAttestation",
    "VerificationError",
    "View",
    "Vote",
    "__version__",
    "build_statement",
    "check_answer",
    "check_bundle_answer",
    "check_evidence",
    "evaluate",
    "evaluate_envelopes",
    "load_charter",
    "load_signing_key",
    "parse_charter",
    "read_bundle",
    "sign_heartbeat",
    "sign_statement",
    "verify_envelope",
    "verify_or_raise",
    "view_of_bundle",
    "write_signing_key",
]

_EXPORTS: dict[str, str] = {
    "Charter": "pausenet.core.charter",
    "Limits": "pausenet.core.charter",
    "Member": "pausenet.core.charter",
    "Role": "pausenet.core.charter",
    "Rules": "pausenet.core.charter",
    "Trigger": "pausenet.core.charter",
    "load_charter": "pausenet.core.charter",
    "parse_charter": "pausenet.core.charter",
    "PublicKey": "pausenet.core.keys",
    "SigningKey": "pausenet.core.keys",
    "load_signing_key": "pausenet.core.keys",
    "write_signing_key": "pausenet.core.keys",
    "Envelope": "pausenet.core.dsse",
    "Signature": "pausenet.core.dsse",
    "Compliance": "pausenet.core.records",
    "ComplianceState": "pausenet.core.records",
    "Decision": "pausenet.core.records",
    "Heartbeat": "pausenet.core.records",
    "SignedHeartbeat": "pausenet.core.records",
    "SignedStatement": "pausenet.core.records",
    "Statement": "pausenet.core.records",
    "TriggerAttestation": "pausenet.core.records",
    "Vote": "pausenet.core.records",
    "build_statement": "pausenet.core.signing",
    "sign_heartbeat": "pausenet.core.signing",
    "sign_statement": "pausenet.core.signing",
    "Rejection": "pausenet.core.verify",
    "verify_envelope": "pausenet.core.verify",
    "verify_or_raise": "pausenet.core.verify",
    "Evidence": "pausenet.core.evidence",
    "check_evidence": "pausenet.core.evidence",
    "Certificate": "pausenet.core.view",
    "ComplianceStatus": "pausenet.core.view",
    "EpochRecord": "pausenet.core.view",
    "MemberStatus": "pausenet.core.view",
    "PauseState": "pausenet.core.view",
    "View": "pausenet.core.view",
    "evaluate": "pausenet.core.view",
    "evaluate_envelopes": "pausenet.core.view",
    "Answer": "pausenet.core.answer",
    "AnswerCheck": "pausenet.core.answer",
    "check_answer": "pausenet.core.answer",
    "Bundle": "pausenet.core.bundle",
    "check_bundle_answer": "pausenet.core.bundle",
    "read_bundle": "pausenet.core.bundle",
    "view_of_bundle": "pausenet.core.bundle",
    "AdminClient": "pausenet.client",
    "OversightClient": "pausenet.client",
    "AddressError": "pausenet.errors",
    "BundleError": "pausenet.errors",
    "CharterError": "pausenet.errors",
    "ClusterError": "pausenet.errors",
    "GovernanceError": "pausenet.errors",
    "CodecError": "pausenet.errors",
    "ConfigError": "pausenet.errors",
    "EnvelopeFormatError": "pausenet.errors",
    "FormatError": "pausenet.errors",
    "KeyFileError": "pausenet.errors",
    "KeyFormatError": "pausenet.errors",
    "NodeError": "pausenet.errors",
    "NonceError": "pausenet.errors",
    "PausenetError": "pausenet.errors",
    "PeerError": "pausenet.errors",
    "Reason": "pausenet.errors",
    "SigningRefusedError": "pausenet.errors",
    "StoreError": "pausenet.errors",
    "VerificationError": "pausenet.errors",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pausenet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
