"""Code extraction per prompt format, and syntax validation."""
import pytest

from evals.code_extraction import (extract_code, extract_fenced, extract_fewshot, extract_humaneval,
                                   extract_instruction, truncate_at_stops)
from evals.syntax import check_syntax, syntax_feedback, syntax_valid_rate


def test_fewshot_takes_code_before_done():
    assert extract_fewshot("def f():\n    return 1\n[DONE]\nYou are an expert") == "def f():\n    return 1"
    assert extract_fewshot(" [BEGIN]\ndef g(): pass\n[DONE]") == "def g(): pass"
    assert extract_fewshot("def h(): pass\n") == "def h(): pass"


def test_instruction_cuts_at_eos_and_markers():
    assert extract_instruction("def f():\n    return 1\n</s>junk") == "def f():\n    return 1"
    assert extract_instruction("x = 1<FEEDBACK>y") == "x = 1"
    assert extract_instruction("x = 1<PROMPT>next task<CODE>") == "x = 1"
    assert extract_instruction("x = 2") == "x = 2"


def test_fenced_takes_first_block():
    text = "Here:\n```python\ndef f():\n    return 1\n```\nand\n```python\nbad\n```"
    assert extract_fenced(text) == "def f():\n    return 1"
    assert extract_fenced("```\nx = 1\n```") == "x = 1"
    assert extract_fenced("```py\nx = 1") == "x = 1"  # unclosed runs to the end
    assert extract_fenced("x = 3\n") == "x = 3\n"


def test_humaneval_truncates_at_top_level_stops():
    body = "    return a + b\n"
    for tail in ("\nclass X:", "\ndef other():", "\nif __name__ == '__main__':", "\nprint(add(1, 2))", "\n# test"):
        assert extract_humaneval(body + tail) == body
    assert extract_humaneval("    # a comment inside\n    return 1\n") == "    # a comment inside\n    return 1\n"
    assert truncate_at_stops("a STOP b STAP", ("STAP", "STOP")) == "a "


def test_dispatch_and_unknown_format():
    assert extract_code("x</s>", "instruction") == "x"
    with pytest.raises(ValueError, match="unknown completion format 'chat'"):
        extract_code("x", "chat")


def test_syntax_ok_and_errors_with_position():
    assert check_syntax("def f():\n    return 1\n").ok
    bad = check_syntax("def f():\n    return (1\n")
    assert not bad.ok and bad.error_type == "SyntaxError" and bad.line == 2
    indent = check_syntax("def f():\nreturn 1\n")
    assert indent.error_type == "IndentationError" and indent.line == 2
    outside = check_syntax("return 1\n")  # ast.parse accepts this; compile does not
    assert not outside.ok and "outside function" in outside.message
    assert check_syntax("x = 1\0").error_type in ("SyntaxError", "ValueError")
    for blank in ("", " " * 128, "\t\t\n", "# a comment only\n"):  # compiles, but is no program
        assert check_syntax(blank).error_type == "EmptyProgram", repr(blank)


def test_syntax_valid_rate():
    assert syntax_valid_rate(["x = 1", "x = (", "y = 2", "def"]) == 0.5
    assert syntax_valid_rate([]) == 0.0


def test_syntax_feedback_names_line_column_and_points():
    check = check_syntax("x = 1\ny = = 2\n")
    text = syntax_feedback(check)
    assert text.startswith("SyntaxError: invalid syntax (line 2, column ")
    assert "    y = = 2" in text and text.rstrip().endswith("^")
    assert text.splitlines()[-1].index("^") == 4 + check.column - 1
    assert syntax_feedback(check_syntax("x = 1")) == ""
    assert len(syntax_feedback(check, max_chars=10)) == 10
