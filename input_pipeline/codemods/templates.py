"""The codemod rule templates: each proposes (kind, instruction, action) edits for one code unit.

A unit is a top-level function (`function` units) or a module's leading import block (`imports` units). A
template analyses the unit with Python's `ast` and returns at most one proposal, an ast-grep action (see
`actions`), or None when the unit offers nothing to it; `records.build_records` applies and verifies it.
"""
from __future__ import annotations

import ast
import builtins
import random
from typing import Callable, NamedTuple


class Proposal(NamedTuple):
    kind: str
    instruction: str
    action: dict


class Unit(NamedTuple):
    kind: str  # "function" or "imports"
    text: str
    tree: ast.Module


def _rule(rule: dict, fix: str, constraints: dict | None = None) -> dict:
    out = {"language": "python", "rule": rule, "fix": fix}
    if constraints:
        out["constraints"] = constraints
    return out


def _func(unit: Unit) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    node = unit.tree.body[0] if unit.kind == "function" and unit.tree.body else None
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _identifiers(tree) -> set[str]:
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in n.posonlyargs + n.args + n.kwonlyargs + [n.vararg, n.kwarg] if a is not None}
    names |= {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    return names


def _unsafe_names(tree) -> set[str]:
    """Names that also appear as attributes, keyword arguments, imports or globals: renaming the identifier
    would change them too, so renames avoid them."""
    out = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    out |= {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords if k.arg}
    out |= {a.asname or a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
            for a in n.names}
    out |= {name for n in ast.walk(tree) if isinstance(n, (ast.Global, ast.Nonlocal)) for name in n.names}
    return out


def _fresh(base: str, taken: set[str], suffixes=("_value", "_item", "_data", "_arg")) -> str:
    for s in suffixes:
        if base + s not in taken:
            return base + s
    return base + "_renamed"


_SYNONYMS = {"s": "text", "n": "count", "x": "value", "i": "index", "f": "fileobj", "d": "mapping", "k": "key",
             "v": "val", "l": "items", "lst": "items", "res": "result", "ret": "result", "msg": "message",
             "buf": "buffer", "fn": "func", "cb": "callback", "e": "exc", "m": "match", "p": "path", "t": "token"}


def _rename_in_function(fn_name: str, old: str, new: str) -> dict:
    inside = {"kind": "function_definition", "stopBy": "end", "has": {"field": "name", "regex": f"^{fn_name}$"}}
    return _rule({"kind": "identifier", "regex": f"^{old}$", "inside": inside}, new)


def rename_function(unit: Unit, rng: random.Random) -> Proposal | None:
    fn = _func(unit)
    if fn is None or fn.name in _unsafe_names(unit.tree) or fn.name.startswith("__"):
        return None
    new = _fresh(fn.name, _identifiers(unit.tree), ("_impl", "_v2", "_helper", "_internal"))
    return Proposal("rename_function", f"Rename the function `{fn.name}` to `{new}`, including every use of "
                    "the name.", _rule({"kind": "identifier", "regex": f"^{fn.name}$"}, new))


def rename_parameter(unit: Unit, rng: random.Random) -> Proposal | None:
    fn = _func(unit)
    if fn is None:
        return None
    unsafe, taken = _unsafe_names(unit.tree), _identifiers(unit.tree)
    params = [a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
              if a.arg not in ("self", "cls") and a.arg not in unsafe and a.arg != fn.name]
    if not params:
        return None
    old = rng.choice(params)
    new = _SYNONYMS.get(old) if _SYNONYMS.get(old) not in taken else None
    new = new or _fresh(old, taken)
    return Proposal("rename_parameter", f"In `{fn.name}`, rename the parameter `{old}` to `{new}` and update "
                    "its uses.", _rename_in_function(fn.name, old, new))


def rename_variable(unit: Unit, rng: random.Random) -> Proposal | None:
    fn = _func(unit)
    if fn is None:
        return None
    params = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
    unsafe, taken = _unsafe_names(unit.tree), _identifiers(unit.tree)
    local = sorted({n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                   - params - unsafe - {fn.name} - set(dir(builtins)))
    if not local:
        return None
    old = rng.choice(local)
    new = _SYNONYMS.get(old) if _SYNONYMS.get(old) not in taken else None
    new = new or _fresh(old, taken)
    return Proposal("rename_variable", f"In `{fn.name}`, rename the local variable `{old}` to `{new}`.",
                    _rename_in_function(fn.name, old, new))


_NEW_PARAMS = (("verbose", "False"), ("strict", "False"), ("timeout", "None"), ("debug", "False"),
               ("encoding", "None"))


def add_parameter(unit: Unit, rng: random.Random) -> Proposal | None:
    fn = _func(unit)
    if fn is None or fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs or fn.args.posonlyargs:
        return None
    if not fn.args.args:
        return None
    header = unit.text[:unit.text.find(":")] if ":" in unit.text else ""
    if "\n" in header or header.rstrip().endswith(",)"):
        return None  # one-line signatures without a trailing comma
    taken = _identifiers(unit.tree)
    options = [(n, d) for n, d in _NEW_PARAMS if n not in taken]
    if not options:
        return None
    name, default = rng.choice(options)
    rule = {"pattern": {"context": "def f($$$PARAMS): pass", "selector": "parameters"},
            "inside": {"kind": "function_definition", "has": {"field": "name", "regex": f"^{fn.name}$"}}}
    return Proposal("add_parameter", f"Add a parameter `{name}` with default `{default}` at the end of "
                    f"`{fn.name}`'s parameters.", _rule(rule, f"($$$PARAMS, {name}={default})"))


_CALL_REPLACEMENTS = {"print": "logger.info", "time.time": "time.monotonic", "os.path.join": "posixpath.join",
                      "open": "io.open", "os.getenv": "os.environ.get", "os.remove": "os.unlink",
                      "os.rename": "os.replace", "warnings.warn": "logger.warning", "len": "operator.length_hint",
                      "isinstance": "_isinstance", "getattr": "_getattr", "str": "_str", "repr": "reprlib.repr",
                      "sorted": "_sorted", "hasattr": "_hasattr"}


def _call_names(tree) -> list[str]:
    out = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            try:
                out.append(ast.unparse(n.func))
            except Exception:  # noqa: BLE001
                continue
    return out


def replace_call(unit: Unit, rng: random.Random) -> Proposal | None:
    if _func(unit) is None:
        return None
    names = sorted({c for c in _call_names(unit.tree) if c in _CALL_REPLACEMENTS})
    if not names:
        return None
    old = rng.choice(names)
    new = _CALL_REPLACEMENTS[old]
    return Proposal("replace_call", f"Replace every call to `{old}` with a call to `{new}`, keeping the "
                    "arguments.", _rule({"pattern": f"{old}($$$ARGS)"}, f"{new}($$$ARGS)"))


_WRAPPABLE = ("sorted", "map", "filter", "zip", "reversed", "range", "enumerate")


def wrap_call(unit: Unit, rng: random.Random) -> Proposal | None:
    if _func(unit) is None:
        return None
    names = sorted({c for c in _call_names(unit.tree) if c in _WRAPPABLE})
    if not names:
        return None
    old = rng.choice(names)
    wrapper = "tuple" if old == "zip" else "list"
    rule = {"pattern": f"{old}($$$ARGS)", "not": {"inside": {"pattern": f"{wrapper}($$$)"}}}
    return Proposal("wrap_call", f"Wrap every call to `{old}(...)` in `{wrapper}(...)` so the result is "
                    f"materialised.", _rule(rule, f"{wrapper}({old}($$$ARGS))"))


def loop_to_comprehension(unit: Unit, rng: random.Random) -> Proposal | None:
    if _func(unit) is None:
        return None
    for n in ast.walk(unit.tree):
        if (isinstance(n, ast.For) and not n.orelse and len(n.body) == 1 and isinstance(n.body[0], ast.Expr)
                and isinstance(n.body[0].value, ast.Call) and isinstance(n.body[0].value.func, ast.Attribute)
                and n.body[0].value.func.attr == "append" and len(n.body[0].value.args) == 1):
            break
    else:
        return None
    rule = {"pattern": "for $X in $ITER:\n    $R.append($E)", "not": {"has": {"kind": "else_clause"}}}
    return Proposal("loop_to_comprehension", "Replace each `for` loop whose only statement appends to a list "
                    "with one `extend` call over a generator expression.", _rule(rule, "$R.extend($E for $X in $ITER)"))


def change_literal(unit: Unit, rng: random.Random) -> Proposal | None:
    fn = _func(unit)
    if fn is None:
        return None
    options = []
    for n in ast.walk(fn):
        if (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
                and isinstance(n.value, ast.Constant) and type(n.value.value) is int and n.value.value >= 0):
            options.append((n.targets[0].id, n.value.value))
    if not options:
        return None
    name, value = rng.choice(sorted(set(options)))
    new = value * 2 if value else 1
    return Proposal("change_literal", f"In `{fn.name}`, change the value assigned to `{name}` from {value} to "
                    f"{new}.", _rule({"pattern": f"{name} = {value}",
                                      "inside": {"kind": "function_definition", "stopBy": "end",
                                                 "has": {"field": "name", "regex": f"^{fn.name}$"}}},
                                     f"{name} = {new}"))


def change_default(unit: Unit, rng: random.Random) -> Proposal | None:
    fn = _func(unit)
    if fn is None:
        return None
    args = fn.args.args[len(fn.args.args) - len(fn.args.defaults):]
    options = [(a.arg, d.value) for a, d in zip(args, fn.args.defaults)
               if isinstance(d, ast.Constant) and (d.value is None or isinstance(d.value, bool))]
    if not options:
        return None
    name, value = rng.choice(options)
    new = {None: "False", True: "False", False: "True"}[value]
    rule = {"kind": "default_parameter", "has": {"field": "name", "regex": f"^{name}$"},
            "inside": {"kind": "parameters", "inside": {"kind": "function_definition",
                                                        "has": {"field": "name", "regex": f"^{fn.name}$"}}}}
    return Proposal("change_default", f"Change the default of `{fn.name}`'s parameter `{name}` from {value} to "
                    f"{new}.", _rule(rule, f"{name}={new}"))


_NOT_ARG = {"not": {"any": [{"kind": "keyword_argument"}, {"kind": "list_splat"}, {"kind": "dictionary_splat"},
                            {"kind": "parenthesized_expression"}]}}


def reorder_arguments(unit: Unit, rng: random.Random) -> Proposal | None:
    if _func(unit) is None:
        return None
    calls = sorted({ast.unparse(n.func) for n in ast.walk(unit.tree)
                    if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and len(n.args) == 2
                    and not n.keywords and not any(isinstance(a, ast.Starred) for a in n.args)})
    if not calls:
        return None
    name = rng.choice(calls)
    return Proposal("reorder_arguments", f"Swap the two positional arguments of every two-argument call to "
                    f"`{name}`.", _rule({"pattern": f"{name}($A, $B)"}, f"{name}($B, $A)",
                                        {"A": dict(_NOT_ARG), "B": dict(_NOT_ARG)}))


def compare_to_none(unit: Unit, rng: random.Random) -> Proposal | None:
    if _func(unit) is None:
        return None
    ops = {type(op) for n in ast.walk(unit.tree) if isinstance(n, ast.Compare) and len(n.ops) == 1
           and isinstance(n.comparators[0], ast.Constant) and n.comparators[0].value is None for op in n.ops}
    if ast.Eq in ops:
        return Proposal("compare_to_none", "Compare with `None` by identity: replace `x == None` with "
                        "`x is None`.", _rule({"pattern": "$A == None"}, "$A is None"))
    if ast.NotEq in ops:
        return Proposal("compare_to_none", "Compare with `None` by identity: replace `x != None` with "
                        "`x is not None`.", _rule({"pattern": "$A != None"}, "$A is not None"))
    return None


def remove_dead_pass(unit: Unit, rng: random.Random) -> Proposal | None:
    if _func(unit) is None:
        return None
    for n in ast.walk(unit.tree):
        body = getattr(n, "body", None)
        if isinstance(body, list) and len(body) > 1 and any(isinstance(s, ast.Pass) for s in body[1:]):
            break
    else:
        return None
    rule = {"kind": "pass_statement", "follows": {"kind": "expression_statement"}}
    return Proposal("remove_dead_code", "Remove the `pass` statements that follow other statements in the same "
                    "block; they do nothing.", _rule(rule, ""))


_IMPORT_SWAPS = {"json": "simplejson as json", "re": "regex as re", "pickle": "dill as pickle",
                 "unittest": "unittest2 as unittest", "random": "secrets as random", "time": "pendulum as time",
                 "logging": "structlog as logging", "collections": "collections.abc as collections"}
_ABC_NAMES = {"Mapping", "MutableMapping", "Sequence", "MutableSequence", "Iterable", "Iterator", "Callable",
              "Set", "MutableSet", "Hashable", "Sized", "Container", "Generator"}


def replace_import(unit: Unit, rng: random.Random) -> Proposal | None:
    if unit.kind != "imports":
        return None
    plain = sorted({a.name for n in unit.tree.body if isinstance(n, ast.Import) and len(n.names) == 1
                    for a in n.names if a.asname is None and a.name in _IMPORT_SWAPS})
    if not plain:
        return None
    old = rng.choice(plain)
    return Proposal("replace_import", f"Replace `import {old}` with `import {_IMPORT_SWAPS[old]}`.",
                    _rule({"pattern": f"import {old}"}, f"import {_IMPORT_SWAPS[old]}"))


def remove_import(unit: Unit, rng: random.Random) -> Proposal | None:
    if unit.kind != "imports":
        return None
    plain = sorted({a.name for n in unit.tree.body if isinstance(n, ast.Import) and len(n.names) == 1
                    for a in n.names if a.asname is None})
    if len(plain) < 2:
        return None
    old = rng.choice(plain)
    return Proposal("remove_import", f"Remove the statement `import {old}`.", _rule({"pattern": f"import {old}"}, ""))


def from_import_to_abc(unit: Unit, rng: random.Random) -> Proposal | None:
    if unit.kind != "imports":
        return None
    for n in unit.tree.body:
        if isinstance(n, ast.ImportFrom) and n.module == "typing" and n.level == 0:
            break
    else:
        return None
    return Proposal("replace_import_module", "Import the names that come from `typing` from `collections.abc` "
                    "instead.", _rule({"pattern": "from typing import $$$NAMES"},
                                      "from collections.abc import $$$NAMES"))


TEMPLATES: dict[str, Callable[[Unit, random.Random], Proposal | None]] = {
    "rename_function": rename_function, "rename_parameter": rename_parameter, "rename_variable": rename_variable,
    "add_parameter": add_parameter, "replace_call": replace_call, "wrap_call": wrap_call,
    "loop_to_comprehension": loop_to_comprehension, "change_literal": change_literal,
    "change_default": change_default, "reorder_arguments": reorder_arguments, "compare_to_none": compare_to_none,
    "remove_dead_code": remove_dead_pass, "replace_import": replace_import, "remove_import": remove_import,
    "replace_import_module": from_import_to_abc,
}
