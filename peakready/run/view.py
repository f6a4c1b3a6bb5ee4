"""The live view of a run: a rich panel on a terminal, plain lines in CI logs.

``Snapshot`` is the data; ``line`` and ``table`` render it (pure); ``LiveView`` owns the
console and decides which to show.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


@dataclass
class Snapshot:
    elapsed_s: float = 0.0
    duration_s: float | None = None
    phase: str = "starting"
    target_rps: float | None = None
    achieved_rps: float | None = None
    p95_ms: float | None = None
    error_rate: float | None = None
    users: int | None = None
    in_service: int | None = None
    desired: int | None = None
    running_faults: list[str] = field(default_factory=list)
    next_fault: tuple[str, float] | None = None
    guard: str = ""
    note: str = ""
    load_model: str = "open"  # "closed": the locustfile's own pacing (--closed-model)


def _num(value: float | None, fmt: str, unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def snapshot_from_live(live: dict[str, Any] | None, **fields: Any) -> Snapshot:
    """Fill the load numbers from a ``live.json`` document (10 s window)."""
    snap = Snapshot(**fields)
    if live:
        window = (live.get("windows") or {}).get("10") or {}
        snap.target_rps = live.get("target_rps")
        snap.achieved_rps = window.get("rps")
        snap.p95_ms = window.get("p95_ms")
        snap.error_rate = window.get("error_rate")
        snap.users = live.get("users")
        snap.load_model = live.get("load_model") or snap.load_model
    return snap


def line(s: Snapshot) -> str:
    """One plain line (CI logs)."""
    total = f"/{s.duration_s:.0f}" if s.duration_s else ""
    nxt = f"{s.next_fault[0]} in {s.next_fault[1]:.0f}s" if s.next_fault else "-"
    parts = [
        f"t={s.elapsed_s:5.0f}{total}s",
        f"phase={s.phase}",
        f"rps={_num(s.achieved_rps, '.1f')}/{_num(s.target_rps, '.1f')}",
        f"p95={_num(s.p95_ms, '.0f', 'ms')}",
        f"err={_num(None if s.error_rate is None else s.error_rate * 100, '.1f', '%')}",
        f"in-service={_num(s.in_service, 'd')}/{_num(s.desired, 'd')}",
        f"faults={','.join(s.running_faults) or '-'}",
        f"next={nxt}",
    ]
    if s.load_model == "closed":
        parts.append("load=CLOSED-MODEL(rate-not-guaranteed)")
    if s.guard:
        parts.append(f"guard={s.guard}")
    return " ".join(parts)


def table(s: Snapshot, title: str = "peakready run") -> Table:
    """The terminal panel."""
    t = Table(title=title, show_header=False, expand=False, min_width=60)
    t.add_column("what", style="bold")
    t.add_column("value")
    total = f" / {s.duration_s:.0f} s" if s.duration_s else ""
    t.add_row("elapsed", f"{s.elapsed_s:.0f} s{total}")
    t.add_row("phase", s.phase)
    t.add_row("RPS achieved / target", f"{_num(s.achieved_rps, '.1f')} / {_num(s.target_rps, '.1f')}")
    t.add_row("p95 (10 s)", _num(s.p95_ms, ".0f", " ms"))
    err = None if s.error_rate is None else s.error_rate * 100
    style = "red" if (s.error_rate or 0) > 0.02 else "green"
    t.add_row("error rate (10 s)", f"[{style}]{_num(err, '.2f', ' %')}[/{style}]")
    t.add_row("users", _num(s.users, "d"))
    if s.load_model == "closed":
        t.add_row("load model", "[yellow]CLOSED-MODEL: coordinated omission possible, "
                  "offered rate not guaranteed[/yellow]")
    t.add_row("in service / desired", f"{_num(s.in_service, 'd')} / {_num(s.desired, 'd')}")
    t.add_row("faults running", ", ".join(s.running_faults) or "-")
    t.add_row("next fault", f"{s.next_fault[0]} in {s.next_fault[1]:.0f} s" if s.next_fault else "-")
    if s.guard:
        t.add_row("stop condition", f"[yellow]{s.guard}[/yellow]")
    if s.note:
        t.add_row("", s.note)
    return t


class LiveView:
    """A rich Live panel when stdout is a terminal, else a plain line every ``every_s``."""

    def __init__(self, file: IO[str] | None = None, every_s: float = 5.0,
                 force_plain: bool = False) -> None:
        self.console = Console(file=file, highlight=False)
        self.plain = force_plain or not self.console.is_terminal
        self.every_s = every_s
        self._last_line = 0.0
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        if not self.plain:
            self._live = Live(table(Snapshot()), console=self.console, refresh_per_second=2,
                              transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(table(snap))
            return
        now = time.monotonic()
        if now - self._last_line >= self.every_s:
            self._last_line = now
            self.console.print(line(snap), markup=False, soft_wrap=True)

    def say(self, message: str) -> None:
        """An event line (fault started, abort, ...), shown in both modes."""
        stamp = time.strftime("%H:%M:%S")
        self.console.print(f"[{stamp}] {message}", markup=False, soft_wrap=True)
