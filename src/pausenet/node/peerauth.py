"""Who may gossip: a member node proves it holds its member key by signing a fresh challenge.

No certificate authority is needed: the charter already lists every member's key. The server
hands out a one-time 32-byte challenge; the client signs `GossipAuth{charter, client, server,
challenge, time, address}` in a DSSE envelope of its own payload type (so the signature can never
be taken for a statement); the server checks it and returns a session token for later calls.
`address` is the address the client dialled, and the server takes a login only for one of its
own addresses (`OwnAddresses`): a node that relays another node's challenge cannot pass the
login it gets on (docs/protocol.md §12.5). A challenge is stateless: a random part, its expiry
and a MAC over both and the client's id under a secret of this process, so handing challenges
out costs no memory and a flood of challenge requests (from however many addresses) cannot push
out an honest node's pending one. Only redeemed challenges are remembered, per member, until they
expire (single use); sessions are bounded in number and expire.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from pausenet.core.charter import Charter
from pausenet.core.dsse import Envelope, pae, sign_envelope
from pausenet.core.keys import SigningKey
from pausenet.node.config import parse_host_port
from pausenet.v1 import gossip_pb2

__all__ = ["AUTH_TYPE", "Authenticator", "OwnAddresses", "Session", "sign_auth"]

AUTH_TYPE = "application/vnd.pausenet.gossip-auth.v1+protobuf"
CHALLENGE_BYTES = 32
_MAX_AUTH_BYTES = 1024
_SESSIONS_PER_MEMBER = 4
# logins one member may complete within a challenge's lifetime; more wait until the oldest
# redeemed challenge expires (its own logins only ever fill its own table)
_REDEEMED_PER_MEMBER = 64
_CHALLENGE_MAC = b"pausenet.challenge.v1\n"


def sign_auth(
    key: SigningKey,
    charter: Charter,
    client: str,
    server: str,
    challenge: bytes,
    now_ms: int,
    address: str = "",
) -> Envelope:
    """A login for `server`, whom the client reached by dialling `address`."""
    pb = gossip_pb2.GossipAuth(
        federation_id=charter.federation_id,
        charter_digest=charter.digest,
        client=client,
        server=server,
        challenge=challenge,
        issued_at_ms=now_ms,
        address=address,
    )
    return sign_envelope(key, client, AUTH_TYPE, pb.SerializeToString(deterministic=True))


def _address_key(address: str) -> tuple[str, int] | None:
    """(host, port) in one spelling per address: IP literals compressed, names lowercased."""
    try:
        host, port = parse_host_port(address)
    except ValueError:
        return None
    try:
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        host = host.lower()
    return host, port


class OwnAddresses:
    """The addresses a node can be dialled at: those given, and, for a node listening on every
    interface without a configured address, any host with its port."""

    def __init__(self, addresses: Iterable[str] = (), *, any_host_port: int | None = None) -> None:
        self.shown = tuple(a for a in addresses if a)
        self._keys = {k for a in self.shown if (k := _address_key(a)) is not None}
        self.any_host_port = any_host_port

    def __contains__(self, address: object) -> bool:
        key = _address_key(address) if isinstance(address, str) else None
        if key is None:
            return False
        return key in self._keys or key[1] == self.any_host_port

    def describe(self) -> str:
        shown = ", ".join(self.shown) or "no address yet"
        if self.any_host_port is not None:
            shown += f", any host with port {self.any_host_port}"
        return shown


@dataclass(frozen=True)
class Session:
    member: str
    expires_at_ms: int
    # the connection it was granted on (gRPC's peer string, e.g. 'ipv4:10.0.0.2:53124'); a
    # token presented on any other connection is not a session ('' where the caller has none)
    connection: str = ""


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
        addresses: OwnAddresses | None = None,
    ) -> None:
        self.charter = charter  # the newest version in force: the members and keys that log in
        # digests a login may name: every version in force (a peer that has not adopted the
        # newest yet still logs in under an earlier one, and then learns the newest from us)
        self.digests = frozenset({charter.digest})
        self.server = server_member
        # the addresses a login may name; None: not checked (a server that does not know them)
        self.addresses = addresses
        self.challenge_ttl_ms = challenge_ttl_ms
        self.session_ttl_ms = session_ttl_ms
        self.max_redeemed = min(max_challenges, _REDEEMED_PER_MEMBER)
        self.max_sessions = max_sessions or _SESSIONS_PER_MEMBER * len(charter.members) + 16
        self._secret = secrets.token_bytes(32)
        # member -> its redeemed challenges (until they expire) -> expiry
        self._redeemed: dict[str, OrderedDict[bytes, int]] = {}
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def challenge(self, client: str, now_ms: int) -> bytes | str:
        """A fresh challenge for `client`, or the reason to refuse one. Nothing is kept: the
        challenge carries its expiry and a MAC binding it to `client`."""
        if self.charter.member(client) is None:
            return f"{client[:64]!r} is not a member of this federation"
        body = secrets.token_bytes(8) + (now_ms + self.challenge_ttl_ms).to_bytes(8, "big")
        return body + self._mac(client, body)

    def _mac(self, client: str, body: bytes) -> bytes:
        msg = _CHALLENGE_MAC + client.encode() + b"\n" + body
        return hmac.new(self._secret, msg, hashlib.sha256).digest()[: CHALLENGE_BYTES - len(body)]

    def held(self) -> int:
        """Redeemed challenges remembered (for single use): at most a few per member."""
        return sum(len(r) for r in self._redeemed.values())

    def _redeem(self, client: str, c: bytes, now_ms: int) -> str | None:
        """Take `c` as `client`'s challenge, once; the reason if it cannot be taken."""
        stale = "unknown, used or expired challenge; ask for a new one"
        if len(c) != CHALLENGE_BYTES or not hmac.compare_digest(c[16:], self._mac(client, c[:16])):
            return stale
        expiry = int.from_bytes(c[8:16], "big")
        if expiry <= now_ms:
            return stale
        redeemed = self._redeemed.setdefault(client, OrderedDict())
        for old, exp in list(redeemed.items()):
            if exp <= now_ms:
                del redeemed[old]
        if c in redeemed:
            return stale
        if len(redeemed) >= self.max_redeemed:
            return (
                f"{client} logged in {len(redeemed)} times within"
                f" {self.challenge_ttl_ms // 1000} s; wait and ask for a new challenge"
            )
        redeemed[c] = expiry
        return None

    def authenticate(
        self, env: Envelope, now_ms: int, connection: str = ""
    ) -> tuple[str, Session] | str:
        """Check a signed GossipAuth; returns (token, session) or the reason it fails. The
        session is good only on `connection`, the connection the login came in on."""
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
        if pb.charter_digest not in self.digests or pb.federation_id != self.charter.federation_id:
            return "auth was signed under another charter"
        if pb.server != self.server:
            return f"auth is for member {pb.server[:64]!r}, this node is {self.server}"
        if self.addresses is not None and pb.address not in self.addresses:
            return (
                f"auth is for address {pb.address[:80]!r}, which is not this node's"
                f" ({self.addresses.describe()}): a login is good only at the address it was"
                " signed for; if peers dial this node at another address, set 'advertise' to it"
            )
        skew = self.charter.rules.max_clock_skew_s * 1000
        if abs(pb.issued_at_ms - now_ms) > skew + self.challenge_ttl_ms:
            return "auth time is outside the allowed clock skew"
        refused = self._redeem(pb.client, bytes(pb.challenge), now_ms)
        if refused is not None:
            return refused
        token = secrets.token_urlsafe(32)
        session = Session(pb.client, now_ms + self.session_ttl_ms, connection)
        # A member keeps at most a few sessions, so one member re-authenticating in a loop only
        # evicts its own, never another member's.
        mine = [t for t, s in self._sessions.items() if s.member == pb.client]
        for t in mine[: max(0, len(mine) - _SESSIONS_PER_MEMBER + 1)]:
            del self._sessions[t]
        self._sessions[token] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return token, session

    def session(self, token: str, now_ms: int, connection: str | None = None) -> Session | None:
        """The live session of `token`; with `connection`, only if it was granted there (a
        token copied to another connection is worth nothing there)."""
        s = self._sessions.get(token)
        if s is None:
            return None
        if connection is not None and s.connection != connection:
            return None
        if s.expires_at_ms <= now_ms:
            del self._sessions[token]
            return None
        return s
