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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import requests

from peakready import runfolder
from peakready.errors import BadInput

INTEGRITY_FILE = "orders.parquet"
RETRY_STATUSES = {0, 429, 500, 502, 503, 504}


def confirmed_orders(run_dir: Path) -> pd.DataFrame:
    """``order_id`` and ``confirmed_ts`` of every confirmed order, first confirmation kept;
    a torn last line (a writer killed mid-line) is skipped."""
    rows = []
    for path in sorted((run_dir / runfolder.ORDERS_DIR).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and item.get("order_id") not in (None, ""):
                rows.append((str(item["order_id"]), float(item.get("ts") or 0.0)))
    frame = pd.DataFrame(rows, columns=["order_id", "confirmed_ts"])
    return frame.drop_duplicates("order_id").reset_index(drop=True)


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
                  concurrency: int = 8) -> pd.DataFrame:
    """Look every confirmed order up; write and return ``integrity/orders.parquet``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BadInput(f"verify: {run_dir} is not a run folder")
    if not base_url or not base_url.startswith(("http://", "https://")):
        raise BadInput(f"verify: storefront URL {base_url!r} must start with http:// or https://")
    orders = confirmed_orders(run_dir)
    with requests.Session() as session:
        adapter = requests.adapters.HTTPAdapter(pool_connections=concurrency,
                                                pool_maxsize=concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            statuses = list(pool.map(lambda oid: lookup(session, base_url, oid, timeout_s),
                                     orders["order_id"]))
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
