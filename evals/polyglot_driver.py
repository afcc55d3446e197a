"""The program evals/polyglot_sandbox.py runs in the sandbox: write the files, run the steps, report.

It runs as the sandbox's Python program (evals/isolation/bootstrap.py) and is sent as source with its job
appended (`JOB = {...}`). It makes itself non-dumpable first, so the compilers and test binaries it starts
(same uid) cannot open its /proc entries (fds, memory) or ptrace it; they get fresh pipes for their output,
never its stdout, and no other fd. After the steps it prints one line, `<nonce> <json>`, on its stdout:
per step the exit status, whether it timed out, the CPU seconds, and the tail of its output. The verdict is
decided from that record by the parent (evals/polyglot_sandbox.py), not here.
"""
DRIVER = r'''
import base64, ctypes, json, os, selectors, signal, subprocess, sys, time

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


def run_step(step, deadline, cap):
    started = time.monotonic()
    env = dict(os.environ, **{k: v.replace("{cwd}", os.getcwd()) for k, v in JOB["env"].items()})
    try:
        child = subprocess.Popen(step["argv"], cwd=os.path.join(os.getcwd(), step.get("cwd", ".")), env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 close_fds=True, start_new_session=True)
    except OSError as e:
        return {"name": step["name"], "returncode": 127, "output": f"cannot start {step['argv'][0]}: {e}",
                "timed_out": False, "seconds": 0.0}
    kept, timed_out = b"", False
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if not selector.select(min(remaining, 1.0)):
                if exited(child.pid):
                    break  # a descendant may hold the pipe open; the step itself is done
                continue
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                break
            kept = (kept + chunk)[-cap:]
    try:
        os.killpg(child.pid, signal.SIGKILL)  # whatever the step left behind
    except OSError:
        pass
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    return {"name": step["name"], "returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out,
            "output": kept.decode("utf-8", "replace"), "seconds": round(time.monotonic() - started, 3),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3)}


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
