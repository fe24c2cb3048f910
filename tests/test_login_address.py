"""A gossip login names the address its signer dialled, and is taken only there
(docs/protocol.md §12.5; issue 8 item 1, the keyless relay)."""

from __future__ import annotations

import pytest
from helpers import T0, key_for, make_federation

from pausenet.node.peerauth import Authenticator, OwnAddresses, sign_auth


def login(auth: Authenticator, address: str) -> str | None:
    """None if lab-b's login, signed for `address`, is taken; else the reason it is not."""
    c = auth.challenge("lab-b", T0)
    assert isinstance(c, bytes)
    env = sign_auth(key_for("lab-b"), auth.charter, "lab-b", "lab-a", c, T0, address)
    got = auth.authenticate(env, T0)
    return got if isinstance(got, str) else None


@pytest.fixture
def server() -> Authenticator:
    charter, _keys = make_federation()
    own = OwnAddresses(["127.0.0.1:7401", "Node-A.Example:7400", "[::1]:7402"])
    return Authenticator(charter, "lab-a", addresses=own)


@pytest.mark.parametrize(
    "address", ["127.0.0.1:7401", "node-a.example:7400", "NODE-A.EXAMPLE:7400", "[0:0::1]:7402"]
)
def test_a_login_for_one_of_the_nodes_own_addresses_is_taken(
    server: Authenticator, address: str
) -> None:
    assert login(server, address) is None


@pytest.mark.parametrize(
    "address", ["127.0.0.1:7999", "127.0.0.2:7401", "relay.example:7400", "", "not an address"]
)
def test_a_login_signed_for_another_address_is_refused_with_the_reason(
    server: Authenticator, address: str
) -> None:
    why = login(server, address)
    assert why is not None
    assert why.startswith(f"auth is for address {address!r}, which is not this node's")
    assert "set 'advertise'" in why


def test_a_node_on_every_interface_without_advertise_takes_any_host_with_its_port() -> None:
    charter, _keys = make_federation()
    own = OwnAddresses(["0.0.0.0:7401"], any_host_port=7401)
    auth = Authenticator(charter, "lab-a", addresses=own)
    assert login(auth, "10.1.2.3:7401") is None
    assert login(auth, "node-a.example:7401") is None
    assert login(auth, "10.1.2.3:7402") is not None


def test_until_the_node_knows_its_addresses_no_login_is_taken() -> None:
    charter, _keys = make_federation()
    auth = Authenticator(charter, "lab-a", addresses=OwnAddresses())
    why = login(auth, "127.0.0.1:7401")
    assert why is not None
    assert "no address yet" in why
