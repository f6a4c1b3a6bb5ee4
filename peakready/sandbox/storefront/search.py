"""The storefront's product search: opensearch-py against the search domain endpoint,
as a shop's application would use Amazon OpenSearch Service.

The client keeps its defaults (``max_retries=3`` on 502/503/504 and connection errors, no
retry on 429, no sniffing: one endpoint, as on AWS). A 429 from the domain (the search
pools are full) is passed on as 429 with the exception type in the body; a 200 whose
``_shards.failed`` > 0 is served with ``X-Search-Partial: failed/total`` so the load
generator, which only sees the storefront, can count partial results.
"""

from __future__ import annotations

import asyncio
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OsConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

INDEX = "products"
PAGE_SIZE = 20


class SearchUnavailable(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ProductSearch:
    def __init__(self, url: str, timeout_s: float = 5.0) -> None:
        self.client = OpenSearch(hosts=[url], timeout=timeout_s, pool_maxsize=16)
        self.partial = 0
        self.rejected = 0

    @staticmethod
    def body(q: str) -> dict[str, Any]:
        """The storefront's query: the words in name (x2) or category, best first."""
        return {"size": PAGE_SIZE, "query": {"bool": {"must": [{"multi_match": {
            "query": q, "fields": ["name^2", "category"]}}]}}}

    async def search(self, q: str) -> tuple[list[dict], dict[str, str]]:
        """(items, extra response headers)."""
        try:
            answer = await asyncio.to_thread(self.client.search, index=INDEX, body=self.body(q))
        except (OsConnectionError, ConnectionTimeout) as exc:
            raise SearchUnavailable(503, f"search unavailable: {type(exc).__name__}") from exc
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 503
            kind = _error_type(exc.info)
            if status == 429:
                self.rejected += 1
                raise SearchUnavailable(429, f"search rejected: {kind}") from exc
            raise SearchUnavailable(503 if status >= 500 else status,
                                    f"search failed: HTTP {status} {kind}") from exc
        headers = {}
        shards = answer.get("_shards") or {}
        if shards.get("failed"):
            self.partial += 1
            headers["X-Search-Partial"] = f"{shards['failed']}/{shards.get('total')}"
        items = [_item(h["_source"]) for h in answer["hits"]["hits"]]
        return items, headers


def _error_type(info: Any) -> str:
    if isinstance(info, dict):
        err = info.get("error") or {}
        causes = err.get("root_cause") or err.get("failed_shards") or []
        for cause in causes:
            reason = cause.get("reason", cause) if isinstance(cause, dict) else {}
            if isinstance(reason, dict) and reason.get("type"):
                return str(reason["type"])
        return str(err.get("type") or "unknown")
    return str(info)[:80]


def _item(src: dict) -> dict:
    return {"sku": src["sku"], "name": src["name"], "category": src["category"],
            "price": round(float(src["price"]), 2), "stock": src["stock"],
            "flash_sale": src["flash_sale"]}
