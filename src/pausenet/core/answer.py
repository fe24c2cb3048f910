"""Signed answers: a node's view, signed for an overseer's nonce, and the offline check of one.

The answering node signs (nonce, time, state, epoch, as-of, every member's log head, the hashes
of its bounded proof's envelopes and which of its statements count: docs/protocol.md §8.5). An
overseer holding the charter recomputes the view from those envelopes at that time: if it
differs, a head does not match, or an envelope is missing, the node has signed a wrong answer —
and a node that leaves out a lift or a pause vote has signed that omission.

The proof's logs are partial: they rely on the node for the statements they elide. Checked
against the complete logs up to the signed heads instead (`pausenet view --full`), the answer
needs no trust in the node at all. An answer from before bounded proofs carries no heads and no
counted list; its proof was complete logs, so it is checked as before (trivially compatible).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, pae, sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.core.payload import pause_state_from_pb, pause_state_to_pb
from pausenet.core.proof import Head, complete_proof
from pausenet.core.verify import Rejection, Verified, verify_envelope
from pausenet.core.view import PauseState, View, evaluate
from pausenet.errors import CodecError, NonceError, Reason
from pausenet.v1 import oversight_pb2

__all__ = [
    "ANSWER_TYPE",
    "MAX_NONCE",
    "MIN_NONCE",
    "Answer",
    "AnswerCheck",
    "check_answer",
    "decode_answer",
    "sign_answer",
]

ANSWER_TYPE = "application/vnd.pausenet.answer.v1+protobuf"
MIN_NONCE, MAX_NONCE = 16, 64


@dataclass(frozen=True)
class Answer:
    federation_id: str
    charter_digest: bytes
    member: str
    nonce: bytes
    now_ms: int
    state: PauseState
    epoch: int
    as_of_ms: int | None
    proof_hashes: tuple[bytes, ...]
    heads: tuple[Head, ...] = ()  # () in an answer from before bounded proofs
    counted: tuple[bytes, ...] = ()  # the proof's statements the node counts; (): complete


def sign_answer(
    key: SigningKey, charter: Charter, member: str, nonce: bytes, view: View
) -> Envelope:
    if not MIN_NONCE <= len(nonce) <= MAX_NONCE:
        raise NonceError(f"nonce must be {MIN_NONCE} to {MAX_NONCE} bytes, got {len(nonce)}")
    proof = view.proof if view.proof is not None else complete_proof(view)
    pb = oversight_pb2.Answer(
        federation_id=charter.federation_id,
        charter_digest=charter.digest,
        member=member,
        nonce=nonce,
        now_ms=view.now_ms,
        state=pause_state_to_pb(view.state.value),
        epoch=view.epoch,
        as_of_ms=view.as_of_ms or 0,
        proof_hashes=sorted(e.payload_hash for e in proof.envelopes),
        heads=[
            oversight_pb2.AnswerHead(member=h.member, seq=h.seq, hash=h.hash) for h in proof.heads
        ],
        counted_hashes=sorted(proof.counted),
    )
    return sign_envelope(key, member, ANSWER_TYPE, pb.SerializeToString(deterministic=True))


def decode_answer(payload: bytes) -> Answer:
    """Parse an answer payload (after its signature verified); raises CodecError if malformed."""
    pb = oversight_pb2.Answer()
    try:
        pb.ParseFromString(payload)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise CodecError(Reason.MALFORMED, "answer is not valid protobuf") from exc
    state = pause_state_from_pb(pb.state)
    if state not in PauseState.__members__:
        raise CodecError(Reason.INVALID, "answer has no state")
    return Answer(
        federation_id=pb.federation_id,
        charter_digest=bytes(pb.charter_digest),
        member=pb.member,
        nonce=bytes(pb.nonce),
        now_ms=pb.now_ms,
        state=PauseState(state),
        epoch=pb.epoch,
        as_of_ms=pb.as_of_ms or None,
        proof_hashes=tuple(bytes(h) for h in pb.proof_hashes),
        heads=tuple(Head(h.member, h.seq, bytes(h.hash)) for h in pb.heads),
        counted=tuple(bytes(h) for h in pb.counted_hashes),
    )


@dataclass(frozen=True)
class AnswerCheck:
    """Outcome of checking a signed answer; true when it holds."""

    answer: Answer | None
    view: View | None  # the view recomputed from the proof at the answer's time
    problems: tuple[str, ...]

    def __bool__(self) -> bool:
        return not self.problems


def check_answer(
    charter: Charter,
    answer_env: Envelope,
    proof: Iterable[Envelope],
    *,
    nonce: bytes | None = None,
    complete: bool = False,
    verify: Callable[[Envelope, int], Verified | Rejection] | None = None,
    evaluate_with: Callable[[list[Verified], int, list[Rejection], frozenset[bytes] | None], View]
    | None = None,
) -> AnswerCheck:
    """Check a signed answer against the charter and the proof envelopes that came with it.

    By default `proof` is the bounded proof the node sent: exactly the envelopes it signed for,
    evaluated as partial logs with the counted statements it signed. With `complete`, `proof` is
    complete logs up to the signed heads (`pausenet view --full`) that include every envelope
    the answer signed for, evaluated with no trust in the node.

    `verify` and `evaluate_with` replace checking and evaluating under `charter` alone (whose
    member signs the answer): `pausenet verify --trust` passes the charter versions in force."""
    problems: list[str] = []
    if answer_env.payload_type != ANSWER_TYPE:
        return AnswerCheck(
            None, None, (f"not an answer: payload type {answer_env.payload_type!r}",)
        )
    if len(answer_env.signatures) != 1:
        return AnswerCheck(None, None, ("an answer carries exactly one signature",))
    sig = answer_env.signatures[0]
    member = charter.member(sig.keyid)
    if member is None:
        return AnswerCheck(None, None, (f"answer signed by {sig.keyid!r}, not a charter member",))
    if not member.public_key.verify(pae(answer_env.payload_type, answer_env.payload), sig.sig):
        return AnswerCheck(
            None, None, (f"answer signature does not verify with {sig.keyid}'s key",)
        )
    try:
        ans = decode_answer(answer_env.payload)
    except CodecError as exc:
        return AnswerCheck(None, None, (str(exc),))
    if ans.member != sig.keyid:
        problems.append(f"answer names {ans.member!r} but {sig.keyid} signed it")
    if ans.charter_digest != charter.digest or ans.federation_id != charter.federation_id:
        problems.append("answer was signed under another charter")
    if nonce is not None and ans.nonce != nonce:
        problems.append("answer is for another nonce (a replayed answer?)")
    proof = list(proof)
    given = {e.payload_hash for e in proof}
    signed = set(ans.proof_hashes)
    missing = len(signed - given)
    extra = 0 if complete else len(given - signed)
    if missing or extra:
        problems.append(
            f"proof does not match the answer: {missing} missing, {extra} not signed for"
        )
    # Every envelope must verify on its own (§6): in partial logs a statement whose predecessor
    # is absent counts on the node's word, so a corrupted predecessor must not pass as elided.
    verified: list[Verified] = []
    bad: list[Rejection] = []
    for env in proof:
        r = (
            verify(env, ans.now_ms)
            if verify is not None
            else verify_envelope(charter, env, now_ms=ans.now_ms)
        )
        if isinstance(r, Rejection):
            bad.append(r)
        else:
            verified.append(r)
    if bad:
        problems.append(
            f"{len(bad)} proof envelope(s) do not verify: {bad[0].reason.value}:"
            f" {' '.join(bad[0].detail.split())[:160]}"
        )
    counted = None if complete or not ans.counted else frozenset(ans.counted)
    if evaluate_with is not None:
        view = evaluate_with(verified, ans.now_ms, bad, counted)
    else:
        view = evaluate(charter, verified, ans.now_ms, rejected=bad, counted=counted)
    if view.state is not ans.state or view.epoch != ans.epoch or view.as_of_ms != ans.as_of_ms:
        problems.append(
            f"answer says {ans.state.value} epoch {ans.epoch} as of {ans.as_of_ms}, but its proof"
            f" gives {view.state.value} epoch {view.epoch} as of {view.as_of_ms}"
        )
    problems += _head_problems(ans.heads, view)
    return AnswerCheck(ans, view, tuple(problems))


def _head_problems(heads: tuple[Head, ...], view: View) -> list[str]:
    """The answer's signed heads against the heads its proof gives: a head the proof does not
    reach (or passes) means the node signed for a log it did not show."""
    out = []
    for h in heads:
        m = view.member(h.member)
        if m is None:
            out.append(f"answer commits to a head of {h.member[:64]!r}, not a charter member")
        elif (m.head_seq, m.head_hash) != (h.seq, h.hash):
            out.append(
                f"answer commits to {h.member}'s head at seq {h.seq}, but its proof gives seq"
                f" {m.head_seq}" + ("" if m.head_seq != h.seq else " with another hash")
            )
    return out
