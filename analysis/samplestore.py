"""The aggregate questions analysis asks of a run's samples, answered in memory (pandas,
numpy: a run that fits, exactly as before) or out of core (DuckDB over the parquet shards:
a campaign-scale run, 100M samples in a few GiB).

Both answer the same questions with the same numbers: counts, error rates and **exact**
percentiles (linear interpolation, numpy's default and DuckDB's ``quantile_cont``) per
window and endpoint; only the timeline figure's per-bin percentiles are approximate out of
core (a log-bucket histogram, at most ``TIMELINE_REL_ERROR`` relative error), which the
report says. Why DuckDB and not pyarrow streaming: an exact percentile of a window needs
its values together, and DuckDB's holistic aggregates sort per group with a memory limit
and spill to disk, scan only the columns and row groups a window needs (the shards' ts
statistics), and run the per-window, per-endpoint table as one grouped query
(benchmarks/README.md has the measurements).
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.stats import binned_quantiles, window_slice

ALL = "*"
TIMELINE_GAMMA = 1.004
TIMELINE_REL_ERROR = (TIMELINE_GAMMA - 1) / 2
"""Out of core, a timeline bin's percentile is read from buckets of relative width 0.4%:
the bucket's midpoint is within 0.2% of every value in it, so the interpolated percentile
is within 0.2% of the exact one."""


def qkey(q: float) -> str:
    return f"{q:.6g}"


EPKEY = "CASE WHEN grouping(m) = 1 THEN '*' ELSE m || ' ' || n END"
"""The endpoint label of a row grouped by ``GROUPING SETS ((m, n), ())``."""
WINDOW_COLUMNS = ["requests", "errors", "ok", "max_lag_ms", "max_lag_ok_ms", "rt_max",
                  "corr_max"]


class SampleStore:
    """What a check may ask about samples without holding them (see the module docstring).
    ``window`` answers per endpoint and for ``*``; times are epoch seconds."""

    engine = "memory"
    exact_timeline = True

    @property
    def rows(self) -> int:
        raise NotImplementedError

    def endpoints(self) -> list[str]:
        raise NotImplementedError

    def prefetch(self, windows: Sequence[tuple[float, float]], qs: Sequence[float],
                 grids: Sequence[tuple[np.ndarray, float, float]] = ()) -> None:
        """Windows (``window``) and grids (``slo_bins`` of ``*``: absolute starts, width,
        q) that will be asked: a store that scans per question answers them all at once.
        In memory each question is a slice of the frame already, so nothing to do."""

    def window(self, lo: float, hi: float, qs: Sequence[float]) -> pd.DataFrame:
        """Index ``endpoint`` (``*`` included): ``WINDOW_COLUMNS`` plus ``rt_<q>`` and
        ``corr_<q>`` (percentiles of successful requests, plain and from the intended
        start) for each ``q`` in ``qs``; no row for an endpoint without requests."""
        raise NotImplementedError

    def slo_bins(self, t0: float, starts: np.ndarray, width: float, q: float,
                 endpoint: str = ALL) -> pd.DataFrame:
        """Fixed windows ``[t0 + start, t0 + start + width)`` (``starts`` evenly spaced by
        ``width``): ``requests``, ``error_rate`` and the ``q`` percentile of successful
        requests (``p``)."""
        raise NotImplementedError

    def top_errors(self, lo: float, hi: float, endpoint: str, k: int) -> dict[str, int]:
        raise NotImplementedError

    def outcomes(self, lo: float, hi: float, endpoint: str = ALL) -> pd.DataFrame:
        """Requests per ``endpoint``, ``status`` and ``error`` in the window (column ``n``;
        few rows: a check counts what it looks for, a WAF's 403s, a search tier's 429s,
        with its own predicate on this frame instead of on every sample)."""
        raise NotImplementedError

    def users(self, lo: float, hi: float, endpoint: str | None = None, ok: bool | None = None,
              error_prefix: str | None = None) -> pd.Series:
        """Requests per user (index: user) among the window's requests to ``endpoint``,
        ``ok`` or not, whose error starts with ``error_prefix`` (None: any)."""
        raise NotImplementedError

    def timeseries(self, t0: float, width: float, n_bins: int, lo: float | None = None,
                   hi: float | None = None) -> pd.DataFrame:
        """Per bin from ``t0``: requests, ok, scheduled (by intended start), p50/p95/p99 of
        successful requests and their corrected p95 (``stats.timeseries`` adds rates)."""
        raise NotImplementedError

    def scheduled_per_second(self, t0: float) -> np.ndarray:
        raise NotImplementedError

    def span(self) -> tuple[float | None, float | None]:
        """(first start, intended or actual; last end = ts + rt)."""
        raise NotImplementedError

    def side(self, endpoint: str, qs: Sequence[float], edges: tuple[float, float, int],
             rng: np.random.Generator, cap: int) -> dict[str, Any]:
        """One run's side of a baseline comparison for ``endpoint``: ``n``, ``n_ok``,
        exact ``quantiles`` of successful requests, a uniform ``sample`` (ts, rt) of at most
        ``cap`` successful requests and per time block (``edges``: t0, width, n) ``block_n``
        and ``block_err`` over all requests."""
        raise NotImplementedError


class MemoryStore(SampleStore):
    """The samples frame of ``analysis.load`` (sorted by ts): today's exact arithmetic."""

    def __init__(self, samples: pd.DataFrame) -> None:
        self.frame = samples

    @property
    def rows(self) -> int:
        return len(self.frame)

    def endpoints(self) -> list[str]:
        return sorted(str(e) for e in self.frame["endpoint"].cat.categories)

    def part(self, lo: float, hi: float, endpoint: str = ALL) -> pd.DataFrame:
        part = window_slice(self.frame, lo, hi)
        return part if endpoint == ALL else part.loc[part["endpoint"] == endpoint]

    def window(self, lo: float, hi: float, qs: Sequence[float]) -> pd.DataFrame:
        part = self.part(lo, hi)
        rows = {ALL: _summary(part, qs)} if len(part) else {}
        for endpoint, group in part.groupby("endpoint", observed=True, sort=True):
            rows[str(endpoint)] = _summary(group, qs)
        return pd.DataFrame.from_dict(rows, orient="index")

    def slo_bins(self, t0: float, starts: np.ndarray, width: float, q: float,
                 endpoint: str = ALL) -> pd.DataFrame:
        rows = []
        for start in starts:
            part = self.part(t0 + start, t0 + start + width, endpoint)
            ok = part["rt_ms"].to_numpy()[part["ok"].to_numpy()]
            count = len(part)
            rows.append((count, float(1 - len(ok) / count) if count else float("nan"),
                         float(np.quantile(ok, q)) if len(ok) else float("nan")))
        return pd.DataFrame(rows, columns=["requests", "error_rate", "p"])

    def top_errors(self, lo: float, hi: float, endpoint: str, k: int) -> dict[str, int]:
        part = self.part(lo, hi, endpoint)
        return part.loc[~part["ok"], "error"].astype(str).value_counts().head(k).to_dict()

    def outcomes(self, lo: float, hi: float, endpoint: str = ALL) -> pd.DataFrame:
        part = self.part(lo, hi, endpoint)
        got = (part.assign(endpoint=part["endpoint"].astype(str), error=part["error"].astype(str))
               .groupby(["endpoint", "status", "error"], sort=True).size())
        return got.rename("n").reset_index()

    def users(self, lo: float, hi: float, endpoint: str | None = None, ok: bool | None = None,
              error_prefix: str | None = None) -> pd.Series:
        part = self.part(lo, hi)
        mask = np.ones(len(part), dtype=bool)
        if endpoint is not None:
            mask &= (part["endpoint"] == endpoint).to_numpy()
        if ok is not None:
            mask &= part["ok"].to_numpy() == ok
        if error_prefix is not None:
            mask &= part["error"].astype(str).str.startswith(error_prefix).to_numpy()
        return part.loc[mask, "user"].astype(str).value_counts()

    def timeseries(self, t0: float, width: float, n_bins: int, lo: float | None = None,
                   hi: float | None = None) -> pd.DataFrame:
        s = self.frame if lo is None else window_slice(self.frame, lo, hi)
        bins = np.floor((s["ts"].to_numpy() - t0) / width).astype(np.int64)
        keep = (bins >= 0) & (bins < n_bins)
        bins = bins[keep]
        rt = s["rt_ms"].to_numpy()[keep]
        corrected = rt + s["lag_ms"].to_numpy()[keep]
        ok = s["ok"].to_numpy()[keep]
        sched = np.floor((s["intended_ts"].to_numpy() - t0) / width).astype(np.int64)
        sched = sched[(sched >= 0) & (sched < n_bins)]
        out = pd.DataFrame({"requests": np.bincount(bins, minlength=n_bins).astype(float),
                            "ok": np.bincount(bins, weights=ok, minlength=n_bins),
                            "scheduled": np.bincount(sched, minlength=n_bins).astype(float)})
        for q, values in binned_quantiles(bins[ok], rt[ok], n_bins, (0.5, 0.95, 0.99)).items():
            out[f"p{int(q * 100)}_ms"] = values
        out["p95_corrected_ms"] = binned_quantiles(bins[ok], corrected[ok], n_bins,
                                                   (0.95,))[0.95]
        return out

    def scheduled_per_second(self, t0: float) -> np.ndarray:
        intended = self.frame["intended_ts"].to_numpy() - t0
        return np.bincount(np.clip(intended, 0, None).astype(int)) if len(intended) else \
            np.zeros(0, dtype=np.int64)

    def span(self) -> tuple[float | None, float | None]:
        s = self.frame
        if not len(s):
            return None, None
        return (float(min(s["intended_ts"].min(), s["ts"].min())),
                float((s["ts"] + s["rt_ms"] / 1000.0).max()))

    def side(self, endpoint: str, qs: Sequence[float], edges: tuple[float, float, int],
             rng: np.random.Generator, cap: int) -> dict[str, Any]:
        s = self.frame
        ts, rt, ok = s["ts"].to_numpy(), s["rt_ms"].to_numpy(), s["ok"].to_numpy()
        if endpoint != ALL:
            cats = s["endpoint"].cat.categories
            mask = s["endpoint"].cat.codes.to_numpy() == (cats.get_loc(endpoint)
                                                           if endpoint in cats else -2)
            ts, rt, ok = ts[mask], rt[mask], ok[mask]
        ok_ts, ok_rt = ts[ok], rt[ok]
        pick = np.sort(rng.choice(len(ok_rt), size=cap, replace=False)) if len(ok_rt) > cap \
            else np.arange(len(ok_rt))
        blocks = block_index(ts, edges)
        return {"n": len(ts), "n_ok": len(ok_rt),
                "quantiles": (np.quantile(ok_rt, list(qs)) if len(ok_rt) and len(qs)
                              else np.full(len(qs), np.nan)),
                "sample_ts": ok_ts[pick], "sample_rt": ok_rt[pick],
                "block_n": np.bincount(blocks, minlength=edges[2]),
                "block_err": np.bincount(blocks, weights=~ok, minlength=edges[2])}


def block_index(ts: np.ndarray, edges: tuple[float, float, int]) -> np.ndarray:
    t0, width, n = edges
    return np.clip(((ts - t0) / width).astype(np.int64), 0, n - 1)


def _summary(part: pd.DataFrame, qs: Sequence[float]) -> dict[str, float]:
    ok = part["ok"].to_numpy()
    rt = part["rt_ms"].to_numpy()[ok]
    lag = part["lag_ms"].to_numpy()
    corrected = rt + lag[ok]
    out = {"requests": len(part), "errors": int(len(part) - ok.sum()), "ok": int(ok.sum()),
           "max_lag_ms": float(lag.max()) if len(lag) else float("nan"),
           "max_lag_ok_ms": float(lag[ok].max()) if ok.any() else float("nan"),
           "rt_max": float(rt.max()) if len(rt) else float("nan"),
           "corr_max": float(corrected.max()) if len(rt) else float("nan")}
    for q in qs:
        out[f"rt_{qkey(q)}"] = float(np.quantile(rt, q)) if len(rt) else float("nan")
        out[f"corr_{qkey(q)}"] = float(np.quantile(corrected, q)) if len(rt) else float("nan")
    return out


class DuckStore(SampleStore):
    """DuckDB over the shards: nothing of the samples is held between questions.

    ``threads`` and ``memory_limit`` (``PEAKREADY_DUCKDB_THREADS``,
    ``PEAKREADY_DUCKDB_MEMORY``; default 2 and 2GB) bound what a query may take; beyond
    the limit DuckDB spills to a temporary directory."""

    engine = "duckdb"
    exact_timeline = False

    def __init__(self, shards: list[Path], columns: set[str], rows: int) -> None:
        import duckdb

        self._rows = rows
        self._windows: dict[tuple[float, float], tuple[pd.DataFrame, set[str]]] = {}
        self._grids: dict[Any, pd.DataFrame] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="peakready-duckdb-")
        self.con = duckdb.connect(config={
            "threads": int(os.environ.get("PEAKREADY_DUCKDB_THREADS", "2")),
            "memory_limit": os.environ.get("PEAKREADY_DUCKDB_MEMORY", "2GB"),
            "temp_directory": self._tmp.name, "preserve_insertion_order": False})
        self.con.execute("SET enable_progress_bar = false")
        files = "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in shards) + "]"

        def col(name: str, default: str) -> str:
            return f'"{name}"' if name in columns else default

        ts, its = '"ts"', f"coalesce({col('intended_ts', 'NULL')}, ts)"
        ok = (f"coalesce({col('ok', 'NULL')}, {col('status', '0')} BETWEEN 200 AND 399)")
        src = (f"read_parquet({files}, union_by_name = true)" if shards else
               "(SELECT NULL::DOUBLE AS ts, NULL::DOUBLE AS rt_ms WHERE false)")
        self.con.execute(f"""CREATE VIEW raw AS SELECT {ts} AS ts, {its} AS its,
            coalesce({col('method', "''")}, '') || ' ' || coalesce({col('name', "''")}, '')
                AS endpoint,
            coalesce({col('method', "''")}, '') AS m, coalesce({col('name', "''")}, '') AS n,
            {ok} AS ok, rt_ms, greatest((ts - {its}) * 1000.0, 0.0) AS lag_ms,
            coalesce({col('status', '0')}, 0) AS status,
            coalesce({col('error', "''")}, '') AS error,
            coalesce({col('user', "''")}, '') AS usr,
            coalesce({col('attack', "''")}, '') AS attack,
            {col('worker', "''")} AS worker, {col('method', "''")} AS method,
            {col('name', "''")} AS name, {col('bytes', 'NULL')} AS bytes
            FROM {src}""")
        self.con.execute("CREATE VIEW s AS SELECT * FROM raw WHERE attack = ''")

    def q(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self.con.execute(sql, list(params)).df()

    @property
    def rows(self) -> int:
        return self._rows

    def shoppers(self) -> int:
        return int(self._per_endpoint()["rows"].sum())

    def attacks(self) -> pd.DataFrame:
        """The attack requests (few): a frame like ``load.read_samples`` gives."""
        return self.q("""SELECT ts, its AS intended_ts, name, method, status, ok, rt_ms, error,
                         usr AS "user", attack, worker FROM raw WHERE attack <> ''""")

    def endpoints(self) -> list[str]:
        return [f"{m} {n}" for m, n in self.pairs()]

    def pairs(self) -> list[tuple[str, str]]:
        """(method, name) of every endpoint, sorted by their label."""
        got = self._per_endpoint()
        return sorted(zip(got["m"], got["n"], strict=True), key=lambda p: f"{p[0]} {p[1]}")

    def _per_endpoint(self) -> pd.DataFrame:
        """One scan for what several questions start from: the endpoints, the shopper
        count, the span and whether any request lagged its schedule."""
        if not hasattr(self, "_endpoint_rows"):
            self._endpoint_rows = self.q("""SELECT m, n, count(*) AS rows,
                    least(min(its), min(ts)) AS first, max(ts + rt_ms / 1000.0) AS last,
                    max(lag_ms) AS lag FROM s GROUP BY m, n""")
        return self._endpoint_rows

    def prefetch(self, windows: Sequence[tuple[float, float]], qs: Sequence[float],
                 grids: Sequence[tuple[np.ndarray, float, float]] = ()) -> None:
        """Answer ``window`` for every ``(lo, hi)`` of ``windows`` (with ``qs``) and
        ``slo_bins`` for every grid ``(absolute starts, width, q)`` in two passes over the
        shards (``analysis.windowpass``), instead of one scan per window; later calls with
        these arguments are read from memory."""
        from analysis.windowpass import Grid, compute

        todo = [(float(lo), float(hi)) for lo, hi in windows
                if not self._have_window(float(lo), float(hi), qs)]
        todo_g = [Grid(tuple(float(x) for x in starts), float(width), float(q))
                  for starts, width, q in grids]
        todo_g = [g for g in todo_g if g not in self._grids]
        if not todo and not todo_g:
            return
        frames, bins = compute(self.con, self.pairs(), todo, qs, todo_g, self.has_lag())
        for key, frame in frames.items():
            self._windows[key] = (frame, {qkey(q) for q in qs})
        self._grids.update(zip(todo_g, bins, strict=True))

    def _have_window(self, lo: float, hi: float, qs: Sequence[float]) -> bool:
        got = self._windows.get((lo, hi))
        return got is not None and {qkey(q) for q in qs} <= got[1]

    def window(self, lo: float, hi: float, qs: Sequence[float]) -> pd.DataFrame:
        # a window no kind declared (the error budget's): the same two passes, for it alone
        # (an exact quantile_cont over a long window holds all its values: DuckDB's
        # holistic aggregates do not spill)
        if not self._have_window(lo, hi, qs):
            self.prefetch([(lo, hi)], qs)
        if self._have_window(lo, hi, qs):
            return self._windows[(lo, hi)][0].copy()
        columns = WINDOW_COLUMNS + [f"{c}_{qkey(q)}" for q in qs for c in ("rt", "corr")]
        return pd.DataFrame(columns=columns, index=pd.Index([], name="endpoint"), dtype=float)

    def slo_bins(self, t0: float, starts: np.ndarray, width: float, q: float,
                 endpoint: str = ALL) -> pd.DataFrame:
        if endpoint == ALL:
            from analysis.windowpass import Grid

            key = Grid(tuple(float(t0 + x) for x in starts), float(width), float(q))
            if key in self._grids:
                return self._grids[key].copy()
        n = len(starts)
        lo = t0 + float(starts[0]) if n else t0
        where = "" if endpoint == ALL else "AND endpoint = ?"
        got = self.q(f"""SELECT floor((ts - ?) / ?)::BIGINT AS k, count(*) AS requests,
                count(*) FILTER (ok) AS n_ok, quantile_cont(rt_ms, {float(q)!r}) FILTER (ok) AS p
            FROM s WHERE ts >= ? AND ts < ? {where} GROUP BY k""",
                     [lo, width, lo, lo + n * width] + ([endpoint] if where else []))
        out = pd.DataFrame({"requests": np.zeros(n, dtype=np.int64)})
        out["error_rate"], out["p"] = np.nan, np.nan
        got = got.loc[(got["k"] >= 0) & (got["k"] < n)]
        k = got["k"].to_numpy()
        out.loc[k, "requests"] = got["requests"].to_numpy()
        out.loc[k, "error_rate"] = 1.0 - got["n_ok"].to_numpy() / got["requests"].to_numpy()
        out.loc[k, "p"] = got["p"].to_numpy(dtype=float)
        return out

    def top_errors(self, lo: float, hi: float, endpoint: str, k: int) -> dict[str, int]:
        where = "" if endpoint == ALL else "AND endpoint = ?"
        got = self.q(f"""SELECT error, count(*) AS n FROM s WHERE ts >= ? AND ts < ? AND NOT ok
                         {where} GROUP BY error ORDER BY n DESC, error LIMIT {int(k)}""",
                     [lo, hi] + ([endpoint] if where else []))
        return dict(zip(got["error"], got["n"].astype(int), strict=True))

    def outcomes(self, lo: float, hi: float, endpoint: str = ALL) -> pd.DataFrame:
        where = "" if endpoint == ALL else "AND endpoint = ?"
        got = self.q(f"""SELECT m || ' ' || n AS endpoint, status, error, count(*) AS n
                         FROM s WHERE ts >= ? AND ts < ? {where} GROUP BY m, n, status, error
                         ORDER BY endpoint, status, error""",
                     [lo, hi] + ([endpoint] if where else []))
        return got.astype({"status": "int64", "n": "int64"})

    def users(self, lo: float, hi: float, endpoint: str | None = None, ok: bool | None = None,
              error_prefix: str | None = None) -> pd.Series:
        where, params = ["ts >= ?", "ts < ?"], [lo, hi]
        if endpoint is not None:
            where.append("endpoint = ?")
            params.append(endpoint)
        if ok is not None:
            where.append("ok" if ok else "NOT ok")
        if error_prefix is not None:
            where.append("starts_with(error, ?)")
            params.append(error_prefix)
        got = self.q(f"SELECT usr, count(*) AS n FROM s WHERE {' AND '.join(where)} "
                     "GROUP BY usr", params)
        return pd.Series(got["n"].to_numpy(), index=got["usr"].to_numpy(), dtype="int64")

    def timeseries(self, t0: float, width: float, n_bins: int, lo: float | None = None,
                   hi: float | None = None) -> pd.DataFrame:
        lo = t0 if lo is None else max(lo, t0)
        hi = t0 + n_bins * width if hi is None else min(hi, t0 + n_bins * width)
        log_g = float(np.log(TIMELINE_GAMMA))
        bin_of = f"floor((ts - {t0!r}) / {width!r})::BIGINT"

        def bucket(value: str) -> str:
            return (f"CASE WHEN {value} > 0 THEN round(ln({value}) / {log_g!r})::BIGINT "
                    "ELSE -1000000 END")

        lag = self.has_lag()
        # one pass: counts and the plain histogram per (bin, ok, bucket), scheduled starts
        # per bin of intended_ts, the corrected histogram only when some request lagged
        sets = "(b, ok, k), (sb)" + (", (b, ok, kc)" if lag else "")
        g_kc = "kc, grouping(kc)" if lag else "NULL AS kc, 1"
        got = self.q(f"""SELECT b, ok, k, sb, grouping(sb) AS g_sb, {g_kc} AS g_kc,
                count(*) AS n FROM (SELECT {bin_of} AS b, ok, {bucket('rt_ms')} AS k,
                    floor((its - {t0!r}) / {width!r})::BIGINT AS sb,
                    {bucket('rt_ms + lag_ms') if lag else 'NULL::BIGINT'} AS kc
                FROM s WHERE ts >= ? AND ts < ?)
            GROUP BY GROUPING SETS ({sets})""", [lo, hi])
        plain = got.loc[(got["g_sb"] == 1) & (got["g_kc"] == 1)]
        sched = got.loc[got["g_sb"] == 0]
        out = pd.DataFrame({"requests": np.zeros(n_bins), "ok": np.zeros(n_bins),
                            "scheduled": np.zeros(n_bins)})
        plain = plain.loc[(plain["b"] >= 0) & (plain["b"] < n_bins)]
        by_bin = plain.groupby("b")["n"].sum()
        out.loc[by_bin.index.to_numpy(), "requests"] = by_bin.to_numpy(float)
        ok_rows = plain.loc[plain["ok"].astype(bool)]
        ok_bin = ok_rows.groupby("b")["n"].sum()
        out.loc[ok_bin.index.to_numpy(), "ok"] = ok_bin.to_numpy(float)
        sched = sched.loc[(sched["sb"] >= 0) & (sched["sb"] < n_bins)]
        out.loc[sched["sb"].to_numpy(dtype=np.int64), "scheduled"] = sched["n"].to_numpy(float)
        for q, values in _hist_quantiles(ok_rows[["b", "k", "n"]], n_bins, (0.5, 0.95, 0.99),
                                         log_g).items():
            out[f"p{int(q * 100)}_ms"] = values
        if lag:
            corr = got.loc[got["g_kc"] == 0]
            corr = corr.loc[corr["ok"].astype(bool)]
            corr = corr[["b", "kc", "n"]].rename(columns={"kc": "k"})
            out["p95_corrected_ms"] = _hist_quantiles(corr, n_bins, (0.95,), log_g)[0.95]
        else:
            out["p95_corrected_ms"] = out["p95_ms"]
        return out

    def scheduled_per_second(self, t0: float) -> np.ndarray:
        got = self.q(f"""SELECT floor(greatest(its - {t0!r}, 0))::BIGINT AS s, count(*) AS n
                         FROM s GROUP BY 1""")
        if got.empty:
            return np.zeros(0, dtype=np.int64)
        out = np.zeros(int(got["s"].max()) + 1, dtype=np.int64)
        out[got["s"].to_numpy()] = got["n"].to_numpy()
        return out

    def _overview(self) -> tuple[Any, Any, Any]:
        got = self._per_endpoint()
        if got.empty:
            return None, None, None
        return got["first"].min(), got["last"].max(), got["lag"].max()

    def has_lag(self) -> bool:
        """Did any request start later than scheduled? If not, every corrected percentile
        is the plain one and is not computed twice."""
        return bool(self._overview()[2])

    def span(self) -> tuple[float | None, float | None]:
        lo, hi, _ = self._overview()
        return (None if lo is None else float(lo)), (None if hi is None else float(hi))

    def side(self, endpoint: str, qs: Sequence[float], edges: tuple[float, float, int],
             rng: np.random.Generator, cap: int) -> dict[str, Any]:
        key = (tuple(qs), edges, cap)
        if getattr(self, "_sides_key", None) != key:  # every endpoint in three scans
            self._sides, self._sides_key = self._all_sides(qs, edges, rng, cap), key
        empty = {"n": 0, "n_ok": 0, "quantiles": np.full(len(qs), np.nan),
                 "sample_ts": np.zeros(0), "sample_rt": np.zeros(0),
                 "block_n": np.zeros(edges[2], dtype=np.int64), "block_err": np.zeros(edges[2])}
        return self._sides.get(endpoint, empty)

    def _all_sides(self, qs: Sequence[float], edges: tuple[float, float, int],
                   rng: np.random.Generator, cap: int) -> dict[str, dict[str, Any]]:
        t0, width, n_blocks = edges
        blocks = self.q(f"""SELECT {EPKEY} AS endpoint,
                least(greatest(floor((ts - ?) / ?), 0), ?)::BIGINT AS b,
                count(*) AS n, count(*) FILTER (NOT ok) AS err
            FROM s GROUP BY GROUPING SETS ((m, n, b), (b))""", [t0, width, n_blocks - 1])
        out: dict[str, dict[str, Any]] = {}
        for endpoint, part in blocks.groupby("endpoint"):
            block_n = np.zeros(n_blocks, dtype=np.int64)
            block_err = np.zeros(n_blocks)
            block_n[part["b"].to_numpy()] = part["n"].to_numpy()
            block_err[part["b"].to_numpy()] = part["err"].to_numpy(float)
            out[str(endpoint)] = {"n": int(block_n.sum()),
                                  "n_ok": int(block_n.sum() - block_err.sum()),
                                  "block_n": block_n, "block_err": block_err,
                                  "quantiles": np.full(len(qs), np.nan)}
        if len(qs):  # the whole run as one window (exact, two passes, bounded memory)
            whole = self.window(-math.inf, math.inf, qs)
            for endpoint in out:
                if endpoint in whole.index:
                    out[endpoint]["quantiles"] = np.asarray(
                        [whole.loc[endpoint, f"rt_{qkey(q)}"] for q in qs], dtype=float)
        # a uniform sample without replacement per endpoint (and for all): the ``cap``
        # smallest of a seeded hash (bottom-k), pre-filtered to about 3x cap rows each so
        # only those leave DuckDB
        seed = 20_000  # fixed: the comparison's own generator is left as in memory

        def limit(n_ok: int) -> int:
            return min(int(min(1.0, 3.0 * cap / max(n_ok, 1)) * 2.0**64), 2**64 - 1)

        per = {e: limit(v["n_ok"]) for e, v in out.items() if e != ALL}
        if per:
            values = ", ".join(f"('{e.replace(chr(39), chr(39) * 2)}', {lim}::UBIGINT)"
                               for e, lim in per.items())
            cand = self.q(f"""SELECT endpoint, ts, rt_ms, h FROM (SELECT endpoint, ts, rt_ms,
                    hash(ts, rt_ms, {seed}) AS h FROM s WHERE ok) JOIN (VALUES {values})
                    AS t(endpoint, lim) USING (endpoint) WHERE h <= lim""")
        else:
            cand = pd.DataFrame({"endpoint": [], "ts": [], "rt_ms": [], "h": []})
        cand["h"] = cand["h"].astype(np.uint64)
        picks = {e: g for e, g in cand.groupby("endpoint")}
        if ALL in out:
            picks[ALL] = cand.loc[cand["h"] <= np.uint64(limit(out[ALL]["n_ok"]))]
        for endpoint, side in out.items():
            got = picks.get(endpoint, cand.iloc[0:0]).nsmallest(cap, "h").sort_values(
                "ts", kind="stable")
            side["sample_ts"], side["sample_rt"] = got["ts"].to_numpy(), got["rt_ms"].to_numpy()
        return out


def _hist_quantiles(hist: pd.DataFrame, n_bins: int, qs: Sequence[float],
                    log_g: float) -> dict[float, np.ndarray]:
    """Linear-interpolated quantiles per bin from (bin, bucket, count) rows: the order
    statistics around rank ``q*(n-1)`` are read as their bucket's midpoint value."""
    out = {q: np.full(n_bins, np.nan) for q in qs}
    hist = hist.loc[(hist["b"] >= 0) & (hist["b"] < n_bins)].sort_values(["b", "k"])
    if hist.empty:
        return out
    b = hist["b"].to_numpy()
    k = hist["k"].to_numpy()
    value = np.where(k <= -1000000, 0.0, np.exp(k * log_g))
    cum = np.cumsum(hist["n"].to_numpy())
    starts = np.searchsorted(b, np.arange(n_bins), side="left")
    ends = np.searchsorted(b, np.arange(n_bins), side="right")
    before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0)
    total = np.where(ends > starts, cum[np.maximum(ends - 1, 0)] - before, 0)
    have = np.flatnonzero(total > 0)
    for q in qs:
        pos = q * (total[have] - 1)
        lo_r, frac = np.floor(pos), pos - np.floor(pos)
        lo_i = np.searchsorted(cum, before[have] + lo_r, side="right")
        hi_i = np.searchsorted(cum, before[have] + np.minimum(lo_r + 1, total[have] - 1),
                               side="right")
        out[q][have] = value[lo_i] * (1 - frac) + value[hi_i] * frac
    return out
