"""What a worker on another machine needs from the master, and unpacking it there.

The master serves the files of the locustfile's folder (its helpers, ``data/`` files it
reads by a path relative to itself), the resolved profile and the Locust options
(``LoadSettings.locust_args`` plus extra options, user classes and environment), so a
worker needs nothing but peakready installed and the master's address. The engine writes
the list (``worker-bundle.json`` in the run folder: a record of what workers got); the
master reads the files once at start-up (``peakready.load.distributed.read_bundle``).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from peakready.errors import BadInput
from peakready.load.settings import LoadSettings

MAX_BYTES = 64 * 1024 * 1024
MAX_FILES = 2000
SKIP_DIRS = {"__pycache__", "reports", "node_modules", ".git", ".venv", "venv"}


def bundle_spec(settings: LoadSettings) -> dict[str, Any]:
    """The files under the locustfile's folder (hidden files, caches and run folders
    left out); BadInput when that is too much to send over the channel."""
    locustfile = Path(settings.locustfile).resolve()
    root = locustfile.parent
    files: list[str] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / name
            total += path.stat().st_size
            files.append(path.relative_to(root).as_posix())
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise BadInput(f"locustfile {settings.locustfile}: its folder {root} holds "
                       f"{len(files)} files, {total / 2**20:.1f} MiB: workers fetch that "
                       f"folder from the master (at most {MAX_FILES} files, "
                       f"{MAX_BYTES // 2**20} MiB): put the locustfile in a folder of its own")
    return {"root": str(root), "locustfile": locustfile.name, "files": files,
            "args": [*settings.locust_args(), *settings.extra_args],
            "user_classes": list(settings.user_classes), "env": dict(settings.extra_env)}


def unpack(data: dict[str, Any], workdir: Path) -> Path:
    """Write the fetched files under ``workdir/files`` (names checked: nothing lands
    outside it); returns the locustfile's path."""
    base = (workdir / "files").resolve()
    for rel, content in data["files"].items():
        parts = PurePosixPath(rel)
        if parts.is_absolute() or ".." in parts.parts:
            raise BadInput(f"master sent a file outside the bundle: {rel!r}")
        target = base.joinpath(*parts.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    (workdir / "profile.csv").write_bytes(data["profile"])
    return base / data["locustfile"]
