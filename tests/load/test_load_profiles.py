import numpy as np
import pandas as pd
import pytest
from loadkit import ROOT

from peakready.errors import BadInput
from peakready.profiles import (
    arrival_times,
    from_points,
    from_request_counts,
    load_profile,
)


def write(tmp_path, text):
    path = tmp_path / "p.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("t_s,rps\n0,10\n10,abc\n", "rps on data row 2 is not a number: 'abc'"),
    ("t_s,rps\n0,10\n10,-5\n", "rps on data row 2 is negative"),
    ("t_s,rps\n0,10\n20,5\n10,5\n", "t_s not sorted ascending at data row 3"),
    ("t_s,rps\n0,10\n10,5\n10,6\n", "duplicate t_s 10 on data row 3"),
    ("t_s,rps\n", "no points"),
    ("", "not a CSV"),
    ("time,rate\n0,1\n", "missing column(s) t_s, rps"),
    ("t_s,rps\n0,0\n10,0\n", "every rps is 0"),
])
def test_bad_profiles_name_the_problem_in_one_line(tmp_path, text, message):
    with pytest.raises(BadInput) as err:
        load_profile(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(BadInput, match="file not found"):
        load_profile(tmp_path / "nope.csv")


def test_linear_interpolation_scale_speed_and_truncation(tmp_path):
    p = load_profile(write(tmp_path, "# comment\nt_s,rps\n0,10\n10,50\n20,0\n"))
    assert p.duration_s == 20
    assert p.rate_at(5) == pytest.approx(30)
    assert p.rate_at(15) == pytest.approx(25)
    assert p.rate_at(25) == 0
    assert p.total_arrivals == pytest.approx(300 + 250)
    grown = p.scaled(1.5)
    assert grown.peak_rps == 75 and grown.duration_s == 20
    fast = p.compressed(10)
    assert fast.duration_s == 2 and fast.peak_rps == 50
    assert fast.total_arrivals == pytest.approx(55)
    cut = p.truncated(15)
    assert cut.duration_s == 15 and cut.points["rps"].iloc[-1] == pytest.approx(25)
    with pytest.raises(BadInput):
        p.scaled(-1)


def test_first_point_after_zero_holds_its_rate_from_zero(tmp_path):
    p = load_profile(write(tmp_path, "t_s,rps\n5,10\n10,10\n"))
    assert p.points["t_s"].tolist() == [0, 5, 10]
    assert p.total_arrivals == pytest.approx(100)


def test_arrival_schedule_follows_the_rate_and_splits_exactly():
    p = from_points([0, 10, 20], [10, 50, 0])
    times = np.array(list(arrival_times(p)))
    assert len(times) == 550
    assert np.all(np.diff(times) > 0)
    per_second = np.histogram(times, bins=20, range=(0, 20))[0]
    expected = [p.arrivals_until(s + 1) - p.arrivals_until(s) for s in range(20)]
    assert np.abs(per_second - expected).max() <= 1
    a, b = (np.array(list(arrival_times(p, w, 2))) for w in (0, 1))
    assert len(a) + len(b) == 550
    assert np.array_equal(np.sort(np.concatenate([a, b])), times)


def test_bundled_profiles_are_valid():
    names = {p.stem: load_profile(p) for p in (ROOT / "scenarios" / "profiles").glob("*.csv")}
    assert {"flash-sale", "black-friday-day", "capacity-step", "soak"} <= set(names)
    pts = names["flash-sale"].points
    base, peak = pts["rps"].iloc[0], pts["rps"].max()
    first_peak = pts.loc[pts["rps"] == peak, "t_s"].iloc[0]
    last_base = pts.loc[(pts["rps"] == base) & (pts["t_s"] < first_peak), "t_s"].iloc[-1]
    assert peak == 8 * base
    assert 0 < first_peak - last_base <= 60  # x8 within a minute
    assert pts["rps"].iloc[-1] < peak  # then decays


def test_request_counts_become_a_rate_with_gaps_as_zero():
    counts = pd.DataFrame({"ts": [1000.0, 1060.0, 1180.0], "value": [600, 1200, 300]})
    p = from_request_counts(counts, 1000, 1240, 60)
    assert p.points["t_s"].tolist() == [0, 60, 120, 180, 240]
    assert p.points["rps"].tolist() == [10, 20, 0, 5, 5]
    with pytest.raises(BadInput, match="no RequestCount datapoints"):
        from_request_counts(counts.iloc[0:0], 1000, 1240, 60)
