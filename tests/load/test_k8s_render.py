"""`peakready k8s render PLAN`: the LocustTest matches the operator's documented schema,
every file the commands name is in a mounted ConfigMap, and the run folder is a volume."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

import jsonschema
import pytest
import yaml

from peakready.k8s.locusttest_schema import LOCUSTTEST_V2

ROOT = Path(__file__).resolve().parents[2]


def _plan(tmp_path: Path, workers: int = 4) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump({"name": "Flash Sale K8s", "target": {"kind": "sandbox"},
                                    "load": {"locustfile": str(ROOT / "scenarios/storefront.py"),
                                             "profile": str(ROOT / "scenarios/profiles/demo.csv"),
                                             "workers": workers, "speed": 2}}))
    return path


def _render(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "peakready.cli", "k8s", "render", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.spawns
def test_rendered_locusttest_is_valid_and_mounts_every_file(tmp_path):
    proc = _render(str(_plan(tmp_path)), "--host", "https://shop.example.com",
                   "--image", "registry.example.com/peakready:1")
    assert proc.returncode == 0, proc.stderr
    docs = list(yaml.safe_load_all(proc.stdout))
    (test,) = [d for d in docs if d["kind"] == "LocustTest"]
    jsonschema.validate(test, LOCUSTTEST_V2)
    spec = test["spec"]
    assert spec["worker"]["replicas"] == 4 and spec["image"] == "registry.example.com/peakready:1"
    maps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    mounted = {PurePosixPath("/lotest/src"): maps[spec["testFiles"]["configMapRef"]]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for m in spec["volumeMounts"]:
        if "configMap" in volumes[m["name"]]:
            mounted[PurePosixPath(m["mountPath"])] = maps[volumes[m["name"]]["configMap"]["name"]]
    files = {str(base / key) for base, cm in mounted.items() for key in cm["data"]}
    assert "/lotest/src/data/catalog.csv" in files  # the journeys read it next to themselves
    for role in ("master", "worker"):
        args = shlex.split(spec[role]["command"])
        assert args[0] == "locust"
        for path in args[args.index("-f") + 1].split(","):
            assert path in files
        assert args[args.index("--traffic-profile") + 1] in files
    master = shlex.split(spec["master"]["command"])
    assert master[master.index("--host") + 1] == "https://shop.example.com"
    run_dir = master[master.index("--run-dir") + 1]
    (run_mount,) = [m for m in spec["volumeMounts"] if m["mountPath"] == run_dir]
    assert run_mount["target"] == "master"
    assert "persistentVolumeClaim" in volumes[run_mount["name"]]
    claim = volumes[run_mount["name"]]["persistentVolumeClaim"]["claimName"]
    assert any(d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == claim
               for d in docs)
    profile = maps[spec["testFiles"]["configMapRef"]]["data"]["profile.csv"]
    assert profile.startswith("t_s,rps")  # resolved: speed 2 applied
    assert all(len(yaml.safe_dump(cm).encode()) < 1_048_576 for cm in maps.values())


def test_the_schema_rejects_what_the_operator_does_not_document():
    good = {"apiVersion": "locust.io/v2", "kind": "LocustTest", "metadata": {"name": "x"},
            "spec": {"image": "i", "master": {"command": "locust"},
                     "worker": {"command": "locust", "replicas": 2}}}
    jsonschema.validate(good, LOCUSTTEST_V2)
    for bad in ({**good, "apiVersion": "locust.io/v1"},
                {**good, "spec": {**good["spec"], "workers": 3}},
                {**good, "spec": {**good["spec"], "worker": {"command": "locust",
                                                              "replicas": 0}}},
                {**good, "metadata": {"name": "Not_A_DNS_Name"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, LOCUSTTEST_V2)


@pytest.mark.spawns
def test_a_plan_without_a_storefront_url_is_one_line_exit_2(tmp_path):
    proc = _render(str(_plan(tmp_path)))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("peakready: error: k8s render: ")
    assert "--host" in proc.stderr
