"""The Aider Polyglot exercises (../shared/data/polyglot: 225 Exercism exercises in six languages) as data.

An exercise is its instructions (.docs/introduction.md, instructions.md, instructions.append.md), its solution
files (the stubs the model rewrites), its test files, the support files the tests build with (go.mod,
Cargo.toml, CMakeLists.txt, Catch, package.json ...), and its reference solution (.meta/example.* or the proof
file) mapped onto the solution paths. Files are read as text; the dirs Exercism keeps for its own tooling
(.meta, .docs, .approaches, .articles, Gradle's wrapper) are not part of the run.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pathlib

from evals.polyglot_toolchains import LANGUAGES

_SKIPPED_DIRS = {".meta", ".docs", ".approaches", ".articles", "gradle", "node_modules"}
_SKIPPED_FILES = {"gradlew", "gradlew.bat", "build.gradle", ".eslintrc", ".npmrc", "LICENSE", "babel.config.js",
                  "package.json"}
_INSTRUCTIONS = ("introduction.md", "instructions.md", "instructions.append.md")


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise; `files` maps relative paths to text: stubs, tests and support files as the tests need them."""

    language: str
    name: str
    instructions: str
    solution: tuple[str, ...]      # paths of the files the model writes
    tests: tuple[str, ...]         # paths of the test files
    files: dict                    # every file of the run, stubs included
    reference: dict                # solution path -> the reference solution's text

    @property
    def exercise_id(self) -> str:
        return f"{self.language}/{self.name}"


def polyglot_dir(data_dir: str | None = None) -> pathlib.Path:
    """<data_dir>/polyglot, data_dir defaulting to $HRM_JAX_DATA_DIR (then ../shared/data of the checkout)."""
    base = data_dir or os.environ.get("HRM_JAX_DATA_DIR") or str(
        pathlib.Path(__file__).resolve().parents[2] / "shared" / "data")
    path = pathlib.Path(base) / "polyglot"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no polyglot benchmark (set HRM_JAX_DATA_DIR to the shared data folder)")
    return path


def _read(path: pathlib.Path) -> str:
    return path.read_text(encoding="utf-8")


def _reference(language: str, root: pathlib.Path, solution: list[str], examples: list[str]) -> dict:
    """The example files under the solution paths they stand for."""
    out = {}
    for example in examples:
        if language == "java":  # .meta/src/reference/java/X.java -> src/main/java/X.java
            target = example.replace(".meta/src/reference/java/", "src/main/java/", 1)
        else:
            same_suffix = [s for s in solution if pathlib.PurePath(s).suffix == pathlib.PurePath(example).suffix]
            if len(same_suffix) != 1:
                raise ValueError(f"{root}: cannot tell which solution file {example} stands for ({solution})")
            target = same_suffix[0]
        out[target] = _read(root / example)
    return out


def load_exercise(root: pathlib.Path, language: str) -> Exercise:
    config = json.loads(_read(root / ".meta" / "config.json"))["files"]
    solution, tests = list(config["solution"]), list(config["test"])
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not (set(rel.parts[:-1]) & _SKIPPED_DIRS) and rel.name not in _SKIPPED_FILES:
            files[rel.as_posix()] = _read(path)
    for path in solution:
        files.setdefault(path, "")  # a header-only C++ exercise may lack its .cpp stub
    docs = root / ".docs"
    instructions = "\n\n".join(_read(docs / name).strip() for name in _INSTRUCTIONS if (docs / name).exists())
    reference = _reference(language, root, [s for s in solution if s != "Cargo.toml"], list(config.get("example", [])))
    if (root / ".meta" / "Cargo-example.toml").exists():  # the crates the Rust reference uses
        reference["Cargo.toml"] = _read(root / ".meta" / "Cargo-example.toml")
    return Exercise(language, root.name, instructions, tuple(solution), tuple(tests), files, reference)


def load_exercises(languages=LANGUAGES, data_dir: str | None = None) -> list[Exercise]:
    """The exercises of `languages`, by language then name."""
    base = polyglot_dir(data_dir)
    out = []
    for language in languages:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; choose from {list(LANGUAGES)}")
        practice = base / language / "exercises" / "practice"
        out += [load_exercise(d, language) for d in sorted(practice.iterdir()) if d.is_dir()]
    return out
