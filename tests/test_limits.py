"""Per-peer rate limits, scores and bans."""

from __future__ import annotations

from pausenet.node.limits import PeerGuard, RateLimit, TokenBucket


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    b = TokenBucket(RateLimit(rate_per_s=2, burst=3), now_s=0.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5)  # one token back after half a second at 2/s
    assert not b.take(0.5)


def test_a_flooding_peer_is_limited_without_affecting_another() -> None:
    g = PeerGuard({"exchange": RateLimit(10, 10)})
    refused = sum(g.admit("lab-x", "exchange", 0.0) is not None for _ in range(100))
    assert refused == 90
    assert g.admit("lab-y", "exchange", 0.0) is None
    assert g.stats()["refused.rate:exchange"] == 90


def test_invalid_items_lead_to_a_ban_that_doubles() -> None:
    g = PeerGuard({}, floor=-50, ban_s=10)
    g.judge("lab-x", {"bad-signature": 6}, accepted=0, now_s=0.0)
    assert g.banned("lab-x", 1.0)
    assert "refused" in str(g.admit("lab-x", "exchange", 1.0))
    assert not g.banned("lab-x", 11.0)
    g.judge("lab-x", {"wrong-charter": 6}, accepted=0, now_s=11.0)
    assert g.banned("lab-x", 30.0)  # second ban lasts 20 s
    assert not g.banned("lab-x", 31.5)
    assert g.stats()["rejected.bad-signature"] == 6


def test_good_news_earns_a_capped_credit() -> None:
    g = PeerGuard({}, floor=-50, ceiling=20)
    for _ in range(100):
        g.judge("lab-x", {}, accepted=10, now_s=0.0)
    assert g.score("lab-x") == 20
    g.judge("lab-x", {"bad-signature": 8}, accepted=0, now_s=0.0)
    assert g.banned("lab-x", 0.1)  # credit does not buy more than a few forgeries


def test_superseded_items_cost_nothing() -> None:
    g = PeerGuard({}, floor=-1)
    g.judge("lab-x", {"superseded": 1000}, accepted=0, now_s=0.0)
    assert not g.banned("lab-x", 0.0)


def test_peer_table_is_bounded() -> None:
    g = PeerGuard({"challenge": RateLimit(1, 1)}, max_peers=100)
    for i in range(10_000):
        g.admit(f"10.0.{i // 256}.{i % 256}", "challenge", 0.0)
    assert len(g._peers) == 100


def test_a_flood_from_many_addresses_cannot_push_out_a_banned_member() -> None:
    g = PeerGuard({"auth": RateLimit(1, 1)}, floor=-10, max_peers=100)
    g.judge("lab-x", {"bad-signature": 5}, accepted=0, now_s=0.0)
    assert g.banned("lab-x", 1.0)
    for i in range(10_000):
        g.admit(f"ip:10.0.{i // 256}.{i % 256}", "auth", 1.0)
    assert g.banned("lab-x", 1.0)
