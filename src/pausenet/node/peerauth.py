"""Who may gossip: a member node proves it holds its member key by signing a fresh challenge.

No certificate authority is needed: the charter already lists every member's key. The server
hands out a one-time 32-byte challenge; the client signs `GossipAuth{charter, client, server,
challenge, time}` in a DSSE envelope of its own payload type (so the signature can never be taken
for a statement); the server checks it and returns a session token for later calls. Challenges and
sessions are bounded in number and expire, so strangers cannot grow the server's memory.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, pae, sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.v1 import gossip_pb2

__all__ = ["AUTH_TYPE", "Authenticator", "Session", "sign_auth"]

AUTH_TYPE = "application/vnd.pausenet.gossip-auth.v1+protobuf"
CHALLENGE_BYTES = 32
_MAX_AUTH_BYTES = 512
_SESSIONS_PER_MEMBER = 4


def sign_auth(
    key: SigningKey, charter: Charter, client: str, server: str, challenge: bytes, now_ms: int
) -> Envelope:
    pb = gossip_pb2.GossipAuth(
        federation_id=charter.federation_id,
        charter_digest=charter.digest,
        client=client,
        server=server,
        challenge=challenge,
        issued_at_ms=now_ms,
    )
    return sign_envelope(key, client, AUTH_TYPE, pb.SerializeToString(deterministic=True))


@dataclass(frozen=True)
class Session:
    member: str
    expires_at_ms: int


class Authenticator:
    """Server side: issues challenges, checks signed answers, keeps sessions (all bounded)."""

    def __init__(
        self,
        charter: Charter,
        server_member: str,
        *,
        challenge_ttl_ms: int = 30_000,
        session_ttl_ms: int = 600_000,
        max_challenges: int = 1024,
        max_sessions: int | None = None,
    ) -> None:
        self.charter = charter
        self.server = server_member
        self.challenge_ttl_ms = challenge_ttl_ms
        self.session_ttl_ms = session_ttl_ms
        self.max_challenges = max_challenges
        self.max_sessions = max_sessions or _SESSIONS_PER_MEMBER * len(charter.members) + 16
        self._challenges: OrderedDict[bytes, tuple[str, int]] = OrderedDict()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def challenge(self, client: str, now_ms: int) -> bytes | str:
        """A fresh challenge for `client`, or the reason to refuse one."""
        if self.charter.member(client) is None:
            return f"{client[:64]!r} is not a member of this federation"
        self._expire(now_ms)
        c = secrets.token_bytes(CHALLENGE_BYTES)
        self._challenges[c] = (client, now_ms + self.challenge_ttl_ms)
        while len(self._challenges) > self.max_challenges:
            self._challenges.popitem(last=False)  # oldest first: a flood only evicts itself
        return c

    def authenticate(self, env: Envelope, now_ms: int) -> tuple[str, Session] | str:
        """Check a signed GossipAuth; returns (token, session) or the reason it fails."""
        if env.payload_type != AUTH_TYPE:
            return f"wrong payload type {env.payload_type[:80]!r}"
        if len(env.payload) > _MAX_AUTH_BYTES or len(env.signatures) != 1:
            return "malformed auth envelope"
        sig = env.signatures[0]
        member = self.charter.member(sig.keyid)
        if member is None:
            return f"{sig.keyid[:64]!r} is not a member of this federation"
        if not member.public_key.verify(pae(env.payload_type, env.payload), sig.sig):
            return f"signature does not verify with {sig.keyid}'s key"
        pb = gossip_pb2.GossipAuth()
        try:
            pb.ParseFromString(env.payload)
        except (DecodeError, ValueError, RuntimeError):
            return "auth payload is not valid protobuf"
        if pb.client != sig.keyid:
            return "auth names another member than its signer"
        if (
            pb.charter_digest != self.charter.digest
            or pb.federation_id != self.charter.federation_id
        ):
            return "auth was signed under another charter"
        if pb.server != self.server:
            return f"auth is for member {pb.server[:64]!r}, this node is {self.server}"
        skew = self.charter.rules.max_clock_skew_s * 1000
        if abs(pb.issued_at_ms - now_ms) > skew + self.challenge_ttl_ms:
            return "auth time is outside the allowed clock skew"
        self._expire(now_ms)
        pending = self._challenges.pop(bytes(pb.challenge), None)
        if pending is None or pending[0] != pb.client:
            return "unknown, used or expired challenge; ask for a new one"
        token = secrets.token_urlsafe(32)
        session = Session(pb.client, now_ms + self.session_ttl_ms)
        # A member keeps at most a few sessions, so one member re-authenticating in a loop only
        # evicts its own, never another member's.
        mine = [t for t, s in self._sessions.items() if s.member == pb.client]
        for t in mine[: max(0, len(mine) - _SESSIONS_PER_MEMBER + 1)]:
            del self._sessions[t]
        self._sessions[token] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return token, session

    def session(self, token: str, now_ms: int) -> Session | None:
        s = self._sessions.get(token)
        if s is None:
            return None
        if s.expires_at_ms <= now_ms:
            del self._sessions[token]
            return None
        return s

    def _expire(self, now_ms: int) -> None:
        while self._challenges:
            c, (_m, exp) = next(iter(self._challenges.items()))
            if exp > now_ms:
                break
            del self._challenges[c]
