"""Checkpoint-and-exit on SIGTERM (preemption, scheduler time limits, Ctrl-\\ from a launcher).

The handler only sets a flag; the train loop checks `requested(step)` once per step, saves a checkpoint of that
step and returns, so a rerun of the same command resumes exactly there. On several hosts the flag is agreed on
with an all-gather each step (a few bytes), so every host stops after the same step.
"""

from __future__ import annotations

import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils


class Preempted(Exception):
    """A stop request (SIGTERM) was acted on: what existed is checkpointed; the message says how to resume.
    Entry points exit 0 on it."""


class PreemptionSignal:
    def __init__(self, signals=(signal.SIGTERM,)):
        self.signals, self._flag, self._previous = signals, False, {}

    def __enter__(self) -> "PreemptionSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        del frame
        self._flag = True
        self.signal_name = signal.Signals(signum).name

    def requested(self) -> bool:
        """True on every host once any host received the signal."""
        if jax.process_count() == 1:
            return self._flag
        flags = multihost_utils.process_allgather(np.int32(self._flag))
        return bool(np.max(flags))
