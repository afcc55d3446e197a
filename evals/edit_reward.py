"""The SRL reward of an emitted action against the teacher's: field-level match plus string similarity.

    S_field  over the union of the two actions' field paths (`field_items`: "rule.inside.kind", "fix", ...),
             the fraction whose values are equal
    S_str    difflib's ratio of the canonical texts: the `cli` strings when the student wrote a command line and
             the teacher's action has one, else the `rule_yaml` texts
    R        clip(0.7 S_field + 0.3 S_str, -0.2, 1.0); an action that does not parse (invalid YAML, unknown
             fields, no rule) gets -0.2

Nothing is executed: the reward reads the two actions only.
"""
from __future__ import annotations

import difflib

from input_pipeline.codemods import actions as actions_lib

INVALID_REWARD = -0.2
FIELD_WEIGHT, STRING_WEIGHT = 0.7, 0.3


def field_items(value, prefix: str = "") -> dict[str, object]:
    """Path -> leaf value of a normalised action (lists index as `[i]`)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(field_items(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list):
        out = {}
        for i, v in enumerate(value):
            out.update(field_items(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def field_score(teacher: dict, student: dict) -> float:
    t, s = field_items(teacher), field_items(student)
    paths = set(t) | set(s)
    return sum(1 for p in paths if p in t and p in s and t[p] == s[p]) / len(paths) if paths else 1.0


def string_score(teacher: dict, student: dict, student_form: str = "yaml") -> float:
    t_cli, s_cli = actions_lib.cli(teacher), actions_lib.cli(student)
    if student_form == "cli" and t_cli:
        a, b = t_cli, s_cli
    else:
        a, b = actions_lib.rule_yaml(teacher), actions_lib.rule_yaml(student)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def srl_reward(teacher: dict, student_text: str) -> float:
    """R of the student's emitted text (an `<action>` block, YAML or CLI) against the teacher's normalised
    action."""
    try:
        student, form = actions_lib.parse_action(student_text)
    except actions_lib.ActionError:
        return INVALID_REWARD
    teacher = actions_lib.normalise(teacher)
    r = FIELD_WEIGHT * field_score(teacher, student) + STRING_WEIGHT * string_score(teacher, student, form)
    return min(max(r, INVALID_REWARD), 1.0)
