"""``analyze``: run folder in, verdict.json / report.html / summary.md / junit.xml /
figures out. The one place that touches the file system for outputs."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import checks as checks_mod
from analysis import figures, report, stats
from analysis import phases as phases_mod
from analysis.load import Run, is_run_folder, load_run
from analysis.samplestore import TIMELINE_REL_ERROR
from peakready import runfolder
from peakready.errors import EXIT_ABORTED, EXIT_CHECK_FAILED, EXIT_PASSED, BadInput

SCHEMA = "peakready.verdict/1"


def require_run_folder(run_dir: Path | str, what: str = "RUN_DIR") -> Path:
    path = Path(run_dir)
    if not is_run_folder(path):
        raise BadInput(f"{what} {path}: not a run folder (no run.json and no samples/)")
    return path


def plan_errors(plan: dict[str, Any]) -> list[str]:
    return phases_mod.validate(plan.get("phases")) + checks_mod.validate(plan.get("checks"))


def analyze(run_dir: Path | str, baseline_dir: Path | str | None = None) -> dict[str, Any]:
    """Build and write every output; return the verdict dict (``exit_code`` inside)."""
    started = time.perf_counter()
    path = require_run_folder(run_dir)
    base_path = require_run_folder(baseline_dir, "--baseline") if baseline_dir else None
    run = load_run(path)
    errors = plan_errors(run.plan)
    if errors:
        raise BadInput(f"{path / runfolder.PLAN_YAML}: {errors[0]}"
                       + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    ctx = checks_mod.context(run, load_run(base_path) if base_path is not None else None)
    windows = phases_mod.windows(run, ctx.phases, ctx.faults)
    plan_checks = run.plan.get("checks")
    ctx.prefetch(checks_mod.DEFAULT_CHECKS if plan_checks is None else plan_checks,
                 list(zip(windows["start_s"], windows["end_s"], strict=True)))
    checked = checks_mod.evaluate(ctx, run.plan.get("checks"))
    comparison = next((r.evidence for r in checked if r.check == "regression"), None)
    results = [r.to_dict() for r in checked]
    table = stats.per_window(run.store, windows, run.t0, ctx.profile,
                             window_stats=ctx.window_frame)
    images = draw(run, ctx, results, comparison)
    verdict = build(run, ctx, results, table, comparison, sorted(images))
    verdict["analysis_seconds"] = round(time.perf_counter() - started, 3)
    write_outputs(path, verdict, images)
    return verdict


def draw(run: Run, ctx: checks_mod.Context, results: list[dict[str, Any]],
         comparison: dict[str, Any] | None) -> dict[str, bytes]:
    width = stats.bin_width(max(run.duration_s, 1.0))
    ts = stats.timeseries(run.store, run.t0, width, ctx.profile, run.duration_s)
    lines = checks_mod.slo_lines(run.plan.get("checks"))
    slo = sorted({(x.label, x.value) for x in lines if x.metric == "latency_ms"},
                 key=lambda x: x[1])
    max_err = min((x.value for x in lines if x.metric == "error_rate"), default=None)
    args = (ts, ctx.phases, ctx.faults, run.events, run.metrics, run.t0, slo, max_err)
    images = {checks_mod.TIMELINE_FIG: figures.timeline(*args)}
    by_fault = {r["evidence"].get("fault"): r for r in results if r["check"] == "recovery"}
    for fault in ctx.faults.itertuples():
        rec = by_fault.get(fault.name)
        after = (rec or {}).get("measured")
        end = fault.start_s + max(after or 0.0, fault.end_s - fault.start_s)
        lo, hi = max(0.0, fault.start_s - 20.0), min(run.duration_s, end + 30.0)
        fine = stats.timeseries(run.store, run.t0, stats.bin_width(hi - lo, 120), ctx.profile,
                                run.duration_s, run.t0 + lo, run.t0 + hi)
        marks = [(fault.start_s + after, f" recovered +{after:g} s")] if after else []
        images[checks_mod.fault_figure(fault.name)] = figures.timeline(
            fine, ctx.phases, ctx.faults, run.events, run.metrics, run.t0, slo, max_err,
            xlim=(lo, hi), title=f"Fault {fault.name} ({fault.kind}, window from "
            f"{fault.source})", marks=marks)
    if comparison is not None and any(i["ci_low"] is not None for i in comparison["items"]):
        images["figures/regression.png"] = figures.regression_chart(comparison)
    for r in results:  # figures a check kind drew itself (log_pipeline's api-logs.png)
        name = r.get("figure")
        if name and name not in images and (Path(run.run_dir) / name).is_file():
            images[name] = (Path(run.run_dir) / name).read_bytes()
    return images


def build(run: Run, ctx: checks_mod.Context, results: list[dict[str, Any]], table: pd.DataFrame,
          comparison: dict[str, Any] | None, figure_names: list[str]) -> dict[str, Any]:
    """The versioned, machine-readable verdict (verdict.json)."""
    counts = {k: sum(r["verdict"] == k for r in results)
              for k in ("pass", "fail", "skipped", "inconclusive")}
    failed = [r for r in results if r["verdict"] == "fail"]
    status = run.status
    if status == "aborted":
        word, code = "aborted", EXIT_ABORTED
    elif failed:
        word, code = "fail", EXIT_CHECK_FAILED
    elif status != "completed" or counts["pass"] == 0:
        # nothing evaluated proves nothing: a gate must not pass on no evidence
        word, code = "incomplete", EXIT_CHECK_FAILED
    else:
        word, code = "pass", EXIT_PASSED
    return {
        "schema": SCHEMA,
        "run_id": run.meta.get("run_id") or run.run_dir.name,
        "plan_name": run.plan.get("name"),
        "status": status,
        "incomplete": run.incomplete,
        "problems": run.problems,
        "verdict": word,
        "exit_code": code,
        "headline": _headline(word, results, failed, run),
        "summary": {"checks": len(results), "passed": counts["pass"], "failed": counts["fail"],
                    "skipped": counts["skipped"], "inconclusive": counts["inconclusive"]},
        "started": datetime.fromtimestamp(run.t0, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "t0": run.t0,
        "duration_s": round(run.duration_s, 3),
        "requests": run.requests,
        "load_model": (run.settings or {}).get("load_model") or run.meta.get("load_model")
        or "open",
        "takeovers": list(((run.meta.get("load") or {}).get("takeovers")) or []),
        "engine": run.store.engine if run.store is not None else "memory",
        "timeline_percentiles": "exact" if run.store is None or run.store.exact_timeline else
        f"log-bucket histogram, within {TIMELINE_REL_ERROR:.1%} of the exact value",
        "phase_source": str(ctx.phases["source"].iloc[0]) if len(ctx.phases) else "none",
        "phases": checks_mod.clean(ctx.phases.to_dict("records")),
        "faults": _fault_rows(ctx.faults, results),
        "checks": results,
        "table": checks_mod.clean(table.to_dict("records")),
        "regression": comparison and checks_mod.clean(comparison),
        "figures": figure_names,
        "versions": run.meta.get("versions") or {},
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _headline(word: str, results: list[dict[str, Any]], failed: list[dict[str, Any]],
              run: Run) -> str:
    if word == "aborted":
        return f"Aborted by a stop condition: {run.meta.get('abort_reason') or 'no reason given'}."
    if failed:
        first = "; ".join(f"{r['name']} ({r['reason']})" for r in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return f"Not ready: {len(failed)} of {len(results)} checks failed: {first}{more}."
    if word == "incomplete" and run.status == "completed":
        return (f"No check passed (all {len(results)} skipped for lack of evidence or "
                "inconclusive): nothing failed, nothing was proven.")
    if word == "incomplete":
        return f"Incomplete run ({run.status}): no check failed on the data there is, " \
               "but it does not prove readiness."
    skipped = sum(r["verdict"] == "skipped" for r in results)
    return f"Ready: all {len(results) - skipped} evaluated checks passed" + (
        f" ({skipped} skipped for lack of evidence)." if skipped else ".")


def _fault_rows(faults: pd.DataFrame, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per fault with a cell per kind that declares a ``fault_column``."""
    columns = [k for k in checks_mod.REGISTRY.ordered() if k.fault_column]
    rows = []
    for fault in faults.to_dict("records"):
        for kind in columns:
            column, fmt = kind.fault_column
            hit = next((r for r in results if r["check"] == kind.name
                        and r["evidence"].get("fault") == fault["name"]), None)
            fault[column] = hit and (f"{fmt.format(hit['measured'])} ({hit['verdict']})"
                                     if hit["measured"] is not None else hit["reason"])
        fault["figure"] = checks_mod.fault_figure(fault["name"])
        rows.append(checks_mod.clean(fault))
    return rows


def _write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    os.replace(tmp, path)


def write_outputs(run_dir: Path, verdict: dict[str, Any], images: dict[str, bytes]) -> None:
    fig_dir = run_dir / runfolder.FIGURES_DIR
    fig_dir.mkdir(exist_ok=True)
    for stale in fig_dir.glob("*.png"):
        if f"figures/{stale.name}" not in images:
            stale.unlink()
    for name, data in images.items():
        _write(run_dir / name, data)
    _write(run_dir / "verdict.json", json.dumps(verdict, indent=2, default=str,
                                                allow_nan=False))
    _write(run_dir / "report.html", report.html(verdict, images))
    _write(run_dir / "summary.md", report.summary_md(verdict))
    _write(run_dir / "junit.xml", report.junit_xml(verdict))
