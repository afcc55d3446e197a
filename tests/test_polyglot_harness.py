"""The per-test report channel of evals/polyglot_harness.py: the driver's secret socket, the test-file rewrites,
the expected names, the static refusals and the judge's shortfall (no compilers needed; the runs of each
language's harness are in tests/test_polyglot_sandbox.py)."""
import collections

from evals import polyglot_harness as harness
from evals import polyglot_toolchains as tc
from evals.polyglot_sandbox import Job, limits_for, run_job
from evals.verdict import Status

_STEP = r"""
import os, sys
secret = os.read(0, 32)
os.write(0, secret + b" pass first\n" + secret + b" fail second\n" + b"forged pass third\n" + secret + b" odd x\n")
os.set_blocking(0, False)
try:
    left = os.read(0, 100)
except BlockingIOError:
    left = b""
try:
    open("/proc/self/fd/0", "rb")
    reopened = "reopened"
except OSError:
    reopened = "not reopened"
print(len(secret), repr(left), reopened)
"""


def test_a_harness_step_gets_a_secret_socket_and_only_its_signed_lines_count():
    python = tc.toolchain("python")
    steps = [{"name": "test", "argv": [python.tools["python"], "-c", _STEP], "harness": True},
             {"name": "plain", "argv": [python.tools["python"], "-c", "import os; print(repr(os.read(0, 10)))"]}]
    run, record = run_job(Job({}, steps, dict(python.env)), limits_for("python", python))
    assert run.status is Status.PASSED and record is not None, run.message
    test, plain = record["steps"]
    assert test["reports"] == [["pass", "first"], ["fail", "second"]] and not test["reports_truncated"]
    assert test["output"].strip() == "32 b'' not reopened"  # consumed: nothing left to read, no fd to reopen
    assert plain["output"].strip() == "b''" and "reports" not in plain  # other steps: /dev/null, no channel


def test_go_test_functions_run_inside_the_harness():
    text = ("package beer\n\nimport \"testing\"\n\n"
            "func TestA(t *testing.T) {\n\tif Song() != \"\" {\n\t\treturn\n\t}\n}\n\n"
            "func TestB(t *testing.T) { t.Fatal(\"x\") }\n\nfunc helper() {\n}\n")
    wrapped = harness.instrument("go", {"go.mod": "module beer\n", "a_test.go": text}, ["a_test.go"])
    go = wrapped["a_test.go"]
    assert 'import hrmharness "beer/hrmharness"' in go
    assert "func TestA(t *testing.T) { hrmharness.Run(t, func() {\n\tif Song()" in go and "\t}\n\t})\n}\n" in go
    assert 'func TestB(t *testing.T) { hrmharness.Run(t, func() { t.Fatal("x") }) }' in go
    assert "func helper() {\n}\n" in go and "hrmharness/harness.go" in wrapped
    declared = harness.expected("go", {"a_test.go": text}, ["a_test.go"])
    assert declared == (collections.Counter(["TestA", "TestB"]), 2, None)


def test_rust_tests_start_with_a_guard_and_feature_gated_ones_are_not_expected():
    text = ('#[test]\nfn one() {\n    assert!(true);\n}\n\n#[test]\n#[ignore]\nfn two() {}\n\n'
            '#[cfg(feature = "extra")]\nmod extra {\n    #[test]\n    fn three() {\n        if true {}\n    }\n}\n'
            '#[test]\n#[cfg(feature = "extra")]\nfn four() {}\n')
    guarded = harness.instrument("rust", {"tests/a.rs": text}, ["tests/a.rs"])["tests/a.rs"]
    assert 'fn one() { let _hrm_guard = crate::hrm_harness::Guard::new("one");' in guarded
    assert guarded.count("Guard::new(") == 4 and "mod hrm_harness" in guarded
    declared = harness.expected("rust", {"tests/a.rs": text}, ["tests/a.rs"])
    assert declared == (collections.Counter(["one", "two"]), 2, None)


def test_expected_names_of_java_cpp_and_the_javascript_count():
    java = ("@Test\npublic void a() {}\n// @Test void commented() {}\n@ParameterizedTest\n@CsvSource({\"1, 2\"})\n"
            "void b(int x, int y) {}\n")
    assert harness.expected("java", {"T.java": java}, ["T.java"])[0] == collections.Counter(["a", "b"])
    cpp = ('TEST_CASE("one") {}\n#if defined(EXERCISM_INCLUDE_BENCHMARK)\nTEST_CASE("bench") {}\n#endif\n'
           'TEST_CASE("two") {}\n')
    assert harness.expected("cpp", {"t.cpp": cpp}, ["t.cpp"]) == (collections.Counter(["one", "two"]), 2, None)
    assert harness.expected("javascript", {"a.spec.js": "test('a', f);\nit('b', f);\n"}, ["a.spec.js"])[1] == 2
    assert harness.expected("javascript", {"a.spec.js": "test.each([1, 2])('a', f);\n"}, ["a.spec.js"])[1] == 1
    skipping = {"a.spec.js": "test('a', f);\ntest.skip('b', f);\n"}
    assert harness.expected("javascript", skipping, ["a.spec.js"]).skips == 1


def test_candidate_files_that_could_forge_the_harness_are_refused():
    tests = ["t.cpp"]
    for text in ("#define REQUIRE(...) (void)0\n", "# undef CHECK\n", '#include "test/catch.hpp"\n',
                 "__attribute__((constructor)) void f() {}\n", 'extern "C" long read(int, void*, long);\n',
                 "static int x __attribute__((section(\".init_array\")));\n"):
        assert harness.forgery("cpp", {"a.h": text, "t.cpp": "#define REQUIRE(x)\n"}, tests), text
    assert harness.forgery("cpp", {"a.h": "#pragma once\n#define MAX 3\nint section = 1;\n"}, tests) is None
    loosened = {"a.h": "#define WithinAbs(x, y) WithinAbs(x, 1e9)\n",
                "t.cpp": "REQUIRE_THAT(f(), WithinAbs(1.5, 0.1));"}
    assert "a name the tests use" in harness.forgery("cpp", loosened, tests)
    retargeted = {"Cargo.toml": '[package]\n[[test]]\nname = "a"\npath = "src/lib.rs"\n'}
    assert "Cargo.toml" in harness.forgery("rust", retargeted, [])
    assert harness.forgery("rust", {"Cargo.toml": '[package]\nname = "a"\n[dependencies]\nctor = "*"\n'}, [])
    assert "build script" in harness.forgery("rust", {"Cargo.toml": '[package]\nbuild = "src/lib.rs"\n'}, [])
    plain = {"Cargo.toml": "[package]\n[dependencies]\nregex = \"1\"\n[lints.clippy]\n"}
    assert harness.forgery("rust", plain, []) is None
    assert "no_mangle" in harness.forgery("rust", {"src/lib.rs": "#[no_mangle]\npub extern \"C\" fn read() {}\n"}, [])
    assert harness.forgery("rust", {"src/lib.rs": "macro_rules! assert_eq { ($($t:tt)*) => {} }\n"}, [])
    assert harness.forgery("go", {"a.go": "//go:linkname x runtime.x\n", "a_test.go": "//go:linkname\n"}, [])
    assert harness.forgery("go", {"a.go": "package a\n"}, []) is None


def test_the_judge_wants_every_expected_test_reported_passed():
    names = collections.Counter(["a", "b"])
    steps = [{"name": "test", "reports": [["pass", "a"], ["pass", "b"]]}]
    assert harness.shortfall("go", steps, names, 2) is None
    assert "none for 1 expected: b" in harness.shortfall("go", [{"name": "test", "reports": [["pass", "a"]]}], names, 2)
    failing = [{"name": "test", "reports": [["pass", "a"], ["pass", "b"], ["fail", "b"]]}]
    assert "1 failing: b" in harness.shortfall("go", failing, names, 2)
    assert "of 3 expected" in harness.shortfall("javascript", steps, collections.Counter(), 3)
    focused = [{"name": "test", "reports": [["pass", "a"], ["skip", "b"], ["skip", "c"]]}]
    why = harness.shortfall("javascript", focused, collections.Counter(), 1, 1)
    assert "2 skipped tests where the test files skip 1" in why
    assert harness.shortfall("rust", [{"name": "test", "reports": [], "reports_truncated": True}], names, 2)


def test_python_tests_are_expected_by_name_and_run_with_the_judges_plugin():
    text = ("import unittest\n\n\nclass ATest(unittest.TestCase):\n    def test_one(self):\n        pass\n\n"
            "    def helper(self):\n        pass\n\n    def testTwo(self):\n        pass\n\n\n"
            "def test_three():\n    pass\n")
    declared = harness.expected("python", {"a_test.py": text}, ["a_test.py"])
    assert declared == (collections.Counter(["test_one", "testTwo", "test_three"]), 3, None)
    files = harness.instrument("python", {"a.py": "", "a_test.py": text}, ["a_test.py"])
    assert files["hrm_pytest_harness.py"].startswith('"""The judge\'s pytest plugin')


def test_python_candidates_that_could_forge_the_harness_are_refused():
    tests = ["a_test.py"]
    for text in ("import sys\nsys.modules['_pytest.runner'].call_and_report = None\n",
                 "def pytest_runtest_makereport(item, call):\n    pass\n", "import conftest\n",
                 "import os\nos._exit(0)\n", "import unittest\nunittest.TestCase.assertEqual = print\n",
                 "import builtins\nbuiltins.isinstance = lambda *a: True\n", "__builtins__['len'] = None\n",
                 "import sys\nframe = sys._getframe(1)\n", "import gc\ngc.get_objects()\n",
                 "f = (lambda: 0).__closure__\n", "import hrm_pytest_harness\n"):
        assert harness.forgery("python", {"a.py": text, "a_test.py": "import unittest\n"}, tests), text
    for path in ("conftest.py", "sub/conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "x.pth",
                 "sitecustomize.py", "unittest.py", "unittest/__init__.py", "pytest.py", "../a.py"):
        assert harness.forgery("python", {path: "", "a_test.py": ""}, tests), path
    plain = {"a.py": "# uses no unittest\nimport os\n\n\ndef f(x):\n    return '#' + os.sep + str(x)\n",
             "a_test.py": "import unittest\nimport os\nos._exit(0)\n"}  # the exercise's own test file is not checked
    assert harness.forgery("python", plain, tests) is None
