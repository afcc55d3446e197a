"""Checkpoint-and-exit on SIGTERM (preemption, scheduler time limits, Ctrl-\\ from a launcher).

The handler only sets a flag; the train loop checks `requested(step)` once per step, saves a checkpoint of that
step and returns, so a rerun of the same command resumes exactly there. On several hosts the flag is agreed on
with an all-gather each step (a few bytes), so every host stops after the same step.
"""

from __future__ import annotations

import os
import signal
import sys
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

    def requested_here(self) -> bool:
        """This process's own flag, without agreeing with other hosts (for polling outside the step loop: an
        all-gather per poll would not line up across hosts)."""
        return self._flag

    def requested(self) -> bool:
        """True on every host once any host received the signal."""
        if jax.process_count() == 1:
            return self._flag
        flags = multihost_utils.process_allgather(np.int32(self._flag))
        return bool(np.max(flags))


def run_interruptible(fn, what: str, resume_hint: str, poll_s: float = 0.5):
    """Runs `fn()` in a helper thread while this (main) thread waits; SIGTERM in the meantime ends the process
    within `poll_s` with status 0, after saying "SIGTERM during <what>: <resume_hint>". For long work that can be
    resumed from what it already wrote (the evaluator appends each judged task to its samples.jsonl) and that
    may sit in compiled code for long stretches, where a Python signal handler would wait for it."""
    from hrm_jax.progress import say  # noqa: PLC0415

    result: dict = {}

    def work():
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (re-raised in the main thread)
            result["error"] = e

    stop = threading.Event()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if main_thread else None
    try:
        thread = threading.Thread(target=work, name=what, daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(poll_s)
            if stop.is_set():
                say(f"SIGTERM during {what}: {resume_hint}")
                for stream in (sys.stdout, sys.stderr):
                    try:
                        stream.flush()
                    except (OSError, ValueError):
                        pass
                os._exit(0)  # the worker may be inside XLA or a sandbox wait; what it finished is on disk
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if "error" in result:
        raise result["error"]
    return result.get("value")
