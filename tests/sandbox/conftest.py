"""Fixtures: a real sandbox stack with short time constants, always stopped."""

from __future__ import annotations

import pytest
from sandbox_kit import running_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp("sandbox")) as st:
        yield st


@pytest.fixture
def base_url(stack) -> str:
    return f"http://127.0.0.1:{stack.lb_port}"
