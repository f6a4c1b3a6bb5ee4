"""Whether the search nodes' engine can run here: tantivy ships wheels for Linux
(glibc and musl) on x86_64 and arm64, macOS and Windows x86_64 only; elsewhere pip skips
it (``pyproject.toml`` marker) rather than compile Rust.

Without it the sandbox starts without its search domain, so a readiness run still
covers everything else: ``/api/search`` answers 503 ``search unavailable``, no ``AWS/ES``
metrics exist, and the ``search`` check says skipped with this reason, never pass.
"""

from __future__ import annotations

import importlib
import platform


def engine_missing() -> str | None:
    """None when tantivy imports; else the one-line notice saying what happens instead."""
    try:
        importlib.import_module("tantivy")
    except ImportError as exc:
        return (f"no tantivy for this platform ({platform.system().lower()}/"
                f"{platform.machine()}: {exc}): the sandbox starts without its search "
                "domain; /api/search answers 503 and the search checks are skipped")
    return None
