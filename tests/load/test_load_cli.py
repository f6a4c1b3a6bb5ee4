"""`peakready load` end to end: a run folder and a summary read back from it."""

import json

from loadkit import write_profile

from peakready.cli import main


def test_load_command_writes_a_run_folder_and_prints_a_summary(tmp_path, shop, capsys):
    profile = write_profile(tmp_path / "p.csv", [(0, 10), (4, 10)])
    reports = tmp_path / "reports"
    rc = main(["load", "--profile", str(profile), "--host", shop.url, "--speed", "2",
               "--scale", "2", "--reports-dir", str(reports),
               "--locust-arg=--think-scale=0", "--locust-arg=--shopper-mix=normal"])
    out = capsys.readouterr().out
    assert rc == 0
    (run_dir,) = reports.iterdir()
    assert f"run folder   {run_dir}  (completed)" in out
    assert "requests     40 recorded of 40.0 scheduled" in out  # 10 rps x2 for 4 s / 2
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["profile_points"] == {"t_s": [0.0, 2.0], "rps": [20.0, 20.0]}
    assert settings["extra_args"] == ["--think-scale=0", "--shopper-mix=normal"]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "completed" and run["host"] == shop.url and run["ended_at"]
    for path in ("plan.yaml", "profile.csv", "live.json", "locust/stats_stats.csv",
                 "locust/report.html", "logs/locust.log"):
        assert (run_dir / path).exists(), path
    assert shop.requests_served() == 40 + 1  # the load, and one reachability check
