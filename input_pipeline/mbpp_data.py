"""MBPP (Austin et al. 2021) without TFDS: the pinned source files, the standard splits, checked records.

A record is a dict with task_id (int), text (the task prompt), code (reference solution), test_list,
test_setup_code and challenge_test_list. The sanitized file is mapped onto the same keys: its `prompt` becomes
`text`, its `test_imports` are joined into `test_setup_code`, and `challenge_test_list` is empty.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
from typing import Any, Iterator

DATA_DIR_ENV = "HRM_JAX_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class MbppSource:
    """One published MBPP file: where it lives under a data dir, its canonical URL and pinned sha256."""
    filename: str
    url: str
    sha256: str
    num_tasks: int


_CANONICAL = "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/"
SOURCES = {
    "full": MbppSource("mbpp.jsonl", _CANONICAL + "mbpp.jsonl",
                       "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f", 974),
    "sanitized": MbppSource("sanitized-mbpp.json", _CANONICAL + "sanitized-mbpp.json",
                            "ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9", 427),
}
# Standard splits by task_id, inclusive; the same ranges select the sanitized subset.
SPLITS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974)}

_FULL_FIELDS = {"task_id": int, "text": str, "code": str, "test_list": list, "test_setup_code": str,
                "challenge_test_list": list}
_SANITIZED_FIELDS = {"task_id": int, "prompt": str, "code": str, "test_list": list, "test_imports": list}


class MbppDataError(ValueError):
    """An MBPP file that is missing, altered or malformed; the message names the file (and line)."""


def split_of(task_id: int) -> str:
    """The standard split holding `task_id`."""
    for name, (lo, hi) in SPLITS.items():
        if lo <= task_id <= hi:
            return name
    raise KeyError(f"task_id {task_id} is in no MBPP split (splits cover 1-974)")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """`data_dir`, else $HRM_JAX_DATA_DIR: a folder holding mbpp/mbpp.jsonl."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
        if not data_dir:
            raise MbppDataError(
                f"no MBPP data dir: pass data_dir or set ${DATA_DIR_ENV} to a folder holding mbpp/mbpp.jsonl "
                "(or let tfds.builder('mbpp') download the canonical file)")
    return pathlib.Path(data_dir)


def mbpp_path(variant: str = "full", data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Where the `variant` file lies under the data dir; raises if it is not there."""
    source = _source(variant)
    path = resolve_data_dir(data_dir) / "mbpp" / source.filename
    if not path.is_file():
        raise MbppDataError(f"MBPP file not found: {path} (expected <data_dir>/mbpp/{source.filename}; "
                            f"data_dir comes from the data_dir argument or ${DATA_DIR_ENV})")
    return path


def verify_sha256(path: str | os.PathLike, expected: str) -> None:
    """Raises `MbppDataError` naming the file, expected and actual sha256 when they differ."""
    actual = hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()
    if actual != expected:
        raise MbppDataError(f"{path}: sha256 mismatch: expected {expected}, actual {actual} "
                            "(not the pinned canonical MBPP file)")


def read_mbpp_file(path: str | os.PathLike, variant: str = "full", *,
                   check_sha256: bool = True) -> list[dict]:
    """All tasks of one MBPP file as checked records, in file order."""
    source = _source(variant)
    path = pathlib.Path(path)
    if check_sha256:
        verify_sha256(path, source.sha256)
    text = path.read_text(encoding="utf-8")
    entries = _jsonl_entries(text, path) if variant == "full" else _json_array_entries(text, path)
    records: list[dict] = []
    first_seen: dict[int, str] = {}
    for where, entry in entries:
        record = _to_record(entry, variant, where)
        task_id = record["task_id"]
        if task_id in first_seen:
            raise MbppDataError(f"{where}: duplicate task_id {task_id} (first at {first_seen[task_id]})")
        try:
            split_of(task_id)
        except KeyError as e:
            raise MbppDataError(f"{where}: {e.args[0]}") from None
        first_seen[task_id] = where
        records.append(record)
    if not records:
        raise MbppDataError(f"{path}: holds no MBPP tasks")
    return records


def load_mbpp(split: str, variant: str = "full", data_dir: str | os.PathLike | None = None, *,
              check_sha256: bool = True) -> list[dict]:
    """The records of one standard split ("prompt", "test", "validation", "train"), by task_id."""
    if split not in SPLITS:
        raise ValueError(f"unknown MBPP split {split!r}; choose one of {list(SPLITS)}")
    path = mbpp_path(variant, data_dir)
    lo, hi = SPLITS[split]
    records = sorted((r for r in read_mbpp_file(path, variant, check_sha256=check_sha256)
                      if lo <= r["task_id"] <= hi), key=lambda r: r["task_id"])
    if not records:
        raise MbppDataError(f"{path}: split {split!r} (task_ids {lo}-{hi}) is empty")
    return records


def mbpp_check_program(record: dict, completion: str, *, challenge: bool = False) -> str:
    """The program that tests `completion` for `record`: code, then test_setup_code, then the asserts.

    The setup runs after the code because it can use the solution's classes (tasks 367 and 927 build
    trees of the solution's `Node`). `challenge` adds the challenge_test_list.
    """
    tests = list(record["test_list"]) + (list(record["challenge_test_list"]) if challenge else [])
    return "\n".join([completion, record["test_setup_code"], *tests]) + "\n"


def _source(variant: str) -> MbppSource:
    try:
        return SOURCES[variant]
    except KeyError:
        raise ValueError(f"unknown MBPP variant {variant!r}; choose one of {list(SOURCES)}") from None


def _jsonl_entries(text: str, path: pathlib.Path) -> Iterator[tuple[str, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as e:
            raise MbppDataError(f"{where}: malformed JSON ({e.msg} at column {e.colno})") from None


_WS = re.compile(r"\s*")


def _json_array_entries(text: str, path: pathlib.Path) -> Iterator[tuple[str, Any]]:
    """Entries of a JSON list, each with "path:line (entry #k)" of where it starts."""
    decoder = json.JSONDecoder()

    def fail(pos: int, msg: str) -> MbppDataError:
        return MbppDataError(f"{path}:{text.count(chr(10), 0, pos) + 1}: malformed JSON ({msg})")

    pos = _WS.match(text).end()
    if text[pos:pos + 1] != "[":
        raise fail(pos, "expected a JSON list of tasks")
    pos = _WS.match(text, pos + 1).end()
    line, line_pos, k = 1, 0, 0
    while text[pos:pos + 1] != "]":
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        try:
            entry, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise MbppDataError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
        yield f"{path}:{line} (entry #{k})", entry
        k += 1
        pos = _WS.match(text, pos).end()
        if text[pos:pos + 1] == ",":
            pos = _WS.match(text, pos + 1).end()
        elif text[pos:pos + 1] != "]":
            raise fail(pos, "expected ',' or ']' after an entry")
    if text[_WS.match(text, pos + 1).end():]:
        raise fail(pos + 1, "extra data after the list")


def _to_record(entry: Any, variant: str, where: str) -> dict:
    if not isinstance(entry, dict):
        raise MbppDataError(f"{where}: expected a JSON object, got {type(entry).__name__}")
    fields = _FULL_FIELDS if variant == "full" else _SANITIZED_FIELDS
    for field, kind in fields.items():
        if field not in entry:
            raise MbppDataError(f"{where}: task is missing field {field!r}")
        value = entry[field]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MbppDataError(f"{where}: field {field!r} must be {kind.__name__}, got {type(value).__name__}")
        if kind is list and not all(isinstance(v, str) for v in value):
            raise MbppDataError(f"{where}: field {field!r} must be a list of strings")
    if variant == "full":
        return {field: entry[field] for field in _FULL_FIELDS}
    return {"task_id": entry["task_id"], "text": entry["prompt"], "code": entry["code"],
            "test_list": entry["test_list"], "test_setup_code": "\n".join(entry["test_imports"]),
            "challenge_test_list": []}
