"""``peakready k8s render PLAN``: the manifests that run a plan's load on Kubernetes.

Engine: the Locust Kubernetes operator (AbdelrhmanHamouda/locust-k8s-operator, CRD
``LocustTest`` ``locust.io/v2``); why this one and not the Helm chart: docs/load.md.

- ConfigMaps with the locustfile's folder (one per sub-folder, mounted at its place under
  ``/lotest/src``, since a ConfigMap key cannot hold a ``/``), the resolved profile and a
  two-line plugin shim importing peakready's Locust plugin from the image.
- A PersistentVolumeClaim for the run folder on the master (``/peakready/run``): workers
  ship every shard to the master over Locust's channel (``peakready.load.shipping``), so
  it is the only volume; copy it out after the run and ``peakready analyze`` it.
- The ``LocustTest``: master and worker commands with peakready's options; the operator
  adds ``--master``/``--worker``, ``--expect-workers=<replicas>``, ``--autostart`` and
  ``--autoquit``.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path, PurePosixPath
from typing import Any

from peakready import __version__
from peakready.errors import BadInput
from peakready.load.bundle import bundle_spec
from peakready.load.settings import LoadSettings, resolve

SRC = PurePosixPath("/lotest/src")  # where the operator mounts testFiles.configMapRef
RUN = PurePosixPath("/peakready/run")
SPOOL = "/tmp/peakready-spool"
CONFIGMAP_MAX = 1_000_000  # Kubernetes: 1 MiB per ConfigMap (etcd's limit), with headroom
SHIM = "peakready_plugin.py"
SHIM_TEXT = ('"""peakready\'s Locust plugin, from the peakready installed in the image."""\n'
             "from peakready.load.locustplugin.peakready_plugin import *  # noqa: F401,F403\n")


def _name(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or "peakready"


def _configmap(name: str, files: dict[str, bytes], labels: dict[str, str]) -> dict[str, Any]:
    data: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, content in sorted(files.items()):
        try:
            data[key] = content.decode("utf-8")
        except UnicodeDecodeError:
            binary[key] = base64.b64encode(content).decode()
    size = sum(len(v.encode()) for v in data.values()) + sum(len(v) for v in binary.values())
    if size > CONFIGMAP_MAX:
        raise BadInput(f"k8s: ConfigMap {name} would hold {size / 2**20:.2f} MiB (Kubernetes "
                       "allows 1 MiB): keep data files small or put them in the image")
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "labels": labels}, "data": data}
    if binary:
        out["binaryData"] = binary
    return out


def render(settings: LoadSettings, name: str, image: str = "",
           run_volume_size: str = "2Gi") -> list[dict[str, Any]]:
    """The manifests, in apply order. BadInput on anything that cannot work."""
    profile = resolve(settings)
    spec = bundle_spec(settings)
    root = Path(spec["root"])
    name = _name(name)
    labels = {"app.kubernetes.io/part-of": "peakready", "peakready/run": name}
    by_dir: dict[str, dict[str, bytes]] = {}
    for rel in spec["files"]:
        parent = str(PurePosixPath(rel).parent)
        by_dir.setdefault("" if parent == "." else parent, {})[PurePosixPath(rel).name] = (
            root / rel).read_bytes()
    top = by_dir.pop("", {})
    if SHIM in top or "profile.csv" in top:
        raise BadInput(f"k8s: the locustfile's folder {root} has its own {SHIM} or "
                       "profile.csv: they would shadow peakready's")
    top[SHIM] = SHIM_TEXT.encode()
    top["profile.csv"] = profile.points.to_csv(index=False, float_format="%.6g").encode()
    files_cm = f"{name}-files"
    manifests = [_configmap(files_cm, top, labels)]
    volumes: list[dict[str, Any]] = [
        {"name": "run", "persistentVolumeClaim": {"claimName": f"{name}-run"}},
        {"name": "spool", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [
        {"name": "run", "mountPath": str(RUN), "target": "master"},
        {"name": "spool", "mountPath": SPOOL, "target": "worker"}]
    for i, (folder, files) in enumerate(sorted(by_dir.items())):
        cm = f"{name}-files-{i + 1}"
        manifests.append(_configmap(cm, files, {**labels, "peakready/folder": _name(folder)}))
        volumes.append({"name": f"files-{i + 1}", "configMap": {"name": cm}})
        mounts.append({"name": f"files-{i + 1}", "mountPath": str(SRC / folder),
                       "readOnly": True, "target": "both"})
    manifests.append({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{name}-run", "labels": labels},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": run_volume_size}}}})
    files = f"{SRC / SHIM},{SRC / spec['locustfile']}"
    common = ["locust", "-f", files, "--traffic-profile", str(SRC / "profile.csv"),
              *spec["args"]]
    drain = f"{settings.drain_s:g}"
    master = [*common, "--run-dir", str(RUN), "--headless", "--host", settings.host,
              "--only-summary", "--csv", str(RUN / "locust" / "stats"), "--csv-full-history",
              "--html", str(RUN / "locust" / "report.html"), "--exit-code-on-error", "0",
              "--stop-timeout", drain, "--drain-seconds", drain,
              "--expect-workers-max-wait", f"{settings.worker_wait_s:g}",
              *spec["user_classes"]]
    worker = [*common, "--run-dir", SPOOL, *spec["user_classes"]]
    test: dict[str, Any] = {
        "apiVersion": "locust.io/v2", "kind": "LocustTest",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "image": image or f"peakready:{__version__}",
            "imagePullPolicy": "IfNotPresent",
            "master": {"command": _join(master), "autostart": True,
                       # after the profile the master gathers the last shards, then quits
                       "autoquit": {"enabled": True, "timeout": 60}, "labels": labels},
            "worker": {"command": _join(worker), "replicas": settings.workers,
                       "labels": labels},
            "testFiles": {"configMapRef": files_cm},
            "volumes": volumes, "volumeMounts": mounts,
        },
    }
    if settings.extra_env:
        test["spec"]["env"] = {"variables": [{"name": k, "value": v}
                                             for k, v in sorted(settings.extra_env.items())]}
    manifests.append(test)
    return manifests


def _join(args: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in args)


def render_plan(plan_path: Path | str, image: str = "", host: str = "") -> list[dict[str, Any]]:
    """A plan's load section as manifests (faults and checks stay with `peakready run`)."""
    from peakready.plan import load_plan
    from peakready.run.engine import _load_settings

    plan = load_plan(plan_path)
    spec = plan.resolved()
    url = host or (spec.get("target") or {}).get("storefront_url")
    if not url:
        raise BadInput("k8s render: the plan has no target.storefront_url (a sandbox plan "
                       "runs on this machine): give --host URL")
    settings = _load_settings(spec, url)
    if settings.workers < 1:
        raise BadInput("k8s render: load.workers must be >= 1")
    return render(settings, str(spec.get("name") or Path(plan_path).stem), image)
