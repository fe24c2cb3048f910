"""A tripwire pause on real nodes (docs/protocol.md §8.1): eligible members attest a trigger and
every node pauses with no PAUSE vote; GetView says which path formed the pause."""

from __future__ import annotations

from pathlib import Path

import pytest
from netutil import Cluster

from pausenet.client import OversightClient
from pausenet.core.records import TriggerAttestation
from pausenet.errors import SigningRefusedError

pytestmark = pytest.mark.slow


async def test_a_tripwire_pauses_every_node_without_a_pause_vote(tmp_path: Path) -> None:
    async with Cluster(
        tmp_path, labs=3, overseers=2, tripwires={"rsi-detected": (2, ["overseer"])}
    ) as cluster:
        assert cluster.charter.triggers[1].auto_pause is not None
        await cluster.converged()
        # A lab is not eligible: its attestation is bound to no epoch and pauses nothing.
        lab = await cluster["lab-a"].attest_trigger("rsi-detected", note="seen at lab-a")
        assert isinstance(lab.statement.body, TriggerAttestation)
        assert lab.statement.body.epoch == 0
        first = await cluster["overseer-a"].attest_trigger("rsi-detected", note="audit 7")
        assert isinstance(first.statement.body, TriggerAttestation)
        assert first.statement.body.epoch == 1  # bound to the next epoch
        await cluster.converged()
        await cluster.all_say("NOT_PAUSED", 0)
        second = await cluster["overseer-b"].attest_trigger("rsi-detected")
        await cluster.all_say("PAUSED", 1)
        for node in cluster.running():
            (rec,) = node.view().epochs
            assert rec.pause is not None
            assert rec.pause.path == "tripwire:rsi-detected"
            assert rec.pause_votes == ()
            assert rec.pause.attestations == tuple(
                sorted((first.hash, second.hash), key=lambda h: h != first.hash)
            )
        async with OversightClient(cluster["lab-c"].address) as client:
            reply = await client.get_view()
        (cert,) = reply.certificates
        assert (cert.decision, cert.path) == ("pause", "tripwire:rsi-detected")
        assert list(cert.attesters) == ["overseer-a", "overseer-b"]
        # While paused there is no next epoch to bind a tripwire attestation to.
        with pytest.raises(SigningRefusedError, match="epoch 1 is already paused"):
            await cluster["overseer-a"].attest_trigger("rsi-detected")
