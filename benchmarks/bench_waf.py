"""CPU per request of the sandbox WAF: the default Web ACL evaluated on shopper requests
(the balancer's request path without the proxying), per-request thread CPU time."""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scenarios"))
from journeys import load_catalog  # noqa: E402

from peakready.waf import corpus, defaults, detect  # noqa: E402
from peakready.waf.evaluate import CompiledAcl  # noqa: E402
from peakready.waf.request import WafRequest  # noqa: E402


def main() -> None:
    cat, rng = load_catalog(), random.Random(1)
    acl = CompiledAcl(defaults.default_acl(), detect.engine())
    base = [("host", "127.0.0.1"), ("user-agent", corpus.BROWSER_UA),
            ("accept-encoding", "gzip, deflate, br")]
    times = []
    for i in range(3000):
        h = base + [("x-forwarded-for", f"198.18.0.{i % 250 + 1}")]
        req = [WafRequest("GET", f"/api/search?q={rng.choice(cat.search_terms)}", h),
               WafRequest("GET", f"/api/products?category={rng.choice(cat.categories)}", h),
               WafRequest("GET", f"/api/products/{rng.choice(cat.skus)}", h),
               WafRequest("POST", "/api/cart/items", h + [("content-type", "application/json")],
                          b'{"sku": "SKU-00012", "qty": 1}')][i % 4]
        t0 = time.thread_time()
        acl.evaluate(req, now=i * 0.01)
        times.append(time.thread_time() - t0)
    ms = np.array(times[500:]) * 1000
    print(f"waf ({acl.detector.name}): CPU per request mean {ms.mean():.3f} ms, "
          f"p50 {np.percentile(ms, 50):.3f}, p95 {np.percentile(ms, 95):.3f}, "
          f"p99 {np.percentile(ms, 99):.3f} ms")


if __name__ == "__main__":
    main()
