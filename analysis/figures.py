"""matplotlib figures: the readiness timeline, a zoom per fault, the regression chart.

Each function takes frames and returns PNG bytes, so the same image is written under
``figures/`` and embedded (base64) in report.html.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.load import parse_detail  # noqa: E402

FAULT_COLORS = {"db": "#d62728", "cache": "#9467bd", "instance": "#ff7f0e", "other": "#8c564b"}
PHASE_SHADES = ("#f7f7f7", "#ececec")


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _capacity_series(metrics: pd.DataFrame, t0: float) -> dict[str, pd.DataFrame]:
    out = {}
    for metric, label in (("GroupInServiceInstances", "in service"),
                          ("HealthyHostCount", "healthy"),
                          ("GroupDesiredCapacity", "desired")):
        sel = metrics.loc[metrics["metric"] == metric]
        if len(sel):
            out[label] = (sel.groupby("ts", as_index=False)["value"].max()
                          .assign(t_s=lambda d: d["ts"] - t0).sort_values("t_s"))
    return out


def timeline(ts: pd.DataFrame, phases: pd.DataFrame, faults: pd.DataFrame,
             events: pd.DataFrame, metrics: pd.DataFrame, t0: float,
             slo_ms: list[tuple[str, float]], max_error_rate: float | None,
             xlim: tuple[float, float] | None = None, title: str = "Readiness timeline",
             marks: list[tuple[float, str]] | None = None) -> bytes:
    """Offered vs achieved RPS with capacity; p50/p95/p99 with SLO lines; error rate;
    fault windows as bands, scaling activities and alarms as markers."""
    fig, (ax_rps, ax_lat, ax_err) = plt.subplots(3, 1, figsize=(12, 8.5), sharex=True,
                                                 layout="constrained",
                                                 gridspec_kw={"height_ratios": [1.2, 1.2, 0.8]})
    x = ts["t_s"] + (ts["t_s"].diff().median() if len(ts) > 1 else 1.0) / 2
    ax_rps.plot(x, ts["offered_rps"], color="#555555", ls="--", lw=1.2, label="offered")
    ax_rps.plot(x, ts["rps"], color="#1f77b4", lw=1.3, label="achieved (all)")
    ax_rps.plot(x, ts["ok_rps"], color="#2ca02c", lw=1.0, label="achieved (ok)")
    ax_rps.set_ylabel("requests / s")
    capacity = _capacity_series(metrics, t0)
    if capacity:
        ax_cap = ax_rps.twinx()
        for (label, frame), color in zip(capacity.items(), ("#17becf", "#bcbd22", "#7f7f7f"),
                                         strict=False):
            ax_cap.step(frame["t_s"], frame["value"], where="post", color=color, lw=1.2,
                        alpha=0.9, label=f"instances {label}")
        ax_cap.set_ylabel("instances")
        ax_cap.set_ylim(bottom=0, top=max(f["value"].max() for f in capacity.values()) * 1.6 + 1)
        ax_cap.legend(loc="upper right", fontsize=8)
    ax_rps.legend(loc="upper left", fontsize=8)
    for col, color in (("p50_ms", "#2ca02c"), ("p95_ms", "#1f77b4"), ("p99_ms", "#9467bd")):
        ax_lat.plot(x, ts[col], color=color, lw=1.1, label=col.removesuffix("_ms"))
    if "p95_corrected_ms" in ts and (ts["p95_corrected_ms"] - ts["p95_ms"]).abs().max() > 1:
        ax_lat.plot(x, ts["p95_corrected_ms"], color="#1f77b4", ls=":", lw=1.1,
                    label="p95 from intended start")
    merged: dict[float, list[str]] = {}
    for label, value in slo_ms:
        merged.setdefault(value, []).append(label)
    for value, names in merged.items():
        ax_lat.axhline(value, color="#d62728", ls="--", lw=1)
        ax_lat.annotate(f"SLO {', '.join(names)} {value:g} ms", (1.0, value), xycoords=("axes fraction",
                        "data"), ha="right", va="bottom", fontsize=8, color="#d62728")
    positive = ts[["p50_ms", "p95_ms", "p99_ms"]].to_numpy()
    if np.isfinite(positive).any() and np.nanmin(positive) > 0:
        ax_lat.set_yscale("log")
        ax_lat.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax_lat.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_lat.set_ylabel("latency ms (ok requests)")
    ax_lat.legend(loc="upper left", fontsize=8)
    ax_err.plot(x, ts["error_rate"] * 100, color="#d62728", lw=1.2, label="error rate")
    if max_error_rate is not None:
        ax_err.axhline(max_error_rate * 100, color="#d62728", ls="--", lw=1)
    ax_err.set_ylabel("errors %")
    ax_err.set_xlabel("seconds since load start")
    ax_err.set_ylim(bottom=0)
    for ax in (ax_rps, ax_lat, ax_err):
        _decorate(ax, phases, faults, ax is ax_rps, xlim)
        ax.grid(alpha=0.3)
    _events(ax_rps, ax_err, events, t0, xlim)
    for t, label in marks or []:
        for ax in (ax_rps, ax_lat, ax_err):
            ax.axvline(t, color="#2ca02c", lw=1.5)
        ax_err.annotate(label, (t, 1.0), xycoords=("data", "axes fraction"), fontsize=8,
                        color="#2ca02c", ha="left", va="top")
    if xlim:
        ax_err.set_xlim(*xlim)
    fig.suptitle(title)
    return _png(fig)


def _decorate(ax: plt.Axes, phases: pd.DataFrame, faults: pd.DataFrame, labels: bool,
              xlim: tuple[float, float] | None) -> None:
    def visible(t: float) -> bool:
        return xlim is None or xlim[0] <= t <= xlim[1]

    for i, ph in enumerate(phases.itertuples()):
        ax.axvspan(ph.start_s, ph.end_s, color=PHASE_SHADES[i % 2], zorder=0)
        if labels and visible((ph.start_s + ph.end_s) / 2):
            ax.annotate(ph.name, ((ph.start_s + ph.end_s) / 2, 1.01),
                        xycoords=("data", "axes fraction"), ha="center", va="bottom",
                        fontsize=8, color="#444444")
    for fault in faults.itertuples():
        color = FAULT_COLORS.get(fault.kind, FAULT_COLORS["other"])
        end = max(fault.end_s, fault.start_s + 0.5)
        ax.axvspan(fault.start_s, end, color=color, alpha=0.25, zorder=1)
        if labels and visible(fault.start_s):
            ax.annotate(fault.name, (fault.start_s, 0.97), xycoords=("data", "axes fraction"),
                        fontsize=8, color=color, rotation=90, va="top", ha="right")


def _events(ax_top: plt.Axes, ax_bottom: plt.Axes, events: pd.DataFrame, t0: float,
            xlim: tuple[float, float] | None) -> None:
    scaling = events.loc[events["kind"] == "scaling_activity", "ts"] - t0
    for t in scaling:
        ax_top.axvline(t, color="#17becf", ls="-.", lw=1)
    if len(scaling):
        ax_top.plot([], [], color="#17becf", ls="-.", label="scaling activity")
    alarms = events.loc[events["kind"] == "alarm_state"]
    to_alarm = [t - t0 for t, d in zip(alarms["ts"], alarms["detail"], strict=True)
                if parse_detail(d).get("to") == "ALARM"
                and (xlim is None or xlim[0] <= t - t0 <= xlim[1])]
    if to_alarm:
        ax_bottom.plot(to_alarm, [0] * len(to_alarm), "^", color="#d62728", ms=9,
                       clip_on=False, label="alarm -> ALARM")
        ax_bottom.legend(loc="upper left", fontsize=8)
    if len(scaling):
        ax_top.legend(loc="upper left", fontsize=8)


def regression_chart(comparison: dict[str, Any]) -> bytes:
    """Change per endpoint and metric with its interval against the practical margin."""
    items = [i for i in comparison["items"] if i["relative"] and i["ci_low"] is not None]
    metrics = sorted({i["metric"] for i in items})
    endpoints = sorted({i["endpoint"] for i in items}, key=lambda e: (e != "*", e))
    fig, ax = plt.subplots(figsize=(11, 0.3 * max(4, len(endpoints) * len(metrics)) + 1.5),
                           layout="constrained")
    y = 0
    ticks, labels = [], []
    colors = {"regression": "#d62728", "inconclusive": "#ff7f0e", "pass": "#2ca02c"}
    for endpoint in endpoints:
        for metric in metrics:
            item = next((i for i in items if i["endpoint"] == endpoint and i["metric"] == metric),
                        None)
            if item is None:
                continue
            c = colors.get(item.get("verdict"), "#555555")
            ax.errorbar(item["change"] * 100, y, xerr=[[max(0, (item["change"] - item["ci_low"])
                                                         * 100)],
                                                       [max(0, (item["ci_high"] - item["change"])
                                                            * 100)]],
                        fmt="o", color=c, capsize=3)
            ticks.append(y)
            labels.append(f"{endpoint} {metric}")
            y += 1
    ax.axvline(0, color="#555555", lw=1)
    ax.axvline(comparison["margin"] * 100, color="#d62728", ls="--", lw=1,
               label=f"margin +{comparison['margin']:.0%}")
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"change vs baseline, % ({comparison['confidence']:.0%} interval)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(f"Latency change vs baseline {comparison['baseline']}: "
                 f"{comparison['verdict']}")
    return _png(fig)
