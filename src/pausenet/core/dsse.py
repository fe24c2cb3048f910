"""DSSE envelopes: the pre-authentication encoding, signing, and the standard JSON form.

Signatures cover PAE(payload_type, payload) — never a re-serialization — so the exact payload
bytes travel with the signature and are hashed as they are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pausenet.core.keys import SigningKey
from pausenet.errors import EnvelopeFormatError

__all__ = ["Envelope", "Signature", "pae", "sha256", "sign_envelope"]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: 'DSSEv1 LEN(type) type LEN(body) body'."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @cached_property
    def payload_hash(self) -> bytes:
        """SHA-256 of the payload bytes: the identity of the signed object (computed once: a
        view asks it of every envelope in its proof)."""
        return sha256(self.payload)

    def to_json(self) -> dict[str, Any]:
        """DSSE's standard JSON form (base64 with padding)."""
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                for s in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, obj: object) -> Envelope:
        """Parse DSSE JSON; raises EnvelopeFormatError with a one-line reason when malformed."""
        if not isinstance(obj, Mapping):
            raise EnvelopeFormatError("envelope must be a JSON object")
        ptype = obj.get("payloadType")
        if not isinstance(ptype, str):
            raise EnvelopeFormatError("envelope needs a string 'payloadType'")
        payload = _b64(obj.get("payload"), "payload")
        sigs = obj.get("signatures")
        if not isinstance(sigs, list):
            raise EnvelopeFormatError("envelope needs a 'signatures' list")
        out = []
        for s in sigs:
            if not isinstance(s, Mapping):
                raise EnvelopeFormatError("each signature must be a JSON object")
            keyid = s.get("keyid", "")
            if not isinstance(keyid, str):
                raise EnvelopeFormatError("signature 'keyid' must be a string")
            out.append(Signature(keyid=keyid, sig=_b64(s.get("sig"), "sig")))
        return cls(payload_type=ptype, payload=payload, signatures=tuple(out))


def _b64(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeFormatError(f"envelope needs a base64 string '{name}'")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 too; strict, so junk characters are not skipped
            return base64.b64decode(value, altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EnvelopeFormatError(f"'{name}' is not valid base64") from exc


def sign_envelope(key: SigningKey, keyid: str, payload_type: str, payload: bytes) -> Envelope:
    sig = key.sign(pae(payload_type, payload))
    return Envelope(payload_type, payload, (Signature(keyid, sig),))
