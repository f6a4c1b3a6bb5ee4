"""Helpers for the load tests: start the local storefront (shop.py), profiles, waiting."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass
class Shop:
    url: str
    proc: subprocess.Popen

    def post(self, path: str, body: dict) -> dict:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    def set_latency(self, ms: float) -> None:
        self.post("/_admin/latency", {"ms": ms})

    def requests_served(self) -> int:
        return self.get("/_admin/stats")[1]["requests"]


def start_shop(bind: str = "127.0.0.1", prefix: list[str] | None = None) -> Shop:
    """``prefix``: e.g. ``ip netns exec NS`` to serve from a test host's namespace."""
    proc = subprocess.Popen([*(prefix or []), sys.executable, str(HERE / "shop.py"),
                             "--port", "0", "--bind", bind],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"shop did not start: {line!r}")
    return Shop(f"http://{bind}:{int(line.split()[1])}", proc)


def stop_shop(shop: Shop) -> None:
    shop.proc.kill()
    shop.proc.wait()
    shop.proc.stdout.close()


def write_profile(path: Path, rows: list[tuple[float, float]]) -> Path:
    path.write_text("t_s,rps\n" + "".join(f"{t},{r}\n" for t, r in rows))
    return path


def wait_for(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError("condition not reached")
