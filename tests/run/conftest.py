"""A real sandbox for the `peakready run` tests that point the run at it as an `aws`
target (so the test can act on the account while the run goes)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from peakready import sandbox as sb

    state_dir = tmp_path_factory.mktemp("sandbox")
    with sb.running(state_dir=state_dir, lb_port=0) as status:
        yield status
