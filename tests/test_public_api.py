"""The public API in `pausenet/__init__.py`: pinned, resolvable, and cheap to import."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import pausenet
import pausenet.errors

PUBLIC = [
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


def test_the_public_api_is_pinned() -> None:
    """A name added to or dropped from the public API is a decision: change this list with it."""
    assert pausenet.__all__ == PUBLIC


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "__version__"])
def test_each_public_name_is_the_object_its_module_defines(name: str) -> None:
    obj = getattr(pausenet, name)
    assert getattr(importlib.import_module(obj.__module__), name) is obj
    assert not obj.__module__.startswith("pausenet.v1")  # generated code stays private
    assert name in dir(pausenet)


def test_every_error_is_public() -> None:
    assert set(pausenet.errors.__all__) <= set(PUBLIC)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = pausenet.nope  # type: ignore[attr-defined]


def test_import_pausenet_loads_nothing_heavy() -> None:
    """Names load on first use: `import pausenet` pulls in neither protobuf, PyNaCl nor gRPC."""
    code = (
        "import sys, pausenet; "
        "print(sorted(m for m in ('google.protobuf', 'nacl', 'grpc', 'pausenet.core',"
        " 'pausenet.errors') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
