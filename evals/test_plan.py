"""A benchmark task's tests split into what the candidate computes and what the parent checks.

`assert remove_Occ("hello", "l") == "heo"` becomes the call `remove_Occ("hello", "l")`, evaluated in the
candidate's sandbox (where the benchmark's own assert would have evaluated it), and the check `_v0 == "heo"`,
evaluated in the parent on the returned value, decoded as builtin data (evals/isolation/values.py). The
candidate never sees the expected values or the comparison; the parent never touches the candidate's
objects. Checks are the benchmark's own expressions, so its comparison rules (exact float equality,
math.isclose, set(...) == set(...), sorted(...), abs(x - y) < eps, truthiness) hold as written.

A check may use only the operations in `_CHECK_FUNCTIONS` and `_NODES`, none of which can blow up on a
value the candidate chose (no `*` or `**` on it, no ranges, no method calls). Tests that do not decompose
that way (loops, helper functions, random inputs, statements in HumanEval's `check`) become a `script`: the
benchmark's test code, run in a separate judge sandbox in which the candidate is a stub that sends the
arguments to the candidate's sandbox and gets back only encoded values (evals/judging.py).
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import math
import sys
import warnings

_CHECK_FUNCTIONS = {
    "abs": abs, "all": all, "any": any, "bool": bool, "dict": dict, "float": float, "frozenset": frozenset,
    "int": int, "isinstance": isinstance, "len": len, "list": list, "max": max, "min": min, "round": round,
    "set": set, "sorted": sorted, "str": str, "sum": sum, "tuple": tuple, "type": type, "repr": repr,
    "complex": complex, "bytes": bytes,
}
_MATH_FUNCTIONS = {"isclose", "fabs", "floor", "ceil", "sqrt", "isnan", "isinf", "isfinite", "pi", "e", "inf"}
_NODES = (ast.Expression, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Constant, ast.Name, ast.Load,
          ast.Attribute, ast.Call, ast.keyword, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Subscript, ast.Slice,
          ast.cmpop, ast.boolop, ast.unaryop, ast.operator)
_GROWING = (ast.Mult, ast.Pow, ast.LShift, ast.MatMult)  # allowed only between constants
_CONSTANT_NAMES = {"True", "False", "None"}
_VALUE = "_v"


@dataclasses.dataclass(frozen=True)
class Check:
    """One assert: `predicate` reads the values of `calls` (indices into TestPlan.calls) as _v0, _v1, ..."""

    source: str
    predicate: str
    calls: tuple[int, ...]

    def evaluate(self, values: dict[int, object]) -> bool:
        scope = {"__builtins__": {}, "math": math, **_CHECK_FUNCTIONS}
        scope.update({f"{_VALUE}{i}": values[i] for i in self.calls})
        return bool(eval(_compiled(self.predicate), scope))


@dataclasses.dataclass(frozen=True)
class TestPlan:
    """Either `calls` + `checks` (decomposed) or a `script` for the judge sandbox (`entry_points`: the
    candidate names the script calls through stubs). `setup` runs in the candidate's namespace first."""

    calls: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    setup: str = ""
    script: str | None = None
    entry_points: tuple[str, ...] = ()
    reason: str = ""  # why the tests did not decompose
    public: bool = True  # the tests are in the prompt (MBPP): a failure message may quote them

    @property
    def decomposed(self) -> bool:
        return self.script is None


_COMPILED: dict[str, object] = {}


def _compiled(predicate: str):
    code = _COMPILED.get(predicate)
    if code is None:
        code = _COMPILED[predicate] = compile(predicate, "<check>", "eval", dont_inherit=True)
    return code


class _NotDecomposable(ValueError):
    pass


def _uses_values(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) and n.id.startswith(_VALUE) for n in ast.walk(node))


def _validate_predicate(tree: ast.Expression) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise _NotDecomposable(f"the check uses {type(node).__name__}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, _GROWING) and _uses_values(node):
            raise _NotDecomposable(f"the check applies {type(node.op).__name__} to a returned value")
        if isinstance(node, ast.Name) and not (node.id.startswith(_VALUE) or node.id in _CHECK_FUNCTIONS
                                               or node.id in _CONSTANT_NAMES or node.id == "math"):
            raise _NotDecomposable(f"the check reads the name {node.id!r}")
        if isinstance(node, ast.Attribute) and not (isinstance(node.value, ast.Name) and node.value.id == "math"
                                                    and node.attr in _MATH_FUNCTIONS):
            raise _NotDecomposable("the check reads an attribute")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _CHECK_FUNCTIONS
                                               or isinstance(node.func, ast.Attribute)):
            raise _NotDecomposable(f"the check calls {ast.unparse(node.func)}")


class _CallExtractor(ast.NodeTransformer):
    """Replaces each outermost call of a candidate function by a `_v<i>` name, collecting the call's source."""

    def __init__(self, is_candidate, rename: dict[str, str], allowed_arg_names, calls: list[str]):
        self.is_candidate, self.rename, self.allowed_arg_names, self.calls = is_candidate, rename, allowed_arg_names, calls
        self.used: list[int] = []

    def visit_Call(self, node: ast.Call):
        if isinstance(node.func, ast.Name) and self.is_candidate(node.func.id):
            for name in ast.walk(node):
                if isinstance(name, ast.Name) and not self.is_candidate(name.id) and not self.allowed_arg_names(name.id):
                    raise _NotDecomposable(f"a call's argument reads the name {name.id!r}")
            call = _Renamer(self.rename).visit(ast.parse(ast.unparse(node), mode="eval")).body
            self.calls.append(ast.unparse(call))
            self.used.append(len(self.calls) - 1)
            return ast.copy_location(ast.Name(f"{_VALUE}{len(self.calls) - 1}", ast.Load()), node)
        return self.generic_visit(node)


class _Renamer(ast.NodeTransformer):
    def __init__(self, rename: dict[str, str]):
        self.rename = rename

    def visit_Name(self, node: ast.Name):
        return ast.copy_location(ast.Name(self.rename.get(node.id, node.id), node.ctx), node)


def _decompose_asserts(source: str, statements: list[ast.stmt], is_candidate, rename,
                       allowed_arg_names) -> tuple[list, list]:
    calls: list[str] = []
    checks: list[Check] = []
    for statement in statements:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # a docstring or a bare constant
        if not isinstance(statement, ast.Assert):
            raise _NotDecomposable(f"the tests hold a {type(statement).__name__} statement")
        extractor = _CallExtractor(is_candidate, rename, allowed_arg_names, calls)
        test = extractor.visit(ast.parse(ast.unparse(statement.test), mode="eval"))
        if not extractor.used:
            if isinstance(statement.test, ast.Constant) and statement.test.value:
                continue  # `assert True`
            raise _NotDecomposable("an assert calls no candidate function")
        _validate_predicate(test)
        text = ast.get_source_segment(source, statement) or ast.unparse(statement)
        checks.append(Check(text.strip(), ast.unparse(test), tuple(extractor.used)))
    return calls, checks


def _builtin_name(name: str) -> bool:
    return hasattr(builtins, name)


def _top_level_names(code: str) -> set[str]:
    """Names a solution defines at module level (functions, classes, assignments, imports)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # MBPP solutions hold "\w"-style escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            body = ast.parse(code).body
    except SyntaxError:
        return set()
    names = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def mbpp_plan(record: dict, *, challenge: bool = False) -> TestPlan:
    """MBPP's asserts (test_list, plus challenge_test_list) decomposed; test_setup_code runs candidate-side.

    A candidate call is a call of a name the reference solution defines (task 126 defines `sum`) or of any
    non-builtin name; its arguments are evaluated in the candidate's namespace, as in MBPP's own program.
    """
    tests = list(record["test_list"]) + (list(record.get("challenge_test_list") or []) if challenge else [])
    source = "\n".join(tests)
    setup = record.get("test_setup_code") or ""
    defined = _top_level_names(record.get("code") or "")
    is_candidate = lambda name: name in defined or not _builtin_name(name)  # noqa: E731
    try:
        statements = ast.parse(source).body
        calls, checks = _decompose_asserts(source, statements, is_candidate, {}, lambda name: True)
        if not checks:
            raise _NotDecomposable("no asserts")
        return TestPlan(tuple(calls), tuple(checks), setup=setup)
    except (_NotDecomposable, SyntaxError) as e:
        tree = ast.parse(source)
        called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        entry_points = tuple(sorted(name for name in called if is_candidate(name)))
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(entry_points)
        imports = "".join(f"import {m}\n" for m in sorted(read & set(sys.stdlib_module_names)))
        return TestPlan(setup=setup, script=imports + setup + "\n" + source + "\n", entry_points=entry_points,
                        reason=str(e))


def humaneval_plan(problem: dict) -> TestPlan:
    """HumanEval's `check(candidate)` decomposed when its body is asserts on `candidate(...)` calls with
    literal-like arguments; otherwise the prompt (for its helper functions) and the test as a judge script."""
    entry = problem["entry_point"]
    try:
        module = ast.parse(problem["test"])
        checks_fn = [s for s in module.body if isinstance(s, ast.FunctionDef) and s.name == "check"]
        others = [s for s in module.body if not (s in checks_fn or isinstance(s, ast.Assign) and
                                                 [ast.unparse(t) for t in s.targets] == ["METADATA"])]
        if len(checks_fn) != 1 or others:
            raise _NotDecomposable("the test holds more than check() and METADATA")
        calls, checks = _decompose_asserts(problem["test"], checks_fn[0].body,
                                           lambda name: name in ("candidate", entry), {"candidate": entry},
                                           _builtin_name)
        if not checks:
            raise _NotDecomposable("no asserts")
        return TestPlan(tuple(calls), tuple(checks), public=False)
    except _NotDecomposable as e:
        script = f"{problem['prompt']}\n\n{problem['test']}\n\ncheck({entry})\n"
        return TestPlan(script=script, entry_points=(entry,), reason=str(e), public=False)
