"""The one progress display: work done toward a total, its rate and an ETA, as lines a person can follow.

Used by training (steps), evaluation (tasks) and any long loop. A line is printed when `update` is due (every
`interval_s`, default 30 s, and at the end). The rate
and ETA come from this run's own pace since `Progress` was made (work done before, e.g. resumed steps or tasks
already judged, counts as done but not toward the rate), so creating it after compilation gives an ETA measured
after compilation. Pure Python (no JAX): evals and input pipelines may use it.

`console()` is where lines for a person go: stderr, or the terminal that `hrm_jax.runtime` kept aside when it
sent library output to the workdir's log file.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_STREAMS: dict[str, TextIO] = {}


def console() -> TextIO:
    return _STREAMS.get("console") or sys.stderr


def set_console(stream: TextIO | None, log: TextIO | None = None) -> None:
    """Sends progress and status lines to `stream` (None: back to stderr), and a copy to `log` if given."""
    _STREAMS.clear()
    _STREAMS.update({k: v for k, v in (("console", stream), ("log", log)) if v is not None})


def _emit(text: str, stream: TextIO | None = None) -> None:
    line = f"{time.strftime('%H:%M:%S')} {text}\n"
    for out in (stream or console(), _STREAMS.get("log")):
        if out is not None:
            out.write(line)
            out.flush()


def say(message: str) -> None:
    """One status line on the console (and in the workdir's log when `hrm_jax.runtime` set one), time-stamped."""
    _emit(message)


def format_duration(seconds: float | None) -> str:
    """12s, 4m05s, 2h07m; '?' when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class Progress:
    """`update(done, **fields)`: prints `label done/total unit  field=value ...  rate  elapsed  ETA` when due.

    `fields` are shown in order (floats with 4 significant digits); `rate_scale` turns the rate into another unit
    (e.g. tokens per step -> tokens/s, shown as `rate_unit`)."""

    def __init__(self, label: str, total: int, *, done: int = 0, unit: str = "", interval_s: float = 30.0,
                 stream: TextIO | None = None, clock=time.monotonic, rate_scale: float = 1.0, rate_unit: str = ""):
        self.label, self.total, self.unit, self.interval_s = label, total, unit, interval_s
        self.start_done = self.done = done
        self.stream, self.clock = stream, clock
        self.rate_scale, self.rate_unit = rate_scale, rate_unit or (f"{unit}/s" if unit else "/s")
        self.started = clock()
        self._last_print: float | None = None
        self.fields: dict = {}

    def elapsed_s(self) -> float:
        return self.clock() - self.started

    def rate(self) -> float | None:
        """Work per second over this run so far (None before any)."""
        ran, elapsed = self.done - self.start_done, self.elapsed_s()
        return ran / elapsed if ran > 0 and elapsed > 0 else None

    def eta_s(self) -> float | None:
        rate = self.rate()
        return (self.total - self.done) / rate if rate else None

    def line(self) -> str:
        parts = [f"{self.label} {self.done}/{self.total}" + (f" {self.unit}" if self.unit else "")]
        for k, v in self.fields.items():
            parts.append(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}")
        rate = self.rate()
        if rate:
            parts.append(f"{rate * self.rate_scale:.4g} {self.rate_unit}")
        parts.append(f"elapsed {format_duration(self.elapsed_s())}")
        if self.done < self.total:
            parts.append(f"ETA {format_duration(self.eta_s())}")
        return "  ".join(parts)

    def due(self) -> bool:
        return self._last_print is None or self.clock() - self._last_print >= self.interval_s

    def update(self, done: int, force: bool = False, **fields) -> bool:
        """Records progress; prints a line when due (or `force`, or at the end). Returns whether it printed."""
        self.done = done
        self.fields.update(fields)
        if not (force or self.due() or done >= self.total):
            return False
        self._last_print = self.clock()
        _emit(self.line(), self.stream)
        return True

    def close(self) -> None:
        if self._last_print is None or self.done != self.total:
            self.update(self.done, force=True)
