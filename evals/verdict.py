"""What became of one sandboxed program: a Verdict, and how it is read off the raw run facts."""
import enum
import math
import os
import signal
from dataclasses import dataclass

MESSAGE_CHARS = 2000


class Status(enum.StrEnum):
    PASSED = "passed"    # the whole source ran to the end
    FAILED = "failed"    # an AssertionError escaped
    TIMEOUT = "timeout"  # CPU or wall time limit
    ERROR = "error"      # any other exception (error_type names it), or an exit before the end
    KILLED = "killed"    # died of a signal (error_type names it), e.g. SIGSEGV
    COMPILE_ERROR = "compile_error"  # the candidate did not compile (evals/polyglot_sandbox.py)


@dataclass(frozen=True)
class Verdict:
    status: Status
    error_type: str | None = None    # "NameError", "SIGSEGV", "EarlyExit", "SandboxError", ...
    message: str = ""                # the reason and the tail of stderr, at most MESSAGE_CHARS
    duration_s: float = 0.0
    output_truncated: bool = False   # stdout or stderr went over the output cap
    stdout: str = ""                 # the first output_bytes of stdout
    exit_code: int | None = None     # negative: killed by that signal
    cpu_seconds: float | None = None
    isolation: tuple[str, ...] = ()  # the layers applied, e.g. ("netns", "uid", "landlock-fs")

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED


def _tail(text: str, chars: int) -> str:
    """The last `chars` characters, starting at a line start where one falls inside them."""
    if chars <= 0:
        return ""
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    newline = cut.find("\n")
    return cut[newline + 1:] if 0 <= newline < len(cut) - 1 else cut


def _message(reason: str, stderr: str) -> str:
    reason = reason[:MESSAGE_CHARS]
    tail = _tail(stderr.rstrip(), MESSAGE_CHARS - len(reason) - 1)
    return f"{reason}\n{tail}" if reason and tail else reason or tail


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify(record: dict | None, *, stdout: str, stderr: str, output_truncated: bool, duration_s: float,
             cpu_limit_s: float, wall_limit_s: float, backstop_fired: bool = False) -> Verdict:
    """The Verdict for one run, from the monitor's final record (None if it sent none)."""
    common = {"duration_s": duration_s, "output_truncated": output_truncated, "stdout": stdout,
              "isolation": tuple((record or {}).get("layers") or ())}
    if backstop_fired:
        return Verdict(Status.TIMEOUT, message=_message("sandbox unresponsive; killed by the supervisor", stderr),
                       **common)
    if record is None or "monitor_error" in record:
        reason = (record or {}).get("monitor_error") or "the sandbox monitor sent no result"
        return Verdict(Status.ERROR, "SandboxError", _message(reason, stderr), **common)
    if record.get("timed_out"):
        return Verdict(Status.TIMEOUT, message=_message(f"wall time limit of {wall_limit_s:g}s exceeded", stderr),
                       cpu_seconds=record.get("cpu_seconds"), **common)
    if record.get("wait_status") is None:
        return Verdict(Status.ERROR, "SandboxError", _message("the program's exit status was lost", stderr), **common)
    code = os.waitstatus_to_exitcode(record["wait_status"])
    cpu = record.get("cpu_seconds") or 0.0
    facts = dict(common, exit_code=code, cpu_seconds=record.get("cpu_seconds"))
    if code < 0:
        killer = -code
        if killer == signal.SIGXCPU or (killer == signal.SIGKILL and cpu >= math.ceil(cpu_limit_s)):
            return Verdict(Status.TIMEOUT, message=_message(f"CPU time limit of {cpu_limit_s:g}s exceeded", stderr),
                           **facts)
        name = _signal_name(killer)
        return Verdict(Status.KILLED, name, _message(f"killed by {name}", stderr), **facts)
    outcome = record.get("outcome")
    if outcome is None:
        return Verdict(Status.ERROR, "EarlyExit",
                       _message(f"exited with code {code} before the program finished", stderr), **facts)
    error_type = outcome.get("error_type")
    detail = stderr if stderr.strip() else f"{error_type}: {outcome.get('message', '')}"
    if outcome.get("status") == "passed" and code == 0:
        return Verdict(Status.PASSED, message=_tail(stderr, MESSAGE_CHARS), **facts)
    if outcome.get("status") == "failed":
        return Verdict(Status.FAILED, error_type, _tail(detail, MESSAGE_CHARS), **facts)
    if outcome.get("status") == "error":
        return Verdict(Status.ERROR, error_type, _tail(detail, MESSAGE_CHARS), **facts)
    return Verdict(Status.ERROR, "SandboxError", _message(str(outcome.get("message", "")), stderr), **facts)
