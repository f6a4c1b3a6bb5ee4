"""The short summary ``peakready load`` prints: read back from the run folder, so it
shows what was recorded, not what was intended."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from peakready import runfolder
from peakready.runfolder_schema import SAMPLE_COLUMNS


def read_samples(run_dir: Path | str) -> pd.DataFrame:
    """All complete shards of a run (temporary files of a shard being written are skipped)."""
    shards = sorted((Path(run_dir) / runfolder.SAMPLES_DIR).glob("*.parquet"))
    if not shards:
        return pd.DataFrame(columns=SAMPLE_COLUMNS)
    return pd.concat((pd.read_parquet(s) for s in shards), ignore_index=True)


def count_orders(run_dir: Path | str) -> int:
    return sum(sum(1 for line in p.open() if line.strip())
               for p in (Path(run_dir) / runfolder.ORDERS_DIR).glob("*.jsonl"))


def summarize(run_dir: Path | str) -> dict:
    run_dir = Path(run_dir)
    samples = read_samples(run_dir)
    settings_path = run_dir / "settings.json"
    settings = json.loads(settings_path.read_text()) if settings_path.exists() else {}
    run = runfolder.read_run_json(run_dir)
    out = {"run_dir": str(run_dir), "status": run.get("status"),
           "requests": len(samples), "orders": count_orders(run_dir),
           "target_requests": settings.get("total_arrivals"),
           "workers": sorted(samples["worker"].unique().tolist()) if len(samples) else [],
           "load_model": settings.get("load_model") or run.get("load_model") or "open",
           "user_cap_hit": (run.get("load") or {}).get("user_cap_hit"),
           "max_users_seen": (run.get("load") or {}).get("max_users_seen")}
    if len(samples):
        span = max(samples["ts"].max() - samples["ts"].min(), 1e-9)
        lag = samples["ts"] - samples["intended_ts"]
        out.update({
            "achieved_rps": round(len(samples) / span, 2),
            "error_rate": round(1 - samples["ok"].mean(), 4),
            "p50_ms": round(samples["rt_ms"].quantile(0.50), 1),
            "p95_ms": round(samples["rt_ms"].quantile(0.95), 1),
            "p99_ms": round(samples["rt_ms"].quantile(0.99), 1),
            "max_start_lag_ms": round(lag.max() * 1000, 1),
        })
    if out["status"] != "completed":
        out["locust_error"] = locust_error(run_dir)
    return out


CLOSED_NOTE = ("CLOSED-MODEL: the locustfile's own pacing with a fixed user pool; coordinated "
               "omission possible, offered rate not guaranteed")


def locust_error(run_dir: Path | str) -> str:
    """The last error line Locust wrote (its own words), so a failed start is explained on
    the terminal and not only in ``logs/``."""
    for out in sorted((Path(run_dir) / runfolder.LOGS_DIR).glob("locust*.out")):
        lines = [line.strip() for line in out.read_text(errors="replace").splitlines()]
        errors = [line for line in lines if line and ("error" in line.lower()
                                                      or line.startswith("Traceback"))]
        if errors:
            return f"{out.name}: {errors[-1][:300]}"
    return ""


def format_summary(s: dict) -> str:
    lines = [f"run folder   {s['run_dir']}  ({s['status']})",
             f"requests     {s['requests']} recorded of {s.get('target_requests')} scheduled, "
             f"{s['orders']} orders confirmed, workers {', '.join(s['workers']) or '-'}"]
    if s["requests"]:
        lines += [f"rate         {s['achieved_rps']} req/s; errors {s['error_rate']:.2%}",
                  f"latency      p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms, p99 {s['p99_ms']} ms; "
                  f"max start lag {s['max_start_lag_ms']} ms"]
    cap = "HIT: arrivals queued, see intended_ts" if s.get("user_cap_hit") else "not hit"
    lines.append(f"users        max {s.get('max_users_seen')}; user cap {cap}")
    lines.append("model        " + (CLOSED_NOTE if s.get("load_model") == "closed"
                                    else "open (arrivals follow the profile)"))
    if s.get("locust_error"):
        lines.append(f"locust       {s['locust_error']}")
    return "\n".join(lines)
