"""Evaluation progress: tasks done/total, pass rate so far, ETA, through the one progress helper
(`hrm_jax.progress`, pure Python). A line at least every `interval_s` (default 30 s) and at the end."""
from __future__ import annotations

from typing import TextIO

from hrm_jax.progress import Progress as _Progress, format_duration  # noqa: F401 (re-exported)


class Progress(_Progress):
    """`update(done, passed, judged)`; the ETA is from this run's pace (resumed tasks count as done)."""

    def __init__(self, name: str, total: int, done: int = 0, stream: TextIO | None = None,
                 interval_s: float = 30.0):
        super().__init__(f"[{name}]", total, done=done, unit="tasks", interval_s=interval_s, stream=stream)

    def update(self, done: int, passed: int = 0, judged: int = 0, force: bool = False, **fields) -> bool:
        rate = f"{passed}/{judged} ({100 * passed / judged:.1f}%)" if judged else "0 judged"
        return super().update(done, force=force, passed=rate, **fields)
