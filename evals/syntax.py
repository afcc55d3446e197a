"""Syntax validation of generated code (compile only, nothing runs), its rate, and feedback text."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

FEEDBACK_CHARS = 500


@dataclasses.dataclass(frozen=True)
class SyntaxCheck:
    """`ok`, or where and why the code does not compile (line/column 1-based; None when unknown)."""

    ok: bool
    error_type: str | None = None
    message: str = ""
    line: int | None = None
    column: int | None = None
    text: str | None = None  # the offending source line


def check_syntax(source: str, filename: str = "<completion>") -> SyntaxCheck:
    """Compiles `source` (ast.parse misses e.g. `return` outside a function; compile does not)."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:  # IndentationError and TabError included
        text = e.text.rstrip("\n") if e.text else None
        return SyntaxCheck(False, type(e).__name__, e.msg or "invalid syntax", e.lineno, e.offset, text)
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes; absurd nesting
        return SyntaxCheck(False, type(e).__name__, str(e) or type(e).__name__)
    return SyntaxCheck(True)


def syntax_valid_rate(sources: Iterable[str]) -> float:
    """The fraction of `sources` that compile (0.0 for none)."""
    results = [check_syntax(s).ok for s in sources]
    return sum(results) / len(results) if results else 0.0


def syntax_feedback(check: SyntaxCheck, max_chars: int = FEEDBACK_CHARS) -> str:
    """The error as a short traceback-like text for the model ("" when ok)."""
    if check.ok:
        return ""
    where = f" (line {check.line}" + (f", column {check.column}" if check.column else "") + ")" if check.line else ""
    lines = [f"{check.error_type}: {check.message}{where}"]
    if check.text is not None:
        lines.append("    " + check.text.strip())
        if check.column:
            indent = len(check.text) - len(check.text.lstrip())
            lines.append("    " + " " * max(check.column - 1 - indent, 0) + "^")
    return "\n".join(lines)[:max_chars]
