"""Runs check programs (MBPP, HumanEval) in one child Python process, each with a time limit."""
import json
import subprocess
import sys

_RUNNER = r"""
import json, signal, sys
def _timeout(*_):
    raise TimeoutError("time limit")
signal.signal(signal.SIGALRM, _timeout)
programs, limit = json.load(sys.stdin)
failures = {}
for key, program in programs.items():
    signal.alarm(limit)
    try:
        exec(compile(program, key, "exec"), {"__name__": "__main__"})
    except BaseException as e:
        failures[key] = f"{type(e).__name__}: {e}"
    finally:
        signal.alarm(0)
sys.__stdout__.write("\n" + json.dumps(failures))
"""


def failing_programs(programs: dict[str, str], limit_s: int = 10) -> dict[str, str]:
    """Key -> error of each program that raised (or ran over `limit_s`); empty when all passed."""
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps([programs, limit_s]),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.rsplit("\n", 1)[-1])
