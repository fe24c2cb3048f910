"""The GetView reply cache: one serialized reply per (facts version, clock second), the same
message view_to_pb makes, its proof envelopes serialized once across replies."""

from __future__ import annotations

from dataclasses import dataclass, field

from helpers import T0, attest, heartbeat_for, key_for, log_for, pause

from pausenet.core.charter import Charter
from pausenet.core.signing import build_statement, sign_statement
from pausenet.core.verify import Verified
from pausenet.core.view import View, evaluate
from pausenet.node.rpc.oversight_server import ViewReplies
from pausenet.node.wire import view_to_pb
from pausenet.v1 import oversight_pb2


@dataclass
class FakeNode:
    charter: Charter
    items: list[Verified] = field(default_factory=list)
    now: int = T0
    facts_version: int = 0
    member: str = "lab-a"
    views: int = 0

    def clock(self) -> int:
        return self.now

    def view(self) -> View:
        self.views += 1
        return evaluate(self.charter, self.items, self.now)


def parsed(data: bytes) -> oversight_pb2.ViewReply:
    return oversight_pb2.ViewReply.FromString(data)


def test_a_reply_is_the_view_as_view_to_pb_makes_it_and_is_made_once_per_key(
    charter: Charter,
) -> None:
    node = FakeNode(charter)
    replies = ViewReplies(node)  # type: ignore[arg-type]
    log = log_for(charter, key_for("lab-a"), "lab-a", [pause(), attest()], T0)
    for step, item in enumerate(
        [*log, heartbeat_for(charter, key_for("lab-a"), "lab-a", log, 1, T0 + 5000)]
    ):
        node.items.append(item)
        node.facts_version += 1
        node.now = T0 + 10_000 + step * 1000
        view, data = replies.current()
        assert parsed(data) == view_to_pb(view, answered_by="lab-a", signed_answer=None)
        assert len(parsed(data).proof) == len(view.envelopes) == step + 1
        views = node.views
        node.now += 1  # the same second: the same reply, not evaluated again
        assert replies.current() == (view, data)
        assert node.views == views


def test_evidence_in_the_proof_is_serialized_like_the_rest(charter: Charter) -> None:
    node = FakeNode(charter)
    replies = ViewReplies(node)  # type: ignore[arg-type]
    log = log_for(charter, key_for("lab-b"), "lab-b", [pause(), attest()], T0)
    twin = sign_statement(
        key_for("lab-b"),
        build_statement(charter, "lab-b", 2, log[0].hash, T0 + 1000, attest(note="twin")),
    )
    node.items = [*log, twin]
    view, data = replies.current()
    assert view.evidence
    assert parsed(data) == view_to_pb(view, answered_by="lab-a", signed_answer=None)
