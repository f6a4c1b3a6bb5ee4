"""live.json windows: latency percentiles over successful requests, error rate over all."""

from __future__ import annotations

from peakready.load.live import LiveStats


def test_fast_failures_do_not_pull_the_live_percentiles_down():
    live = LiveStats(windows=(10,))
    now = 1_000.0
    for i in range(50):  # a failover: half the requests are fast 502s
        live.add(now - 1 + i / 100, 200.0, True)
        live.add(now - 1 + i / 100, 2.0, False)
    window = live.snapshot(now, elapsed_s=60)["10"]
    assert window["p50_ms"] == window["p95_ms"] == window["p99_ms"] == 200.0
    assert window["error_rate"] == 0.5 and window["requests"] == 100
    assert window["rps"] == 10.0


def test_a_window_of_only_failures_has_no_percentiles_but_full_error_rate():
    live = LiveStats(windows=(10,))
    live.add(999.5, 3.0, False)
    window = live.snapshot(1_000.0, elapsed_s=60)["10"]
    assert window["p95_ms"] is None and window["error_rate"] == 1.0 and window["requests"] == 1
