"""Who may gossip: challenge, signed answer, session (docs/protocol.md §12.5)."""

from __future__ import annotations

from helpers import T0, key_for, make_federation

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, Signature, sign_envelope
from pausenet.core.records import STATEMENT_TYPE
from pausenet.node.peerauth import AUTH_TYPE, Authenticator, sign_auth


def _server() -> tuple[Authenticator, Charter]:
    charter, _keys = make_federation()
    return Authenticator(charter, "lab-a"), charter


def test_member_gets_a_session_by_signing_the_challenge() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    assert len(c) == 32
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0)
    got = auth.authenticate(env, T0 + 10)
    assert not isinstance(got, str)
    token, session = got
    assert session.member == "lab-b"
    assert auth.session(token, T0 + 20) == session


def test_non_member_gets_no_challenge() -> None:
    auth, _ = _server()
    assert isinstance(auth.challenge("mallory", T0), str)


def test_non_member_key_cannot_answer_a_members_challenge() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    forged = sign_auth(key_for("mallory"), charter, "lab-b", "lab-a", c, T0)
    assert "does not verify" in str(auth.authenticate(forged, T0))


def test_challenge_is_single_use() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0)
    assert not isinstance(auth.authenticate(env, T0), str)
    assert "challenge" in str(auth.authenticate(env, T0))  # replay refused


def test_challenge_expires() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0 + 31_000)
    assert "challenge" in str(auth.authenticate(env, T0 + 31_000))


def test_answer_for_another_server_is_refused() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-c", c, T0)
    assert "lab-c" in str(auth.authenticate(env, T0))


def test_another_members_challenge_is_refused() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-c", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0)
    assert "challenge" in str(auth.authenticate(env, T0))


def test_statement_signature_is_not_an_auth() -> None:
    """Type confusion: a signature made for a statement never authenticates."""
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    good = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0)
    relabelled = Envelope(STATEMENT_TYPE, good.payload, good.signatures)
    assert "payload type" in str(auth.authenticate(relabelled, T0))
    # and a statement-type signature over the same bytes, relabelled as auth, does not verify
    stmt_sig = sign_envelope(key_for("lab-b"), "lab-b", STATEMENT_TYPE, good.payload)
    assert "does not verify" in str(
        auth.authenticate(Envelope(AUTH_TYPE, good.payload, stmt_sig.signatures), T0)
    )


def test_wrong_charter_is_refused() -> None:
    auth, _ = _server()
    other, _k = make_federation(federation_id="other-federation")
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), other, "lab-b", "lab-a", c, T0)
    assert "another charter" in str(auth.authenticate(env, T0))


def test_sessions_expire_and_unknown_tokens_fail() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    got = auth.authenticate(
        sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0),
        T0,
    )
    assert not isinstance(got, str)
    token, s = got
    assert auth.session(token, s.expires_at_ms) is None
    assert auth.session("not-a-token", T0) is None


def test_challenge_flood_is_bounded() -> None:
    auth, _ = _server()
    for i in range(5000):
        auth.challenge("lab-b", T0 + i)
    assert auth.held() == 0  # challenges handed out cost no memory


def test_a_member_logging_in_in_a_loop_fills_only_its_own_table() -> None:
    auth, charter = _server()

    def login(member: str) -> str | None:
        c = auth.challenge(member, T0)
        assert isinstance(c, bytes)
        got = auth.authenticate(sign_auth(key_for(member), charter, member, "lab-a", c, T0), T0)
        return got if isinstance(got, str) else None

    refusals = [login("lab-b") for _ in range(auth.max_redeemed + 5)]
    assert refusals[: auth.max_redeemed] == [None] * auth.max_redeemed
    assert all(r is not None and "lab-b logged in" in r for r in refusals[auth.max_redeemed :])
    assert login("lab-c") is None
    assert auth.held() == auth.max_redeemed + 1


def test_a_challenge_is_bound_to_the_member_it_was_issued_to() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-c", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0)
    assert "challenge" in str(auth.authenticate(env, T0))


def test_malformed_envelopes_are_refused_with_a_reason() -> None:
    auth, _ = _server()
    for env in (
        Envelope(AUTH_TYPE, b"\xff" * 10, (Signature("lab-b", b"x" * 64),)),
        Envelope(AUTH_TYPE, b"", ()),
        Envelope(AUTH_TYPE, b"a" * 1000, (Signature("lab-b", b"x" * 64),)),
        Envelope(AUTH_TYPE, b"", (Signature("nobody", b"x" * 64),)),
    ):
        assert isinstance(auth.authenticate(env, T0), str)


def test_one_member_reauthenticating_cannot_evict_another_members_session() -> None:
    auth, charter = _server()

    def login(member: str, at: int) -> str:
        c = auth.challenge(member, at)
        assert isinstance(c, bytes)
        got = auth.authenticate(sign_auth(key_for(member), charter, member, "lab-a", c, at), at)
        assert not isinstance(got, str)
        return got[0]

    honest = login("lab-c", T0)
    for i in range(1000):  # as fast as its own table of redeemed challenges lets it
        login("lab-b", T0 + i * 500)
    assert auth.session(honest, T0 + 500_000) is not None
    assert sum(s.member == "lab-b" for s in auth._sessions.values()) <= 4


def test_a_challenge_flood_from_many_addresses_cannot_drop_an_honest_pending_challenge() -> None:
    auth, charter = _server()
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    for i in range(5000):  # no key needed: any member's name will do
        auth.challenge("lab-c", T0 + i // 100)
    env = sign_auth(key_for("lab-b"), charter, "lab-b", "lab-a", c, T0 + 10)
    assert not isinstance(auth.authenticate(env, T0 + 10), str)
