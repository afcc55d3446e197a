"""Syntax validation of generated code (compile only, nothing runs), its rate, and feedback text."""
from __future__ import annotations

import ast
import dataclasses
import os
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
    """Compiles `source` (ast.parse misses e.g. `return` outside a function; compile does not); code without a
    statement (empty, blanks, comments only) is not ok either."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as e:  # IndentationError and TabError included
        text = e.text.rstrip("\n") if e.text else None
        return SyntaxCheck(False, type(e).__name__, e.msg or "invalid syntax", e.lineno, e.offset, text)
    except (ValueError, RecursionError, MemoryError) as e:  # null bytes; absurd nesting
        return SyntaxCheck(False, type(e).__name__, str(e) or type(e).__name__)
    if not ast.parse(source).body:  # compiles, but is no program: a model that emits only blanks is not "valid"
        return SyntaxCheck(False, "EmptyProgram", "no statements (empty, whitespace or comments only)")
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


# ---------------------------------------------------------------- the other five benchmark languages

VALIDATORS = {
    "python": "compile()",
    "go": "gofmt -e",
    "rust": "rustfmt --check (rustc --emit=metadata without rustfmt)",
    "java": "javac (the solution files with the test jars on the class path)",
    "javascript": "node --check (as an ES module)",
    "cpp": "g++ -std=c++17 -fsyntax-only",
}
_SUFFIXES = {"python": (".py",), "go": (".go",), "rust": (".rs",), "java": (".java",), "javascript": (".js",),
             "cpp": (".cpp", ".h", ".hpp", ".cc")}
_VALIDATOR_LIMITS = dict(cpu_seconds=30.0, wall_seconds=60.0)


def _validator_steps(language: str, paths: list[str], toolchain) -> tuple[list[dict], dict, dict]:
    """(steps, extra files, env) that check `paths` (in the work dir's "src/") without running them."""
    t = toolchain.tools
    if language == "go":
        return [{"name": "compile", "argv": [t["gofmt"], "-e", "-l", *paths], "cwd": "src"}], {}, dict(toolchain.env)
    if language == "rust":
        rustfmt = t["bin"] + "/rustfmt"
        if os.path.exists(rustfmt):
            argv = [rustfmt, "--check", "--edition", "2021", *paths]
        else:
            argv = [t["rustc"], "--edition", "2021", "--crate-type", "lib", "--emit=metadata", "-o", "/dev/null",
                    paths[0]]
        return [{"name": "compile", "argv": argv, "cwd": "src"}], {}, {"PATH": t["bin"] + ":/usr/bin:/bin"}
    if language == "java":
        return [{"name": "compile", "argv": [t["javac"], "-J-Xmx256m", "-J-XX:+UseSerialGC",
                                             "-J-XX:TieredStopAtLevel=1", "-J-XX:CompressedClassSpaceSize=64m", "-nowarn", "-encoding", "UTF-8",
                                             "-d", "../classes", "-cp", t["classpath"], *paths], "cwd": "src"}], {}, {}
    if language == "javascript":
        copies = {f"mjs/{p}.mjs": None for p in paths}
        steps = [{"name": "compile", "argv": [t["node"], "--check", f"../{c}"], "cwd": "src"} for c in copies]
        return steps, copies, {}
    if language == "cpp":
        units = [p for p in paths if p.endswith((".cpp", ".cc"))] or paths
        return [{"name": "compile", "argv": [t["g++"], "-std=c++17", "-fsyntax-only", "-x", "c++", p], "cwd": "src"}
                for p in units], {}, {}
    raise ValueError(f"unknown language {language!r}; choose from {sorted(VALIDATORS)}")


def _rustfmt_only_formatting(output: str) -> bool:
    """rustfmt --check exits 1 for code it would only reformat: that is valid syntax."""
    return "error" not in output and output.lstrip().startswith("Diff in") or not output.strip()


def check_files(language: str, files: dict, max_chars: int = FEEDBACK_CHARS * 4) -> SyntaxCheck:
    """Whether a candidate's files (path -> text) parse in `language`, by the language's own tool, run in the
    sandbox (it is the candidate's text); the tool's error text in `message`. Files of other suffixes (a
    Cargo.toml, a CMakeLists.txt) are ignored. Raises ToolchainMissing when the tool is not installed."""
    if language == "python":
        for path, text in files.items():
            if path.endswith(".py"):
                check = check_syntax(text, path)
                if not check.ok:
                    return check
        return SyntaxCheck(True)
    from evals import polyglot_sandbox, polyglot_toolchains  # noqa: PLC0415

    toolchain = polyglot_toolchains.toolchain(language)
    sources = {p: t for p, t in files.items() if p.endswith(_SUFFIXES[language])}
    if not sources:
        return SyntaxCheck(True)
    flat = {os.path.basename(p): t for p, t in sources.items()}  # one dir: a .cpp finds its header
    steps, copies, env = _validator_steps(language, sorted(flat), toolchain)
    placed = {f"src/{p}": t for p, t in flat.items()}
    placed.update({c: flat[c[len("mjs/"):-len(".mjs")]] for c in copies})
    limits = polyglot_sandbox.limits_for(language, toolchain, **_VALIDATOR_LIMITS)
    run, record = polyglot_sandbox.run_job(polyglot_sandbox.Job(placed, steps, env), limits)
    if record is None:
        return SyntaxCheck(False, "ValidatorError", f"the {VALIDATORS[language]} run ended without a result: "
                           f"{run.status.value} {run.message[-300:]}")
    last = record["steps"][-1]
    if last["timed_out"]:
        return SyntaxCheck(False, "ValidatorTimeout", f"{VALIDATORS[language]} ran out of time")
    if last["returncode"] == 0 or language == "rust" and _rustfmt_only_formatting(last["output"]):
        return SyntaxCheck(True)
    output = polyglot_sandbox.strip_workdir(last["output"]).strip()
    return SyntaxCheck(False, "SyntaxError", output[-max_chars:])


def files_feedback(check: SyntaxCheck, max_chars: int = FEEDBACK_CHARS) -> str:
    """The validator's error text for the model ("" when ok): its tail, where compilers put the summary."""
    if check.ok:
        return ""
    if check.line is not None:
        return syntax_feedback(check, max_chars)
    return check.message[-max_chars:]
