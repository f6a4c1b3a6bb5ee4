"""Read a run folder (docs/run-folder.md) into tidy frames.

Tolerant by design: a run killed half-way has a half-written shard, no metrics, no
events or no run.json. Whatever is missing or unreadable becomes a line in
``Run.problems`` and the run is marked incomplete; analysis carries on with the rest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import yaml

from analysis.samplestore import DuckStore, MemoryStore, SampleStore
from peakready import runfolder
from peakready import runfolder_schema as schema

# the columns analysis reads (all of the contract's but `bytes`)
SAMPLE_COLUMNS = [c for c in schema.SAMPLE_COLUMNS if c not in ("bytes", "request_id")]
# request_id (unique per row) is read only by the log_pipeline check, on its own
CATEGORICAL = schema.SAMPLE_CATEGORICAL
METRIC_COLUMNS = schema.METRIC_COLUMNS
EVENT_COLUMNS = schema.EVENT_COLUMNS
FINISHED = {"completed"}


@dataclass
class Run:
    """One run folder as frames; ``t0`` is the load start (epoch s) all offsets refer to."""

    run_dir: Path
    meta: dict[str, Any]
    plan: dict[str, Any]
    settings: dict[str, Any]
    sample_frame: pd.DataFrame | None
    """The shoppers' samples in memory; ``None`` when the run is analysed out of core
    (``store`` answers the checks) until someone reads ``samples``."""
    orders: pd.DataFrame
    integrity: pd.DataFrame | None
    metrics: pd.DataFrame
    events: pd.DataFrame
    journals: dict[str, dict[str, Any]]
    t0: float
    t_end: float
    problems: list[str] = field(default_factory=list)
    attacks: pd.DataFrame | None = None
    """Attack requests the load mixed in (``attack`` != ""): never in ``samples``, so no
    shopper SLO (latency, errors, recovery, regression) counts them; the ``waf`` check
    reads them here."""
    store: SampleStore | None = None
    """Aggregates over the samples (window stats, percentiles, counts): in memory for a run
    that fits, DuckDB over the shards for a campaign-scale one (``analysis.samplestore``)."""

    def __post_init__(self) -> None:
        if self.store is None:
            self.store = MemoryStore(self.samples)

    @property
    def samples(self) -> pd.DataFrame:
        """Every shopper sample as one frame. Out of core this reads them all (a notebook's
        or an older check kind's view of a small run); the built-in kinds ask ``store``."""
        if self.sample_frame is None:
            self.sample_frame, _ = split_attacks(read_samples(
                self.run_dir / runfolder.SAMPLES_DIR, []))
        return self.sample_frame

    @samples.setter
    def samples(self, frame: pd.DataFrame) -> None:
        self.sample_frame = frame
        self.store = MemoryStore(frame)

    @property
    def requests(self) -> int:
        """How many shopper requests the run has (without reading them out of core)."""
        if self.sample_frame is not None:
            return len(self.sample_frame)
        assert self.store is not None
        return self.store.shoppers() if isinstance(self.store, DuckStore) else self.store.rows

    @property
    def status(self) -> str:
        return str(self.meta.get("status") or "unknown")

    @property
    def incomplete(self) -> bool:
        return self.status not in FINISHED or bool(self.problems)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.t_end - self.t0)


def is_run_folder(run_dir: Path | str) -> bool:
    """A run folder has a run.json or a samples/ folder; anything else is bad input."""
    path = Path(run_dir)
    return path.is_dir() and ((path / runfolder.RUN_JSON).exists()
                              or (path / runfolder.SAMPLES_DIR).is_dir())


OUT_OF_CORE_ROWS = 4_000_000
"""From this many samples on, ``load_run`` leaves them on disk and answers the checks with
DuckDB over the shards (``PEAKREADY_ANALYSIS_ENGINE`` = memory / duckdb forces one)."""


def choose_engine(samples_dir: Path, engine: str | None = None) -> str:
    """``memory`` or ``duckdb``: as asked, else by the shards' row count (their footers)."""
    engine = engine or os.environ.get("PEAKREADY_ANALYSIS_ENGINE") or "auto"
    if engine not in ("auto", "memory", "duckdb"):
        raise ValueError(f"analysis engine {engine!r}: use auto, memory or duckdb")
    if engine != "auto":
        return engine
    rows = 0
    for shard in sorted(samples_dir.glob("*.parquet")) if samples_dir.is_dir() else []:
        try:
            rows += pq.read_metadata(shard).num_rows
        except (OSError, pa.ArrowException):
            continue
    return "duckdb" if rows >= OUT_OF_CORE_ROWS else "memory"


def load_run(run_dir: Path | str, engine: str | None = None) -> Run:
    """Every frame of the run folder, with what could not be read listed in ``problems``.
    ``engine``: ``memory`` (samples as one frame), ``duckdb`` (samples stay in their shards)
    or ``None``: by size (``choose_engine``)."""
    path = Path(run_dir)
    problems: list[str] = []
    meta = _read_json(path / runfolder.RUN_JSON, problems, required=True)
    plan = _read_yaml(path / runfolder.PLAN_YAML, problems)
    settings = _read_json(path / "settings.json", problems, required=False)
    samples_dir = path / runfolder.SAMPLES_DIR
    samples: pd.DataFrame | None
    if choose_engine(samples_dir, engine) == "duckdb":
        store: SampleStore = open_store(samples_dir, problems)
        samples, attacks = None, store.attacks()
    else:
        samples, attacks = split_attacks(read_samples(samples_dir, problems))
        store = MemoryStore(samples)
    # distributed workers: a shard announced but never shipped makes the run incomplete
    problems.extend(schema.shipping_gaps(_read_json(path / runfolder.SHIPPED, problems,
                                                    required=False)))
    orders = read_orders(path / runfolder.ORDERS_DIR, problems)
    integrity = _read_parquet(path / runfolder.INTEGRITY_DIR / "orders.parquet", None, problems,
                              required=False, arrow_strings=True)
    metrics = _read_parquet(path / runfolder.METRICS, METRIC_COLUMNS, problems, required=False)
    events = _read_parquet(path / runfolder.EVENTS, EVENT_COLUMNS, problems, required=False)
    if events is not None:
        problems.extend(schema.event_drift(events.to_dict("records")))
    metrics = metrics if metrics is not None else _empty(METRIC_COLUMNS)
    events = (events if events is not None else _empty(EVENT_COLUMNS)).sort_values(
        "ts", kind="stable").reset_index(drop=True)
    journals = read_journals(path / runfolder.CHAOS_DIR, problems)
    status = meta.get("status")
    if status and status not in FINISHED:
        problems.insert(0, f"run.json status is {status!r}"
                        + (f" ({meta['abort_reason']})" if meta.get("abort_reason") else ""))
    live = _read_json(path / runfolder.LIVE_STATUS, [], required=False)
    t0, t_end = _span(meta, settings, store, live)
    return Run(path, meta, plan, settings, samples, orders, integrity, metrics, events, journals,
               t0, t_end, problems, attacks, store)


def split_attacks(samples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(shoppers, attacks): the one place where WAF-test traffic leaves the shoppers' SLO."""
    marked = samples["attack"].astype(str).to_numpy() != ""
    if not marked.any():
        return samples, samples.iloc[0:0]
    shoppers = samples.loc[~marked].reset_index(drop=True)
    for col in CATEGORICAL:  # an endpoint only attacks used is no shopper endpoint
        shoppers[col] = shoppers[col].cat.remove_unused_categories()
    shoppers["endpoint"] = shoppers["endpoint"].cat.remove_unused_categories()
    return shoppers, samples.loc[marked].reset_index(drop=True)


def usable_shards(samples_dir: Path, problems: list[str]) -> list[tuple[Path, pa.Schema, int]]:
    """(shard, schema, rows) of every shard whose footer reads and that has the required
    columns; a drifted or torn shard is named in ``problems`` (as ``read_samples`` does)."""
    shards = sorted(samples_dir.glob("*.parquet")) if samples_dir.is_dir() else []
    out = []
    for shard in shards:
        try:
            meta = pq.read_metadata(shard)
            shard_schema = meta.schema.to_arrow_schema()
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"samples/{shard.name}: unreadable, skipped ({_short(exc)})")
            continue
        drift = schema.sample_drift(shard_schema, f"samples/{shard.name}")
        problems.extend(drift)
        if not any("missing" in d for d in drift):
            out.append((shard, shard_schema, meta.num_rows))
    if not shards:
        problems.append("samples/: no sample shards")
    return out


def open_store(samples_dir: Path, problems: list[str]) -> DuckStore:
    """The shards as a DuckDB view (nothing read yet)."""
    usable = usable_shards(samples_dir, problems)
    columns = {n for _, sch, _ in usable for n in sch.names}
    return DuckStore([p for p, _, _ in usable], columns, sum(r for _, _, r in usable))


def read_samples(samples_dir: Path, problems: list[str]) -> pd.DataFrame:
    """All shards, only the columns analysis uses, strings as categoricals (10M rows fit)."""
    shards = sorted(samples_dir.glob("*.parquet")) if samples_dir.is_dir() else []
    tables = []
    for shard in shards:
        try:
            shard_schema = pq.read_schema(shard)
            drift = schema.sample_drift(shard_schema, f"samples/{shard.name}")
            if drift:  # a writer drifted from the contract: say so, never guess
                problems.extend(drift)
                if any("missing" in d for d in drift):
                    continue
            cols = [c for c in SAMPLE_COLUMNS if c in shard_schema.names]
            tables.append(pq.read_table(shard, columns=cols,
                                        read_dictionary=[c for c in CATEGORICAL if c in cols]))
        except (OSError, pa.ArrowException) as exc:
            problems.append(f"samples/{shard.name}: unreadable, skipped ({_short(exc)})")
    if not shards:
        problems.append("samples/: no sample shards")
    if not tables:
        return _empty_samples()
    table = pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    frame = table.to_pandas()
    return tidy_samples(frame)


def tidy_samples(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill optional columns, make ``endpoint`` (``"METHOD name"``) and ``lag_ms``."""
    out = frame.copy() if frame.empty else frame
    if "intended_ts" not in out:
        out["intended_ts"] = out["ts"]
    out["intended_ts"] = out["intended_ts"].fillna(out["ts"])
    for col in CATEGORICAL:
        if col not in out:
            out[col] = ""
        out[col] = out[col].astype("category")
    if "ok" not in out:
        out["ok"] = out["status"].between(200, 399)
    out["ok"] = out["ok"].astype(bool)
    if "status" not in out:
        out["status"] = 0
    out["endpoint"] = endpoint_categorical(out["method"], out["name"])
    out["lag_ms"] = ((out["ts"] - out["intended_ts"]) * 1000.0).clip(lower=0.0)
    ts = out["ts"].to_numpy()
    if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():  # shards of several workers interleave
        out = out.sort_values("ts", kind="stable")
    return out.reset_index(drop=True)


def endpoint_categorical(method: pd.Series, name: pd.Series) -> pd.Categorical:
    """``"METHOD name"`` built from the few distinct pairs, never from 10M joined strings."""
    n = len(name.cat.categories) + 1
    # +1 on both codes so a missing value (code -1) still maps to a key >= 0
    key = ((method.cat.codes.to_numpy().astype(np.int64) + 1) * n
           + name.cat.codes.to_numpy().astype(np.int64) + 1)
    uniques = np.flatnonzero(np.bincount(key))  # few pairs: a lookup table, no hashing
    lookup = np.zeros(int(key.max()) + 1 if len(key) else 1, dtype=np.int32)
    lookup[uniques] = np.arange(len(uniques), dtype=np.int32)
    labels = [f"{_label(method, k // n - 1)} {_label(name, k % n - 1)}" for k in uniques]
    return pd.Categorical.from_codes(lookup[key] if len(key) else key, categories=labels)


def _label(col: pd.Series, code: int) -> str:
    return str(col.cat.categories[code]) if code >= 0 else ""


def read_orders(orders_dir: Path, problems: list[str]) -> pd.DataFrame:
    """Confirmed orders; a torn line (killed writer) is skipped and reported."""
    frames = []
    for path in sorted(orders_dir.glob("*.jsonl")) if orders_dir.is_dir() else []:
        try:  # fast path: pyarrow parses a clean file in one go
            frames.append(pa_json.read_json(path).to_pandas(types_mapper=_arrow_strings))
            continue
        except (pa.ArrowException, OSError):
            pass
        rows = []
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                problems.append(f"orders/{path.name}:{lineno}: torn line skipped")
        frames.append(pd.DataFrame(rows))
    frames = [f for f in frames if len(f) and "order_id" in f]
    if not frames:
        return pd.DataFrame({"order_id": pd.Series([], dtype=str),
                             "ts": pd.Series([], dtype=float), "user": pd.Series([], dtype=str),
                             "worker": pd.Series([], dtype=str)})
    frame = pd.concat(frames, ignore_index=True)
    for col in ("ts", "user", "worker"):
        if col not in frame:
            frame[col] = None
    # millions of ids: arrow-backed strings (a few bytes each, not a Python object each)
    return frame[schema.ORDER_FIELDS].assign(
        order_id=lambda d: d["order_id"].astype(str).astype("string[pyarrow]")
        if d["order_id"].dtype == object else d["order_id"].astype("string[pyarrow]"))


def _arrow_strings(dtype: pa.DataType) -> Any:
    return pd.StringDtype("pyarrow") if pa.types.is_string(dtype) else None


def read_journals(chaos_dir: Path, problems: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(chaos_dir.glob("*.journal.json")) if chaos_dir.is_dir() else []:
        try:
            out[path.name.removesuffix(".journal.json")] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            problems.append(f"chaos/{path.name}: unreadable journal ({_short(exc)})")
    return out


def _span(meta: dict, settings: dict, store: SampleStore,
          live: dict) -> tuple[float, float]:
    """Load time zero and end. Zero is the open-model schedule's t=0 (the profile's, the
    plan's ``at_s`` and phases count from it): ``live.json`` ts - elapsed_s, else run.json
    ``load_started_at`` (process start, a little earlier), else the first sample."""
    start = None
    if _finite(live.get("ts")) and _finite(live.get("elapsed_s")):
        start = float(live["ts"]) - float(live["elapsed_s"])
    start = start or meta.get("load_started_at") or settings.get("started_at")
    end = meta.get("load_ended_at")
    first, last = store.span() if start is None or end is None else (None, None)
    start = first if start is None else start
    if start is None:
        start = meta.get("started_at") or 0.0
    end = last if end is None else end
    if end is None:
        end = meta.get("ended_at") or start
    return float(start), float(end)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _read_json(path: Path, problems: list[str], required: bool) -> dict[str, Any]:
    if not path.exists():
        if required:
            problems.append(f"{path.name}: missing")
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: unreadable ({_short(exc)})")
        return {}


def _read_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{path.name}: unreadable ({_short(exc)})")
        return {}
    return data if isinstance(data, dict) else {}


def _read_parquet(path: Path, columns: list[str] | None, problems: list[str],
                  required: bool, arrow_strings: bool = False) -> pd.DataFrame | None:
    if not path.exists():
        if required:
            problems.append(f"{path.name}: missing")
        return None
    try:
        names = pq.read_schema(path).names
        problems.extend(schema.missing_columns(path.name, names, columns or []))
        cols = [c for c in columns if c in names] if columns else None
        frame = pq.read_table(path, columns=cols).to_pandas(
            types_mapper=_arrow_strings if arrow_strings else None)
    except (OSError, pa.ArrowException) as exc:
        problems.append(f"{path.name}: unreadable ({_short(exc)})")
        return None
    for col in columns or []:
        if col not in frame:
            frame[col] = pd.Series([None] * len(frame), dtype=object)
    return frame


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=float if c in ("ts", "value") else object)
                         for c in columns})


def _empty_samples() -> pd.DataFrame:
    frame = pd.DataFrame({
        "ts": pd.Series([], dtype=float), "intended_ts": pd.Series([], dtype=float),
        "status": pd.Series([], dtype="int64"), "ok": pd.Series([], dtype=bool),
        "rt_ms": pd.Series([], dtype=float),
        **{c: pd.Series([], dtype=str) for c in CATEGORICAL}})
    return tidy_samples(frame)


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def parse_detail(detail: Any) -> dict[str, Any]:
    """Event ``detail`` is a JSON string; a bad one is kept as ``{"raw": ...}``."""
    if isinstance(detail, dict):
        return detail
    if not detail:
        return {}
    try:
        value = json.loads(detail)
    except (TypeError, json.JSONDecodeError):
        return {"raw": str(detail)}
    return value if isinstance(value, dict) else {"value": value}
