"""Data integrity, the network edge: look every confirmed order up through the storefront.

The run engine calls ``verify_orders`` after the load and before the sandbox goes down.
Each order the storefront confirmed during the run (``orders/*.jsonl``) is fetched with
``GET {base_url}/api/orders/{order_id}``; the outcome goes to ``integrity/orders.parquet``
(docs/run-folder.md), which the ``integrity`` check reads. A 404 means the order is gone
(lost in a failover); a 5xx or a connection error is retried, then recorded as it is so
analysis can tell "missing" from "could not be checked".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
import requests

from peakready import runfolder
from peakready.errors import BadInput

INTEGRITY_FILE = "orders.parquet"
RETRY_STATUSES = {0, 429, 500, 502, 503, 504}


def confirmed_orders(run_dir: Path) -> pd.DataFrame:
    """``order_id`` and ``confirmed_ts`` of every confirmed order, first confirmation kept;
    a torn last line (a writer killed mid-line) is skipped. A clean file (the usual case,
    millions of lines) is parsed by pyarrow in one go, line by line only when torn."""
    frames = []
    for path in sorted((run_dir / runfolder.ORDERS_DIR).glob("*.jsonl")):
        try:
            table = pa_json.read_json(path)
            if "order_id" in table.column_names:
                frame = pd.DataFrame({"order_id": table["order_id"].to_pandas().astype(str),
                                      "confirmed_ts": table["ts"].to_pandas().fillna(0.0)
                                      .astype(float) if "ts" in table.column_names else 0.0})
                frames.append(frame.loc[~frame["order_id"].isin(["", "None", "nan"])])
            continue
        except (pa.ArrowException, OSError):
            pass
        rows = []
        for line in path.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and item.get("order_id") not in (None, ""):
                rows.append((str(item["order_id"]), float(item.get("ts") or 0.0)))
        frames.append(pd.DataFrame(rows, columns=["order_id", "confirmed_ts"]))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        {"order_id": pd.Series([], dtype=str), "confirmed_ts": pd.Series([], dtype=float)})
    return frame.drop_duplicates("order_id").reset_index(drop=True)


class RateLimit:
    """At most ``per_s`` calls per second across threads: the lookup after the run must
    never become a load test of its own (the storefront may still be recovering)."""

    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s if per_s > 0 else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        with self.lock:
            now = time.monotonic()
            slot = max(self.next, now)
            self.next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


def lookup(session: requests.Session, base_url: str, order_id: str, timeout_s: float,
           attempts: int = 3, backoff_s: float = 0.5) -> int:
    """HTTP status of the order lookup (0 = no response), retrying transient failures."""
    url = f"{base_url.rstrip('/')}/api/orders/{quote(order_id, safe='')}"
    status = 0
    for attempt in range(attempts):
        try:
            status = session.get(url, timeout=timeout_s).status_code
        except requests.RequestException:
            status = 0
        if status not in RETRY_STATUSES:
            return status
        if attempt + 1 < attempts:
            time.sleep(backoff_s * (attempt + 1))
    return status


def verify_orders(run_dir: Path | str, base_url: str, timeout_s: float = 5.0,
                  concurrency: int = 8, max_rps: float = 200.0,
                  progress: Callable[[int, int], None] | None = None,
                  progress_every_s: float = 5.0) -> pd.DataFrame:
    """Look every confirmed order up; write and return ``integrity/orders.parquet``.

    ``concurrency`` lookups at a time, at most ``max_rps`` per second (1M orders at 200/s
    take 83 min: raise it for a production-size storefront); ``progress(done, total)`` is
    called every ``progress_every_s`` and at the end."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"verify: {run_dir} is not a run folder")
    if not base_url or not base_url.startswith(("http://", "https://")):
        raise BadInput(f"verify: storefront URL {base_url!r} must start with http:// or https://")
    orders = confirmed_orders(run_dir)
    limit = RateLimit(max_rps)
    done, last = 0, time.monotonic()
    statuses: list[int] = []
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency,
                                                pool_maxsize=concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)

        def one(order_id: str) -> int:
            limit.wait()
            return lookup(session, base_url, order_id, timeout_s)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            # map keeps the order; its queue of futures is bounded by chunks of ids
            ids = orders["order_id"].tolist()
            for start in range(0, len(ids), 10_000):
                for status in pool.map(one, ids[start:start + 10_000]):
                    statuses.append(status)
                    done += 1
                    if progress and time.monotonic() - last >= progress_every_s:
                        progress(done, len(ids))
                        last = time.monotonic()
    if progress:
        progress(done, len(orders))
    result = orders.assign(
        found=[s == 200 for s in statuses],
        status=pd.Series(statuses, dtype="int64"),
        checked_ts=time.time(),
    ).astype({"found": bool, "confirmed_ts": "float64"})
    out_dir = run_dir / runfolder.INTEGRITY_DIR
    out_dir.mkdir(exist_ok=True)
    tmp = out_dir / f".{INTEGRITY_FILE}.tmp"
    result.to_parquet(tmp, index=False)
    tmp.replace(out_dir / INTEGRITY_FILE)
    return result
