"""An exercise's own tests, in its own language, run in the sandbox of evals/sandbox.py.

One sandbox run per attempt: the driver (evals/polyglot_driver.py) writes the exercise's files into the run's
fresh work dir and runs the steps, the compile step included, as child processes under the same isolation and
limits as Python programs (the minimal root exposes the language's toolchain read-only: evals/polyglot_toolchains).

The verdict is decided here, in the parent, from the driver's record and the sandbox's own account of the run:

  a candidate file could forge the        ERROR ("ForgedHarness", which file and why), decided before any run
    harness (polyglot_harness.forgery)
  compile step exits non-zero              COMPILE_ERROR ("CompileError", the compiler's output)
  a step runs past the time left           TIMEOUT (so does the whole sandbox past its wall/CPU limit, and a
                                           step killed at its CPU limit)
  a step dies of another signal            KILLED (its name)
  the test step exits non-zero             FAILED ("TestFailure", the end of the test output)
  exit 0 but the harness's per-test        ERROR ("IncompleteRun"): e.g. the candidate exited early with 0,
    reports miss or fail an expected test    or printed the framework's pass lines itself, or (python)
    (every language), or the framework's     replaced unittest's assertions
    summary does not show
    every expected test passing
  all of it holds                          PASSED

Every disabled test is enabled first (JUnit's @Disabled, jest's xtest, Rust's #[ignore], Catch's
EXERCISM_RUN_ALL_TESTS), as the public harness does. The candidate's code shares its test framework's process
in every language, so its printed output (the framework's summary included) proves nothing: the per-test
results that decide come from the harness of evals/polyglot_harness.py, over a socket gated by a per-step
secret the candidate cannot read by ordinary means (that module says how, per language, and what stays open:
code that reads its own process's memory; in Python also some lenient values). The
HumanEval/MBPP path (evals/test_plan.py, evals/judging.py) decides outside the candidate's process.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import math
import os
import re
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from evals import polyglot_harness as harness
from evals import polyglot_toolchains as tc
from evals.polyglot_driver import DRIVER
from evals.sandbox import SandboxLimits, run_program
from evals.verdict import MESSAGE_CHARS, Status, Verdict

STEP_OUTPUT_BYTES = 16 << 10
_MARGIN_S = 2.0  # the driver stops its steps this long before the sandbox's wall limit
_CARGO_CONFIG = """[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "{registry}"
[net]
offline = true
"""
_BABEL_CONFIG = "module.exports = {presets: [['@babel/preset-env', {targets: {node: 'current'}}]]};\n"


def limits_for(language: str, toolchain: tc.Toolchain, **changes) -> SandboxLimits:
    """The sandbox limits of one test run: room for a compiler (JVM, cargo, cmake) beside the tests."""
    compiled = language != "python"
    memory = {"python": 2 << 30, "javascript": 64 << 30}.get(language, 8 << 30)  # V8 reserves per worker thread
    settings = dict(cpu_seconds=120.0 if compiled else 30.0, wall_seconds=240.0 if compiled else 60.0,
                    memory_bytes=memory, file_size_bytes=256 << 20,
                    max_processes=512, open_files=4096, workdir_bytes=1 << 30, output_bytes=256 << 10,
                    packages=toolchain.packages, toolchain_dirs=toolchain.dirs)
    settings.update(changes)
    return SandboxLimits(**settings)


@dataclasses.dataclass(frozen=True)
class Job:
    """What the driver runs: the files (relative to the work dir), symlinks, the steps, and their environment."""

    files: dict
    steps: list
    env: dict
    links: dict = dataclasses.field(default_factory=dict)


def _enable_all_tests(language: str, path: str, text: str) -> str:
    if language == "java" and path.endswith(".java"):
        return re.sub(r"^\s*@Disabled(\([^)]*\))?\s*$\n?", "", text, flags=re.MULTILINE)
    if language == "javascript" and path.endswith(".js"):
        return re.sub(r"\bx(test|it|describe)\(", r"\1(", text)
    return text


def expected_tests(language: str, files: dict, tests: Sequence[str]) -> int:
    """How many tests the test files declare (the framework must report at least as many passing)."""
    pattern = {"cpp": r"^\s*TEST_CASE\s*\(", "go": r"^func Test\w*\(\w+ \*testing\.T\)", "java": r"@Test\b",
               "javascript": r"\b(x?test|x?it)\s*\(", "python": r"^\s*def test\w*\(", "rust": r"#\[test\]"}[language]
    benchmark = re.compile(r"^#if defined\(EXERCISM_INCLUDE_BENCHMARK\).*?^#endif", re.MULTILINE | re.DOTALL)
    return sum(len(re.findall(pattern, benchmark.sub("", files.get(p, "")), flags=re.MULTILINE)) for p in tests)


def any_dependency_version(manifest: str) -> str:
    """Cargo.toml with each `[dependencies]` requirement relaxed to "*": offline, a crate resolves to the one
    version Debian's registry holds (an exercise's `regex = "0.2"` builds against regex 1.7)."""
    out, section = [], ""
    for line in manifest.splitlines(keepends=True):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            section = header.group(1).strip()
        elif section in ("dependencies", "dev-dependencies"):
            line = re.sub(r'^(\s*[\w-]+\s*=\s*)"[^"]*"', r'\1"*"', line)
            line = re.sub(r'(\bversion\s*=\s*)"[^"]*"', r'\1"*"', line)
        out.append(line)
    return "".join(out)


def build_job(language: str, name: str, files: dict, tests: Sequence[str], toolchain: tc.Toolchain) -> Job:
    """The steps that compile and test an exercise whose files (stubs replaced by the candidate's) are `files`."""
    files = {p: _enable_all_tests(language, p, t) for p, t in files.items()}
    solution = [p for p in files if p.endswith(".js") and p not in tests and p != "babel.config.js"]
    files = harness.instrument(language, files, tests)
    t, env, links = toolchain.tools, dict(toolchain.env), {}
    here = name  # the exercise's own dir name: CMake names the project after it
    if language == "python":
        steps = [{"name": "compile", "argv": [t["python"], "-m", "py_compile",
                                             *[p for p in files if p.endswith(".py") and p not in tests]], "cwd": here},
                 {"name": "test", "argv": [t["python"], "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                           "-p", harness.PYTEST_PLUGIN, "-o", "addopts=", *tests], "cwd": here,
                  "harness": True}]
    elif language == "go":
        env.update(GOCACHE="/work-cache/go", GOPATH="/work-cache/gopath")
        steps = [{"name": "compile", "argv": [t["go"], "test", "-c", "-o", "exercise.test", "."], "cwd": here},
                 {"name": "test", "argv": ["./exercise.test", "-test.v", "-test.count=1"], "cwd": here,
                  "harness": True}]
    elif language == "rust":
        if t["registry"]:
            files[".cargo/config.toml"] = _CARGO_CONFIG.format(registry=t["registry"])
            if "Cargo.toml" in files:
                files["Cargo.toml"] = any_dependency_version(files["Cargo.toml"])
        env.update(PATH=t["bin"] + ":/usr/bin:/bin", CARGO_HOME="/work-cache/cargo", CARGO_TERM_COLOR="never",
                   CARGO_INCREMENTAL="0", CARGO_BUILD_JOBS="2", RUSTFLAGS="-C debuginfo=0")
        steps = [{"name": "compile", "argv": [t["cargo"], "test", "--offline", "--no-run", "-q"], "cwd": here}]
        steps += [{"name": "test", "argv": [t["cargo"], "test", "--offline", "-q", "--test", _stem(p), "--",
                                            "--include-ignored", "--test-threads=2"], "cwd": here, "harness": True}
                  for p in harness.rust_test_files(files)]  # one step per test binary, each its own secret
    elif language == "java":
        jvm = ["-Xmx512m", "-Xss8m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
               "-XX:CompressedClassSpaceSize=128m", "-XX:ReservedCodeCacheSize=64m", "-Xshare:auto"]
        sources = sorted(p for p in files if p.endswith(".java"))
        classpath = "classes:" + t["classpath"]
        steps = [{"name": "compile", "argv": [t["javac"], *[f"-J{o}" for o in jvm], "-nowarn", "-encoding", "UTF-8",
                                             "-d", "classes", "-cp", t["classpath"], *sources], "cwd": here},
                 {"name": "test", "argv": [t["java"], *jvm, "-cp", classpath, harness.JAVA_LAUNCHER, "classes"],
                  "cwd": here, "harness": True}]
    elif language == "javascript":
        files["babel.config.js"] = _BABEL_CONFIG
        files["package.json"] = '{"name": "exercise", "private": true}\n'
        links[f"{here}/node_modules"] = t["node_modules"]
        steps = [{"name": "compile", "argv": [t["node"], "--check", f"../syntax/{p}.mjs"], "cwd": here}
                 for p in solution]  # an ES module: `node --check` goes by the .mjs suffix
        steps.append({"name": "test", "argv": [t["node"], "--max-old-space-size=1024", t["jest"], "--ci", "--runInBand",
                                               "--no-cache", "--no-watchman", "--colors=false", "--rootDir", ".",
                                               "--reporters=default", "--reporters=<rootDir>/hrm_reporter.js",
                                               "--setupFilesAfterEnv=<rootDir>/hrm_setup.js"],
                      "cwd": here, "harness": True})
        env["NODE_PATH"] = t["node_modules"]
    elif language == "cpp":
        steps = [{"name": "configure", "argv": [t["cmake"], "-S", ".", "-B", "build", "-G", "Unix Makefiles",
                                               "-DEXERCISM_RUN_ALL_TESTS=ON", f"-DCMAKE_MAKE_PROGRAM={t['make']}",
                                               f"-DCMAKE_CXX_COMPILER={t['g++']}"], "cwd": here},
                 {"name": "compile", "argv": [t["cmake"], "--build", "build", "--target", name, "--", "-j2"],
                  "cwd": here},
                 {"name": "test", "argv": [f"build/{name}"], "cwd": here, "harness": True}]
    else:
        raise ValueError(f"unknown language {language!r}")
    placed = {f"{here}/{p}": text for p, text in files.items()}
    if language == "javascript":
        placed.update({f"syntax/{p}.mjs": files[p] for p in solution})
    return Job(placed, steps, env, links)


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _driver_source(job: Job, seconds: float, nonce: str) -> str:
    encoded = {p: base64.b64encode(t.encode("utf-8", "surrogatepass")).decode() for p, t in job.files.items()}
    payload = {"files": encoded,
               "links": job.links, "steps": job.steps, "env": job.env, "seconds": seconds, "nonce": nonce,
               "output_bytes": STEP_OUTPUT_BYTES}
    return f"JOB = {payload!r}\n" + DRIVER


def _summary_ok(language: str, output: str, expected: int) -> tuple[bool, str]:
    """Whether the framework's own summary shows at least `expected` tests run, none failing."""
    def ints(pattern):
        return [int(m) for m in re.findall(pattern, output, flags=re.MULTILINE)]

    if language == "python":
        passed, bad = sum(ints(r"(\d+) passed")), sum(ints(r"(\d+) (?:failed|error)"))
    elif language == "go":
        passed = len(set(re.findall(r"^--- PASS: (Test\w*)", output, flags=re.MULTILINE)))
        bad = len(re.findall(r"^--- FAIL", output, flags=re.MULTILINE)) + ("\nPASS\n" not in f"\n{output}\n")
    elif language == "rust":  # every test binary started must report; #[test]s behind cfg(feature) do not run
        running, results = ints(r"^running (\d+) tests?$"), ints(r"test result: ok\. (\d+) passed")
        passed, bad = sum(results), sum(ints(r"(\d+) failed")) + (len(running) != len(results))
        expected = sum(running) if running else max(expected, 1)
    elif language == "java":
        passed, bad = sum(ints(r"(\d+) tests successful")), sum(ints(r"(\d+) tests failed"))
    elif language == "javascript":
        totals = re.findall(r"^Tests:\s+(.*)$", output, flags=re.MULTILINE)
        passed = sum(int(m) for line in totals for m in re.findall(r"(\d+) passed", line))
        bad = sum(int(m) for line in totals for m in re.findall(r"(\d+) failed", line))  # test.skip stays skipped
        expected = min(expected, 1)  # tests built in loops or via each: the count in the file is a guess
    else:  # cpp (Catch)
        passed = sum(ints(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)"))
        bad = sum(ints(r"(\d+) failed"))
    if bad or passed < expected:  # none expected (go/counter's tests are the student's to write): exit 0 suffices
        return False, f"the test framework reported {passed} passing of {expected} expected tests, {bad} failing"
    return True, ""


_WORKDIR_PREFIX = re.compile(r"/[\w./-]*?hrm_sandbox_\w+/work/")


def strip_workdir(text: str) -> str:
    """Paths in tool output relative to the run's work dir (its random name would only be noise)."""
    return _WORKDIR_PREFIX.sub("", text)


def _message(text: str, head: str = "", keep: str = "tail") -> str:
    """`head`, then the tail of `text` (test output ends in its summary) or its start (`keep="head"`: a
    compiler's first error is the one that matters) within MESSAGE_CHARS."""
    text = strip_workdir(text).strip()
    room = max(MESSAGE_CHARS - len(head) - 1, 0)
    return (head + "\n" if head else "") + (text[:room] if keep == "head" else text[-room:] if room else "")


def decide(language: str, run: Verdict, record: dict | None, expected: int, cpu_limit_s: float,
           declared: tuple | None = None) -> Verdict:
    """The verdict of one test run from the sandbox's verdict on the driver and the driver's record; `declared`
    (polyglot_harness.expected: the tests' names, the least count) is what the harness's reports must cover."""
    facts = dict(duration_s=run.duration_s, output_truncated=run.output_truncated, isolation=run.isolation,
                 cpu_seconds=run.cpu_seconds)
    if run.status in (Status.TIMEOUT, Status.KILLED) or record is None:
        if run.status is Status.PASSED:
            return Verdict(Status.ERROR, "SandboxError", _message(run.message, "the test driver sent no record"),
                           **facts)
        return run
    steps = record["steps"]
    last = steps[-1]
    output = last["output"]
    if last["timed_out"]:
        return Verdict(Status.TIMEOUT, None, _message(output, f"{last['name']} step ran out of time"), **facts)
    code = last["returncode"]
    if code < 0:  # a compiler or the tests died of a signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGXCPU" or name == "SIGKILL" and (last.get("cpu_seconds") or 0) >= math.ceil(cpu_limit_s):
            return Verdict(Status.TIMEOUT, None, _message(output, f"{last['name']} step: CPU time limit exceeded"),
                           exit_code=code, **facts)
        return Verdict(Status.KILLED, name, _message(output, f"{last['name']} step killed by {name}"),
                       exit_code=code, **facts)
    if last["name"] != "test":
        if code == 0:
            return Verdict(Status.ERROR, "SandboxError", "the test driver stopped before the tests", **facts)
        return Verdict(Status.COMPILE_ERROR, "CompileError", _message(output, keep="head"), exit_code=code, **facts)
    if code != 0:
        return Verdict(Status.FAILED, "TestFailure", _message(output), exit_code=code, **facts)
    why = harness.shortfall(language, steps, *declared) if language in harness.LANGUAGES else None
    if why:
        return Verdict(Status.ERROR, "IncompleteRun", _message(output, why), exit_code=code, **facts)
    ok, why = _summary_ok(language, output, expected)
    if not ok:
        return Verdict(Status.ERROR, "IncompleteRun", _message(output, why), exit_code=code, **facts)
    return Verdict(Status.PASSED, None, "", exit_code=0, **facts)


def _record(stdout: str, nonce: str) -> dict | None:
    for line in stdout.splitlines():
        if line.startswith(nonce + " "):
            try:
                return json.loads(line[len(nonce) + 1:])
            except ValueError:
                return None
    return None


def run_job(job: Job, limits: SandboxLimits) -> tuple[Verdict, dict | None]:
    """Run `job` in one sandbox: the sandbox's verdict on the driver, and the driver's record (None if none)."""
    nonce = os.urandom(16).hex()
    seconds = max(limits.wall_seconds - _MARGIN_S, 1.0)
    source = _driver_source(_with_cache_dirs(job), seconds, nonce)
    run = run_program(source, dataclasses.replace(limits, output_bytes=max(limits.output_bytes, 4 * STEP_OUTPUT_BYTES)))
    return run, _record(run.stdout, nonce)


def run_tests(language: str, name: str, files: dict, tests: Sequence[str],
              limits: SandboxLimits | None = None) -> Verdict:
    """Compile and test one exercise's `files` in the sandbox; the verdict as the module docstring says.

    Raises ToolchainMissing when the language's toolchain is not installed (callers skip the language)."""
    toolchain = tc.toolchain(language)
    forged = harness.forgery(language, files, tests) if language in harness.LANGUAGES else None
    if forged:
        return Verdict(Status.ERROR, "ForgedHarness", forged)
    limits = limits or limits_for(language, toolchain)
    run, record = run_job(build_job(language, name, files, tests, toolchain), limits)
    if record is None and run.status is Status.PASSED:
        return Verdict(Status.ERROR, "SandboxError", _message(run.message, "the test driver sent no record"),
                       duration_s=run.duration_s, isolation=run.isolation)
    declared = harness.expected(language, files, tests) if language in harness.LANGUAGES else None
    return decide(language, run, record, expected_tests(language, files, tests), limits.cpu_seconds, declared)


def _with_cache_dirs(job: Job) -> Job:
    """Caches (Go's, Cargo's) live in the run's work dir: the driver resolves /work-cache against its cwd."""
    env = {k: v.replace("/work-cache", "{cwd}/.cache") for k, v in job.env.items()}
    return dataclasses.replace(job, env=env)


def run_many_tests(items: Sequence[tuple[str, str, dict, Sequence[str]]], max_workers: int = 1) -> list[Verdict]:
    """run_tests on (language, name, files, tests) items concurrently; a sandbox failure becomes an ERROR."""
    def one(item):
        try:
            return run_tests(*item)
        except tc.ToolchainMissing:
            raise
        except Exception as exc:  # noqa: BLE001 (one broken run must not end an evaluation)
            return Verdict(Status.ERROR, "SandboxError", f"{type(exc).__name__}: {exc}"[:MESSAGE_CHARS])

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="polyglot") as pool:
        return list(pool.map(one, items))

