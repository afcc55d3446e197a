"""The judge's pytest plugin (evals/polyglot_harness.py), loaded with `-p` before any test module is collected.

At import it reads the run's secret from stdin (a socket the driver filled), moves the socket off fd 0 (fd 0
becomes /dev/null) and keeps both in closures; per test it reports "<secret> <pass|fail|skip> <name>" on the
socket: the call phase's outcome, a failing setup or teardown as fail. Before each report it checks that the
framework's code is what it was before the candidate's module loaded: the functions and classes of builtins,
unittest, pluggy and pytest's runner, reports, assertion rewriting and unittest support, and of the test
classes and their bases (compared by identity, none replaced or shadowed by an added one), and the assertion
rewriting import hook. A replaced one fails every later test (its report names what changed). unittest's
assertEqual is the plugin's first: where one side is a builtin value (what the tests expect) the other, and
whatever it holds, must compare by a C type's own __eq__, so a value "equal" to anything fails.
"""


def _harness():
    import builtins
    import os
    import sys
    import types
    import unittest
    import unittest.case
    import unittest.result

    import _pytest.assertion.rewrite
    import _pytest.outcomes
    import _pytest.python
    import _pytest.reports
    import _pytest.runner
    import _pytest.unittest
    import pluggy._callers
    import pluggy._hooks
    import pluggy._manager

    read, write, dup, dup2, close, open_ = os.read, os.write, os.dup, os.dup2, os.close, os.open
    isinstance_, str_ = isinstance, str
    class_dict = type.__dict__["__dict__"].__get__
    append = list.append  # a dict's or mappingproxy's own methods cannot be replaced: builtin types
    missing = object()
    code = (types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType, types.WrapperDescriptorType,
            type, staticmethod, classmethod, property)

    secret = b""
    while len(secret) < 32:
        try:
            chunk = read(0, 32 - len(secret))
        except OSError:
            break
        if not chunk:
            break
        secret += chunk
    channel = dup(0)
    devnull = open_(os.devnull, os.O_RDWR)
    dup2(devnull, 0)
    close(devnull)

    plain_types = (list, tuple, dict, set, frozenset, str, bytes, bytearray, memoryview, range, int, float, complex,
                   bool, type(None))
    slot, heap_type = types.WrapperDescriptorType, 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class made by Python code

    def builtin(x):  # a builtin value, as the tests write their expected values
        return type(x) in plain_types

    def plain(x):  # compared by a C type's own __eq__ (a namedtuple's is tuple's, a plain class's object's)
        eq = type(x).__eq__
        return isinstance_(eq, slot) and not eq.__objclass__.__flags__ & heap_type

    def compares_plainly(a, b):
        """Whether `a == b` rests on the builtin types' own comparison wherever one side is a builtin value: a
        value of the candidate's whose __eq__ says True to anything, alone or inside a container, does not."""
        if builtin(a) and not plain(b) or builtin(b) and not plain(a):
            return False
        if isinstance_(a, (list, tuple)) and isinstance_(b, (list, tuple)):
            return all(compares_plainly(x, y) for x, y in zip(a, b))
        if isinstance_(a, (dict, set, frozenset)) and isinstance_(b, (dict, set, frozenset)):  # keys: any order
            if all(builtin(k) for k in b) and not all(plain(k) for k in a):
                return False
            if all(builtin(k) for k in a) and not all(plain(k) for k in b):
                return False
            if isinstance_(a, dict) and isinstance_(b, dict):
                return all(compares_plainly(a[k], b[k]) for k in a if k in b)
        return True

    assert_equal = unittest.TestCase.assertEqual

    def assertEqual(self, first, second, msg=None):  # noqa: N802 (unittest's name)
        if not compares_plainly(first, second):
            raise self.failureException(f"{type(first).__name__} compared with {type(second).__name__} by an "
                                        "__eq__ that is not the builtin one")
        assert_equal(self, first, second, msg)

    unittest.TestCase.assertEqual = assertEqual

    guarded = []  # (namespace, name, value): each function or class the verdict rests on, as it was

    namespaces = []  # (namespace, its names then): a function or class added later may shadow a guarded one

    def guard(namespace):
        for name, value in list(namespace.items()):
            if isinstance_(value, code):
                append(guarded, (namespace, name, value))
        append(namespaces, (namespace, set(namespace)))

    def guard_module(module):
        guard(module.__dict__)
        for value in list(module.__dict__.values()):
            if isinstance_(value, type) and getattr(value, "__module__", None) == module.__name__:
                guard(class_dict(value))

    for module in (builtins, unittest.case, unittest.result, _pytest.assertion.rewrite, _pytest.outcomes,
                   _pytest.python, _pytest.reports, _pytest.runner, _pytest.unittest, pluggy._callers,
                   pluggy._hooks, pluggy._manager):
        guard_module(module)
    seen = [object, unittest.TestCase]  # the classes guarded so far (the test classes join after collection)
    meta_path, hooks = sys.meta_path, []
    tampered = []

    def unchanged():
        if tampered:
            return False
        for namespace, name, value in guarded:
            if namespace.get(name, missing) is not value:
                append(tampered, f"{name} replaced")
                return False
        for namespace, names in namespaces:
            for name, value in namespace.items():
                if name not in names and isinstance_(value, code):
                    append(tampered, f"{name} added")
                    return False
        for hook in hooks:
            if not any(entry is hook for entry in meta_path):
                append(tampered, "assertion rewriting hook removed")
                return False
        return True

    def send(status, name):
        line = secret + b" " + status + b" " + str_(name).replace("\n", " ")[:300].encode("utf-8", "replace") + b"\n"
        while line:
            try:
                line = line[write(channel, line):]
            except OSError:
                return

    def pytest_sessionstart(session):  # after pytest installed its import hook, before collection
        hooks.extend(h for h in meta_path if isinstance_(h, _pytest.assertion.rewrite.AssertionRewritingHook))

    def pytest_collection_finish(session):
        for item in session.items:
            cls = getattr(item, "cls", None)
            for base in cls.__mro__ if cls else ():
                if all(base is not c for c in seen):
                    append(seen, base)
                    guard(class_dict(base))
        unchanged()  # the candidate's module has loaded: what it replaced fails every test

    def pytest_runtest_logreport(report):
        name = report.nodeid.rsplit("::", 1)[-1]
        honest = unchanged()
        if report.when == "call" or report.outcome != "passed":
            if report.outcome == "skipped" and honest:
                send(b"skip", name)
            elif report.outcome == "passed" and report.when == "call" and honest:
                send(b"pass", name)
            else:  # a tampered run names what was changed
                send(b"fail", name if honest or not tampered else f"{name} ({tampered[0]})")

    return pytest_sessionstart, pytest_collection_finish, pytest_runtest_logreport


# pluggy keeps these function objects: rebinding the module's names later changes nothing
pytest_sessionstart, pytest_collection_finish, pytest_runtest_logreport = _harness()
del _harness
