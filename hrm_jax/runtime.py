"""Process set-up shared by the entry points (`hrm_jax.main`, `python -m evals.*`): quiet console, full log file.

`start(workdir)`:
  * keeps the terminal aside as the console (`hrm_jax.progress.console()`): progress lines, status lines from
    `progress.say`, and what this repository's own modules log (INFO and above, less per-step metric lines);
  * sends everything else written to stdout or stderr (file descriptors 1 and 2) into `<workdir>/log.txt`: SentencePiece's trainer
    output (C++), Orbax's INFO lines, JAX's platform probes (libtpu, CUDA), absl logging at INFO and above, and
    tracebacks. Nothing is dropped; the console only shows what a person should read;
  * sets XLA's memory-minimizing CPU scheduler (`step_memory.cpu_memory_flags`) before JAX starts a backend.
`fail(exc)` prints a one-line error and where the full log is.
"""

from __future__ import annotations

import logging as py_logging
import os
import sys
import traceback
from typing import TextIO

from absl import logging

from hrm_jax import progress, step_memory

LOG_NAME = "log.txt"
_OWN_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) + os.sep
                  for d in ("hrm_jax", "evals", "input_pipeline", "configs", "benchmarks"))
_STATE: dict = {}


def apply_xla_flags() -> None:
    """XLA_FLAGS plus the memory-minimizing CPU scheduler (read when JAX starts its first backend)."""
    os.environ["XLA_FLAGS"] = step_memory.cpu_memory_flags(os.environ.get("XLA_FLAGS", ""))


class _OwnRecords(py_logging.Filter):
    """What this repository's modules log at INFO and above (not libraries'), less the per-step metric lines
    (`metrics.MetricWriter`: they are in metrics.jsonl and the progress line already)."""

    def filter(self, record) -> bool:
        if record.levelno < py_logging.INFO or not record.pathname.startswith(_OWN_DIRS):
            return False
        return record.levelno >= py_logging.WARNING or not record.pathname.endswith(os.path.join("hrm_jax", "metrics.py"))


def log_path() -> str | None:
    return _STATE.get("log_path")


def start(workdir: str, *, console: TextIO | None = None, capture_stdout: bool = True) -> str:
    """Console aside, stderr (and stdout unless `capture_stdout=False`: a CLI whose stdout is its result) into
    `<workdir>/log.txt`; returns the log's path. Idempotent."""
    apply_xla_flags()
    if "log_path" in _STATE:
        return _STATE["log_path"]
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(os.path.abspath(workdir), LOG_NAME)
    sys.stderr.flush()
    if console is None:
        console = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")
    log = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 (process lifetime)
    sys.stdout.flush()
    os.dup2(log.fileno(), 2)  # native writes (SentencePiece, XLA) land in the log
    sys.stderr = log
    if capture_stdout:  # and so do the data builders' statistics (build_corpus prints them)
        os.dup2(log.fileno(), 1)
        sys.stdout = log
    handler = logging.get_absl_handler()
    handler.python_handler.stream = log  # absl INFO+ (Orbax, JAX probes, our own) into the log
    logging.set_verbosity(logging.INFO)
    echo = py_logging.StreamHandler(console)
    echo.addFilter(_OwnRecords())
    echo.setFormatter(py_logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    py_logging.getLogger().addHandler(echo)
    progress.set_console(console, log=log)
    _STATE.update(log_path=path, console=console, log=log)
    return path


def fail(exc: BaseException, *, prefix: str = "error") -> int:
    """`exc`'s type and message on the console (the traceback goes to the log); returns the exit status 1."""
    log = _STATE.get("log")
    if log is not None:
        traceback.print_exception(exc, file=log)
        log.flush()
    message = f"{type(exc).__name__}: {str(exc).strip()}" if str(exc).strip() else type(exc).__name__
    where = f"\n  (traceback in {log_path()})" if log_path() and "\n" in message else (
        f" (traceback in {log_path()})" if log_path() else "")
    stream = _STATE.get("console") or sys.stderr
    stream.write(f"{prefix}: {message}{where}\n")
    stream.flush()
    return 1


def run_or_fail(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` for a command-line entry point: an exception becomes one line on the console (the
    traceback in the log, where `start` sends library output) and exit status 1, instead of a silent exit."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001
        sys.exit(fail(e))


def _config_override_error(exc: BaseException, argv: list[str]) -> str | None:
    """'--config.train.stepz: no such field (did you mean --config.train.steps?)' for an unknown override."""
    import re  # noqa: PLC0415

    text = str(exc).encode().decode("unicode_escape").strip("'\" ")
    key = re.match(r"['\"]?([^'\"\s]+)['\"]?", text)
    if key is None:
        return None
    for arg in argv[1:]:
        name = arg.split("=", 1)[0].lstrip("-")
        if "." in name and name.split(".")[-1] == key.group(1):
            from hrm_jax.config import moved_field  # noqa: PLC0415 (only on this error)

            guess, moved = re.search(r'Did you mean "([^"]+)"', text), moved_field(name.removeprefix("config."))
            hint = f" (did you mean --{name.rsplit('.', 1)[0]}.{guess.group(1)}?)" if guess else ""
            hint = f" (it moved: --config.{moved})" if moved else hint
            return f"--{name}: no such config field{hint}"
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing whose errors are one line (the full key and a suggestion), not a chained traceback."""
    from absl import flags  # noqa: PLC0415

    try:
        return flags.FLAGS(argv)
    except flags.Error as e:
        sys.stderr.write(f"error: {e}\nusage: python -m {os.path.basename(argv[0])} --config=... --workdir=...\n")
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        line = _config_override_error(e, argv) or f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
        sys.stderr.write(f"error: {line}\n")
    sys.exit(2)


def exit_stopped(message: str) -> None:
    """The stop message (SIGTERM acted on) on the console and in the log, then exit 0 at once.

    Everything the run keeps is already on disk (the train loop closes its checkpoint manager before the stop
    propagates), but a helper thread may still be inside XLA (a compilation the stop interrupted): a normal
    interpreter shutdown would tear the runtime down under it and abort (SIGABRT, status -6). So the logs are
    flushed and the process ends with os._exit(0)."""
    progress.say(message)
    py_logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)
