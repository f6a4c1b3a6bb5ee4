"""report.html in real headless Chromium: the verdict and the figure render, and the page
logs nothing to the console. Skipped only where no Chromium is installed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from analysis import analyze
from analysis.synthetic import Fault

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.skipif(BROWSER is None, reason="no chromium on this machine"),
              pytest.mark.spawns]  # a headless Chromium
CHECKS = {"latency": [{"endpoint": "*", "phase": "*", "percentile": 95, "max_ms": 800}],
          "recovery": {"window_s": 1, "windows": 3, "max_s": 30, "p95_ms": 800,
                       "error_rate": 0.02},
          "integrity": {"orders": True}}


def chromium(tmp: Path, url: str, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *extra, url]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        try:  # the browser's helpers share its process group: end them all
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_console_detection_works(tmp_path):
    page = tmp_path / "noisy.html"
    page.write_text("<html><body><script>console.error('planted-error')</script></body></html>")
    done = chromium(tmp_path, page.as_uri(), "--dump-dom")
    assert any("planted-error" in line for line in console_lines(done.stderr))


def test_report_renders_verdict_and_figure_without_console_errors(make_run, tmp_path):
    run = make_run(checks=CHECKS, faults=[Fault("kill-db", "db", 80, 84)], lost_orders=1)
    verdict = analyze(run)
    assert verdict["verdict"] == "fail"
    url = (run / "report.html").as_uri()
    dom = chromium(tmp_path, url, "--dump-dom")
    assert 'id="verdict"' in dom.stdout and ">fail</span>" in dom.stdout
    assert "data:image/png;base64," in dom.stdout
    assert console_lines(dom.stderr) == []
    shot = tmp_path / "report.png"
    done = chromium(tmp_path, url, f"--screenshot={shot}", "--window-size=1280,1400",
                    "--hide-scrollbars")
    assert shot.exists(), done.stderr[-2000:]
    assert console_lines(done.stderr) == []
    shutil.copy(shot, run / "report-screenshot.png")
    pixels = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)

    def share(rgb: tuple[int, int, int]) -> float:
        return float((np.abs(pixels - np.array(rgb)).sum(axis=-1) < 30).mean())

    assert share((214, 39, 40)) > 0.0005  # the red FAIL badge / failing rows
    assert share((31, 119, 180)) > 0.0002  # the figure's blue lines (p95, achieved RPS)
