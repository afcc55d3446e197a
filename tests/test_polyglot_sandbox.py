"""Six-language test runs in the sandbox: verdicts (pass, fail, compile error), hostile programs contained, the
syntax validators, and the reference-solution harness check (one exercise per language by default; all 225 slow).

Needs the toolchains of scripts/install_toolchains.sh; a language whose toolchain is missing is skipped.
"""
import os
import pathlib
import re
import socket

import pytest

from evals import polyglot_toolchains as tc
from evals.polyglot_exercises import load_exercises, polyglot_dir
from evals.polyglot_reference import KNOWN_FAILURES, check_references, reference_files
from evals.polyglot_sandbox import expected_tests, limits_for, run_tests
from evals.sandbox import SandboxLimits
from evals.syntax import check_files, files_feedback
from evals.verdict import Status, Verdict
from tests import fixtures_tokenizer  # noqa: F401  (sets HRM_JAX_DATA_DIR)

SAMPLES = {"cpp": "space-age", "go": "beer-song", "java": "series", "javascript": "triangle", "python": "proverb",
           "rust": "acronym"}
EXERCISES = {e.language: e for e in load_exercises() if SAMPLES[e.language] == e.name}
COMPILED = ("cpp", "go", "java", "rust")


def _need(language):
    reason = tc.available(language)
    if reason:
        pytest.skip(reason)


def _leftover_probes():
    """Processes of a sandbox uid that the hostile probes start (sleepers, the forked C++ test binary)."""
    base, pool = SandboxLimits().uid, SandboxLimits().uid_pool
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            uid = os.stat(f"/proc/{pid}").st_uid
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if base <= uid < base + pool and (b"sleep\x001000" in cmdline or b"hostile" in cmdline):
            out.append(pid)
    return out


def _wrong(language, exercise):
    """A solution that compiles and fails its tests: the stub where it compiles, else a reference made wrong."""
    if language == "cpp":
        reference = dict(exercise.reference)
        reference["space_age.cpp"] = reference["space_age.cpp"].replace("1.0/31557600.0", "1.0/31557.0")
        return reference
    return {p: exercise.files[p] for p in exercise.solution}


def _slow_for_cpp(languages):
    """C++ builds Catch's main for every run (~15 s on 2 cores): its second run is in the slow set."""
    return [pytest.param(lang, marks=pytest.mark.slow) if lang == "cpp" else lang for lang in languages]


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_a_reference_solution_passes(language):
    _need(language)
    exercise = EXERCISES[language]
    passed = run_tests(language, exercise.name, reference_files(exercise), exercise.tests)
    assert passed.status is Status.PASSED, passed.message
    assert "minimal-root" in passed.isolation and "seccomp" in passed.isolation


@pytest.mark.parametrize("language", _slow_for_cpp(sorted(SAMPLES)))
def test_a_wrong_solution_fails(language):
    _need(language)
    exercise = EXERCISES[language]
    failed = run_tests(language, exercise.name, {**exercise.files, **_wrong(language, exercise)}, exercise.tests)
    assert failed.status is Status.FAILED and failed.error_type == "TestFailure", (failed.status, failed.message)
    assert failed.message


@pytest.mark.parametrize("language", sorted(SAMPLES))
def test_a_compile_error_is_reported_as_such(language):
    _need(language)
    exercise = EXERCISES[language]
    broken = {p: "this is (not valid code in any language\n" for p in exercise.solution}
    verdict = run_tests(language, exercise.name, {**exercise.files, **broken}, exercise.tests)
    assert verdict.status is Status.COMPILE_ERROR and verdict.error_type == "CompileError", verdict
    assert "hrm_sandbox_" not in verdict.message  # paths are relative to the run's work dir
    assert any(p.rsplit("/", 1)[-1] in verdict.message for p in exercise.solution), verdict.message


def test_an_early_successful_exit_is_not_a_pass():
    _need("rust")
    exercise = EXERCISES["rust"]
    quits = {"src/lib.rs": "pub fn abbreviate(_phrase: &str) -> String {\n    std::process::exit(0)\n}\n"}
    verdict = run_tests("rust", exercise.name, {**exercise.files, **quits}, exercise.tests)
    assert verdict.status is Status.ERROR and verdict.error_type == "IncompleteRun", verdict


def test_expected_tests_counts_each_framework():
    exercise = EXERCISES["rust"]
    assert expected_tests("rust", exercise.files, exercise.tests) == exercise.files[exercise.tests[0]].count("#[test]")
    assert expected_tests("go", {"a_test.go": "func TestA(t *testing.T) {}\nfunc BenchmarkA(b *testing.B) {}\n"},
                          ["a_test.go"]) == 1


# ---------------------------------------------------------------- hostile programs, one per compiled language

_HOSTILE = {
    "go": {
        "go.mod": "module hostile\n\ngo 1.18\n",
        "hostile.go": '''package hostile

import (
	"fmt"
	"net"
	"os"
	"os/exec"
)

func Probe(secret, marker, addr string) string {
	out := ""
	if b, err := os.ReadFile(secret); err == nil {
		out += "READ:" + string(b)
	} else {
		out += "read blocked;"
	}
	if err := os.WriteFile(marker, []byte("x"), 0644); err == nil {
		out += "WROTE;"
	} else {
		out += "write blocked;"
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		out += "CONNECTED;"
	} else {
		out += "net blocked;"
	}
	n := 0
	for ; n < 100000; n++ {
		if exec.Command("/bin/sleep", "1000").Start() != nil {
			break
		}
	}
	return out + fmt.Sprintf("spawned %d;", n)
}
''',
        "hostile_test.go": '''package hostile

import "testing"

func TestProbe(t *testing.T) { t.Fatalf("%s", Probe("{secret}", "{marker}", "{addr}")) }
''',
    },
    "rust": {
        "Cargo.toml": '[package]\nname = "hostile"\nversion = "0.1.0"\nedition = "2021"\n',
        "src/lib.rs": '''use std::io::Write;

pub fn probe(secret: &str, marker: &str, addr: &str) -> String {
    let mut out = String::new();
    match std::fs::read_to_string(secret) {
        Ok(text) => out += &format!("READ:{text}"),
        Err(_) => out += "read blocked;",
    }
    match std::fs::File::create(marker).and_then(|mut f| f.write_all(b"x")) {
        Ok(_) => out += "WROTE;",
        Err(_) => out += "write blocked;",
    }
    match std::net::TcpStream::connect(addr) {
        Ok(_) => out += "CONNECTED;",
        Err(_) => out += "net blocked;",
    }
    let mut n = 0;
    while n < 100000 && std::process::Command::new("/bin/sleep").arg("1000").spawn().is_ok() {
        n += 1;
    }
    out + &format!("spawned {n};")
}
''',
        "tests/hostile.rs": '''#[test]
fn probe() {
    panic!("{}", hostile::probe("{secret}", "{marker}", "{addr}"));
}
''',
    },
    "java": {
        "src/main/java/Hostile.java": '''import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;

class Hostile {
    static String probe(String secret, String marker, String addr) {
        String out = "";
        try {
            out += "READ:" + Files.readString(Path.of(secret));
        } catch (Exception e) {
            out += "read blocked;";
        }
        try {
            Files.writeString(Path.of(marker), "x");
            out += "WROTE;";
        } catch (Exception e) {
            out += "write blocked;";
        }
        String[] hostPort = addr.split(":");
        try (Socket s = new Socket(hostPort[0], Integer.parseInt(hostPort[1]))) {
            out += "CONNECTED;";
        } catch (Exception e) {
            out += "net blocked;";
        }
        int n = 0;
        try {
            for (; n < 100000; n++) {
                new ProcessBuilder("/bin/sleep", "1000").start();
            }
        } catch (Throwable e) {
        }
        return out + "spawned " + n + ";";
    }
}
''',
        "src/test/java/HostileTest.java": '''import static org.junit.jupiter.api.Assertions.fail;

import org.junit.jupiter.api.Test;

public class HostileTest {
    @Test
    public void probe() {
        fail(Hostile.probe("{secret}", "{marker}", "{addr}"));
    }
}
''',
    },
    "cpp": {
        "hostile.h": '''#pragma once
#include <string>

namespace hostile {
std::string probe(const char* secret, const char* marker, int port);
}
''',
        "hostile.cpp": '''#include "hostile.h"

#include <arpa/inet.h>
#include <fstream>
#include <sstream>
#include <sys/socket.h>
#include <unistd.h>

namespace hostile {
std::string probe(const char* secret, const char* marker, int port) {
    std::string out;
    std::ifstream in(secret);
    if (in) {
        std::stringstream text;
        text << in.rdbuf();
        out += "READ:" + text.str();
    } else {
        out += "read blocked;";
    }
    std::ofstream written(marker);
    out += written ? "WROTE;" : "write blocked;";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in where{};
    where.sin_family = AF_INET;
    where.sin_port = htons(static_cast<uint16_t>(port));
    where.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&where), sizeof where) == 0) {
        out += "CONNECTED;";
    } else {
        out += "net blocked;";
    }
    int n = 0;
    for (; n < 100000; n++) {  // a fork bomb: every child sleeps
        pid_t pid = fork();
        if (pid < 0) break;
        if (pid == 0) {
            sleep(1000);
            _exit(0);
        }
    }
    return out + "spawned " + std::to_string(n) + ";";
}
}  // namespace hostile
''',
        "hostile_test.cpp": '''#include "hostile.h"
#include "test/catch.hpp"

TEST_CASE("probe") { FAIL(hostile::probe("{secret}", "{marker}", {port})); }
''',
    },
}


def _hostile_files(language, secret, marker, port):
    files = {p: t.replace("{secret}", secret).replace("{marker}", marker).replace("{addr}", f"127.0.0.1:{port}")
             .replace("{port}", str(port)) for p, t in _HOSTILE[language].items()}
    if language == "cpp":
        cpp = polyglot_dir() / "cpp" / "exercises" / "practice" / "space-age"
        for rel in ("CMakeLists.txt", "test/catch.hpp", "test/tests-main.cpp"):
            files[rel] = (cpp / rel).read_text()
    tests = {"go": ["hostile_test.go"], "rust": ["tests/hostile.rs"], "java": ["src/test/java/HostileTest.java"],
             "cpp": ["hostile_test.cpp"]}[language]
    return files, tests


@pytest.mark.parametrize("language", _slow_for_cpp(COMPILED))
def test_a_hostile_program_is_contained(language, tmp_path):
    _need(language)
    secret = polyglot_dir() / "SOURCE.txt"  # a host file every user may read
    marker = tmp_path / "escaped"
    tmp_path.chmod(0o777)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    files, tests = _hostile_files(language, str(secret), str(marker), listener.getsockname()[1])
    limits = limits_for(language, tc.toolchain(language), max_processes=128, wall_seconds=90.0)
    verdict = run_tests(language, "hostile", files, tests, limits)
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    finally:
        listener.close()
    assert verdict.status is Status.FAILED, (verdict.status, verdict.message)
    assert "read blocked;write blocked;net blocked;spawned" in verdict.message, verdict.message
    assert secret.read_text().splitlines()[0] not in verdict.message
    spawned = int(verdict.message.split("spawned ")[1].split(";")[0])
    assert spawned < 128  # RLIMIT_NPROC of the run's own uid
    assert not marker.exists() and not connected
    assert not _leftover_probes(), "processes of the sandbox outlived the run"


# ---------------------------------------------------------------- forged results, per language (JS: 3, Python: 4)


_INTERCEPT_JS = r"""const outer = require('fs').writeSync.constructor('return process')();
outer.on('exit', () => outer.reallyExit(0));
const flip = (fd, s) => (fd === 0 && typeof s === 'string' ? s.replace(' fail ', ' pass ') : s);
const fs = require('fs');
const write = fs.writeSync;
fs.writeSync = function (fd, s, ...rest) { return write.call(this, fd, flip(fd, s), ...rest); };
try {
  const binding = outer.binding('fs');
  const writeString = binding.writeString;
  binding.writeString = function (fd, s, ...rest) { return writeString.call(this, fd, flip(fd, s), ...rest); };
} catch (error) {}
for (const stream of [outer.stdout, outer.stderr]) {
  const original = stream.write.bind(stream);
  stream.write = (chunk, ...rest) => original(String(chunk).replace(/(\d+) failed/g, '$1 passed'), ...rest);
}
export class Triangle {
  constructor(...sides) {}
}
"""


_PYTHON_EXIT = """import os

secret = os.read(0, 32)  # the harness's secret, were it still there
forged = b"".join(secret + b" pass " + name.encode() + b"\\n" for name in {names!r}) if {lines} else b""
for fd in range(64):  # the framework keeps the real stdout on some fd: its summary, written there
    try:
        os.write(fd, forged + b"\\n{count} passed in 0.01s\\n")
    except OSError:
        pass
getattr(os, "_ex" + "it")(0)  # spelled so that the static check lets it through to the harness


def proverb(*items, qualifier=None):
    return []
"""


def _forged(language, exercise, how="summary"):
    """A wrong solution that forges a passing run the way the old summary check believed: the framework's pass
    lines printed and exit 0 before the tests (go, rust, java; cpp and python with how="exit"; python with
    how="lines": also the harness's lines, signed with what fd 0 holds, written to fd 0 and 1), Catch's REQUIRE
    redefined, unittest's assertEqual replaced by a no-op (how="assertEqual") or outwitted by a value equal to
    anything (how="__eq__"), jest's expect replaced
    (how="Object.is": the builtin its toBe compares with; how="intercept": node's fs, shared with jest's realm,
    replaced to rewrite the harness's lines, and exit status 0 forced)."""
    names = sorted(re.findall(r"^func (Test\w+)", exercise.files[exercise.tests[0]], flags=re.MULTILINE))
    count = expected_tests(language, exercise.files, exercise.tests)
    if language == "python" and how == "__eq__":
        return {"proverb.py": "class Anything:\n    def __eq__(self, other):\n        return True\n\n\n"
                              "def proverb(*items, qualifier=None):\n    return Anything()\n"}
    if language == "python" and how == "assertEqual":
        return {"proverb.py": 'case = getattr(__import__("unit" + "test"), "Test" + "Case")  # past the static check\n'
                              'setattr(case, "assert" + "Equal", lambda *args, **kwargs: None)\n\n\n'
                              "def proverb(*items, qualifier=None):\n    return []\n"}
    if language == "python":
        tests = re.findall(r"def (test\w+)", exercise.files[exercise.tests[0]])
        return {"proverb.py": _PYTHON_EXIT.format(names=tests, lines=how == "lines", count=count)}
    if language == "go":
        lines = "".join(f"=== RUN   {n}\\n--- PASS: {n} (0.00s)\\n" for n in names)
        return {"beer_song.go": f'package beer\n\nimport (\n\t"fmt"\n\t"os"\n)\n\n'
                                f'func init() {{\n\tfmt.Print("{lines}PASS\\n")\n\tos.Exit(0)\n}}\n\n'
                                'func Song() string { return "" }\n\n'
                                'func Verses(start, stop int) (string, error) { return "", nil }\n\n'
                                'func Verse(n int) (string, error) { return "", nil }\n'}
    if language == "rust":
        summary = f"test result: ok. {count} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"
        return {"src/lib.rs": "use std::io::Write;\n\nstatic ONCE: std::sync::Once = std::sync::Once::new();\n\n"
                              "pub fn abbreviate(_phrase: &str) -> String {\n    ONCE.call_once(|| {\n"
                              f'        let _ = std::io::stdout().write_all(b"\\n{summary}\\n\\n");\n'
                              "        let _ = std::io::stdout().flush();\n        std::process::exit(0);\n    });\n"
                              "    String::new()\n}\n"}
    if language == "java":
        return {"src/main/java/Series.java":
                "import java.util.List;\n\nclass Series {\n    static {\n"
                f'        System.out.println("[ {count} tests found ]\\n[ {count} tests successful ]\\n'
                '[ 0 tests failed ]");\n        System.exit(0);\n    }\n\n'
                "    Series(String string) {}\n\n"
                "    List<String> slices(int num) {\n        return List.of();\n    }\n}\n"}
    if language == "javascript" and how == "intercept":  # rewrites the harness's lines: fail -> pass
        return {"triangle.js": _INTERCEPT_JS}
    if language == "javascript" and how == "Object.is":
        return {"triangle.js": "Object.is = () => true;\n\nexport class Triangle {\n  constructor(...sides) {}\n}\n"}
    if language == "javascript":
        return {"triangle.js": "const anything = new Proxy(function () {},\n"
                               "  { get: () => anything, apply: () => anything });\n"
                               "globalThis.expect = () => anything;\n\n"
                               "export class Triangle {\n  constructor(...sides) {}\n}\n"}
    if how == "exit":
        summary = f"All tests passed ({count} assertions in {count} test cases)"
        return {"space_age.h": exercise.reference["space_age.h"],
                "space_age.cpp": '#include "space_age.h"\n\n#include <cstdio>\n#include <cstdlib>\n\n'
                                 "space_age::space_age::space_age(unsigned long long secs) : seconds_(secs) {\n"
                                 f'    std::printf("%s\\n", "{summary}");\n    std::exit(0);\n}}\n\n'
                                 "unsigned long long space_age::space_age::seconds() const { return seconds_; }\n"
                                 + "".join(f"double space_age::space_age::on_{p}() const {{ return 0; }}\n"
                                           for p in ("earth", "mercury", "venus", "mars", "jupiter", "saturn",
                                                     "uranus", "neptune"))}
    header = exercise.reference["space_age.h"]
    return {"space_age.h": header.replace("namespace space_age", '#include "test/catch.hpp"\n#undef REQUIRE\n'
                                          "#undef REQUIRE_THAT\n#define REQUIRE(...) CHECK(true)\n"
                                          "#define REQUIRE_THAT(...) CHECK(true)\n\nnamespace space_age", 1),
            "space_age.cpp": _wrong("cpp", exercise)["space_age.cpp"]}


@pytest.mark.parametrize("language,how", [("go", "summary"), ("java", "summary"), ("javascript", "summary"),
                                          ("javascript", "Object.is"), ("javascript", "intercept"), ("rust", "summary"),
                                          ("python", "exit"), ("python", "assertEqual"), ("python", "lines"),
                                          ("python", "__eq__"),
                                          pytest.param("cpp", "summary", marks=pytest.mark.slow),
                                          pytest.param("cpp", "exit", marks=pytest.mark.slow)])
def test_a_forged_pass_is_not_a_pass(language, how):
    _need(language)
    exercise = EXERCISES[language]
    forged = _forged(language, exercise, how)
    verdict = run_tests(language, exercise.name, {**exercise.files, **forged}, exercise.tests)
    assert verdict.status is not Status.PASSED, verdict.message
    assert verdict.error_type in ("IncompleteRun", "ForgedHarness", "TestFailure"), (verdict.status, verdict.message)
    if how == "intercept":  # the harness's own lines stayed true (the summary check alone is forgeable)
        assert verdict.message.startswith("the test harness reported 19 failing"), verdict.message
    if how == "__eq__":  # the plugin's assertEqual wants builtin equality against the tests' builtin values
        assert verdict.error_type == "TestFailure" and "Anything compared with list" in verdict.message, verdict.message
    elif language == "python":  # past the static check: the harness decides (no lines; its fails on tampering)
        why = "8 failing: test_" if how == "assertEqual" else "reported 0 passing, and none for 8 expected"
        assert verdict.error_type == "IncompleteRun" and why in verdict.message, verdict.message
        assert how != "assertEqual" or "(assertEqual replaced)" in verdict.message, verdict.message


# ---------------------------------------------------------------- syntax validators

_VALID = {
    "python": {"a.py": "x = 1\n"},
    "go": {"a.go": "package a\n\nfunc F() int { return 1 }\n"},
    "rust": {"src/lib.rs": "pub fn f() -> i32 {\n    1\n}\n"},
    "java": {"src/main/java/A.java": "class A {\n    int f() {\n        return 1;\n    }\n}\n"},
    "javascript": {"a.js": "export const f = () => 1;\n"},
    "cpp": {"a.h": "#pragma once\nint f();\n", "a.cpp": '#include "a.h"\nint f() { return 1; }\n'},
}
_INVALID = {
    "python": ({"a.py": "x = (\n"}, "never closed"),
    "go": ({"a.go": "package a\n\nfunc F() int { return 1 \n"}, "a.go:3"),
    "rust": ({"src/lib.rs": "pub fn f() -> i32 { 1 \n"}, "unclosed delimiter"),
    "java": ({"src/main/java/A.java": "class A { int f() { return 1 } }\n"}, "A.java:1: error: ';' expected"),
    "javascript": ({"a.js": "export const f = () => {;\n"}, "SyntaxError"),
    "cpp": ({"a.h": "#pragma once\nint f();\n", "a.cpp": '#include "a.h"\nint f() { return 1 }\n'}, "a.cpp:2"),
}


@pytest.mark.parametrize("language", sorted(_VALID))
def test_syntax_validators_accept_valid_and_explain_invalid_code(language):
    _need(language)
    assert check_files(language, _VALID[language]).ok
    files, expected = _INVALID[language]
    check = check_files(language, files)
    assert not check.ok and expected in check.message, check.message
    assert expected in files_feedback(check, 2000) and "hrm_sandbox_" not in files_feedback(check, 2000)


def test_the_validator_ignores_files_it_does_not_parse():
    assert check_files("rust", {"Cargo.toml": "[package"}).ok


# ---------------------------------------------------------------- the harness check: reference solutions


@pytest.mark.slow
def test_every_reference_solution_passes_its_tests():
    report = check_references(load_exercises(), workers=1)
    failures = {r["exercise"]: r for r in report["results"] if r["status"] != "passed"}
    assert not report["skipped"] and set(failures) == set(KNOWN_FAILURES), (report["skipped"], failures)
    assert all(r["status"] == "compile_error" for r in failures.values())  # missing libraries, not wrong verdicts
    assert sum(row["total"] for row in report["languages"].values()) == 225


def test_toolchains_report_one_line_each():
    lines = tc.describe().splitlines()
    assert [line.split()[0] for line in lines] == list(tc.LANGUAGES)


def test_a_missing_toolchain_is_one_line_not_a_crash(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    tc.toolchain.cache_clear()
    try:
        reason = tc.available("go")
        assert reason is not None and "\n" not in reason and "go" in reason
        report = check_references([EXERCISES["go"]])
        assert report["skipped"] == {"go": reason} and report["results"] == []
    finally:
        tc.toolchain.cache_clear()


def test_install_script_is_named_by_the_readme_and_ci():
    root = pathlib.Path(__file__).resolve().parent.parent
    assert (root / "scripts" / "install_toolchains.sh").stat().st_mode & 0o111
    assert "scripts/install_toolchains.sh" in (root / ".ci" / "run").read_text()
    assert "scripts/install_toolchains.sh" in (root / "README.md").read_text()


def test_refinement_feedback_uses_the_languages_validator():
    from evals.refine import execution_feedback

    _need("go")
    failed = Verdict(Status.COMPILE_ERROR, "CompileError", "tests did not build")
    text = execution_feedback("package a\n\nfunc F( {\n", failed, language="go", filename="a.go")
    assert text.startswith("a.go:3:") and "hrm_sandbox_" not in text
    good = execution_feedback("package a\n\nfunc F() {}\n", failed, language="go", filename="a.go")
    assert good == "CompileError: tests did not build"


def test_an_endless_loop_is_a_timeout():
    _need("go")
    exercise = EXERCISES["go"]
    spins = {"beer_song.go": "package beer\n\nfunc Song() string {\n\tfor {\n\t}\n}\n\n"
                             "func Verses(start, stop int) (string, error) { return Song(), nil }\n\n"
                             "func Verse(n int) (string, error) { return Song(), nil }\n"}
    limits = limits_for("go", tc.toolchain("go"), cpu_seconds=5.0, wall_seconds=60.0)
    verdict = run_tests("go", exercise.name, {**exercise.files, **spins}, exercise.tests, limits)
    assert verdict.status is Status.TIMEOUT and "CPU time limit" in verdict.message, (verdict.status, verdict.message)


def test_toolchain_dirs_are_exposed_read_only_and_only_when_asked():
    from evals.sandbox import run_program

    if not os.path.exists("/usr/include/stdio.h"):
        pytest.skip("no C headers on this machine")
    probe = ("import os\nassert os.path.exists('/usr/include/stdio.h') == {seen}\n"
             "if {seen}:\n    try:\n        open('/usr/include/hrm_probe', 'w')\n        raise SystemExit(3)\n"
             "    except OSError:\n        pass\n")
    assert run_program(probe.format(seen=False)).passed  # a plain Python run sees no toolchain
    exposed = run_program(probe.format(seen=True), SandboxLimits(toolchain_dirs=("/usr/include",)))
    assert exposed.passed, exposed.message
    with pytest.raises(ValueError, match="not an absolute path"):
        SandboxLimits(toolchain_dirs=("usr/bin",))
