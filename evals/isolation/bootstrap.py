"""Sandbox bootstrap, started by evals.sandbox as `python -I -B bootstrap.py CONFIG_JSON`.

Why a script instead of subprocess's preexec_fn: preexec_fn runs Python between fork and exec
in a multi-threaded parent (run_many supervises from threads), which can deadlock; here all
set-up runs in a fresh single-threaded interpreter, and it needs a fork of its own anyway
(a new pid namespace only applies to children). `-I` keeps PYTHON* variables, the user site
and the current directory out; not `-S`, so programs may still import installed packages.

Three processes:
  monitor  this script's process (root, or the caller's uid; in the caller's pid namespace).
           Enters fresh namespaces, mounts the work dir, enforces the wall-time limit,
           kills whatever is left, and writes JSON lines to the result fd.
  init     pid 1 of the new pid namespace when there is one (plain child otherwise). Reaps
           zombies and reports the program's wait status and CPU time to the monitor over a
           pipe the program never holds; its death takes the whole namespace down.
  program  sets rlimits, drops to the sandbox uid, applies Landlock and seccomp, then runs
           the untrusted source in a fresh __main__ module and reports how it ended.

How the program ended (passed / AssertionError / other exception type) travels over a
dedicated pipe, not stderr, in lines that start with a random per-run nonce; the monitor
takes the first such line. Printing cannot forge it; code that deliberately digs the nonce
out of the interpreter's memory could, which only lets a program misreport its own result
(the limits and the isolation do not depend on it). A program that exits before its source
finishes (os._exit, sys.exit, a killed process) never reports "passed".

Sibling modules are loaded as the package `_sandbox_isolation`, so `evals/__init__.py`
(and anything it might import) is never executed here.
"""
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
import types

_HERE = os.path.dirname(os.path.abspath(__file__))
_package = types.ModuleType("_sandbox_isolation")
_package.__path__ = [_HERE]
sys.modules[_package.__name__] = _package

from _sandbox_isolation import (landlock, minimal_root, namespaces, process_tree, seccomp,  # noqa: E402
                                socket_guard, syscalls, values)

_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_REPORT_CAP = 1 << 20
_REQUEST_CAP = 16 << 20
_IO_FDS = ("requests_fd", "replies_fd", "channel_in", "channel_out")  # optional extra fds (see _serve)
_WRITABLE_FILES = ["/dev/null"]


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _read_available(fd: int, cap: int) -> bytes:
    """Whatever is buffered in a pipe now, up to `cap` bytes, without blocking."""
    os.set_blocking(fd, False)
    chunks, size = [], 0
    while size < cap:
        try:
            chunk = os.read(fd, min(65536, cap - size))
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _json_line(record: dict) -> bytes:
    return (json.dumps(record) + "\n").encode()


# ---------------------------------------------------------------- program process


class _Reporter:
    """Sends nonce-tagged JSON lines to the monitor."""

    def __init__(self, fd: int, nonce: str):
        self._fd, self._prefix = fd, nonce.encode() + b" "

    def send(self, record: dict) -> None:
        try:
            _write_all(self._fd, self._prefix + _json_line(record))
        except OSError:
            pass


def _real_type_name(cls: type) -> str:
    """The class's own __name__, ignoring any metaclass that would report another."""
    return type.__dict__["__name__"].__get__(cls, type)


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass


def _print_traceback(exc: BaseException) -> None:
    """Print like the interpreter would (minus bootstrap frames), on fd 2 itself."""
    tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
    try:
        with open(2, "w", closefd=False, errors="replace") as err:
            traceback.print_exception(type(exc), exc, tb, file=err)
    except BaseException:
        try:
            os.write(2, _real_type_name(type(exc)).encode() + b"\n")
        except OSError:
            pass


def _exception_outcome(exc: BaseException) -> dict:
    try:
        message = str(exc)[:1000]
    except BaseException:
        message = ""
    status = "failed" if issubclass(type(exc), AssertionError) else "error"
    return {"kind": "outcome", "status": status, "error_type": _real_type_name(type(exc)), "message": message}


def _write_reply(fd: int, reply: dict | str) -> None:
    line = reply if isinstance(reply, str) else json.dumps(reply)
    try:
        _write_all(fd, line.encode("utf-8", errors="replace") + b"\n")
    except OSError:
        pass


def _serve(namespace: dict, config: dict) -> None:
    """Answer test calls, one JSON line each, from requests_fd to replies_fd, until EOF.

    A request is {"expr": source} (a call evaluated in the program's namespace, as the benchmark's assert
    would) or {"call": name, "args": [...], "kwargs": {...}} (values in the evals.isolation.values format).
    A reply is {"value": v}, {"unencodable": why} or {"raised": type name, "message": str}. Only values
    leave: what they are compared with, and how, the program never sees. With `stop_on_raise`, serving ends
    at the first call that raises (the later ones cannot change the verdict).
    """
    replies_fd = config["replies_fd"]
    with open(config["requests_fd"], "rb", closefd=True) as requests:
        for line in requests:
            if len(line) > _REQUEST_CAP:
                break
            request = json.loads(line)
            try:
                if "expr" in request:
                    value = eval(compile(request["expr"], "<test>", "eval", dont_inherit=True), namespace)
                else:
                    value = namespace[request["call"]](*values.decode_tree(request["args"]),
                                                       **values.decode_tree(request["kwargs"]))
            except BaseException as exc:
                _flush_std_streams()
                _print_traceback(exc)
                outcome = _exception_outcome(exc)
                _write_reply(replies_fd, {"raised": outcome["error_type"], "message": outcome["message"]})
                if config.get("stop_on_raise"):
                    return
                continue
            try:
                reply = '{"value":' + values.encode(value) + "}"
            except values.Unencodable as exc:
                reply = {"unencodable": str(exc)}
            except BaseException as exc:  # a subclass's hooks raising while its base value is read, ...
                reply = {"unencodable": f"{_real_type_name(type(exc))} while reading the value"}
            _write_reply(replies_fd, reply)


def _run_source(source: bytes, reporter: _Reporter, config: dict) -> None:
    """Execute the program as __main__ (then its setup and test calls, when serving), report, exit.

    Never returns. The report is the program's own account: the evaluator decides verdicts from the
    values served (or from a separate judge process), never from it.
    """
    main_pid = os.getpid()
    module = types.ModuleType("__main__")
    sys.modules["__main__"] = module
    sys.argv = ["program.py"]
    if "channel_in" in config:
        module.__dict__["__sandbox_channel__"] = (config["channel_in"], config["channel_out"])
    try:
        exec(compile(source, "program.py", "exec", dont_inherit=True), module.__dict__)
        if config.get("setup"):
            exec(compile(config["setup"], "<test setup>", "exec", dont_inherit=True), module.__dict__)
        if "requests_fd" in config:
            _serve(module.__dict__, config)
    except BaseException as exc:
        _flush_std_streams()
        _print_traceback(exc)
        if os.getpid() == main_pid:  # copies made by the program's own fork() never report
            reporter.send(_exception_outcome(exc))
        os._exit(1)
    _flush_std_streams()
    if os.getpid() == main_pid:
        reporter.send({"kind": "outcome", "status": "passed"})
    os._exit(0)


def _close_fds_except(keep: set[int]) -> None:
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit = 65536 if limit == resource.RLIM_INFINITY else limit
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, limit)


def _io_fds(config: dict) -> set[int]:
    return {config[name] for name in _IO_FDS if name in config}


def _close_io_fds(config: dict) -> None:
    """The monitor and init hold no copy of the program's extra fds, so their peers see EOF when it ends."""
    for fd in _io_fds(config):
        try:
            os.close(fd)
        except OSError:
            pass


def _apply_rlimits(config: dict) -> None:
    cpu = max(1, int(-(-config["cpu_seconds"] // 1)))  # RLIMIT_CPU counts whole seconds
    for limit, value, hard in [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL one second on
        (resource.RLIMIT_AS, config["memory_bytes"], None),
        (resource.RLIMIT_FSIZE, config["file_size_bytes"], None),
        (resource.RLIMIT_NPROC, config["max_processes"], None),
        (resource.RLIMIT_NOFILE, config["open_files"], None),
        (resource.RLIMIT_CORE, 0, None),
    ]:
        resource.setrlimit(limit, (value, value if hard is None else hard))


def _drop_privileges(config: dict, layers: list[str]) -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(config["gid"], config["gid"], config["gid"])
        os.setresuid(config["uid"], config["uid"], config["uid"])  # clears all capabilities
        layers.append("uid")
    elif "userns" in layers:
        syscalls.clear_capabilities()  # the ones a fresh user namespace grants
        layers.append("nocaps")
    syscalls.prctl(_PR_SET_NO_NEW_PRIVS, 1)


def _program_process(source: bytes, config: dict, layers: list[str], report_w: int, nonce: str,
                     init_pid: int) -> None:
    _close_fds_except({report_w} | _io_fds(config))
    _apply_rlimits(config)
    os.chdir(config["workdir"])
    _drop_privileges(config, layers)
    syscalls.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
    if os.getppid() != init_pid:
        os._exit(72)  # init already gone
    if config["landlock"]:
        layers += landlock.restrict([config["workdir"]], _WRITABLE_FILES)
    if config["seccomp"] and seccomp.deny_network_sockets():
        layers.append("seccomp")
    if "netns" not in layers and "seccomp" not in layers:
        socket_guard.install()
        layers.append("socket-guard")
    reporter = _Reporter(report_w, nonce)
    reporter.send({"kind": "layers", "layers": layers})
    _run_source(source, reporter, config)


# ---------------------------------------------------------------- init process


def _init_process(source: bytes, config: dict, layers: list[str], pipes: dict, nonce: str) -> None:
    os.setsid()
    for name in ("result", "status_r", "report_r", "lifeline_w"):
        os.close(pipes[name])
    syscalls.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if select.select([pipes["lifeline_r"]], [], [], 0)[0]:
        os._exit(73)  # the monitor died before we armed the death signal
    if "pidns" in layers and "mountns" in layers:
        try:
            syscalls.unshare(namespaces.CLONE_NEWNS)
            namespaces.mount_proc()
            layers.append("proc")
        except OSError:
            pass
    my_pid = os.getpid()
    program_pid = os.fork()
    if program_pid == 0:
        try:
            os.close(pipes["status_w"])
            os.close(pipes["lifeline_r"])
            _program_process(source, config, layers, pipes["report_w"], nonce, my_pid)
        except BaseException as exc:  # set-up failed before any untrusted code ran
            _Reporter(pipes["report_w"], nonce).send(
                {"kind": "outcome", "status": "sandbox_error", "error_type": "SandboxError",
                 "message": "".join(traceback.format_exception(exc))[-1000:]})
        finally:
            os._exit(71)
    os.close(pipes["report_w"])
    _close_io_fds(config)
    record = {"wait_status": None}
    while True:  # reap everything; stop when the program itself is done
        try:
            pid, wait_status, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        if pid == program_pid:
            record = {"wait_status": wait_status, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "max_rss_kb": usage.ru_maxrss}
            break
    _write_all(pipes["status_w"], _json_line(record))
    os._exit(0)


# ---------------------------------------------------------------- monitor process


def _python_dirs() -> list[str]:
    """Directories the program's interpreter reads from: prefixes, sys.path, the binary's dir."""
    return [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
            os.path.dirname(os.path.realpath(sys.executable)), *sys.path]


def _isolate_filesystem(config: dict, layers: list[str], is_root: bool) -> None:
    """Mounts in the fresh mount namespace; each step is skipped if the kernel refuses it.

    First choice: a minimal root (interpreter, libraries, allowed packages, the work dir; see minimal_root).
    Where that cannot be built: the work dir's tmpfs, the interpreter exposed, world-writable dirs sealed.
    """
    try:
        namespaces.make_mounts_private()
    except OSError:
        return  # never mount anything that could propagate to the host
    uid, gid = (config["uid"], config["gid"]) if is_root else (os.geteuid(), os.getegid())
    if config["minimal_root"] and minimal_root.supported():
        binds, hidden = minimal_root.interpreter_dirs()
        root = os.path.join(config["base_dir"], "root")
        try:
            os.mkdir(root, 0o755)
            minimal_root.enter(root, binds=binds, hidden=hidden, packages=list(config["package_dirs"]),
                               workdir=config["workdir"], workdir_bytes=config["workdir_bytes"], uid=uid, gid=gid,
                               toolchains=list(config["toolchain_dirs"]))
            layers += ["minimal-root", "tmpfs"]
            return
        except OSError:
            try:
                syscalls.umount(root, 2)  # MNT_DETACH: drop the half-built tree, then fall back
            except OSError:
                pass
    steps = [
        ("tmpfs", lambda: namespaces.mount_tmpfs(config["workdir"], config["workdir_bytes"], uid, gid) or True),
        ("python-exposed", lambda: is_root and namespaces.expose_to(
            _python_dirs() + [os.path.realpath(d) for d in config["toolchain_dirs"]], uid, gid)),
        ("sealed-tmp", lambda: namespaces.seal_shared_dirs(keep=[os.path.realpath(config["workdir"])])),
    ]
    for layer, step in steps:
        try:
            if step():
                layers.append(layer)
        except OSError:
            pass


def _wait_until(pid: int, deadline: float) -> bool:
    """Wait for child `pid` to exit; SIGKILL it at `deadline`. True if it had to be killed."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    while True:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return True
        if pidfd is None:
            time.sleep(min(remaining, 0.01))
        else:
            select.select([pidfd], [], [], remaining)


def _first_reports(data: bytes, nonce: str) -> dict:
    prefix, found = nonce.encode() + b" ", {}
    for line in data.split(b"\n"):
        if line.startswith(prefix):
            try:
                record = json.loads(line[len(prefix):])
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("kind"), str):
                found.setdefault(record["kind"], record)
    return found


def _monitor(config: dict) -> dict:
    with open(config["program_path"], "rb") as f:
        source = f.read()
    is_root = os.geteuid() == 0
    layers = namespaces.enter_fresh_namespaces(is_root) if config["namespaces"] else []
    if "mountns" in layers:
        _isolate_filesystem(config, layers, is_root)
    pipes = {"result": config["result_fd"]}
    for name in ("status", "report", "lifeline"):
        pipes[name + "_r"], pipes[name + "_w"] = os.pipe()
    process_tree.become_subreaper()
    nonce = os.urandom(16).hex()
    started = time.monotonic()
    init_pid = os.fork()
    if init_pid == 0:
        try:
            _init_process(source, config, layers, pipes, nonce)
        finally:
            os._exit(70)
    for name in ("status_w", "report_w", "lifeline_r"):
        os.close(pipes[name])
    _close_io_fds(config)
    _write_all(pipes["result"], _json_line({"init_pid": init_pid}))
    timed_out = _wait_until(init_pid, started + config["wall_seconds"])
    process_tree.kill_descendants()
    status = {}
    for line in _read_available(pipes["status_r"], 4096).splitlines():
        status = json.loads(line)
    reports = _first_reports(_read_available(pipes["report_r"], _REPORT_CAP), nonce)
    return {
        "timed_out": timed_out,
        "wait_status": status.get("wait_status"),
        "cpu_seconds": status.get("cpu_seconds"),
        "max_rss_kb": status.get("max_rss_kb"),
        "outcome": reports.get("outcome"),
        "layers": reports.get("layers", {}).get("layers", layers),
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    try:
        record = _monitor(config)
    except BaseException:
        record = {"monitor_error": traceback.format_exc()[-4000:]}
        process_tree.kill_descendants()
    _write_all(config["result_fd"], _json_line(record))


if __name__ == "__main__":
    main()
