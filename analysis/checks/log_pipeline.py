"""``log_pipeline``: every request the storefront answered has landed in the API-log
store (Firehose -> S3 -> Glue -> Athena), in time, judged per bucket (a minute by default).

Evidence, all written by collection (``peakready/collect/apilogs.py``) into ``api_logs/``:
the request ids Athena found in the run window (``landed.parquet``: copies, landing time),
Athena's own per-bucket counts (``minutes.parquet``), the stream's ``AWS/Firehose`` series
(``firehose.parquet``) and ``collect.json`` (query states, how far delivery had caught
up). The reference is the load's own samples (their ``request_id`` column): a request
with a response from the storefront (status > 0 and not a balancer-made 502/504, and not
blocked by the WAF in front of it: the ids in the WAF log's BLOCK records, or without a WAF
log the 403s, AWS WAF's block answer) should have exactly one record; extra copies are
at-least-once duplicates, counted apart.

A bucket is final only when delivery had caught up with its last request plus the
producer's lag (``DataFreshness`` speaks only for records Firehose already has; the lag
collection used is in ``collect.json``); a non-final bucket makes the verdict
``inconclusive`` for it, never ``pass``. A failed Athena query is "could not be
verified: <reason>".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.checks import fields, waf
from analysis.checks.context import Context
from analysis.checks.registry import CheckKind, register
from analysis.checks.result import FAIL, INCONCLUSIVE, PASS, SKIPPED, CheckResult

KIND = "log_pipeline"
FIGURE = "figures/api-logs.png"
NOT_ANSWERED = (0, 502, 504)  # no response, or one the balancer made: no storefront record
WAF_BLOCK_STATUS = 403  # AWS WAF's default block response
KEYS = {"min_completeness", "max_freshness_s", "bucket_s", "athena", "delivery_stream",
        "wait_s", "producer_lag_s"}
ATHENA_KEYS = {"database", "table", "workgroup", "output_location"}


def validate(errors: list[str], where: str, value: Any) -> None:
    if not fields.mapping(errors, where, value):
        return
    fields.known(errors, where, value, KEYS)
    fields.number(errors, where, value, "min_completeness", lo=0, hi=1)
    fields.number(errors, where, value, "max_freshness_s", required=False, lo=0, lo_open=True)
    fields.number(errors, where, value, "bucket_s", required=False, lo=1, integer=True)
    fields.number(errors, where, value, "wait_s", required=False, lo=0)
    fields.number(errors, where, value, "producer_lag_s", required=False, lo=0)
    athena = value.get("athena")
    if athena is not None and fields.mapping(errors, f"{where}.athena", athena):
        fields.known(errors, f"{where}.athena", athena, ATHENA_KEYS)
        for key, text in athena.items():
            if key in ATHENA_KEYS and (not isinstance(text, str) or not text.strip()):
                errors.append(f"{where}.athena.{key}: must be a non-empty string")
        loc = athena.get("output_location")
        if isinstance(loc, str) and loc and not loc.startswith("s3://"):
            errors.append(f"{where}.athena.output_location: must be an s3:// URL")
    stream = value.get("delivery_stream")
    if stream is not None and (not isinstance(stream, str) or not stream.strip()):
        errors.append(f"{where}.delivery_stream: must be a non-empty string")


def _read(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path) if path.exists() else None
    except (OSError, ValueError, pa.ArrowException):
        return None


def sent_requests(samples_dir: Path) -> pd.DataFrame:
    """``ts``, ``request_id``, ``status`` of every sample (only these columns are read)."""
    tables = []
    for shard in sorted(samples_dir.glob("*.parquet")) if samples_dir.is_dir() else []:
        try:
            schema = pq.read_schema(shard)
            if "request_id" not in schema.names:
                continue
            tables.append(pq.read_table(shard, columns=["ts", "request_id", "status"]))
        except (OSError, pa.ArrowException):
            continue
    if not tables:
        return pd.DataFrame({"ts": pd.Series(dtype=float), "request_id": pd.Series(dtype=str),
                             "status": pd.Series(dtype="int64")})
    return pa.concat_tables(tables).to_pandas()


def blocked_at_edge(run_dir: Path, sent: pd.DataFrame) -> tuple[set[str], str]:
    """Request ids the WAF blocked (they never reached a storefront, so no API log record
    is owed) and where that came from."""
    ids = _waf_log_ids(run_dir)
    if ids is None:
        return set(sent.loc[sent["status"] == WAF_BLOCK_STATUS, "request_id"]), "status 403"
    return ids, "WAF log"


def _waf_log_ids(run_dir: Path) -> set[str] | None:
    """The request ids of the WAF log's BLOCK records; None without a WAF log."""
    log = waf.read_log(run_dir)
    if log is None:
        return None
    ids = set()
    for record in log:
        if record.get("action") != "BLOCK":
            continue
        for h in (record.get("httpRequest") or {}).get("headers") or []:
            if str(h.get("name", "")).lower() == "x-request-id":
                ids.add(str(h.get("value", "")))
    return ids


def per_bucket(sent: pd.DataFrame, landed: pd.DataFrame, t0: float, bucket_s: int,
               max_freshness_s: float | None, blocked: set[str] | None = None) -> pd.DataFrame:
    """Per bucket of the load's own time (from ``t0``, the load start): expected ids, found,
    missing, duplicates, late. ``blocked``: ids the WAF answered (not expected)."""
    answered = sent.loc[~sent["status"].isin(NOT_ANSWERED) & (sent["request_id"] != "")
                        & ~sent["request_id"].isin(blocked or set())]
    answered = answered.drop_duplicates("request_id")
    merged = answered.merge(landed[["request_id", "copies", "landed_ts"]], on="request_id",
                            how="left")
    merged["bucket"] = t0 + np.floor((merged["ts"] - t0) / bucket_s) * bucket_s
    merged["found"] = merged["copies"].notna()
    merged["dups"] = (merged["copies"].fillna(1) - 1).clip(lower=0)
    merged["lag_s"] = merged["landed_ts"] - merged["ts"]
    merged["late"] = merged["found"] & (merged["lag_s"] > max_freshness_s) \
        if max_freshness_s else False
    out = merged.groupby("bucket").agg(expected=("request_id", "size"),
                                       found=("found", "sum"), duplicates=("dups", "sum"),
                                       late=("late", "sum"), max_lag_s=("lag_s", "max"),
                                       last_ts=("ts", "max"))
    out = out.reset_index()
    out["missing"] = out["expected"] - out["found"]
    out["completeness"] = out["found"] / out["expected"]
    out["start_s"] = out["bucket"] - t0
    out["end_s"] = out["start_s"] + bucket_s
    return out


def sent_shards(samples_dir: Path) -> list[Path]:
    """The shards that have a ``request_id`` column (the others predate it)."""
    out = []
    for shard in sorted(samples_dir.glob("*.parquet")) if samples_dir.is_dir() else []:
        try:
            if "request_id" in pq.read_schema(shard).names:
                out.append(shard)
        except (OSError, pa.ArrowException):
            continue
    return out


def per_bucket_out_of_core(con: Any, shards: list[Path], landed: Path, t0: float,
                           bucket_s: int, max_freshness_s: float | None,
                           blocked: set[str] | None) -> tuple[pd.DataFrame, int, int]:
    """``per_bucket`` in DuckDB over the shards and landed.parquet (a campaign-scale run's
    ids never sit in memory), plus the number of ids the WAF answered and of landed
    records no sample explains. ``blocked`` None: the 403s are the WAF's (no WAF log).
    The same rules as in memory: the first sample of an id (shard, then row order) is its
    request; a landed record joins every sample row of its id."""
    files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in shards) + "]"
    con.execute(f"""CREATE OR REPLACE TEMP VIEW lp_sent AS SELECT request_id, ts, status,
        filename AS f, file_row_number AS r FROM read_parquet({files}, filename = true,
        file_row_number = true, union_by_name = true)""")
    con.execute(f"""CREATE OR REPLACE TEMP VIEW lp_landed AS SELECT coalesce(request_id::VARCHAR,
        '') AS request_id, copies, landed_ts FROM read_parquet('{str(landed).replace("'", "''")}')
        """)
    if blocked is None:
        con.execute("""CREATE OR REPLACE TEMP TABLE lp_blocked AS SELECT DISTINCT request_id
                       FROM lp_sent WHERE status = ? AND request_id IS NOT NULL""",
                    [WAF_BLOCK_STATUS])
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE lp_blocked (request_id VARCHAR)")
        con.executemany("INSERT INTO lp_blocked VALUES (?)", [(b,) for b in sorted(blocked)])
    n_blocked = int(con.execute("SELECT count(*) FROM lp_blocked").fetchone()[0])
    late = (f"count(*) FILTER (copies IS NOT NULL AND landed_ts - ts > {float(max_freshness_s)!r})"
            if max_freshness_s else "0")
    na = ", ".join(str(x) for x in NOT_ANSWERED)
    table = con.execute(f"""WITH answered AS (
            SELECT request_id, arg_min(ts, {{'f': f, 'r': r}}) AS ts FROM lp_sent
            WHERE status NOT IN ({na}) AND request_id <> ''
              AND request_id NOT IN (SELECT request_id FROM lp_blocked)
            GROUP BY request_id)
        SELECT {t0!r}::DOUBLE + floor((ts - {t0!r}::DOUBLE) / {bucket_s}) * {bucket_s} AS bucket,
            count(*) AS expected, count(copies) AS found,
            sum(greatest(coalesce(copies, 1) - 1, 0))::DOUBLE AS duplicates, {late} AS late,
            max(landed_ts - ts) AS max_lag_s, max(ts) AS last_ts
        FROM answered LEFT JOIN lp_landed USING (request_id)
        GROUP BY bucket ORDER BY bucket""").df()
    stray = int(con.execute("""SELECT count(*) FROM lp_landed l WHERE NOT EXISTS (
        SELECT 1 FROM lp_sent s WHERE s.request_id = l.request_id)""").fetchone()[0])
    table["missing"] = table["expected"] - table["found"]
    table["completeness"] = table["found"] / table["expected"]
    table["start_s"] = table["bucket"] - t0
    table["end_s"] = table["start_s"] + bucket_s
    return table, n_blocked, stray


def _throttled(firehose: pd.DataFrame | None, lo: float, hi: float) -> float | None:
    """ThrottledRecords of the datapoints whose period's middle lies in [lo, hi): a
    period starting a hair before a bucket (GetMetricData labels are truncated to the
    millisecond) still counts in the bucket it covers."""
    if firehose is None or firehose.empty:
        return None
    middle = firehose["ts"] + (firehose["period_s"] / 2 if "period_s" in firehose else 0)
    part = firehose.loc[(firehose["metric"] == "ThrottledRecords") & (middle >= lo)
                        & (middle < hi)]
    return float(part["value"].sum())


def _label(row: Any) -> str:
    return f"+{row.start_s:.0f}-{row.end_s:.0f} s"


def evaluate(ctx: Context, cfg: Any, done: Mapping[str, list[CheckResult]]) -> list[CheckResult]:
    run_dir = Path(ctx.run.run_dir)
    need = float(cfg["min_completeness"])
    fresh_max = cfg.get("max_freshness_s")
    bucket_s = int(cfg.get("bucket_s", 60))
    name = "api logs: completeness"
    base = {"check": KIND, "threshold": need, "comparison": ">=", "unit": "ratio"}
    summary_path = run_dir / "api_logs" / "collect.json"
    if not summary_path.exists():
        return [CheckResult(name, verdict=SKIPPED, reason="API logs were not collected "
                            "(api_logs/collect.json missing: run `peakready collect`)",
                            figure=None, **base)]
    summary = json.loads(summary_path.read_text())
    failed = {k: q.get("reason", "") for k, q in (summary.get("queries") or {}).items()
              if q.get("state") != "SUCCEEDED"}
    if "ids" in failed:
        return [CheckResult(name, verdict=INCONCLUSIVE,
                            reason=f"could not be verified: {failed['ids']}", figure=None,
                            evidence={"queries": summary.get("queries")}, **base)]
    firehose = _read(run_dir / "api_logs" / "firehose.parquet")
    got = _tables(ctx, run_dir, bucket_s, fresh_max)
    if isinstance(got, str):
        return [CheckResult(name, verdict=SKIPPED, reason=got, figure=None, **base)]
    table, n_blocked, blocked_from, stray = got
    if table.empty:
        return [CheckResult(name, verdict=SKIPPED, reason="no request the storefront "
                            "answered in this run", figure=None, **base)]
    upto = summary.get("caught_up_to")
    lag = float((summary.get("config") or {}).get("producer_lag_s") or 0.0)
    # final once delivery caught up with the bucket's last request as Firehose received
    # it, up to the producer's lag later (the run's last bucket ends with the load, not at
    # its full length)
    table["final"] = (table["last_ts"] + lag <= upto) if upto is not None else False
    table["throttled"] = [_throttled(firehose, b, b + bucket_s) for b in table["bucket"]]
    figure = _figure(run_dir, table, need)
    final = table.loc[table["final"]]
    short = final.loc[final["completeness"] < need]
    found, expected = int(table["found"].sum()), int(table["expected"].sum())
    throttled_total = _throttled(firehose, -np.inf, np.inf)
    evidence = {
        "expected": expected, "found": found, "missing": expected - found,
        "duplicates": int(table["duplicates"].sum()), "throttled_records": throttled_total,
        "caught_up_to": upto, "producer_lag_s": lag, "bucket_s": bucket_s,
        # answered by the WAF, so not owed a record (ids from the WAF log, or 403s)
        "blocked_at_edge": n_blocked, "blocked_from": blocked_from,
        # records no load request explains: no X-Request-Id (peakready's own look-ups,
        # other clients) or an id the samples do not have
        "records_not_from_load": stray,
        "buckets": [{"start_s": round(r.start_s, 1), "expected": int(r.expected),
                     "found": int(r.found), "completeness": round(float(r.completeness), 5),
                     "duplicates": int(r.duplicates), "throttled": r.throttled,
                     "final": bool(r.final)} for r in table.itertuples()],
        "athena": {k: {f: q.get(f) for f in ("id", "state", "rows", "scanned_bytes",
                                             "engine_ms", "reason")}
                   for k, q in (summary.get("queries") or {}).items()}}
    overall = found / expected
    out = []
    if not short.empty:
        worst = short.sort_values("completeness").iloc[0]
        throttled = sum(t or 0 for t in short["throttled"])
        why = (f"{len(short)} of {len(table)} buckets below {need:.1%}: "
               + ", ".join(f"{_label(r)} {r.completeness:.1%} ({int(r.missing)} missing"
                           + (f", ThrottledRecords {r.throttled:.0f}" if r.throttled else "")
                           + ")" for r in short.itertuples())
               + (f"; {throttled:.0f} records throttled by Firehose in those buckets"
                  if throttled else ""))
        out.append(CheckResult(name, verdict=FAIL, reason=why,
                               measured=float(worst["completeness"]), evidence=evidence,
                               figure=figure, **base))
    elif len(final) < len(table):
        pending = table.loc[~table["final"]]
        out.append(CheckResult(
            name, verdict=INCONCLUSIVE, measured=overall, evidence=evidence, figure=figure,
            reason=f"delivery has not caught up with {len(pending)} bucket(s) "
                   f"({', '.join(_label(r) for r in pending.itertuples())}; delivered up to "
                   + (f"+{upto - ctx.run.t0:.0f} s" if upto is not None else "an unknown time")
                   + (f", less {lag:g} s producer lag" if lag else "")
                   + "): re-run `peakready collect` once the pipeline has delivered", **base))
    else:
        out.append(CheckResult(
            name, verdict=PASS, measured=float(final["completeness"].min()), evidence=evidence,
            figure=figure, reason=f"{found} of {expected} request ids landed "
                                  f"({overall:.2%}); worst bucket "
                                  f"{float(final['completeness'].min()):.2%}", **base))
    if fresh_max:
        out.append(_freshness(table, firehose, float(fresh_max), evidence, figure))
    return out


def _tables(ctx: Context, run_dir: Path, bucket_s: int, fresh_max: float | None
            ) -> tuple[pd.DataFrame, int, str, int] | str:
    """(per-bucket table, ids the WAF answered, where that came from, landed records no
    sample explains), or why there is nothing to judge. A run analysed out of core joins
    its ids with the landed records in DuckDB; a small one in pandas, as always."""
    from analysis.samplestore import DuckStore

    landed_path = run_dir / "api_logs" / "landed.parquet"
    if ctx.run.sample_frame is None and isinstance(ctx.store, DuckStore):
        shards = sent_shards(run_dir / "samples")
        if not landed_path.exists():
            return "api_logs/landed.parquet missing"
        if not shards:
            return "no samples with a request_id (recorded before the column existed?)"
        log_ids = _waf_log_ids(run_dir)
        table, n_blocked, stray = per_bucket_out_of_core(
            ctx.store.con, shards, landed_path, ctx.run.t0, bucket_s, fresh_max, log_ids)
        return table, n_blocked, "status 403" if log_ids is None else "WAF log", stray
    landed = _read(landed_path)
    sent = sent_requests(run_dir / "samples")
    if sent.empty or landed is None:
        return ("no samples with a request_id (recorded before the column existed?)"
                if landed is not None else "api_logs/landed.parquet missing")
    landed = landed.assign(request_id=landed["request_id"].fillna("").astype(str))
    blocked, blocked_from = blocked_at_edge(run_dir, sent)
    table = per_bucket(sent, landed, ctx.run.t0, bucket_s, fresh_max, blocked)
    stray = int((~landed["request_id"].isin(sent["request_id"])).sum())
    return table, len(blocked), blocked_from, stray


def _freshness(table: pd.DataFrame, firehose: pd.DataFrame | None, bound: float,
               evidence: dict, figure: str | None) -> CheckResult:
    name = "api logs: freshness"
    base = {"check": KIND, "threshold": bound, "comparison": "<=", "unit": "s"}
    lag = table["max_lag_s"].max()
    fresh = None
    if firehose is not None and not firehose.empty:
        part = firehose.loc[firehose["metric"] == "DeliveryToS3.DataFreshness", "value"]
        fresh = float(part.max()) if len(part) else None
    measured = max(v for v in (lag, fresh) if v is not None and np.isfinite(v)) \
        if any(v is not None and np.isfinite(v) for v in (lag, fresh)) else None
    ev = {"max_landing_lag_s": lag, "max_data_freshness_s": fresh,
          "late_records": int(table["late"].sum())}
    if measured is None:
        return CheckResult(name, verdict=SKIPPED, reason="no landing time and no "
                           "DataFreshness datapoint", evidence=ev, figure=None, **base)
    late = table.loc[table["max_lag_s"] > bound]
    if measured > bound:
        return CheckResult(name, verdict=FAIL, measured=measured, evidence=ev, figure=figure,
                           reason=f"records landed up to {lag:.1f} s after the request "
                                  f"(DataFreshness max {fresh if fresh is not None else '-'} s)"
                                  f" > {bound:g} s; {int(table['late'].sum())} late records in "
                                  f"{', '.join(_label(r) for r in late.itertuples()) or '-'}",
                           **base)
    return CheckResult(name, verdict=PASS, measured=measured, evidence=ev, figure=figure,
                       reason=f"worst landing lag {lag:.1f} s, DataFreshness max "
                              f"{fresh if fresh is not None else '-'} s (<= {bound:g} s)", **base)


def _figure(run_dir: Path, table: pd.DataFrame, need: float) -> str | None:
    """Completeness per bucket beside the load: requests answered vs ids landed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.6), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 2]})
    width = float(table["end_s"].iloc[0] - table["start_s"].iloc[0]) * 0.8
    top.bar(table["start_s"], table["expected"], width=width, align="edge",
            color="#c7d3e3", label="requests answered (load)")
    top.bar(table["start_s"], table["found"], width=width * 0.6, align="edge",
            color="#2f6db5", label="request ids landed (Athena)")
    top.set_ylabel("requests")
    top.legend(loc="upper left", fontsize=8)
    colors = ["#2f6db5" if f else "#999999" for f in table["final"]]
    bottom.scatter(table["start_s"] + width / 2, table["completeness"], c=colors, zorder=3)
    bottom.plot(table["start_s"] + width / 2, table["completeness"], color="#2f6db5", lw=1)
    bottom.axhline(need, color="#c0392b", ls="--", lw=1, label=f"min {need:.1%}")
    bottom.set_ylabel("completeness")
    bottom.set_xlabel("s after load start (grey: delivery not caught up)")
    bottom.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = run_dir / FIGURE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=90)
    except OSError:
        return None
    finally:
        plt.close(fig)
    return FIGURE


register(CheckKind(KIND, validate, evaluate, order=95))
