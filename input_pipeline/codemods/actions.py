"""The action schema: a normalised ast-grep rule, its YAML and CLI forms, and the parser of emitted actions.

A normalised action is a dict with `language`, `rule` (an ast-grep rule object), optional `constraints`
(metavariable -> rule) and `fix` (a fix template; "" deletes the match). Its canonical text is `rule_yaml`
(YAML, keys sorted); a rule that is a bare pattern without constraints also has a `cli` form,
`ast-grep run --lang python --pattern P --rewrite F`. The model emits `<action>` + rule_yaml or cli +
`</action>`; `parse_action` reads either form back and raises ActionError with the reason ("invalid_yaml",
"unknown_field", "invalid_action") for anything else.
"""
from __future__ import annotations

import shlex

import yaml

ACTION_OPEN, ACTION_CLOSE = "<action>", "</action>"
TOP_LEVEL_FIELDS = ("id", "language", "rule", "constraints", "fix")
RULE_FIELDS = ("pattern", "kind", "regex", "nthChild", "range", "inside", "has", "precedes", "follows", "all",
               "any", "not", "matches", "stopBy", "field")
PATTERN_FIELDS = ("context", "selector", "strictness")
LANGUAGES = ("python",)
_CLI_OPTIONS = {"-p": "pattern", "--pattern": "pattern", "-r": "rewrite", "--rewrite": "rewrite", "-l": "lang",
                "--lang": "lang"}


class ActionError(ValueError):
    """An action that cannot be used; `reason` is one of invalid_yaml, unknown_field, invalid_action."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


def _check_rule(rule, where: str) -> None:
    if isinstance(rule, str):  # stopBy: end / neighbor, or a pattern string
        return
    if isinstance(rule, list):
        for i, item in enumerate(rule):
            _check_rule(item, f"{where}[{i}]")
        return
    if not isinstance(rule, dict):
        raise ActionError("invalid_action", f"{where} must be a mapping, got {type(rule).__name__}")
    for key, value in rule.items():
        if key not in RULE_FIELDS:
            raise ActionError("unknown_field", f"{where}.{key} is not an ast-grep rule field")
        if key == "pattern" and isinstance(value, dict):
            unknown = sorted(set(value) - set(PATTERN_FIELDS))
            if unknown:
                raise ActionError("unknown_field", f"{where}.pattern.{unknown[0]} is not a pattern field")
        elif key in ("inside", "has", "precedes", "follows", "not", "all", "any", "stopBy"):
            _check_rule(value, f"{where}.{key}")


def normalise(action: dict) -> dict:
    """The canonical dict of an action (checked; `id` dropped, language defaulted to python)."""
    if not isinstance(action, dict):
        raise ActionError("invalid_action", f"an action is a mapping, got {type(action).__name__}")
    unknown = sorted(set(action) - set(TOP_LEVEL_FIELDS))
    if unknown:
        raise ActionError("unknown_field", f"{unknown[0]!r} is not an action field (fields: {TOP_LEVEL_FIELDS})")
    if "rule" not in action:
        raise ActionError("invalid_action", "the action has no 'rule'")
    language = action.get("language", "python")
    if language not in LANGUAGES:
        raise ActionError("invalid_action", f"language {language!r} is not one of {LANGUAGES}")
    fix = action.get("fix", "")
    if not isinstance(fix, str):
        raise ActionError("invalid_action", f"fix must be a string, got {type(fix).__name__}")
    _check_rule(action["rule"], "rule")
    out = {"language": language, "rule": action["rule"], "fix": fix}
    constraints = action.get("constraints") or {}
    if not isinstance(constraints, dict):
        raise ActionError("invalid_action", "constraints must map metavariable names to rules")
    for name, rule in constraints.items():
        _check_rule(rule, f"constraints.{name}")
    if constraints:
        out["constraints"] = constraints
    return out


def rule_yaml(action: dict) -> str:
    """The canonical YAML text of a normalised action."""
    return yaml.safe_dump(action, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1000)


def cli(action: dict) -> str:
    """The `ast-grep run` command of a bare-pattern action, else ""."""
    rule = action["rule"]
    if action.get("constraints") or set(rule) != {"pattern"} or not isinstance(rule["pattern"], str):
        return ""
    return (f"ast-grep run --lang {action['language']} --pattern {shlex.quote(rule['pattern'])} "
            f"--rewrite {shlex.quote(action['fix'])}")


def action_text(action: dict) -> str:
    """What a Stage 1 model emits for this action: the YAML form between the action tags."""
    return f"{ACTION_OPEN}\n{rule_yaml(action)}{ACTION_CLOSE}"


def _parse_cli(text: str) -> dict:
    try:
        words = shlex.split(text)
    except ValueError as e:
        raise ActionError("invalid_action", f"unreadable command line: {e}") from None
    if len(words) < 2 or words[0] not in ("ast-grep", "sg") or words[1] != "run":
        raise ActionError("invalid_action", "a command-line action starts with `ast-grep run`")
    values, i = {}, 2
    while i < len(words):
        key = _CLI_OPTIONS.get(words[i])
        if key is None:
            raise ActionError("unknown_field", f"{words[i]!r} is not a supported ast-grep run option")
        if i + 1 >= len(words):
            raise ActionError("invalid_action", f"{words[i]} needs a value")
        values[key] = words[i + 1]
        i += 2
    if "pattern" not in values:
        raise ActionError("invalid_action", "the command has no --pattern")
    return {"language": values.get("lang", "python"), "rule": {"pattern": values["pattern"]},
            "fix": values.get("rewrite", "")}


def parse_action(text: str) -> tuple[dict, str]:
    """(normalised action, the form it came in: "yaml" or "cli") from a model's output or an action's text.
    The text between the first `<action>` and `</action>` is read when the tags are there."""
    if ACTION_OPEN in text:
        body = text.split(ACTION_OPEN, 1)[1]
        if ACTION_CLOSE not in body:
            raise ActionError("invalid_action", f"no {ACTION_CLOSE} after {ACTION_OPEN}")
        text = body.split(ACTION_CLOSE, 1)[0]
    text = text.strip()
    if text.startswith(("ast-grep ", "sg ")):
        return normalise(_parse_cli(text)), "cli"
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ActionError("invalid_yaml", str(e).splitlines()[0]) from None
    if not isinstance(loaded, dict):
        raise ActionError("invalid_yaml", f"the YAML is a {type(loaded).__name__}, not a mapping")
    return normalise(loaded), "yaml"
