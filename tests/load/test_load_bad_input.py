"""Bad input to `peakready load` / `peakready profile`: exit 2, one line, no load sent."""

import pytest
from loadkit import write_profile

from peakready.cli import main
from peakready.load.process import free_port


def run_cli(capsys, args):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    return rc, err


@pytest.mark.parametrize("content, expect", [
    (None, "file not found"),
    ("t_s,rps\n0,10\n10,ten\n", "not a number"),
    ("t_s,rps\n0,10\n10,-1\n", "negative"),
    ("t_s,rps\n0,10\n20,10\n5,10\n", "not sorted"),
])
def test_bad_profile_exits_2_with_one_line_and_sends_nothing(tmp_path, capsys, shop,
                                                             content, expect):
    profile = tmp_path / "profile.csv"
    if content is not None:
        profile.write_text(content)
    reports = tmp_path / "reports"
    rc, err = run_cli(capsys, ["load", "--profile", str(profile), "--host", shop.url,
                               "--reports-dir", str(reports)])
    assert rc == 2
    assert len(err.splitlines()) == 1 and expect in err and str(profile) in err
    assert shop.requests_served() == 0
    assert not reports.exists()


@pytest.mark.spawns  # the locustfile preflight runs in its own process
def test_unreachable_host_exits_2_before_any_run_folder(tmp_path, capsys):
    profile = write_profile(tmp_path / "p.csv", [(0, 5), (5, 5)])
    host = f"http://127.0.0.1:{free_port()}"
    rc, err = run_cli(capsys, ["load", "--profile", str(profile), "--host", host,
                               "--reports-dir", str(tmp_path / "reports")])
    assert rc == 2
    assert len(err.splitlines()) == 1 and "unreachable" in err and host in err
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("args, expect", [
    (["--scale", "-2"], "--scale must be a positive number"),
    (["--speed", "0"], "--speed must be a positive number"),
    (["--workers", "0"], "--workers must be an integer >= 1"),
    (["--host", "storefront:8080"], "--host must be an http(s) URL"),
])
def test_bad_settings_exit_2(tmp_path, capsys, shop, args, expect):
    profile = write_profile(tmp_path / "p.csv", [(0, 5), (5, 5)])
    base = ["load", "--profile", str(profile), "--host", shop.url,
            "--reports-dir", str(tmp_path / "reports")]
    rc, err = run_cli(capsys, base + args)
    assert rc == 2 and len(err.splitlines()) == 1 and expect in err
    assert shop.requests_served() == 0
