from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from chaos_awsworld import moto_world


class LiveStatus:
    """Writes a live.json every 0.2 s, as the load's master would, with settable numbers."""

    def __init__(self, path: Path):
        self.path = path
        self.p95_ms = 40.0
        self.error_rate = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def write(self) -> None:
        doc = {"ts": time.time(), "elapsed_s": 1.0, "target_rps": 20.0, "users": 5,
               "done": False,
               "windows": {w: {"rps": 20.0, "p50_ms": 10.0, "p95_ms": self.p95_ms,
                               "p99_ms": self.p95_ms * 2, "error_rate": self.error_rate,
                               "requests": 600} for w in ("10", "30")}}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.path)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.write()

    def __enter__(self):
        self.write()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture
def live(tmp_path):
    with LiveStatus(tmp_path / "live.json") as status:
        yield status


@pytest.fixture
def aws():
    with moto_world() as env:
        yield env
