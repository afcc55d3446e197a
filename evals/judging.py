"""Verdicts a candidate cannot forge: it only returns values; they are compared where it cannot reach.

Decomposed tests (evals/test_plan.py): the candidate's sandbox evaluates the test calls and returns encoded
values; this process decodes them as builtin data and evaluates each check, in the benchmark's order. The
first check that does not hold decides: a call that raised gives ERROR with its exception type, a value
that fails the check gives FAILED (AssertionError, with the assert and the value returned); a run that ended
before answering gives its own TIMEOUT / KILLED / ERROR. All checks hold: PASSED.

Script tests: the benchmark's test code runs in a second sandbox, the judge, holding no candidate code; its
candidate functions are stubs that send their arguments to the candidate's sandbox over a pipe and get back
encoded values. The judge's verdict is the verdict (the judge runs only benchmark code on builtin data).
"""
from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from evals.isolation import values
from evals.sandbox import RunIO, RunResult, SandboxLimits, run_sandboxed
from evals.test_plan import TestPlan
from evals.verdict import MESSAGE_CHARS, Status, Verdict

_SHOWN_VALUE_CHARS = 300
_JUDGE_PREAMBLE = '''
def __sandbox_remote_factory():
    import builtins, json, os
    from _sandbox_isolation import values
    replies = os.fdopen(__sandbox_channel__[0], "rb")
    requests_fd = __sandbox_channel__[1]

    class CandidateExited(BaseException):
        """The candidate's process ended (or broke the protocol) before answering a call."""

    def exception(name, message):
        cls = getattr(builtins, name, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            cls = type(name, (Exception,), {})
        try:
            return cls(message)
        except Exception:
            return Exception(f"{name}: {message}")

    def remote(name):
        def call(*args, **kwargs):
            request = ('{"call":' + json.dumps(name) + ',"args":' + values.encode(list(args))
                       + ',"kwargs":' + values.encode(kwargs) + '}\\n').encode()
            try:
                while request:
                    request = request[os.write(requests_fd, request):]
            except OSError:
                raise CandidateExited(f"{name}: the candidate's process is gone") from None
            line = replies.readline(%(cap)d)
            if not line.endswith(b"\\n"):
                raise CandidateExited(f"{name}: the candidate's process ended before answering")
            try:
                reply = json.loads(line)
                if "value" in reply:
                    return values.decode_tree(reply["value"])
            except ValueError:
                raise CandidateExited(f"{name}: the candidate sent a malformed reply") from None
            if "raised" in reply:
                raise exception(str(reply["raised"]), str(reply.get("message", "")))
            raise AssertionError(f"{name}(...) returned something that is not builtin data: {reply.get('unencodable')}")
        call.__name__ = name
        return call
    return remote
__sandbox_remote = __sandbox_remote_factory()
del __sandbox_remote_factory
'''
_REPLY_CAP = 16 << 20


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[:_SHOWN_VALUE_CHARS] + "..."


def _replies(result: RunResult) -> list[dict]:
    out = []
    for line in result.replies.split(b"\n")[:-1]:  # a last line without its newline is cut off
        try:
            reply = json.loads(line)
        except ValueError:
            reply = {"malformed": "not JSON"}
        out.append(reply if isinstance(reply, dict) else {"malformed": "not an object"})
    return out


def _with(run: Verdict, status: Status, error_type: str | None, message: str) -> Verdict:
    return Verdict(status, error_type, message[-MESSAGE_CHARS:], duration_s=run.duration_s,
                   output_truncated=run.output_truncated, stdout=run.stdout, exit_code=run.exit_code,
                   cpu_seconds=run.cpu_seconds, isolation=run.isolation)


def _unanswered(run: Verdict, call: str) -> Verdict:
    """The run ended before returning the value of `call`: its own ending says why."""
    if run.status is Status.PASSED:
        return _with(run, Status.ERROR, "EarlyExit", f"the program ended before returning {call}")
    return run


def decide(plan: TestPlan, result: RunResult) -> Verdict:
    """The verdict for a decomposed plan from the candidate run's replies (see the module docstring).

    Messages quote the failing assert and the values returned when the tests are public (MBPP shows them
    in the prompt); for hidden tests (HumanEval) they say only which test failed.
    """
    run, replies = result.verdict, _replies(result)
    decoded: dict[int, object] = {}
    for number, check in enumerate(plan.checks, start=1):
        where = check.source if plan.public else f"test {number} of {len(plan.checks)} (hidden)"

        def returned(indices):
            if not plan.public:
                return ""
            return "\n" + "\n".join(f"{plan.calls[i]} returned {_short(decoded[i])}" for i in indices)

        for index in check.calls:
            call = plan.calls[index] if plan.public else "a test call"
            if index >= len(replies):
                if result.replies_truncated:
                    return _with(run, Status.ERROR, "OutputLimit", f"the values returned exceed the cap, at {where}")
                return _unanswered(run, call)
            reply = replies[index]
            if "raised" in reply:
                name = str(reply["raised"])
                return _with(run, Status.ERROR, name, f"{where}: {call} raised {name}\n{run.message}")
            if "value" not in reply:
                why = reply.get("unencodable") or reply.get("malformed")
                return _with(run, Status.FAILED, "AssertionError",
                             f"{where}: {call} returned {why} (only builtin data is compared)")
            if index not in decoded:
                try:
                    decoded[index] = values.decode_tree(reply["value"])
                except values.Malformed as e:
                    return _with(run, Status.FAILED, "AssertionError", f"{where}: {call} returned {e}")
        try:
            holds = check.evaluate(decoded)
        except Exception as e:  # the benchmark's own check raising on this value, e.g. TypeError
            return _with(run, Status.ERROR, type(e).__name__, f"{type(e).__name__}: {e} in {where}"
                         + returned(check.calls))
        if not holds:
            return _with(run, Status.FAILED, "AssertionError", f"{where} failed" + returned(check.calls))
    return _with(run, Status.PASSED, None, "")


def _requests(plan: TestPlan) -> bytes:
    return b"".join(json.dumps({"expr": call}).encode() + b"\n" for call in plan.calls)


def _judge_program(plan: TestPlan) -> str:
    stubs = "".join(f"{name} = __sandbox_remote({name!r})\n" for name in plan.entry_points)
    preamble = _JUDGE_PREAMBLE % {"cap": _REPLY_CAP}
    if plan.setup:  # MBPP: stubs first, since the setup may build inputs from the solution's classes
        return preamble + stubs + plan.script
    # HumanEval: the prompt defines helpers (and a stand-in for the entry point), then the stubs replace it
    head, call = plan.script.rsplit("\ncheck(", 1)
    return preamble + head + "\n" + stubs + "check(" + call


def _judge_script(candidate: str, plan: TestPlan, limits: SandboxLimits) -> Verdict:
    """Run the judge and the candidate side by side, wired by two pipes; the judge's verdict decides."""
    requests_r, requests_w = os.pipe()
    replies_r, replies_w = os.pipe()
    outcome: dict[str, RunResult] = {}

    def serve():
        outcome["candidate"] = run_sandboxed(candidate, limits, RunIO(  # the judge runs any setup itself
            stop_on_raise=False, fds={"requests_fd": requests_r, "replies_fd": replies_w}))

    server = threading.Thread(target=serve, name="sandbox-candidate")
    try:
        server.start()
    except BaseException:
        for fd in (requests_r, replies_w):
            os.close(fd)
        raise
    judge = run_sandboxed(_judge_program(plan), limits, RunIO(fds={"channel_in": replies_r,
                                                                   "channel_out": requests_w})).verdict
    server.join()
    run = outcome["candidate"].verdict
    if judge.error_type == "CandidateExited":
        return _unanswered(run, "the test's calls") if run.status is Status.PASSED else run
    if judge.passed:
        return _with(run, Status.PASSED, None, "")
    message = judge.message if not run.message else f"{judge.message}\n--- the candidate's stderr ---\n{run.message}"
    return _with(run, judge.status, judge.error_type, message)


def judge_candidate(candidate: str, plan: TestPlan, limits: SandboxLimits = SandboxLimits()) -> Verdict:
    """The verdict for one candidate program (its source, before any test) on one task's tests."""
    if plan.decomposed:
        return decide(plan, run_sandboxed(candidate, limits, RunIO(requests=_requests(plan), setup=plan.setup)))
    return _judge_script(candidate, plan, limits)


def _contained(candidate: str, plan: TestPlan, limits: SandboxLimits) -> Verdict:
    try:
        return judge_candidate(candidate, plan, limits)
    except Exception as exc:  # a sandbox failure on one program must not end the evaluation
        return Verdict(Status.ERROR, "SandboxError", f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS])


def judge_many(items: Sequence[tuple[str, TestPlan]], max_workers: int | None = None,
               limits: SandboxLimits = SandboxLimits()) -> list[Verdict]:
    """judge_candidate on (candidate, plan) pairs concurrently; verdicts in input order."""
    workers = max_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="judge") as pool:
        return list(pool.map(lambda item: _contained(item[0], item[1], limits), items))
