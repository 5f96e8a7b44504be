"""A tiny progress bar (no dependency): ``[#######.......] 12/35 cells  1m02s  ETA 1m40s  <note>``.

On a terminal the bar redraws in place; otherwise (logs, CI) each update is one line. The ETA
extrapolates from the *estimated cost* done so far (cells differ a lot in cost), not the count.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar", "format_seconds"]


def format_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressBar:
    def __init__(self, total: int, *, total_cost: float | None = None, label: str = "cells", width: int = 28,
                 stream: TextIO | None = None) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, got {total}")
        self.total = total
        self.total_cost = float(total_cost) if total_cost else float(total)
        self.label = label
        self.width = width
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.cost_done = 0.0
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_len = 0
        if total:
            self._draw("")

    def update(self, n: int = 1, *, cost: float | None = None, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        self.cost_done = min(self.total_cost, self.cost_done + (float(cost) if cost is not None else float(n)))
        self._draw(note)

    def line(self, note: str = "") -> str:
        frac = self.cost_done / self.total_cost if self.total_cost else 1.0
        filled = int(round(self.width * (self.done / self.total if self.total else 1.0)))
        elapsed = time.perf_counter() - self.start
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        eta_text = format_seconds(eta) if frac > 0 else "?"
        bar = "#" * filled + "." * (self.width - filled)
        text = f"[{bar}] {self.done}/{self.total} {self.label}  {format_seconds(elapsed)}  ETA {eta_text}"
        return f"{text}  {note}" if note else text

    def _draw(self, note: str) -> None:
        text = self.line(note)
        if self.tty:
            pad = max(0, self._last_len - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._last_len = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")
            self.stream.flush()
