"""The storefront's API log record is spelled out by hand for speed (every request pays
for it): it must stay byte for byte what ``json.dumps`` of the record wrote, including
escapes of untrusted header values and datetime's millisecond rounding."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from peakready.sandbox.storefront import apilog


def reference(request_id, started, method, route, status, latency_ms, instance, client,
              user_agent) -> bytes:
    ts = datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds")
    return (json.dumps({"request_id": request_id, "ts": ts.replace("+00:00", "Z"),
                        "method": method, "route": route, "status": status,
                        "latency_ms": round(latency_ms, 3), "instance": instance,
                        "client": client, "user_agent": user_agent},
                       separators=(",", ":")) + "\n").encode()


def test_record_is_byte_for_byte_json_dumps_of_the_record():
    rnd = random.Random(11)
    for i in range(20_000):
        t = 1_796_178_989 + rnd.random() * 86_400 * 30
        if i % 3 == 0:  # millisecond and microsecond rounding edges
            t = round(t, 3) + rnd.choice([0, 0.0005, 0.0004999, 0.0009999, 0.0000005])
        args = ('ab"\\c\u00e9\n\x01' if i % 7 == 0 else f"{i:032x}", t, "GET",
                "/api/products/{sku}", 200 + i % 300, rnd.random() * 1000, "i-0abc",
                "10.0.0.1", "Mozilla/5.0 (X11; \u4e2d)" if i % 5 == 0 else "python")
        assert apilog.record(*args) == reference(*args), args
    assert json.loads(apilog.record("", 0.0, "GET", "/", 0, 0, "", "", "")) == {
        "request_id": "", "ts": "1970-01-01T00:00:00.000Z", "method": "GET", "route": "/",
        "status": 0, "latency_ms": 0.0, "instance": "", "client": "", "user_agent": ""}
