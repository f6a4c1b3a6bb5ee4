"""The demo plan as raw YAML data, and the two edits the fault-safety tests make to it:
point it at an aws target, keep only some faults. Both keep the plan valid, so a test
fails on the rail it is about, not on an unrelated rule."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "plans" / "sandbox-demo.yaml"
# checks whose config names faults: a fault taken out of the plan leaves their lists
FAULT_LISTS = {"time_to_detect": ("faults",), "paging": ("faults", "quiet")}


def demo_raw() -> dict:
    return yaml.safe_load(DEMO.read_text())


def with_faults(raw: dict, faults: list[dict]) -> dict:
    """``raw`` with only ``faults``; checks that named a fault now gone drop it (and a
    check left judging none of its faults is dropped: it would judge nothing)."""
    raw["faults"] = faults
    names = {f["name"] for f in faults}
    for kind, keys in FAULT_LISTS.items():
        cfg = raw.get("checks", {}).get(kind)
        if not cfg:
            continue
        for key in keys:
            if key in cfg:
                cfg[key] = [n for n in cfg[key] if n in names]
        if "faults" in cfg and not cfg["faults"]:
            del raw["checks"][kind]
    return raw


def on_aws(raw: dict, resources: dict | None = None, allow: dict | None = None,
           storefront_url: str = "https://shop.example") -> dict:
    """``raw`` against an aws target. The campaign's attack traffic is left out: on AWS it
    needs its own consent (target.resources.web_acl, load.attacks.intended), which
    tests/waf covers; these tests are about the faults' rails."""
    raw["target"].update(kind="aws", storefront_url=storefront_url)
    if resources is not None:
        raw["target"]["resources"] = resources
    if allow is not None:
        raw["target"]["allow"] = allow
    raw["load"].pop("attacks", None)
    return raw
