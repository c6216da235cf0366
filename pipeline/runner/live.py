"""The run's live view: per-stage progress, requests in flight, retries and errors, throughput and ETA.

On a terminal it is a `rich` Live display; elsewhere (CI, `ray job logs`) it prints one plain line every few
seconds, so logs stay readable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table


@dataclass
class Snapshot:
    """What the driver knows right now, summed over workers."""

    in_flight: int = 0
    requests_ok: int = 0
    requests_failed: int = 0
    reused: int = 0
    retries_by_kind: dict[str, int] = field(default_factory=dict)
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    prompts_done: int = 0
    candidates_done: int = 0

    @classmethod
    def from_workers(cls, reports: list[dict[str, Any]]) -> "Snapshot":
        s = cls()
        for r in reports:
            if not r:
                continue
            s.reused += r.get("requests_reused", 0)
            s.prompts_done += r.get("prompts_done", 0)
            s.candidates_done += r.get("candidates_done", 0)
            for k, v in r.get("failures_by_kind", {}).items():
                s.failures_by_kind[k] = s.failures_by_kind.get(k, 0) + v
            s.requests_failed += r.get("requests_failed", 0)
            for c in r.get("clients", {}).values():
                s.in_flight += c.get("in_flight", 0)
                s.requests_ok += c.get("ok", 0)
                for k, v in c.get("retries_by_kind", {}).items():
                    s.retries_by_kind[k] = s.retries_by_kind.get(k, 0) + v
        return s


class LiveView:
    def __init__(self, console: Console, *, enabled: bool, plain_every_s: float = 5.0) -> None:
        self.console = console
        self.fancy = enabled and console.is_terminal
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self._t0 = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
            TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console,
        )
        self.tasks: dict[str, int] = {}
        self.snapshot = Snapshot()
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False) if self.fancy else None

    def __enter__(self) -> "LiveView":
        if self._live:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def stage(self, name: str, total: int, unit: str, done: int = 0) -> None:
        self.tasks[name] = self.progress.add_task(name, total=total, completed=done, unit=unit)

    def advance(self, name: str, done: int) -> None:
        self.progress.update(self.tasks[name], completed=done)

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        if self._live:
            self._live.update(self._render())
        elif time.monotonic() - self._last_plain >= self.plain_every_s:
            self._last_plain = time.monotonic()
            self.console.print(self._plain_line(), highlight=False)

    def _rate(self) -> float:
        return self.snapshot.requests_ok / max(time.monotonic() - self._t0, 1e-9)

    def _plain_line(self) -> str:
        parts = []
        for name, tid in self.tasks.items():
            t = self.progress.tasks[tid]
            parts.append(f"{name} {int(t.completed)}/{int(t.total or 0)}")
        s = self.snapshot
        return (f"[{time.monotonic() - self._t0:6.1f}s] " + "  ".join(parts) +
                f"  in-flight {s.in_flight}  ok {s.requests_ok}  reused {s.reused}  retries {sum(s.retries_by_kind.values())}"
                f"  failed {s.requests_failed}  {self._rate():.1f} req/s")

    def _render(self) -> Group:
        s = self.snapshot
        t = Table.grid(padding=(0, 2))
        for _ in range(6):
            t.add_column()
        retries = ", ".join(f"{k} {v}" for k, v in sorted(s.retries_by_kind.items())) or "0"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(s.failures_by_kind.items())) or "0"
        t.add_row("in flight", str(s.in_flight), "requests ok", str(s.requests_ok), "req/s", f"{self._rate():.1f}")
        t.add_row("retries", retries, "failed", errors, "replayed", str(s.reused))
        return Group(self.progress, t)
