from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DECISION_UNSPECIFIED: _ClassVar[Decision]
    DECISION_PAUSE: _ClassVar[Decision]
    DECISION_LIFT: _ClassVar[Decision]

class ComplianceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPLIANCE_STATE_UNSPECIFIED: _ClassVar[ComplianceState]
    COMPLIANCE_STATE_HALTED: _ClassVar[ComplianceState]
    COMPLIANCE_STATE_NOT_HALTED: _ClassVar[ComplianceState]
DECISION_UNSPECIFIED: Decision
DECISION_PAUSE: Decision
DECISION_LIFT: Decision
COMPLIANCE_STATE_UNSPECIFIED: ComplianceState
COMPLIANCE_STATE_HALTED: ComplianceState
COMPLIANCE_STATE_NOT_HALTED: ComplianceState

class Vote(_message.Message):
    __slots__ = ("epoch", "decision", "triggers", "note")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    decision: Decision
    triggers: _containers.RepeatedScalarFieldContainer[str]
    note: str
    def __init__(self, epoch: _Optional[int] = ..., decision: _Optional[_Union[Decision, str]] = ..., triggers: _Optional[_Iterable[str]] = ..., note: _Optional[str] = ...) -> None: ...

class Compliance(_message.Message):
    __slots__ = ("epoch", "state", "evidence_sha256")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    state: ComplianceState
    evidence_sha256: bytes
    def __init__(self, epoch: _Optional[int] = ..., state: _Optional[_Union[ComplianceState, str]] = ..., evidence_sha256: _Optional[bytes] = ...) -> None: ...

class TriggerAttestation(_message.Message):
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

class Statement(_message.Message):
    __slots__ = ("federation_id", "charter_digest", "member", "seq", "prev_hash", "issued_at_ms", "vote", "compliance", "trigger_attestation")
    FEDERATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHARTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    VOTE_FIELD_NUMBER: _ClassVar[int]
    COMPLIANCE_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    federation_id: str
    charter_digest: bytes
    member: str
    seq: int
    prev_hash: bytes
    issued_at_ms: int
    vote: Vote
    compliance: Compliance
    trigger_attestation: TriggerAttestation
    def __init__(self, federation_id: _Optional[str] = ..., charter_digest: _Optional[bytes] = ..., member: _Optional[str] = ..., seq: _Optional[int] = ..., prev_hash: _Optional[bytes] = ..., issued_at_ms: _Optional[int] = ..., vote: _Optional[_Union[Vote, _Mapping]] = ..., compliance: _Optional[_Union[Compliance, _Mapping]] = ..., trigger_attestation: _Optional[_Union[TriggerAttestation, _Mapping]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("federation_id", "charter_digest", "member", "head_seq", "head_hash", "counter", "issued_at_ms", "address")
    FEDERATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHARTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    federation_id: str
    charter_digest: bytes
    member: str
    head_seq: int
    head_hash: bytes
    counter: int
    issued_at_ms: int
    address: str
    def __init__(self, federation_id: _Optional[str] = ..., charter_digest: _Optional[bytes] = ..., member: _Optional[str] = ..., head_seq: _Optional[int] = ..., head_hash: _Optional[bytes] = ..., counter: _Optional[int] = ..., issued_at_ms: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...
