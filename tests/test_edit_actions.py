"""The edit-action executor's verdicts (sandboxed and in-process) and the SRL reward on hand-made pairs."""
import pytest

from evals.edit_executor import execute, execute_many
from evals.edit_reward import field_items, field_score, srl_reward
from input_pipeline.codemods import actions

PRE = "def f(a, b):\n    return g(a, b)\n\n\nx = g(1, 2)\n"
POST = "def f(a, b):\n    return h(a, b)\n\n\nx = h(1, 2)\n"
GOOD = "<action>\nrule: {pattern: g($$$A)}\nfix: h($$$A)\n</action>"

CASES = [
    (GOOD, "applied"),
    ("ast-grep run --lang python --pattern 'g($$$A)' --rewrite 'h($$$A)'", "applied"),
    ("<action>\nrule: {pattern: [g\n</action>", "invalid_yaml"),
    ("<action>\nrule: {pattern: g($$$A)}\nrewrite: h($$$A)\n</action>", "unknown_field"),
    ("<action>\nrule: {pattern: g($$$A), kinds: call}\nfix: h($$$A)\n</action>", "unknown_field"),
    ("<action>\nfix: h\n</action>", "invalid_action"),
    ("<action>\nrule: {kind: no_such_kind}\nfix: h\n</action>", "invalid_rule"),
    ("<action>\nrule: {pattern: q($$$A)}\nfix: h($$$A)\n</action>", "no_match"),
    ("<action>\nrule: {kind: identifier, regex: '^[a-z]$'}\nfix: h\n</action>", "too_broad"),
    ("<action>\nrule: {pattern: 'g($A, $B)'}\nfix: h($B, $A)\n</action>", "wrong_edit"),
    ("<action>\nrule: {pattern: g($$$A)}\nfix: 'h($$$A'\n</action>", "broken_syntax"),
]


@pytest.mark.parametrize("text, verdict", CASES)
def test_verdicts_in_process(text, verdict):
    assert execute(text, PRE, POST, 2, sandboxed=False).verdict == verdict


def test_verdicts_in_the_sandbox_match():
    got = execute_many([(text, PRE, POST, 2) for text, _ in CASES], sandboxed=True)
    assert [e.verdict for e in got] == [v for _, v in CASES], [e.message for e in got]
    assert got[0].result == POST


def test_extra_matches_are_too_broad_even_on_the_same_lines():
    pre, post = "x = g(g(1))\n", "x = h(g(1))\n"
    got = execute("<action>\nrule: {kind: identifier, regex: '^g$'}\nfix: h\n</action>", pre, post, 1,
                  sandboxed=False)
    assert got.verdict == "too_broad" and got.matches == 2


TEACHER = {"language": "python", "rule": {"pattern": "g($$$A)"}, "fix": "h($$$A)"}


def test_reward_of_the_teacher_itself_is_one():
    assert srl_reward(TEACHER, actions.action_text(TEACHER)) == pytest.approx(1.0)
    assert srl_reward(TEACHER, actions.cli(TEACHER)) == pytest.approx(1.0)


@pytest.mark.parametrize("text", ["<action>\nrule: [\n</action>", "<action>\nrule: {pattern: x}\nfixx: y\n</action>",
                                  "nothing at all", "<action>\nfix: h\n</action>"])
def test_invalid_actions_get_minus_point_two(text):
    assert srl_reward(TEACHER, text) == -0.2


def test_reward_one_field_wrong_by_hand():
    student = dict(TEACHER, fix="k($$$A)")  # 2 of 3 fields equal; the YAML texts differ in one character
    text = actions.rule_yaml(TEACHER)
    n = len(text)
    assert len(actions.rule_yaml(student)) == n
    s_str = 2 * (n - 1) / (2 * n)
    assert srl_reward(TEACHER, actions.action_text(student)) == pytest.approx(0.7 * 2 / 3 + 0.3 * s_str)


def test_reward_cli_form_compares_command_lines_by_hand():
    student_cli = "ast-grep run --lang python --pattern 'g($$$A)' --rewrite 'k($$$A)'"
    n = len(actions.cli(TEACHER))
    assert len(student_cli) == n
    assert srl_reward(TEACHER, student_cli) == pytest.approx(0.7 * 2 / 3 + 0.3 * (n - 1) / n)


def test_field_items_and_field_score_by_hand():
    a = {"rule": {"kind": "identifier", "inside": {"kind": "call", "stopBy": "end"}}, "fix": "x"}
    b = {"rule": {"kind": "identifier", "inside": {"kind": "call"}, "regex": "^g$"}, "fix": "y"}
    assert field_items(a) == {"rule.kind": "identifier", "rule.inside.kind": "call", "rule.inside.stopBy": "end",
                              "fix": "x"}
    assert field_score(a, b) == pytest.approx(2 / 5)  # kind, inside.kind equal; stopBy, regex, fix not
    assert field_items({"any": [{"kind": "a"}, {"kind": "b"}]}) == {"any[0].kind": "a", "any[1].kind": "b"}


def test_reward_stays_in_range():
    far = {"language": "python", "rule": {"kind": "identifier", "regex": "^zz$", "inside": {"kind": "block"}},
           "fix": ""}
    r = srl_reward(TEACHER, actions.action_text(far))
    assert -0.2 <= r < 0.4
