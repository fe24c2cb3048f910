from pausenet.v1 import envelope_pb2 as _envelope_pb2
from pausenet.v1 import gossip_pb2 as _gossip_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PauseState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAUSE_STATE_UNSPECIFIED: _ClassVar[PauseState]
    PAUSE_STATE_PAUSED: _ClassVar[PauseState]
    PAUSE_STATE_NOT_PAUSED: _ClassVar[PauseState]
    PAUSE_STATE_UNKNOWN: _ClassVar[PauseState]
PAUSE_STATE_UNSPECIFIED: PauseState
PAUSE_STATE_PAUSED: PauseState
PAUSE_STATE_NOT_PAUSED: PauseState
PAUSE_STATE_UNKNOWN: PauseState

class AnswerHead(_message.Message):
    __slots__ = ("member", "seq", "hash")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    member: str
    seq: int
    hash: bytes
    def __init__(self, member: _Optional[str] = ..., seq: _Optional[int] = ..., hash: _Optional[bytes] = ...) -> None: ...

class Answer(_message.Message):
    __slots__ = ("federation_id", "charter_digest", "member", "nonce", "now_ms", "state", "epoch", "as_of_ms", "proof_hashes", "heads", "counted_hashes")
    FEDERATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHARTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    NOW_MS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    PROOF_HASHES_FIELD_NUMBER: _ClassVar[int]
    HEADS_FIELD_NUMBER: _ClassVar[int]
    COUNTED_HASHES_FIELD_NUMBER: _ClassVar[int]
    federation_id: str
    charter_digest: bytes
    member: str
    nonce: bytes
    now_ms: int
    state: PauseState
    epoch: int
    as_of_ms: int
    proof_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    heads: _containers.RepeatedCompositeFieldContainer[AnswerHead]
    counted_hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, federation_id: _Optional[str] = ..., charter_digest: _Optional[bytes] = ..., member: _Optional[str] = ..., nonce: _Optional[bytes] = ..., now_ms: _Optional[int] = ..., state: _Optional[_Union[PauseState, str]] = ..., epoch: _Optional[int] = ..., as_of_ms: _Optional[int] = ..., proof_hashes: _Optional[_Iterable[bytes]] = ..., heads: _Optional[_Iterable[_Union[AnswerHead, _Mapping]]] = ..., counted_hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MemberView(_message.Message):
    __slots__ = ("id", "role", "head_seq", "head_hash", "heartbeat_counter", "heartbeat_at_ms", "address", "fresh", "synced", "equivocator", "compliance")
    ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_COUNTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    FRESH_FIELD_NUMBER: _ClassVar[int]
    SYNCED_FIELD_NUMBER: _ClassVar[int]
    EQUIVOCATOR_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    role: str
    head_seq: int
    head_hash: bytes
    heartbeat_counter: int
    heartbeat_at_ms: int
    address: str
    fresh: bool
    synced: bool
    equivocator: bool
    compliance: str
    def __init__(self, id: _Optional[str] = ..., role: _Optional[str] = ..., head_seq: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., heartbeat_counter: _Optional[int] = ..., heartbeat_at_ms: _Optional[int] = ..., address: _Optional[str] = ..., fresh: _Optional[bool] = ..., synced: _Optional[bool] = ..., equivocator: _Optional[bool] = ..., compliance: _Optional[str] = ...) -> None: ...

class CertificateView(_message.Message):
    __slots__ = ("epoch", "decision", "labs", "overseers", "votes", "formed_at_ms", "effective_at_ms", "path", "attesters", "attestations")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    LABS_FIELD_NUMBER: _ClassVar[int]
    OVERSEERS_FIELD_NUMBER: _ClassVar[int]
    VOTES_FIELD_NUMBER: _ClassVar[int]
    FORMED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_AT_MS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ATTESTERS_FIELD_NUMBER: _ClassVar[int]
    ATTESTATIONS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    decision: str
    labs: _containers.RepeatedScalarFieldContainer[str]
    overseers: _containers.RepeatedScalarFieldContainer[str]
    votes: _containers.RepeatedScalarFieldContainer[bytes]
    formed_at_ms: int
    effective_at_ms: int
    path: str
    attesters: _containers.RepeatedScalarFieldContainer[str]
    attestations: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, epoch: _Optional[int] = ..., decision: _Optional[str] = ..., labs: _Optional[_Iterable[str]] = ..., overseers: _Optional[_Iterable[str]] = ..., votes: _Optional[_Iterable[bytes]] = ..., formed_at_ms: _Optional[int] = ..., effective_at_ms: _Optional[int] = ..., path: _Optional[str] = ..., attesters: _Optional[_Iterable[str]] = ..., attestations: _Optional[_Iterable[bytes]] = ...) -> None: ...

class EvidenceView(_message.Message):
    __slots__ = ("member", "seq", "id", "first", "second")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    SECOND_FIELD_NUMBER: _ClassVar[int]
    member: str
    seq: int
    id: bytes
    first: bytes
    second: bytes
    def __init__(self, member: _Optional[str] = ..., seq: _Optional[int] = ..., id: _Optional[bytes] = ..., first: _Optional[bytes] = ..., second: _Optional[bytes] = ...) -> None: ...

class ViewReply(_message.Message):
    __slots__ = ("state", "epoch", "as_of_ms", "now_ms", "certified_state", "certified_since_ms", "explanation", "charter_digest", "members", "certificates", "proof", "answered_by", "signed_answer", "evidence", "proof_counted", "proof_elided")
    STATE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    AS_OF_MS_FIELD_NUMBER: _ClassVar[int]
    NOW_MS_FIELD_NUMBER: _ClassVar[int]
    CERTIFIED_STATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFIED_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    CHARTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    ANSWERED_BY_FIELD_NUMBER: _ClassVar[int]
    SIGNED_ANSWER_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    PROOF_COUNTED_FIELD_NUMBER: _ClassVar[int]
    PROOF_ELIDED_FIELD_NUMBER: _ClassVar[int]
    state: PauseState
    epoch: int
    as_of_ms: int
    now_ms: int
    certified_state: PauseState
    certified_since_ms: int
    explanation: str
    charter_digest: bytes
    members: _containers.RepeatedCompositeFieldContainer[MemberView]
    certificates: _containers.RepeatedCompositeFieldContainer[CertificateView]
    proof: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    answered_by: str
    signed_answer: _envelope_pb2.Envelope
    evidence: _containers.RepeatedCompositeFieldContainer[EvidenceView]
    proof_counted: _containers.RepeatedScalarFieldContainer[bytes]
    proof_elided: int
    def __init__(self, state: _Optional[_Union[PauseState, str]] = ..., epoch: _Optional[int] = ..., as_of_ms: _Optional[int] = ..., now_ms: _Optional[int] = ..., certified_state: _Optional[_Union[PauseState, str]] = ..., certified_since_ms: _Optional[int] = ..., explanation: _Optional[str] = ..., charter_digest: _Optional[bytes] = ..., members: _Optional[_Iterable[_Union[MemberView, _Mapping]]] = ..., certificates: _Optional[_Iterable[_Union[CertificateView, _Mapping]]] = ..., proof: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., answered_by: _Optional[str] = ..., signed_answer: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., evidence: _Optional[_Iterable[_Union[EvidenceView, _Mapping]]] = ..., proof_counted: _Optional[_Iterable[bytes]] = ..., proof_elided: _Optional[int] = ...) -> None: ...

class GetViewRequest(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    def __init__(self, nonce: _Optional[bytes] = ...) -> None: ...

class WatchViewRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLogRequest(_message.Message):
    __slots__ = ("member", "from_seq", "limit", "max_bytes")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    member: str
    from_seq: int
    limit: int
    max_bytes: int
    def __init__(self, member: _Optional[str] = ..., from_seq: _Optional[int] = ..., limit: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class GetLogReply(_message.Message):
    __slots__ = ("statements", "head_seq", "next_seq", "more")
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQ_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    statements: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    head_seq: int
    next_seq: int
    more: bool
    def __init__(self, statements: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., head_seq: _Optional[int] = ..., next_seq: _Optional[int] = ..., more: _Optional[bool] = ...) -> None: ...

class GetEvidenceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetEvidenceReply(_message.Message):
    __slots__ = ("evidence",)
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    evidence: _containers.RepeatedCompositeFieldContainer[_gossip_pb2.EvidencePair]
    def __init__(self, evidence: _Optional[_Iterable[_Union[_gossip_pb2.EvidencePair, _Mapping]]] = ...) -> None: ...

class GetCharterRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCharterReply(_message.Message):
    __slots__ = ("canonical", "digest", "chain", "chain_approvals")
    CANONICAL_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    CHAIN_APPROVALS_FIELD_NUMBER: _ClassVar[int]
    canonical: bytes
    digest: bytes
    chain: _containers.RepeatedScalarFieldContainer[bytes]
    chain_approvals: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    def __init__(self, canonical: _Optional[bytes] = ..., digest: _Optional[bytes] = ..., chain: _Optional[_Iterable[bytes]] = ..., chain_approvals: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ...) -> None: ...
