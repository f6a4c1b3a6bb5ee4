"""Run folders with known answers, written by ``analysis.synthetic`` into tmp_path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# This folder is called ``analysis`` too: with pytest's rootdir-based sys.path, the
# namespace package tests/analysis would shadow the editable-installed ``analysis``
# package. Put the repository first and drop a wrongly cached namespace module.
ROOT = Path(__file__).resolve().parents[2]
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))
if getattr(sys.modules.get("analysis"), "__file__", None) is None:
    sys.modules.pop("analysis", None)

from analysis import synthetic  # noqa: E402


@pytest.fixture
def make_run(tmp_path: Path):
    def make(name: str = "run", **spec) -> Path:
        return synthetic.write_run(tmp_path / name, synthetic.Spec(**spec))

    return make
