from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CharterApproval(_message.Message):
    __slots__ = ("federation_id", "version", "charter_digest", "previous_digest", "member", "issued_at_ms")
    FEDERATION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHARTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    federation_id: str
    version: int
    charter_digest: bytes
    previous_digest: bytes
    member: str
    issued_at_ms: int
    def __init__(self, federation_id: _Optional[str] = ..., version: _Optional[int] = ..., charter_digest: _Optional[bytes] = ..., previous_digest: _Optional[bytes] = ..., member: _Optional[str] = ..., issued_at_ms: _Optional[int] = ...) -> None: ...
