"""One planned fault as plain data: its experiment file, read once, and what the plan set.

A ``FaultSpec`` is built when the plan loads (``peakready.plan``) and carried on the
``Plan``; everything that needs the experiment (the allow-list rules in
``peakready.chaos.semantics``, the preflight, the run loop launching ``chaos run``) reads
the spec, not the file. ``read_experiment`` is the only place that opens an experiment.

The preflight must still judge the file as it is when the run starts (it may have been
edited since the plan loaded): ``FaultSpec.current()`` compares the file's stat stamp
(no open) and reads it again only when it changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ExperimentUnreadable", "FaultSpec", "Stamp", "declared_configuration", "file_stamp",
           "numeric_keys", "read_experiment"]

Stamp = tuple[int, int, int]  # (inode, size, mtime in ns): changes when the file does


class ExperimentUnreadable(ValueError):
    """The experiment file cannot be opened or is not valid JSON/YAML; ``str`` is the
    parser's or the OS's reason (the caller names the field)."""


def file_stamp(path: Path) -> Stamp | None:
    """The stat stamp of ``path`` (None if it cannot be stat'ed): cheaper than a read, and
    enough to tell whether an experiment changed since it was read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_experiment(path: Path) -> tuple[Any, Stamp | None]:
    """The parsed document (JSON for ``.json``, else YAML, as Chaos Toolkit's loader does)
    and the file's stamp when it was read. Raises ExperimentUnreadable."""
    stamp = file_stamp(path)
    try:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ExperimentUnreadable(str(exc)) from None
    return doc, stamp


def declared_configuration(document: Any) -> dict[str, Any]:
    """The experiment's own ``configuration`` block ({} when absent or not a mapping)."""
    config = document.get("configuration") if isinstance(document, dict) else None
    return dict(config) if isinstance(config, dict) else {}


def numeric_keys(declared: Mapping[str, Any]) -> dict[str, str]:
    """Variables the experiment reads as numbers (``env_var_type`` int/float): a string
    there would break the experiment half-way (e.g. a pause of "abc" after the fault)."""
    return {key: entry["env_var_type"] for key, entry in declared.items()
            if isinstance(entry, dict) and entry.get("env_var_type") in ("int", "float")}


@dataclass(frozen=True)
class FaultSpec:
    """One fault of a plan, resolved: ``faults[index]`` of the plan.

    ``experiment`` is the path as the resolved plan writes it; ``path`` the file found;
    ``document`` the parsed experiment; ``declared`` its configuration block;
    ``numeric_keys`` the variables it reads as numbers; ``configuration`` what the plan
    passes to ``chaos run --var-file`` (completed from ``target.resources``); ``stamp`` the
    file's stat stamp when ``document`` was read.
    """

    index: int
    name: str
    experiment: str
    path: Path
    at_s: float
    configuration: dict[str, Any]
    document: dict[str, Any] = field(repr=False)
    declared: dict[str, Any] = field(repr=False)
    numeric_keys: dict[str, str] = field(repr=False)
    stamp: Stamp | None = field(default=None, repr=False)

    @classmethod
    def build(cls, index: int, name: str, experiment: str, path: Path, at_s: float,
              configuration: Mapping[str, Any], document: Any,
              stamp: Stamp | None = None) -> FaultSpec:
        """A spec from an already parsed document (a non-mapping document counts as empty:
        plan validation refuses it before a spec is built)."""
        return cls(index, name, experiment, Path(path), float(at_s), dict(configuration),
                   **_parsed(document), stamp=stamp)

    def plan_entry(self) -> dict[str, Any]:
        """The fault as the resolved plan (``plan.yaml``) writes it."""
        return {"name": self.name, "experiment": self.experiment, "at_s": self.at_s,
                "configuration": dict(self.configuration)}

    @property
    def file_stem(self) -> str:
        """Journal and log names in the run folder: the fault's name, made path-safe."""
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.name)

    def current(self) -> FaultSpec:
        """This spec if the file is unchanged since it was read (a stat, no read), else the
        same fault with the file read again. Raises ExperimentUnreadable."""
        if self.stamp is not None and file_stamp(self.path) == self.stamp:
            return self
        document, stamp = read_experiment(self.path)
        return replace(self, **_parsed(document), stamp=stamp)


def _parsed(document: Any) -> dict[str, Any]:
    """The spec fields read from a document: itself, its configuration block, its numeric
    keys (a non-mapping document counts as empty)."""
    doc = document if isinstance(document, dict) else {}
    declared = declared_configuration(doc)
    return {"document": doc, "declared": declared, "numeric_keys": numeric_keys(declared)}
