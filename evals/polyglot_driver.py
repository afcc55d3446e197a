"""The program evals/polyglot_sandbox.py runs in the sandbox: write the files, run the steps, report.

It runs as the sandbox's Python program (evals/isolation/bootstrap.py) and is sent as source with its job
appended (`JOB = {...}`). It makes itself non-dumpable first, so the compilers and test binaries it starts
(same uid) cannot open its /proc entries (fds, memory) or ptrace it; they get fresh pipes for their output,
never its stdout, and no other fd. After the steps it prints one line, `<nonce> <json>`, on its stdout:
per step the exit status, whether it timed out, the CPU seconds, and the tail of its output. The verdict is
decided from that record by the parent (evals/polyglot_sandbox.py), not here.

A step marked "harness" gets a per-step secret S (fresh random bytes, drawn here) as its stdin: one end of a
socket pair (not a pipe, whose /proc/self/fd link a process could reopen to read what others write), S already
in it. The test framework's harness (evals/polyglot_harness) reads S before any candidate code runs and writes
one line per test on the same socket, `S <status> <name>`; lines without S are dropped, S is stripped, and the
step's record lists [status, name] per test ("reports"), capped at MAX_REPORTS records and MAX_REPORT_BYTES ("reports_truncated").
"""
DRIVER = r'''
import base64, ctypes, json, os, selectors, signal, socket, subprocess, sys, time

ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0


def write_files(files):
    for rel, data in files.items():
        path = os.path.join(os.getcwd(), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
    for rel, target in JOB.get("links", {}).items():
        os.symlink(target, os.path.join(os.getcwd(), rel))


def exited(pid):
    """Whether the child has exited, without reaping it (its rusage is read by wait4 below)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


MAX_REPORTS, MAX_REPORT_BYTES, MAX_REPORT_LINE = 1000, 96 << 10, 4096  # the record fits the sandbox's stdout cap


class Reports:
    """The harness's side of a step's socket: S sent first, then its `S <status> <name>` lines collected."""

    def __init__(self):
        self.secret = os.urandom(16).hex().encode()
        self.ours, self.theirs = socket.socketpair()
        self.ours.sendall(self.secret)
        self.pending, self.records, self.truncated, self.size = b"", [], False, 0

    def take(self, chunk):
        lines = (self.pending + chunk).split(b"\n")
        self.pending = lines.pop()[-MAX_REPORT_LINE:]
        for line in lines:
            head, _, rest = line.partition(b" ")
            status, _, name = rest.partition(b" ")
            if head != self.secret or status not in (b"pass", b"fail", b"skip"):
                continue  # not the harness's
            if len(self.records) >= MAX_REPORTS or self.size + len(name) > MAX_REPORT_BYTES:
                self.truncated = True
                continue
            self.records.append([status.decode(), name.decode("utf-8", "replace")])
            self.size += len(name) + 16


def run_step(step, deadline, cap):
    started = time.monotonic()
    env = dict(os.environ, **{k: v.replace("{cwd}", os.getcwd()) for k, v in JOB["env"].items()})
    reports = Reports() if step.get("harness") else None
    try:
        child = subprocess.Popen(step["argv"], cwd=os.path.join(os.getcwd(), step.get("cwd", ".")), env=env,
                                 stdin=reports.theirs if reports else subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, close_fds=True, start_new_session=True)
    except OSError as e:
        return {"name": step["name"], "returncode": 127, "output": f"cannot start {step['argv'][0]}: {e}",
                "timed_out": False, "seconds": 0.0}
    finally:
        if reports:
            reports.theirs.close()
    kept, timed_out, done = b"", False, False
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if reports:
            selector.register(reports.ours, selectors.EVENT_READ)
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready = selector.select(min(remaining, 1.0))
            if not ready and exited(child.pid):
                break  # a descendant may hold the pipe open; the step itself is done
            for key, _ in ready:
                try:
                    chunk = os.read(key.fd, 65536)
                except ConnectionResetError:  # the step closed its socket with the secret unread
                    chunk = b""
                if key.fileobj is not child.stdout:
                    if chunk:
                        reports.take(chunk)
                    else:
                        selector.unregister(key.fileobj)
                elif chunk:
                    kept = (kept + chunk)[-cap:]
                else:
                    done = True
    if reports:  # what the harness wrote before the step ended
        reports.ours.setblocking(False)
        try:
            while chunk := reports.ours.recv(65536):
                reports.take(chunk)
        except OSError:
            pass
        reports.ours.close()
    try:
        os.killpg(child.pid, signal.SIGKILL)  # whatever the step left behind
    except OSError:
        pass
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    result = {"name": step["name"], "returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
              "output": kept.decode("utf-8", "replace"), "seconds": round(time.monotonic() - started, 3),
              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3)}
    if reports:
        result.update(reports=reports.records, reports_truncated=reports.truncated)
    return result


def main():
    write_files(JOB["files"])
    deadline = time.monotonic() + JOB["seconds"]
    steps = []
    for step in JOB["steps"]:
        result = run_step(step, deadline, JOB["output_bytes"])
        steps.append(result)
        if result["returncode"] != 0 or result["timed_out"]:
            break
    line = JOB["nonce"] + " " + json.dumps({"steps": steps}) + "\n"
    os.write(1, line.encode())


main()
'''
