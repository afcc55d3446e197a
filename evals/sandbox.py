"""Run untrusted Python programs in contained processes.

This module runs a program and reports how it ended; it does not judge candidates. A program's own account
of its end can be faked by the program, so benchmark verdicts come from evals/judging.py: the candidate
returns values over a pipe (`RunIO`), and they are compared outside its process.

Each program runs in its own process tree under evals/isolation/bootstrap.py, with layers
applied where the kernel allows and weaker fallbacks where it does not:

  time       RLIMIT_CPU (SIGXCPU, then SIGKILL) and a wall-clock limit enforced by a monitor
             process, backed by a supervisor-side kill of the whole tree.
  memory     RLIMIT_AS; RLIMIT_FSIZE per file; the work dir is a size-capped tmpfs when a mount namespace
             is available; memory outside the address space is refused by seccomp (memfd_create, SysV
             shmget/msgget/semget, mq_open).
  processes  a uid of its own per concurrent run (root drops to a free uid of [uid, uid + uid_pool), held by
             an flock), so RLIMIT_NPROC binds each run alone; a pid namespace (its death kills every process
             in it), plus a subreaper monitor that kills any leftover descendant, so nothing outlives the run.
  network    a fresh network namespace (no interfaces up); a seccomp filter refusing every
             socket but AF_UNIX (x86_64/aarch64); Landlock denying TCP. Only if neither the
             namespace nor seccomp is available, an in-process Python guard (weak: ctypes
             gets past it).
  files      a minimal root (pivot_root): the interpreter, its standard library, the shared libraries,
             the `packages` allowed, the `toolchain_dirs` (compilers, for evals/polyglot_sandbox.py), all
             read-only, and the work dir; no checkout, data, home, site-packages
             or host sockets. Where it cannot be built: the dropped uid cannot write where others cannot,
             /tmp, /var/tmp and /dev/shm are covered by read-only tmpfs. Landlock limits writes to the work
             dir and /dev/null either way.
  state      a fresh IPC namespace (SysV objects and POSIX queues die with the run); seccomp refuses the
             kernel keyring (add_key, request_key, keyctl), connect/bind (no unix socket reached or
             published by path) and sends that carry an address; socketpair() stays usable.
  signals    the program cannot signal its supervisor: other uid (root case), other pid
             namespace, Landlock signal scoping.
  other      scrubbed environment (PATH, LANG, HOME/TMPDIR = work dir), stdin /dev/null,
             a fresh work dir removed afterwards, capped stdout/stderr that are read to the
             end (a flood costs CPU time, not memory), no core dumps.

Run as root (CI), everything above applies. As another user, the uid drop is replaced by a
user namespace (when unprivileged ones are allowed), and concurrent programs share the uid's
process count. Verdict.isolation lists the layers that were actually applied.

Without a mount namespace, the interpreter's standard library must be readable by `uid`
(with one, directories under a closed parent such as /root are bound or exposed into view).
"""
import fcntl
import importlib.util
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evals.capped_buffer import CappedBuffer
from evals.verdict import Status, Verdict, classify

_BOOTSTRAP = Path(__file__).resolve().with_name("isolation") / "bootstrap.py"
_RESULT_CAP = 1 << 20
_REPLIES_CAP = 16 << 20  # all values one run returns
_BACKSTOP_GRACE_S = 5.0  # monitor start-up and clean-up, beyond the wall limit
_DRAIN_AFTER_KILL_S = 1.0


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits and isolation switches for one program."""

    cpu_seconds: float = 10.0
    wall_seconds: float = 15.0
    memory_bytes: int = 1 << 30         # address space
    file_size_bytes: int = 16 << 20     # largest file the program may write
    max_processes: int = 64             # for the run's uid (each concurrent run has its own)
    output_bytes: int = 64 << 10        # kept of stdout (its start) and of stderr (its end)
    uid: int = 1_900_000_000            # started as root, a run takes a free uid (= gid) of [uid, uid + uid_pool)
    uid_pool: int = 4096
    open_files: int = 256
    workdir_bytes: int = 64 << 20       # size of the work dir's tmpfs, where one can be mounted
    packages: tuple[str, ...] = ()      # installed top-level packages a program may import (beyond the stdlib)
    toolchain_dirs: tuple[str, ...] = ()  # host paths exposed read-only at their own paths (compilers, jars)
    namespaces: bool = True             # the switches below exist to test the fallbacks
    minimal_root: bool = True
    landlock: bool = True
    seccomp: bool = True

    def __post_init__(self):
        object.__setattr__(self, "packages", tuple(self.packages))
        object.__setattr__(self, "toolchain_dirs", tuple(self.toolchain_dirs))
        for path in self.toolchain_dirs:
            if not os.path.isabs(path):
                raise ValueError(f"SandboxLimits.toolchain_dirs: {path!r} is not an absolute path")
        for name in ("cpu_seconds", "wall_seconds", "memory_bytes", "file_size_bytes", "max_processes",
                     "output_bytes", "open_files", "workdir_bytes", "uid_pool"):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)}")


def _scrubbed_env(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "HOME": workdir, "TMPDIR": workdir, "TMP": workdir, "TEMP": workdir}


class _UidLease:
    """A uid of the pool that no other run holds, in this process or another (an flock per uid).

    One uid per concurrent run makes RLIMIT_NPROC per run: a fork bomb exhausts only its own count.
    """

    _LOCK_DIR = Path(tempfile.gettempdir()) / "hrm_sandbox_uids"

    def __init__(self, limits: SandboxLimits):
        self.uid, self._fd = None, None
        if os.geteuid() != 0:
            return  # unprivileged: programs run as the caller in a user namespace
        self._LOCK_DIR.mkdir(mode=0o700, exist_ok=True)
        start = int.from_bytes(os.urandom(2), "little") % limits.uid_pool  # spread reuse over the pool
        for offset in range(limits.uid_pool):
            uid = limits.uid + (start + offset) % limits.uid_pool
            fd = os.open(self._LOCK_DIR / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uid, self._fd = uid, fd
            return
        raise RuntimeError(f"all {limits.uid_pool} sandbox uids from {limits.uid} are in use")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def package_dirs(packages: Sequence[str]) -> list[str]:
    """The install locations (package dir or module file, plus a `<name>.libs` beside it) of `packages`."""
    dirs = []
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin in (None, "built-in", "frozen"):
            raise ValueError(f"SandboxLimits.packages: {name!r} is not an installed package")
        location = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
        dirs.append(location)
        libs = os.path.join(os.path.dirname(location), f"{name}.libs")
        if os.path.isdir(libs):
            dirs.append(libs)
    return dirs


def _prepare_dirs(base: Path, source: str, uid: int | None) -> tuple[Path, Path]:
    """base/program.py (readable only by us) and base/work (the program's own, empty)."""
    program, workdir = base / "program.py", base / "work"
    program.write_bytes(source.encode("utf-8", errors="surrogatepass"))
    program.chmod(0o600)
    workdir.mkdir(mode=0o700)
    if uid is not None:
        os.chown(workdir, uid, uid)
    base.chmod(0o711)
    return program, workdir


def _remove_tree(path: Path) -> None:
    def make_writable_and_retry(function, failed_path, _exc):
        try:
            os.chmod(os.path.dirname(failed_path), 0o700)
            function(failed_path)
        except OSError:
            pass

    handler = {"onexc" if sys.version_info >= (3, 12) else "onerror": make_writable_and_retry}
    shutil.rmtree(path, **handler)


def _parse_results(data: bytes) -> tuple[int | None, dict | None]:
    """The init pid and the final record from the monitor's JSON lines."""
    init_pid, final = None, None
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if "init_pid" in record:
            init_pid = record["init_pid"]
        else:
            final = record
    return init_pid, final


def _kill_run(monitor: subprocess.Popen, init_pid: int | None) -> None:
    """SIGKILL the monitor's process group and the init process (and with it a pid namespace)."""
    for kill, target in ((os.killpg, monitor.pid), (os.kill, init_pid), (os.killpg, init_pid)):
        if target is not None:
            try:
                kill(target, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _drain(monitor: subprocess.Popen, result_fd: int, sinks: dict[int, CappedBuffer], deadline: float) -> bool:
    """Read all pipes to EOF into their capped sinks; kill the run at `deadline`. True if killed."""
    killed = False
    with selectors.DefaultSelector() as selector:
        for fd in sinks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if killed:
                    break  # something still holds a pipe open; give up on it
                init_pid, _ = _parse_results(sinks[result_fd].getvalue())
                _kill_run(monitor, init_pid)
                killed, deadline = True, time.monotonic() + _DRAIN_AFTER_KILL_S
                continue
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    sinks[key.fd].append(chunk)
                else:
                    selector.unregister(key.fd)
    return killed


@dataclass(frozen=True)
class RunIO:
    """What a run exchanges beyond stdout/stderr (evals/isolation/bootstrap.py `_serve` has the protocol).

    `requests`: test calls the program answers after it ran (JSON lines); the answers come back in
    RunResult.replies. `fds`: inherited fds by role, for a run wired to a peer run ("requests_fd" and
    "replies_fd" for a serving candidate, "channel_in"/"channel_out" for a judge); they are closed here.
    """

    requests: bytes | None = None
    setup: str = ""                # run in the program's namespace before the calls (MBPP test_setup_code)
    stop_on_raise: bool = True
    fds: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    verdict: Verdict               # how the process ended, by its own account: trusted only for trusted code
    replies: bytes = b""
    replies_truncated: bool = False


def run_program(source: str, limits: SandboxLimits = SandboxLimits()) -> Verdict:
    """Run one program in the sandbox and return how it ended (never raises for the program's sake).

    The verdict is the program's own account of its end: a hostile program can fake "passed". Candidates are
    judged by evals.judging, which compares the values they return outside their process.
    """
    return run_sandboxed(source, limits).verdict


def run_sandboxed(source: str, limits: SandboxLimits = SandboxLimits(), io: RunIO = RunIO()) -> RunResult:
    """Run one program in the sandbox, answering io.requests or talking over io.fds."""
    started = time.monotonic()
    extra = dict(io.fds)
    lease, base, replies_r = None, None, None
    try:
        lease = _UidLease(limits)
        base = Path(tempfile.mkdtemp(prefix="hrm_sandbox_"))
        program, workdir = _prepare_dirs(base, source, lease.uid)
        if io.requests is not None:
            requests = base / "requests.jsonl"
            requests.write_bytes(io.requests)
            requests.chmod(0o600)
            extra["requests_fd"] = os.open(requests, os.O_RDONLY | os.O_CLOEXEC)
            replies_r, extra["replies_fd"] = os.pipe()
        result_r, result_w = os.pipe()
        config = dict(asdict(limits), uid=lease.uid, gid=lease.uid, program_path=str(program),
                      workdir=str(workdir), base_dir=str(base), result_fd=result_w,
                      package_dirs=package_dirs(limits.packages), setup=io.setup,
                      stop_on_raise=io.stop_on_raise, **extra)
        try:
            monitor = subprocess.Popen(
                [sys.executable, "-I", "-B", str(_BOOTSTRAP), json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(result_w, *extra.values()), cwd="/", env=_scrubbed_env(str(workdir)),
                start_new_session=True)
        except BaseException:
            os.close(result_r)
            raise
        finally:
            os.close(result_w)
            for fd in extra.values():
                os.close(fd)
            extra = {}
        stdout = CappedBuffer(limits.output_bytes, keep="head")
        stderr = CappedBuffer(limits.output_bytes, keep="tail")
        results = CappedBuffer(_RESULT_CAP, keep="head")
        replies = CappedBuffer(_REPLIES_CAP, keep="head")
        sinks = {monitor.stdout.fileno(): stdout, monitor.stderr.fileno(): stderr, result_r: results}
        if replies_r is not None:
            sinks[replies_r] = replies
        try:
            backstop_fired = _drain(monitor, result_r, sinks,
                                    time.monotonic() + limits.wall_seconds + _BACKSTOP_GRACE_S)
        finally:
            os.close(result_r)
            monitor.stdout.close()
            monitor.stderr.close()
            try:
                monitor.wait(timeout=_DRAIN_AFTER_KILL_S)
            except subprocess.TimeoutExpired:
                _kill_run(monitor, None)
                monitor.wait()
        _, record = _parse_results(results.getvalue())
    finally:
        for fd in [*extra.values(), replies_r]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if base is not None:
            _remove_tree(base)
        if lease is not None:
            lease.release()
    verdict = classify(record, stdout=stdout.text(), stderr=stderr.text(),
                       output_truncated=stdout.truncated or stderr.truncated,
                       duration_s=time.monotonic() - started, cpu_limit_s=limits.cpu_seconds,
                       wall_limit_s=limits.wall_seconds, backstop_fired=backstop_fired)
    return RunResult(verdict, replies.getvalue(), replies.truncated)


def _run_contained(source: str, limits: SandboxLimits) -> Verdict:
    try:
        return run_program(source, limits)
    except Exception as exc:  # a sandbox failure on one program must not end the evaluation
        return Verdict(Status.ERROR, "SandboxError", f"{type(exc).__name__}: {exc}"[:2000])


def run_many(programs: Sequence[str], max_workers: int | None = None,
             limits: SandboxLimits = SandboxLimits()) -> list[Verdict]:
    """Run programs concurrently (one supervising thread each) and return verdicts in input order."""
    workers = max_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda source: _run_contained(source, limits), programs))
