"""Raw samples and confirmed orders, written by every Locust process into the run folder.

Rows are buffered in memory and written as a new parquet shard every few seconds, under
a temporary name first and renamed when complete, so a reader (or a SIGKILL) never sees
half a shard and a crash loses at most one flush interval.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from peakready.runfolder_schema import ORDER_FIELDS, SAMPLE_SCHEMA

assert SAMPLE_SCHEMA.names[-1] == "worker"
_FIELDS = SAMPLE_SCHEMA.names[:-1]  # every column but the constant `worker`
_DOUBLES = [f.name for f in SAMPLE_SCHEMA if pa.types.is_floating(f.type)]
SHARD_OPTIONS = {
    "compression": "zstd", "compression_level": 1,
    # doubles split by byte (their exponent bytes compress), the unique request ids plain
    "use_byte_stream_split": _DOUBLES,
    "use_dictionary": [n for n in SAMPLE_SCHEMA.names if n not in _DOUBLES + ["request_id"]],
}
"""Chosen by benchmarks/bench_capture.py (benchmarks/README.md): the fewest bytes per
sample of the codecs measured, for no more write CPU in the Locust process than plain
zstd."""


class ShardWriter:
    """Buffers sample rows (tuples in schema order, without worker) and writes shards."""

    def __init__(self, samples_dir: Path, worker: str) -> None:
        self.dir = Path(samples_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.rows: list[tuple] = []
        # continue after shards of an earlier test in the same folder (Locust web UI restarts)
        self.seq = max((int(p.stem.rsplit("-", 1)[1]) for p in self.dir.glob(f"{worker}-*.parquet")),
                       default=0)
        self.written = 0
        # one conversion now (test start): pyarrow's first conversion initialises its
        # pandas shim, which took up to a few seconds on a busy machine, and must not block
        # the gevent loop in the first flush mid-run
        pa.array([0.0], type=SAMPLE_SCHEMA.field("ts").type)

    def add(self, row: tuple) -> None:
        self.rows.append(row)

    def flush(self) -> Path | None:
        if not self.rows:
            return None
        rows, self.rows = self.rows, []
        columns = list(zip(*rows, strict=True))
        arrays = {name: columns[i] for i, name in enumerate(_FIELDS)}
        arrays["worker"] = [self.worker] * len(rows)
        table = pa.Table.from_pydict(arrays, schema=SAMPLE_SCHEMA)
        self.seq += 1
        final = self.dir / f"{self.worker}-{self.seq:05d}.parquet"
        tmp = self.dir / f".{final.name}.tmp"
        pq.write_table(table, tmp, **SHARD_OPTIONS)
        os.replace(tmp, final)
        self.written += len(rows)
        return final


class OrderLog:
    """One JSON line per confirmed order, flushed at once: orders are few and precious."""

    def __init__(self, orders_dir: Path, worker: str) -> None:
        Path(orders_dir).mkdir(parents=True, exist_ok=True)
        self.worker = worker
        self.path = Path(orders_dir) / f"{worker}.jsonl"
        self._fh = self.path.open("a", encoding="utf-8")
        self.count = 0

    def record(self, order_id: str, ts: float, user: str) -> None:
        order = {"order_id": str(order_id), "ts": ts, "user": user, "worker": self.worker}
        line = json.dumps({k: order[k] for k in ORDER_FIELDS})
        self._fh.write(line + "\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


class OrderRule:
    """How a confirmed order looks in a response, for locustfiles that do not call
    ``record_order``: a request name (optionally ``"POST /api/checkout"``: method and
    name) and a JSON field (dotted for nested objects, ``order.id``). A successful
    response of that request whose JSON has a non-empty field is a confirmed order."""

    def __init__(self, request: str, field: str) -> None:
        method, _, name = request.strip().partition(" ")
        if name and method.isalpha() and method.isupper():
            self.method: str | None = method
            self.name = name.strip()
        else:
            self.method, self.name = None, request.strip()
        self.path = [p for p in field.split(".") if p]

    def order_id(self, method: str, response) -> str | None:
        if self.method is not None and method.upper() != self.method:
            return None
        try:
            value = response.json()
        except Exception:  # noqa: BLE001 - no JSON, no confirmed order
            return None
        for key in self.path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        if value is None or value == "" or isinstance(value, dict | list):
            return None
        return str(value)
