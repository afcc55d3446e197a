"""A one-line progress display (count, rate, ETA) for long generation runs, on stderr."""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    """Seconds as H:MM:SS or M:SS."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts finished items out of ``total`` and redraws one status line at most every
    ``interval`` seconds: ``label: done/total (pct) rate/s elapsed ETA``."""

    def __init__(self, total: int, label: str, stream=None, interval: float = 0.5, clock=time.monotonic):
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.start = clock()
        self.done = 0
        self._last_draw = None
        self._drawn_done = None

    def line(self) -> str:
        """The current status line."""
        elapsed = self.clock() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = format_duration((self.total - self.done) / rate) if rate > 0 else "?"
        return (f"{self.label}: {self.done}/{self.total} ({pct:.0f}%) {rate:.2f}/s "
                f"elapsed {format_duration(elapsed)} ETA {eta}")

    def update(self, n: int = 1) -> None:
        """Records ``n`` more finished items and redraws when due."""
        self.done += n
        now = self.clock()
        if self._last_draw is None or now - self._last_draw >= self.interval or self.done >= self.total:
            self._last_draw = now
            self._draw(self.line())

    def close(self) -> None:
        """Draws the final line (unless it is already shown) and ends it."""
        self._draw(self.line() if self._drawn_done != self.done else "", end="\n")

    def _draw(self, line: str, end: str = "") -> None:
        if line:
            self.stream.write("\r" + line)
            self._drawn_done = self.done
        self.stream.write(end)
        self.stream.flush()
