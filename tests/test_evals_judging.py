"""Verdicts decided outside the candidate's process: the value format, the test plans, the parent's checks and
the judge sandbox for tests that do not decompose."""
import math
from collections import Counter, OrderedDict, namedtuple

import pytest

from evals.isolation import values
from evals.judging import decide, judge_candidate, judge_many
from evals.sandbox import RunResult, SandboxLimits
from evals.tasks import humaneval_tasks, mbpp_tasks
from evals.test_plan import Check, TestPlan, humaneval_plan, mbpp_plan
from evals.verdict import Status, Verdict
from input_pipeline.humaneval import load_humaneval
from input_pipeline.mbpp_data import load_mbpp
from tests import fixtures_tokenizer  # noqa: F401  (sets HRM_JAX_DATA_DIR)

LIMITS = SandboxLimits(cpu_seconds=5, wall_seconds=20, memory_bytes=512 << 20)
Point = namedtuple("Point", "x y")

# ---------------------------------------------------------------- the value format


@pytest.mark.parametrize("value", [
    None, True, 0, -7, 2 ** 200, -(2 ** 70), 1.5, -0.0, math.inf, 1 + 2j, "é", b"\x00", bytearray(b"x"),
    [1, [2.0]], (1, (2,)), {1: "a", (1, 2): [3]}, {1, 2}, frozenset({3}), [], (), {},
])
def test_builtin_values_round_trip_with_their_types(value):
    decoded = values.decode(values.encode(value))
    assert decoded == value and type(decoded) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, decoded) == math.copysign(1, value)


def test_nan_and_ints_past_the_string_conversion_limit_round_trip():
    assert math.isnan(values.decode(values.encode(float("nan"))))
    assert values.decode(values.encode(10 ** 5000)) == 10 ** 5000


def test_builtin_subclasses_travel_as_their_base_value():
    assert values.decode(values.encode(Counter("aab"))) == {"a": 2, "b": 1}
    assert type(values.decode(values.encode(OrderedDict(a=1)))) is dict
    assert values.decode(values.encode(Point(1, 2))) == (1, 2)

    class Sneaky(int):
        def __eq__(self, other):
            return True

        def __repr__(self):
            return "999"

    assert values.decode(values.encode(Sneaky(5))) == 5  # read through int's own methods, not the subclass's


def test_anything_else_is_refused_without_running_its_code():
    class Anything:
        def __eq__(self, other):
            raise RuntimeError("must not be called")

    for value in (Anything(), [Anything()], {1: object()}, lambda: 1, iter([1])):
        with pytest.raises(values.Unencodable):
            values.encode(value)
    nested = []
    for _ in range(values.MAX_DEPTH + 5):
        nested = [nested]
    with pytest.raises(values.Unencodable, match="deeper"):
        values.encode(nested)


@pytest.mark.parametrize("text", ["{", '{"x": 1}', '{"t": 1}', '{"d": [[[1], 2]]}', '{"a": 1, "b": 2}', '{"I": "zz"}'])
def test_malformed_input_is_refused(text):
    with pytest.raises(values.Malformed):
        values.decode(text)


# ---------------------------------------------------------------- test plans


def test_mbpp_asserts_become_calls_and_checks():
    record = {"test_list": ["assert f(1, [2]) == 3", "assert math.isclose(f(2), 0.5, rel_tol=0.01)",
                            "assert set(g('a')) == set([1, 2])", "assert not f(0)", "assert f(1) == f(1)"],
              "test_setup_code": "", "code": "def f(*a): pass"}
    plan = mbpp_plan(record)
    assert plan.decomposed and plan.calls == ("f(1, [2])", "f(2)", "g('a')", "f(0)", "f(1)", "f(1)")
    assert [c.predicate for c in plan.checks] == ["_v0 == 3", "math.isclose(_v1, 0.5, rel_tol=0.01)",
                                                  "set(_v2) == set([1, 2])", "not _v3", "_v4 == _v5"]
    assert plan.checks[0].evaluate({0: 3}) and not plan.checks[0].evaluate({0: 3.5})
    assert plan.checks[1].evaluate({1: 0.502}) and plan.checks[2].evaluate({2: [2, 1, 1]})


def test_a_solution_shadowing_a_builtin_is_still_the_candidate():
    plan = mbpp_plan({"test_list": ["assert sum(10, 15) == 6"], "test_setup_code": "", "code": "def sum(a, b): pass"})
    assert plan.decomposed and plan.calls == ("sum(10, 15)",)


@pytest.mark.parametrize("test, reason", [
    ("assert f(1) * 10 ** 9 == 0", "Mult"),
    ("assert f(1).strip() == 'a'", "attribute"),
    ("assert f(1) == expected", "'expected'"),
    ("assert sys.getsizeof(f(1)) == 3", "attribute"),
])
def test_checks_that_could_blow_up_or_reach_out_do_not_decompose(test, reason):
    plan = mbpp_plan({"test_list": [test], "test_setup_code": "", "code": "def f(x): pass"})
    assert not plan.decomposed and reason in plan.reason and plan.entry_points == ("f",)


def test_non_decomposable_tasks_are_counted():
    """MBPP test: all 500 decompose (task 367's tree-building setup runs beside the candidate); HumanEval:
    the 7 tasks whose check() loops, draws random inputs, assigns or prints run in the judge sandbox."""
    assert [r["task_id"] for r in load_mbpp("test") if not mbpp_plan(r, challenge=True).decomposed] == []
    scripts = [p["task_id"] for p in load_humaneval() if not humaneval_plan(p).decomposed]
    assert scripts == [f"HumanEval/{i}" for i in (32, 38, 44, 50, 53, 129, 151)]


def test_humaneval_checks_rename_candidate_to_the_entry_point():
    plan = humaneval_plan(load_humaneval()[0])
    assert plan.decomposed and plan.calls[0] == "has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3)"
    assert plan.checks[0].predicate == "_v0 == True"


# ---------------------------------------------------------------- the parent's decision


def _result(replies: list[bytes], verdict=Verdict(Status.PASSED)) -> RunResult:
    return RunResult(verdict, b"".join(r + b"\n" for r in replies))


PLAN = TestPlan(calls=("f(1)", "f(2)", "f(3)"),
                checks=(Check("assert f(1) == 1", "_v0 == 1", (0,)), Check("assert f(2) == 4", "_v1 == 4", (1,)),
                        Check("assert f(3) == 9", "_v2 == 9", (2,))))


def test_the_first_failing_check_decides_and_names_the_value():
    verdict = decide(PLAN, _result([b'{"value":1}', b'{"value":5}', b'{"raised":"ValueError"}']))
    assert (verdict.status, verdict.error_type) == (Status.FAILED, "AssertionError")
    assert "assert f(2) == 4" in verdict.message and "f(2) returned 5" in verdict.message


def test_a_raising_call_is_an_error_of_its_type():
    verdict = decide(PLAN, _result([b'{"value":1}', b'{"raised":"ZeroDivisionError","message":"x"}']))
    assert (verdict.status, verdict.error_type) == (Status.ERROR, "ZeroDivisionError")


def test_a_run_that_stops_answering_keeps_its_own_ending():
    timeout = Verdict(Status.TIMEOUT, message="wall time limit of 2s exceeded")
    assert decide(PLAN, _result([b'{"value":1}'], timeout)).status == Status.TIMEOUT
    early = decide(PLAN, _result([b'{"value":1}', b'{"value":4}']))  # "passed" by its own account
    assert (early.status, early.error_type) == (Status.ERROR, "EarlyExit")
    assert decide(PLAN, _result([b'{"value":1}', b'{"value":4}', b'{"value":9}'])).passed


def test_unencodable_and_malformed_replies_fail():
    for reply in (b'{"unencodable":"a A object is not builtin data"}', b"garbage", b'{"value":{"zz":1}}'):
        verdict = decide(PLAN, _result([reply]))
        assert verdict.status == Status.FAILED and not verdict.passed, reply


# ---------------------------------------------------------------- end to end through the sandboxes


def test_mbpp_setup_code_runs_beside_the_candidate():
    task = next(t for t in mbpp_tasks(load_mbpp("test")) if t.task_id == "367")  # trees of the solution's Node
    assert judge_candidate(task.program(task.reference), task.tests, LIMITS).passed
    wrong = task.reference.replace("return True", "return False")
    assert judge_candidate(task.program(wrong), task.tests, LIMITS).status == Status.FAILED


def test_judge_sandbox_verdicts_for_script_tests():
    task = next(t for t in humaneval_tasks(load_humaneval()) if t.task_id == "HumanEval/53")  # add, random inputs
    cases = {"    return x + y\n": (Status.PASSED, None), "    return x - y\n": (Status.FAILED, "AssertionError"),
             "    raise KeyError(x)\n": (Status.ERROR, "KeyError"), "    import os\n    os._exit(0)\n": (Status.ERROR, None),
             "    while True:\n        pass\n": (Status.TIMEOUT, None)}
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_bytes=512 << 20)
    verdicts = judge_many([(task.program(code), task.tests) for code in cases], max_workers=2, limits=limits)
    for (code, (status, error_type)), verdict in zip(cases.items(), verdicts):
        assert verdict.status == status, (code, verdict)
        if error_type:
            assert verdict.error_type == error_type, (code, verdict)


def test_script_tests_never_see_the_candidates_objects():
    task = next(t for t in humaneval_tasks(load_humaneval()) if t.task_id == "HumanEval/53")
    always_equal = ("    return Anything()\nclass Anything(int):\n    def __eq__(self, other):\n        return True\n"
                    "    __hash__ = int.__hash__\n")
    verdict = judge_candidate(task.program(always_equal), task.tests, LIMITS)
    assert verdict.status == Status.FAILED, verdict  # it travelled as the int 0, not as the object


def test_hidden_tests_are_not_quoted_in_failure_messages():
    task = humaneval_tasks(load_humaneval())[0]  # has_close_elements; its check() is not in the prompt
    verdict = judge_candidate(task.program("    return not False\n"), task.tests, LIMITS)
    assert verdict.status == Status.FAILED and verdict.message.startswith("test 2 of 7 (hidden) failed"), verdict
    assert "candidate" not in verdict.message and "has_close_elements(" not in verdict.message
    mbpp = mbpp_tasks(load_mbpp("test"))[0]  # MBPP's tests are in its prompt: the failing one is quoted
    verdict = judge_candidate(mbpp.program("def remove_Occ(s, ch):\n    return s\n"), mbpp.tests, LIMITS)
    assert verdict.status == Status.FAILED and verdict.message.startswith('assert remove_Occ("hello","l") == "heo"')
    assert "returned 'hello'" in verdict.message
