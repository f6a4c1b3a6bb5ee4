"""The run folder: the contract between the engine and analysis (see docs/run-folder.md).

Only paths and ``run.json`` bookkeeping live here, so every writer (load, run, collect)
and every reader (analysis) agrees on names without importing each other.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peakready.errors import BadInput

RUN_JSON = "run.json"
PLAN_YAML = "plan.yaml"
SAMPLES_DIR = "samples"
ORDERS_DIR = "orders"
CHAOS_DIR = "chaos"
CHAOS_STATE_DIR = f"{CHAOS_DIR}/state"  # what a fault changed, for its rollback
LOCUST_DIR = "locust"
FIGURES_DIR = "figures"
INTEGRITY_DIR = "integrity"
LIVE_STATUS = "live.json"
METRICS = "metrics.parquet"
EVENTS = "events.parquet"
LOGS_DIR = "logs"
SHIPPED = "shipped.json"  # what each distributed worker sent (runfolder_schema.SHIPPED_*)
WORKER_BUNDLE = "worker-bundle.json"  # what the master hands a `peakready worker`
SPOOL_DIR = "spool"  # local workers' own folders (as on other hosts); shipped from
WORKERS_STATUS = "workers.json"  # master: connected workers, takeovers (live, atomically)

DEFAULT_REPORTS_DIR = Path("reports")


def new_run_id(label: str = "run") -> str:
    """Sortable and unique: UTC timestamp, label, a short random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{label}-{secrets.token_hex(2)}"


def create(reports_dir: Path | str = DEFAULT_REPORTS_DIR, label: str = "run") -> Path:
    """Make ``reports/<run-id>/`` with its sub-folders and a ``run.json`` in state running."""
    run_dir = Path(reports_dir) / new_run_id(label)
    try:
        for sub in (SAMPLES_DIR, ORDERS_DIR, CHAOS_DIR, LOCUST_DIR, LOGS_DIR):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"reports dir {reports_dir}: cannot create a run folder there "
                       f"({exc.strerror or exc})") from None
    write_run_json(
        run_dir,
        {
            "run_id": run_dir.name,
            "label": label,
            "status": "running",
            "started_at": time.time(),
            "ended_at": None,
            "versions": versions(),
        },
    )
    return run_dir


def versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("peakready", "locust", "chaostoolkit", "chaostoolkit-lib", "chaostoolkit-aws",
                 "boto3", "moto", "pandas"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def read_run_json(run_dir: Path | str) -> dict[str, Any]:
    path = Path(run_dir) / RUN_JSON
    if not path.exists():
        return {}
    return json.loads(path.read_text())


def write_run_json(run_dir: Path | str, data: dict[str, Any]) -> None:
    """Atomic replace, so a reader (or a kill) never sees half a file."""
    write_json_atomic(Path(run_dir) / RUN_JSON, data)


def update_run_json(run_dir: Path | str, **fields: Any) -> dict[str, Any]:
    data = read_run_json(run_dir)
    data.update(fields)
    write_run_json(run_dir, data)
    return data


def read_json(path: Path | str) -> Any | None:
    """A JSON file written by ``write_json_atomic`` (e.g. ``live.json``), or None when it is
    missing or unreadable: callers decide whether no data is a failure."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)
