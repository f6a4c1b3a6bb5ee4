"""A real sandbox for the `peakready run` tests that point the run at it as an `aws`
target (so the test can act on the account while the run goes)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    from peakready import sandbox as sb

    state_dir = tmp_path_factory.mktemp("sandbox")
    with sb.running(state_dir=state_dir, lb_port=0) as status:
        yield status


@pytest.fixture
def run_tmp():
    """A temp dir for one run (TMPDIR of the run process). Outside pytest's own tmp tree,
    which is private to root: the sandbox's PostgreSQL runs as another user and must be
    able to reach its state folder."""
    path = Path(tempfile.mkdtemp(prefix="peakready-test-run-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
