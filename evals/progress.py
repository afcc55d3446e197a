"""A one-line progress display on stderr: tasks done/total, pass rate so far, ETA."""
from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """`update(done, passed, judged)`; the ETA is from this run's pace (resumed tasks count as done)."""

    def __init__(self, name: str, total: int, done: int = 0, stream: TextIO | None = None):
        self.name, self.total, self.start_done = name, total, done
        self.stream = stream if stream is not None else sys.stderr
        self.started = time.monotonic()
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def line(self, done: int, passed: int, judged: int) -> str:
        rate = f"{passed}/{judged} passed ({100 * passed / judged:.1f}%)" if judged else "0 judged"
        ran, elapsed = done - self.start_done, time.monotonic() - self.started
        eta = _duration(elapsed / ran * (self.total - done)) if ran > 0 else "?"
        return f"[{self.name}] {done}/{self.total} tasks  {rate}  elapsed {_duration(elapsed)}  ETA {eta}"

    def update(self, done: int, passed: int, judged: int) -> None:
        text = self.line(done, passed, judged)
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
