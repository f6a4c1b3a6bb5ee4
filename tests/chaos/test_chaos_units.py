"""Pure pieces: the live-SLO verdict (no evidence is never a pass), the reader Aurora would
promote, the tolerances."""

from __future__ import annotations

from peakready.chaos import tolerance
from peakready.chaos.live import judge, slo
from peakready.chaos.rds import choose_reader

NOW = 1_800_000_000.0


def status(age=1.0, p95=50.0, err=0.0, n=300, window="30"):
    return {"ts": NOW - age, "windows": {window: {"p95_ms": p95, "error_rate": err,
                                                  "requests": n, "rps": n / 30}}}


def test_within_slo():
    out = judge(status(), NOW, max_p95_ms=800, max_error_rate=0.02)
    assert out["ok"] and out["p95_ms"] == 50.0 and out["requests"] == 300


def test_breaches_are_named_with_numbers():
    out = judge(status(p95=900.0, err=0.1), NOW, max_p95_ms=800, max_error_rate=0.02)
    assert not out["ok"]
    assert out["reason"] == "p95 900 ms > 800 ms; error rate 0.100 > 0.020"


def test_no_evidence_is_never_a_pass():
    assert not judge(None, NOW)["ok"]
    assert "old" in judge(status(age=6.0), NOW, max_age_s=5.0)["reason"]
    assert "no 30 s window" in judge(status(window="10"), NOW)["reason"]
    assert "no evidence" in judge(status(n=0), NOW)["reason"]
    assert "no evidence" in judge(status(err=None), NOW)["reason"]


def test_total_outage_names_the_error_rate():
    # live percentiles cover successful requests only: when every request failed
    # there is no p95, and the reason must say why rather than "no evidence"
    out = judge(status(p95=None, err=1.0), NOW, max_error_rate=0.02)
    assert not out["ok"]
    assert out["reason"] == "no successful request in 300; error rate 1.000 > 0.020"


def test_probe_on_missing_or_half_written_file(tmp_path):
    assert not slo(str(tmp_path / "absent.json"))["ok"]
    half = tmp_path / "live.json"
    half.write_text('{"ts": 1, "windows": {"30": {')
    assert not slo(str(half))["ok"]


def test_reader_choice_follows_promotion_tier_and_availability():
    members = [
        {"DBInstanceIdentifier": "db-1", "IsClusterWriter": True, "PromotionTier": 0},
        {"DBInstanceIdentifier": "db-3", "IsClusterWriter": False, "PromotionTier": 1},
        {"DBInstanceIdentifier": "db-2", "IsClusterWriter": False, "PromotionTier": 1},
        {"DBInstanceIdentifier": "db-0", "IsClusterWriter": False, "PromotionTier": 0},
    ]
    status_ = {"db-1": "available", "db-2": "available", "db-3": "available",
               "db-0": "rebooting"}
    assert choose_reader(members, status_) == "db-2"
    assert choose_reader(members, {**status_, "db-0": "available"}) == "db-0"
    assert choose_reader(members[:1], status_) is None


def test_tolerances():
    assert tolerance.ok({"ok": True}) and not tolerance.ok({"ok": "yes"})
    assert not tolerance.ok(None)
    assert tolerance.at_least(2, "2") and not tolerance.at_least(1, 2)
    assert not tolerance.at_least(None, 1)
