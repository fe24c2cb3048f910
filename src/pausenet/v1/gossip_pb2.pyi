from pausenet.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MemberHead(_message.Message):
    __slots__ = ("member", "head_seq", "head_hash", "heartbeat_counter", "tree_hash", "evidence_ids")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_COUNTER_FIELD_NUMBER: _ClassVar[int]
    TREE_HASH_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_IDS_FIELD_NUMBER: _ClassVar[int]
    member: str
    head_seq: int
    head_hash: bytes
    heartbeat_counter: int
    tree_hash: bytes
    evidence_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, member: _Optional[str] = ..., head_seq: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., heartbeat_counter: _Optional[int] = ..., tree_hash: _Optional[bytes] = ..., evidence_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Digest(_message.Message):
    __slots__ = ("heads", "partial")
    HEADS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    heads: _containers.RepeatedCompositeFieldContainer[MemberHead]
    partial: bool
    def __init__(self, heads: _Optional[_Iterable[_Union[MemberHead, _Mapping]]] = ..., partial: _Optional[bool] = ...) -> None: ...

class EvidencePair(_message.Message):
    __slots__ = ("first", "second")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    first: _envelope_pb2.Envelope
    second: _envelope_pb2.Envelope
    def __init__(self, first: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., second: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class DigestRequest(_message.Message):
    __slots__ = ("summary_hash", "level", "nodes")
    SUMMARY_HASH_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    summary_hash: bytes
    level: int
    nodes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, summary_hash: _Optional[bytes] = ..., level: _Optional[int] = ..., nodes: _Optional[_Iterable[int]] = ...) -> None: ...

class DigestResponse(_message.Message):
    __slots__ = ("in_sync", "digest", "children")
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    in_sync: bool
    digest: Digest
    children: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, in_sync: _Optional[bool] = ..., digest: _Optional[_Union[Digest, _Mapping]] = ..., children: _Optional[_Iterable[bytes]] = ...) -> None: ...

class Items(_message.Message):
    __slots__ = ("statements", "heartbeats", "evidence")
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEATS_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    statements: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    heartbeats: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    evidence: _containers.RepeatedCompositeFieldContainer[EvidencePair]
    def __init__(self, statements: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., heartbeats: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., evidence: _Optional[_Iterable[_Union[EvidencePair, _Mapping]]] = ...) -> None: ...

class ExchangeRequest(_message.Message):
    __slots__ = ("digest", "items")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    digest: Digest
    items: Items
    def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., items: _Optional[_Union[Items, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("items", "more")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    items: Items
    more: bool
    def __init__(self, items: _Optional[_Union[Items, _Mapping]] = ..., more: _Optional[bool] = ...) -> None: ...

class GossipAuth(_message.Message):
    __slots__ = ("federation_id", "charter_digest", "client", "server", "challenge", "issued_at_ms", "address")
    FEDERATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHARTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    federation_id: str
    charter_digest: bytes
    client: str
    server: str
    challenge: bytes
    issued_at_ms: int
    address: str
    def __init__(self, federation_id: _Optional[str] = ..., charter_digest: _Optional[bytes] = ..., client: _Optional[str] = ..., server: _Optional[str] = ..., challenge: _Optional[bytes] = ..., issued_at_ms: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class ChallengeRequest(_message.Message):
    __slots__ = ("client",)
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    client: str
    def __init__(self, client: _Optional[str] = ...) -> None: ...

class ChallengeReply(_message.Message):
    __slots__ = ("challenge", "server")
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    challenge: bytes
    server: str
    def __init__(self, challenge: _Optional[bytes] = ..., server: _Optional[str] = ...) -> None: ...

class AuthRequest(_message.Message):
    __slots__ = ("auth",)
    AUTH_FIELD_NUMBER: _ClassVar[int]
    auth: _envelope_pb2.Envelope
    def __init__(self, auth: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...

class AuthReply(_message.Message):
    __slots__ = ("session", "expires_at_ms")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    session: str
    expires_at_ms: int
    def __init__(self, session: _Optional[str] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class GovernanceRequest(_message.Message):
    __slots__ = ("version", "newest_digest", "summary", "offer_charters", "offer_approvals")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NEWEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    OFFER_CHARTERS_FIELD_NUMBER: _ClassVar[int]
    OFFER_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    version: int
    newest_digest: bytes
    summary: bytes
    offer_charters: _containers.RepeatedScalarFieldContainer[bytes]
    offer_approvals: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    def __init__(self, version: _Optional[int] = ..., newest_digest: _Optional[bytes] = ..., summary: _Optional[bytes] = ..., offer_charters: _Optional[_Iterable[bytes]] = ..., offer_approvals: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ...) -> None: ...

class GovernanceReply(_message.Message):
    __slots__ = ("in_sync", "charters", "approvals", "more", "version")
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    CHARTERS_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    in_sync: bool
    charters: _containers.RepeatedScalarFieldContainer[bytes]
    approvals: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    more: bool
    version: int
    def __init__(self, in_sync: _Optional[bool] = ..., charters: _Optional[_Iterable[bytes]] = ..., approvals: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., more: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...
