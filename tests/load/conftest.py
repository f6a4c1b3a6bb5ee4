"""Fixtures for the load tests: a real local storefront per test, handles cleaned up."""

from __future__ import annotations

import pytest
from loadkit import Shop, start_shop, stop_shop


@pytest.fixture
def shop():
    s = start_shop()
    try:
        yield s
    finally:
        stop_shop(s)


@pytest.fixture
def make_shop():
    """For tests that need two independent storefronts."""
    started: list[Shop] = []

    def make() -> Shop:
        started.append(start_shop())
        return started[-1]

    try:
        yield make
    finally:
        for s in started:
            stop_shop(s)


@pytest.fixture
def handles():
    """Load handles a test starts; stopped (then killed) if the test fails half-way."""
    started = []
    try:
        yield started
    finally:
        for h in started:
            if h.poll() is None or any(w.poll() is None for w in h.workers):
                h.stop()
                h.kill()
