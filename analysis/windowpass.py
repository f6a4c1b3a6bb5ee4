"""Exact statistics of many windows in two passes over the shards (DuckDB), however many
windows: the out-of-core answer to ``SampleStore.window`` and ``slo_bins`` for every window
the checks and the report will ask, computed before they ask (``DuckStore.prefetch``).

Why not one grouped ``quantile_cont`` per window: an exact percentile sorts its window's
values, so ten windows over a 100M-sample run sorted about 300M values (136 s in
benchmarks/README.md), and recovery's 5-s windows from each fault's start to the end of the
run sorted the run again per fault. Here the run is scanned twice, whatever the windows:

1. Cut the time axis at every window boundary into segments (each sample is in exactly one
   segment, found by a binary search written as nested ``CASE``), and count the successful
   requests per segment, endpoint and log bucket of the response time (buckets 0.4% wide),
   with the counts, errors and maxima per segment and endpoint. A window is a run of
   segments, so its histogram is a difference of prefix sums. The histogram tells which
   bucket holds the order statistics a percentile interpolates between (rank
   ``floor(q (n-1))`` and the next, numpy's and ``quantile_cont``'s linear method) and
   their rank inside the bucket.
2. Fetch only the samples of those buckets (a few per thousand of the run) and take the
   exact order statistics from them.

The numbers are the in-memory path's (``tests/analysis/test_outofcore.py``): the bucket of a
value is the same expression in both passes, and only integers (bucket, segment) select
rows, never a float compared with a rounded one. Two families of windows: ``windows`` are
answered per endpoint and for ``*``, plain and corrected (the table, latency, error rate,
capacity); ``grids`` (recovery's fixed windows, many and short) for ``*`` and plain
response time only, so their many segments do not multiply by endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

GAMMA = 1.004
"""Bucket width of pass 1: only speed depends on it (rows fetched in pass 2 against
histogram size), never a number."""
NONPOS = -1_000_000
"""The bucket of a response time <= 0."""
K_OFF = 1 << 20
K_SPAN = 1 << 21


@dataclass(frozen=True)
class Grid:
    """Fixed windows ``[starts[j], starts[j] + width)`` (absolute epoch seconds) whose
    requests, error rate and ``q`` percentile of successful requests are asked."""

    starts: tuple[float, ...]
    width: float
    q: float


def _lit(x: float) -> str:
    x = float(x)
    return f"{x!r}::DOUBLE" if np.isfinite(x) else f"'{x!r}'::DOUBLE"


def segment_sql(col: str, bounds: np.ndarray) -> str:
    """The index ``j`` of ``bounds[j] <= col < bounds[j+1]`` (NULL outside), as a balanced
    tree of ``CASE`` (log2 of the segments comparisons per row)."""

    def node(a: int, b: int) -> str:
        if b - a == 1:
            return str(a)
        m = (a + b) // 2
        return f"CASE WHEN {col} < {_lit(bounds[m])} THEN {node(a, m)} ELSE {node(m, b)} END"

    return (f"CASE WHEN {col} >= {_lit(bounds[0])} AND {col} < {_lit(bounds[-1])} "
            f"THEN {node(0, len(bounds) - 1)} END")


def bucket_sql(value: str) -> str:
    return (f"CASE WHEN {value} > 0 THEN round(ln({value}) / {float(np.log(GAMMA))!r})::BIGINT "
            f"ELSE {NONPOS} END")


def compute(con: Any, endpoints: list[tuple[str, str]], windows: Sequence[tuple[float, float]],
            qs: Sequence[float], grids: Sequence[Grid], lag: bool,
            ) -> tuple[dict[tuple[float, float], pd.DataFrame], list[pd.DataFrame]]:
    """``windows``' frames as ``DuckStore.window`` gives them (keyed by ``(lo, hi)``) and
    ``grids``' frames as ``DuckStore.slo_bins`` does, from view ``s`` on ``con``."""
    windows = sorted(set(windows))
    qs = list(qs)
    f_bounds = np.unique(np.asarray([x for w in windows for x in w], dtype=float))
    g_lo = [np.asarray(g.starts, dtype=float) for g in grids]
    s_bounds = np.unique(np.concatenate([np.concatenate([lo, lo + g.width])
                                         for g, lo in zip(grids, g_lo, strict=True)])
                         ) if grids else np.zeros(0)
    use_f, use_s = len(f_bounds) >= 2 and bool(endpoints), len(s_bounds) >= 2
    empty = pd.DataFrame({"requests": np.zeros(0, dtype=np.int64), "error_rate": [], "p": []})
    if not use_f and not use_s:  # nothing to scan for: the stores' own answers
        return {}, [empty.copy() for _ in grids]
    ne = len(endpoints)
    con.execute("CREATE OR REPLACE TEMP TABLE wp_ep (m VARCHAR, n VARCHAR, e INTEGER)")
    if endpoints:
        con.executemany("INSERT INTO wp_ep VALUES (?, ?, ?)",
                        [(m, n, i) for i, (m, n) in enumerate(endpoints)])
    edges = np.concatenate([b for b, use in ((f_bounds, use_f), (s_bounds, use_s)) if use])
    corr = "rt_ms + lag_ms" if lag else "rt_ms"
    base = f"""SELECT {segment_sql('ts', f_bounds) if use_f else 'NULL::INTEGER'} AS sf,
            {segment_sql('ts', s_bounds) if use_s else 'NULL::INTEGER'} AS ss,
            wp_ep.e AS e, ok, lag_ms AS lag, rt_ms AS rt, {corr} AS cr,
            {bucket_sql('rt_ms')} AS k,
            {bucket_sql(corr) if lag else 'NULL::BIGINT'} AS kc
        FROM s JOIN wp_ep USING (m, n)
        WHERE ts >= {_lit(edges.min())} AND ts < {_lit(edges.max())}"""
    sets = []
    if use_f:
        sets += ["(sf, e, ok, k)"] + (["(sf, e, ok, kc)"] if lag else [])
    if use_s:
        sets.append("(ss, ok, k)")
    cols = [("sf", use_f), ("ss", use_s), ("kc", use_f and lag)]
    flags = ", ".join(f"grouping({c}) AS g_{c}" if on else f"1 AS g_{c}" for c, on in cols)
    pick = ", ".join(c if on else f"NULL AS {c}" for c, on in cols)
    e_col = "e" if use_f else "NULL AS e"
    hist = con.execute(f"""SELECT {pick}, {e_col}, ok, k, {flags}, count(*) AS n,
            max(lag) AS lag_max, max(rt) AS rt_max, max(cr) AS cr_max
        FROM ({base}) GROUP BY GROUPING SETS ({', '.join(sets)})""").df()
    need: dict[str, set[int]] = {"fa": set(), "fe": set(), "ca": set(), "ce": set(), "s": set()}
    fam_f = _Family(hist, f_bounds, windows, ne, lag, qs, need) if use_f else None
    fam_s = _Grids(hist, s_bounds, grids, g_lo, need) if use_s else None
    rows = _fetch(con, base, ne, need)
    out_w = fam_f.frames(rows, endpoints) if fam_f is not None else {}
    out_g = fam_s.frames(rows) if fam_s is not None else [empty.copy() for _ in grids]
    return out_w, out_g


def _fetch(con: Any, base: str, ne: int, need: dict[str, set[int]]) -> dict[str, np.ndarray]:
    """Pass 2: the successful samples whose (segment, [endpoint,] bucket) some percentile
    needs."""
    keys = {"fa": f"sf::BIGINT * {K_SPAN} + (k + {K_OFF})",
            "fe": f"(sf::BIGINT * {max(ne, 1)} + e) * {K_SPAN} + (k + {K_OFF})",
            "ca": f"sf::BIGINT * {K_SPAN} + (kc + {K_OFF})",
            "ce": f"(sf::BIGINT * {max(ne, 1)} + e) * {K_SPAN} + (kc + {K_OFF})",
            "s": f"ss::BIGINT * {K_SPAN} + (k + {K_OFF})"}
    clauses = []
    buckets = {"k": sorted({x % K_SPAN - K_OFF for n in ("fa", "fe", "s") for x in need[n]}),
               "kc": sorted({x % K_SPAN - K_OFF for n in ("ca", "ce") for x in need[n]})}
    # the few needed buckets first (a constant list: cheap), so the key look-ups below run
    # on a small fraction of the rows
    pre = " OR ".join(f"{col} IN ({', '.join(map(str, ks))})" for col, ks in buckets.items()
                      if ks)
    for name, expr in keys.items():
        if need[name]:
            con.register(f"wp_need_{name}", pd.DataFrame(
                {"key": np.fromiter(need[name], dtype=np.int64, count=len(need[name]))}))
            clauses.append(f"({expr}) IN (SELECT key FROM wp_need_{name})")
    if not clauses:
        return {c: np.zeros(0) for c in ("sf", "ss", "e", "k", "kc", "rt", "cr")}
    got = con.execute(f"""SELECT sf, ss, e, k, kc, rt, cr FROM ({base}) WHERE ok AND
        ({pre}) AND ({' OR '.join(clauses)})""").df()
    return {c: got[c].astype("float64").to_numpy() for c in got.columns}


def _ranks(n: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's linear method: rank ``floor(q (n-1))``, the next one, and the fraction."""
    pos = q * (n - 1)
    lo = np.floor(pos)
    return lo.astype(np.int64), np.minimum(lo + 1, n - 1).astype(np.int64), pos - lo


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy.quantile's interpolation, the same expression (it matters at 1e-16)."""
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)


def _locate(cum: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``cum`` (cumulative bucket counts): the bucket holding ``rank`` and the
    rank inside it."""
    idx = (cum <= rank[:, None]).sum(axis=1)
    before = np.where(idx > 0, np.take_along_axis(cum, np.maximum(idx - 1, 0)[:, None],
                                                  axis=1)[:, 0], 0)
    return idx, rank - before


class _Values:
    """The fetched samples of one value column, indexed by bucket."""

    def __init__(self, rows: dict[str, np.ndarray], bucket: str, value: str, seg: str) -> None:
        k = rows[bucket]
        keep = ~np.isnan(rows[seg]) & ~np.isnan(k) if len(k) else np.zeros(0, dtype=bool)
        order = np.argsort(k[keep], kind="stable")
        self.k = k[keep][order].astype(np.int64)
        self.seg = rows[seg][keep][order].astype(np.int64)
        self.e = rows["e"][keep][order].astype(np.int64)
        self.v = rows[value][keep][order]

    def nth(self, bucket: int, a: int, b: int, e: int | None, rank: int) -> float:
        lo, hi = np.searchsorted(self.k, [bucket, bucket + 1])
        seg, v = self.seg[lo:hi], self.v[lo:hi]
        mask = (seg >= a) & (seg < b)
        if e is not None:
            mask &= self.e[lo:hi] == e
        return float(np.partition(v[mask], rank)[rank])


class _Family:
    """The per-endpoint windows: pass-1 histograms as dense prefix sums over segments."""

    def __init__(self, hist: pd.DataFrame, bounds: np.ndarray,
                 windows: list[tuple[float, float]], ne: int, lag: bool, qs: list[float],
                 need: dict[str, set[int]]) -> None:
        self.windows, self.ne, self.lag, self.qs = windows, ne, lag, qs
        nseg = len(bounds) - 1
        part = hist.loc[(hist["g_sf"] == 0) & hist["sf"].notna()]
        plain = part.loc[part["g_kc"] == 1]
        seg = plain["sf"].to_numpy(np.int64)
        e = plain["e"].to_numpy(np.int64)
        ok = plain["ok"].to_numpy(bool)
        n = plain["n"].to_numpy(np.int64)
        self.req = np.zeros((nseg, ne), dtype=np.int64)
        self.nok = np.zeros((nseg, ne), dtype=np.int64)
        np.add.at(self.req, (seg, e), n)
        np.add.at(self.nok, (seg[ok], e[ok]), n[ok])
        self.maxes = {}
        for col, rows in (("lag_all", np.ones(len(ok), bool)), ("lag_ok", ok), ("rt", ok),
                          ("cr", ok)):
            arr = np.full((nseg, ne), -np.inf)
            src = plain["lag_max" if col.startswith("lag") else f"{col}_max"].to_numpy(float)
            np.maximum.at(arr, (seg[rows], e[rows]), src[rows])
            self.maxes[col] = arr
        self.a = np.searchsorted(bounds, [w[0] for w in windows])
        self.b = np.maximum(self.a, np.searchsorted(bounds, [w[1] for w in windows]))
        self.kinds = {"rt": self._hist(plain.loc[ok], "k", nseg)}
        if lag:
            corr = part.loc[(part["g_kc"] == 0) & part["ok"].astype(bool)]
            self.kinds["cr"] = self._hist(corr, "kc", nseg)
        self.targets: list[tuple[str, int, int, int, int, int]] = []
        for kind, (kvals, cum) in self.kinds.items():
            tag = "f" if kind == "rt" else "c"
            per = cum[self.b] - cum[self.a]  # (windows, ne, K)
            per = np.concatenate([per, per.sum(axis=1, keepdims=True)], axis=1)
            nw, ne1, nk = per.shape
            flat = per.reshape(nw * ne1, nk)
            tot = flat.sum(axis=1)
            cumk = np.cumsum(flat, axis=1)
            ranks = set()
            for q in qs:
                lo, hi, _ = _ranks(tot, q)
                ranks.update(zip(np.flatnonzero(tot > 0), lo[tot > 0], strict=True))
                ranks.update(zip(np.flatnonzero(tot > 0), hi[tot > 0], strict=True))
            if not ranks:
                continue
            rows_i = np.asarray([r[0] for r in ranks])
            rank = np.asarray([r[1] for r in ranks])
            idx, within = _locate(cumk[rows_i], rank)
            for row, rk, kidx, wr in zip(rows_i, rank, idx, within, strict=True):
                w, ep = divmod(int(row), ne1)
                k = int(kvals[kidx])
                self.targets.append((kind, w, ep, int(rk), k, int(wr)))
                for sg in range(self.a[w], self.b[w]):
                    if ep == ne:
                        need[tag + "a"].add(sg * K_SPAN + k + K_OFF)
                    else:
                        need[tag + "e"].add((sg * max(ne, 1) + ep) * K_SPAN + k + K_OFF)

    def _hist(self, rows: pd.DataFrame, col: str, nseg: int) -> tuple[np.ndarray, np.ndarray]:
        kvals, kidx = np.unique(rows[col].to_numpy(np.int64), return_inverse=True)
        h = np.zeros((nseg + 1, self.ne, max(len(kvals), 1)), dtype=np.int64)
        np.add.at(h, (rows["sf"].to_numpy(np.int64) + 1, rows["e"].to_numpy(np.int64), kidx),
                  rows["n"].to_numpy(np.int64))
        return kvals, np.cumsum(h, axis=0)

    def frames(self, rows: dict[str, np.ndarray], endpoints: list[tuple[str, str]]
               ) -> dict[tuple[float, float], pd.DataFrame]:
        vals = {"rt": _Values(rows, "k", "rt", "sf")}
        if self.lag:
            vals["cr"] = _Values(rows, "kc", "cr", "sf")
        nth: dict[tuple[str, int, int, int], float] = {}
        for kind, w, ep, rk, k, wr in self.targets:
            nth[(kind, w, ep, rk)] = vals[kind].nth(k, self.a[w], self.b[w],
                                                    None if ep == self.ne else ep, wr)
        labels = [f"{m} {n}" for m, n in endpoints] + ["*"]
        out = {}
        for w, key in enumerate(self.windows):
            a, b = self.a[w], self.b[w]
            req = self.req[a:b].sum(axis=0)
            nok = self.nok[a:b].sum(axis=0)
            req, nok = np.append(req, req.sum()), np.append(nok, nok.sum())
            mx = {c: self._max(arr[a:b]) for c, arr in self.maxes.items()}
            data: dict[str, Any] = {"requests": req, "errors": req - nok, "ok": nok,
                                    "max_lag_ms": mx["lag_all"], "max_lag_ok_ms": mx["lag_ok"],
                                    "rt_max": mx["rt"],
                                    "corr_max": mx["cr"] if self.lag else mx["rt"]}
            for q in self.qs:
                lo, hi, t = _ranks(nok, q)
                for kind, col in (("rt", "rt"), ("cr", "corr")):
                    src = kind if kind in self.kinds else "rt"
                    va = np.array([nth.get((src, w, ep, int(lo[ep])), np.nan)
                                   for ep in range(self.ne + 1)])
                    vb = np.array([nth.get((src, w, ep, int(hi[ep])), np.nan)
                                   for ep in range(self.ne + 1)])
                    data[f"{col}_{q:.6g}"] = np.where(nok > 0, _lerp(va, vb, t), np.nan)
            frame = pd.DataFrame(data, index=pd.Index(labels, name="endpoint"))
            out[key] = frame.loc[frame["requests"] > 0].sort_index().astype(float)
        return out

    def _max(self, arr: np.ndarray) -> np.ndarray:
        per = arr.max(axis=0) if len(arr) else np.full(self.ne, -np.inf)
        per = np.append(per, per.max() if len(per) else -np.inf)
        return np.where(np.isfinite(per), per, np.nan)


class _Grids:
    """Recovery's fixed windows: ``*`` only, plain response time."""

    def __init__(self, hist: pd.DataFrame, bounds: np.ndarray, grids: Sequence[Grid],
                 starts: list[np.ndarray], need: dict[str, set[int]]) -> None:
        self.grids = grids
        nseg = len(bounds) - 1
        part = hist.loc[(hist["g_ss"] == 0) & hist["ss"].notna()]
        seg = part["ss"].to_numpy(np.int64)
        ok = part["ok"].to_numpy(bool)
        n = part["n"].to_numpy(np.int64)
        self.req = np.zeros(nseg + 1, dtype=np.int64)
        np.add.at(self.req, seg + 1, n)
        self.req = np.cumsum(self.req)
        kvals, kidx = np.unique(part["k"].to_numpy(np.int64)[ok], return_inverse=True)
        h = np.zeros((nseg + 1, max(len(kvals), 1)), dtype=np.int64)
        np.add.at(h, (seg[ok] + 1, kidx), n[ok])
        cum = np.cumsum(h, axis=0)
        self.spans = []
        self.targets: list[tuple[int, int, int, int, int]] = []
        for g, (grid, lo_abs) in enumerate(zip(grids, starts, strict=True)):
            a = np.searchsorted(bounds, lo_abs)
            b = np.maximum(a, np.searchsorted(bounds, lo_abs + grid.width))
            self.spans.append((a, b))
            per = cum[b] - cum[a]
            tot = per.sum(axis=1)
            have = np.flatnonzero(tot > 0)
            if not len(have):
                continue
            cumk = np.cumsum(per[have], axis=1)
            lo, hi, _ = _ranks(tot[have], grid.q)
            for rank in (lo, hi):
                idx, within = _locate(cumk, rank)
                for j, rk, kx, wr in zip(have, rank, idx, within, strict=True):
                    k = int(kvals[kx])
                    self.targets.append((g, int(j), int(rk), k, int(wr)))
                    for sg in range(a[j], b[j]):
                        need["s"].add(sg * K_SPAN + k + K_OFF)
        self.ok_cum = np.cumsum(np.concatenate([[0], np.bincount(seg[ok], weights=n[ok],
                                                                 minlength=nseg)]))

    def frames(self, rows: dict[str, np.ndarray]) -> list[pd.DataFrame]:
        vals = _Values(rows, "k", "rt", "ss")
        nth = {(g, j, rk): vals.nth(k, self.spans[g][0][j], self.spans[g][1][j], None, wr)
               for g, j, rk, k, wr in self.targets}
        out = []
        for g, grid in enumerate(self.grids):
            a, b = self.spans[g]
            req = self.req[b] - self.req[a]
            nok = (self.ok_cum[b] - self.ok_cum[a]).astype(np.int64)
            lo, hi, t = _ranks(nok, grid.q)
            va = np.array([nth.get((g, j, int(r)), np.nan) for j, r in enumerate(lo)])
            vb = np.array([nth.get((g, j, int(r)), np.nan) for j, r in enumerate(hi)])
            frame = pd.DataFrame({"requests": req.astype(np.int64)})
            frame["error_rate"] = np.where(req > 0, 1.0 - nok / np.maximum(req, 1), np.nan)
            frame["p"] = np.where(nok > 0, _lerp(va, vb, t), np.nan)
            out.append(frame)
        return out
