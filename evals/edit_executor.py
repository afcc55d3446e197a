"""Execute an emitted edit action: parse it, apply it with ast-grep inside the sandbox, compare to the expected
post-code. Each outcome has its own verdict:

    applied        the result is exactly the expected post-code
    invalid_yaml   the action text is not YAML (or not a mapping)
    unknown_field  a field the action schema or ast-grep does not know
    invalid_action no rule, a wrong type, no closing </action>, an unsupported language
    invalid_rule   ast-grep refused the rule
    no_match       the rule matched nothing
    too_broad      the rule rewrote more than the expected edit: more matches than the teacher's, or changed lines
                   beyond the expected ones
    wrong_edit     it matched, but the result is not the expected post-code
    broken_syntax  the result does not parse
    sandbox_error  the run did not report (timeout, crash)

The action is parsed here (data only); the ast-grep run happens in a sandboxed process (evals/sandbox.py,
`ast_grep_py` the one package it may import) that returns the rewritten text on stdout; the verdict is decided
here, outside it. `sandboxed=False` applies in this process (the SRL trainer's accuracy, where nothing but a
rule is run).
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from evals.sandbox import SandboxLimits, run_program
from input_pipeline.codemods import actions as actions_lib
from input_pipeline.codemods import apply_rule

VERDICTS = ("applied", "invalid_yaml", "unknown_field", "invalid_action", "invalid_rule", "no_match", "too_broad",
            "wrong_edit", "broken_syntax", "sandbox_error")
DEFAULT_LIMITS = SandboxLimits(cpu_seconds=10.0, wall_seconds=20.0, output_bytes=4 << 20, packages=("ast_grep_py",))

_MAIN = '''
import json as _json
_payload = _json.loads(%r)
try:
    _out, _n = apply_action(_payload["source"], _payload["action"])
    print(_json.dumps({"ok": True, "result": _out, "matches": _n}))
except RuleError as _e:
    print(_json.dumps({"ok": False, "error": str(_e)}))
'''


@dataclasses.dataclass(frozen=True)
class Execution:
    verdict: str
    result: str = ""       # the rewritten code (when the rule ran)
    matches: int = 0
    message: str = ""

    @property
    def applied(self) -> bool:
        return self.verdict == "applied"


def _program(pre: str, action: dict) -> str:
    return inspect.getsource(apply_rule) + _MAIN % json.dumps({"source": pre, "action": action})


def _changed_lines(a: str, b: str) -> set[int]:
    out = set()
    matcher = difflib.SequenceMatcher(None, a.splitlines(), b.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            out.update(range(i1, max(i2, i1 + 1)))
    return out


def judge_result(pre: str, post: str, result: str, matches: int, expected_edits: int | None = None) -> Execution:
    """The verdict of a rule that ran and rewrote `matches` matches of `pre` into `result`."""
    if matches == 0:
        return Execution("no_match", result, 0, "the rule matched nothing")
    if result == post:
        return Execution("applied", result, matches)
    try:
        ast.parse(result)
    except (SyntaxError, ValueError) as e:
        return Execution("broken_syntax", result, matches, f"the result does not parse: {e}")
    expected, actual = _changed_lines(pre, post), _changed_lines(pre, result)
    if (expected_edits is not None and matches > expected_edits) or (expected < actual):
        return Execution("too_broad", result, matches, f"{matches} match(es) rewritten, {len(actual)} line(s) "
                         f"changed; expected {expected_edits if expected_edits is not None else '?'} match(es), "
                         f"{len(expected)} line(s)")
    return Execution("wrong_edit", result, matches, "the result differs from the expected post-code")


def execute(action_text: str, pre: str, post: str, expected_edits: int | None = None, *, sandboxed: bool = True,
            limits: SandboxLimits = DEFAULT_LIMITS) -> Execution:
    """The verdict of one emitted action (see the module docstring)."""
    try:
        action, _ = actions_lib.parse_action(action_text)
    except actions_lib.ActionError as e:
        return Execution(e.reason, message=e.message)
    if not sandboxed:
        try:
            result, n = apply_rule.apply_action(pre, action)
        except apply_rule.RuleError as e:
            return Execution(_rule_error_verdict(str(e)), message=str(e))
        return judge_result(pre, post, result, n, expected_edits)
    verdict = run_program(_program(pre, action), limits)
    try:
        reply = json.loads(verdict.stdout.strip().splitlines()[-1]) if verdict.passed else None
    except (ValueError, IndexError):
        reply = None
    if reply is None:
        return Execution("sandbox_error", message=f"{verdict.status}: {verdict.message}"[:500])
    if not reply["ok"]:
        return Execution(_rule_error_verdict(reply["error"]), message=reply["error"])
    return judge_result(pre, post, reply["result"], int(reply["matches"]), expected_edits)


def _rule_error_verdict(message: str) -> str:
    return "unknown_field" if "unknown field" in message or "unknown variant" in message else "invalid_rule"


def execute_many(items: Sequence[tuple[str, str, str, int | None]], *, sandboxed: bool = True,
                 max_workers: int = 2, limits: SandboxLimits = DEFAULT_LIMITS) -> list[Execution]:
    """`execute` on (action_text, pre, post, expected_edits) tuples, concurrently; results in input order."""
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="edit-exec") as pool:
        return list(pool.map(lambda it: execute(*it, sandboxed=sandboxed, limits=limits), items))
