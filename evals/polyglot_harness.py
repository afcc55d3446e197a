"""Per-test results of every language's exercises, over a channel the candidate cannot forge.

The driver (evals/polyglot_driver.py) gives a test step marked "harness" a fresh secret S on its stdin, a socket.
The harness code added here (the sources in evals/polyglot_harness/) reads S before any candidate code can run
and writes `S <pass|fail|skip> <name>` per test on the same socket; the driver keeps only lines with S:

  go          the test files import package hrmharness (its init() runs before the package under test's) and
              each `func TestX(t *testing.T)` body runs inside hrmharness.Run: a pass only if it returned
  rust        each #[test] fn starts with a guard (the first reads S; no Rust code runs before main) whose
              drop reports a pass unless the test is panicking; each test file runs as its own step
  java        a launcher of the JUnit Platform (HrmLauncher, in place of the console launcher) reads S in main,
              before any test class loads, and reports each test (method name) from its listener
  javascript  a jest reporter (jest's realm, loaded before the tests) reads S, pins the fs functions it writes
              with (node's core modules are shared with the test's realm) and reports each test; a setup
              file makes jest's globals, its matcher registry and the static builtins its matchers call
              (Object.is, Object.keys, Array.isArray, ...) unchangeable before the test file and the
              candidate's module load
  cpp         Catch's main with a listener (test/tests-main.cpp replaced): S is read by a constructor of
              priority 101, before every default-priority initialiser, with raw system calls
  python      a pytest plugin (hrm_pytest_harness, `-p`: imported before collection imports the tests and the
              candidate's module) reads S, moves the socket off fd 0 and keeps it and its writer in closures;
              it reports each test (method name; a failing setup or teardown is a fail) and fails every test
              once the functions and classes the verdict rests on (builtins, unittest's, pluggy's, pytest's
              runner, reports, assertion rewriting and unittest support, the test classes) are replaced;
              its assertEqual refuses a candidate's __eq__ against the tests' builtin values

The judge (`shortfall`) then wants every test the test files declare (by name; JavaScript: at least as many as
they declare where no loop or .each builds tests, else one, and no more skipped than they skip) reported
passed, none failed. Before compiling, `forgery` refuses candidate files that could run before the harness or
replace the framework's parts: C++ macros of names the tests or Catch use, pre-main constructors and sections,
C symbol interposition; Rust's no_mangle/link_section/global_allocator/ctor, std macros redefined, Cargo.toml
sections beyond the package, its dependencies and features (test targets), a build script; Go's linkname;
Python code naming pytest, pluggy, conftest, unittest, builtins, sys.modules, _exit or the interpreter's frames,
closures, gc and ctypes, and files pytest or Python would load first (conftest.py, ini files, .pth,
sitecustomize) or that shadow a module the tests or pytest import.

What stays open: the candidate shares the harness's address space, so code that reads the process's memory
(unsafe pointers, reflection on the harness's fields, a heap snapshot or debugger session in node) can find S.
In JavaScript the test's realm also holds jest-circus's own state (reachable through its global symbol) and the
builtins' prototypes, which stay writable (freezing them breaks ordinary code: assigning an inherited name
throws): a candidate that edits the framework's internal records, or bends what matchers lean on, can still
forge. In Python the names refused above can be spelled at run time (getattr, __import__), so the plugin's
identity checks decide: a part replaced and restored within one test, an object the framework holds but does not
guard (the config, the session, a test instance, reached through the objects' graph), a debugger-style trace, or
a lenient value where the tests compare it with another of the candidate's, or assert with assertIn/assertTrue
(its __contains__/__bool__), still passes.
This closes the ordinary forgeries: printed summaries, early exits, replaced or redefined framework
functions and macros, rewriting the harness's writes, reading S from an fd, the environment, argv or a file.
"""
from __future__ import annotations

import collections
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

SOURCES = Path(__file__).resolve().with_name("polyglot_harness")
LANGUAGES = ("cpp", "go", "java", "javascript", "python", "rust")
JAVA_LAUNCHER = "hrmharness.HrmLauncher"
GO_PACKAGE = "hrmharness"
PYTEST_PLUGIN = "hrm_pytest_harness"

_GO_TEST = re.compile(r"^func (Test\w*)\((\w+) \*testing\.T\) \{(.*)$")
_RUST_TEST = re.compile(r"(#\[test\]\s*(?:(?:#\[[^\]]*\]|//[^\n]*)\s*)*(?:pub\s+)?fn\s+(\w+)\s*\(\s*\)[^{;]*\{)")
_JAVA_TEST = re.compile(r"@(?:Test|ParameterizedTest|RepeatedTest)\b.*?\bvoid\s+(\w+)\s*\(", re.DOTALL)
_CPP_TEST = re.compile(r"^\s*TEST_CASE\s*\(\s*((?:\"(?:[^\"\\]|\\.)*\"\s*)+)", re.MULTILINE)  # "a" "b" is "ab"
_JS_TEST = re.compile(r"\b(?:test|it)\s*\(")
_PYTHON_TEST = re.compile(r"^\s*def (test\w*)\s*\(", re.MULTILINE)  # pytest's and unittest's prefix
_BENCHMARK = re.compile(r"^#if defined\(EXERCISM_INCLUDE_BENCHMARK\).*?^#endif", re.MULTILINE | re.DOTALL)

_CATCH_NAMES = (r"REQUIRE\w*|CHECK\w*|TEST_CASE\w*|TEMPLATE_\w+|SECTION|DYNAMIC_SECTION|SCENARIO\w*|GIVEN|WHEN|THEN"
                r"|AND_\w+|INFO|UNSCOPED_INFO|WARN|FAIL\w*|SUCCEED|CAPTURE|STATIC_REQUIRE\w*|METHOD_AS_TEST_CASE"
                r"|REGISTER_TEST_CASE|BENCHMARK\w*|ANON_TEST_CASE|CATCH_\w+|INTERNAL_CATCH_\w+|Approx")
_FORGERIES = {
    "cpp": [(rf"#\s*(?:define|undef)\s+(?:{_CATCH_NAMES})\b", "redefines a macro of the test framework"),
            (r"\bCatch\b|catch\.hpp|catch2", "uses the test framework's internals"),
            (r"(?:__attribute__\s*\(\(|\[\[\s*gnu::)[^)\]]*\b(?:__)?(?:constructor|destructor|init_priority|section)\b"
             r"|\.(?:pre)?init_array|\.ctors", "runs code before main"),
            (r"\bextern\s*\"C\"|\b(?:__)?asm(?:__)?\b", "replaces C library functions"),
            (r"\b(?:push|pop)_macro\b", "saves or restores macros")],
    "go": [(r"go:linkname", "links to other packages' private symbols"),
           (GO_PACKAGE, "uses the judge's harness")],
    "rust": [(r"\b(?:no_mangle|export_name|link_section|link_name|global_allocator)\b|#\[\s*ctor\b|\bctor::",
              "runs code before main or replaces symbols"),
             (r"macro_rules!\s*(?:assert\w*|debug_assert\w*|panic|unreachable|todo|unimplemented|vec|format|matches"
              r"|write|writeln|e?print|e?println|dbg|concat|stringify)\b", "redefines a macro of the standard library"),
             (r"\bhrm_harness\b", "uses the judge's harness")],
    "java": [(r"\bhrmharness\b", "uses the judge's harness")],
    "javascript": [],
    "python": [(r"\b_?pytest|\bpluggy\b|\bconftest\b", "uses the test framework's internals or hooks"),
               (r"\bunittest\b|\bTestCase\b", "reaches the test framework's assertions"),
               (r"\bbuiltins\b|__builtins__", "reaches the builtins the tests call"),
               (r"\bsys\s*\.\s*modules\b", "reaches the loaded modules"),
               (r"\b_exit\b", "exits the process without its cleanup"),
               (r"\b(?:_getframe|currentframe|settrace|setprofile|ctypes)\b|\bgc\s*\.\s*get_\w+|__closure__"
                r"|\b(?:f_back|f_globals|f_locals|tb_frame|gi_frame|cr_frame)\b",
                "reads the interpreter's frames, objects or memory"),
               (rf"\b{PYTEST_PLUGIN}\b", "uses the judge's harness")],
}
# files pytest or Python itself would load before (or instead of) the judge's plugin and the tests
_PYTHON_LOADED = re.compile(r"(?:.*/)?(?:conftest\.py|pytest\.ini|tox\.ini|setup\.cfg|pyproject\.toml|[^/]*\.pth"
                            r"|sitecustomize\.py|usercustomize\.py)")
_EXERCISE_FILES = r"test/|tests/|src/test/|.*_test\.go$|.*\.(?:spec|test)\.js$"
_PYTHON_SHADOWED = {"pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py", PYTEST_PLUGIN}
_CARGO_SECTIONS = re.compile(r"(?:package|dependencies|dev-dependencies|features|badges|lints(?:\.[\w-]+)?)")


def instrument(language: str, files: dict, tests: Sequence[str]) -> dict:
    """`files` with the language's harness added and the test files rewritten to report to it."""
    files = dict(files)
    if language == "go":
        module = re.search(r"^module\s+(\S+)", files.get("go.mod", ""), flags=re.MULTILINE)
        package = f"{module.group(1)}/{GO_PACKAGE}" if module else GO_PACKAGE
        files[f"{GO_PACKAGE}/harness.go"] = (SOURCES / "harness.go").read_text()
        for path in [p for p in files if p.endswith("_test.go")]:
            files[path] = _go_wrapped(files[path], package)
    elif language == "rust":
        harness = (SOURCES / "harness.rs").read_text()
        for path in rust_test_files(files):
            guarded = _RUST_TEST.sub(lambda m: f"{m.group(1)} let _hrm_guard = crate::hrm_harness::Guard::new("
                                               f"\"{m.group(2)}\");", files[path])
            files[path] = guarded + harness
    elif language == "java":
        files["src/test/java/hrmharness/HrmLauncher.java"] = (SOURCES / "HrmLauncher.java").read_text()
    elif language == "javascript":
        files["hrm_reporter.js"] = (SOURCES / "reporter.js").read_text()
        files["hrm_setup.js"] = (SOURCES / "setup.js").read_text()
    elif language == "cpp":
        files["test/tests-main.cpp"] = (SOURCES / "tests-main.cpp").read_text()
    elif language == "python":
        files[f"{PYTEST_PLUGIN}.py"] = (SOURCES / f"{PYTEST_PLUGIN}.py").read_text()
    return files


def rust_test_files(files: dict) -> list[str]:
    """The integration tests Cargo builds (tests/*.rs), each its own test binary."""
    return sorted(p for p in files if re.fullmatch(r"tests/[^/]+\.rs", p))


def _go_wrapped(text: str, package: str) -> str:
    """Each `func TestX(t *testing.T) {...}` of a gofmt'ed file as `{ hrmharness.Run(t, func() {...}) }`."""
    out, inside, wrapped = [], False, False
    for line in text.splitlines():
        test = _GO_TEST.match(line)
        if test:
            name, arg, rest = test.groups()
            head = f"func {name}({arg} *testing.T) {{ {GO_PACKAGE}.Run({arg}, func() {{"
            if rest.rstrip().endswith("}"):  # one line: `{ body }`
                line = f"{head}{rest.rstrip()[:-1]}}}) }}"
            else:
                line, inside = head + rest, True
            wrapped = True
        elif inside and line.rstrip() == "}":
            line, inside = "\t})\n}", False
        out.append(line)
    text = "\n".join(out) + "\n"
    if wrapped:
        text = re.sub(r"^(package \w+.*)$", rf'\1\n\nimport {GO_PACKAGE} "{package}"', text, count=1,
                      flags=re.MULTILINE)
    return text


class Declared(NamedTuple):
    """What the test files declare: the tests' names (how often each), the least number of tests that must pass
    (JavaScript: the tests named in the file, unless loops or .each build them; then 1), and the most that may
    be skipped (None: any, the names decide; JavaScript: its `.skip`/`.todo` tests, so a `.only` that skips
    the others shows)."""

    names: collections.Counter
    at_least: int
    skips: int | None = None


def expected(language: str, files: dict, tests: Sequence[str]) -> Declared:
    """The tests the test files declare (see Declared)."""
    names = collections.Counter()
    for path in tests:
        text = files.get(path, "")
        if language == "go":
            names.update(m.group(1) for m in map(_GO_TEST.match, text.splitlines()) if m)
        elif language == "python":
            names.update(_PYTHON_TEST.findall(text))
        elif language == "rust":
            names.update(m.group(2) for m in _RUST_TEST.finditer(_without_feature_gated(text)))
        elif language == "java":
            names.update(_JAVA_TEST.findall(re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.DOTALL)))
        elif language == "cpp":
            text = re.sub(r"^\s*//[^\n]*\n", "", _BENCHMARK.sub("", text), flags=re.MULTILINE)
            names.update("".join(re.findall(r'"((?:[^"\\]|\\.)*)"', literals)).replace('\\"', '"')
                         for literals in _CPP_TEST.findall(text))
    if language == "javascript":
        text = "".join(files.get(p, "") for p in tests)
        built = re.search(r"\.each\b|\bfor\s*\(|\.forEach\s*\(|\.map\s*\(|\bwhile\s*\(", text)
        return Declared(names, 1 if built else max(len(_JS_TEST.findall(text)), 1),
                        len(re.findall(r"\.(?:skip|todo)\s*\(", text)))
    return Declared(names, sum(names.values()))


def _without_feature_gated(text: str) -> str:
    """Rust source without the items under `#[cfg(feature = ...)]` (features the exercise leaves off)."""
    while gate := re.search(r"#\[cfg\(feature\s*=[^\]]*\]", text):
        brace, semicolon = text.find("{", gate.end()), text.find(";", gate.end())
        if brace < 0 or 0 <= semicolon < brace:  # `use ...;` and other one-line items
            text = text[:gate.start()] + text[semicolon + 1 if semicolon >= 0 else len(text):]
            continue
        depth, end = 0, len(text)
        for i in range(brace, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                end = i + 1
                break
        text = text[:gate.start()] + text[end:]
    return text


def forgery(language: str, files: dict, tests: Sequence[str]) -> str | None:
    """Why a candidate's files could forge the harness's reports (one line), or None when they cannot."""
    if language == "rust" and "Cargo.toml" in files:
        for section in re.findall(r"^\s*\[\[?\s*([^\]]+?)\s*\]", files["Cargo.toml"], flags=re.MULTILINE):
            if not _CARGO_SECTIONS.fullmatch(section):
                return f"Cargo.toml: section [{section}] is not allowed (only the package, its dependencies, features)"
        # a build script runs the candidate's code at compile time, where it could rewrite the test files
        if re.search(r"\bctor\b|^\s*(?:autotests|autobins|harness|build)\s*=", files["Cargo.toml"], flags=re.MULTILINE):
            return "Cargo.toml: a build script, pre-main code or test-target setting is not allowed"
    if language == "cpp":  # a macro of a name the tests or Catch use changes what they assert
        used = set(re.findall(r"\w+", "".join(files.get(p, "") for p in [*tests, "test/catch.hpp"])))
        for path, text in sorted(files.items()):
            if path not in tests and not re.match(_EXERCISE_FILES, path):
                for name in re.findall(r"^\s*#\s*(?:define|undef)\s+(\w+)", text, flags=re.MULTILINE):
                    if name in used:
                        return f"{path}: `#define {name}` redefines a name the tests use, which the judge refuses"
    if language == "python":
        for path in sorted(p for p in files if p not in tests):
            module = path.split("/", 1)[0].split(".", 1)[0]
            if _PYTHON_LOADED.fullmatch(path) or ".." in path.split("/") or path.startswith("/"):
                return f"{path}: a file pytest or Python loads before the tests is not allowed"
            if path.endswith(".py") and (module in sys.stdlib_module_names or module in _PYTHON_SHADOWED):
                return f"{path}: a module named `{module}` would replace the one the tests or pytest import"
    suffixes = {"cpp": (".cpp", ".h", ".hpp", ".cc"), "go": (".go",), "rust": (".rs",), "java": (".java",),
                "javascript": (".js",), "python": (".py",)}.get(language, ())
    for path, text in sorted(files.items()):
        if path in tests or not path.endswith(suffixes) or re.match(_EXERCISE_FILES, path):
            continue  # the exercise's own, not the candidate's
        code = (text if language == "go"  # Go's directives are comments; a `#` may sit in a Python string
                else re.sub(r"^\s*#[^\n]*", "", text, flags=re.MULTILINE) if language == "python"
                else re.sub(r"//[^\n]*", "", text))
        for pattern, why in _FORGERIES.get(language, []):
            found = re.search(pattern, code)
            if found:
                return f"{path}: `{found.group(0)}` {why}, which the judge does not allow"
    return None


def shortfall(language: str, steps: Sequence[dict], names: collections.Counter, at_least: int,
              skips: int | None = None) -> str | None:
    """Why the harness's reports of the test steps fall short of every expected test passing, or None."""
    reports = [r for step in steps if step.get("name") == "test" for r in step.get("reports", [])]
    if any(step.get("reports_truncated") for step in steps):
        return "the test harness sent more reports than the judge reads"
    failed = sorted({name for status, name in reports if status == "fail"})
    if failed:
        return f"the test harness reported {len(failed)} failing: {', '.join(failed)[:300]}"
    passed = collections.Counter(name for status, name in reports if status == "pass")
    missing = sorted((names - passed).elements())
    if missing:
        return (f"the test harness reported {sum(passed.values())} passing, and none for "
                f"{len(missing)} expected: {', '.join(missing)[:300]}")
    skipped = sum(status == "skip" for status, _ in reports)
    if skips is not None and skipped > skips:
        return f"the test harness reported {skipped} skipped tests where the test files skip {skips}"
    if sum(passed.values()) < at_least:
        return f"the test harness reported {sum(passed.values())} passing of {at_least} expected tests"
    return None
