"""A locustfile peakready cannot run: one line naming the file and the cause (Locust's or
Python's own words), exit 2, before a run folder exists and before any request; the same
through `peakready load`, `--workers 2` and a `peakready run` plan."""

from __future__ import annotations

import pytest
from loadkit import write_profile

from peakready.cli import main

BROKEN = {
    "syntax": ("from locust import HttpUser, task\n\nclass Shopper(HttpUser)\n    pass\n",
               "does not import: SyntaxError: expected ':' (line 3)"),
    "no_user": ("from locust import HttpUser\n\nclass Base(HttpUser):\n    abstract = True\n",
                'defines no user class (Locust: "No User class found!"'),
    "clash": ("from locust import HttpUser, events, task\n\n"
              "@events.init_command_line_parser.add_listener\n"
              "def _options(parser):\n    parser.add_argument('--max-users', type=int)\n\n"
              "class Shopper(HttpUser):\n    @task\n    def home(self):\n"
              "        self.client.get('/')\n",
              "options clash: argparse.ArgumentError: argument --max-users: conflicting option"),
    "shape": ("from locust import HttpUser, LoadTestShape, task\n\n"
              "class Ramp(LoadTestShape):\n    def tick(self):\n        return None\n\n"
              "class Shopper(HttpUser):\n    @task\n    def home(self):\n"
              "        self.client.get('/')\n",
              "defines its own LoadTestShape Ramp"),
}


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("kind, workers", [("syntax", 1), ("no_user", 2), ("clash", 1),
                                           ("shape", 1)])
def test_broken_locustfile_exits_2_with_one_line_before_any_load(tmp_path, capsys, shop,
                                                                 kind, workers):
    text, expect = BROKEN[kind]
    locustfile = tmp_path / f"{kind}_locustfile.py"
    locustfile.write_text(text)
    profile = write_profile(tmp_path / "p.csv", [(0, 5), (5, 5)])
    reports = tmp_path / "reports"
    rc = main(["load", "--profile", str(profile), "--host", shop.url, "--locustfile",
               str(locustfile), "--workers", str(workers), "--reports-dir", str(reports)])
    err = one_line(capsys)
    assert rc == 2
    assert f"locustfile {locustfile}: {expect}" in err
    assert shop.requests_served() == 0 and not reports.exists()


def test_unknown_locust_option_is_named(tmp_path, capsys, shop):
    locustfile = tmp_path / "ok.py"
    locustfile.write_text("from locust import HttpUser, task\n\nclass S(HttpUser):\n"
                          "    @task\n    def home(self):\n        self.client.get('/')\n")
    profile = write_profile(tmp_path / "p.csv", [(0, 5), (5, 5)])
    rc = main(["load", "--profile", str(profile), "--host", shop.url, "--locustfile",
               str(locustfile), "--locust-arg=--no-such-option", "--reports-dir",
               str(tmp_path / "reports")])
    assert rc == 2
    assert "option error: locust: error: unrecognized arguments: --no-such-option" \
        in one_line(capsys)
    assert shop.requests_served() == 0


@pytest.mark.spawns
def test_a_plan_naming_a_broken_locustfile_exits_2_before_the_target_starts(tmp_path, capsys):
    text, expect = BROKEN["syntax"]
    locustfile = tmp_path / "team_locustfile.py"
    locustfile.write_text(text)
    profile = write_profile(tmp_path / "p.csv", [(0, 5), (5, 5)])
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: byo\ntarget:\n  kind: sandbox\nload:\n  locustfile: {locustfile}\n"
                    f"  profile: {profile}\n  closed_model: false\n"
                    "  orders: {request: POST /api/checkout, field: order.id}\n")
    reports = tmp_path / "reports"
    rc = main(["run", str(plan), "--reports-dir", str(reports)])
    assert rc == 2
    assert f"locustfile {locustfile}: {expect}" in one_line(capsys)
    assert not reports.exists()


@pytest.mark.parametrize("load, expect", [
    ("  users: 10\n", "load.users: sets the pool of a closed model"),
    ("  closed_model: yes please\n", "load.closed_model: must be true or false"),
    ("  orders: {request: POST /api/checkout, fields: id}\n", "load.orders.fields: unknown"),
])
def test_plan_load_section_rejects_bad_byo_fields(tmp_path, capsys, load, expect):
    profile = write_profile(tmp_path / "p.csv", [(0, 5), (5, 5)])
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"name: byo\ntarget:\n  kind: sandbox\nload:\n  profile: {profile}\n{load}")
    assert main(["run", str(plan), "--dry-run"]) == 2
    assert expect in one_line(capsys)
