"""Apply one normalised ast-grep rule (a dict: language, rule, constraints, fix) to source text.

Self-contained (only `ast_grep_py`): evals/edit_executor.py ships this file's source into the sandbox.
`fix` is an ast-grep fix template: `$NAME` is the text of a single metavariable, `$$$NAME` the source span of a
multi-match (separators included), as the ast-grep CLI writes them; "" deletes the match. Matches nested inside
an earlier match are skipped, as the CLI does.
"""
from __future__ import annotations

import re

_METAVAR = re.compile(r"\$\$\$([A-Z_][A-Z0-9_]*)|\$([A-Z_][A-Z0-9_]*)")


class RuleError(ValueError):
    """ast-grep refused the rule (unknown field, bad value)."""


def _span_text(source: str, nodes) -> str:
    if not nodes:
        return ""
    return source[nodes[0].range().start.index:nodes[-1].range().end.index]  # indices count characters


def _render(fix: str, match, source: str) -> str:
    def one(m):
        if m.group(1):
            return _span_text(source, match.get_multiple_matches(m.group(1)))
        node = match.get_match(m.group(2))
        return node.text() if node is not None else m.group(0)
    return _METAVAR.sub(one, fix)


def find_matches(source: str, action: dict):
    """(root node, the non-nested matches of the action's rule, in source order). Raises RuleError."""
    from ast_grep_py import SgRoot  # noqa: PLC0415

    root = SgRoot(source, action.get("language", "python")).root()
    config = {"rule": action["rule"]}
    if action.get("constraints"):
        config["constraints"] = action["constraints"]
    try:
        found = root.find_all(config)
    except Exception as e:  # ast-grep raises a bare Exception for bad rules
        raise RuleError(str(e).splitlines()[0]) from None
    found = sorted(found, key=lambda n: (n.range().start.index, -n.range().end.index))
    kept, last_end = [], -1
    for node in found:
        r = node.range()
        if r.start.index >= last_end:
            kept.append(node)
            last_end = r.end.index
    return root, kept


def apply_action(source: str, action: dict) -> tuple[str, int]:
    """(the rewritten source, the number of matches rewritten)."""
    root, matches = find_matches(source, action)
    edits = [m.replace(_render(action.get("fix", ""), m, source)) for m in matches]
    return (root.commit_edits(edits) if edits else source), len(matches)
