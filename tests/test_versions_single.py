"""With one charter version, the view across versions is exactly the single-charter view."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_view_properties import PROPERTY, History, garbage_envelopes, histories

from pausenet.core.verify import Rejection, verify_envelope
from pausenet.core.versions import Versions, evaluate_versions, verify_versions
from pausenet.core.view import evaluate


@PROPERTY
@given(h=histories(forks=True))
def test_one_version_gives_the_single_charter_view(h: History) -> None:
    one = Versions.single(h.charter)
    got = evaluate_versions(one, h.items, h.now)
    want = evaluate(h.charter, h.items, h.now)
    assert got == want
    assert got.to_json() == want.to_json()


@PROPERTY
@given(h=histories(forks=True, max_events=12), data=st.data())
def test_one_version_verifies_every_envelope_as_the_single_charter_does(
    h: History, data: st.DataObject
) -> None:
    one = Versions.single(h.charter)
    envs = [i.envelope for i in h.items] + data.draw(garbage_envelopes(h.charter, h.items, h.now))
    for env in envs:
        got = verify_versions(one, env, h.now)
        want = verify_envelope(h.charter, env, now_ms=h.now)
        assert got == want
        assert isinstance(got, Rejection) == isinstance(want, Rejection)
