"""The run folder's table shapes, declared once (docs/run-folder.md is their prose).

Writers (``peakready.load.capture``, ``peakready.collect``, the engine's own events) build
their tables from these declarations, ``analysis.load`` reads with them, and the synthetic
run generator (``analysis.synthetic``) writes with them, so a known-answer test cannot pass
on a shape the real writers do not produce. ``*_drift`` name what a table lacks, one line
per problem, for the reader to flag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

# --- samples/*.parquet: one row per request -------------------------------------------------
SAMPLE_SCHEMA = pa.schema([
    ("ts", pa.float64()),  # UTC epoch s, when the request started
    ("intended_ts", pa.float64()),  # when the open-model schedule wanted it started
    ("name", pa.string()),  # route template, e.g. /api/products/[sku]
    ("method", pa.string()),
    ("status", pa.int64()),  # 0 for a connection error
    ("ok", pa.bool_()),
    ("rt_ms", pa.float64()),
    ("bytes", pa.int64()),
    ("error", pa.string()),  # empty when ok; "session lost" prefix on a 401
    ("user", pa.string()),
    ("attack", pa.string()),  # the attack category of a WAF-test request, "" for shoppers
    ("request_id", pa.string()),  # the X-Request-Id the load sent (the API-log pipeline's key)
    ("worker", pa.string()),
])
SAMPLE_COLUMNS = list(SAMPLE_SCHEMA.names)
SAMPLE_REQUIRED = ["ts", "name", "method", "rt_ms"]  # without these a shard is unusable
SAMPLE_CATEGORICAL = ["name", "method", "error", "user", "attack", "worker"]  # strings, few distinct

# --- orders/*.jsonl and integrity/orders.parquet ------------------------------------------
ORDER_FIELDS = ["order_id", "ts", "user", "worker"]
INTEGRITY_COLUMNS = ["order_id", "confirmed_ts", "found", "status", "checked_ts"]

# --- metrics.parquet: long format, one row per datapoint ----------------------------------
METRIC_COLUMNS = ["ts", "source", "namespace", "metric", "dimensions", "stat", "period_s",
                  "value"]
SERIES_KEY = ["namespace", "metric", "dimensions", "stat"]

# --- events.parquet: one row per event; detail is a JSON object string --------------------
EVENT_COLUMNS = ["ts", "source", "kind", "resource", "detail"]


@dataclass(frozen=True)
class EventKind:
    """An event kind: the sources that write it and the ``detail`` keys it always has."""

    sources: frozenset[str]
    detail: tuple[str, ...] = ()


_FAULT = EventKind(frozenset({"chaos"}), ("experiment", "journal", "status", "deviated"))
_SCALING = ("activity_id", "cause", "description", "status", "start", "end")
EVENT_KINDS: dict[str, EventKind] = {
    "fault_start": _FAULT,
    "fault_end": _FAULT,
    "scaling_activity": EventKind(frozenset({"autoscaling"}), _SCALING),
    "instance_launch": EventKind(frozenset({"autoscaling"}), ("cause",)),
    "instance_terminate": EventKind(frozenset({"autoscaling"}), ("cause",)),
    "alarm_state": EventKind(frozenset({"cloudwatch"}), ("from", "to", "reason")),
    "db_failover_start": EventKind(frozenset({"rds"}), ("message",)),
    "db_failover_end": EventKind(frozenset({"rds"}), ("message",)),
    "rds_event": EventKind(frozenset({"rds"}), ("message",)),
    "cache_failover_start": EventKind(frozenset({"elasticache"}), ("message",)),
    "cache_failover_end": EventKind(frozenset({"elasticache"}), ("message",)),
    "elasticache_event": EventKind(frozenset({"elasticache"}), ("message",)),
    "abort": EventKind(frozenset({"peakready"}), ("reason",)),
    "interrupt": EventKind(frozenset({"peakready"}), ("reason",)),
    "phase": EventKind(frozenset({"peakready"}), ("start", "end")),
}
EVENT_SOURCES = frozenset(s for k in EVENT_KINDS.values() for s in k.sources)


def missing_columns(table: str, have: Iterable[str], want: Iterable[str]) -> list[str]:
    """One line naming the columns ``table`` lacks, or nothing."""
    names = set(have)
    lacking = [c for c in want if c not in names]
    return [f"{table}: missing column(s) {', '.join(lacking)}"] if lacking else []


def sample_drift(schema: pa.Schema, table: str = "samples") -> list[str]:
    """What a sample shard's schema lacks or types differently from SAMPLE_SCHEMA."""
    out = missing_columns(table, schema.names, SAMPLE_REQUIRED)
    for name in (n for n in SAMPLE_COLUMNS if n in schema.names):
        have, want = schema.field(name).type, SAMPLE_SCHEMA.field(name).type
        if pa.types.is_dictionary(have):
            have = have.value_type
        if have != want and not (pa.types.is_large_string(have) and pa.types.is_string(want)):
            out.append(f"{table}: column {name} is {have}, the contract says {want}")
    return out


def event_drift(rows: Iterable[Mapping], table: str = "events.parquet") -> list[str]:
    """Unknown kinds, a kind from the wrong source, detail keys a kind always has: one line
    per (kind, problem), so a drifted writer is named once, not per row."""
    seen: dict[tuple[str, str], str] = {}
    for row in rows:
        kind, source = str(row.get("kind")), str(row.get("source"))
        spec = EVENT_KINDS.get(kind)
        if spec is None:
            seen.setdefault((kind, "kind"), f"{table}: unknown event kind {kind!r}")
            continue
        if source not in spec.sources:
            seen.setdefault((kind, "source"), f"{table}: {kind} from source {source!r}, the "
                            f"contract says {'/'.join(sorted(spec.sources))}")
        try:
            detail = json.loads(row.get("detail") or "{}")
        except (TypeError, ValueError):
            detail = None
        if not isinstance(detail, dict):
            seen.setdefault((kind, "json"), f"{table}: {kind} detail is not a JSON object")
            continue
        lacking = [k for k in spec.detail if k not in detail]
        if lacking:
            seen.setdefault((kind, "detail"), f"{table}: {kind} detail lacks "
                            f"{', '.join(lacking)}")
    return list(seen.values())


# --- shipped.json: what every distributed worker sent through the master -----------------
# {"workers": {"w1": {"client_id", "name", "files": {"samples/w1-00001.parquet":
#   {"rows", "bytes", "received"}, "orders/w1.jsonl": {"bytes", "received"}}, "done"}}}
# A worker announces each shard when it closes it (before shipping), so a shard that never
# arrived is known by name and row count; "done" is the worker's own "all sent" message.
SHIPPED_WORKER_KEYS = ("client_id", "name", "files", "done")
SHIPPED_FILE_KEYS = ("bytes", "received")


def shipping_gaps(manifest: Mapping | None) -> list[str]:
    """One line per worker whose announced shards or order log did not (all) arrive, and
    per worker that never said it had sent everything: the run's samples are incomplete."""
    out: list[str] = []
    for worker, info in sorted(((manifest or {}).get("workers") or {}).items()):
        files = info.get("files") or {}
        lost = sorted(n for n, f in files.items() if not f.get("received"))
        label = f"worker {worker}" + (f" ({info['name']})" if info.get("name") else "")
        if lost:
            rows = sum(int(files[n].get("rows") or 0) for n in lost)
            shown = ", ".join(lost[:3]) + (f" and {len(lost) - 3} more" if len(lost) > 3 else "")
            out.append(f"samples: {len(lost)} file(s) of {label} never arrived at the master "
                       f"({rows} sample rows announced): {shown}")
        elif not info.get("done"):
            out.append(f"samples: {label} never confirmed it had sent everything (lost "
                       "mid-run?): its last unflushed seconds are missing")
    return out
