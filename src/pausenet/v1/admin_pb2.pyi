from pausenet.v1 import envelope_pb2 as _envelope_pb2
from pausenet.v1 import statement_pb2 as _statement_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CastVoteRequest(_message.Message):
    __slots__ = ("decision", "epoch", "triggers", "note")
    DECISION_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    decision: _statement_pb2.Decision
    epoch: int
    triggers: _containers.RepeatedScalarFieldContainer[str]
    note: str
    def __init__(self, decision: _Optional[_Union[_statement_pb2.Decision, str]] = ..., epoch: _Optional[int] = ..., triggers: _Optional[_Iterable[str]] = ..., note: _Optional[str] = ...) -> None: ...

class AttestComplianceRequest(_message.Message):
    __slots__ = ("epoch", "state", "evidence_sha256")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    state: _statement_pb2.ComplianceState
    evidence_sha256: bytes
    def __init__(self, epoch: _Optional[int] = ..., state: _Optional[_Union[_statement_pb2.ComplianceState, str]] = ..., evidence_sha256: _Optional[bytes] = ...) -> None: ...

class AttestTriggerRequest(_message.Message):
    __slots__ = ("trigger_id", "evidence_sha256", "note", "epoch")
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    evidence_sha256: bytes
    note: str
    epoch: int
    def __init__(self, trigger_id: _Optional[str] = ..., evidence_sha256: _Optional[bytes] = ..., note: _Optional[str] = ..., epoch: _Optional[int] = ...) -> None: ...

class IssueReply(_message.Message):
    __slots__ = ("statement", "seq", "hash")
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    statement: _envelope_pb2.Envelope
    seq: int
    hash: bytes
    def __init__(self, statement: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., seq: _Optional[int] = ..., hash: _Optional[bytes] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("counters", "peer_scores")
    class CountersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PeerScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    PEER_SCORES_FIELD_NUMBER: _ClassVar[int]
    counters: _containers.ScalarMap[str, int]
    peer_scores: _containers.ScalarMap[str, float]
    def __init__(self, counters: _Optional[_Mapping[str, int]] = ..., peer_scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class GovernRequest(_message.Message):
    __slots__ = ("charter", "approvals", "approve")
    CHARTER_FIELD_NUMBER: _ClassVar[int]
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    charter: bytes
    approvals: _containers.RepeatedCompositeFieldContainer[_envelope_pb2.Envelope]
    approve: bool
    def __init__(self, charter: _Optional[bytes] = ..., approvals: _Optional[_Iterable[_Union[_envelope_pb2.Envelope, _Mapping]]] = ..., approve: _Optional[bool] = ...) -> None: ...

class GovernReply(_message.Message):
    __slots__ = ("version", "digest", "refused", "status", "approval")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    version: int
    digest: bytes
    refused: _containers.RepeatedScalarFieldContainer[str]
    status: str
    approval: _envelope_pb2.Envelope
    def __init__(self, version: _Optional[int] = ..., digest: _Optional[bytes] = ..., refused: _Optional[_Iterable[str]] = ..., status: _Optional[str] = ..., approval: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ...) -> None: ...
